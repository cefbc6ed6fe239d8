"""Evaluate: test-split metrics, the diagnosis (per class, per group, recent rows, the
group-gap gate; see diagnosis.py) and plot data, logged with dvclive.

The few figures that decide the loop's next turn go to reports/evaluate/headline.json
(see headline()), the full diagnosis to reports/evaluate/metrics.json, plot data under
reports/evaluate/plots/; dvc.yaml declares them, headline first, so `dvc exp show`,
`dvc metrics diff`, `dvc plots` and `python -m <package> compare` see them.
Metrics use every test row. Plot data is bounded, so that it stays a file a browser can
draw at a million rows: per-row plots (confusion matrix, predicted vs actual, residuals)
take a seeded sample of PLOT_ROWS test rows, curves keep CURVE_POINTS evenly spread
points per class, and permutation importance scores a seeded sample of
evaluate.importance_rows rows (importance.py).

Each plot file is one table in long format (a `class`, `metric` or `group` column),
so one chart draws every class or group with a legend naming it, whatever the classes
are; the Vega-Lite templates in plots/ draw them (dvc.yaml's top-level `plots:`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn import metrics as skm
from sklearn.pipeline import Pipeline

from ..core import compute, io, paths, progress
from ..core.errors import GateError
from ..core.params import (
    BusinessParams,
    DataParams,
    EvaluateParams,
    StageSettings,
    Task,
    load,
)
from ..modeling import business, models
from ..quality import diagnosis, importance
from ..tables import schema

log = logging.getLogger(__name__)

PLOT_ROWS = 10_000
CURVE_POINTS = 1_000


@dataclass(frozen=True)
class Settings(StageSettings):
    """What evaluate's functions read from the config; main() also reads compute.n_jobs."""

    evaluate: EvaluateParams
    data: DataParams
    task: Task
    metric: str
    seed: int
    business: BusinessParams


def plot_rows(n: int, seed: int = 0) -> np.ndarray:
    """Positions of the test rows that per-row plots show: all, or a seeded sample."""
    if n <= PLOT_ROWS:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, PLOT_ROWS, replace=False))


def curve_points(**columns: np.ndarray) -> list[dict]:
    """At most CURVE_POINTS points of a curve, evenly spread, first and last kept; only the
    kept points are built."""
    n = len(next(iter(columns.values())))
    keep = range(n)
    if n > CURVE_POINTS:
        keep = np.unique(np.linspace(0, n - 1, CURVE_POINTS).round().astype(int))
    return [{name: round(float(v[i]), 6) for name, v in columns.items()} for i in keep]


def classification_metrics(
    y_true: np.ndarray, y_pred: np.ndarray, proba: np.ndarray | None, classes: np.ndarray
) -> dict[str, float]:
    result = {
        "accuracy": skm.accuracy_score(y_true, y_pred),
        "balanced_accuracy": skm.balanced_accuracy_score(y_true, y_pred),
        "f1_macro": skm.f1_score(y_true, y_pred, average="macro", zero_division=0),
    }
    present = np.unique(y_true)
    if proba is not None and set(present) <= set(classes):
        result["log_loss"] = skm.log_loss(y_true, proba, labels=classes)
    if proba is not None and len(present) > 1 and set(present) <= set(classes):
        if len(classes) == 2:
            result["roc_auc_ovr"] = skm.roc_auc_score(y_true == classes[1], proba[:, 1])
        else:
            result["roc_auc_ovr"] = skm.roc_auc_score(
                y_true, proba, multi_class="ovr", labels=classes
            )
    return result


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    return {
        "rmse": skm.root_mean_squared_error(y_true, y_pred),
        "mae": skm.mean_absolute_error(y_true, y_pred),
        "r2": skm.r2_score(y_true, y_pred),
    }


def curves(y_true: np.ndarray, proba: np.ndarray, classes: np.ndarray) -> dict[str, list]:
    """One-vs-rest ROC and precision-recall points, one `class` per curve (the positive
    class only if binary)."""
    shown = classes[1:] if len(classes) == 2 else classes
    out: dict[str, list] = {"roc": [], "precision_recall": []}
    for label in shown:
        column = list(classes).index(label)
        positive = y_true == label
        if positive.all() or not positive.any():
            continue
        fpr, tpr, _ = skm.roc_curve(positive, proba[:, column])
        precision, recall, _ = skm.precision_recall_curve(positive, proba[:, column])
        name = {"class": str(label)}
        out["roc"] += [name | p for p in curve_points(fpr=fpr, tpr=tpr)]
        out["precision_recall"] += [
            name | p for p in curve_points(recall=recall, precision=precision)
        ]
    return out


