"""Monitoring: do the inputs the server saw (its prediction log) drift from the training data?

Per feature, the population stability index PSI = sum (live% - train%) * ln(live% / train%)
over buckets: for a numeric feature, quantile bins of the training values; for a
categorical one, its training categories plus "(unseen)"; missing values are a bucket of
their own in both. Numeric features also get a two-sample Kolmogorov-Smirnov test (scipy).
A feature drifts when PSI >= monitor.psi_threshold or, numeric, KS p-value < monitor.ks_alpha.

Each logged row's time is its event time (data.time, when the request gave it), else the
time the server received it: `--since` keeps the rows from a time on, the report gives
their period, and a batch lists them in time order.

Beside drift, the live report (monitoring/live.py) scores the logged answers against
the labels that arrived (serve.feedback_log, joined by id; a label the request carried
counts too), estimates the metric without labels (monitoring/cbpe.py), and the page
(monitoring/page.py) draws both and the drift.

The log can also become a raw data batch (`--to-batch`), so production rows re-enter the
pipeline: the raw data's columns, features from the log, each row's time in data.time,
the target left empty to be labelled.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from ..core import io, paths
from ..core.errors import ConfigError, DataError
from ..core.params import MonitorParams, Params, ServiceParams
from ..decision.verdicts import Yardstick
from ..export import manifest
from ..serving import prediction_log
from ..tables import schema
from . import cbpe, labels, live, page

log = logging.getLogger(__name__)

# Outputs of `monitor`, not of the pipeline (dvc.yaml does not know them).
DRIFT_REPORT = Path("reports/drift.json")
DRIFT_SUMMARY = Path("reports/drift.md")
LIVE_REPORT = Path("reports/live.json")
LIVE_SUMMARY = Path("reports/live.md")
PAGE = Path("reports/monitor.html")
MISSING = "(missing)"
UNSEEN = "(unseen)"
# Empty buckets get this share, so ln() stays finite (the usual PSI convention).
EPSILON = 1e-4


def psi(reference: pd.Series, live: pd.Series) -> float:
    """PSI of two bucket-share series (indexes = buckets)."""
    buckets = reference.index.union(live.index)
    ref = reference.reindex(buckets, fill_value=0.0).clip(lower=EPSILON)
    cur = live.reindex(buckets, fill_value=0.0).clip(lower=EPSILON)
    return float(((cur - ref) * np.log(cur / ref)).sum())


def _shares(labels: pd.Series) -> pd.Series:
    return labels.value_counts(normalize=True, sort=False)


def numeric_drift(reference: pd.Series, live: pd.Series, rules: MonitorParams) -> dict:
    ref_values = reference.dropna().to_numpy(dtype=float)
    live_values = live.dropna().to_numpy(dtype=float)
    inner = np.unique(np.quantile(ref_values, np.linspace(0, 1, rules.bins + 1)[1:-1]))
    edges = np.concatenate([[-np.inf], inner, [np.inf]])

    def bucket(values: pd.Series) -> pd.Series:
        codes = pd.cut(values.astype(float), edges, labels=False, right=True)
        return codes.map(lambda c: MISSING if pd.isna(c) else f"bin{int(c):03d}")

    value = psi(_shares(bucket(reference)), _shares(bucket(live)))
    result: dict = {"kind": "numeric", "psi": round(value, 6)}
    if len(ref_values) and len(live_values):
        test = stats.ks_2samp(ref_values, live_values)
        result["ks_statistic"] = round(float(test.statistic), 6)
        result["ks_pvalue"] = float(f"{test.pvalue:.6g}")
        result["live_mean"] = round(float(live_values.mean()), 6)
    result["train_mean"] = round(float(ref_values.mean()), 6) if len(ref_values) else None
    result["drift"] = bool(
        value >= rules.psi_threshold or result.get("ks_pvalue", 1.0) < rules.ks_alpha
    )
    return result


def categorical_drift(reference: pd.Series, live: pd.Series, rules: MonitorParams) -> dict:
    known = set(reference.dropna().astype(str))

    def bucket(values: pd.Series) -> pd.Series:
        text = schema.category_text(values)
        return text.map(lambda v: MISSING if pd.isna(v) else (v if v in known else UNSEEN))

    live_buckets = bucket(live)
    value = psi(_shares(bucket(reference)), _shares(live_buckets))
    return {
        "kind": "categorical",
        "psi": round(value, 6),
        "unseen_share": round(float((live_buckets == UNSEEN).mean()), 6) if len(live) else 0.0,
        "drift": bool(value >= rules.psi_threshold),
    }


def drift_report(
    reference: pd.DataFrame, live: pd.DataFrame, roles: schema.Roles, rules: MonitorParams
) -> dict:
    """Per-feature drift of `live` rows against `reference` rows (both raw feature columns)."""
    report: dict = {
        "reference_rows": len(reference),
        "live_rows": len(live),
        "thresholds": rules.model_dump(),
        "features": {},
    }
    if len(live) < rules.min_rows:
        report["enough_rows"] = False
        report["drift"] = False
        report["drifted_features"] = []
        return report
    for column in roles.numeric:
        live_column = pd.to_numeric(live[column], errors="coerce")
        report["features"][column] = numeric_drift(reference[column], live_column, rules)
    for column in roles.categorical:
        report["features"][column] = categorical_drift(reference[column], live[column], rules)
    drifted = sorted(c for c, r in report["features"].items() if r["drift"])
    report.update(enough_rows=True, drift=bool(drifted), drifted_features=drifted)
    return report


def summary(report: dict) -> str:
    """The report as Markdown for people."""
    lines = ["# Input drift", ""]
    if not report["enough_rows"]:
        lines.append(
            f"Only {report['live_rows']} logged rows (need {report['thresholds']['min_rows']}): "
            "no verdict."
        )
        return "\n".join(lines) + "\n"
    verdict = ", ".join(report["drifted_features"]) if report["drift"] else "none"
    lines += [
        f"{report['live_rows']} logged rows against {report['reference_rows']} training rows. "
        f"Drifted features: {verdict}.",
        "",
    ]
    if report.get("skipped_lines"):
        lines += [
            f"{report['skipped_lines']} lines of the log were no whole record (torn by a "
            "crash, or edited): skipped.",
            "",
        ]
    if "period" in report:
        when = report["period"]
        lines += [
            f"Rows from {when['from']} to {when['to']} ({when['event_time_rows']} by their "
            "event time, the others by arrival).",
            "",
        ]
    lines += [
        "| feature | kind | PSI | KS p-value | drift |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, result in report["features"].items():
        pvalue = result.get("ks_pvalue", "")
        lines.append(
            f"| {name} | {result['kind']} | {result['psi']} | {pvalue} | "
            f"{'yes' if result['drift'] else 'no'} |"
        )
    return "\n".join(lines) + "\n"


def logged_inputs(records: list[dict], roles: schema.Roles) -> pd.DataFrame:
    return pd.DataFrame([r["inputs"] for r in records], columns=roles.features)


def row_times(records: list[dict]) -> pd.Series:
    """Each logged row's time, UTC: its event time, else its arrival (a log written before
    event times were logged has arrival times only)."""
    times = [r.get("event_time") or r["time"] for r in records]
    return pd.to_datetime(pd.Series(times, dtype="string"), utc=True, format="ISO8601")


def since_time(text: str | None) -> pd.Timestamp | None:
    """`--since` as a UTC time: ISO 8601 text, read as UTC without a zone."""
    if text is None:
        return None
    try:
        when = pd.Timestamp(dt.datetime.fromisoformat(text))
    except ValueError:
        raise ConfigError(
            f"--since {text!r} is not a date or time: use ISO 8601 (2026-01-31 or "
            "2026-01-31T12:00:00Z)"
        ) from None
    return when.tz_localize("UTC") if when.tzinfo is None else when.tz_convert("UTC")


def window(records: list[dict], since: pd.Timestamp | None) -> tuple[list[dict], pd.Series]:
    """(the records at or after `since`, ordered by row_times, arrival order within one
    time; their times)."""
    times = row_times(records)
    if since is not None:
        times = times[times >= since]
    times = times.sort_values(kind="stable")
    return [records[i] for i in times.index], times.reset_index(drop=True)


def period(records: list[dict], times: pd.Series) -> dict:
    """The first and last row time, and how many rows had an event time."""
    return {
        "from": times.iloc[0].isoformat(),
        "to": times.iloc[-1].isoformat(),
        "event_time_rows": sum(bool(r.get("event_time")) for r in records),
    }


def raw_columns() -> list[str]:
    """The raw data's columns, in order: the ingested snapshot's, minus ingest's own."""
    import pyarrow.dataset as ds

    if not paths.INGESTED.exists():
        raise DataError(f"{paths.INGESTED} does not exist: run `dvc repro` to build it")
    # A dataset: the local engine's file, or the dask engine's folder of parts.
    names = ds.dataset(paths.INGESTED, format="parquet").schema.names
    return [c for c in names if c not in schema.BOOKKEEPING]


