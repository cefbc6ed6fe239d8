"""Where the model fails: per class, per group, on the most recent rows; the group-gap gate.

Everything here lands in reports/evaluate/metrics.json as nested keys, which DVC shows
flattened: per_class.<class>.f1, groups.<column>.<value>.balanced_accuracy,
groups.<column>.gap, recent.balanced_accuracy, gate.group_gap_exceeded.
Per-group metrics come from fairlearn's MetricFrame, given the rows summarised first (see
_summary): the same figures, a quarter second a column at a million rows. A group's gap is
the largest difference of GAP_METRIC between its values, counting only values with at least
`evaluate.min_group_size` test rows (a gap between 3 rows and 60 is noise, not a finding).
"""

from __future__ import annotations

import logging
import math
import re
import warnings

import numpy as np
import pandas as pd
from fairlearn.metrics import MetricFrame
from sklearn import metrics as skm

from ..core.params import DataParams, EvaluateParams, Task
from ..tables import schema

log = logging.getLogger(__name__)


def _rmse(squares: np.ndarray, absolutes: np.ndarray, sample_weight: np.ndarray) -> float:
    """Root mean squared error from _error_sums' rows: the sum of squared errors over the
    row count, then the square root, as sklearn's root_mean_squared_error divides and roots."""
    return math.sqrt(np.sum(squares) / np.sum(sample_weight))


def _mae(squares: np.ndarray, absolutes: np.ndarray, sample_weight: np.ndarray) -> float:
    """Mean absolute error from _error_sums' rows (see _rmse)."""
    return float(np.sum(absolutes) / np.sum(sample_weight))


# Each takes (y_true, y_pred, sample_weight) of the rows _summary gives.
GROUP_METRICS = {
    "classification": {
        "accuracy": skm.accuracy_score,
        "balanced_accuracy": skm.balanced_accuracy_score,
    },
    "regression": {"rmse": _rmse, "mae": _mae},
}
# The metric whose spread between groups is the gap (and what the gate checks).
GAP_METRIC = {"classification": "balanced_accuracy", "regression": "rmse"}
MISSING = "missing"


def key(value: object) -> str:
    """A class or group value as a metrics key: DVC joins nested keys with dots."""
    return re.sub(r"[^A-Za-z0-9_-]+", "_", schema.category_label(value)) or "_"


def _round(value: float) -> float:
    return round(float(value), 6)


def per_class(
    y_true: np.ndarray, y_pred: np.ndarray, classes: list, min_support: int
) -> tuple[dict, list[str]]:
    """Precision, recall, F1 and test support per class; and the classes short of data."""
    labels = list(classes) + [c for c in pd.unique(y_true) if c not in set(classes)]
    precision, recall, f1, support = skm.precision_recall_fscore_support(
        y_true, y_pred, labels=labels, zero_division=0
    )
    result, short = {}, []
    for i, label in enumerate(labels):
        result[key(label)] = {
            "precision": _round(precision[i]),
            "recall": _round(recall[i]),
            "f1": _round(f1[i]),
            "support": int(support[i]),
        }
        if support[i] < min_support:
            short.append(f"{label} ({int(support[i])} test rows)")
    return result, short


def _group_values(column: pd.Series) -> pd.Series:
    """Group values as text; a missing value is a group of its own, named 'missing'."""
    return schema.category_text(column).where(column.notna(), MISSING).astype(str)


def _pairs(y_true: np.ndarray, y_pred: np.ndarray, values: np.ndarray) -> tuple:
    """One row per distinct (group value, truth, prediction), weighted by how many rows it
    stands for: accuracy and balanced accuracy depend on nothing else, and with integer
    weights their sums are the same integers as over the rows, so the figures are equal."""
    columns = (values, y_true, y_pred)
    coded = [pd.factorize(column, use_na_sentinel=False) for column in columns]
    tally = pd.DataFrame({i: codes for i, (codes, _) in enumerate(coded)}).value_counts(sort=False)
    group, truth, pred = (
        np.asarray(uniques)[tally.index.get_level_values(i)] for i, (_, uniques) in enumerate(coded)
    )
    return truth, pred, group, tally.to_numpy()


