"""Faults outside the pipeline's data, as a user meets them: a batch added with the wrong
types, a model whose files do not belong together, a full disk under the prediction log,
a server exposed without a key, Ctrl-C. Each case makes the fault for real (files, a
served app, a child process) and returns the one line the user sees; it asserts the rest
of what must hold (nothing written, nothing served, the count of rows lost) itself.

docs/faults.md is generated from these cases and the lines they really print, as
docs/bad-input.md is from tests/test_bad_input.py: a test fails when it is stale, and
`UPDATE_DOCS=1 pytest tests/test_faults.py` rewrites it.
"""

from __future__ import annotations

#% if cookiecutter.serving == "yes"
import contextlib
import errno
import json
import logging
#% endif
import os
import re
#% if cookiecutter.serving == "yes"
import time
#% endif
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[1]
DOC = PROJECT / "docs" / "faults.md"


@dataclass(frozen=True)
class Fault:
    id: str
    what: str  # what happened, as the table says it
    where: str  # the command that meets it (serve, export, add-batch, any command)
    outcome: str  # "refused", or "handled: " and the rule that applies
    expect: str  # a regex the line must match
    # Makes the fault in the given empty folder (the test's cwd) and returns the line the
    # user sees; the fixtures it needs come from the request (request.getfixturevalue).
    run: Callable[[pytest.FixtureRequest, Path], str]


# Each area's cases live in its own list below; SECTIONS orders them in the table.

# --- Data: batches added to the data folder -------------------------------------------
DATA: list[Fault] = []

# --- Files that belong together: the exported model's identity ------------------------
IDENTITY: list[Fault] = []

# --- The prediction log ----------------------------------------------------------------
#% if cookiecutter.serving == "yes"
LOG_PATH = Path("logs/predictions.jsonl")  # relative: the table shows no test folder
LOGGED_ROW = {"time": "2026-01-01T00:00:00", "request_id": "r", "row": 0, "inputs": {"x": 1}}