def per_class_bars(per_class: dict, classes: list) -> list[dict]:
    """Precision, recall and F1 of each class (diagnosis.per_class), one bar each, named
    as the ROC curves name it (metrics keys replace spaces and dots)."""
    names = {diagnosis.key(label): str(label) for label in classes}
    return [
        {"class": names.get(label, label), "metric": metric, "value": scores[metric]}
        for label, scores in per_class.items()
        for metric in ("precision", "recall", "f1")
    ]


def group_bars(groups: dict, task: Task, min_size: int) -> list[dict]:
    """The gap metric of each value of each data.groups column (diagnosis.per_group), with
    whether it counts towards the gap and a caption stating the column's gap."""
    metric = diagnosis.GAP_METRIC[task]
    bars = []
    for column, entry in groups.items():
        caption = (
            f"{column}: {metric} gap {entry['gap']} between groups of >= {min_size} rows"
            if "gap" in entry
            else f"{column}: no gap (fewer than 2 groups of >= {min_size} rows)"
        )
        for value, scores in entry.items():
            if value == "gap":
                continue
            bars.append(
                {
                    "column": column,
                    "group": value,
                    metric: scores[metric],
                    "rows": scores["rows"],
                    "counted": "gap" in entry and scores["rows"] >= min_size,
                    "caption": caption,
                }
            )
    return bars


def evaluate(
    model: Pipeline, test: pd.DataFrame, roles: schema.Roles, *, settings: Settings
) -> tuple[dict[str, float], dict, np.ndarray]:
    """Metrics (always the headline `metric` and business_value), plot data, and the
    predictions, which the diagnosis reuses (one prediction of the test split, not two)."""
    task, metric, business_params = settings.task, settings.metric, settings.business
    X = schema.model_frame(test, roles)
    y_true = schema.target_array(test[roles.target])
    y_pred = model.predict(X)
    plots: dict = {}
    classes = None
    if task == "classification":
        classes = model.classes_
        proba = model.predict_proba(X) if hasattr(model, "predict_proba") else None
        values = classification_metrics(y_true, y_pred, proba, classes)
        shown = plot_rows(len(y_true))
        plots["confusion"] = (y_true[shown].astype(str), y_pred[shown].astype(str))
        if proba is not None:
            plots.update(curves(y_true, proba, classes))
    else:
        values = regression_metrics(y_true, y_pred)
        shown = plot_rows(len(y_true))
        plots["predictions"] = [
            {
                "actual": round(float(a), 6),
                "predicted": round(float(p), 6),
                "residual": round(float(a) - float(p), 6),
            }
            for a, p in zip(y_true[shown], y_pred[shown], strict=True)
        ]
    models.check_metric(task, metric, classes)
    values[business.NAME] = business.scorer(task, business_params, classes)(model, X, y_true)
    if metric not in values:
        values[metric] = models.scorer(task, metric, business_params)(model, X, y_true)
    return {k: round(float(v), 6) for k, v in sorted(values.items())}, plots, y_pred


def headline(values: dict, task: Task, metric: str, model: str) -> dict:
    """The figures to compare experiments by, in a small file of their own: `dvc exp show`
    lists its columns first, and `compare` reads it. Keys differ from every other metrics
    file's, so DVC needs no file-name prefix to tell columns apart.

    model: what was trained; headline_metric and headline: the `metric` setting and its
    value (a scikit-learn scorer: greater is better); business: business_value; worst_class
    and worst_class_f1 (classification): the class with the lowest F1; gap_column and
    group_gap: the group column with the largest gap of diagnosis.GAP_METRIC; recent_<that
    metric>: its value on the most recent test rows (when data.time is set).
    """
    gap_metric = diagnosis.GAP_METRIC[task]
    result = {
        "model": model,
        "headline_metric": metric,
        "headline": values[metric],
        "business": values[business.NAME],
    }
    if values.get("per_class"):
        worst = min(values["per_class"], key=lambda label: values["per_class"][label]["f1"])
        result["worst_class"] = worst
        result["worst_class_f1"] = values["per_class"][worst]["f1"]
    gate = values.get("gate", {})
    if "worst_group_column" in gate:
        result["gap_column"] = gate["worst_group_column"]
        result["group_gap"] = gate["largest_group_gap"]
    if gap_metric in values.get("recent", {}):
        result[f"recent_{gap_metric}"] = values["recent"][gap_metric]
    return result


def report_files(plots: dict, top: dict) -> dict[str, str]:
    """The text of each file of reports/evaluate/ besides dvclive's: the headline, and one
    table per plot (the confusion matrix aside: dvclive draws it)."""
    # In headline()'s order, not sorted: DVC shows a file's columns in its key order.
    files = {paths.HEADLINE.name: io.json_text(top, sort_keys=False)}
    for name, rows in plots.items():
        # Written even empty (no data.groups, say): DVC draws nothing for an empty
        # table, but reports a missing file as a failure to load the plots.
        if name != "confusion":
            files[f"plots/{name}.json"] = io.json_text(rows)
    return files


