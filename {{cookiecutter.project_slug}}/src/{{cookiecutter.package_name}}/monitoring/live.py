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

import warnings
from dataclasses import dataclass

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


def logged_answers(
    labelled: list[dict], sides: list[list[dict]], task: str
) -> tuple[np.ndarray, list[Answers], list | None]:
    """(the labels of `labelled`, each side's logged answers on those rows, the classes
    they share: proba's columns and the scorer's). A side is the records of one model
    in the same order (live: the records themselves; the shadow: the champion's and the
    shadow's). Classes as text: those the probabilities name when every row of every
    side logged them, else the labels and predictions seen and no side reads
    probabilities, so that sides scored together are scored alike."""
    if task == "regression":
        truth = np.array([float(r["label"]) for r in labelled])
        return truth, [_side(rows, task, None) for rows in sides], None
    label = schema.category_label
    truth = np.array([label(r["label"]) for r in labelled], dtype=object)
    given = [r.get("probabilities") for rows in sides for r in rows]
    columns = None
    if given and all(p is not None for p in given):
        columns = sorted({label(c) for p in given for c in p})
    answers = [_side(rows, task, columns) for rows in sides]
    classes = columns or sorted(set(truth).union(*(a.predicted for a in answers)))
    return truth, answers, classes


def _side(rows: list[dict], task: str, columns: list | None) -> Answers:
    """One model's logged answers: its predictions and, given columns, its probabilities
    in them (0 for a class a row does not name)."""
    if task == "regression":
        return Answers(np.array([float(r["prediction"]) for r in rows]))
    label = schema.category_label
    predicted = np.array([label(r["prediction"]) for r in rows], dtype=object)
    if columns is None:
        return Answers(predicted)
    named = [{label(c): v for c, v in r["probabilities"].items()} for r in rows]
    return Answers(predicted, np.array([[p.get(c, 0.0) for c in columns] for p in named]))


def _answers(rows: list[dict], task: str) -> tuple[np.ndarray, Answers, list | None]:
    """(the labels, the logged answers, the classes) of labelled records (logged_answers
    of one side)."""
    truth, (answers,), classes = logged_answers(rows, [rows], task)
    return truth, answers, classes


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


def _shares(values: np.ndarray) -> dict[str, float]:
    return pd.Series(values).value_counts(normalize=True).sort_index().to_dict()


def slices(frame: pd.DataFrame, rows: int) -> list[tuple[str, np.ndarray]]:
    """(name, row positions) of each slice: all rows, then each group column's values."""
    found = [("all", np.arange(rows))]
    for column in frame.columns:
        given = frame[column]
        # A missing value is a group of its own, as evaluate counts it.
        values = schema.category_text(given).where(given.notna(), diagnosis.MISSING)
        for value, positions in values.groupby(values, sort=True).indices.items():
            found.append((f"{column}={value}", np.asarray(positions)))
    return found


def bias_by_slice(
    truth: np.ndarray, predicted: np.ndarray, frame: pd.DataFrame, task: str
) -> list[dict]:
    """Per slice: classification, the predicted and observed class shares and the largest
    distance between them; regression, the mean prediction and label and their distance
    in standard deviations of the window's labels (None when the labels do not vary)."""
    spread = float(np.std(truth)) if task == "regression" and len(truth) else 0.0
    found = []
    for name, p in slices(frame, len(truth)):
        entry: dict = {"slice": name, "rows": len(p)}
        if not len(p):
            continue
        if task == "regression":
            means = float(predicted[p].mean()), float(truth[p].mean())
            entry.update(mean_prediction=round(means[0], 6), mean_label=round(means[1], 6))
            entry["bias"] = round(abs(means[0] - means[1]) / spread, 6) if spread else None
        else:
            shares, observed = _shares(predicted[p]), _shares(truth[p])
            distance = max(
                abs(shares.get(c, 0.0) - observed.get(c, 0.0)) for c in {*shares, *observed}
            )
            entry.update(predicted=shares, observed=observed, bias=round(distance, 6))
        found.append(entry)
    return found


def bias(entries: list[dict], min_rows: int) -> float | None:
    """The largest bias of the slices with `min_rows` rows; None when none has them."""
    values = [e["bias"] for e in entries if e["rows"] >= min_rows and e["bias"] is not None]
    return max(values) if values else None


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
    figures["bias"] = bias(bias_by_slice(truth, answers.predicted, frame, task), min_rows)
    return figures


# The report of `monitor`: reports/live.json and reports/live.md.


@dataclass(frozen=True)
class Settings:
    """How the live figures are measured: the yardstick (task, metric), the data.groups
    columns, the fewest labelled rows a figure needs (monitor.min_rows), the recent
    slice's share (evaluate.recent_fraction), the window size (alert.min_labelled_rows)."""

    yardstick: Yardstick
    groups: list[str]
    min_rows: int
    recent_fraction: float
    window_rows: int


def _parsed(texts: list[str | None]) -> pd.Series:
    return pd.to_datetime(pd.Series(texts, dtype="string"), utc=True, format="ISO8601")