def to_batch(records: list[dict], columns: list[str], params: Params) -> pd.DataFrame:
    """Logged rows in the raw data's columns: features as logged, data.time the row's time
    (row_times), the rest empty, ids from the request (when data.id_column is set) so that
    the batch never repeats an id."""
    times = row_times(records) if params.data.time in columns else None
    rows = []
    for n, record in enumerate(records):
        row = {c: record["inputs"].get(c) for c in columns}
        if times is not None:
            row[params.data.time] = times.iloc[n].isoformat()
        if params.data.id_column:
            row[params.data.id_column] = f"log-{record['request_id']}-{record['row']}"
        rows.append(row)
    id_column = params.data.id_column
    extra = [id_column] if id_column and id_column not in columns else []
    return pd.DataFrame(rows, columns=columns + extra)


def exported_roles() -> schema.Roles:
    """The feature roles of the exported model, once models/ is one export and the
    training split is the one that model was trained on (model.json's data.train_md5):
    the logged inputs are compared with the data of the model that answered them."""
    files = manifest.check_workspace()
    meta = json.loads(files[manifest.METADATA])
    if not paths.TRAIN.exists():
        raise DataError(f"{paths.TRAIN} does not exist: run `dvc repro` to build it")
    if io.file_md5(paths.TRAIN) != meta["data"]["train_md5"]:
        raise DataError(
            f"{paths.TRAIN} is not the training data of the exported model (its md5 is not "
            f"{manifest.METADATA}'s data.train_md5): run `dvc checkout` for the committed "
            "data and model, or `dvc repro` to train on this data"
        )
    return schema.roles_from_dict(meta["features"]["roles"])


