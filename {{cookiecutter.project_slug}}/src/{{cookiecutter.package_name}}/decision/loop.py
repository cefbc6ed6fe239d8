"""One turn of the closed loop (the `loop` command), safe to run from cron or CI.

The window is the prediction log's rows after the previous turn's window (each row's
time as `monitor` reads it: its event time, else its arrival), up to the turn's time
less SETTLE_FLUSHES flushes of the log (a row answered just before the turn may reach
the log a flush later). A window of fewer than loop.min_rows rows is carried: the next
turn's window starts where this one started, and this one counts for nothing but the
schedule. A counted window breaches when at least loop.min_drifted_features features
drift (monitor's rules against the exported model's training split) or when the live
metric (the headline metric on the labelled rows: the target a request carried, or a
label that arrived later through `feedback`) is below
loop.live_metric_floor. The turn retrains when loop.breaches of the last loop.windows
windows since the last retrain breached, or when the last retrain is older than
loop.every_days; never within loop.cooldown_hours of the last retrain.

Before anything else, a turn judges prod by service.yaml's alert: and rolls it back to
the last version that held when the alert acts (decision/rollback.py; committed, it
stays whatever the rest of the turn does). Every turn is one line of decisions/loop.jsonl
(its `rollback` when there was one), committed (a carried window's too, marked
`carried`), so the history says when the loop looked and what it saw. A retrain turns the
window's labelled rows into a batch of data.source and the others into a labelling queue
(data/labelling/, DVC-tracked; a queue file whose target column is filled in completely
becomes a batch at the next retrain), commits them, runs the challenger as a DVC
experiment, lets `decide --apply` judge it, and pushes to the DVC remote when one is set.
A step that fails puts git back where the turn found it and names the step in one line;
a lock keeps two turns from running at once.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import logging
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ..core import io
from ..core.errors import ConfigError, DataError, UserError
from ..core.params import Params, ServiceParams
from ..monitoring import labels, monitor
from ..monitoring.live import live_metric
from ..serving import prediction_log
from ..tables import batches
from ..tools import add_batch
from . import rollback
from .triggers import (
    breach_reasons,
    breaches,
    figures,
    parse_now,
    recorded_time,
    retrains,
    since_retrain,
    trigger,
    window,
)
from .verdicts import EXIT_STATUS, Yardstick

log = logging.getLogger(__name__)

RECORD = Path("decisions/loop.jsonl")
QUEUE = Path("data/labelling")
# In DVC's own temporary folder, which git ignores; flock's lock ends with its process.
LOCK = Path(".dvc/tmp/loop.lock")
STAMP = "%Y%m%dT%H%M%SZ"
SETTLE_FLUSHES = 2


# The turn: reading, assessing, acting.


@dataclass
class Turn:
    """One turn's settings and what it has changed so far (undone when a step fails):
    the files it made, and the queue files it set aside (original, where it lies now)."""

    params: Params
    service: ServiceParams
    now: dt.datetime
    created: list[Path] = field(default_factory=list)
    set_aside: list[tuple[Path, Path]] = field(default_factory=list)

    @property
    def name(self) -> str:
        return f"loop-{self.now.strftime(STAMP)}"


def history(path: Path = RECORD) -> list[dict]:
    """The records of the previous turns, oldest first."""
    if not path.exists():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()
    records = []
    for number, line in enumerate(lines, start=1):
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            record = None
        if not isinstance(record, dict) or not {"time", "window"} <= set(record):
            raise DataError(
                f"{path} line {number} is not a loop record: restore the file from git "
                f"(`git checkout -- {path}`)"
            )
        records.append(record)
    return records


def read_log(path: Path) -> list[dict]:
    """The prediction log's records (none when there is no log yet); a log that cannot be
    read, or holds lines but no record, is an error naming it."""
    try:
        contents = prediction_log.load(path)
    except OSError as exc:
        raise DataError(
            f"cannot read the prediction log {path} ({exc.strerror or exc}): give a readable "
            "file with --log, or fix serve.prediction_log in service.yaml"
        ) from None
    if contents.unreadable and not contents.records:
        raise DataError(f"no prediction record in {path}: {contents.warning()}")
    if contents.unreadable:
        log.warning("%s", contents.warning())
    return contents.records


def assess(
    records: list[dict], past: list[dict], turn: Turn, model_time: dt.datetime | None
) -> tuple[dict, list[dict]]:
    """(this turn's record: its window, figures and trigger; the window's rows). Nothing
    is written."""
    loop = turn.service.loop
    if past and recorded_time(past[-1]["time"]) > turn.now:
        raise ConfigError(
            f"the turn's time {turn.now.isoformat()} is before the last turn's, "
            f"{past[-1]['time']} ({RECORD}): give a later --now"
        )
    counted = [r for r in past if not r.get("carried")]
    start = recorded_time(counted[-1]["window"]["to"]) if counted else None
    settle = dt.timedelta(seconds=SETTLE_FLUSHES * turn.service.serve.log_flush_seconds)
    end = max(turn.now - settle, start) if start else turn.now - settle
    rows, _ = window(records, start, end)
    record: dict = {
        "time": turn.now.isoformat(),
        "window": {"from": start and start.isoformat(), "to": end.isoformat()},
        "rows": len(rows),
        "labelled": sum("label" in r for r in rows),
    }
    flags = None
    if len(rows) >= loop.min_rows:
        record.update(_measured(rows, turn))
        flags = [r["breach"] for r in since_retrain(counted) if "breach" in r]
        flags.append(record["breach"])
        record["breaches"], record["windows"] = breaches(flags, loop)
    else:
        record["carried"] = True
    done = retrains(past)
    retrained = recorded_time(done[-1]["time"]) if done else None
    why, why_not = trigger(turn.now, flags, retrained=retrained, model_time=model_time, loop=loop)
    record.update(trigger=why, why_no_trigger=why_not)
    return record, rows


def _measured(rows: list[dict], turn: Turn) -> dict:
    """A counted window's figures: drifted features, live metric, breach."""
    params, service = turn.params, turn.service
    roles, train = monitor.reference()
    report = monitor.drift_report(train, monitor.logged_inputs(rows, roles), roles, service.monitor)
    yardstick = Yardstick(params.task, params.metric, params.business)
    live = live_metric([r for r in rows if "label" in r], yardstick, service.monitor.min_rows)
    reasons = breach_reasons(report["drifted_features"], live, service.loop)
    return {
        "drifted_features": report["drifted_features"],
        "live_metric": live,
        "breach": bool(reasons),
        "breach_reasons": reasons,
    }


