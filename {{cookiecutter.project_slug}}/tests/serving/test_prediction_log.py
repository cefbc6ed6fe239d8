"""The prediction log: requests only queue rows, a thread writes them in batches, close()
writes the rest, rotation keeps files bounded, and writers in several processes (here two
logs on one file, each with its own file handles and lock) lose and repeat no row. Under
real faults (a log on /dev/full, a write cut short by ENOSPC, a full queue) every row is
written once or counted lost, no line is torn, and readers name every line they skip."""

from __future__ import annotations

import errno
import logging
import os
import threading
import time

import orjson
import pytest

from {{ cookiecutter.package_name }}.serving import prediction_log
from {{ cookiecutter.package_name }}.serving.prediction_log import PredictionLog

ROOMY = 100_000  # queue_rows that no test here fills


def rows(n: int, tag: str = "a") -> list[dict]:
    return [
        {"time": "2026-01-01T00:00:00", "request_id": tag, "row": i, "inputs": {"x": i * 0.5}}
        for i in range(n)
    ]


def wait_for(condition, seconds: float = 10.0) -> None:
    deadline = time.time() + seconds
    while not condition():
        assert time.time() < deadline, "the writer thread did not get there in time"
        time.sleep(0.02)


def test_write_only_queues_and_the_timer_writes_in_batches(tmp_path):
    path = tmp_path / "p.jsonl"
    log = PredictionLog(path, 1_000_000, 1, flush_seconds=0.2, queue_rows=ROOMY)
    started = time.perf_counter()
    for _ in range(1000):
        log.write(rows(1))
    per_request = (time.perf_counter() - started) / 1000
    assert per_request < 50e-6, f"{per_request * 1e6:.1f} µs per write"
    deadline = time.time() + 10
    while len(prediction_log.read(path)) < 1000 and time.time() < deadline:
        time.sleep(0.05)
    assert len(prediction_log.read(path)) == 1000
    log.write(rows(2, "b"))
    log.close()
    log.close()
    assert [r["request_id"] for r in prediction_log.read(path)][-2:] == ["b", "b"]


def test_a_row_json_cannot_hold_is_skipped_and_named_not_raised(tmp_path, caplog):
    path = tmp_path / "p.jsonl"
    log = PredictionLog(path, 1_000_000, 1, flush_seconds=60, queue_rows=ROOMY)
    # An integer past 64 bits: JSON could write it, but not every reader would read it back.
    log.write([{"request_id": "r", "row": 0, "prediction": 2**70}, *rows(1)])
    log.close()
    assert prediction_log.read(path) == rows(1)
    assert "row 0 of request r not logged" in caplog.text
    assert log.status()["rows_lost"] == 1
    assert "1 rows not logged since the start, 0 of them at shutdown" in caplog.text


def test_backups_zero_keeps_one_bounded_file(tmp_path):
    path = tmp_path / "p.jsonl"
    log = PredictionLog(path, max_bytes=1024, backups=0, flush_seconds=60, queue_rows=ROOMY)
    log.write(rows(100))
    log.close()
    assert prediction_log.log_files(path) == [path] and path.stat().st_size <= 1024
    assert prediction_log.read(path)[-1]["row"] == 99


