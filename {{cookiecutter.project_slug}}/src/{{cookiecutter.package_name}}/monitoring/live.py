"""How right the served model is live: its logged answers scored against the labels that
arrived (joined records, monitoring/labels.py), as decide scores stored answers.

A window's figures (`window_figures`) are what the alert rules judge: the headline metric,
each data.groups column's gap between its best and worst group (balanced accuracy;
RMSE for regression, as evaluate's gap) and the prediction bias, the largest distance
between the predicted and the observed class shares over the slices (overall and each
group value), for regression the mean prediction's distance from the mean label in
standard deviations of the label. A group, a slice or the whole window counts only with
`min_rows` labelled rows: a figure of a few rows is noise.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..core.errors import first_line
from ..decision import bootstrap
from ..decision.verdicts import Answers, Yardstick
from ..quality import diagnosis
from ..tables import schema


def labelled(records: list[dict]) -> list[dict]:
    """The records that carry a label (the request's, or one that arrived later)."""
    return [r for r in records if "label" in r]


def group_value(record: dict, column: str) -> object:
    """A row's value of a data.groups column: the feature as logged, else the value the
    request carried beside the features (the log's `groups`); None when it gave none."""
    inputs = record.get("inputs") or {}
    if column in inputs:
        return inputs[column]
    return (record.get("groups") or {}).get(column)


def _answers(rows: list[dict], task: str) -> tuple[np.ndarray, Answers, list | None]:
    """(the labels, the logged answers, the classes: proba's columns) of labelled
    records; classes as text."""
    if task == "regression":
        truth = np.array([float(r["label"]) for r in rows])
        predicted = np.array([float(r["prediction"]) for r in rows])
        return truth, Answers(predicted), None
    truth = np.array([schema.category_label(r["label"]) for r in rows], dtype=object)
    predicted = np.array([schema.category_label(r["prediction"]) for r in rows], dtype=object)
    probabilities = [r.get("probabilities") for r in rows]
    if any(p is None for p in probabilities):
        return truth, Answers(predicted), sorted(set(predicted) | set(truth))
    classes = sorted({schema.category_label(c) for p in probabilities for c in p})
    proba = np.array(
        [[{schema.category_label(c): v for c, v in p.items()}.get(c, 0.0) for c in classes]
         for p in probabilities]
    )  # fmt: skip
    return truth, Answers(predicted, proba), classes


def live_metric(rows: list[dict], yardstick: Yardstick, min_rows: int) -> dict:
    """The headline metric of the served answers on labelled rows: {metric, value, rows},
    value None (and why) with fewer than `min_rows` rows or when the log cannot score it
    (no probabilities for a metric that needs them). Scored as decide scores stored
    answers (bootstrap.Scoring)."""
    result = {"metric": yardstick.metric, "value": None, "rows": len(rows)}
    if len(rows) < min_rows:
        return {**result, "why": f"fewer than {min_rows} labelled rows"}
    try:
        truth, answers, classes = _answers(rows, yardstick.task)
    except (ValueError, TypeError, KeyError) as exc:
        return {**result, "why": f"cannot score the logged answers: {first_line(exc)}"}
    try:
        value = bootstrap.Scoring(yardstick.metric, yardstick, truth, classes).score(answers)
    except AttributeError:  # a scorer that needs probabilities, which the log lacks
        return {**result, "why": "cannot score the logged answers: the log holds no probabilities"}
    if value is None:
        return {**result, "why": f"{yardstick.metric} cannot score the logged answers"}
    return {**result, "value": round(float(value), 6)}


def group_frame(rows: list[dict], groups: list[str]) -> pd.DataFrame:
    """The rows' data.groups values, one column each (None where a row gave none)."""
    return pd.DataFrame(
        {column: [group_value(r, column) for r in rows] for column in groups},
        index=range(len(rows)),
    )


def group_gaps(
    truth: np.ndarray, predicted: np.ndarray, frame: pd.DataFrame, task: str, min_rows: int
) -> dict:
    """Per group column, its gap as evaluate measures it (diagnosis.per_group), among
    values with `min_rows` labelled rows; None with fewer than 2 such values."""
    found = diagnosis.per_group(truth, predicted, frame, task, min_rows) if len(truth) else {}
    return {column: found.get(diagnosis.key(column), {}).get("gap") for column in frame.columns}


def _share_distance(truth: np.ndarray, predicted: np.ndarray) -> float:
    """The largest |predicted share - observed share| over the classes of a slice."""
    observed = pd.Series(truth).value_counts(normalize=True)
    shares = pd.Series(predicted).value_counts(normalize=True)
    both = observed.index.union(shares.index)
    difference = shares.reindex(both, fill_value=0.0) - observed.reindex(both, fill_value=0.0)
    return float(difference.abs().max())


def slices(frame: pd.DataFrame, rows: int, min_rows: int) -> list[np.ndarray]:
    """The row positions of each slice with `min_rows` rows: all rows, each group value."""
    found = [np.arange(rows)] if rows >= min_rows else []
    for column in frame.columns:
        given = frame[column]
        # A missing value is a group of its own, as evaluate counts it.
        values = schema.category_text(given).where(given.notna(), diagnosis.MISSING)
        for positions in values.groupby(values, sort=True).indices.values():
            if len(positions) >= min_rows:
                found.append(np.asarray(positions))
    return found


def bias(
    truth: np.ndarray, predicted: np.ndarray, frame: pd.DataFrame, task: str, min_rows: int
) -> float | None:
    """The prediction bias (module doc) over the slices with `min_rows` rows; None when
    no slice has them (or, regression, the labels do not vary)."""
    chosen = slices(frame, len(truth), min_rows)
    if not chosen:
        return None
    if task == "regression":
        spread = float(np.std(truth))
        if spread == 0.0:
            return None
        worst = max(abs(predicted[p].mean() - truth[p].mean()) for p in chosen)
        return round(float(worst / spread), 6)
    return round(max(_share_distance(truth[p], predicted[p]) for p in chosen), 6)


def window_figures(
    records: list[dict], yardstick: Yardstick, groups: list[str], min_rows: int
) -> dict:
    """A window's figures from joined records, of their labelled rows: {labelled,
    metric: {name, value[, why]}, group_gaps: {column: gap or None}, bias}."""
    rows = labelled(records)
    scored = live_metric(rows, yardstick, min_rows)
    metric = {"name": scored["metric"], "value": scored["value"]}
    if "why" in scored:
        metric["why"] = scored["why"]
    figures = {
        "labelled": len(rows),
        "metric": metric,
        "group_gaps": dict.fromkeys(groups),
        "bias": None,
    }
    try:
        truth, answers, _ = _answers(rows, yardstick.task)
    except (ValueError, TypeError, KeyError):
        return figures  # labels that are no class or number: the metric says why
    frame, task = group_frame(rows, groups), yardstick.task
    figures["group_gaps"] = group_gaps(truth, answers.predicted, frame, task, min_rows)
    figures["bias"] = bias(truth, answers.predicted, frame, task, min_rows)
    return figures