def _run(step: str, *command: str) -> str:
    """Run one step's command; a failure is a UserError naming the step."""
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).strip().splitlines()
        raise UserError(f"step {step} failed: {detail[-1] if detail else 'no output'}")
    return done.stdout.strip()


def _git(*args: str) -> str:
    return _run(f"git {args[0]}", "git", *args)


def _dvc(step: str, *args: str) -> str:
    return _run(step, sys.executable, "-m", "dvc", *args)


def model_time() -> dt.datetime | None:
    """When dvc.lock (the model) was last committed: the schedule's start before any retrain."""
    text = _git("log", "-1", "--format=%cI", "--", "dvc.lock")
    return dt.datetime.fromisoformat(text).astimezone(dt.UTC) if text else None


def labelled_batch(rows: list[dict], turn: Turn) -> pd.DataFrame:
    """Logged rows in the raw data's columns (monitor.to_batch), the target their label."""
    frame = monitor.to_batch(rows, monitor.raw_columns(), turn.params)
    frame[turn.params.data.target] = [r.get("label") for r in rows]
    return frame


def _add_batch(file: Path, turn: Turn, name: str) -> Path:
    data = turn.params.data
    target = add_batch.add_batch(file, add_batch.batch_folder(data), data, name)
    turn.created.append(target)
    return target


