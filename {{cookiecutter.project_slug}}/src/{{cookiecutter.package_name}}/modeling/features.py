"""The feature transformation (imputation, scaling, categorical encoding) from column roles:
fitted by `preprocess` on the training split, and the front of annotate's label judge.

Each categorical column gets the encoding its training cardinality calls for
(`choose_encodings`): one-hot up to `preprocess.encoding.onehot_max_categories`
distinct values, target encoding above. So the output has a bounded number of dense
columns whatever the data: a column of 1,000 merchants becomes one column per class
(classification) or one column (regression), never 1,000.
"""

from __future__ import annotations

import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.model_selection import KFold, StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, RobustScaler, StandardScaler, TargetEncoder

from ..core.params import EncodingParams, PreprocessParams, Task
from ..tables import schema

SCALERS = {"standard": StandardScaler, "robust": RobustScaler}
ONEHOT, TARGET = "onehot", "target"


def choose_encodings(
    df: pd.DataFrame, categorical: list[str], rules: EncodingParams
) -> dict[str, dict]:
    """Per categorical column: its distinct training values and the encoding they call for."""
    return {c: encoding_for(int(df[c].nunique(dropna=True)), rules) for c in categorical}


def encoding_for(distinct: int, rules: EncodingParams) -> dict:
    """A categorical column's encoding, from its count of distinct values."""
    method = ONEHOT if distinct <= rules.onehot_max_categories else TARGET
    return {"encoding": method, "distinct": distinct}


def build_transformer(
    roles: schema.Roles,
    rules: PreprocessParams,
    task: Task,
    encodings: dict[str, dict] | None,
    seed: int,
) -> ColumnTransformer:
    """Unfitted. Columns missing from `encodings` (all, when None) are one-hot encoded;
    `seed` (the config's) shuffles a target encoder's folds."""
    numeric_steps = [("impute", SimpleImputer(strategy=rules.impute_numeric))]
    if rules.scale != "none":
        numeric_steps.append(("scale", SCALERS[rules.scale]()))
    impute = ("impute", SimpleImputer(strategy=rules.impute_categorical, fill_value="missing"))
    # Unseen categories at prediction time: all zeros (one-hot) or the overall target
    # mean (target encoding); docs/serving.md says so.
    onehot = Pipeline(
        [impute, ("encode", OneHotEncoder(handle_unknown="ignore", sparse_output=False))]
    )
    # fit_transform cross-fits (each row encoded by the other folds), so a model trained on
    # its output never sees a row's own label; transform uses every training row.
    folds = StratifiedKFold if task == "classification" else KFold
    splitter = folds(rules.encoding.target_cv, shuffle=True, random_state=seed)
    target = Pipeline([impute, ("encode", TargetEncoder(cv=splitter))])
    by_method = {ONEHOT: [], TARGET: []}
    for column in roles.categorical:
        by_method[(encodings or {}).get(column, {}).get("encoding", ONEHOT)].append(column)
    transformers = []
    if roles.numeric:
        transformers.append(("numeric", Pipeline(numeric_steps), roles.numeric))
    if by_method[ONEHOT]:
        transformers.append(("categorical", onehot, by_method[ONEHOT]))
    if by_method[TARGET]:
        transformers.append(("target_encoded", target, by_method[TARGET]))
    # Dense output: every column above is bounded in width, and histogram gradient
    # boosting does not take sparse input.
    return ColumnTransformer(
        transformers, remainder="drop", sparse_threshold=0.0, verbose_feature_names_out=True
    )
