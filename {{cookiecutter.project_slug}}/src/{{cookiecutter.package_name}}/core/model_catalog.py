"""The models are the files conf/model/<name>.yaml; this module reads and checks them.

A model file holds `_target_`, the estimator class as module.Class (Hydra's key), `name`,
its stem (so that params.yaml, where the stem is gone, still says which file it came
from), and the estimator's keyword arguments. Keys written like `_target_` are never
hyperparameters: `_onnx_` and `_skops_trusted_` are facts about exporting and loading the
model (docs/pipeline.md "Models"). Nothing lists the models elsewhere: a new file is a new
model, and `model@select.candidates.<name>: <name>` in conf/config.yaml makes it a
candidate.

While conf/ is composed, class_problem() imports each `_target_` (scikit-learn, once)
and checks its keys against the class's own signature; the other checks here need no
import, so the data stages parse params.yaml without scikit-learn.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError

NAME = "name"
TARGET = "_target_"
# ONNX: {float32: the graph feeds the estimator float32, as scikit-learn's trees cast
# their input; parity_may_fail: a disagreement with scikit-learn skips ONNX instead of
# failing export}. Left out, export tries float64 then float32 and skips ONNX, saying why,
# when neither agrees (export/onnx_convert.py).
ONNX = "_onnx_"
ONNX_FACTS = ("float32", "parity_may_fail")
# The types of the model's skops file that skops does not trust by default, reviewed by
# a person: a model file asking for any other is refused (modeling/models.py).
SKOPS_TRUSTED = "_skops_trusted_"
NOT_HYPERPARAMETERS = (NAME, TARGET, ONNX, SKOPS_TRUSTED)


def hyperparameters(config: dict[str, Any]) -> dict[str, Any]:
    """The estimator's keyword arguments: the model mapping without name and facts."""
    return {k: v for k, v in config.items() if k not in NOT_HYPERPARAMETERS}


def trusted_types(config: dict[str, Any]) -> frozenset[str]:
    return frozenset(config.get(SKOPS_TRUSTED) or ())


def onnx_facts(config: dict[str, Any]) -> dict[str, bool]:
    return dict(config.get(ONNX) or {})


def read(name: str, folder: Path) -> dict[str, Any]:
    """conf/model/<name>.yaml as a mapping, checked to be named after its file."""
    path = Path(folder) / f"{name}.yaml"
    if not path.exists():
        raise ConfigError(f"{path} not found: the model {name!r} is described there")
    config = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if config.get(NAME) != name:
        raise ConfigError(f"{path}: name is {config.get(NAME)!r}; write `name: {name}`")
    return config


def shape_problem(where: str, config: dict[str, Any]) -> str | None:
    """Why the model mapping at `where` is malformed, or None; imports nothing."""
    if not isinstance(config.get(TARGET), str):
        return (
            f"{where} has no {TARGET}: add `{TARGET}: <module.Class>` (the estimator) to "
            f"conf/model/{config.get(NAME)}.yaml"
        )
    unknown = sorted(k for k in config if k.startswith("_") and k not in NOT_HYPERPARAMETERS)
    if unknown:
        close = difflib.get_close_matches(unknown[0], NOT_HYPERPARAMETERS, n=1)
        hint = f"did you mean {close[0]}? " if close else ""
        return (
            f"{where}.{unknown[0]} is not a model file key: {hint}they are {TARGET}, {ONNX}, "
            f"{SKOPS_TRUSTED}"
        )
    facts = config.get(ONNX) or {}
    if not isinstance(facts, dict) or any(
        k not in ONNX_FACTS or not isinstance(v, bool) for k, v in facts.items()
    ):
        return (
            f"{where}.{ONNX} is {facts!r}: it maps float32 and/or parity_may_fail to true or false"
        )
    trusted = config.get(SKOPS_TRUSTED) or []
    if not isinstance(trusted, list) or not all(isinstance(t, str) for t in trusted):
        return f"{where}.{SKOPS_TRUSTED} is {trusted!r}: it is a list of module.Class names"
    return None


def estimator_class(config: dict[str, Any]) -> type:
    """The class `_target_` names; ImportError in one line when it does not import."""
    module_name, _, class_name = str(config[TARGET]).rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ImportError(f"module {module_name!r} does not import ({exc})") from None
    found = getattr(module, class_name, None)
    if not isinstance(found, type):
        public = [n for n in dir(module) if not n.startswith("_")]
        close = difflib.get_close_matches(class_name, public, n=1)
        hint = f" (did you mean {module_name}.{close[0]}?)" if close else ""
        raise ImportError(f"{module_name} has no class {class_name}{hint}")
    return found


def is_of_task(estimator_class: type, task: str) -> bool:
    """Whether instances of the class are estimators of `task` (scikit-learn's tags)."""
    from sklearn.base import is_classifier, is_regressor

    try:
        estimator = estimator_class()
    except Exception:  # noqa: BLE001 (anything a foreign class's __init__ raises)
        return False
    return (is_classifier if task == "classification" else is_regressor)(estimator)


def class_problem(task: str, where: str, config: dict[str, Any]) -> str | None:
    """Why the model at `where` cannot build its estimator, or None: `_target_` imports,
    is a `task` estimator, and takes every hyperparameter given. Imports the class."""
    fix = f"fix {TARGET} in conf/model/{config.get(NAME)}.yaml"
    try:
        found = estimator_class(config)
    except ImportError as exc:
        return f"{where}.{TARGET} {config[TARGET]!r}: {exc}; {fix}"
    if not is_of_task(found, task):
        return f"{where}.{TARGET} {config[TARGET]!r} is not a {task} estimator; {fix}"
    accepted = set(inspect.signature(found).parameters)
    if "random_state" in config:
        return f"{where}.random_state is not set here: the top-level seed sets it (-S seed=...)"
    settable = sorted(accepted - {"random_state"}, key=str.lower)
    unknown = sorted(set(hyperparameters(config)) - accepted)
    if not unknown:
        return None
    close = difflib.get_close_matches(unknown[0], settable, n=1)
    hint = f"did you mean {close[0]}? " if close else ""
    return (
        f"{where}.{unknown[0]} is not a parameter of {found.__name__}: {hint}it takes "
        f"{', '.join(settable)}"
    )
