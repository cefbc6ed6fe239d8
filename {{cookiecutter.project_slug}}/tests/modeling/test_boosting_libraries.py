"""LightGBM and XGBoost (conf/model/lightgbm.yaml, xgboost.yaml): their skops files hold
only the reviewed types and load back to the same predictions, a rerun writes the same
bytes, the seed and the stage's cores reach their own thread pools, and XGBoost takes
the target's own class labels. ONNX parity and serving: tests/export, tests/serving,
which take every model file."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest
import skops.io as sio

from {{ cookiecutter.package_name }}.core import io, model_catalog
from {{ cookiecutter.package_name }}.modeling import models
from {{ cookiecutter.package_name }}.tables import schema

from conftest import MODELS, TASK

LIBRARIES = ["lightgbm", "xgboost"]
# What skops may build inside a Booster: data only (text, numbers, lists, dicts, bytes).
# No object is built by calling a constructor or a function named in the file.
DATA_LOADERS = {"JsonNode", "ListNode", "DictNode", "DefaultDictNode", "BytearrayNode", "TypeNode"}


def _saved(fitted, name: str, path) -> tuple:
    """(pipeline fitted on the toy rows with model `name`, its test rows), saved at path."""
    model, _, test = fitted(TASK, MODELS[name])
    models.save(path, model, MODELS[name])
    return model, test


def _answers(model, rows) -> list[np.ndarray]:
    found = [model.predict(rows)]
    if TASK == "classification":
        found.append(model.predict_proba(rows))
    return found


def _nodes(node, inside: str = ""):
    """(loader, class, the class of the Booster holding it or "") of every schema node."""
    if isinstance(node, dict):
        if "__loader__" in node:
            yield node["__loader__"], node.get("__class__"), inside
        here = "Booster" if node.get("__class__") == "Booster" else inside
        for value in node.values():
            yield from _nodes(value, here)
    elif isinstance(node, list):
        for value in node:
            yield from _nodes(value, inside)


@pytest.mark.parametrize("name", LIBRARIES)
def test_the_skops_file_needs_the_reviewed_types_and_predicts_the_same(
    fitted, toy_roles, name, tmp_path
):
    model, test = _saved(fitted, name, tmp_path / "model.skops")
    untrusted = set(sio.get_untrusted_types(file=tmp_path / "model.skops"))
    assert untrusted - io.TRUSTED_TYPES == model_catalog.trusted_types(MODELS[name])
    loaded = models.load(tmp_path / "model.skops", MODELS[name])
    rows = schema.model_frame(test, toy_roles)
    for before, after in zip(_answers(model, rows), _answers(loaded, rows), strict=True):
        np.testing.assert_array_equal(after, before)


@pytest.mark.parametrize("name", LIBRARIES)
def test_the_booster_comes_back_from_its_own_model_data_not_from_code(fitted, name, tmp_path):
    """LightGBM's Booster keeps its model as text, XGBoost's as bytes: skops hands them to
    the library's own loader (Booster.__setstate__), and nothing inside is an object
    built by a call the file names."""
    _saved(fitted, name, tmp_path / "model.skops")
    with zipfile.ZipFile(tmp_path / "model.skops") as archive:
        nodes = list(_nodes(json.loads(archive.read("schema.json"))))
    assert ("ObjectNode", "Booster", "") in nodes
    inside = {loader for loader, _, booster in nodes if booster}
    assert inside <= DATA_LOADERS, inside - DATA_LOADERS
    held = {"lightgbm": "JsonNode", "xgboost": "BytearrayNode"}[name]
    assert held in inside


@pytest.mark.parametrize("name", LIBRARIES)
def test_a_rerun_writes_the_same_bytes(fitted, name, tmp_path):
    _saved(fitted, name, tmp_path / "one.skops")
    _saved(fitted, name, tmp_path / "two.skops")
    assert (tmp_path / "one.skops").read_bytes() == (tmp_path / "two.skops").read_bytes()


@pytest.mark.parametrize("name", LIBRARIES)
def test_the_seed_and_the_stage_cores_reach_the_library(name):
    """Their thread pools are their own (not joblib's or threadpoolctl's): n_jobs is the
    cores the stage may use, never the model file's."""
    estimator = models.build(TASK, MODELS[name], seed=7, threads=3)
    assert (estimator.random_state, estimator.n_jobs) == (7, 3)
    assert models.build(TASK, MODELS[name], seed=7).n_jobs == 1, "select's folds: one core each"
    problem = model_catalog.class_problem(TASK, "model", {**MODELS[name], "n_jobs": 4})
    assert problem == "model.n_jobs is not set here: compute.n_jobs sets it (-S compute.n_jobs=...)"
