"""Estimators from conf/model/ files, and the scorer of `metric` (scorers.py says which).

A conf/model/<name>.yaml holds `name` plus keyword arguments of the estimator; the models
there are model_catalog's. Seeds come from the top-level `seed`, never from the model file.
"""

from __future__ import annotations

import inspect
from collections.abc import Collection
from pathlib import Path
from typing import Any, get_args

from sklearn.base import BaseEstimator
from sklearn.metrics import get_scorer
from sklearn.utils._param_validation import InvalidParameterError

from ..core import io, model_catalog, scorers
from ..core.errors import ConfigError
from ..core.params import AUTO, BusinessParams, Params, Task
from . import business

# config name -> estimator class, per task (model_catalog's list).
REGISTRY: dict[Task, dict[str, type[BaseEstimator]]] = {
    task: {
        model.name: model_catalog.estimator_class(model)
        for model in model_catalog.MODELS
        if model.task == task
    }
    for task in get_args(Task)
}


def check_metric(task: Task, metric: str, classes: Collection | None = None) -> str:
    """`metric`, once it suits the task and, given the target's distinct classes, them."""
    problem = scorers.task_problem(task, metric)
    if problem is None and classes is not None:
        problem = scorers.classes_problem(metric, classes)
    if problem:
        raise ConfigError(problem)
    return metric


def scorer(task: Task, metric: str, business_params: BusinessParams, classes=None):
    """The scorer for `metric`: scikit-learn's by name, or the configured business_value."""
    if metric == business.NAME:
        return business.scorer(task, business_params, classes)
    return get_scorer(metric)


def build(
    task: Task, config: dict[str, Any], seed: int, n_rows: int | None = None
) -> BaseEstimator:
    """An unfitted estimator from a conf/model/*.yaml mapping, to be fitted on about `n_rows`.

    A whole-number `max_samples` (rows per tree of a random forest) is a cap: it becomes
    the matching share of `n_rows`, or every row when the data is smaller.
    """
    config = dict(config)
    name = config.pop("name", None)
    options = REGISTRY[task]
    if name not in options:
        raise ConfigError(
            f"model {name!r} is not a {task} model here: choose one of {', '.join(options)} "
            "(files in conf/model/)"
        )
    estimator_class = options[name]
    accepted = set(inspect.signature(estimator_class).parameters)
    unknown = sorted(set(config) - accepted)
    if unknown:
        raise ConfigError(
            f"model {name}: unknown hyperparameter(s) {', '.join(unknown)}; "
            f"{estimator_class.__name__} accepts {', '.join(sorted(accepted))}"
        )
    if "random_state" in accepted:
        config["random_state"] = seed
    cap = config.get("max_samples")
    if n_rows and isinstance(cap, int) and not isinstance(cap, bool):
        config["max_samples"] = None if cap >= n_rows else cap / n_rows
    estimator = estimator_class(**config)
    try:
        estimator._validate_params()
    except InvalidParameterError as exc:
        raise ConfigError(f"model {name}: {exc}") from None
    return estimator


def load(path: Path) -> Any:
    """A saved model (skops), trusting the reviewed types and those of model_catalog's models."""
    return io.load_model(path, model_catalog.skops_types())


def name_of(task: Task, estimator: BaseEstimator) -> str:
    """The conf/model/ name of a fitted estimator: what was trained, whichever way it was
    chosen (`model`, or select's winner)."""
    for name, estimator_class in REGISTRY[task].items():
        if type(estimator) is estimator_class:
            return name
    return type(estimator).__name__


def chosen_config(params: Params, selection: dict | None) -> dict[str, Any]:
    """The model `train` fits: `model`, or, when `model` is auto, select's winner with the
    hyperparameters select cross-validated (select.candidates.<winner>)."""
    if params.model["name"] != AUTO:
        return dict(params.model)
    if not selection:
        raise ConfigError(
            "model is auto (train select's winner) but reports/select.json is missing: "
            "run select, or pick a model with -S model=<name>"
        )
    winner = selection["winner"]
    if winner not in params.select.candidates:
        raise ConfigError(f"select's winner {winner!r} is no longer a candidate: rerun select")
    return dict(params.select.candidates[winner])
