"""POST /feedback in-process: labels for the ids the answers gave, stored all or none (the
last of a repeated id), a row answered a moment ago already known, the body checked as
/predict's is, behind the API key; and the id index under it, which reads only what a
log gained since its last look."""

from __future__ import annotations

import fcntl

import pytest
import test_serving

from {{ cookiecutter.package_name }}.monitoring import labels
from {{ cookiecutter.package_name }}.serving import prediction_log
from {{ cookiecutter.package_name }}.serving.prediction_log import IdIndex, PredictionLog

# The in-process app and its toy model (fixtures), as test_serving builds them.
model_source, served = test_serving.model_source, test_serving.served
GOOD = test_serving.GOOD
KEY = {"X-API-Key": "s3cret"}


def truth(task: str, i: int) -> object:
    return ["high", "low"][i % 2] if task == "classification" else i + 0.5


def answered(client, rows: int = 3) -> list[str]:
    answer = client.post("/predict", json={"instances": [GOOD] * rows}, headers=KEY)
    assert answer.status_code == 200, answer.text
    return answer.json()["ids"]


def test_labels_for_answered_ids_are_stored_and_the_last_of_a_repeated_id_wins(
    served, task, tmp_path
):
    client, _, _ = served(task, api_key="s3cret")
    ids = answered(client)  # queued, not yet written (the log's timer is 60 s): flushed first
    sent = [(ids[0], truth(task, 0)), (ids[1], truth(task, 1)), (ids[0], truth(task, 1))]
    body = {"labels": [{"id": i, "label": label} for i, label in sent]}
    answer = client.post("/feedback", json=body, headers=KEY)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"stored": 2, "replaced": 0, "unknown": 0}
    again = {"labels": [{"id": ids[1], "label": truth(task, 0)}]}
    assert client.post("/feedback", json=again, headers=KEY).json()["replaced"] == 1
    stored = labels.latest(tmp_path / "logs" / "feedback.jsonl")
    assert {i: e["label"] for i, e in stored.items()} == {
        ids[0]: truth(task, 1),
        ids[1]: truth(task, 0),
    }


def test_unknown_ids_are_a_422_in_one_line_and_nothing_is_stored_unless_skip_unknown(
    served, task, tmp_path
):
    client, _, _ = served(task)
    ids = answered(client, 1)
    body = {"labels": [{"id": i, "label": truth(task, 0)} for i in [ids[0], "x-0", "x-1"]]}
    answer = client.post("/feedback", json=body)
    assert answer.status_code == 422
    assert answer.json()["error"] == (
        "2 of 3 ids are in no prediction log ('x-0', 'x-1'): nothing stored; send ids a POST "
        "/predict answer gave (`ids`), or set skip_unknown to store the known ones"
    )
    assert [d["loc"] for d in answer.json()["detail"]] == [
        ["body", "labels", 1, "id"],
        ["body", "labels", 2, "id"],
    ]
    assert not (tmp_path / "logs" / "feedback.jsonl").exists()
    answer = client.post("/feedback", json={**body, "skip_unknown": True})
    assert answer.json() == {"stored": 1, "replaced": 0, "unknown": 2}


def test_a_label_of_the_wrong_type_too_many_or_none_is_a_422_naming_the_field(served, task):
    client, _, _ = served(task, max_rows=2)
    ids = answered(client, 2)
    wrong = 1.5 if task == "classification" else "many"
    for labels_, message in (
        ([{"id": ids[0], "label": wrong}], "labels[0].label: "),
        ([{"id": ids[0], "label": None}], "labels[0].label: "),
        ([{"id": ids[0]}], "labels[0].label: Field required"),
        ([{"id": "", "label": truth(task, 0)}], "labels[0].id: String should have at least 1"),
        ([{"id": i, "label": truth(task, 0)} for i in ids * 2], "labels: List should have at"),
        ([], "labels: List should have at least 1 item"),
    ):  # fmt: skip
        answer = client.post("/feedback", json={"labels": labels_})
        assert answer.status_code == 422 and answer.json()["error"].startswith(message), (
            labels_,
            answer.text,
        )


def test_feedback_needs_the_key_when_one_is_set(served, task):
    client, _, _ = served(task, api_key="s3cret")
    ids = answered(client, 1)
    body = {"labels": [{"id": ids[0], "label": truth(task, 0)}]}
    assert client.post("/feedback", json=body).status_code == 401
    assert client.post("/feedback", json=body, headers={"X-API-Key": "no"}).status_code == 401
    assert client.post("/feedback", json=body, headers=KEY).status_code == 200


def test_the_id_index_reads_only_what_the_log_gained_and_follows_rotations(tmp_path, monkeypatch):
    """Rows written in three rounds into a log that rotates every few rows: after each
    round the index knows exactly the ids the log holds (the whole log read, then
    labels.logged_ids), it never reads a backup twice, and it reads the file it follows
    from where its last look ended."""
    path = tmp_path / "p.jsonl"
    log = PredictionLog(path, 500, 2, flush_seconds=60, queue_rows=10_000)  # ~5 rows a file
    index = IdIndex(path, prediction_log.logged_id)
    reads: list[tuple[str, int]] = []
    read = IdIndex._read

    def counted(self, file, start):
        reads.append((file.name, start))
        return read(self, file, start)

    monkeypatch.setattr(IdIndex, "_read", counted)
    for round_ in range(3):
        log.write([{"time": "t", "request_id": f"q{round_}", "row": i, "id": f"q{round_}-{i}",
                    "inputs": {"x": "y" * 40}} for i in range(12)])  # fmt: skip
        log.flush()
        reads.clear()
        index.refresh(wait=1.0)
        held = labels.logged_ids(prediction_log.load(path).records)
        assert {i for i in held if i in index} == held and f"q{round_}-11" in held
        names = [name for name, _ in reads]
        assert len(names) == len(set(names)), reads  # each file read at most once a look
    assert "q0-0" not in index  # rotated out of the log: forgotten, as the join forgets it
    reads.clear()
    index.refresh(wait=1.0)
    assert reads == [(path.name, path.stat().st_size)]  # nothing new: only the tail looked at
    log.close()


def test_a_writer_holding_the_lock_past_the_wait_is_stalled_not_a_hang(tmp_path):
    path = tmp_path / "p.jsonl"
    path.touch()
    with open(tmp_path / "p.jsonl.lock", "ab") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a writer blocked on a stalled disk holds it
        with pytest.raises(prediction_log.Stalled, match="held by a writer for over 0.1 s"):
            IdIndex(path, prediction_log.logged_id).refresh(wait=0.1)


def test_a_stalled_disk_makes_feedback_a_503_after_the_wait_never_a_hang(
    served, task, tmp_path, monkeypatch
):
    """A writer blocked on a stalled disk holds the prediction log's lock: the request
    waits stall_seconds (0.2 s here), then is a 503 and nothing is stored; once the lock
    is free, the same labels are stored."""
    monkeypatch.setattr(prediction_log, "stall_seconds", lambda flush_seconds: 0.2)
    client, _, _ = served(task)
    ids = answered(client, 1)
    body = {"labels": [{"id": ids[0], "label": truth(task, 0)}]}
    with open(tmp_path / "logs" / "predictions.jsonl.lock", "ab") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        answer = client.post("/feedback", json=body)
        fcntl.flock(lock, fcntl.LOCK_UN)
    assert answer.status_code == 503
    assert answer.json()["detail"].startswith("labels not stored (predictions.jsonl.lock held")
    assert not (tmp_path / "logs" / "feedback.jsonl").exists()
    assert client.post("/feedback", json=body).json()["stored"] == 1
