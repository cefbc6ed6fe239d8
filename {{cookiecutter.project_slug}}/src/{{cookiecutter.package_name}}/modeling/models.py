"""Estimators from conf/model/ files, and the scorer of `metric` (scorers.py says which).

A conf/model/<name>.yaml names its estimator class (`_target_`) and sets its keyword
arguments; model_catalog.py says what each key means. Seeds come from the top-level
`seed`, never from the model file.
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path
from typing import Any

from sklearn.base import BaseEstimator
from sklearn.metrics import get_scorer
from sklearn.utils._param_validation import InvalidParameterError

from ..core import io, model_catalog, paths, scorers
from ..core.errors import ConfigError
from ..core.params import AUTO, BusinessParams, Params, Task
from . import business


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
    task: Task, config: dict[str, Any], seed: int, n_rows: int | None = None, threads: int = 1
) -> BaseEstimator:
    """An unfitted estimator from a conf/model/*.yaml mapping, to be fitted on about `n_rows`
    on `threads` cores.

    A whole-number `max_samples` (rows per tree of a random forest) is a cap: it becomes
    the matching share of `n_rows`, or every row when the data is smaller. A library with
    its own thread pool (LightGBM, XGBoost) gets n_jobs=`threads`: it would otherwise take
    every core, whatever the stage's context (core/compute.py) allows.
    """
    name = config.get("name")
    problem = model_catalog.shape_problem(f"model {name}", config) or (
        model_catalog.class_problem(task, f"model {name}", config)
    )
    if problem:
        raise ConfigError(problem)
    estimator_class = model_catalog.estimator_class(config)
    settings = model_catalog.hyperparameters(config)
    cap = settings.get("max_samples")
    if n_rows and isinstance(cap, int) and not isinstance(cap, bool):
        settings["max_samples"] = None if cap >= n_rows else cap / n_rows
    estimator = estimator_class(**settings)
    # get_params, not the signature: XGBoost's estimators take theirs as **kwargs.
    accepted = estimator.get_params(deep=False)
    if "random_state" in accepted:
        estimator.set_params(random_state=seed)
    if "n_jobs" in accepted and model_catalog.own_threads(estimator_class):
        estimator.set_params(n_jobs=threads)
    # scikit-learn's own estimators check their values here (their _parameter_constraints);
    # another library's (LightGBM's, XGBoost's) check them when fitting.
    try:
        if hasattr(estimator, "_parameter_constraints"):
            estimator._validate_params()
    except InvalidParameterError as exc:
        raise ConfigError(f"model {name}: {exc}") from None
    return estimator


def _trust_fix(config: dict[str, Any]) -> str:
    """Where a person who reviewed a model's skops types lists them."""
    return f"list them under {model_catalog.SKOPS_TRUSTED} in conf/model/{config.get('name')}.yaml"


def save(path: Path, model: Any, config: dict[str, Any]) -> None:
    """The fitted model as skops at `path`, refused (nothing written) when it holds a type
    that neither io.TRUSTED_TYPES nor its model file (`config`) trusts."""
    io.save_model(path, model, model_catalog.trusted_types(config), _trust_fix(config))


def load(path: Path, config: dict[str, Any]) -> Any:
    """A saved model (skops), trusting io.TRUSTED_TYPES and the types its model file
    (`config`, the conf/model/ mapping it was trained from) lists: nothing else."""
    return io.load_model(path, model_catalog.trusted_types(config), _trust_fix(config))


def read_selection() -> dict | None:
    """select's report (reports/select.json), or None before select has run."""
    return io.read_json(paths.SELECT_REPORT) if paths.SELECT_REPORT.exists() else None


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
