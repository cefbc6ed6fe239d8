"""Preprocess on a Dask cluster (compute.engine: dask): the split, the transformer and
features.json equal the local engine's, and train/test are folders of Parquet parts that
read back as the local engine's files. No process holds the table:

1. each worker reads its part's target and batch columns (and the text columns that are
   no listed feature, for schema.numbers_in_text's tally); here, the roles come from the
   dtypes, the split positions from the target alone (split_rows, as the local engine),
   and the fit sample's positions (fit_rows);
2. each worker prepares only its part's rows of one output (derived features, schema
   check, model frame: all per row) and writes them: train is every part's split rows,
   then every part's pseudo-labelled rows, as the local engine appends them; test its
   split rows;
3. each worker reads its train part back for its features.json facts and its rows of the
   fit sample; here, the facts combine and the transformer is fitted on the sample.

The client holds per row a pseudo-label flag, a class code (classification) and the
split's positions, about 20 bytes (train_test_split peaks at a few times that), and the
fit sample: at most preprocess.fit_max_rows rows of the features. Augmentation is
refused: its noise is one random stream over the whole training table.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..core import cluster, io, paths, progress
from ..core.errors import ConfigError
from ..core.params import DataParams, Params, PreprocessParams, load
from ..modeling import derivation
from ..stages.preprocess import (
    feature_facts,
    features_json,
    fit_rows,
    fit_transformer,
    split_rows,
    summary,
)
from ..tables import parts, schema


def survey(frame: pd.DataFrame, target: str, text: list[str], task: str) -> tuple:
    """Pass 1 on a worker: (rows, which are pseudo-labelled, the target as categories for
    classification, the text columns' tallies)."""
    pseudo = (frame[schema.BATCH] == schema.PSEUDO_LABELLED).to_numpy()
    labels = frame[target].astype("category") if task == "classification" else None
    return len(frame), pseudo, labels, [schema.text_tally(frame[c]) for c in text]


def prepared(
    frame: pd.DataFrame, keep: np.ndarray, roles: schema.Roles, ratios: list
) -> pd.DataFrame:
    """Pass 2 on a worker: the rows of a part that `keep` (packed_rows) marks, as the
    local engine prepares them."""
    frame, _ = derivation.add(frame.iloc[np.flatnonzero(np.unpackbits(keep))], ratios)
    checks = schema.model_input_schema(roles)
    frame = schema.validate(frame, checks, "the annotated data", inplace=True)
    return frame.assign(**schema.model_frame(frame, roles)).reset_index(drop=True)


def facts_and_sample(
    frame: pd.DataFrame, sample: np.ndarray | None, roles: schema.Roles, task: str
) -> tuple[dict, pd.DataFrame]:
    """Pass 3 on a worker: a train part's features.json facts and its fit-sample rows."""
    return feature_facts(frame, roles, task), frame if sample is None else frame.iloc[sample]


def labels_of(surveyed: list[tuple], task: str) -> pd.Series:
    """The whole target for the split, as categories in sorted order (1-2 bytes a row):
    their codes stratify as the values do. A regression split needs the count alone."""
    if task != "classification":
        return pd.Series(np.zeros(sum(s[0] for s in surveyed), dtype=np.int8))
    return pd.Series(
        pd.api.types.union_categoricals([s[2] for s in surveyed], sort_categories=True)
    )


def spans(positions: np.ndarray, bounds: np.ndarray) -> list[np.ndarray]:
    """Sorted table positions as positions within each part (part n: bounds[n:n+2])."""
    cuts = np.searchsorted(positions, bounds)
    return [positions[cuts[n] : cuts[n + 1]] - bounds[n] for n in range(len(bounds) - 1)]


def write_rows(frames: list, keep: list[tuple[int, np.ndarray]], path, roles, ratios) -> int:
    """The rows `keep` = [(part, positions in it), ...] prepared on the workers and
    written as the parts of `path`, in that order; the rows written."""
    import dask

    chosen = [
        dask.delayed(prepared)(frames[n], packed_rows(rows), roles, ratios) for n, rows in keep
    ]
    return parts.write(chosen, path)


def packed_rows(rows: np.ndarray) -> np.ndarray:
    """Sorted positions as a bit mask, a bit a row: what goes into the graph (positions,
    8 bytes a row, made a 610 MiB graph at 1e8 rows)."""
    mask = np.zeros(rows[-1] + 1, dtype=bool)
    mask[rows] = True
    return np.packbits(mask)


def nonempty(*by_part: list[np.ndarray]) -> list[tuple[int, np.ndarray]]:
    """(part, positions) of each spans() list in turn, leaving out parts with no rows."""
    return [(n, rows) for spans_ in by_part for n, rows in enumerate(spans_) if len(rows)]


def refuse_augment(rules: PreprocessParams) -> None:
    if rules.augment.enabled:
        raise ConfigError(
            "preprocess.augment does not run on the dask engine (its noise is one random "
            "stream over the whole training table): set preprocess.augment.enabled=false "
            "or compute.engine=local"
        )


def roles_of(empty: pd.DataFrame, data: DataParams, ratios: list, task: str) -> tuple:
    """(the roles, the text columns that are no listed feature, the prepared rows' columns,
    the derived ones) from the dtypes (an empty frame), as the local engine infers them
    from the table; the text columns' whole-column check runs on tallies of the parts."""
    unlisted: list[pd.Series] = []
    empty, derived = derivation.add(empty, ratios)
    roles = schema.infer_roles(empty, data, task, check_text=unlisted.append)
    return roles, [c.name for c in unlisted if schema.is_text(c)], empty.columns, derived


def split_positions(surveyed: list[tuple], rules: PreprocessParams, seed: int, task: str) -> tuple:
    """(row count per part, cumulated; train, test and pseudo-labelled positions; the train
    table's class codes or None) from the parts' surveys, split as the local engine splits."""
    bounds = np.cumsum([0] + [s[0] for s in surveyed])
    pseudo = np.concatenate([s[1] for s in surveyed])
    labelled, pseudo = np.flatnonzero(~pseudo), np.flatnonzero(pseudo)
    labels = labels_of(surveyed, task)
    split_labels = labels.iloc[labelled]
    if task == "classification":  # a class that only pseudo-labels have: not split's
        split_labels = split_labels.cat.remove_unused_categories()
    train, test = split_rows(split_labels, rules.test_size, seed, task)
    train, test = labelled[train], labelled[test]
    # The train table's classes, in its order: the split's rows, then pseudo-labelled.
    classes = None
    if task == "classification":
        classes = labels.cat.codes.to_numpy()[np.concatenate([train, pseudo])]
    return bounds, train, test, pseudo, classes


def survey_parts(target: str, text: list[str], task: str) -> list[tuple]:
    """Each part's survey, read on its worker (the target, batch and text columns only);
    a text column holding numbers is refused."""
    import dask

    columns = [target, schema.BATCH, *text]
    surveyed = dask.compute(
        *[
            dask.delayed(survey)(frame, target, text, task)
            for frame in parts.read(paths.ANNOTATED, columns=columns).to_delayed()
        ]
    )
    for number, column in enumerate(text):
        schema.refuse_numbers_in_text(column, [s[3][number] for s in surveyed])
    return list(surveyed)


def gather_train(
    sample: np.ndarray | None, roles: schema.Roles, task: str
) -> tuple[list[dict], pd.DataFrame]:
    """(each written train part's features.json facts, the fit sample's rows: those at
    the positions `sample` of the train table, or every row when None)."""
    import dask

    if sample is not None:
        sample = spans(sample, np.cumsum([0] + parts.rows_per_part(paths.TRAIN)))
    written = parts.read(paths.TRAIN, columns=[*roles.features, roles.target]).to_delayed()
    gathered = dask.compute(
        *[
            dask.delayed(facts_and_sample)(
                frame, None if sample is None else sample[n], roles, task
            )
            for n, frame in enumerate(written)
        ]
    )
    fit = pd.concat([g[1] for g in gathered if len(g[1])], ignore_index=True)
    return [g[0] for g in gathered], fit


def run(params: Params) -> None:
    rules, task = params.preprocess, params.task
    refuse_augment(rules)
    annotated = parts.read(paths.ANNOTATED)
    roles, text, columns, derived = roles_of(annotated._meta, params.data, rules.ratios, task)
    with cluster.client(params.compute):
        surveyed = survey_parts(params.data.target, text, task)
        bounds, train, test, pseudo, classes = split_positions(surveyed, rules, params.seed, task)
        del surveyed
        frames = annotated.to_delayed()
        train_spans = nonempty(spans(train, bounds), spans(pseudo, bounds))
        train_rows = write_rows(frames, train_spans, paths.TRAIN, roles, rules.ratios)
        test_spans = nonempty(spans(test, bounds))
        test_rows = write_rows(frames, test_spans, paths.TEST, roles, rules.ratios)
        sample = fit_rows(train_rows, classes, rules=rules, seed=params.seed)
        facts, fit = gather_train(sample, roles, task)
    transformer, encodings = fit_transformer(fit, roles, rules=rules, task=task, seed=params.seed)
    report = summary(train_rows, test_rows, roles, transformer, encodings)
    io.save_model(paths.PREPROCESSOR, transformer)
    ignored = schema.non_features(columns, roles, params.data.id_column)
    described = features_json(facts, roles, task, report.pop("encodings"), ignored)
    described.update(derivation.record(rules.ratios, derived))
    described["missing_values"] = params.data.missing_values  # as the local engine
    io.write_json(paths.FEATURES, described)
    io.write_json(paths.PREPROCESS_REPORT, report)
    progress.note(
        rows_in=int(bounds[-1]),
        train_rows=train_rows,
        test_rows=test_rows,
        features=report["features_in"],
    )


def main() -> None:
    run(load())
