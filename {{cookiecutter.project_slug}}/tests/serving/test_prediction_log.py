"""The prediction log: requests only queue rows, a thread writes them in batches, close()
writes the rest, rotation keeps files bounded, and writers in several processes (here two
logs on one file, each with its own file handles and lock) lose and repeat no row."""

from __future__ import annotations

import threading
import time

import pytest

from {{ cookiecutter.package_name }}.serving import prediction_log
from {{ cookiecutter.package_name }}.serving.prediction_log import PredictionLog


def rows(n: int, tag: str = "a") -> list[dict]:
    return [{"request_id": tag, "row": i, "inputs": {"x": i * 0.5}} for i in range(n)]


def test_write_only_queues_and_the_timer_writes_in_batches(tmp_path):
    path = tmp_path / "p.jsonl"
    log = PredictionLog(path, 1_000_000, 1, flush_seconds=0.2)
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
    log = PredictionLog(path, 1_000_000, 1, flush_seconds=60)
    # An integer past 64 bits: JSON could write it, but not every reader would read it back.
    log.write([{"request_id": "r", "row": 0, "prediction": 2**70}, *rows(1)])
    log.close()
    assert prediction_log.read(path) == rows(1)
    assert "row 0 of request r not logged" in caplog.text


def test_backups_zero_keeps_one_bounded_file(tmp_path):
    path = tmp_path / "p.jsonl"
    log = PredictionLog(path, max_bytes=1024, backups=0, flush_seconds=60)
    log.write(rows(100))
    log.close()
    assert prediction_log.log_files(path) == [path] and path.stat().st_size <= 1024
    assert prediction_log.read(path)[-1]["row"] == 99


@pytest.mark.parametrize("backups", [100, 2])
def test_two_writers_on_one_file_rotate_it_together_and_keep_the_newest_rows(tmp_path, backups):
    """With room for every row, every row once; with 2 backups, each writer's newest rows
    (rotation drops the oldest, whoever wrote them, never the rows written last)."""
    path = tmp_path / "p.jsonl"
    logs = [PredictionLog(path, 1000, backups, flush_seconds=0.005) for _ in range(2)]

    def send(log: PredictionLog, tag: str) -> None:
        for i in range(400):
            log.write([{"request_id": tag, "row": i, "inputs": {"x": "y" * 20}}])
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
    first, second = (PredictionLog(path, 1000, 5, flush_seconds=60) for _ in range(2))
    second.write(rows(1, "early"))
    second.flush()  # `second` now holds the file open
    first.write([{"request_id": "big", "row": 0, "inputs": {"x": "y" * 2000}}])
    first.flush()  # a line over max_bytes: `first` rotates the file to p.jsonl.1
    second.write(rows(1, "late"))
    second.flush()
    for log in (first, second):
        log.close()
    assert [r["request_id"] for r in prediction_log.read(path)] == ["early", "big", "late"]
    assert '"late"' in path.read_text() and '"late"' not in path.with_suffix(".jsonl.1").read_text()
