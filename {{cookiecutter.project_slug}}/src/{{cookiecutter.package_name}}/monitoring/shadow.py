"""The champion and its shadow compared on the same requests (`monitor`'s
reports/shadow.json and reports/shadow.md).

Each record of serve.shadow_log is joined to the champion's by its row id. Over those
pairs: agreement (classification: the share of rows both predict alike; regression:
the mean absolute difference and the share within TOLERANCE of the champion), the PSI
between the two models' prediction distributions (class shares; regression: quantile
bins of the champion's predictions, as monitor bins a numeric feature), the shadow's
compute time, and on the pairs with a label (serve.feedback_log, or the request's own)
both models' headline metric on the very same rows. `decide --challenger shadow` scores
the same labelled pairs (labelled_answers).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import orjson
import pandas as pd

from ..core import io
from ..core.params import MonitorParams, Params, ServiceParams
from ..decision.bootstrap import Scoring
from ..decision.verdicts import Answers, Yardstick
from ..serving import prediction_log
from . import labels, live
from .monitor import Logged, categorical_drift, numeric_drift

log = logging.getLogger(__name__)

SHADOW_REPORT = Path("reports/shadow.json")
SHADOW_SUMMARY = Path("reports/shadow.md")
# Regression: a shadow's prediction agrees when within 5% of the champion's (relative: the
# target's unit is the project's).
TOLERANCE = 0.05
# What a shadow record needs to be compared (serving/shadow.py writes more).
KEYS = ("id", "prediction", "git_revision")


def read(path: Path) -> list[dict]:
    """The shadow log's records, oldest first (backups too); lines that are no record
    (torn by a crash) are skipped."""
    records = []
    for _, data in prediction_log.file_bytes(path):
        for line in data.splitlines():
            try:
                record = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
            if isinstance(record, dict) and all(key in record for key in KEYS):
                records.append(record)
    return records


def pairs(champion: list[dict], shadow: list[dict]) -> list[tuple[dict, dict]]:
    """(the champion's record, the shadow's) of every row both scored, in the shadow's
    order; champion records carry their label when joined (labels.joined)."""
    by_id = {prediction_log.row_id(record): record for record in champion}
    return [(by_id[s["id"]], s) for s in shadow if s["id"] in by_id]


def agreement(matched: list[tuple[dict, dict]], task: str) -> dict:
    if task == "classification":
        same = [str(c["prediction"]) == str(s["prediction"]) for c, s in matched]
        return {"share_equal": round(float(np.mean(same)), 6)}
    ours, theirs = _numbers(matched)
    difference = np.abs(theirs - ours)
    within = difference <= TOLERANCE * np.maximum(np.abs(ours), np.abs(theirs))
    return {
        "mean_absolute_difference": round(float(difference.mean()), 6),
        "share_within_tolerance": round(float(within.mean()), 6),
        "tolerance": f"{TOLERANCE * 100:.0f}% of the larger prediction",
    }


def _numbers(matched: list[tuple[dict, dict]]) -> tuple[np.ndarray, np.ndarray]:
    ours = np.array([float(c["prediction"]) for c, _ in matched])
    return ours, np.array([float(s["prediction"]) for _, s in matched])


def prediction_psi(matched: list[tuple[dict, dict]], task: str, rules: MonitorParams) -> float:
    """PSI of the shadow's predictions against the champion's, as monitor measures a
    feature's drift (a class the champion never predicted is a bucket of its own)."""
    if task == "classification":
        ours = pd.Series([str(c["prediction"]) for c, _ in matched])
        theirs = pd.Series([str(s["prediction"]) for _, s in matched])
        return categorical_drift(ours, theirs, rules)["psi"]
    ours, theirs = (pd.Series(values) for values in _numbers(matched))
    return numeric_drift(ours, theirs, rules)["psi"]


def latency(shadow: list[dict]) -> dict:
    """The shadow's compute time for the batch each row was scored in (ms)."""
    times = np.array([float(s.get("latency_ms") or 0.0) for s in shadow])
    return {
        "p50_ms": round(float(np.percentile(times, 50)), 3),
        "p99_ms": round(float(np.percentile(times, 99)), 3),
    }


