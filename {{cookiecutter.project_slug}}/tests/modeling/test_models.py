"""models: conf/model/ files build estimators; bad hyperparameters and metrics fail early."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import numpy as np
import pytest
import yaml
from sklearn.base import is_classifier, is_regressor
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import get_scorer, get_scorer_names

from {{ cookiecutter.package_name }}.core import model_catalog, scorers
from {{ cookiecutter.package_name }}.core.errors import ConfigError
from {{ cookiecutter.package_name }}.core.params import AUTO
from {{ cookiecutter.package_name }}.modeling import business, models

MODEL_FILES = sorted((Path(__file__).resolve().parents[2] / "conf" / "model").glob("*.yaml"))


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


@pytest.mark.parametrize("model", model_catalog.MODELS, ids=lambda m: f"{m.task}-{m.name}")
def test_catalog_parameters_are_the_estimators_own(model):
    """params.py checks conf/model/ keys against these lists without scikit-learn."""
    estimator_class = model_catalog.estimator_class(model)
    assert model.parameters == set(inspect.signature(estimator_class).parameters)


def test_metric_lists_are_every_scorer_of_each_task():
    """scikit-learn's scorers, each for one task (a new one in scikit-learn fails here until
    scorers.py lists it); the project's business_value for both."""
    own = {scorers.BUSINESS}
    names = set(get_scorer_names())
    classification = {
        n
        for n in names
        if n.split("_")[0] in {"accuracy", "balanced", "f1", "precision", "recall", "jaccard"}
        or n.startswith(("roc_auc", "average_precision", "top_k", "matthews", "d2_log_loss"))
        or n in {"neg_log_loss", "neg_brier_score", "d2_brier_score"}
    }
    regression = {
        n
        for n in names
        if (n.startswith("neg_") and ("error" in n or "deviance" in n))
        or n in {"r2", "explained_variance", "d2_absolute_error_score"}
    }
    assert scorers.METRICS["classification"] == classification | own
    assert scorers.METRICS["regression"] == regression | own
    assert scorers.BUSINESS == business.NAME


TARGETS = {
    "3 classes": ["Adelie", "Chinstrap", "Gentoo"],
    "2 named classes": ["no", "yes"],
    "0/1": [0, 1],
}


@pytest.fixture(scope="module")
def fitted() -> dict:
    """A fitted classifier and its rows for each kind of target."""
    X, codes = make_classification(
        120, 4, n_informative=3, n_redundant=0, n_classes=3, random_state=0
    )
    fits = {}
    for kind, labels in TARGETS.items():
        y = np.array(labels)[codes % len(labels)]
        fits[kind] = (LogisticRegression().fit(X, y), X, y)
    return fits


@pytest.mark.parametrize("metric", sorted(scorers.METRICS["classification"] - {"business_value"}))
def test_the_scorers_refused_for_a_target_are_those_scikit_learn_cannot_score(fitted, metric):
    """scorers.py's rules against scikit-learn itself: a scorer is refused for a target
    exactly when scoring it raises."""
    for kind, (model, X, y) in fitted.items():
        problem = scorers.task_problem("classification", metric) or scorers.classes_problem(
            metric, np.unique(y)
        )
        try:
            get_scorer(metric)(model, X, y)
            raised = None
        except ValueError as exc:
            raised = exc
        assert (problem is not None) == (raised is not None), (kind, problem, raised)


@pytest.mark.parametrize(
    ("task", "metric", "classes", "message"),
    [
        (
            "classification",
            "r2",
            None,
            "metric 'r2' is not a scikit-learn scorer for classification",
        ),
        ("regression", "accuracy", None, "'accuracy' is not a scikit-learn scorer for regression"),
        ("classification", "adjusted_rand_score", None, "not a scikit-learn scorer for"),
        (
            "classification",
            "f1",
            ["a", "b", "c"],
            r"needs a binary target but the target has 3 classes: use f1_macro, f1_weighted, "
            "f1_micro",
        ),
        (
            "classification",
            "roc_auc",
            [0, 1, 2],
            "3 classes: use roc_auc_ovr, roc_auc_ovr_weighted",
        ),
        ("classification", "f1_samples", None, "needs a multilabel target"),
        ("classification", "f1", ["no", "yes"], "scores the class 1 as the positive one but"),
        ("classification", "neg_brier_score", ["no", "yes"], "relabel them 0/1"),
    ],
)
def test_check_metric_refuses(task, metric, classes, message):
    with pytest.raises(ConfigError, match=message):
        models.check_metric(task, metric, classes)


@pytest.mark.parametrize(
    ("task", "metric", "classes"),
    [
        ("classification", "f1", [0, 1]),
        ("classification", "roc_auc", ["no", "yes"]),
        ("classification", "f1_macro", ["a", "b", "c"]),
        ("classification", "neg_log_loss", ["a", "b", "c"]),
        ("regression", "neg_root_mean_squared_error", None),
    ],
)
def test_check_metric_accepts(task, metric, classes):
    assert models.check_metric(task, metric, classes) == metric


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