def recent(rows: list[dict], times: pd.Series, settings: Settings) -> dict:
    """The metric of the latest recent_fraction of the labelled rows by time, as
    evaluate's recent slice (ties with the cutoff included)."""
    mask, cutoff = diagnosis.recent_mask(times.reset_index(drop=True), settings.recent_fraction)
    chosen = [rows[i] for i in np.flatnonzero(mask)]
    scored = live_metric(chosen, settings.yardstick, settings.min_rows)
    found = {"rows": len(chosen), "since": None if cutoff is None else cutoff.isoformat()}
    return {**found, "metric": {k: v for k, v in scored.items() if k != "rows"}}


def version_figures(rows: list[dict], times: pd.Series, settings: Settings) -> dict:
    """One model version's figures on its labelled rows (in time order, `times` theirs):
    window_figures', the metrics of all rows, per class, per group, bias per slice and
    the recent slice."""
    yardstick, task = settings.yardstick, settings.yardstick.task
    figures = window_figures(rows, yardstick, settings.groups, settings.min_rows)
    if not rows:
        return figures
    try:
        truth, answers, classes = _answers(rows, task)
    except (ValueError, TypeError, KeyError):
        return figures  # the metric says why
    predicted, frame = answers.predicted, group_frame(rows, settings.groups)
    with warnings.catch_warnings():
        # A version that met one class only makes balanced accuracy warn; the value stands.
        warnings.simplefilter("ignore", UserWarning)
        figures["overall"] = diagnosis.slice_metrics(truth, predicted, task)
    if task == "classification":
        figures["per_class"], _ = diagnosis.per_class(truth, predicted, classes, 0)
    figures["per_group"] = diagnosis.per_group(truth, predicted, frame, task, settings.min_rows)
    figures["bias_by_slice"] = bias_by_slice(truth, predicted, frame, task)
    figures["recent"] = recent(rows, times, settings)
    return figures


def coverage(records: list[dict]) -> dict:
    """Labelled rows against logged rows, overall and per model version."""

    def share(rows: list[dict]) -> dict:
        done = len(labelled(rows))
        return {"logged": len(rows), "labelled": done, "share": round(done / len(rows), 6)}

    versions = by_version(records).items()
    return {
        **share(records),
        "by_version": {v: share([records[i] for i in p]) for v, p in versions},
    }


def freshness(records: list[dict], now: pd.Timestamp) -> dict:
    """When the newest label arrived and how old it is, and the median time from a
    prediction to its label (a label the request carried came with it: no delay)."""
    rows = labelled(records)
    if not rows:
        return dict.fromkeys(["newest_label", "newest_label_age_seconds", "median_delay_seconds"])
    predicted = _parsed([r["time"] for r in rows])
    arrived = _parsed([r.get("label_time") or r["time"] for r in rows])
    newest = arrived.max()
    return {
        "newest_label": newest.isoformat(),
        "newest_label_age_seconds": round((now - newest).total_seconds(), 3),
        "median_delay_seconds": round((arrived - predicted).dt.total_seconds().median(), 3),
    }


def version_of(record: dict) -> str:
    return str(record.get("model_version") or "unknown")


def by_version(records: list[dict]) -> dict[str, list[int]]:
    """The positions of each model version's records, versions in the order they first
    answered."""
    found: dict[str, list[int]] = {}
    for i, record in enumerate(records):
        found.setdefault(version_of(record), []).append(i)
    return found


def timeline(records: list[dict], size: int) -> list[list[dict]]:
    """The records (in time order) cut into windows of `size` labelled rows, each with
    the unlabelled rows predicted among them, as the alert rules count windows; the
    rows after the last whole window are a last window short of labels."""
    windows, current, count = [], [], 0
    for record in records:
        current.append(record)
        count += "label" in record
        if count == size:
            windows.append(current)
            current, count = [], 0
    if current:
        windows.append(current)
    return windows


def group_metrics(rows: list[dict], settings: Settings) -> dict:
    """Per group column, each value's gap metric (balanced accuracy; RMSE) and rows."""
    task = settings.yardstick.task
    try:
        truth, answers, _ = _answers(rows, task)
    except (ValueError, TypeError, KeyError):
        return {}
    if not len(truth):
        return {}
    found = diagnosis.per_group(
        truth, answers.predicted, group_frame(rows, settings.groups), task, settings.min_rows
    )
    metric = diagnosis.GAP_METRIC[task]
    return {
        column: {v: {"value": e[metric], "rows": e["rows"]} for v, e in entry.items() if v != "gap"}
        for column, entry in found.items()
    }


def window_entry(rows: list[dict], times: pd.Series, settings: Settings, estimate) -> dict:
    """One window of the timeline: its span, versions, figures (on its labelled rows,
    at least window_rows of them), each group's metric, and the estimate of all its rows."""
    figures = window_figures(rows, settings.yardstick, settings.groups, settings.window_rows)
    return {
        "from": times.iloc[0].isoformat(),
        "to": times.iloc[-1].isoformat(),
        "rows": len(rows),
        "versions": list(by_version(rows)),
        "complete": figures["labelled"] >= settings.window_rows,
        **figures,
        "per_group": group_metrics(labelled(rows), settings),
        "estimate": estimate(rows),
    }


