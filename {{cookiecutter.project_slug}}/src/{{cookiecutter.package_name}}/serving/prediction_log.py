"""The prediction log: one JSON line per predicted row (inputs, output, model version),
in a size-bounded file rotated as the standard library's RotatingFileHandler does
(file, file.1, ... file.N, N = backups).

A request only queues its records (a deque append, well under a microsecond); a
background thread encodes them and appends them in batches every `flush_seconds`, and
`close()` writes what is left, so a clean stop loses nothing. Every batch is written
under an exclusive lock on `file.lock`, and a writer that finds the file rotated by
another process reopens it: several server processes (`serve --workers N`, or two
servers of one project) share one log, one set of backups and one size bound.
"""

from __future__ import annotations

import collections
import fcntl
import json
import logging
import os
import threading
from pathlib import Path

import orjson

log = logging.getLogger(__name__)
# orjson: a line in well under a microsecond, ten times the standard library's speed; at
# a hundred rows per request the log's encoding was the server's largest cost.
_OPTIONS = orjson.OPT_SORT_KEYS


class PredictionLog:
    def __init__(self, path: Path, max_bytes: int, backups: int, flush_seconds: float) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.max_bytes, self.backups, self.flush_seconds = max_bytes, backups, flush_seconds
        self._pending: collections.deque[list[dict]] = collections.deque()
        self._lock_file = open(self.path.with_name(self.path.name + ".lock"), "ab")  # noqa: SIM115
        self._file = None
        self._writing = threading.Lock()
        self._stop = threading.Event()
        # A daemon, so that a log nobody closes never holds the interpreter open; a server
        # closes it at shutdown (the app's lifespan), which joins it.
        self._writer = threading.Thread(target=self._run, name="prediction-log", daemon=True)
        self._writer.start()

    def write(self, records: list[dict]) -> None:
        """Queue one request's records; the writer thread encodes and writes them."""
        self._pending.append(records)

    def flush(self) -> None:
        """Write every queued record now."""
        with self._writing:
            batch = []
            while self._pending:
                batch.extend(self._pending.popleft())
            if batch:
                self._append(self._encode(batch))

    def close(self) -> None:
        """Stop the writer and write what is left (idempotent)."""
        self._stop.set()
        if self._writer.is_alive():
            self._writer.join()
        self.flush()
        with self._writing:
            if self._file is not None:
                self._file.close()
                self._file = None
            self._lock_file.close()

    def _run(self) -> None:
        while not self._stop.wait(self.flush_seconds):
            try:
                self.flush()
            except OSError as exc:  # a full disk, say: report it, keep serving
                log.error("prediction log %s: %s", self.path, exc)

    def _encode(self, records: list[dict]) -> list[bytes]:
        lines = []
        for record in records:
            try:
                lines.append(orjson.dumps(record, option=_OPTIONS) + b"\n")
            except TypeError as exc:  # orjson.JSONEncodeError: a value JSON cannot hold
                where = f"row {record.get('row')} of request {record.get('request_id')}"
                log.error("prediction log: %s not logged: %s", where, exc)
        return lines

    def _append(self, lines: list[bytes]) -> None:
        """Append `lines`, rotating before a line that would take the file past max_bytes
        (a longer line gets a file of its own)."""
        fcntl.flock(self._lock_file, fcntl.LOCK_EX)
        try:
            size = self._open()
            chunk: list[bytes] = []
            for line in lines:
                if size and size + len(line) > self.max_bytes:
                    self._file.write(b"".join(chunk))
                    self._rotate()
                    chunk, size = [], 0
                chunk.append(line)
                size += len(line)
            self._file.write(b"".join(chunk))
            self._file.flush()
        finally:
            fcntl.flock(self._lock_file, fcntl.LOCK_UN)

    def _open(self) -> int:
        """Open the current file (again, when another process has rotated it); its size."""
        if self._file is not None:
            try:
                same = os.stat(self.path).st_ino == os.fstat(self._file.fileno()).st_ino
            except FileNotFoundError:
                same = False
            if not same:
                self._file.close()
                self._file = None
        if self._file is None:
            self._file = open(self.path, "ab")  # noqa: SIM115
        return os.fstat(self._file.fileno()).st_size

    def _rotate(self) -> None:
        self._file.close()
        # The backups that exist, newest last (not every number up to `backups`: a large
        # count would make each rotation thousands of file checks).
        for older in [p for p in log_files(self.path) if p != self.path]:
            number = int(older.suffix[1:])
            if number >= self.backups:
                older.unlink()
            else:
                older.replace(self.path.with_name(f"{self.path.name}.{number + 1}"))
        if self.backups:
            self.path.replace(self.path.with_name(f"{self.path.name}.1"))
        else:
            self.path.unlink()
        self._file = open(self.path, "ab")  # noqa: SIM115


def log_files(path: Path) -> list[Path]:
    """The log and its rotated backups, oldest first."""
    path = Path(path)
    backups = sorted(
        (p for p in path.parent.glob(f"{path.name}.*") if p.suffix[1:].isdigit()),
        key=lambda p: int(p.suffix[1:]),
        reverse=True,
    )
    return backups + ([path] if path.exists() else [])


def read(path: Path) -> list[dict]:
    """Every record of the log and its backups, oldest first; a torn last line is skipped."""
    records = []
    for file in log_files(path):
        for line in file.read_text(encoding="utf-8").splitlines():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return records