def unseen_categories(test: pd.DataFrame, known: dict[str, list[str]]) -> dict[str, int]:
    """Test rows per categorical column whose value training never saw (missing ones
    aside). The model still predicts them, by the documented rule: one-hot gives them no
    column, target encoding the training mean; this counts how often that happened."""
    unseen = {}
    for column, categories in known.items():
        if column not in test.columns:
            continue
        # As features.json lists them (preprocess.describe_features): str() of each value.
        text = test[column].astype(str).where(test[column].notna())
        new = text.notna() & ~text.isin(categories)
        if new.any():
            examples = ", ".join(map(repr, text[new].unique()[:3]))
            log.warning(
                "%s: %d test row(s) with categories unseen in training (e.g. %s)",
                column,
                int(new.sum()),
                examples,
            )
        unseen[column] = int(new.sum())
    return unseen


def diagnose(
    model: Pipeline,
    test: pd.DataFrame,
    roles: schema.Roles,
    y_pred: np.ndarray,
    *,
    settings: Settings,
) -> dict:
    """The diagnosis of diagnosis.py for this model's predictions `y_pred` of the test rows."""
    return diagnosis.diagnose(
        test,
        schema.target_array(test[roles.target]),
        y_pred,
        classes=list(model.classes_) if settings.task == "classification" else None,
        rules=settings.evaluate,
        data=settings.data,
    )


def feature_importance(
    model: Pipeline, test: pd.DataFrame, roles: schema.Roles, *, settings: Settings
) -> list[dict]:
    """Permutation importance of each input column for the headline metric (importance.py)."""
    task = settings.task
    classes = model.classes_ if task == "classification" else None
    return importance.permutation(
        model,
        schema.model_frame(test, roles),
        schema.target_array(test[roles.target]),
        scorer=models.scorer(task, settings.metric, settings.business, classes),
        rules=settings.evaluate,
        seed=settings.seed,
    )


def check_gate(values: dict, *, settings: Settings) -> None:
    """Warn, or fail the stage, when the largest group gap exceeds evaluate.max_group_gap."""
    task, rules = settings.task, settings.evaluate
    gate = values["gate"]
    if not gate["group_gap_exceeded"]:
        return
    message = (
        f"the {diagnosis.GAP_METRIC[task]} gap between {gate['worst_group_column']} "
        f"groups is {gate['largest_group_gap']}, above evaluate.max_group_gap="
        f"{rules.max_group_gap}: see groups.{gate['worst_group_column']} in "
        "reports/evaluate/metrics.json and collect data for the worst group"
    )
    if rules.on_gap_exceeded == "fail":
        raise GateError(f"{message} (or set evaluate.on_gap_exceeded=warn)")
    log.warning(message)


def report(
    model: Pipeline, test: pd.DataFrame, features: dict, *, settings: Settings
) -> tuple[dict, dict]:
    """(metrics.json's values, plot tables) of `model` on the test rows; `features`:
    features.json."""
    task = settings.task
    roles = schema.roles_from_dict(features["roles"])
    values, plots, y_pred = evaluate(model, test, roles, settings=settings)
    values.update(diagnose(model, test, roles, y_pred, settings=settings))
    plots["importance"] = feature_importance(model, test, roles, settings=settings)
    if task == "classification":
        plots["per_class"] = per_class_bars(values["per_class"], list(model.classes_))
    plots["groups"] = group_bars(values["groups"], task, settings.evaluate.min_group_size)
    values["unseen_categories"] = unseen_categories(test, features["categorical"])
    return values, plots


def main() -> None:
    params = load()
    features = io.read_json(paths.FEATURES)
    roles = schema.roles_from_dict(features["roles"])
    # What train fitted: its name heads the headline, its file lists the types it trusts.
    selection = models.read_selection()
    config = models.chosen_config(params, selection)
    model = models.load(paths.TRAINED_MODEL, config)
    wanted = {roles.target, *roles.features, *params.data.groups, params.data.time}
    # Missing group or time columns are left to the diagnosis, which warns about them.
    test = io.read_parquet(paths.TEST, columns=io.parquet_columns(paths.TEST, wanted))
    settings = Settings.of(params)
    with compute.cores(params.compute.cores):
        values, plots = report(model, test, features, settings=settings)
    top = headline(values, params.task, params.metric, config["name"])
    # Written before the gate: a failing stage still leaves the numbers to look at.
    io.write_live_dir(paths.EVALUATE_DIR, values, report_files(plots, top), plots.get("confusion"))
    progress.note(rows_in=len(test), **{k: v for k, v in top.items() if k != "model"})
    check_gate(values, settings=settings)