class _Heard(logging.Handler):
    """The prediction log's warnings, as the server log shows them."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())

    def wait_for(self, text: str) -> str:
        """The first line holding `text`, once the writer thread has logged it."""
        deadline = time.time() + 10
        while not any(text in line for line in self.lines):
            assert time.time() < deadline, f"no {text!r} in {self.lines}"
            time.sleep(0.02)
        return next(line for line in self.lines if text in line)


@contextlib.contextmanager
def _full_disk_log(queue_rows: int = 4):
    """A PredictionLog on /dev/full (ENOSPC on every write), its timer at 20 ms, and what
    it logs; closed on the way out."""
    from {{ cookiecutter.package_name }}.serving import prediction_log

    LOG_PATH.parent.mkdir()
    LOG_PATH.symlink_to("/dev/full")
    heard, logger = _Heard(), logging.getLogger(prediction_log.__name__)
    logger.addHandler(heard)
    log = prediction_log.PredictionLog(LOG_PATH, 10**6, 1, 0.02, queue_rows=queue_rows)
    try:
        yield log, heard
    finally:
        log.close()
        logger.removeHandler(heard)


def _rows(n: int) -> list[dict]:
    return [{**LOGGED_ROW, "row": i} for i in range(n)]


def _disk_full(request, work) -> str:
    with _full_disk_log() as (log, heard):
        log.write(_rows(3))
        line = heard.wait_for("cannot write")
        assert log.status()["rows_waiting"] == 3
    return line


def _queue_full(request, work) -> str:
    with _full_disk_log() as (log, heard):
        log.write(_rows(3))
        heard.wait_for("cannot write")
        log.write(_rows(2))  # 3 + 2 > queue_rows (4): dropped, the request not held up
        line = heard.wait_for("queue full")
        assert log.status()["rows_lost"] == 2
    return line


def _space_returns(request, work) -> str:
    from {{ cookiecutter.package_name }}.serving import prediction_log

    with _full_disk_log() as (log, heard):
        log.write(_rows(3))
        heard.wait_for("cannot write")
        log.write(_rows(2))
        heard.wait_for("queue full")
        LOG_PATH.unlink()
        LOG_PATH.touch()
        line = heard.wait_for("written again")
    assert prediction_log.read(LOG_PATH) == _rows(3)
    return line


def _write_cut_short(request, work) -> str:
    """os.write writes half the bytes, then ENOSPC, until space returns: the file ends up
    with every row once, no torn line (tests/serving/test_prediction_log.py checks the
    bytes after the cut)."""
    from {{ cookiecutter.package_name }}.serving import prediction_log

    heard, logger = _Heard(), logging.getLogger(prediction_log.__name__)
    logger.addHandler(heard)
    log = prediction_log.PredictionLog(LOG_PATH, 10**6, 1, 0.02, queue_rows=100)
    try:
        log.write(_rows(1))
        log.flush()
        real_write = os.write

        def half_then_full(fd: int, data) -> int:
            real_write(fd, bytes(data[: len(data) // 2]))
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        request.getfixturevalue("monkeypatch").setattr(os, "write", half_then_full)
        log.write(_rows(2))
        line = heard.wait_for("cannot write")
        request.getfixturevalue("monkeypatch").setattr(os, "write", real_write)
    finally:
        log.close()
        logger.removeHandler(heard)
    contents = prediction_log.load(LOG_PATH)
    assert contents.records == _rows(1) + _rows(2) and contents.unreadable == []
    return line


def _shutdown_disk_full(request, work) -> str:
    with _full_disk_log(queue_rows=100) as (log, heard):
        log.write(_rows(7))
    (line,) = heard.lines[-1:]
    return line


def _torn_line(request, work) -> str:
    from {{ cookiecutter.package_name }}.serving import monitor

    LOG_PATH.parent.mkdir()
    whole = json.dumps(LOGGED_ROW) + "\n"
    LOG_PATH.write_text(whole + whole[:20] + "\n" + whole)
    heard, logger = _Heard(), logging.getLogger(monitor.__name__)
    logger.addHandler(heard)
    try:
        records, _, skipped = monitor.logged_rows(LOG_PATH, None)
    finally:
        logger.removeHandler(heard)
    assert len(records) == 2 and skipped == 1
    return heard.lines[-1]


def _nothing_readable(request, work) -> str:
    from {{ cookiecutter.package_name }}.core.errors import UserError
    from {{ cookiecutter.package_name }}.serving import monitor

    LOG_PATH.parent.mkdir()
    LOG_PATH.write_text("not json\n")
    with pytest.raises(UserError) as refused:
        monitor.logged_rows(LOG_PATH, None)
    return f"error: {refused.value}"


LOG: list[Fault] = [
    Fault(
        "log-disk-full",
        "The disk under the prediction log is full (ENOSPC on every write)",
        "serve",
        "handled: answers go on; rows wait in memory, up to serve.log_queue_rows, and "
        "are retried at each flush; /health shows the error and the rows waiting",
        r"^prediction log logs/predictions.jsonl: cannot write \(No space left on device\): "
        r"3 rows wait",
        _disk_full,
    ),
    Fault(
        "log-queue-full",
        "Rows keep coming while nothing can be written (the queue is full)",
        "serve",
        "handled: a request whose rows would pass serve.log_queue_rows is answered, not "
        "logged; its rows are counted lost (/health's rows_lost), never waited for",
        r"queue full \(3 rows waiting\): rows of new requests are dropped",
        _queue_full,
    ),
    Fault(
        "log-space-returns",
        "Space returns after rows were dropped",
        "serve",
        "handled: the waiting rows are written, each on a line of its own; one line gives "
        "the count dropped",
        r"written again; 2 rows dropped meanwhile, 2 since the start",
        _space_returns,
    ),
    Fault(
        "log-write-cut-short",
        "A write stops part way (some bytes written, then ENOSPC)",
        "serve",
        "handled: the file is cut back to its last whole line and the rows are retried: "
        "no torn line, no row twice",
        r"cannot write \(No space left on device\)",
        _write_cut_short,
    ),
    Fault(
        "log-shutdown-disk-full",
        "The server is stopped (SIGTERM, Ctrl-C) while the disk is full",
        "serve",
        "handled: a clean stop, exit status 0 for SIGTERM; one line counts the rows lost",
        r"7 rows not logged since the start, 7 of them at shutdown \(No space left on device\)",
        _shutdown_disk_full,
    ),
    Fault(
        "log-torn-line",
        "A log line is torn (a crash of an older version) or edited by hand",
        "monitor",
        "handled: the line is skipped and named with the count (drift.json's "
        "skipped_lines); the writer starts its next row on a new line",
        r"^logs/predictions.jsonl line 2: not a whole prediction record .*1 such line",
        _torn_line,
    ),
    Fault(
        "log-nothing-readable",
        "No line of the log is a whole record",
        "monitor",
        "refused",
        r"^error: no predictions logged in logs/predictions.jsonl \(logs/predictions.jsonl "
        r"line 1: ",
        _nothing_readable,
    ),
]
#% else
LOG: list[Fault] = []
#% endif

# --- Exposure and start-up ---------------------------------------------------------------
EXPOSURE: list[Fault] = []

# --- Any command ------------------------------------------------------------------------
COMMANDS: list[Fault] = []

SECTIONS = {
    "Data: batches added to the data folder": DATA,
    "Files that belong together": IDENTITY,
    "The prediction log": LOG,
    "Exposure and start-up": EXPOSURE,
    "Any command": COMMANDS,
}
FAULTS = [fault for cases in SECTIONS.values() for fault in cases]
SEEN: dict[str, str] = {}  # case id -> the line seen, for the table


def see(fault: Fault, request: pytest.FixtureRequest, work: Path) -> str:
    work.mkdir(parents=True, exist_ok=True)
    cwd = Path.cwd()
    os.chdir(work)
    try:
        line = fault.run(request, work)
    finally:
        os.chdir(cwd)
    SEEN[fault.id] = line
    return line


@pytest.mark.parametrize("fault", FAULTS, ids=lambda f: f.id)
def test_each_fault_is_refused_in_one_line_or_handled_by_its_rule(fault, request, tmp_path):
    line = see(fault, request, tmp_path / fault.id)
    assert re.search(fault.expect, line), f"expected /{fault.expect}/, saw: {line!r}"
    assert "\n" not in line.strip() and "Traceback" not in line


def table() -> str:
    rows = [
        "# Faults: what you see",
        "",
        "Generated by `UPDATE_DOCS=1 pytest tests/test_faults.py` from the cases that test",
        "makes for real; the test fails when this file is stale. Faults in the data and the",
        "settings a pipeline run meets are in [bad-input.md](bad-input.md).",
        "**Refused**: the command stops with this one line and writes or serves nothing;",
        "fix what it names and rerun. **Handled**: the stated rule applies, and the line",
        "says what it did.",
    ]
    for title, cases in SECTIONS.items():
        if not cases:
            continue
        rows += ["", f"## {title}", "", "| Case | Met by | Outcome | What you see |"]
        rows.append("|---|---|---|---|")
        for fault in cases:
            line = SEEN[fault.id].strip().replace("|", "\\|")
            rows.append(f"| {fault.what} | {fault.where} | {fault.outcome} | `` {line} `` |")
    return "\n".join(rows) + "\n"


def test_the_faults_table_in_docs_is_current(request, tmp_path):
    for fault in FAULTS:  # the cases a -k left out, so the table is whole
        if fault.id not in SEEN:
            see(fault, request, tmp_path / fault.id)
    expected = table()
    if os.environ.get("UPDATE_DOCS"):
        DOC.write_text(expected, encoding="utf-8")
    current = DOC.read_text(encoding="utf-8") if DOC.exists() else ""
    assert current == expected, "docs/faults.md is stale: UPDATE_DOCS=1 pytest tests/test_faults.py"
