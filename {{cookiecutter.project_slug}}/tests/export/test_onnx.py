"""ONNX export: every model of conf/model/ converts as its `_onnx_` facts say, agrees with
scikit-learn within onnx_convert.TOLERANCE, converts to the same bytes twice; left out, the
facts are found; a disagreement fails, or skips ONNX when the model file allows it."""

from __future__ import annotations

import numpy as np
import pytest

from {{ cookiecutter.package_name }}.core.errors import DataError
from {{ cookiecutter.package_name }}.export import onnx_convert
from {{ cookiecutter.package_name }}.tables import schema

from conftest import FAMILIES, LINEAR


@pytest.mark.parametrize(
    ("task", "config"), FAMILIES, ids=[f"{t}-{c['name']}" for t, c in FAMILIES]
)
def test_every_model_family_converts_with_parity(fitted, toy_roles, task, config):
    model, _, test = fitted(task, config)
    rows = schema.model_frame(test, toy_roles)
    float32 = config["_onnx_"]["float32"]
    onnx_bytes = onnx_convert.convert(model, toy_roles, float32)
    result = onnx_convert.parity(model, onnx_bytes, rows, toy_roles)
    assert result["max_abs_diff"] <= result["allowed_abs_diff"]
    assert result["labels_differ"] == 0
    assert onnx_convert.convert(model, toy_roles, float32) == onnx_bytes


@pytest.mark.parametrize(
    ("task", "config"), FAMILIES, ids=[f"{t}-{c['name']}" for t, c in FAMILIES]
)
def test_facts_left_out_are_found_double_first(fitted, toy_roles, task, config):
    """A model file without `_onnx_`: double if it agrees (linear models), else float32."""
    model, _, test = fitted(task, config)
    rows = schema.model_frame(test, toy_roles)
    try:
        onnx_bytes, result, float32 = onnx_convert.convert_checked(model, rows, toy_roles, {})
    except onnx_convert.ConverterMissing as exc:  # neither graph agrees: ONNX is skipped
        assert str(exc).startswith("float64: ") and "; float32: " in str(exc)
        return
    assert result["labels_differ"] == 0
    assert onnx_bytes == onnx_convert.convert(model, toy_roles, float32)
    if not config["_onnx_"]["float32"]:
        assert float32 is False, "a model computing in double is fed double"


def test_a_disagreement_fails_export_or_skips_onnx_as_the_model_file_says(
    fitted, toy_roles, monkeypatch
):
    model, _, test = fitted("regression")
    rows = schema.model_frame(test, toy_roles)

    def disagree(*args):
        raise DataError("ONNX model disagrees with scikit-learn")

    monkeypatch.setattr(onnx_convert, "parity", disagree)
    with pytest.raises(DataError, match="disagrees"):
        onnx_convert.convert_checked(model, rows, toy_roles, {"parity_may_fail": False})
    with pytest.raises(onnx_convert.ConverterMissing) as skipped:
        onnx_convert.convert_checked(model, rows, toy_roles, {"float32": True})
    assert str(skipped.value) == "float32: ONNX model disagrees with scikit-learn"
    with pytest.raises(onnx_convert.ConverterMissing) as skipped:
        onnx_convert.convert_checked(model, rows, toy_roles, {})
    assert str(skipped.value) == (
        "float64: ONNX model disagrees with scikit-learn; "
        "float32: ONNX model disagrees with scikit-learn"
    )


def test_missing_and_unseen_values_match_scikit_learn(fitted, toy_roles):
    model, _, test = fitted("classification")
    rows = schema.model_frame(test, toy_roles).head(4).copy()
    rows.loc[rows.index[0], "x2"] = np.nan
    rows.loc[rows.index[1], "color"] = np.nan
    rows.loc[rows.index[2], "color"] = "ultraviolet"
    onnx_bytes = onnx_convert.convert(model, toy_roles, False)
    outputs = onnx_convert.run(onnx_bytes, rows, toy_roles)
    np.testing.assert_allclose(outputs["probabilities"], model.predict_proba(rows), atol=1e-9)


def test_parity_fails_for_a_different_model(fitted, toy_roles):
    model, _, test = fitted("regression")
    other, _, _ = fitted("regression", {**LINEAR["regression"], "alpha": 1e4})
    rows = schema.model_frame(test, toy_roles)
    with pytest.raises(DataError, match="ONNX model disagrees with scikit-learn"):
        onnx_convert.parity(model, onnx_convert.convert(other, toy_roles, False), rows, toy_roles)


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
    config = LINEAR[task]
    params = make_params({"task": task})
    model = train.train(
        train_rows, roles, transformer, config=config, settings=train.Settings.of(params)
    )
    X = schema.model_frame(test, roles)
    X.loc[X.index[0], "shop"] = "never-seen"
    X.loc[X.index[1], "shop"] = np.nan
    result = onnx_convert.parity(model, onnx_convert.convert(model, roles, False), X, roles)
    assert result["max_abs_diff"] <= result["allowed_abs_diff"]
    assert result["labels_differ"] == 0