def labelled_answers(
    matched: list[tuple[dict, dict]], task: str
) -> tuple[np.ndarray, Answers, Answers, list | None]:
    """(the labels, the champion's answers, the shadow's, the classes: proba's columns)
    on the labelled pairs (live.logged_answers: probabilities only when both models
    logged them)."""
    labelled = [(c, s) for c, s in matched if c.get("label") is not None]
    ours = [c for c, _ in labelled]
    truth, (champion, shadow), classes = live.logged_answers(
        ours, [ours, [s for _, s in labelled]], task
    )
    return truth, champion, shadow, classes


def live_metrics(matched: list[tuple[dict, dict]], yardstick: Yardstick) -> dict:
    """Both models' headline metric on the same labelled pairs (None when it cannot be
    scored on them: too few rows, one class only, no probabilities for a metric that
    needs them)."""
    truth, champion, shadow, classes = labelled_answers(matched, yardstick.task)
    result = {"metric": yardstick.metric, "labelled": len(truth), "champion": None, "shadow": None}
    if not len(truth):
        return result
    scoring = Scoring(yardstick.metric, yardstick, truth, classes)
    for side, answers in (("champion", champion), ("shadow", shadow)):
        try:
            value = scoring.score(answers)
        except AttributeError:  # a scorer that needs probabilities the log lacks
            value = None
        result[side] = None if value is None else round(value, 6)
    return result


def report(
    champion: list[dict], shadow: list[dict], yardstick: Yardstick, rules: MonitorParams
) -> dict:
    """The comparison of the shadowed rows (champion records joined to their labels)."""
    matched = pairs(champion, shadow)
    found: dict = {
        "shadow_rows": len(shadow),
        "paired_rows": len(matched),
        "shadow": [
            {"version": version, "git_revision": revision}
            for version, revision in sorted(
                {(s["model_version"], s["git_revision"]) for s in shadow}
            )
        ],
        "champion_md5": sorted({c.get("model_md5") for c, _ in matched} - {None}),
    }
    if not matched:
        return found
    return {
        **found,
        "agreement": agreement(matched, yardstick.task),
        "prediction_psi": round(prediction_psi(matched, yardstick.task, rules), 6),
        "latency": latency([s for _, s in matched]),
        "live": live_metrics(matched, yardstick),
    }


def summary(found: dict) -> str:
    """The report as Markdown for people."""
    lines = ["# The challenger in the shadow", ""]
    shadows = ", ".join(
        f"{s['version']} ({(s['git_revision'] or '')[:12]})" for s in found["shadow"]
    )
    lines.append(f"{found['paired_rows']} rows scored by both the champion and {shadows}.")
    if not found["paired_rows"]:
        return "\n".join(lines) + "\n"
    figures = {**found["agreement"], "prediction_psi": found["prediction_psi"]}
    figures.update({f"shadow latency {k}": v for k, v in found["latency"].items()})
    live = found["live"]
    figures[f"labelled rows ({live['metric']})"] = live["labelled"]
    figures[f"champion {live['metric']}"] = live["champion"]
    figures[f"shadow {live['metric']}"] = live["shadow"]
    lines += ["", "| figure | value |", "| --- | --- |"]
    lines += [f"| {name} | {'-' if v is None else v} |" for name, v in figures.items()]
    return "\n".join(lines) + "\n"


def write(params: Params, service: ServiceParams, logged: Logged) -> dict | None:
    """reports/shadow.json and .md when the shadow log (serve.shadow_log) holds records,
    of the champion's rows `monitor` read (its log, from `since` on: logged_rows); None,
    and nothing written, without a shadow log. Called by `monitor` after its drift
    report."""
    shadow_log = Path(service.serve.shadow_log)
    shadow = read(shadow_log)
    if not shadow:
        return None
    joined = labels.joined(logged.rows, labels.latest(Path(service.serve.feedback_log)))
    yardstick = Yardstick(params.task, params.metric, params.business)
    found = report(joined, shadow, yardstick, service.monitor)
    found["log"] = str(shadow_log)
    io.write_json(SHADOW_REPORT, found)
    io.write_text(SHADOW_SUMMARY, summary(found))
    log.info("shadow report %s: %d rows paired", SHADOW_REPORT, found["paired_rows"])
    return found
