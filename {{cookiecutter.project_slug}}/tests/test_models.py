"""models: conf/model/ files build estimators; bad hyperparameters and metrics fail early."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from sklearn.base import is_classifier, is_regressor
from sklearn.metrics import get_scorer_names

from {{ cookiecutter.package_name }} import model_catalog, models
from {{ cookiecutter.package_name }}.errors import ConfigError
from {{ cookiecutter.package_name }}.params import AUTO

MODEL_FILES = sorted((Path(__file__).resolve().parents[1] / "conf" / "model").glob("*.yaml"))


def test_conf_has_a_file_for_every_model_of_the_task_and_auto(task):
    assert sorted(p.stem for p in MODEL_FILES) == sorted([AUTO, *model_catalog.names(task)])
    assert list(models.REGISTRY[task]) == model_catalog.names(task)


def test_select_cross_validates_every_model_of_the_task_and_its_winner_is_the_default(
    task, params_raw
):
    """conf/config.yaml lists the candidates by hand (Hydra reads files): the catalog's."""
    assert sorted(params_raw["select"]["candidates"]) == sorted(model_catalog.names(task))
    assert params_raw["model"] == {"name": AUTO}


def test_the_models_table_is_the_catalog(task, project):
    table = (project / "docs" / "pipeline.md").read_text()
    rows = re.findall(r"^\| `(\w+)` \| `(sklearn[\w.]+)` \|$", table, re.M)
    assert rows == [(m.name, m.estimator) for m in model_catalog.MODELS if m.task == task]


@pytest.mark.parametrize("model", model_catalog.MODELS, ids=lambda m: f"{m.task}-{m.name}")
def test_every_catalog_model_is_an_estimator_of_its_task(model):
    estimator = model_catalog.estimator_class(model)()
    assert (is_classifier if model.task == "classification" else is_regressor)(estimator)


@pytest.mark.parametrize("path", [p for p in MODEL_FILES if p.stem != AUTO], ids=lambda p: p.stem)
def test_build_every_model_of_the_task(task, path):
    config = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert config["name"] == path.stem
    estimator = models.build(task, config, seed=11)
    assert type(estimator) is models.REGISTRY[task][path.stem]
    set_values = estimator.get_params()
    assert {k: set_values[k] for k in config if k != "name"} == {
        k: v for k, v in config.items() if k != "name"
    }
    if "random_state" in set_values:
        assert set_values["random_state"] == 11


def test_a_whole_number_max_samples_caps_rows_per_tree(task):
    config = {"name": "random_forest", "n_estimators": 5, "max_samples": 1000}
    assert models.build(task, config, 0, n_rows=4000).max_samples == 0.25
    assert models.build(task, config, 0, n_rows=1000).max_samples is None
    assert models.build(task, config, 0, n_rows=50).max_samples is None
    assert models.build(task, {**config, "max_samples": 0.5}, 0, n_rows=50).max_samples == 0.5


def test_build_does_not_change_the_config(task):
    config = {"name": "random_forest", "n_estimators": 5}
    models.build(task, config, seed=0)
    assert config == {"name": "random_forest", "n_estimators": 5}


def test_build_names_an_unknown_hyperparameter(task):
    with pytest.raises(
        ConfigError, match="model random_forest: unknown hyperparameter\\(s\\) n_estimator, trees;"
    ):
        models.build(task, {"name": "random_forest", "n_estimator": 5, "trees": 1}, seed=0)


@pytest.mark.parametrize(
    "config",
    [
        {"name": "random_forest", "n_estimators": -1},
        {"name": "random_forest", "max_features": "most"},
        {"name": "hist_gradient_boosting", "learning_rate": -0.1},
    ],
)
def test_build_refuses_a_bad_value(task, config):
    bad = next(k for k in config if k != "name")
    with pytest.raises(ConfigError, match=f"model {config['name']}: .*{bad}"):
        models.build(task, config, seed=0)


def test_build_names_an_unknown_model(task):
    with pytest.raises(ConfigError, match=f"model 'svm' is not a {task} model here: choose one of"):
        models.build(task, {"name": "svm"}, seed=0)


def test_metric_lists_are_scorers_of_one_task():
    """scikit-learn's scorers, each for one task; the project's business_value for both."""
    own = {"business_value"}
    assert set(get_scorer_names()) >= models.CLASSIFICATION_METRICS - own
    assert set(get_scorer_names()) >= models.REGRESSION_METRICS - own
    assert own == models.CLASSIFICATION_METRICS & models.REGRESSION_METRICS
    assert {"neg_log_loss", "accuracy", "f1_macro", "roc_auc_ovr"} <= models.CLASSIFICATION_METRICS
    assert {
        "neg_root_mean_squared_error",
        "r2",
        "neg_mean_absolute_error",
    } <= models.REGRESSION_METRICS


@pytest.mark.parametrize(
    ("task", "metric", "n_classes", "message"),
    [
        (
            "classification",
            "r2",
            None,
            "metric 'r2' is not a scikit-learn scorer for classification",
        ),
        (
            "regression",
            "accuracy",
            None,
            "metric 'accuracy' is not a scikit-learn scorer for regression",
        ),
        (
            "classification",
            "adjusted_rand_score",
            None,
            "not a scikit-learn scorer for classification",
        ),
        (
            "classification",
            "f1",
            3,
            "needs a binary target but the target has 3 classes: use f1_macro",
        ),
        ("classification", "roc_auc", 3, "3 classes: use roc_auc_ovr"),
    ],
)
def test_check_metric_refuses(task, metric, n_classes, message):
    with pytest.raises(ConfigError, match=message):
        models.check_metric(task, metric, n_classes)


@pytest.mark.parametrize(
    ("task", "metric", "n_classes"),
    [
        ("classification", "f1", 2),
        ("classification", "f1_macro", 3),
        ("classification", "neg_log_loss", 3),
        ("regression", "neg_root_mean_squared_error", None),
    ],
)
def test_check_metric_accepts(task, metric, n_classes):
    assert models.check_metric(task, metric, n_classes) == metric


def test_chosen_config_is_select_winner_unless_a_model_is_named(make_params):
    chooser = make_params()
    assert chooser.model == {"name": AUTO}, "auto is the default"
    winner = list(chooser.select.candidates)[-1]
    assert models.chosen_config(chooser, {"winner": winner}) == chooser.select.candidates[winner]
    with pytest.raises(ConfigError, match="reports/select.json is missing: run select"):
        models.chosen_config(chooser, None)
    with pytest.raises(ConfigError, match="winner 'gone' is no longer a candidate"):
        models.chosen_config(chooser, {"winner": "gone"})
    named = make_params({"model": {"name": "random_forest", "n_estimators": 7}})
    assert models.chosen_config(named, {"winner": winner}) == dict(named.model)
    assert models.chosen_config(named, None) == dict(named.model), "select.json not needed"
