"""Labels that arrive later: appended whole, the last one per id wins, joined by id."""

from __future__ import annotations

import os

import pytest

from {{ cookiecutter.package_name }}.monitoring import labels
from {{ cookiecutter.package_name }}.serving import prediction_log
from {{ cookiecutter.package_name }}.serving.prediction_log import PredictionLog


def logged(path, rows: int) -> list[str]:
    log = PredictionLog(path, 10_000_000, 2, 60.0, queue_rows=1000)
    records = [
        {"time": "2026-01-01T00:00:00Z", "request_id": "r", "row": i, "id": f"r-{i}",
         "inputs": {}, "prediction": "a"}
        for i in range(rows)
    ]  # fmt: skip
    log.write(records)
    log.close()
    return [r["id"] for r in records]


def test_the_last_label_of_an_id_wins_and_the_log_is_untouched(tmp_path):
    log_path, feedback = tmp_path / "predictions.jsonl", tmp_path / "feedback.jsonl"
    ids = logged(log_path, 3)
    before = log_path.read_bytes()
    labels.append(feedback, [(ids[0], "a"), (ids[1], "b")], "2026-01-02T00:00:00Z")
    labels.append(feedback, [(ids[0], "c")], "2026-01-03T00:00:00Z")
    found = labels.latest(feedback)
    assert found == {
        ids[0]: {"label": "c", "time": "2026-01-03T00:00:00Z"},
        ids[1]: {"label": "b", "time": "2026-01-02T00:00:00Z"},
    }
    records = labels.joined(
        [{"request_id": "r", "row": i, "label": "carried"} for i in range(3)], found
    )
    # The later word wins over a label the request carried; an unlabelled row keeps its own.
    assert [r["label"] for r in records] == ["c", "b", "carried"]
    assert records[0]["label_time"] == "2026-01-03T00:00:00Z" and "label_time" not in records[2]
    assert log_path.read_bytes() == before
    assert labels.logged_ids(prediction_log.load(log_path).records) == set(ids)


def test_logged_ids_are_the_records_ids_an_old_record_its_request_and_row():
    """The one helper on records that `feedback` (its known ids, the rows that carried a
    label) and the tests use."""
    records = [{"request_id": "r", "row": 0, "id": "r-0"}, {"request_id": "old", "row": 3}]
    assert labels.logged_ids(records) == {"r-0", "old-3"}
    assert labels.logged_ids(r for r in records if "id" not in r) == {"old-3"}


def test_a_torn_line_is_skipped_and_a_failed_write_leaves_whole_lines(tmp_path, monkeypatch):
    feedback = tmp_path / "feedback.jsonl"
    labels.append(feedback, [("x-0", 1.5)], "t1")
    with open(feedback, "ab") as file:
        file.write(b'{"id": "x-1", "lab')
    assert labels.latest(feedback) == {"x-0": {"label": 1.5, "time": "t1"}}
    # The next write ends the torn line first: its own first line stays whole.
    labels.append(feedback, [("x-3", 2.5)], "t3")
    assert set(labels.latest(feedback)) == {"x-0", "x-3"}
    size = feedback.stat().st_size
    real_write = os.write

    def half_then_full_disk(fd, data):
        if len(data) > 8:
            real_write(fd, bytes(data[:8]))
            raise OSError(28, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", half_then_full_disk)
    with pytest.raises(OSError):
        labels.append(feedback, [("x-2", 3.0)], "t2")
    assert feedback.stat().st_size == size
