"""Progress lines of long stages, in one format: `<time> <stage> <event> key=value ...`.

    12:00:01 ingest     start
    12:00:02 ingest     batch 3/120 data/raw/2024-03.csv rows=10000 seconds=0.04
    12:00:09 select     candidate random_forest score=-0.0926 rows=20000 predicted=3.62 seconds=4.10
    12:00:10 select     dask workers workers=2 peak_rss_mb=412,398
    12:00:12 train      fit random_forest rows=267 seconds=0.33
    12:00:12 train      done rows_in=267 seconds=1.52 peak_rss_mb=289

Every line comes from the standard logging module at INFO (warnings at WARNING, marked
so), so `python -m <package> --quiet <command>` or LOG_LEVEL=WARNING silences progress and
keeps warnings and errors; LOG_LEVEL=WARNING also reaches stages that dvc.yaml runs.
Lines are per stage, per batch file, per candidate or per fit, never per row: cheap at
any size.
"""

from __future__ import annotations

import logging
import resource
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

from .errors import UserError

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
# Ingest lists each batch file when there are at most this many, else every
# len(files) // BATCH_LINES-th one and the last: a folder of 10,000 files logs ~20 lines.
BATCH_LINES = 20

_current = {"stage": "-"}
_fields: dict[str, object] = {}


class _StageFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        mark = "" if record.levelno == logging.INFO else f"{record.levelname}: "
        # Progress records carry their stage (report()); other modules' take the current one.
        record.stage = getattr(record, "stage", _current["stage"])
        record.mark = mark
        return super().format(record)


def level(quiet: bool, environ: dict[str, str]) -> int:
    """--quiet -> WARNING; else LOG_LEVEL (a name of LEVELS), INFO when unset."""
    if quiet:
        return logging.WARNING
    name = environ.get("LOG_LEVEL", "INFO").strip().upper() or "INFO"
    if name not in LEVELS:
        raise UserError(
            f"LOG_LEVEL={environ['LOG_LEVEL']!r} is not a log level: use one of {', '.join(LEVELS)}"
        )
    return getattr(logging, name)


class _Handler(logging.StreamHandler):
    """The handler configure() installs (and replaces when called again)."""


def configure(command: str, log_level: int) -> None:
    """Every log line of this process in the one format on stderr, labelled with `command`
    (a stage relabels its lines while it runs). Other handlers of the root logger (a test
    runner's) stay."""
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _Handler)]:
        root.removeHandler(old)
    handler = _Handler(sys.stderr)
    handler.setFormatter(
        _StageFormatter("%(asctime)s %(stage)-10s %(mark)s%(message)s", datefmt="%H:%M:%S")
    )
    root.addHandler(handler)
    root.setLevel(log_level)
    _current["stage"] = command


def _line(event: str, fields: dict[str, object]) -> str:
    values = " ".join(f"{k}={_value(v)}" for k, v in fields.items())
    return f"{event} {values}".rstrip()


def _value(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1e4 else f"{value:.0f}"
    return str(value)


def report(event: str, **fields: object) -> None:
    """One progress line in the current stage: `event key=value ...`; the record's `stage`
    attribute names the stage for other handlers too."""
    logging.getLogger(__package__).info(_line(event, fields), extra={"stage": _current["stage"]})


def note(**fields: object) -> None:
    """Fields for the current stage's `done` line, e.g. note(rows_in=n, rows_out=m)."""
    _fields.update(fields)


@contextmanager
def timed(event: str, **fields: object) -> Iterator[dict[str, object]]:
    """Report `event` with its fields and seconds when the block ends; the block may add
    fields to the dict it gets (e.g. a score)."""
    started = time.perf_counter()
    extra: dict[str, object] = dict(fields)
    yield extra
    report(event, **extra, seconds=round(time.perf_counter() - started, 2))


@contextmanager
def stage(name: str) -> Iterator[None]:
    """`start` and `done` lines around a stage, `done` with the fields it noted, its wall
    time and the process's peak memory: at real sizes, the first things to read when a
    stage is slow or near the machine's memory."""
    previous = _current["stage"]
    _current["stage"] = name
    _fields.clear()
    started = time.perf_counter()
    report("start")
    try:
        yield
        peak_mb = peak_rss_mb()
        report(
            "done",
            **_fields,
            seconds=round(time.perf_counter() - started, 2),
            peak_rss_mb=peak_mb,
        )
    finally:
        _current["stage"] = previous


def every(count: int) -> int:
    """Report every n-th of `count` items so that about BATCH_LINES lines are written."""
    return max(1, count // BATCH_LINES)


def peak_rss_mb() -> int:
    """This process's peak resident memory in MB since it started its program.

    Linux's VmHWM, not getrusage's ru_maxrss: the kernel carries ru_maxrss across exec,
    so a stage started by a process holding 6.7 GB reported 6.7 GB whatever it used
    (measured: the benchmark's stages, started after it compared two tables).
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024)  # kB
    except OSError:
        pass
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)  # KiB on Linux
