"""models: conf/model/ files build estimators; bad hyperparameters and metrics fail early."""

from __future__ import annotations

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
from {{ cookiecutter.package_name }}.core.errors import ConfigError, DataError
from {{ cookiecutter.package_name }}.core.params import AUTO
from {{ cookiecutter.package_name }}.modeling import business, models

from conftest import LINEAR, MODELS

CONF_MODEL = Path(__file__).resolve().parents[2] / "conf" / "model"
MODEL_FILES = sorted(CONF_MODEL.glob("*.yaml"))
OTHER_TASK = {"classification": "regression", "regression": "classification"}


@pytest.mark.parametrize("path", MODEL_FILES, ids=lambda p: p.stem)
def test_every_model_file_is_named_after_itself(path):
    """params.yaml keeps `name`, not the file: the two must agree."""
    assert model_catalog.read(path.stem, CONF_MODEL)["name"] == path.stem


@pytest.mark.parametrize("path", [p for p in MODEL_FILES if p.stem != AUTO], ids=lambda p: p.stem)
def test_every_model_file_names_an_estimator_of_the_task_and_its_own_parameters(task, path):
    config = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert model_catalog.shape_problem("model", config) is None
    assert model_catalog.class_problem(task, "model", config) is None
    estimator_class = model_catalog.estimator_class(config)
    assert (is_classifier if task == "classification" else is_regressor)(estimator_class())


def test_select_cross_validates_model_files_and_its_winner_is_the_default(params_raw):
    """conf/config.yaml lists the candidates by hand, one line each, each a model file (a
    model file need not be one: `-S model=<name>` trains it all the same)."""
    candidates = params_raw["select"]["candidates"]
    assert candidates
    assert all(
        config["_target_"] == MODELS[name]["_target_"] for name, config in candidates.items()
    )
    assert params_raw["model"] == {"name": AUTO}


def test_the_models_table_says_what_the_model_files_hold(project):
    table = (project / "docs" / "pipeline.md").read_text()
    rows = re.findall(r"^\| `(\w+)` \| `([\w.]+)` \|$", table, re.M)
    assert {name for name, _ in rows} == set(MODELS)
    assert all(MODELS[name]["_target_"] == target for name, target in rows)


def test_a_model_file_key_that_is_no_fact_is_refused_with_the_closest():
    config = {**LINEAR["classification"], "_onxx_": {"float32": True}}
    assert model_catalog.shape_problem("model", config) == (
        "model._onxx_ is not a model file key: did you mean _onnx_? they are _target_, "
        "_onnx_, _skops_trusted_"
    )
    bad_facts = {**LINEAR["classification"], "_onnx_": {"float32": "yes"}}
    assert "model._onnx_ is {'float32': 'yes'}" in model_catalog.shape_problem("model", bad_facts)
    no_target = {"name": "svm", "C": 1.0}
    assert model_catalog.shape_problem("model", no_target) == (
        "model has no _target_: add `_target_: <module.Class>` (the estimator) to "
        "conf/model/svm.yaml"
    )


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("sklearn.svm.SVX", "sklearn.svm has no class SVX (did you mean sklearn.svm.SV"),
        ("no_such_package.Model", "module 'no_such_package' does not import"),
    ],
)
def test_a_target_that_does_not_import_is_refused_in_one_line(task, target, message):
    problem = model_catalog.class_problem(task, "model", {"_target_": target, "name": "svm"})
    assert message in problem and problem.endswith("fix _target_ in conf/model/svm.yaml")
    assert "\n" not in problem


def test_a_target_of_the_other_task_is_refused(task):
    other = LINEAR[OTHER_TASK[task]]
    assert model_catalog.class_problem(task, "model", other) == (
        f"model._target_ {other['_target_']!r} is not a {task} estimator; fix _target_ in "
        f"conf/model/{other['name']}.yaml"
    )


def test_a_model_file_named_otherwise_than_its_file_is_refused(tmp_path):
    (tmp_path / "extra_trees.yaml").write_text("_target_: a.B\nname: extra_tree\n")
    with pytest.raises(ConfigError, match="name is 'extra_tree'; write `name: extra_trees`"):
        model_catalog.read("extra_trees", tmp_path)


@pytest.mark.parametrize("path", [p for p in MODEL_FILES if p.stem != AUTO], ids=lambda p: p.stem)
def test_build_every_model_of_the_task(task, path):
    config = yaml.safe_load(path.read_text(encoding="utf-8"))
    estimator = models.build(task, config, seed=11)
    assert type(estimator) is model_catalog.estimator_class(config)
    set_values = estimator.get_params()
    given = model_catalog.hyperparameters(config)
    assert {k: set_values[k] for k in given} == given
    if "random_state" in set_values:
        assert set_values["random_state"] == 11


