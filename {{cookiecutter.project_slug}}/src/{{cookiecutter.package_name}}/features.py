"""The feature transformation (imputation, scaling, one-hot encoding) from column roles:
fitted by `preprocess` on the training split, and the front of annotate's label judge."""

from __future__ import annotations

from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, RobustScaler, StandardScaler

from . import schema
from .params import PreprocessParams

SCALERS = {"standard": StandardScaler, "robust": RobustScaler}


def build_transformer(roles: schema.Roles, rules: PreprocessParams) -> ColumnTransformer:
    numeric_steps = [("impute", SimpleImputer(strategy=rules.impute_numeric))]
    if rules.scale != "none":
        numeric_steps.append(("scale", SCALERS[rules.scale]()))
    categorical_steps = [
        ("impute", SimpleImputer(strategy=rules.impute_categorical, fill_value="missing")),
        # Unseen categories at prediction time encode as all zeros (documented in README).
        ("encode", OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
    ]
    transformers = []
    if roles.numeric:
        transformers.append(("numeric", Pipeline(numeric_steps), roles.numeric))
    if roles.categorical:
        transformers.append(("categorical", Pipeline(categorical_steps), roles.categorical))
    return ColumnTransformer(transformers, remainder="drop", verbose_feature_names_out=True)