def _error_sums(y_true: np.ndarray, y_pred: np.ndarray, values: np.ndarray) -> tuple:
    """One row per group value: its sum of squared errors (as y_true) and of absolute errors
    (as y_pred), weighted by its row count. Each sum is numpy's over the group's errors in
    row order, the very sum sklearn's metrics take over the group's rows."""
    codes, uniques = pd.factorize(values)
    order = np.argsort(codes, kind="stable")
    errors = (np.asarray(y_true, dtype=float) - np.asarray(y_pred, dtype=float))[order]
    counts = np.bincount(codes)
    ends = np.cumsum(counts)
    squares, absolutes = [], []
    for start, end in zip(ends - counts, ends, strict=True):
        squares.append(np.sum(errors[start:end] ** 2))
        absolutes.append(np.sum(np.abs(errors[start:end])))
    return np.array(squares), np.array(absolutes), np.asarray(uniques), counts


def _summary(y_true: np.ndarray, y_pred: np.ndarray, values: np.ndarray, task: Task) -> tuple:
    """(y_true, y_pred, group values, sample_weight) for MetricFrame: a few rows per group
    from which GROUP_METRICS give the per-row figures exactly. Given every row, MetricFrame
    took 7.5 s a call at a million rows: fairlearn 0.15 np.stack-s each group's columns,
    a Python loop over the rows."""
    truth, pred, group, weight = (_pairs if task == "classification" else _error_sums)(
        y_true, y_pred, values
    )
    if len(weight) == 1:
        # MetricFrame squeezes a single row to a scalar and refuses it; a twin of weight 0
        # (for regression, of sums 0 too) changes no figure.
        twin = (truth, pred) if task == "classification" else (np.zeros(1), np.zeros(1))
        truth, pred = np.concatenate([truth, twin[0]]), np.concatenate([pred, twin[1]])
        group, weight = np.repeat(group, 2), np.append(weight, 0)
    return truth, pred, group, weight


def per_group(
    y_true: np.ndarray, y_pred: np.ndarray, groups: pd.DataFrame, task: Task, min_size: int
) -> dict:
    """groups.<column>.<value>.{metric, rows} and groups.<column>.gap (see module doc); no
    gap when fewer than 2 of a column's values have `min_size` rows (the caller says so)."""
    functions = GROUP_METRICS[task]
    gap_metric = GAP_METRIC[task]
    result = {}
    for column in groups.columns:
        values = _group_values(groups[column]).to_numpy()
        truth, pred, group, weight = _summary(y_true, y_pred, values, task)
        with warnings.catch_warnings():
            # A group holding one class makes balanced accuracy warn; the value is still right.
            warnings.simplefilter("ignore", UserWarning)
            frame = MetricFrame(
                metrics=functions,
                y_true=truth,
                y_pred=pred,
                sensitive_features=group,
                sample_params={name: {"sample_weight": weight} for name in functions},
            )
        counts = pd.Series(weight).groupby(group).sum()
        entry: dict = {}
        for value, row in frame.by_group.iterrows():
            name = key(value)
            entry["gap_" if name == "gap" else name] = {
                **{m: _round(row[m]) for m in functions},
                "rows": int(counts[value]),
            }
        large = counts[counts >= min_size].index
        if len(large) >= 2:
            # MetricFrame's difference between groups, of the large values only.
            counted = frame.by_group.loc[large, gap_metric]
            entry["gap"] = _round(counted.max() - counted.min())
        result[key(column)] = entry
    return result


def _as_time(column: pd.Series) -> pd.Series:
    """Numbers and datetimes compare as they are; text is parsed as dates."""
    if pd.api.types.is_numeric_dtype(column) or pd.api.types.is_datetime64_any_dtype(column):
        return column
    parsed = pd.to_datetime(column, errors="coerce", format="mixed")
    if parsed.notna().sum() < column.notna().sum():
        log.warning("evaluate: time column %s holds values that are not dates", column.name)
    return parsed