def test_a_whole_number_max_samples_caps_rows_per_tree(task):
    config = {**MODELS["random_forest"], "max_samples": 1000}
    assert models.build(task, config, 0, n_rows=4000).max_samples == 0.25
    assert models.build(task, config, 0, n_rows=1000).max_samples is None
    assert models.build(task, config, 0, n_rows=50).max_samples is None
    assert models.build(task, {**config, "max_samples": 0.5}, 0, n_rows=50).max_samples == 0.5


def _wide_table(task: str, n_rows: int) -> tuple[np.ndarray, np.ndarray]:
    """60 float32 columns and two target-encoded categoricals (issue 21's wide shape), a
    noisy target that three of them carry: unbounded trees grow deep on it."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((n_rows, 62), dtype=np.float32)
    y = X[:, 0] + X[:, 1] * X[:, 2] + rng.normal(size=n_rows)
    return X, (y > 0).astype(int) if task == "classification" else y


def test_the_forest_draws_few_of_many_features_per_split_and_its_trees_stay_bounded(task):
    """On 62 features each split weighs sqrt(p) (classification) or p/3 (regression) of
    them, not all 62; trees stop at 16 levels (classification; unbounded they reach 26
    here) or at leaves of 5 rows and 20 levels (regression; unbounded: 2,547 nodes)."""
    X, y = _wide_table(task, 2000)
    forest = models.build(task, MODELS["random_forest"], 0, n_rows=len(X)).fit(X, y)
    per_split = {"classification": 7, "regression": 20}[task]
    assert {tree.max_features_ for tree in forest.estimators_} == {per_split}
    if task == "classification":
        assert max(tree.get_depth() for tree in forest.estimators_) == 16
    else:
        assert max(tree.get_depth() for tree in forest.estimators_) <= 20
        # Leaves of at least 5 of the 2,000 rows: at most 400 leaves, 799 nodes.
        assert max(tree.tree_.node_count for tree in forest.estimators_) <= 799


def test_forest_large_is_a_bigger_deeper_forest_that_still_stops():
    """conf/experiment/forest_large.yaml: more trees and more levels than the forest's own
    file, still a depth cap (its comment says what it costs)."""
    experiment = CONF_MODEL.parent / "experiment" / "forest_large.yaml"
    large = yaml.safe_load(experiment.read_text(encoding="utf-8"))["model"]
    forest = model_catalog.read("random_forest", CONF_MODEL)
    assert large["n_estimators"] > forest["n_estimators"]
    assert forest["max_depth"] < large["max_depth"] <= 32


def test_build_does_not_change_the_config(task):
    config = dict(MODELS["random_forest"])
    models.build(task, config, seed=0)
    assert config == MODELS["random_forest"]


def test_build_names_an_unknown_hyperparameter(task):
    config = {**MODELS["random_forest"], "n_estimator": 5, "trees": 1}
    with pytest.raises(
        ConfigError,
        match=r"^model random_forest.n_estimator is not a parameter of RandomForest\w+: did "
        "you mean n_estimators",
    ):
        models.build(task, config, seed=0)


@pytest.mark.parametrize(
    "changes",
    [
        ("random_forest", {"n_estimators": -1}),
        ("random_forest", {"max_features": "most"}),
        ("hist_gradient_boosting", {"learning_rate": -0.1}),
    ],
)
def test_build_refuses_a_bad_value(task, changes):
    name, values = changes
    bad = next(iter(values))
    with pytest.raises(ConfigError, match=f"model {name}: .*{bad}"):
        models.build(task, {**MODELS[name], **values}, seed=0)


def test_build_refuses_a_model_of_the_other_task(task):
    other = LINEAR[OTHER_TASK[task]]
    with pytest.raises(ConfigError, match=f"is not a {task} estimator; fix _target_ in"):
        models.build(task, other, seed=0)


def test_a_model_whose_file_does_not_trust_its_types_is_refused_before_it_is_written(
    task, tmp_path
):
    """A forest holds sklearn.tree._tree.Tree: without it under _skops_trusted_ the model
    is not written, and the one line names the type, the key and the file."""
    X, y = make_classification(60, 4, random_state=0)
    model = models.build(task, MODELS["random_forest"], seed=0).fit(X, y)
    untrusted = {k: v for k, v in MODELS["random_forest"].items() if k != "_skops_trusted_"}
    path = tmp_path / "trained.skops"
    with pytest.raises(DataError) as refused:
        models.save(path, model, untrusted)
    assert str(refused.value) == (
        f"{path} holds types outside the reviewed list: sklearn.tree._tree.Tree; review them "
        "and list them under _skops_trusted_ in conf/model/random_forest.yaml only if you "
        "trust them"
    )
    assert not path.exists()
    models.save(path, model, MODELS["random_forest"])
    with pytest.raises(DataError, match="sklearn.tree._tree.Tree; review them"):
        models.load(path, untrusted)
    assert type(models.load(path, MODELS["random_forest"])) is type(model)


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
    named = make_params({"model": {**MODELS["random_forest"], "n_estimators": 7}})
    assert models.chosen_config(named, {"winner": winner}) == dict(named.model)
    assert models.chosen_config(named, None) == dict(named.model), "select.json not needed"