def windows(records: list[dict], times: pd.Series, settings: Settings, estimate) -> dict:
    """The timeline's windows (timeline), each a window_entry."""
    found, start = [], 0
    for chunk in timeline(records, settings.window_rows):
        span = times.iloc[start : start + len(chunk)]
        found.append(window_entry(chunk, span, settings, estimate))
        start += len(chunk)
    return {"labelled_rows": settings.window_rows, "list": found}


def report(records: list[dict], times: pd.Series, settings: Settings, estimate) -> dict:
    """The live report of joined records in time order (`times` theirs): coverage, per
    model version its figures and estimates, the timeline's windows. estimate: the CBPE
    of a list of records (cbpe.Estimator)."""
    result: dict = {
        "task": settings.yardstick.task,
        "metric": settings.yardstick.metric,
        "min_rows": settings.min_rows,
        "versions": list(by_version(records)),
        "current_version": version_of(records[-1]),
        "coverage": coverage(records),
        "by_version": {},
    }
    for version, picked in by_version(records).items():
        rows = [records[i] for i in picked]
        own = [i for i in picked if "label" in records[i]]
        figures = version_figures([records[i] for i in own], times.iloc[own], settings)
        figures["estimate"] = estimate(rows)
        figures["estimate_unlabelled"] = estimate([r for r in rows if "label" not in r])
        result["by_version"][version] = figures
    result["windows"] = windows(records, times, settings, estimate)
    return result


def _value(figure: dict | None) -> str:
    """A metric's value, an estimate's with its interval, or why there is none."""
    if not figure or figure.get("value") is None:
        return f"none ({figure['why']})" if figure and figure.get("why") else "none"
    if figure.get("estimate"):
        # Which versions' rows it covered (cbpe.Estimator), and the rows it could not.
        covered = f" of {', '.join(figure['versions'])}" if figure.get("versions") else ""
        left = figure.get("not_estimated")
        covered += f"; {left} rows not estimated" if left else ""
        return f"~{figure['value']} [{figure['lower']}, {figure['upper']}] (estimate{covered})"
    return str(figure["value"])


def _or_none(value: float | None) -> str:
    """A figure, or `none` where too few rows gave one."""
    return "none" if value is None else str(value)


def _version_lines(version: str, figures: dict, metric: str) -> list[str]:
    lines = [
        f"## Version {version}",
        "",
        f"- {metric} on {figures['labelled']} labelled rows: {_value(figures['metric'])}",
        f"- estimated without labels, all its rows: {_value(figures['estimate'])}",
        f"- estimated, its unlabelled rows: {_value(figures['estimate_unlabelled'])}",
        f"- largest prediction bias: {_or_none(figures['bias'])}; group gaps: "
        + (", ".join(f"{c} {_or_none(g)}" for c, g in figures["group_gaps"].items()) or "none"),
    ]
    if "recent" in figures:
        scored = figures["recent"]
        lines.append(
            f"- recent slice ({scored['rows']} rows since {scored['since']}): "
            f"{_value(scored['metric'])}"
        )
    for name, entry in figures.get("per_class", {}).items():
        lines.append(
            f"- class {name}: recall {entry['recall']}, precision {entry['precision']}, "
            f"F1 {entry['f1']} ({entry['support']} rows)"
        )
    return lines + [""]


def summary(report: dict) -> str:
    """The live report as Markdown for people."""
    covered, fresh = report["coverage"], report["freshness"]
    lines = [
        "# Live metrics",
        "",
        f"{covered['labelled']} of {covered['logged']} logged rows have a label "
        f"({covered['share'] * 100:.1f}%); versions in the log: {', '.join(report['versions'])} "
        f"(now {report['current_version']}).",
        f"Newest label: {fresh['newest_label']} ({fresh['newest_label_age_seconds']} s ago); "
        f"median delay from prediction to label: {fresh['median_delay_seconds']} s.",
        "Figures marked (estimate) are CBPE's, from the logged probabilities, not from "
        "labels: blind to concept drift (docs/serving.md: The estimate without labels).",
        "",
    ]
    for version, figures in report["by_version"].items():
        lines += _version_lines(version, figures, report["metric"])
    lines += [
        f"## Windows of {report['windows']['labelled_rows']} labelled rows",
        "",
        "| from | to | rows | labelled | versions | metric | estimate | bias |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for entry in report["windows"]["list"]:
        lines.append(
            f"| {entry['from']} | {entry['to']} | {entry['rows']} | {entry['labelled']} | "
            f"{', '.join(entry['versions'])} | {_value(entry['metric'])} | "
            f"{_value(entry['estimate'])} | {entry['bias']} |"
        )
    return "\n".join(lines) + "\n"
