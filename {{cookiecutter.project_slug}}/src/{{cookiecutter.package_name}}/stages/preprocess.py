"""Preprocess: derived features (modeling/derivation.py), the seeded train/test split,
augmentation, and the feature transformation (imputation, encoding, scaling) fitted on
the training split only.

The fitted transformer is saved on its own and becomes the first step of the
model pipeline, so the exported model takes the rows with their derived columns. `select` clones it
(unfitted) inside each cross-validation fold, so no fold sees another's data.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.model_selection import train_test_split

from ..core import compute, io, paths, progress
from ..core.errors import DataError
from ..core.params import AugmentParams, PreprocessParams, Task, load
from ..modeling import derivation
from ..modeling.features import TARGET, build_transformer, choose_encodings
from ..tables import schema

AUGMENTED_BATCH = "augmented"


def split(
    df: pd.DataFrame, target: str, test_size: float, seed: int, task: Task
) -> tuple[pd.DataFrame, pd.DataFrame]:
    train, test = split_rows(df[target], test_size, seed, task)
    return df.iloc[train].reset_index(drop=True), df.iloc[test].reset_index(drop=True)


def split_rows(
    target: pd.Series, test_size: float, seed: int, task: Task
) -> tuple[np.ndarray, np.ndarray]:
    """The positions of the train and test rows, each in row order: the table's order, so
    a partitioned table splits without a shuffle. Only the target is needed (the dask
    engine reads it alone), as a category column too: its codes follow its sorted
    values, so they stratify exactly as the values do."""
    stratify = None
    if task == "classification":
        counts = target.value_counts()
        rare = counts[counts < 2]
        if len(rare):
            raise DataError(
                f"class(es) {', '.join(map(str, rare.index))} have fewer than 2 rows, too few for "
                "a stratified split: collect more rows or drop them with clean.exclude"
            )
        categories = isinstance(target.dtype, pd.CategoricalDtype)
        stratify = target.cat.codes.to_numpy() if categories else target
    try:
        train, test = train_test_split(
            np.arange(len(target)),
            test_size=test_size,
            random_state=seed,
            stratify=stratify,
            shuffle=True,
        )
    except ValueError as exc:
        raise DataError(
            f"cannot split {len(target)} rows with test_size={test_size}: {exc}"
        ) from None
    return np.sort(train), np.sort(test)


def fit_rows(
    rows: int, classes: np.ndarray | None, *, rules: PreprocessParams, seed: int
) -> np.ndarray | None:
    """Positions of the training rows the transformer is fitted on: a seeded sample of
    preprocess.fit_max_rows, stratified by `classes` (classification), or None for all
    of them. Both engines fit the same rows."""
    if rows <= rules.fit_max_rows:
        return None
    return compute.sample(np.arange(rows), classes, rules.fit_max_rows, seed)


def fit_transformer(
    fit: pd.DataFrame, roles: schema.Roles, *, rules: PreprocessParams, task: Task, seed: int
) -> tuple[ColumnTransformer, dict]:
    """The transformer fitted on `fit` (training rows), and choose_encodings' decision."""
    encodings = choose_encodings(fit, roles.categorical, rules.encoding)
    transformer = build_transformer(roles, rules, task, encodings, seed)
    # The model frame (no copy of its numbers): text typed alike whichever engine gathered
    # `fit`, and as train and select hand it to the transformer.
    transformer.fit(schema.model_frame(fit, roles), schema.target_array(fit[roles.target]))
    return transformer, encodings


def summary(
    train_rows: int, test_rows: int, roles: schema.Roles, transformer, encodings: dict
) -> dict:
    """The report; "encodings" goes to features.json."""
    return {
        "train_rows": train_rows,
        "test_rows": test_rows,
        "features_in": len(roles.features),
        "features_out": len(transformer.get_feature_names_out()),
        "target_encoded": sum(e["encoding"] == TARGET for e in encodings.values()),
        "encodings": encodings,
    }


def augment(
    train: pd.DataFrame, numeric: list[str], *, rules: AugmentParams, seed: int
) -> pd.DataFrame:
    """Append noisy copies of the training rows (numeric features jittered by scale * std)."""
    if not rules.enabled or not numeric:
        return train
    rng = np.random.default_rng(seed)
    spread = train[numeric].std(ddof=0).fillna(0.0).to_numpy()
    copies = []
    for k in range(1, rules.copies + 1):
        copy = train.copy()
        noise = rng.normal(0.0, 1.0, size=(len(copy), len(numeric))) * spread * rules.noise_scale
        copy[numeric] = copy[numeric].to_numpy() + noise
        copy[schema.ID] = copy[schema.ID] + f"-aug{k}"
        copy[schema.BATCH] = AUGMENTED_BATCH
        copies.append(copy)
    return pd.concat([train, *copies], ignore_index=True)


def describe_features(
    train: pd.DataFrame,
    roles: schema.Roles,
    task: Task,
    encodings: dict | None = None,
    id_column: str | None = None,
) -> dict:
    """The schema a request to the model must follow (names, types, known categories, the
    data's other columns, which it may carry), and the encoding each categorical column
    got; `id_column` is data.id_column, which ingest took out of the table."""
    ignored = schema.non_features(train.columns, roles, id_column)
    return features_json([feature_facts(train, roles, task)], roles, task, encodings, ignored)