def fold_queue(turn: Turn) -> list[str]:
    """Queue files whose target column is filled in completely, made batches (their name
    and -labelled) and taken off the queue: `dvc remove`, and the file set aside (beside
    the lock) until the turn is committed, so that an undone turn can put it back."""
    folded = []
    data = turn.params.data
    for path in sorted(QUEUE.glob("*.csv")):
        frame = batches.read_csv(path, missing_values=data.missing_values)
        if data.target not in frame.columns or frame[data.target].isna().any():
            continue
        # Not the queue's own name: the labelled rows of its turn are a batch of that name.
        _add_batch(path, turn, f"{batches.name(path)}-labelled")
        _dvc("dvc remove", "remove", f"{path}.dvc")
        aside = LOCK.with_name(path.name)
        path.replace(aside)
        turn.set_aside.append((path, aside))
        folded.append(str(path))
    return folded


def write_data(rows: list[dict], turn: Turn) -> dict:
    """The window's labelled rows as a batch, the others as a labelling queue file, and
    the completed queue files as batches, each tracked by DVC; what was written."""
    labelled = [r for r in rows if "label" in r]
    others = [r for r in rows if "label" not in r]
    written: dict = {"batch": None, "queue": None, "from_queue": fold_queue(turn)}
    if labelled:
        staged = LOCK.with_name(f"{turn.name}.csv")
        io.write_csv(staged, labelled_batch(labelled, turn))
        try:
            batch = _add_batch(staged, turn, turn.name)
        finally:
            staged.unlink(missing_ok=True)
        written["batch"] = {"path": str(batch), "rows": len(labelled)}
    if written["batch"] or written["from_queue"]:
        _dvc("dvc add", "add", str(add_batch.batch_folder(turn.params.data)))
    if others:
        queue = QUEUE / f"{turn.name}.csv"
        turn.created += [queue, Path(f"{queue}.dvc")]
        if not (QUEUE / ".gitignore").exists():
            turn.created.append(QUEUE / ".gitignore")
        io.write_csv(queue, monitor.to_batch(others, monitor.raw_columns(), turn.params))
        _dvc("dvc add", "add", str(queue))
        written["queue"] = {"path": str(queue), "rows": len(others)}
    return written


def commit(message: str, *paths: str) -> bool:
    """Commit `paths` (additions, changes and removals); False when nothing changed."""
    paths = tuple(p for p in paths if Path(p).exists())
    if not paths:
        return False
    _git("add", "-A", "--", *paths)
    if not _git("status", "--porcelain", "--untracked-files=no", "--", *paths):
        return False
    _git("commit", "-q", "-m", message, "--", *paths)
    return True


def append(record: dict) -> None:
    """decisions/loop.jsonl with `record` as its last line, written atomically."""
    text = RECORD.read_text(encoding="utf-8") if RECORD.exists() else ""
    io.write_text(RECORD, text + json.dumps(record, sort_keys=True) + "\n")


def challenge(turn: Turn) -> str:
    """The challenger as a DVC experiment, then `decide --apply` on it: its verdict."""
    log.info("challenger %s: dvc exp run --temp", turn.name)
    _dvc("dvc exp run", "exp", "run", "--temp", "-n", turn.name)
    package = __package__.split(".")[0]
    command = [sys.executable, "-m", package, "decide", "--challenger", turn.name, "--apply"]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    verdicts = {status: verdict for verdict, status in EXIT_STATUS.items()}
    if done.returncode not in verdicts:
        detail = (done.stderr or done.stdout).strip().splitlines()
        raise UserError(f"step decide failed: {detail[-1] if detail else 'no output'}")
    print(done.stdout, end="")  # decide's gate lines, for the cron or CI log
    return verdicts[done.returncode]


@contextlib.contextmanager
def _step(name: str):
    """A refusal inside the block names the step (a command's failure names its own)."""
    try:
        yield
    except UserError as exc:
        if str(exc).startswith("step "):
            raise
        raise UserError(f"step {name} failed: {exc}") from None


def retrain(record: dict, rows: list[dict], turn: Turn) -> dict:
    """A retrain: the data written and committed, the challenger run and judged."""
    with _step("batch and labelling queue"):
        record.update(write_data(rows, turn))
    source = add_batch.batch_folder(turn.params.data)
    paths = [f"{source}.dvc", str(QUEUE)]
    commit(f"loop: data for {turn.name} ({figures(record)})", *paths)
    record["experiment"] = turn.name
    record["verdict"] = challenge(turn)
    return record