def recent_mask(times: pd.Series, fraction: float) -> tuple[np.ndarray, object]:
    """The latest `fraction` of the rows by time; rows tied with the cutoff are included."""
    times = _as_time(times)
    known = times.dropna()
    if known.empty:
        return np.zeros(len(times), dtype=bool), None
    count = max(1, math.ceil(fraction * len(known)))
    cutoff = known.sort_values(kind="stable").iloc[-count]
    return (times >= cutoff).fillna(False).to_numpy(dtype=bool), cutoff


def slice_metrics(y_true: np.ndarray, y_pred: np.ndarray, task: Task) -> dict:
    if task == "classification":
        values = {
            "accuracy": skm.accuracy_score(y_true, y_pred),
            "balanced_accuracy": skm.balanced_accuracy_score(y_true, y_pred),
            "f1_macro": skm.f1_score(y_true, y_pred, average="macro", zero_division=0),
        }
    else:
        values = {
            "rmse": skm.root_mean_squared_error(y_true, y_pred),
            "mae": skm.mean_absolute_error(y_true, y_pred),
        }
    return {name: _round(v) for name, v in values.items()}


def gate(groups: dict, rules: EvaluateParams) -> dict:
    """gate.largest_group_gap, and whether it exceeds evaluate.max_group_gap (false if unset)."""
    gaps = {column: entry["gap"] for column, entry in groups.items() if "gap" in entry}
    worst = max(gaps, key=gaps.get, default=None)
    largest = gaps[worst] if worst is not None else 0.0
    result = {
        "largest_group_gap": largest,
        "group_gap_exceeded": rules.max_group_gap is not None and largest > rules.max_group_gap,
    }
    if rules.max_group_gap is not None:
        result["max_group_gap"] = rules.max_group_gap
    if worst is not None:
        result["worst_group_column"] = worst
    return result


def diagnose(
    test: pd.DataFrame,
    y_true: np.ndarray,
    y_pred: np.ndarray,
    *,
    classes: list | None,
    rules: EvaluateParams,
    data: DataParams,
) -> dict:
    """per_class (classification), groups, recent and gate, ready to merge into metrics.
    `classes`: a classifier's classes, in its order; None for a regression model. Of
    `data`, the group columns (data.groups) and the time column (data.time)."""
    task: Task = "regression" if classes is None else "classification"
    groups, time = list(data.groups), data.time
    result: dict = {}
    if task == "classification":
        result["per_class"], short = per_class(y_true, y_pred, classes, rules.min_class_support)
        result["classes_short_of_data"] = len(short)
        if short:
            log.warning(
                "classes short of data (fewer than evaluate.min_class_support=%d test rows): "
                "%s; collect more rows of these classes",
                rules.min_class_support,
                ", ".join(short),
            )
    columns = schema.present(test, groups, "group columns", "the test data")
    result["groups"] = per_group(y_true, y_pred, test[columns], task, rules.min_group_size)
    for column in columns:
        if "gap" not in result["groups"][key(column)]:
            log.warning(
                "evaluate: no gap for group column %s: fewer than 2 of its values have "
                "evaluate.min_group_size=%d test rows",
                column,
                rules.min_group_size,
            )
    result["gate"] = gate(result["groups"], rules)
    if time and schema.present(test, [time], "time column", "the test data"):
        mask, cutoff = recent_mask(test[time], rules.recent_fraction)
        if mask.any():
            recent = slice_metrics(y_true[mask], y_pred[mask], task)
            recent["rows"] = int(mask.sum())
            if isinstance(cutoff, int | float | np.number):
                recent["since"] = _round(cutoff)
            result["recent"] = recent
            log.info("recent slice: %d test rows with %s >= %s", mask.sum(), time, cutoff)
    return result
