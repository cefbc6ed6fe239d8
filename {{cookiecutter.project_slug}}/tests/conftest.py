"""Shared fixtures: the project, its params and task, small models and tiny data sets.

Tests run against src/ of this checkout, installed or not (`pytest` from the project root).
Unit tests build their data in memory; only tests/test_pipeline.py reads data/raw/.
"""

from __future__ import annotations

import copy
import subprocess
import sys
import sysconfig
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

PROJECT = Path(__file__).resolve().parents[1]
if str(PROJECT / "src") not in sys.path:
    sys.path.insert(0, str(PROJECT / "src"))

# Hyperparameters that keep tree ensembles fast in tests.
SMALL = {
    "random_forest": {"n_estimators": 5},
    "hist_gradient_boosting": {"max_iter": 10},
    "lightgbm": {"n_estimators": 10},
    "xgboost": {"n_estimators": 10},
}
# A quick linear model per task, written as a conf/model/ file would be, for the tests that
# switch the task (make_params) or need any model that fits fast.
LINEAR = {
    "classification": {
        "_target_": "sklearn.linear_model.LogisticRegression",
        "name": "logistic_regression",
        "C": 1.0,
        "max_iter": 1000,
    },
    "regression": {"_target_": "sklearn.linear_model.Ridge", "name": "ridge", "alpha": 1.0},
}
# The bake's task and every model of its conf/model/ (auto aside: not a model but the
# choice of select's winner), made small: the tests that run every model (select, ONNX
# export, serving) take these. The template's tests bake each task.
TASK = yaml.safe_load((PROJECT / "params.yaml").read_text(encoding="utf-8"))["task"]
MODELS = {
    path.stem: {**config, **SMALL.get(path.stem, {})}
    for path in sorted((PROJECT / "conf" / "model").glob("*.yaml"))
    if (config := yaml.safe_load(path.read_text(encoding="utf-8")))["name"] != "auto"
}
FAMILIES = [(TASK, config) for config in MODELS.values()]


def plain_data(**changes) -> dict:
    """conf/data's settings for a table of plain columns (no id, time, group, drop, missing
    values or fetched source) with `changes`: DataParams(**plain_data(target=...))."""
    plain = {
        "source": "data/raw",
        "target": "y",
        "id_column": None,
        "time": None,
        "groups": [],
        "drop": [],
        "missing_values": [],
        "numeric": None,
        "categorical": None,
    }
#% if cookiecutter.remote_sources == "yes"
    plain["fetch"] = {}
#% endif
    return {**plain, **changes}


def venv_inside(project: Path) -> str:
    """A virtual environment at project/.venv, as the README installs, with this one's
    libraries linked into its site-packages; returns its python."""
    venv = project / ".venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", venv], check=True)
    site = next(venv.glob("lib/python*/site-packages"))
    for library in Path(sysconfig.get_paths()["purelib"]).iterdir():
        (site / library.name).symlink_to(library)
    return str(venv / "bin" / "python")


@pytest.fixture(scope="session")
def project() -> Path:
    return PROJECT


@pytest.fixture(scope="session")
def params_raw() -> dict:
    with open(PROJECT / "params.yaml", encoding="utf-8") as handle:
        return yaml.safe_load(handle)


@pytest.fixture(scope="session")
def task(params_raw: dict) -> str:
    """The task this project was baked for, as params.yaml says."""
    return params_raw["task"]


# business settings as conf/config.yaml ships them for each task. A bake's conf/ holds its
# own task's (tests/core/test_params.py checks they equal these); make_params takes these when a
# test switches the task.
# conf/config.yaml's `metric` for each task when the bake answers "default".
SHIPPED_METRIC = {"classification": "neg_log_loss", "regression": "neg_root_mean_squared_error"}
SHIPPED_BUSINESS = {
    "classification": {"value_matrix": {}, "correct_value": 1.0, "wrong_value": 0.0},
    "regression": {"cost_per_unit_error": 1.0},
}


@pytest.fixture(scope="session")
def conf(params_raw: dict):
    """params.yaml parsed: conf/'s settings, where a test needs a settings object as it is
    configured (params.py holds no defaults); its sections for the parts of the pipeline."""
    from {{ cookiecutter.package_name }}.core.params import parse

    return parse(params_raw)


