"""The models are the files conf/model/<name>.yaml; this module reads and checks them.

A model file holds `_target_`, the estimator class as module.Class (Hydra's key), `name`,
its stem (so that params.yaml, where the stem is gone, still says which file it came
from), and the estimator's keyword arguments. Keys written like `_target_` are never
hyperparameters: `_onnx_` and `_skops_trusted_` are facts about exporting and loading the
model (docs/pipeline.md "Models"). Nothing lists the models elsewhere: a new file is a new
model, and `model@select.candidates.<name>: <name>` in conf/config.yaml makes it a
candidate.

While conf/ is composed, class_problem() checks each model's keys against its class's own
signature; the other checks here need no import, so the data stages parse params.yaml
without scikit-learn. Importing scikit-learn for that check took 1-1.5 s of every
`dvc exp run`, so what it learns of a class from an installed package (its name, its
task, its parameters) is kept in .dvc/tmp/model_classes.json, keyed on that package's
__init__.py (its path, size and time): `uv sync` to another version checks afresh.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.util
import inspect
import json
import os
import sys
from pathlib import Path
from typing import Any

import yaml

from ..preload.client import project_code
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
# What class_problem learnt of installed classes (module docstring), in the project root.
CLASS_CACHE = Path(".dvc", "tmp", "model_classes.json")


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


def class_problem(
    task: str, where: str, config: dict[str, Any], cached: bool = False
) -> str | None:
    """Why the model at `where` cannot build its estimator, or None: `_target_` imports,
    is a `task` estimator, and takes every hyperparameter given. Imports the class, unless
    `cached` (composing conf/; a stage imports it anyway) and CLASS_CACHE knows it."""
    fix = f"fix {TARGET} in conf/model/{config.get(NAME)}.yaml"
    try:
        facts = class_facts(str(config[TARGET]), task, cached)
    except ImportError as exc:
        return f"{where}.{TARGET} {config[TARGET]!r}: {exc}; {fix}"
    if not facts["of_task"]:
        return f"{where}.{TARGET} {config[TARGET]!r} is not a {task} estimator; {fix}"
    accepted = set(facts["parameters"])
    if "random_state" in config:
        return f"{where}.random_state is not set here: the top-level seed sets it (-S seed=...)"
    if "n_jobs" in config and facts.get("threads"):
        return f"{where}.n_jobs is not set here: compute.n_jobs sets it (-S compute.n_jobs=...)"
    settable = sorted(accepted - {"random_state"}, key=str.lower)
    unknown = sorted(set(hyperparameters(config)) - accepted)
    # A class that takes **kwargs (LightGBM's, XGBoost's) hands keys its signature does
    # not name to its library, which checks them itself (model files name the library).
    if not unknown or facts.get("open"):
        return None
    close = difflib.get_close_matches(unknown[0], settable, n=1)
    hint = f"did you mean {close[0]}? " if close else ""
    return (
        f"{where}.{unknown[0]} is not a parameter of {facts['name']}: {hint}it takes "
        f"{', '.join(settable)}"
    )


def class_facts(target: str, task: str, cached: bool) -> dict[str, Any]:
    """{name, of_task, parameters} of the class `target`: from CLASS_CACHE when `cached`
    and its package's stamp matches, else by importing it (ImportError in one line)."""
    stamp = _package_stamp(target) if cached else None
    key = f"{target} {task} {stamp}"
    cache = _read_cache() if stamp else {}
    if key in cache:
        return cache[key]
    found = estimator_class({TARGET: target})
    signature = inspect.signature(found).parameters.values()
    named = {p.name for p in signature if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}
    parameters = named | _default_parameters(found)
    facts = {
        "name": found.__name__,
        "of_task": is_of_task(found, task),
        "parameters": sorted(parameters),
        "open": any(p.kind == p.VAR_KEYWORD for p in signature),
        "threads": own_threads(found) and "n_jobs" in parameters,
    }
    if stamp and CLASS_CACHE.parent.is_dir():
        kept = {k: v for k, v in cache.items() if not k.startswith(f"{target} {task} ")}
        _write_cache({**kept, key: facts})
    return facts


def own_threads(estimator_class: type) -> bool:
    """Whether the class runs its own thread pool (n_jobs set per fit, models.build), not
    scikit-learn's joblib, which follows the stage's context (core/compute.py)."""
    return not estimator_class.__module__.startswith("sklearn.")


def _default_parameters(estimator_class: type) -> set[str]:
    """The parameters a default instance reports (XGBoost's are all **kwargs)."""
    try:
        return set(estimator_class().get_params(deep=False))
    except Exception:  # noqa: BLE001 (anything a foreign class raises)
        return set()


def _package_stamp(target: str) -> str | None:
    """Path, size and change time of the __init__.py of `target`'s top-level package, and
    the Python version; None for a module of this project (edited at will) or none found."""
    try:
        spec = importlib.util.find_spec(target.split(".")[0])
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.origin or not os.path.isfile(spec.origin):
        return None
    origin = os.path.abspath(spec.origin)
    if project_code(origin):
        return None
    stat = os.stat(origin)
    return f"{origin}:{stat.st_size}:{stat.st_mtime_ns}:{sys.version_info[:3]}"


def _read_cache() -> dict[str, Any]:
    try:
        cached = json.loads(CLASS_CACHE.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return cached if isinstance(cached, dict) else {}


def _write_cache(cache: dict[str, Any]) -> None:
    """Atomically (temp file, rename); a project that cannot be written just checks again."""
    temporary = CLASS_CACHE.with_name(f".{CLASS_CACHE.name}.{os.getpid()}.tmp")
    try:
        temporary.write_text(json.dumps(cache, indent=1, sort_keys=True), encoding="utf-8")
        os.replace(temporary, CLASS_CACHE)
    except OSError:
        temporary.unlink(missing_ok=True)
