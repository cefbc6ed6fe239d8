"""ONNX export: every model family of both tasks converts, agrees with scikit-learn within
onnx_convert.TOLERANCE, converts to the same bytes twice, and a disagreement fails."""

from __future__ import annotations

import numpy as np
import pytest

from {{ cookiecutter.package_name }}.core.errors import DataError
from {{ cookiecutter.package_name }}.export import onnx_convert
from {{ cookiecutter.package_name }}.tables import schema

from conftest import FAMILIES


@pytest.mark.parametrize(
    ("task", "config"), FAMILIES, ids=[f"{t}-{c['name']}" for t, c in FAMILIES]
)
def test_every_model_family_converts_with_parity(fitted, toy_roles, task, config):
    model, _, test = fitted(task, config)
    rows = schema.model_frame(test, toy_roles)
    onnx_bytes = onnx_convert.convert(model, toy_roles)
    result = onnx_convert.parity(model, onnx_bytes, rows, toy_roles)
    assert result["max_abs_diff"] <= result["allowed_abs_diff"]
    assert result["labels_differ"] == 0
    assert onnx_convert.convert(model, toy_roles) == onnx_bytes


def test_missing_and_unseen_values_match_scikit_learn(fitted, toy_roles):
    model, _, test = fitted("classification")
    rows = schema.model_frame(test, toy_roles).head(4).copy()
    rows.loc[rows.index[0], "x2"] = np.nan
    rows.loc[rows.index[1], "color"] = np.nan
    rows.loc[rows.index[2], "color"] = "ultraviolet"
    onnx_bytes = onnx_convert.convert(model, toy_roles)
    outputs = onnx_convert.run(onnx_bytes, rows, toy_roles)
    np.testing.assert_allclose(outputs["probabilities"], model.predict_proba(rows), atol=1e-9)


def test_parity_fails_for_a_different_model(fitted, toy_roles):
    model, _, test = fitted("regression")
    other, _, _ = fitted("regression", {"name": "ridge", "alpha": 1e4})
    rows = schema.model_frame(test, toy_roles)
    with pytest.raises(DataError, match="ONNX model disagrees with scikit-learn"):
        onnx_convert.parity(model, onnx_convert.convert(other, toy_roles), rows, toy_roles)


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_target_encoded_columns_convert_for_every_target_type(toy, make_params, task, configured):
    """skl2onnx alone refuses a multiclass target encoder; onnx_target_encoder covers it,
    unseen and missing values included."""
    from {{ cookiecutter.package_name }}.stages import preprocess, train

    roles = schema.Roles("target", ["x1", "x2"], ["color", "shop"], None, [])
    rows = toy(task, n=300, seed=2)
    rows["shop"] = [f"s{v:02d}" for v in np.random.default_rng(0).integers(0, 40, len(rows))]
    train_rows, test, transformer, report = preprocess.preprocess(
        rows, roles, rules=configured("preprocess"), seed=0, task=task
    )
    assert report["target_encoded"] == 1
    config = FAMILIES[0][1] if task == "classification" else FAMILIES[3][1]
    params = make_params({"task": task})
    model = train.train(
        train_rows, roles, transformer, config=config, settings=train.Settings.of(params)
    )
    X = schema.model_frame(test, roles)
    X.loc[X.index[0], "shop"] = "never-seen"
    X.loc[X.index[1], "shop"] = np.nan
    result = onnx_convert.parity(model, onnx_convert.convert(model, roles), X, roles)
    assert result["max_abs_diff"] <= result["allowed_abs_diff"]
    assert result["labels_differ"] == 0
