"""When the model in prod has gone wrong: service.yaml's alert: rules, judged on windows
of the labelled rows that version answered (pure functions; decision/rollback.py acts).

A window is alert.min_labelled_rows consecutive labelled rows (joined records,
monitoring/labels.py) that the version now in prod answered since it was last assigned
prod, in the order they were predicted; the last, partial one is no window. Rows from an
earlier spell in prod do not count: a version rolled back to starts afresh, so a rollback
is never acted on twice. A window breaches when its live metric is below min_metric, a
data.groups column's gap above max_group_gap, or the prediction bias above max_bias (the
figures of monitoring/live.py). The verdict acts when `breaches` of the last `windows`
windows breached: one noisy window never acts.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from ..core.params import AlertParams

# A window's figures: {labelled, metric: {name, value[, why]}, group_gaps, bias}.
Figures = Callable[[list[dict]], dict]


def _time(record: dict) -> dt.datetime:
    return dt.datetime.fromisoformat(record["time"])


def windows(
    records: list[dict], version: str, size: int, since: dt.datetime | None = None
) -> list[list[dict]]:
    """The alert windows of `version`: its labelled records answered at or after `since`,
    in prediction-time order (the log's time, then the row), `size` to a window."""
    picked = [
        r
        for r in records
        if "label" in r
        and r.get("model_version") == version
        and (since is None or _time(r) >= since)
    ]
    picked.sort(key=lambda r: (_time(r), r.get("request_id") or "", r.get("row", 0)))
    whole = len(picked) - len(picked) % size
    return [picked[start : start + size] for start in range(0, whole, size)]


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(float(value), 6)


def breach_reasons(figures: dict, alert: AlertParams) -> list[str]:
    """Why a window breaches (empty: it does not). A figure that is None (too few rows
    for it) breaches nothing."""
    reasons = []
    name, value = figures["metric"]["name"], figures["metric"]["value"]
    if value is not None and value < alert.min_metric:
        reasons.append(f"live {name} {value:.4g} < min_metric {alert.min_metric}")
    for column, gap in sorted(figures["group_gaps"].items()):
        if gap is not None and gap > alert.max_group_gap:
            reasons.append(f"{column} gap {gap:.4g} > max_group_gap {alert.max_group_gap}")
    if figures["bias"] is not None and figures["bias"] > alert.max_bias:
        reasons.append(f"bias {figures['bias']:.4g} > max_bias {alert.max_bias}")
    return reasons


def figured(window: list[dict], figures: Figures, alert: AlertParams) -> dict:
    """One window's record: its first and last prediction time, figures and breaches."""
    found = figures(window)
    return {
        "from": window[0]["time"],
        "to": window[-1]["time"],
        "labelled": found["labelled"],
        "metric": {**found["metric"], "value": _rounded(found["metric"]["value"])},
        "group_gaps": {c: _rounded(g) for c, g in sorted(found["group_gaps"].items())},
        "bias": _rounded(found["bias"]),
        "breach": breach_reasons(found, alert),
    }


def judge(
    records: list[dict],
    version: str,
    since: dt.datetime | None,
    figures: Figures,
    alert: AlertParams,
) -> dict:
    """The verdict on `version` (JSON-ready): the last alert.windows windows with their
    figures and breaches, how many breached, whether to act, and a one-line summary.
    Only those windows are scored: the cost is bounded by alert.windows windows."""
    cut = windows(records, version, alert.min_labelled_rows, since)
    recent = [figured(w, figures, alert) for w in cut[-alert.windows :]]
    breached = sum(bool(w["breach"]) for w in recent)
    act = breached >= alert.breaches
    summary = (
        f"{version}: {breached} of the last {len(recent)} windows of "
        f"{alert.min_labelled_rows} labelled rows breached ({alert.breaches} of "
        f"{alert.windows} act)"
    )
    if act:
        latest = next(w["breach"] for w in reversed(recent) if w["breach"])
        summary += f"; the latest: {', '.join(latest)}"
    return {
        "version": version,
        "since": since.isoformat() if since else None,
        "windows_total": len(cut),
        "windows": recent,
        "breached": breached,
        "act": act,
        "summary": summary,
    }
