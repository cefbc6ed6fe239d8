"""evaluate: test metrics per task (always with the headline metric) and the plot files."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest

from {{ cookiecutter.package_name }}.core import io
from {{ cookiecutter.package_name }}.core.errors import ConfigError
from {{ cookiecutter.package_name }}.stages import evaluate
from {{ cookiecutter.package_name }}.tables import schema

CLASSIFICATION_KEYS = {
    "accuracy", "balanced_accuracy", "f1_macro", "log_loss", "roc_auc_ovr", "business_value"
}  # fmt: skip
REGRESSION_KEYS = {"rmse", "mae", "r2", "business_value"}


@pytest.fixture
def scoring(make_params):
    """scoring(task, metric): evaluate's settings of a project of that task, scored by
    `metric` (set here unchecked, so that evaluate's own check of it runs)."""
    return lambda task, metric: dataclasses.replace(
        evaluate.Settings.of(make_params({"task": task})), metric=metric
    )


def test_classification_metrics_and_plots(fitted, toy_roles, scoring):
    model, _, test = fitted("classification")
    values, plots, _ = evaluate.evaluate(
        model, test, toy_roles, settings=scoring("classification", "neg_log_loss")
    )
    assert set(values) == CLASSIFICATION_KEYS | {"neg_log_loss"}
    assert list(values) == sorted(values)
    assert values["neg_log_loss"] == pytest.approx(-values["log_loss"], abs=2e-6)
    assert all(0.0 <= values[k] <= 1.0 for k in CLASSIFICATION_KEYS - {"log_loss"})
    assert values["business_value"] == values["accuracy"], "empty value matrix = accuracy"
    assert all(round(v, 6) == v for v in values.values())
    actual, predicted = plots["confusion"]
    assert len(actual) == len(predicted) == len(test)
    for kind, fields in (("roc", {"fpr", "tpr"}), ("precision_recall", {"recall", "precision"})):
        assert {p["class"] for p in plots[kind]} == {"high", "low", "mid"}, "a class column"
        assert all(set(p) == fields | {"class"} for p in plots[kind])


def test_binary_classification_plots_the_positive_class(fitted, toy_roles, scoring):
    model, train, test = fitted("classification")
    train, test = (rows[rows["target"] != "mid"] for rows in (train, test))
    model.fit(schema.model_frame(train, toy_roles), train["target"])  # refit on two classes
    values, plots, _ = evaluate.evaluate(
        model, test, toy_roles, settings=scoring("classification", "roc_auc")
    )
    assert set(values) == CLASSIFICATION_KEYS | {"roc_auc"}
    assert values["roc_auc"] == pytest.approx(values["roc_auc_ovr"], abs=2e-6)
    shown = {p["class"] for p in plots["roc"]}
    assert shown == {"low"}, "classes are [high, low]: low is the positive one"


def test_regression_metrics_and_plots(fitted, toy_roles, scoring):
    model, _, test = fitted("regression")
    values, plots, _ = evaluate.evaluate(
        model, test, toy_roles, settings=scoring("regression", "neg_mean_absolute_error")
    )
    assert set(values) == REGRESSION_KEYS | {"neg_mean_absolute_error"}
    assert values["neg_mean_absolute_error"] == pytest.approx(-values["mae"], abs=2e-6)
    assert values["rmse"] >= values["mae"] > 0
    assert values["business_value"] == pytest.approx(-values["mae"], abs=2e-6)
    assert [p["actual"] for p in plots["predictions"]] == [round(v, 6) for v in test["target"]]
    assert all(
        p["residual"] == pytest.approx(p["actual"] - p["predicted"], abs=2e-6)
        for p in plots["predictions"]
    )
    same, _, _ = evaluate.evaluate(model, test, toy_roles, settings=scoring("regression", "r2"))
    assert set(same) == REGRESSION_KEYS


@pytest.mark.parametrize(
    ("task", "metric", "message"),
    [
        ("regression", "accuracy", "not a scikit-learn scorer for regression"),
        (
            "classification",
            "neg_mean_squared_error",
            "not a scikit-learn scorer for classification",
        ),
        ("classification", "f1", "use f1_macro, f1_weighted, f1_micro"),
    ],
)
def test_evaluate_refuses_a_metric_that_does_not_fit(
    fitted, toy_roles, task, metric, message, scoring
):
    model, _, test = fitted(task)
    with pytest.raises(ConfigError, match=message):
        evaluate.evaluate(model, test, toy_roles, settings=scoring(task, metric))


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_write_replaces_the_folder(fitted, toy_roles, tmp_path, task, scoring):
    model, _, test = fitted(task)
    metric = "neg_log_loss" if task == "classification" else "r2"
    values, plots, _ = evaluate.evaluate(model, test, toy_roles, settings=scoring(task, metric))
    plots["groups"] = []  # no data.groups: an empty table, still a file for DVC
    out = tmp_path / "evaluate"
    (out / "plots").mkdir(parents=True)
    (out / "plots" / "stale.json").write_text("[]")
    top = evaluate.headline(values, task, metric, "some_model")
    io.write_live_dir(out, values, evaluate.report_files(plots, top), plots.get("confusion"))
    assert json.loads((out / "metrics.json").read_text()) == values
    headline = (out / "headline.json").read_text()
    assert list(json.loads(headline)) == list(top), "headline()'s order, which DVC shows"
    assert not (out / "plots" / "stale.json").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["evaluate"], "a temporary folder is left"
    written = sorted(p.name for p in (out / "plots").glob("*.json"))
    if task == "classification":
        assert (out / "plots" / "sklearn" / "confusion_matrix.json").exists()
        assert written == ["groups.json", "precision_recall.json", "roc.json"]
    else:
        assert written == ["groups.json", "predictions.json"]
    for name in written:
        assert json.loads((out / "plots" / name).read_text()) == plots[name.removesuffix(".json")]


@pytest.mark.parametrize("mode", ["warn", "fail"])
def test_the_gap_gate_warns_or_fails(make_params, mode, caplog):
    from {{ cookiecutter.package_name }}.core.errors import GateError

    params = make_params({"evaluate.max_group_gap": 0.1, "evaluate.on_gap_exceeded": mode})
    values = {
        "gate": {"group_gap_exceeded": True, "largest_group_gap": 0.3, "worst_group_column": "sex"}
    }
    if mode == "fail":
        with pytest.raises(GateError, match="gap between sex groups is 0.3, above .*=0.1"):
            evaluate.check_gate(values, settings=evaluate.Settings.of(params))
    else:
        evaluate.check_gate(values, settings=evaluate.Settings.of(params))
        assert "gap between sex groups is 0.3" in caplog.text
    values["gate"]["group_gap_exceeded"] = False
    evaluate.check_gate(values, settings=evaluate.Settings.of(params))  # under the limit: neither


def test_diagnose_on_a_fitted_model(fitted, toy_roles, make_params, task):
    model, _, test = fitted(task)
    test = test.assign(site=["north", "south"] * (len(test) // 2) + ["north"] * (len(test) % 2))
    test["day"] = range(len(test))
    params = make_params(
        {"task": task, "data.groups": ["site", "absent"], "data.time": "day",
         "evaluate.min_group_size": 1}
    )  # fmt: skip
    y_pred = model.predict(schema.model_frame(test, toy_roles))
    values = evaluate.diagnose(
        model, test, toy_roles, y_pred, settings=evaluate.Settings.of(params)
    )
    assert set(values["groups"]["site"]) == {"north", "south", "gap"}
    assert values["recent"]["rows"] == -(-len(test) // 4)
    if task == "classification":
        assert set(values["per_class"]) == {"high", "low", "mid"}
        assert sum(c["support"] for c in values["per_class"].values()) == len(test)


def test_headline_holds_the_figures_that_decide_the_next_turn(
    fitted, toy_roles, make_params, task, scoring
):
    model, _, test = fitted(task)
    test = test.assign(site=["north", "south"] * (len(test) // 2) + ["north"] * (len(test) % 2))
    test["day"] = range(len(test))
    params = make_params(
        {"task": task, "data.groups": ["site"], "data.time": "day", "evaluate.min_group_size": 1}
    )
    metric = "neg_log_loss" if task == "classification" else "neg_root_mean_squared_error"
    values, _, y_pred = evaluate.evaluate(model, test, toy_roles, settings=scoring(task, metric))
    values.update(
        evaluate.diagnose(model, test, toy_roles, y_pred, settings=evaluate.Settings.of(params))
    )
    name = "the_model_file"  # evaluate.main passes the name of the model file train fitted
    top = evaluate.headline(values, task, metric, name)
    gap_metric = "balanced_accuracy" if task == "classification" else "rmse"
    assert top["model"] == name
    assert (top["headline_metric"], top["headline"]) == (metric, values[metric])
    assert top["business"] == values["business_value"]
    assert (top["gap_column"], top["group_gap"]) == ("site", values["groups"]["site"]["gap"])
    assert top[f"recent_{gap_metric}"] == values["recent"][gap_metric]
    if task == "classification":
        f1 = {label: entry["f1"] for label, entry in values["per_class"].items()}
        assert top["worst_class_f1"] == min(f1.values()) == f1[top["worst_class"]]
    else:
        assert "worst_class" not in top


def test_plot_data_stays_bounded_at_any_size():
    """Metrics use every test row; plot files stay small enough to draw."""
    assert evaluate.plot_rows(50).tolist() == list(range(50))
    shown = evaluate.plot_rows(1_000_000)
    assert len(shown) == evaluate.PLOT_ROWS and (np.diff(shown) > 0).all()
    assert np.array_equal(evaluate.plot_rows(1_000_000), shown), "seeded"
    line = np.linspace(0.0, 1.0, 100_000)
    curve = [{"fpr": round(float(v), 6), "tpr": round(float(v), 6)} for v in line]
    thinned = evaluate.curve_points(fpr=line, tpr=line)
    assert len(thinned) == evaluate.CURVE_POINTS
    assert thinned[0] == curve[0] and thinned[-1] == curve[-1]
    assert evaluate.curve_points(fpr=line[:10], tpr=line[:10]) == curve[:10]


def test_unseen_categories_are_counted_per_column_and_missing_ones_are_not(caplog):
    test = pd.DataFrame({"color": ["red", "teal", None, "teal"], "size": [1.0, 2.0, 3.0, None]})
    known = {"color": ["blue", "red"], "size": ["1.0", "2.0", "3.0"]}
    assert evaluate.unseen_categories(test, known) == {"color": 2, "size": 0}
    assert "color: 2 test row(s) with categories unseen in training (e.g. 'teal')" in caplog.text


def test_per_class_and_group_bars_come_from_the_diagnosis():
    per_class = {"very_low": {"precision": 0.5, "recall": 1.0, "f1": 0.666667, "support": 4}}
    bars = evaluate.per_class_bars(per_class, ["very low", "high"])
    assert [(b["class"], b["metric"], b["value"]) for b in bars] == [
        ("very low", "precision", 0.5), ("very low", "recall", 1.0), ("very low", "f1", 0.666667)
    ]  # fmt: skip
    groups = {
        "site": {
            "north": {"accuracy": 0.9, "balanced_accuracy": 0.8, "rows": 40},
            "south": {"accuracy": 0.7, "balanced_accuracy": 0.6, "rows": 30},
            "east": {"accuracy": 1.0, "balanced_accuracy": 1.0, "rows": 3},
            "gap": 0.2,
        },
        "sex": {"male": {"accuracy": 0.5, "balanced_accuracy": 0.5, "rows": 4}},
    }
    bars = evaluate.group_bars(groups, "classification", min_size=10)
    site = {b["group"]: b for b in bars if b["column"] == "site"}
    assert set(site) == {"north", "south", "east"}, "the gap is a caption, not a bar"
    assert [site[g]["counted"] for g in ("north", "south", "east")] == [True, True, False]
    assert site["south"]["balanced_accuracy"] == 0.6 and site["south"]["rows"] == 30
    assert site["north"]["caption"] == (
        "site: balanced_accuracy gap 0.2 between groups of >= 10 rows"
    )
    (sex,) = [b for b in bars if b["column"] == "sex"]
    assert not sex["counted"] and "no gap" in sex["caption"]
    assert all(set(b) == set(bars[0]) for b in bars), "one table: DVC needs the same keys"


def test_feature_importance_ranks_the_informative_column_first(
    fitted, toy_roles, make_params, task
):
    model, _, test = fitted(task)  # the target follows x1 (and -x2 for regression)
    params = make_params({"evaluate.importance_repeats": 2})
    settings = evaluate.Settings.of(params)
    found = evaluate.feature_importance(model, test, toy_roles, settings=settings)
    assert [row["feature"] for row in found][0] == "x1", found
    assert {row["feature"] for row in found} == {"x1", "x2", "color"}
    assert found == evaluate.feature_importance(model, test, toy_roles, settings=settings), "seeded"


def test_importance_scores_a_seeded_sample_that_keeps_every_class():
    from {{ cookiecutter.package_name }}.quality import importance

    y = np.array(["common"] * 999_997 + ["rare"] * 3)
    assert importance.sample(y[:50], 10_000, seed=1, stratify=True).tolist() == list(range(50))
    kept = importance.sample(y, 10_000, seed=1, stratify=True)
    assert 10_000 <= len(kept) <= 10_001 and (np.diff(kept) > 0).all()
    assert "rare" in set(y[kept]), "log loss on the sample needs every class"
    assert np.array_equal(kept, importance.sample(y, 10_000, seed=1, stratify=True))
    plain = importance.sample(y, 10_000, seed=1, stratify=False)
    assert len(plain) == 10_000 and not np.array_equal(plain, kept)
