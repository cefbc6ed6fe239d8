"""The one list of models: per task, each conf/model/<name>.yaml's estimator, and what
exporting and loading it needs.

Everything else follows from it: models.REGISTRY (name -> estimator class per task),
onnx_convert's float32 and float64-threshold families, the model types io.load_model
trusts, the conf/model/ files the post-gen hook keeps for the task, and the template's
tests. conf/config.yaml's select candidates and conf/model/ are written by hand (Hydra
reads files); tests/modeling/test_models.py fails when they differ from this list.

Plain Python, no scikit-learn at import: the post-gen hook reads it before the project's
packages are installed. Adding a model: an entry here, conf/model/<name>.yaml, and its
line in conf/config.yaml's candidates.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

_TREE = "sklearn.tree._tree.Tree"
_HIST_TREE = "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"
# Each estimator's keyword arguments (its __init__'s, as get_params lists them): params.py
# checks conf/model/ keys against them while conf/ is composed, without importing
# scikit-learn; tests/test_models.py checks them against the classes.
_LOGISTIC = frozenset({
    "C", "class_weight", "dual", "fit_intercept", "intercept_scaling", "l1_ratio", "max_iter",
    "n_jobs", "penalty", "random_state", "solver", "tol", "verbose", "warm_start",
})  # fmt: skip
_RIDGE = frozenset({
    "alpha", "copy_X", "fit_intercept", "max_iter", "positive", "random_state", "solver", "tol",
})  # fmt: skip
_FOREST = frozenset({
    "bootstrap", "ccp_alpha", "criterion", "max_depth", "max_features", "max_leaf_nodes",
    "max_samples", "min_impurity_decrease", "min_samples_leaf", "min_samples_split",
    "min_weight_fraction_leaf", "monotonic_cst", "n_estimators", "n_jobs", "oob_score",
    "random_state", "verbose", "warm_start",
})  # fmt: skip
_HIST = frozenset({
    "categorical_features", "early_stopping", "interaction_cst", "l2_regularization",
    "learning_rate", "loss", "max_bins", "max_depth", "max_features", "max_iter",
    "max_leaf_nodes", "min_samples_leaf", "monotonic_cst", "n_iter_no_change", "random_state",
    "scoring", "tol", "validation_fraction", "verbose", "warm_start",
})  # fmt: skip


@dataclass(frozen=True)
class Model:
    task: str
    # conf/model/<name>.yaml's stem and `name`, the `model=<name>` override.
    name: str
    # The scikit-learn estimator, as module.Class.
    estimator: str
    # ONNX: the model sees float32 features, as scikit-learn's trees cast their input (and
    # onnxruntime's tree operators require); other models stay in double.
    onnx_float32: bool
    # ONNX: scikit-learn compares float64 thresholds, onnxruntime float32 ones, so a value
    # between the two roundings can take the other branch: a failed parity check means no
    # faithful converter (export skips ONNX) rather than an error.
    onnx_parity_may_fail: bool
    # The estimator's keyword arguments: the keys its conf/model/<name>.yaml may set.
    parameters: frozenset[str]
    # Types of its skops file that skops does not trust by default. Reviewed by hand: a
    # model file asking for anything else is refused (io.load_model).
    skops_types: frozenset[str]


MODELS = (
    Model(
        "classification",
        "logistic_regression",
        "sklearn.linear_model.LogisticRegression",
        parameters=_LOGISTIC,
        onnx_float32=False,
        onnx_parity_may_fail=False,
        skops_types=frozenset(),
    ),
    Model(
        "classification",
        "random_forest",
        "sklearn.ensemble.RandomForestClassifier",
        parameters=_FOREST | {"class_weight"},
        onnx_float32=True,
        onnx_parity_may_fail=False,
        skops_types=frozenset({_TREE}),
    ),
    Model(
        "classification",
        "hist_gradient_boosting",
        "sklearn.ensemble.HistGradientBoostingClassifier",
        parameters=_HIST | {"class_weight"},
        onnx_float32=True,
        onnx_parity_may_fail=True,
        skops_types=frozenset(
            {
                _HIST_TREE,
                "sklearn._loss.link.LogitLink",
                "sklearn._loss.link.MultinomialLogit",
                "sklearn._loss.loss.HalfBinomialLoss",
                "sklearn._loss.loss.HalfMultinomialLoss",
            }
        ),
    ),
    Model(
        "regression",
        "ridge",
        "sklearn.linear_model.Ridge",
        parameters=_RIDGE,
        onnx_float32=False,
        onnx_parity_may_fail=False,
        skops_types=frozenset(),
    ),
    Model(
        "regression",
        "random_forest",
        "sklearn.ensemble.RandomForestRegressor",
        parameters=_FOREST,
        onnx_float32=True,
        onnx_parity_may_fail=False,
        skops_types=frozenset({_TREE}),
    ),
    Model(
        "regression",
        "hist_gradient_boosting",
        "sklearn.ensemble.HistGradientBoostingRegressor",
        parameters=_HIST | {"quantile"},
        onnx_float32=True,
        onnx_parity_may_fail=True,
        skops_types=frozenset(
            {_HIST_TREE, "sklearn._loss.link.IdentityLink", "sklearn._loss.loss.HalfSquaredError"}
        ),
    ),
)


def names(task: str) -> list[str]:
    """The task's model names, in the order select lists its candidates."""
    return [model.name for model in MODELS if model.task == task]


def find(task: str, name: str) -> Model | None:
    """The task's model called `name`, if any."""
    return next((m for m in MODELS if m.task == task and m.name == name), None)


def estimator_class(model: Model) -> type:
    """The estimator class itself (imports scikit-learn)."""
    module, _, name = model.estimator.rpartition(".")
    return getattr(importlib.import_module(module), name)


def skops_types() -> frozenset[str]:
    """Every listed model's reviewed skops types."""
    return frozenset().union(*(model.skops_types for model in MODELS))