@pytest.mark.parametrize("backups", [100, 2])
def test_two_writers_on_one_file_rotate_it_together_and_keep_the_newest_rows(tmp_path, backups):
    """With room for every row, every row once; with 2 backups, each writer's newest rows
    (rotation drops the oldest, whoever wrote them, never the rows written last)."""
    path = tmp_path / "p.jsonl"
    logs = [
        PredictionLog(path, 1000, backups, flush_seconds=0.005, queue_rows=ROOMY) for _ in range(2)
    ]

    def send(log: PredictionLog, tag: str) -> None:
        for i in range(400):
            log.write([{**rows(1, tag)[0], "row": i, "inputs": {"x": "y" * 20}}])
            if i % 20 == 0:
                time.sleep(0.005)  # let the timers interleave the two writers' batches

    pairs = zip(logs, "ab", strict=True)
    threads = [threading.Thread(target=send, args=pair) for pair in pairs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for log in logs:
        log.close()
    files = prediction_log.log_files(path)
    assert len(files) == min(backups + 1, len(files)) and len(files) > 2
    assert all(f.stat().st_size <= 1000 for f in files)
    got = [(r["request_id"], r["row"]) for r in prediction_log.read(path)]
    assert len(got) == len(set(got))
    for tag in "ab":  # in order across the rotated files, and the newest are all there
        kept = [i for t, i in got if t == tag]
        assert kept == list(range(400 - len(kept), 400)) if backups == 2 else list(range(400))


def test_a_writer_follows_a_rotation_made_by_another(tmp_path):
    path = tmp_path / "p.jsonl"
    first, second = (
        PredictionLog(path, 1000, 5, flush_seconds=60, queue_rows=ROOMY) for _ in range(2)
    )
    second.write(rows(1, "early"))
    second.flush()  # `second` now holds the file open
    first.write([{**rows(1, "big")[0], "inputs": {"x": "y" * 2000}}])
    first.flush()  # a line over max_bytes: `first` rotates the file to p.jsonl.1
    second.write(rows(1, "late"))
    second.flush()
    for log in (first, second):
        log.close()
    assert [r["request_id"] for r in prediction_log.read(path)] == ["early", "big", "late"]
    assert '"late"' in path.read_text() and '"late"' not in path.with_suffix(".jsonl.1").read_text()


def test_on_a_full_disk_rows_wait_then_are_dropped_and_counted_and_written_when_space_returns(
    tmp_path, caplog
):
    """/dev/full under the log (ENOSPC on every write), a queue of 4 rows: 3 rows wait, a
    request of 2 more is dropped; space returns: the 3 are written, whole, and the log says
    when it started and stopped, with the counts (also on status(), /health's)."""
    caplog.set_level(logging.WARNING)
    path = tmp_path / "p.jsonl"
    path.symlink_to("/dev/full")
    log = PredictionLog(path, 1_000_000, 1, flush_seconds=0.02, queue_rows=4)
    log.write(rows(3, "kept"))
    wait_for(lambda: log.status()["error"] is not None)
    assert "cannot write (No space left on device): 3 rows wait" in caplog.text
    log.write(rows(2, "dropped"))
    assert log.status() == {
        "rows_waiting": 3,
        "rows_lost": 2,
        "error": "No space left on device",
    }
    wait_for(lambda: "queue full (3 rows waiting)" in caplog.text)
    path.unlink()  # space returns: the writer reopens the path, now a plain file
    path.touch()
    wait_for(lambda: log.status()["error"] is None)
    assert "written again; 2 rows dropped meanwhile, 2 since the start" in caplog.text
    log.close()
    assert prediction_log.read(path) == rows(3, "kept")
    assert "2 rows not logged since the start, 0 of them at shutdown" in caplog.text


def test_closing_on_a_full_disk_counts_the_rows_lost_in_one_line_and_raises_nothing(
    tmp_path, caplog
):
    path = tmp_path / "p.jsonl"
    path.symlink_to("/dev/full")
    log = PredictionLog(path, 1_000_000, 1, flush_seconds=60, queue_rows=ROOMY)
    log.write(rows(5))
    log.close()
    log.close()
    lines = [r.getMessage() for r in caplog.records if r.name == prediction_log.__name__]
    assert lines == [
        f"prediction log {path}: 5 rows not logged since the start, 5 of them at shutdown "
        "(No space left on device)"
    ]


def test_a_write_cut_short_leaves_whole_lines_and_its_rows_are_written_next_time(
    tmp_path, monkeypatch
):
    """os.write writes part of the bytes, then the disk is full (ENOSPC): the file is cut
    back to its last whole line, the rows stay queued, and the next flush writes them once."""
    path = tmp_path / "p.jsonl"
    log = PredictionLog(path, 1_000_000, 1, flush_seconds=60, queue_rows=ROOMY)
    log.write(rows(2, "first"))
    log.flush()
    before = path.read_bytes()
    real_write = os.write

    def partly(fd: int, data) -> int:
        real_write(fd, bytes(data[: len(data) // 2]))
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "write", partly)
    log.write(rows(3, "second"))
    with pytest.raises(OSError, match="No space left"):
        log.flush()
    assert path.read_bytes() == before
    monkeypatch.setattr(os, "write", real_write)
    log.flush()
    log.close()
    contents = prediction_log.load(path)
    assert contents.records == rows(2, "first") + rows(3, "second")
    assert contents.unreadable == [] and log.status()["rows_lost"] == 0


def test_a_torn_last_line_from_a_crash_is_ended_and_named_by_readers(tmp_path, caplog):
    """A file that ends mid-line (an older version's crash): the next row starts a line of
    its own, and read() skips the torn one with a warning naming file, line and count."""
    path = tmp_path / "p.jsonl"
    path.write_bytes(b'{"time": "2026-01-01", "request_id": "old", "ro')
    log = PredictionLog(path, 1_000_000, 1, flush_seconds=60, queue_rows=ROOMY)
    log.write(rows(1, "new"))
    log.close()
    assert prediction_log.read(path) == rows(1, "new")
    assert (
        f"{path} line 1: not a whole prediction record (torn by a crash, or edited), "
        "skipped; 1 such line in the log"
    ) in caplog.text


def test_a_reader_waits_for_a_writer_mid_batch_and_mid_rotation(tmp_path):
    """`monitor` reading the log of a running server: a writer holds the lock while it
    appends a batch (a line half written) or rotates (a backup renamed away); the reader
    reads the files once the writer is done, not between its steps."""
    import fcntl

    path = tmp_path / "p.jsonl"
    first, second = (orjson.dumps(r) + b"\n" for r in rows(2))
    path.with_name("p.jsonl.1").write_bytes(first)
    path.write_bytes(second[:10])  # the writer's batch, half written
    read: list = []
    with open(path.with_name("p.jsonl.lock"), "ab") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        reader = threading.Thread(target=lambda: read.append(prediction_log.load(path)))
        reader.start()
        time.sleep(0.3)
        path.with_name("p.jsonl.1").rename(path.with_name("p.jsonl.2"))  # rotating
        time.sleep(0.3)
        path.write_bytes(second)
        path.rename(path.with_name("p.jsonl.1"))
        path.write_bytes(b"")
        fcntl.flock(lock, fcntl.LOCK_UN)
    reader.join(10)
    assert read[0].records == rows(2) and read[0].unreadable == []


def test_every_line_that_is_no_record_is_counted_where_it_lies(tmp_path):
    """Edited by hand: a blank line, bytes that are not UTF-8, JSON that is no record."""
    path = tmp_path / "p.jsonl"
    good = [line + b"\n" for line in (b'{"time": 1, "request_id": "r", "row": 0, "inputs": {}}',)]
    path.with_name("p.jsonl.1").write_bytes(good[0] + b"\n" + b"\xff\xfe\n")
    path.write_bytes(b'{"time": 1}\n' + good[0] + b"[1, 2]\n")
    contents = prediction_log.load(path)
    assert len(contents.records) == 2
    backup = path.with_name("p.jsonl.1")
    assert contents.unreadable == [(backup, 2), (backup, 3), (path, 1), (path, 3)]
    assert (
        contents.warning().startswith(f"{backup} line 2: ") and "4 such lines" in contents.warning()
    )


def test_a_full_queue_drops_whole_requests_and_never_blocks(tmp_path):
    path = tmp_path / "p.jsonl"
    log = PredictionLog(path, 1_000_000, 1, flush_seconds=60, queue_rows=5)
    log.write(rows(3, "a"))
    started = time.perf_counter()
    log.write(rows(3, "b"))  # 6 > 5: the whole request is dropped, not a part of it
    assert time.perf_counter() - started < 0.01
    log.write(rows(2, "c"))
    assert log.status() == {"rows_waiting": 5, "rows_lost": 3, "error": None}
    log.flush()
    assert log.status()["rows_waiting"] == 0
    log.close()
    assert [r["request_id"] for r in prediction_log.read(path)] == ["a"] * 3 + ["c"] * 2


def test_a_half_full_queue_is_written_at_once_not_at_the_next_timer(tmp_path):
    """A burst (3 rows of a queue of 4) wakes the writer: with a 60 s timer, only that can
    have written them, and the next burst then finds room."""
    path = tmp_path / "p.jsonl"
    log = PredictionLog(path, 1_000_000, 1, flush_seconds=60, queue_rows=4)
    log.write(rows(3, "burst"))
    wait_for(lambda: log.status()["rows_waiting"] == 0)
    log.write(rows(3, "next"))
    log.close()
    assert log.status()["rows_lost"] == 0
    assert len(prediction_log.read(path)) == 6


def test_a_stalled_disk_holds_the_writer_never_a_request_and_close_waits_a_bounded_time(
    tmp_path, monkeypatch, caplog
):
    """os.write blocks (a stalled disk, an NFS server gone) until an Event is set: writes
    keep returning at once, rows past the queue's bound are counted lost, flush(wait)
    gives up, and close() returns after stall_seconds, counting the queued rows lost in
    one line; the blocked write then finishes in the background."""
    monkeypatch.setattr(prediction_log, "STALL_FLOOR_SECONDS", 0.3)
    assert prediction_log.stall_seconds(0.02) == 0.3 and prediction_log.stall_seconds(1.0) == 5.0
    path = tmp_path / "p.jsonl"
    log = PredictionLog(path, 1_000_000, 1, flush_seconds=0.02, queue_rows=4)
    released, blocked = threading.Event(), threading.Event()
    real_write = os.write

    def stalled(fd: int, data) -> int:
        if fd == log._fd:
            blocked.set()
            released.wait()
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", stalled)
    log.write(rows(1, "stuck"))
    assert blocked.wait(10), "the writer never wrote"
    started = time.perf_counter()
    log.write(rows(3, "queued"))
    log.write(rows(2, "dropped"))  # 3 + 1 in flight fill the queue of 4
    assert time.perf_counter() - started < 0.01
    assert log.status() == {"rows_waiting": 4, "rows_lost": 2, "error": None}
    assert log.flush(wait=0.05) is False
    started = time.perf_counter()
    log.close()
    assert 0.3 <= time.perf_counter() - started < 2
    lines = [r.getMessage() for r in caplog.records if r.name == prediction_log.__name__]
    assert lines == [
        f"prediction log {path}: 6 rows not logged since the start, 4 of them at shutdown "
        "(the disk took no write for 0.3 s: stalled?)"
    ]
    released.set()
    log._writer.join(10)
    assert not log._writer.is_alive()
