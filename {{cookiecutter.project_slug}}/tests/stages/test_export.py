"""export: the saved model must round-trip exactly; its metadata says what it is."""

from __future__ import annotations

import pytest
import sklearn

from {{ cookiecutter.package_name }} import __version__
from {{ cookiecutter.package_name }}.core import io
from {{ cookiecutter.package_name }}.core.errors import DataError
from {{ cookiecutter.package_name }}.stages import export
from {{ cookiecutter.package_name }}.tables import schema

TASKS = ["classification", "regression"]
# Configs that predict differently from conftest's simple_model on the toy data.
OTHER = {
    "classification": {"name": "logistic_regression", "C": 1e-4},
    "regression": {"name": "ridge", "alpha": 1e4},
}


@pytest.mark.parametrize("task", TASKS)
def test_check_round_trip_accepts_a_faithful_file(fitted, toy_roles, tmp_path, task):
    model, _, test = fitted(task)
    path = tmp_path / "model.skops"
    io.save_model(path, model)
    export.check_round_trip(model, path, schema.model_frame(test, toy_roles))


@pytest.mark.parametrize("task", TASKS)
def test_check_round_trip_catches_a_different_model(fitted, toy_roles, tmp_path, task):
    model, _, test = fitted(task)
    other, _, _ = fitted(task, OTHER[task])
    rows = schema.model_frame(test, toy_roles)
    assert (other.predict(rows) != model.predict(rows)).any()
    path = tmp_path / "model.skops"
    io.save_model(path, other)
    with pytest.raises(DataError, match="predicts differently after a save/load round trip"):
        export.check_round_trip(model, path, rows)


def test_metadata(make_params):
    params = make_params({"seed": 7})
    config = {"name": "random_forest", "n_estimators": 10, "max_depth": None}
    hashes = {"train_md5": "abc"}
    meta = export.metadata(
        config, params.task, params.metric, params.seed, {"r2": 0.5}, {"task": params.task}, hashes
    )
    assert meta["model"] == "random_forest"
    assert meta["hyperparameters"] == {"n_estimators": 10, "max_depth": None}
    assert (meta["task"], meta["metric"], meta["seed"]) == (params.task, params.metric, 7)
    assert meta["metrics"] == {"r2": 0.5}
    assert meta["data"] == hashes
    assert meta["package_version"] == __version__
    assert meta["scikit_learn_version"] == sklearn.__version__
    assert meta["format"] == "skops"
