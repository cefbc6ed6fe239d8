"""export: the saved model must round-trip exactly; its metadata says what it is."""

from __future__ import annotations

import pytest
import sklearn

from {{ cookiecutter.package_name }} import __version__
from {{ cookiecutter.package_name }}.core import io
from {{ cookiecutter.package_name }}.core.errors import DataError
from {{ cookiecutter.package_name }}.export import model_card
from {{ cookiecutter.package_name }}.stages import export
from {{ cookiecutter.package_name }}.tables import schema

TASKS = ["classification", "regression"]
# Configs that predict differently from conftest's simple_model on the toy data.
OTHER = {"classification": {"C": 1e-4}, "regression": {"alpha": 1e4}}


@pytest.mark.parametrize("task", TASKS)
def test_check_round_trip_accepts_a_faithful_file(fitted, toy_roles, simple_model, tmp_path, task):
    model, _, test = fitted(task)
    path = tmp_path / "model.skops"
    io.save_model(path, model)
    export.check_round_trip(model, path, schema.model_frame(test, toy_roles), simple_model[task])


@pytest.mark.parametrize("task", TASKS)
def test_check_round_trip_catches_a_different_model(
    fitted, toy_roles, simple_model, tmp_path, task
):
    model, _, test = fitted(task)
    other, _, _ = fitted(task, {**simple_model[task], **OTHER[task]})
    rows = schema.model_frame(test, toy_roles)
    assert (other.predict(rows) != model.predict(rows)).any()
    path = tmp_path / "model.skops"
    io.save_model(path, other)
    with pytest.raises(DataError, match="predicts differently after a save/load round trip"):
        export.check_round_trip(model, path, rows, simple_model[task])


def test_metadata(make_params):
    params = make_params({"seed": 7})
    config = {
        "_target_": "sklearn.ensemble.RandomForestClassifier",
        "name": "random_forest",
        "n_estimators": 10,
        "max_depth": None,
        "_onnx_": {"float32": True},
        "_skops_trusted_": ["sklearn.tree._tree.Tree"],
    }
    hashes = {"train_md5": "abc"}
    settings = export.Settings.of(params)
    meta = export.metadata(
        {"r2": 0.5}, {"task": params.task}, hashes, config=config, settings=settings
    )
    assert meta["model"] == "random_forest"
    assert meta["hyperparameters"] == {"n_estimators": 10, "max_depth": None}, "no file facts"
    assert (meta["task"], meta["metric"], meta["seed"]) == (params.task, params.metric, 7)
    assert meta["metrics"] == {"r2": 0.5}
    assert meta["data"] == hashes
    assert meta["package_version"] == __version__
    assert meta["scikit_learn_version"] == sklearn.__version__
    assert meta["format"] == "skops"


SELECTION = {
    "winner": "hist_gradient_boosting",
    "metric": "neg_log_loss",
    "cv_score": -0.05,
    "candidates": {
        "hist_gradient_boosting": {"mean": -0.05, "std": 0.01, "rows": 900},
        "logistic_regression": {"mean": -0.2, "std": 0.02, "rows": 900},
    },
}


def test_the_card_says_when_select_ranked_another_model_first():
    """model.json records select's ranking; the card says how the model was chosen, and
    loudly when `-S model=<name>` trained another model than select's first."""
    auto = export.select_ranking(SELECTION, "auto")
    assert auto == {
        "first": "hist_gradient_boosting",
        "metric": "neg_log_loss",
        "cv_scores": {"hist_gradient_boosting": -0.05, "logistic_regression": -0.2},
        "chosen_by": "select",
    }
    assert model_card._chosen("hist_gradient_boosting", auto) == [
        "- Chosen by `select` (`model=auto`): first of 2 by cross-validated `neg_log_loss` -0.05."
    ]
    named = export.select_ranking(SELECTION, "logistic_regression")
    (line,) = model_card._chosen("logistic_regression", named)
    assert line.startswith(
        "- **Not select's first**: `select` ranked `hist_gradient_boosting` first "
        "(cross-validated `neg_log_loss` -0.05; this model -0.2). This one was chosen with "
        "`model=logistic_regression`; the default, `model=auto`, trains select's first."
    )
    also = export.select_ranking(SELECTION, "hist_gradient_boosting")
    assert model_card._chosen("hist_gradient_boosting", also) == [
        "- Chosen with `model=hist_gradient_boosting`; `select` ranked it first too "
        "(cross-validated `neg_log_loss` -0.05)."
    ]
    (outside,) = model_card._chosen("ridge", named)
    assert "this model not cross-validated" in outside
    assert export.select_ranking(None, "auto") is None and model_card._chosen("m", None) == []
