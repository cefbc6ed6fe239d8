"""The prediction log: one JSON line per predicted row (inputs, output, model version),
in a size-bounded file rotated as the standard library's RotatingFileHandler does
(file, file.1, ... file.N, N = backups).

A request only queues its records (a deque append, well under a microsecond); a
background thread encodes them and appends them in batches every `flush_seconds`, or as
soon as half the queue is full, and `close()` writes what is left, so a clean stop loses
nothing. Every batch is written
under an exclusive lock on `file.lock`, and a writer that finds the file rotated by
another process reopens it: several server processes (`serve --workers N`, or two
servers of one project) share one log, one set of backups and one size bound.

Nothing is lost without a count. At most `queue_rows` rows wait to be written; a request
whose rows would pass that is not logged (never made to wait) and its rows are counted
as lost. A write that fails (a full disk, an I/O error) is cut back to the last whole
line and its rows stay queued for the next attempt. The server log says when rows start
waiting on a failing disk or being dropped, and when they are written again; /health
gives the counts (status()); close() gives the count lost in one line.

A disk that stalls (a write that blocks: NFS, a dying device) holds the writer thread,
never a request: rows queue up to the bound, then are counted lost. close() waits for
the writer at most stall_seconds(flush_seconds), then counts the rows still queued as
lost in one line and returns, so a server stops even then.
"""

from __future__ import annotations

import collections
import contextlib
import fcntl
import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import orjson

from ..core.errors import DataError, UserError
from ..core.params import ServeParams

log = logging.getLogger(__name__)
# orjson: a line in well under a microsecond, ten times the standard library's speed; at
# a hundred rows per request the log's encoding was the server's largest cost.
_OPTIONS = orjson.OPT_SORT_KEYS
# What every reader of a record uses (monitor): a line without them is no record.
RECORD_KEYS = ("time", "request_id", "row", "inputs")
# close() waits for a stalled writer at most max(this, 5 x flush_seconds): long enough for
# a slow disk's last batch, short enough that a stop never hangs on a dead one.
STALL_FLOOR_SECONDS = 5.0
# How long a reader (monitor) waits for the lock while a writer appends or rotates.
READ_WAIT_SECONDS = 30.0


def stall_seconds(flush_seconds: float) -> float:
    """How long close() waits for the writer's last write before counting its rows lost."""
    return max(STALL_FLOOR_SECONDS, 5 * flush_seconds)