def reference() -> tuple[schema.Roles, pd.DataFrame]:
    """The exported model's feature roles and the rows it trained on (exported_roles), less
    augmented copies (ids ending -augN): noise added to training rows, not real data."""
    roles = exported_roles()
    train = io.read_parquet(paths.TRAIN)
    return roles, train[schema.base_ids(train[schema.ID]) == train[schema.ID].astype(str)]


@dataclass(frozen=True)
class Logged:
    """The prediction log as `monitor` reads it, once for all it does (drift, live
    figures, the shadow, the alert): every record, oldest first; the rows from --since
    on, in time order (window), and their times; how many lines were no record."""

    path: Path
    every: list[dict]
    rows: list[dict]
    times: pd.Series
    skipped: int


def logged_rows(log_path: Path, since: str | None) -> Logged:
    """The log read once (Logged); a warning names the first line that was no record
    (torn or edited lines)."""
    contents = prediction_log.load(log_path)
    records, times = window(contents.records, since_time(since))
    if not records:
        after = f" since {since}" if since else ""
        skipped = f" ({contents.warning()})" if contents.unreadable else ""
        raise DataError(
            f"no predictions logged in {log_path}{after}{skipped}: serve some requests first"
        )
    if contents.unreadable:
        log.warning("%s", contents.warning())
    return Logged(log_path, contents.records, records, times, len(contents.unreadable))


def estimator(params: Params, records: list[dict]) -> cbpe.Estimator:
    """CBPE of each model that answered `records`: the workspace's exported model, and
    each registered version the log names, calibrated on its own test split. A version
    whose files the DVC cache lacks is not estimated (one warning)."""
    yardstick = Yardstick(params.task, params.metric, params.business)
    if params.task == "regression":
        return cbpe.Estimator({}, yardstick, params.seed)
    md5, calibration = cbpe.from_export()
    calibrations = {md5: calibration}
    logged = {r.get("model_md5"): r.get("model_version") for r in records}
    for version in sorted({v for m, v in logged.items() if m not in calibrations and v}):
        try:
            found, calibration = cbpe.from_version(version)
        except DataError as exc:
            log.warning("no estimate for the rows %s answered: %s", version, exc)
            continue
        calibrations[found] = calibration
    return cbpe.Estimator(calibrations, yardstick, params.seed)


def live_report(
    records: list[dict], times: pd.Series, roles: schema.Roles, settings: tuple
) -> dict:
    """The live report (live.report) of the records joined to the labels that arrived;
    settings: (params, service)."""
    params, service = settings
    feedback = Path(service.serve.feedback_log)
    joined = labels.joined(records, labels.latest(feedback))
    measured = live.Settings(
        Yardstick(params.task, params.metric, params.business),
        groups=list(roles.groups),
        min_rows=service.monitor.min_rows,
        recent_fraction=params.evaluate.recent_fraction,
        window_rows=service.alert.min_labelled_rows,
    )
    found = live.report(joined, times, measured, estimator(params, joined))
    found["freshness"] = live.freshness(joined, pd.Timestamp.now(tz="UTC"))
    return {"feedback_log": str(feedback), **found}


def main(
    params: Params, service: ServiceParams, logged: Logged, batch: Path | None, fail_on_drift: bool
) -> int:
    """The drift and live reports of the logged rows (logged_rows), or with `batch` those
    rows written as a raw data batch instead."""
    records, times = logged.rows, logged.times
    if batch is not None:
        if batch.exists():
            raise DataError(f"{batch} exists: batches are never overwritten, pick a new name")
        io.write_csv(batch, to_batch(records, raw_columns(), params))
        log.info(
            "wrote %d logged rows to %s; fill in %r, then `dvc add` the folder and `dvc repro`",
            len(records),
            batch,
            params.data.target,
        )
        return 0
    roles, train = reference()
    report = drift_report(train, logged_inputs(records, roles), roles, service.monitor)
    report["log"] = str(logged.path)
    report["skipped_lines"] = logged.skipped
    report["period"] = period(records, times)
    io.write_json(DRIFT_REPORT, report)
    io.write_text(DRIFT_SUMMARY, summary(report))
    found = {"log": str(logged.path), **live_report(records, times, roles, (params, service))}
    io.write_json(LIVE_REPORT, found)
    io.write_text(LIVE_SUMMARY, live.summary(found))
    page.write(PAGE, found, report)
    log.info(
        "drift report %s: %s",
        DRIFT_REPORT,
        f"drift in {', '.join(report['drifted_features'])}" if report["drift"] else "no drift",
    )
    return 3 if report["drift"] and fail_on_drift else 0
