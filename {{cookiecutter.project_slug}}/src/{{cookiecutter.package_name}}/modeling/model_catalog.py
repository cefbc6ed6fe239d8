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
    # Types of its skops file that skops does not trust by default. Reviewed by hand: a
    # model file asking for anything else is refused (io.load_model).
    skops_types: frozenset[str]


MODELS = (
    Model(
        "classification",
        "logistic_regression",
        "sklearn.linear_model.LogisticRegression",
        onnx_float32=False,
        onnx_parity_may_fail=False,
        skops_types=frozenset(),
    ),
    Model(
        "classification",
        "random_forest",
        "sklearn.ensemble.RandomForestClassifier",
        onnx_float32=True,
        onnx_parity_may_fail=False,
        skops_types=frozenset({_TREE}),
    ),
    Model(
        "classification",
        "hist_gradient_boosting",
        "sklearn.ensemble.HistGradientBoostingClassifier",
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
        onnx_float32=False,
        onnx_parity_may_fail=False,
        skops_types=frozenset(),
    ),
    Model(
        "regression",
        "random_forest",
        "sklearn.ensemble.RandomForestRegressor",
        onnx_float32=True,
        onnx_parity_may_fail=False,
        skops_types=frozenset({_TREE}),
    ),
    Model(
        "regression",
        "hist_gradient_boosting",
        "sklearn.ensemble.HistGradientBoostingRegressor",
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


def estimator_class(model: Model) -> type:
    """The estimator class itself (imports scikit-learn)."""
    module, _, name = model.estimator.rpartition(".")
    return getattr(importlib.import_module(module), name)


def skops_types() -> frozenset[str]:
    """Every listed model's reviewed skops types."""
    return frozenset().union(*(model.skops_types for model in MODELS))