def _require_clean() -> str:
    """HEAD's commit, once git has nothing uncommitted that a turn's commits would sweep in."""
    changed = _git("status", "--porcelain", "--untracked-files=no")
    if changed:
        first = changed.splitlines()[0]
        raise UserError(
            f"the workspace has uncommitted changes ({first.strip()}, ...): commit or stash "
            "them first; loop commits each turn"
        )
    return _git("rev-parse", "HEAD")


def _undo(start: str, turn: Turn) -> None:
    """Git back at `start`, and the files the turn made gone."""
    subprocess.run(["git", "reset", "-q", "--hard", start], capture_output=True, check=False)
    for path in turn.created:
        path.unlink(missing_ok=True)
    for path, aside in turn.set_aside:
        aside.replace(path)
    if QUEUE.is_dir() and not any(QUEUE.iterdir()):  # made by this turn's queue file
        QUEUE.rmdir()


@contextlib.contextmanager
def locked():
    """Hold the loop's lock; another turn holding it is an error."""
    LOCK.parent.mkdir(parents=True, exist_ok=True)
    with open(LOCK, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UserError(
                f"another loop turn is running in this project ({LOCK} is locked): let it finish"
            ) from None
        yield


def run_turn(records: list[dict], turn: Turn) -> dict:
    """Roll prod back when the alert says so (committed: it stays whatever follows), then
    assess the window, and record it, or retrain and record that; the record."""
    _require_clean()
    try:
        rolled = rollback.run(Path.cwd(), turn.params, turn.service, records)
    except rollback.NothingToRollBackTo as exc:
        # Recorded, and the turn goes on: its retrain may be the way out (monitor --act,
        # which only rolls back, fails instead).
        print(f"loop: {exc}; the turn goes on", flush=True)
        rolled = {"refused": str(exc)}
    start = _require_clean()
    record, rows = assess(records, history(), turn, model_time())
    if rolled:
        record["rollback"] = rolled
    try:
        if record["trigger"] is not None:
            retrain(record, rows, turn)
        append(record)
        verdict = record.get("verdict")
        head = f"loop: {verdict} {turn.name}" if verdict else "loop: no trigger"
        commit(f"{head} ({figures(record)})", str(RECORD))
    except UserError as exc:
        verdict = record.get("verdict")
        if verdict:  # decide has judged and committed: that stays
            raise UserError(f"{exc}; {turn.name}'s verdict {verdict} is committed") from None
        _undo(start, turn)
        raise UserError(f"{exc}; the turn is undone (git back at {start[:7]})") from None
    except BaseException:  # Ctrl-C: undone as well, and said by __main__
        if not record.get("verdict"):
            _undo(start, turn)
        raise
    for _, aside in turn.set_aside:
        aside.unlink()
    return record


def push() -> None:
    """`dvc push` when a default DVC remote is set."""
    remote = subprocess.run(
        [sys.executable, "-m", "dvc", "config", "core.remote"], capture_output=True, text=True
    ).stdout.strip()
    if remote:
        try:
            _dvc("dvc push", "push")
        except UserError as exc:
            raise UserError(f"{exc}; the turn is committed: run `dvc push` again") from None


def main(
    params: Params,
    service: ServiceParams,
    log_path: Path | None,
    *,
    now: str | None = None,
    dry_run: bool = False,
) -> int:
    """One turn; 0 whatever the verdict (errors are UserErrors: status 1)."""
    turn = Turn(params, service, parse_now(now))
    # Labels that arrived later (feedback) join the rows they name, as monitor reads them.
    logged = read_log(Path(log_path or service.serve.prediction_log))
    records = labels.joined(logged, labels.latest(Path(service.serve.feedback_log)))
    if dry_run:
        try:
            rollback.run(Path.cwd(), params, service, records, dry_run=True)
        except rollback.NothingToRollBackTo as exc:
            print(f"loop (dry run): {exc}; the turn would go on")
        record, _ = assess(records, history(), turn, model_time())
        print(f"loop (dry run, nothing written): {figures(record)}")
        return 0
    with locked():
        record = run_turn(records, turn)
        if record.get("verdict"):
            push()
    print(f"loop: {record.get('verdict') or 'no trigger'} ({figures(record)})")
    return 0