def feature_facts(train: pd.DataFrame, roles: schema.Roles, task: Task) -> dict:
    """What features.json says of the training rows, for a table or a part of it: the
    parts' facts combine (features_json) into exactly the whole table's."""
    return {
        "numeric": {c: (train[c].min(), train[c].max()) for c in roles.numeric},
        "categorical": {c: set(map(str, train[c].dropna().unique())) for c in roles.categorical},
        "classes": set(map(str, train[roles.target].unique()))
        if task == "classification"
        else set(),
    }


def features_json(
    facts: list[dict],
    roles: schema.Roles,
    task: Task,
    encodings: dict | None,
    non_features: list[str],
) -> dict:
    """features.json from the facts of the training table's parts (one: the whole), and
    the data's columns that are no feature (schema.non_features)."""

    def spread(column: str, end: int) -> pd.Series:
        return pd.Series([f["numeric"][column][end] for f in facts], dtype="float64")

    features = {
        "task": task,
        "roles": roles.to_dict(),
        "non_features": non_features,
        "encodings": encodings or {},
        "numeric": {
            c: {"min": _finite(spread(c, 0).min()), "max": _finite(spread(c, 1).max())}
            for c in roles.numeric
        },
        "categorical": {
            c: sorted(set().union(*(f["categorical"][c] for f in facts))) for c in roles.categorical
        },
    }
    if task == "classification":
        features["classes"] = sorted(set().union(*(f["classes"] for f in facts)))
    return features


def _finite(value: float) -> float | None:
    return None if pd.isna(value) else float(value)


def preprocess(
    df: pd.DataFrame, roles: schema.Roles, *, rules: PreprocessParams, seed: int, task: Task
) -> tuple[pd.DataFrame, pd.DataFrame, ColumnTransformer, dict]:
    """(train, test, the transformer fitted on train, report); report["encodings"] is
    choose_encodings' decision per categorical column, for features.json."""
    train, test = split_table(df, roles, rules=rules, seed=seed, task=task)
    train, transformer, encodings = fitted(train, roles, rules=rules, seed=seed, task=task)
    return train, test, transformer, summary(len(train), len(test), roles, transformer, encodings)


def split_table(
    df: pd.DataFrame, roles: schema.Roles, *, rules: PreprocessParams, seed: int, task: Task
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train, test): the model frame's rows, each split taken once. They hold every row,
    so a caller that drops `df` next holds the table once, not twice."""
    df = df.assign(**schema.model_frame(df, roles))
    # Pseudo-labels are a model's guesses: they may teach, never grade, so train only.
    pseudo = df[schema.BATCH] == schema.PSEUDO_LABELLED
    if not pseudo.any():  # the usual case: no masked copy of the whole table
        return split(df, roles.target, rules.test_size, seed, task)
    train, test = split(df[~pseudo], roles.target, rules.test_size, seed, task)
    return pd.concat([train, df[pseudo]], ignore_index=True), test


def fitted(
    train: pd.DataFrame, roles: schema.Roles, *, rules: PreprocessParams, seed: int, task: Task
) -> tuple[pd.DataFrame, ColumnTransformer, dict]:
    """(train, augmented when asked; the transformer fitted on its rows; choose_encodings'
    decision per categorical column)."""
    classes = train[roles.target].to_numpy() if task == "classification" else None
    sample = fit_rows(len(train), classes, rules=rules, seed=seed)
    fit = train if sample is None else train.iloc[sample]
    transformer, encodings = fit_transformer(fit, roles, rules=rules, task=task, seed=seed)
    del fit  # a sample is a copy: gone before augment makes more
    train = augment(train, roles.numeric, rules=rules.augment, seed=seed)
    return train, transformer, encodings


def main() -> None:
    params = load()
    ratios = params.preprocess.ratios
    df, derived = derivation.add(io.read_parquet(paths.ANNOTATED), ratios)
    roles = schema.infer_roles(df, params.data, params.task)
    # In place: this stage owns df, and pandera's copy would be one more copy of the table.
    df = schema.validate(df, schema.model_input_schema(roles), "the annotated data", inplace=True)
    rows_in, settings = len(df), {"rules": params.preprocess, "seed": params.seed}
    train, test = split_table(df, roles, task=params.task, **settings)
    # The splits hold every row: the whole table goes before the fit, the stage's peak.
    del df
    train, transformer, encodings = fitted(train, roles, task=params.task, **settings)
    report = summary(len(train), len(test), roles, transformer, encodings)
    io.write_parquet(paths.TRAIN, train)
    io.write_parquet(paths.TEST, test)
    io.save_model(paths.PREPROCESSOR, transformer)
    encodings = report.pop("encodings")
    described = describe_features(train, roles, params.task, encodings, params.data.id_column)
    described.update(derivation.record(ratios, derived))
    # The server reads a request's categories by the data's missing-value rule.
    described["missing_values"] = params.data.missing_values
    io.write_json(paths.FEATURES, described)
    io.write_json(paths.PREPROCESS_REPORT, report)
    progress.note(
        rows_in=rows_in,
        train_rows=report["train_rows"],
        test_rows=report["test_rows"],
        features=report["features_in"],
    )