class PredictionLog:
    def __init__(
        self, path: Path, max_bytes: int, backups: int, flush_seconds: float, *, queue_rows: int
    ) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.max_bytes, self.backups, self.flush_seconds = max_bytes, backups, flush_seconds
        self.queue_rows = queue_rows
        self._pending: collections.deque[list[dict]] = collections.deque()
        self._unwritten: list[bytes] = []  # encoded lines a failed write left, oldest first
        self._lock_file = open(self.path.with_name(self.path.name + ".lock"), "ab")  # noqa: SIM115
        self._fd: int | None = None
        self._writing = threading.Lock()
        # Guards the counts, which request threads and the writer both change.
        self._counting = threading.Lock()
        self._queued = 0  # rows in _pending and _unwritten
        self._lost = 0  # rows never written, since the start
        self._dropped = 0  # rows dropped since the writer last looked (_report)
        self._episode = 0  # rows dropped since the last "written again"
        self._error: str | None = None  # the failing write's error, until one succeeds
        self._last_error: OSError | None = None  # the writer's last write, at close
        self._closed = False
        self._stop = threading.Event()
        self._wake = threading.Event()  # set by write() when half the queue is full
        # A daemon, so that a log nobody closes never holds the interpreter open; a server
        # closes it at shutdown (the app's lifespan), which joins it.
        self._writer = threading.Thread(target=self._run, name="prediction-log", daemon=True)
        self._writer.start()

    def write(self, records: list[dict]) -> None:
        """Queue one request's records, or, when the queue has no room for them, count
        them lost: a request never waits for the log."""
        with self._counting:
            if self._queued + len(records) > self.queue_rows:
                self._lost += len(records)
                self._dropped += len(records)
                return
            self._queued += len(records)
            crowded = self._queued > self.queue_rows // 2
        self._pending.append(records)
        if crowded:
            self._wake.set()

    def status(self) -> dict:
        """Rows waiting to be written, rows lost since the start, and the error of the
        failing write (None when the last write succeeded)."""
        with self._counting:
            return {"rows_waiting": self._queued, "rows_lost": self._lost, "error": self._error}

    def flush(self, wait: float = -1) -> bool:
        """Write every queued record now; a failed write raises OSError, its rows queued.
        wait: seconds to wait for a write in progress, this process's or another's (-1: as
        long as it takes); False when this process's held on longer (a stalled disk) and
        nothing was written, Stalled when another's held the file's lock longer."""
        if not self._writing.acquire(timeout=wait):
            return False
        try:
            while self._pending:
                self._unwritten.extend(self._encode(self._pending.popleft()))
            if self._unwritten:
                self._append(wait)
        finally:
            self._writing.release()
        return True

    def close(self) -> None:
        """Stop the writer, which writes what is left; wait for it at most stall_seconds
        (a stalled disk), then say how many rows were lost, if any (idempotent)."""
        with self._counting:
            if self._closed:
                return
            self._closed = True
        self._stop.set()
        self._wake.set()
        waited = stall_seconds(self.flush_seconds)
        self._writer.join(waited)
        stalled = self._writer.is_alive()
        with self._counting:
            at_close, self._lost = self._queued, self._lost + self._queued
            self._queued, lost = 0, self._lost
        if lost:
            error = self._last_error
            why = f" ({error.strerror or error})" if error else ""
            if stalled:
                why = f" (the disk took no write for {waited:g} s: stalled?)"
            log.warning(
                "prediction log %s: %d rows not logged since the start, %d of them at shutdown%s",
                self.path,
                lost,
                at_close,
                why,
            )
        if not stalled:  # a stalled writer still holds the file: the process exit closes it
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
            self._lock_file.close()

    def _run(self) -> None:
        while True:
            # Early when write() finds the queue half full (a burst would otherwise fill it
            # between two timer flushes), but not while writes fail: then one retry per
            # flush_seconds, not a busy loop on a full disk.
            (self._stop if self._error else self._wake).wait(self.flush_seconds)
            if self._stop.is_set():
                break
            self._wake.clear()
            try:
                self.flush()
            except OSError as exc:  # a full disk, say: report it, keep serving
                self._report(exc)
            else:
                self._report(None)
        # The last write is this thread's, not close()'s: should it block on a stalled
        # disk, close() stops waiting for it after stall_seconds.
        try:
            self.flush()
        except OSError as exc:  # a full disk at shutdown: close() counts the rows
            self._last_error = exc

    def _report(self, error: OSError | None) -> None:
        """One warning when writes start failing or rows start being dropped, one when
        every queued row is written again (with the count dropped meanwhile)."""
        with self._counting:
            dropped, self._dropped = self._dropped, 0
            started = error is not None and self._error is None
            if error is not None:
                self._error = error.strerror or str(error)
            waiting, lost = self._queued, self._lost
        if started:
            log.warning(
                "prediction log %s: cannot write (%s): %d rows wait (at most "
                "serve.log_queue_rows = %d), then new rows are dropped and counted on /health",
                self.path,
                self._error,
                waiting,
                self.queue_rows,
            )
        if dropped and not self._episode:
            log.warning(
                "prediction log %s: queue full (%d rows waiting): rows of new requests are "
                "dropped and counted on /health",
                self.path,
                waiting,
            )
        self._episode += dropped
        if error is None and not dropped and (self._error or self._episode):
            log.warning(
                "prediction log %s: written again; %d rows dropped meanwhile, %d since the start",
                self.path,
                self._episode,
                lost,
            )
            with self._counting:
                self._error = None
            self._episode = 0

    def _encode(self, records: list[dict]) -> list[bytes]:
        lines = []
        for record in records:
            try:
                lines.append(orjson.dumps(record, option=_OPTIONS) + b"\n")
            except TypeError as exc:  # orjson.JSONEncodeError: a value JSON cannot hold
                where = f"row {record.get('row')} of request {record.get('request_id')}"
                log.error("prediction log: %s not logged: %s", where, exc)
                with self._counting:
                    self._queued -= 1
                    self._lost += 1
        return lines

    def _append(self, wait: float) -> None:
        """Append the unwritten lines, rotating before a line that would take the file past
        max_bytes (a longer line gets a file of its own); each line written leaves the
        queue, the others stay when a write fails."""
        _take(self._lock_file, fcntl.LOCK_EX, wait)
        try:
            size = self._open()
            while self._unwritten:
                if size and size + len(self._unwritten[0]) > self.max_bytes:
                    self._rotate()
                    size = 0
                count, chunk = self._chunk(size)
                self._write_whole(chunk, size)
                del self._unwritten[:count]
                with self._counting:
                    self._queued -= count
                size += len(chunk)
        finally:
            fcntl.flock(self._lock_file, fcntl.LOCK_UN)

    def _chunk(self, size: int) -> tuple[int, bytes]:
        """(how many, the bytes of) the unwritten lines that fit in a file of `size` bytes
        below max_bytes: one at least."""
        count = 0
        for line in self._unwritten:
            if count and size + len(line) > self.max_bytes:
                break
            size += len(line)
            count += 1
        return count, b"".join(self._unwritten[:count])

    def _write_whole(self, data: bytes, size: int) -> None:
        write_whole(self._fd, data, size)

    def _open(self) -> int:
        """Open the current file (again, when another process has rotated it); its size,
        after ending a torn last line (left by a crash) with a newline."""
        if self._fd is not None:
            try:
                same = os.stat(self.path).st_ino == os.fstat(self._fd).st_ino
            except FileNotFoundError:
                same = False
            if not same:
                os.close(self._fd)
                self._fd = None
        if self._fd is None:
            self._fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        size = os.fstat(self._fd).st_size
        if size and os.pread(self._fd, 1, size - 1) != b"\n":
            self._write_whole(b"\n", size)
            size += 1
        return size

    def _rotate(self) -> None:
        os.close(self._fd)
        self._fd = None
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
        self._fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)