@pytest.fixture(scope="session")
def configured(conf{% if cookiecutter.serving == "yes" %}, project: Path{% endif %}):
    """configured("preprocess.augment", enabled=True): that section of the configured
#% if cookiecutter.serving == "yes"
    settings (params.yaml, or service.yaml for serve and monitor), with the given settings
    changed and checked."""
    from {{ cookiecutter.package_name }}.core.params import load_service

    service = load_service(project / "service.yaml")

#% else
    settings (params.yaml), with the given settings changed and checked."""

#% endif
    def section(dotted: str, **changes):
        first, *rest = dotted.split(".")
#% if cookiecutter.serving == "yes"
        node = getattr(service if first in type(service).model_fields else conf, first)
#% else
        node = getattr(conf, first)
#% endif
        for key in rest:
            node = getattr(node, key)
        return type(node).model_validate({**node.model_dump(), **changes})

    return section


@pytest.fixture
def make_params(params_raw: dict):
    """params.yaml parsed, after setting dotted keys: make_params({"select.cv_folds": 3}).
    Setting `task` sets the business settings of that task too (SHIPPED_BUSINESS), and for
    the other task its default metric and its linear model (LINEAR)."""
    # Package imports live in fixtures: src/ joins sys.path only when this module runs.
    from {{ cookiecutter.package_name }}.core.params import parse

    def make(changes: dict | None = None):
        raw = copy.deepcopy(params_raw)
        if "task" in (changes or {}):
            raw["business"] = copy.deepcopy(SHIPPED_BUSINESS[changes["task"]])
        if (changes or {}).get("task", raw["task"]) != raw["task"]:
            linear = LINEAR[changes["task"]]
            raw["metric"] = SHIPPED_METRIC[changes["task"]]
            raw["model"] = dict(linear)
            raw["select"]["candidates"] = {linear["name"]: dict(linear)}
        for dotted, value in (changes or {}).items():
            *parents, leaf = dotted.split(".")
            node = raw
            for key in parents:
                node = node[key]
            node[leaf] = value
        return parse(raw)

    return make


@pytest.fixture(scope="session")
def task_models(task: str) -> dict[str, dict]:
    """Every model of conf/model/ (auto aside), made small enough to fit quickly."""
    return copy.deepcopy(MODELS)


@pytest.fixture(scope="session")
def simple_model() -> dict[str, dict]:
    """A quick linear model per task, whatever the bake."""
    return copy.deepcopy(LINEAR)


def _toy(task: str, n: int = 60, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x1 = rng.normal(size=n)
    x2 = rng.normal(size=n)
    if task == "classification":
        target = np.where(x1 < -0.4, "low", np.where(x1 > 0.4, "high", "mid"))
    else:
        target = 3.0 * x1 - x2 + rng.normal(scale=0.1, size=n)
    df = pd.DataFrame(
        {
            "id": [f"r{i:03d}" for i in range(n)],
            "batch": ["b1"] * n,
            "x1": x1,
            "x2": x2,
            "color": rng.choice(["red", "green", "blue"], size=n),
            "target": target,
        }
    )
    df.loc[3, "x2"] = np.nan
    df.loc[5, "color"] = None
    return df


@pytest.fixture
def toy():
    """toy(task): 60 labelled rows with id, batch, two numeric and one text feature."""
    return _toy


@pytest.fixture(scope="session")
def toy_roles():
    from {{ cookiecutter.package_name }}.tables.schema import Roles

    return Roles(target="target", numeric=["x1", "x2"], categorical=["color"], time=None, groups=[])


@pytest.fixture
def fitted(toy, toy_roles, simple_model, make_params, configured):
    """fitted(task): (pipeline, train rows, test rows) from train.train on toy data."""
    from {{ cookiecutter.package_name }}.stages import preprocess, train

    def fit(task: str, config: dict | None = None):
        rows = toy(task)
        train_rows, test_rows, transformer, _ = preprocess.preprocess(
            rows, toy_roles, rules=configured("preprocess"), seed=0, task=task
        )
        params = make_params({"task": task})
        config = config or simple_model[task]
        settings = train.Settings.of(params)
        pipeline = train.train(train_rows, toy_roles, transformer, config=config, settings=settings)
        return pipeline, train_rows, test_rows

    return fit
