"""When the closed loop retrains: pure functions of the turn records, the window's
figures and the policy in service.yaml's loop: (the turn that reads and acts on them is
loop.py)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from ..core.errors import ConfigError
from ..core.params import LoopParams
from ..monitoring import monitor


def parse_now(text: str | None) -> dt.datetime:
    """The turn's time, UTC, to the second: `--now` (ISO 8601, UTC without a zone), else
    the clock."""
    if text is None:
        return dt.datetime.now(dt.UTC).replace(microsecond=0)
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(
            f"--now {text!r} is not a date or time: use ISO 8601 (2026-01-31T12:00:00Z)"
        ) from None
    when = when.replace(tzinfo=dt.UTC) if when.tzinfo is None else when.astimezone(dt.UTC)
    return when.replace(microsecond=0)


def recorded_time(text: str | None) -> dt.datetime | None:
    return None if text is None else dt.datetime.fromisoformat(text)


def retrains(history: list[dict]) -> list[dict]:
    """The records of the turns that ran a challenger."""
    return [r for r in history if r.get("experiment")]


def since_retrain(history: list[dict]) -> list[dict]:
    """The records after the last retrain's (all of them when none retrained)."""
    last = max((i for i, r in enumerate(history) if r.get("experiment")), default=-1)
    return history[last + 1 :]


def breaches(flags: list[bool], loop: LoopParams) -> tuple[int, int]:
    """(windows that breached, windows counted) among the last loop.windows flags."""
    recent = flags[-loop.windows :]
    return sum(recent), len(recent)


def trigger(
    now: dt.datetime,
    flags: list[bool] | None,
    *,
    retrained: dt.datetime | None,
    model_time: dt.datetime | None,
    loop: LoopParams,
) -> tuple[str | None, str | None]:
    """(why the turn retrains, None) or (None, why not). flags: whether each window since
    the last retrain breached, this turn's last; None when this turn's window is carried.
    retrained: the last retrain's time; model_time: when the model was committed, where
    the schedule starts without a retrain."""
    if retrained is not None and now - retrained < dt.timedelta(hours=loop.cooldown_hours):
        until = retrained + dt.timedelta(hours=loop.cooldown_hours)
        return None, f"cooldown until {until.isoformat()} (loop.cooldown_hours)"
    count, counted = breaches(flags or [], loop)
    if flags is not None and count >= loop.breaches:
        return f"{count} of the last {counted} windows breached", None
    start = retrained or model_time
    if loop.every_days is not None and start is not None:
        age = (now - start) / dt.timedelta(days=1)
        if age >= loop.every_days:
            return f"schedule: last retrain {age:.1f} days ago (loop.every_days)", None
    if flags is None:
        return None, f"window carried: fewer than {loop.min_rows} rows (loop.min_rows)"
    return None, f"{count} of the last {counted} windows breached, {loop.breaches} needed"


def window(
    records: list[dict], start: dt.datetime | None, end: dt.datetime
) -> tuple[list[dict], pd.Series]:
    """The records whose time (monitor.row_times) is after `start` and not after `end`,
    in time order; their times."""
    chosen, times = monitor.window(records, None)
    keep = times <= pd.Timestamp(end)
    if start is not None:
        keep &= times > pd.Timestamp(start)
    picked = np.flatnonzero(keep.to_numpy())
    return [chosen[i] for i in picked], times[keep].reset_index(drop=True)


def breach_reasons(drifted: list[str], live: dict | None, loop: LoopParams) -> list[str]:
    """Why a counted window breaches (empty: it does not)."""
    reasons = []
    if len(drifted) >= loop.min_drifted_features:
        reasons.append(f"{len(drifted)} features drift")
    floor = loop.live_metric_floor
    value = None if live is None else live["value"]
    if floor is not None and value is not None and value < floor:
        reasons.append(f"live {live['metric']} {value} < {floor}")
    return reasons


def figures(record: dict) -> str:
    """A record's figures in one line: the commit message's and the command's."""
    parts = [f"{record['rows']} rows"]
    if record.get("drifted_features") is not None:
        drifted = record["drifted_features"]
        parts.append(f"{len(drifted)} drifted" + (f" ({', '.join(drifted)})" if drifted else ""))
    live = record.get("live_metric")
    if live and live["value"] is not None:
        parts.append(f"live {live['metric']} {live['value']} on {live['rows']} rows")
    if record.get("breaches") is not None:
        parts.append(f"breaches {record['breaches']} of {record['windows']}")
    parts.append(record["trigger"] or record["why_no_trigger"])
    done = record.get("rollback")
    if done and "refused" in done:
        parts.insert(0, "the alert acts, but no earlier version to roll back to")
    elif done:
        parts.insert(0, f"prod rolled back {done['from']} -> {done['to']}")
    return "; ".join(parts)