def write_whole(fd: int, data: bytes, size: int) -> None:
    """Append `data` to the file `fd` of `size` bytes, or leave it as it was: a write that
    fails part way (ENOSPC, EIO, or Ctrl-C between two writes of `feedback`) is cut back,
    so that the file still ends with a whole line and the next starts a line of its own."""
    view = memoryview(data)
    try:
        while view:
            view = view[os.write(fd, view) :]
    except BaseException:
        if os.fstat(fd).st_size != size:
            # Should the cut fail too, the next writer starts on a new line (_open).
            with contextlib.suppress(OSError):
                os.ftruncate(fd, size)
        raise


def append_labels(path: Path, pairs: list[tuple[str, object]], time: str) -> None:
    """Append (id, label) pairs received at `time` to the feedback log (serve.feedback_log),
    one JSON line each, as one write under an exclusive lock on `<file>.lock`: the
    `feedback` command and every server worker's POST /feedback write here, and their
    lines never interleave. A torn last line (a crash) is ended first."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = b"".join(
        orjson.dumps({"id": id_, "label": label, "time": time}) + b"\n" for id_, label in pairs
    )
    with open(path.with_name(path.name + ".lock"), "ab") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            size = os.fstat(fd).st_size
            if size and os.pread(fd, 1, size - 1) != b"\n":
                data = b"\n" + data
            write_whole(fd, data, size)
        finally:
            os.close(fd)


def label_entry(line: bytes) -> dict | None:
    """A feedback log line as {"id", "label", "time"}, or None for one that is no whole
    label (torn by a crash, or edited)."""
    try:
        entry = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    if isinstance(entry, dict) and isinstance(entry.get("id"), str) and "label" in entry:
        return entry
    return None


def split_known(pairs: list[tuple[str, object]], known) -> tuple[dict[str, object], list[str]]:
    """Each known id's last label (a repeated id: the last wins, as in the store), in the
    order the ids first came, and the ids in no prediction log, each once. known: a
    container of the logged ids (a set, an IdIndex)."""
    last = dict(pairs)
    unknown = [id_ for id_ in last if id_ not in known]
    for id_ in unknown:
        del last[id_]
    return last, unknown


def unknown_line(unknown: list[str], given: int) -> str:
    """The refusal's first half: how many of the `given` ids are unknown, the first three."""
    first = ", ".join(repr(id_[:40]) for id_ in unknown[:3])
    more = " ..." if len(unknown) > 3 else ""
    return f"{len(unknown)} of {given} ids are in no prediction log ({first}{more})"


def opened(root: Path, settings: ServeParams, setting: str) -> PredictionLog:
    """The log at serve.<setting> (prediction_log, shadow_log) of `root`, its folder made
    and its file opened once for appending now: a log the server cannot write is a
    start-up error (one line), not rows lost at every flush."""
    shown = getattr(settings, setting)
    path = root / shown
    try:
        log = PredictionLog(
            path,
            settings.log_max_bytes,
            settings.log_backups,
            settings.log_flush_seconds,
            queue_rows=settings.log_queue_rows,
        )
        with open(path, "ab"):
            pass
    except OSError as exc:
        what = setting.replace("_", " ")
        raise UserError(
            f"cannot write the {what} {shown} ({exc.strerror or exc}): make {path.parent} "
            f"a writable folder and {path.name} a writable file in it, or set "
            f"serve.{setting} in service.yaml"
        ) from None
    return log


def row_ids(request_id: str, rows: int) -> list[str]:
    """The ids of a request's rows, as POST /predict answers them and the log keeps them."""
    return [f"{request_id}-{i}" for i in range(rows)]


def row_id(record: dict) -> str:
    """A logged row's id; a record written before rows had ids gets the one it would have."""
    return record.get("id") or f"{record['request_id']}-{record['row']}"


def log_files(path: Path) -> list[Path]:
    """The log and its rotated backups, oldest first."""
    path = Path(path)
    backups = sorted(
        (p for p in path.parent.glob(f"{path.name}.*") if p.suffix[1:].isdigit()),
        key=lambda p: int(p.suffix[1:]),
        reverse=True,
    )
    return backups + ([path] if path.exists() else [])


def logged_id(line: bytes) -> str | None:
    """The id of a prediction log line, or None for a line that is no record."""
    record = _record(line)
    return None if record is None else row_id(record)


def labelled_id(line: bytes) -> str | None:
    """The id of a feedback log line, or None for a line that is no whole label."""
    entry = label_entry(line)
    return None if entry is None else entry["id"]


class Stalled(OSError):
    """A writer held a log's lock longer than a reader would wait (a stalled disk)."""


class IdIndex:
    """The ids in a JSON-lines log and its rotated backups, kept between looks, so that a
    look costs what was added since the last, not the log's size: a backup never changes
    once rotated, so its ids are read once and kept by its identity (_identity); of the
    current file only the bytes after the last look's end are read. Each look holds the
    log's lock (shared), so that no rotation or half-written line falls between its reads.
    id_of: a line's id, or None for a line that is no record (logged_id, labelled_id)."""

    def __init__(self, path: Path, id_of) -> None:
        self.path, self.id_of = Path(path), id_of
        self._backups: dict[tuple, frozenset[str]] = {}
        self._following: tuple | None = None  # the current file's (inode, first line)
        self._offset = 0  # where the last look's reading of it ended
        self._current: set[str] = set()

    def __contains__(self, id_: str) -> bool:
        return id_ in self._current or any(id_ in ids for ids in self._backups.values())

    def refresh(self, wait: float) -> None:
        """Read what the log gained since the last look; Stalled when a writer holds the
        lock longer than `wait` seconds."""
        with _shared_lock(self.path.with_name(self.path.name + ".lock"), wait):
            kept = {}
            for file in log_files(self.path):
                if file == self.path:
                    continue
                key = _identity(file)
                if key not in self._backups:
                    self._backups[key] = self._rotated(file, key)
                kept[key] = self._backups[key]
            self._backups = kept  # a backup rotated out of the log is forgotten
            self._follow()

    def _rotated(self, file: Path, key: tuple) -> frozenset[str]:
        """The ids of a backup not seen before: the current file followed so far, rotated
        since (its last lines read), or one read whole."""
        inode, _, head = key
        if (inode, head) != self._following:
            return frozenset(self._read(file, 0)[0])
        self._read_current(file)
        ids, self._following, self._offset, self._current = frozenset(self._current), None, 0, set()
        return ids

    def _follow(self) -> None:
        """Read the current file's new lines; start over on another file (rotated since,
        its inode maybe reused: the first line tells) or a truncated one."""
        if not self.path.exists():
            self._following, self._offset, self._current = None, 0, set()
            return
        inode, size, head = _identity(self.path)
        if (inode, head) != self._following or size < self._offset:
            self._offset, self._current = 0, set()
        self._following = (inode, head)
        self._read_current(self.path)

    def _read_current(self, file: Path) -> None:
        ids, consumed = self._read(file, self._offset)
        self._current |= ids
        self._offset += consumed

    def _read(self, file: Path, start: int) -> tuple[set[str], int]:
        """The ids of `file`'s whole lines from byte `start` on, and the bytes they take."""
        with open(file, "rb") as handle:
            handle.seek(start)
            data = handle.read()
        whole = data[: data.rfind(b"\n") + 1]
        ids = {self.id_of(line) for line in whole.splitlines()}
        ids.discard(None)
        return ids, len(whole)


def _identity(file: Path) -> tuple[int, int, bytes]:
    """(inode, size, first line) of a log file. A file system reuses a deleted file's
    inode at once (measured here: each rotation's new file got the number of the backup
    it deleted), and rotated files of one size are common; the first line, unique to its
    file (each record has its own id), tells them apart."""
    with open(file, "rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        head = handle.read(4096).split(b"\n", 1)[0]
        return os.fstat(handle.fileno()).st_ino, size, head


@contextlib.contextmanager
def _shared_lock(path: Path, wait: float):
    """A shared lock on `path` (writers take it exclusive), waited for at most `wait`
    seconds: a writer blocked on a stalled disk holds it, and a reader must not hang."""
    with open(path, "ab") as lock:
        _take(lock, fcntl.LOCK_SH, wait)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _take(lock, kind: int, wait: float) -> None:
    """flock `kind` on the open file `lock`, waiting as long as it takes (wait < 0) or at
    most `wait` seconds, then Stalled."""
    if wait < 0:
        fcntl.flock(lock, kind)
        return
    deadline = time.monotonic() + wait
    while True:
        try:
            fcntl.flock(lock, kind | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() > deadline:
                name = Path(lock.name).name
                raise Stalled(f"{name} held by a writer for over {wait:g} s") from None
            time.sleep(0.005)


@dataclass(frozen=True)
class Contents:
    """What the log holds: its records, oldest first, and where each line that is no
    record lies (file, line number): torn by a crash, or edited by hand."""

    records: list[dict]
    unreadable: list[tuple[Path, int]]

    def warning(self) -> str | None:
        """One line naming the first unreadable line and the count, or None."""
        if not self.unreadable:
            return None
        (file, number), count = self.unreadable[0], len(self.unreadable)
        return (
            f"{file} line {number}: not a whole prediction record (torn by a crash, or "
            f"edited), skipped; {count} such line{'s' if count > 1 else ''} in the log"
        )


def _record(line: bytes) -> dict | None:
    try:
        record = orjson.loads(line)
    except orjson.JSONDecodeError:  # torn, edited, or not UTF-8
        return None
    if not isinstance(record, dict) or not all(key in record for key in RECORD_KEYS):
        return None
    return record


def file_bytes(path: Path) -> list[tuple[Path, bytes]]:
    """The log's files, oldest first, and their bytes, read under the log's lock (shared,
    as IdIndex reads): a running server's rotation or half-written batch never falls
    between or inside the reads (unlocked, a backup renamed meanwhile was a
    FileNotFoundError, a batch being written a torn line). DataError when a writer holds
    the lock past READ_WAIT_SECONDS (a stalled disk)."""
    path = Path(path)
    try:
        lock = open(path.with_name(path.name + ".lock"), "ab")  # noqa: SIM115 - closed below
    except OSError:  # no folder, or none this user may write in: no server of ours writes there
        return [(file, file.read_bytes()) for file in log_files(path)]
    with lock:  # closing it releases the lock
        try:
            _take(lock, fcntl.LOCK_SH, READ_WAIT_SECONDS)
        except Stalled as exc:
            raise DataError(f"cannot read {path}: {exc}: a stalled disk? try again") from None
        return [(file, file.read_bytes()) for file in log_files(path)]


def load(path: Path) -> Contents:
    """The log and its backups, oldest first, every line a record or counted unreadable."""
    records, unreadable = [], []
    for file, data in file_bytes(path):
        lines = data.split(b"\n")
        if lines[-1] == b"":  # the newline that ends the last line
            lines.pop()
        for number, line in enumerate(lines, start=1):
            record = _record(line)
            if record is None:
                unreadable.append((file, number))
            else:
                records.append(record)
    return Contents(records, unreadable)


def read(path: Path) -> list[dict]:
    """Every record of the log and its backups, oldest first; a line that is no record is
    skipped with a warning naming it and the count (Contents.warning)."""
    contents = load(path)
    if contents.warning():
        log.warning("%s", contents.warning())
    return contents.records
