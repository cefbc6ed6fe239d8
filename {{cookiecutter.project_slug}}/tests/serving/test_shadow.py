"""The challenger in the shadow (serving/shadow.py): which requests it scores, that it
scores them in a process of its own and never answers, its bounded queue, its log's
records, a shadow process that stalls, fails or dies, and the shadows serve refuses
(serving/registry.py)."""

from __future__ import annotations

import dataclasses
import hashlib
import multiprocessing
import os
import signal
import subprocess
import threading
import time
import uuid

import pandas as pd
import pytest
import yaml
from fastapi.testclient import TestClient

from {{ cookiecutter.package_name }}.core import io, paths
from {{ cookiecutter.package_name }}.core.errors import DataError, UserError
from {{ cookiecutter.package_name }}.serving import prediction_log, registry, shadow
from {{ cookiecutter.package_name }}.serving.app import create_app
from {{ cookiecutter.package_name }}.stages import preprocess
from {{ cookiecutter.package_name }}.tables import schema

GOOD = {"x1": 0.5, "x2": -1.0, "color": "red"}
RECORD_KEYS = {
    "time", "id", "request_id", "row", "model_version", "model_md5", "git_revision",
    "prediction", "probabilities", "latency_ms",
}  # fmt: skip


@pytest.fixture
def sources(fitted, toy_roles, simple_model, task_models, task, tmp_path):
    """sources(): (champion, shadow): ModelSources of two toy models of the bake's task
    fitted on the same features (a linear model, a small forest), their model files in
    tmp_path."""

    def make():
        made = []
        pairs = ((simple_model[task], "c0ffee"), (task_models["random_forest"], "5ad0"))
        for config, revision in pairs:
            model, train, _ = fitted(task, config)
            path = tmp_path / f"{config['name']}.skops"
            io.save_model(path, model)
            (tmp_path / paths.MODEL_CONF).mkdir(parents=True, exist_ok=True)
            conf = tmp_path / paths.MODEL_CONF / f"{config['name']}.yaml"
            conf.write_text(yaml.safe_dump(config))
            metadata = {
                "model": config["name"],
                "task": task,
                "metrics": {},
                "hyperparameters": {},
                "data": {"train_md5": "abc"},
                "features": preprocess.describe_features(train, toy_roles, task),
                "onnx": {"status": "missing"},
            }
            version = "v0.0.1" if revision == "c0ffee" else "forest-exp"
            source = registry.ModelSource(
                "toy", version, None, revision, path.read_bytes(), metadata
            )
            made.append((source, model))
        return made

    return make


@pytest.fixture
def shadowed(sources, tmp_path, configured):
    """shadowed(**serve settings): (TestClient, champion model, shadow model, Shadow), the
    shadow's process started."""
    opened = []

    def make(**settings):
        (champion, ours), (second, theirs) = sources()
        settings = configured("serve", shadow="forest-exp", shadow_share=1.0, **settings)
        log = prediction_log.PredictionLog(
            tmp_path / "logs/p.jsonl", 1_000_000, 2, flush_seconds=60, queue_rows=100_000
        )
        started = shadow.start(tmp_path, settings, second, tmp_path / paths.MODEL_CONF)
        opened.extend([log, started])
        app = create_app(champion, settings, None, log, tmp_path / paths.MODEL_CONF, shadow=started)
        return TestClient(app), ours, theirs, started

    yield make
    for thing in opened:
        thing.close()


def predicted(model, rows: list[dict], roles) -> list:
    return model.predict(schema.model_frame(pd.DataFrame(rows), roles)).tolist()


def until(client, ready, what: str) -> dict:
    """GET /health's shadow once ready(it) holds; fails after 30 s."""
    deadline = time.monotonic() + 30
    while not ready(health := client.get("/health").json()["shadow"]):
        assert time.monotonic() < deadline, what
        time.sleep(shadow.BATCH_SECONDS)
    return health


def test_the_share_is_chosen_by_the_request_id_exactly_over_many_and_again_alike():
    ids = [uuid.uuid4().hex for _ in range(20_000)]
    for share in (0.1, 0.25, 0.5):
        picked = [shadow.chosen(i, share) for i in ids]
        assert abs(sum(picked) / len(ids) - share) < 0.015
        assert picked == [shadow.chosen(i, share) for i in ids]
    assert not any(shadow.chosen(i, 0.0) for i in ids[:500])
    assert all(shadow.chosen(i, 1.0) for i in ids[:500])
    # A share's requests are among a larger share's: raising it adds requests, keeps these.
    assert all(shadow.chosen(i, 0.5) for i in ids if shadow.chosen(i, 0.25))


def test_the_answer_is_the_champions_and_the_shadow_logs_its_own_for_the_same_ids(
    shadowed, toy_roles, task, tmp_path
):
    client, ours, theirs, started = shadowed()
    assert started.pid != os.getpid()
    rows = [GOOD, {**GOOD, "x1": -2.0}, {**GOOD, "x1": 3.0, "color": "blue"}]
    with client:
        answers = [
            client.post("/predict", json={"instances": rows[: n + 1]}).json() for n in range(3)
        ]
        health = client.get("/health").json()["shadow"]
    assert health["version"] == "forest-exp" and health["share"] == 1.0
    assert health["rows_offered"] == 6 and health["rows_dropped"] == 0
    for n, answer in enumerate(answers):
        assert answer["predictions"] == predicted(ours, rows[: n + 1], toy_roles)
    records = shadow_records(tmp_path)
    assert all(set(r) == RECORD_KEYS for r in records)
    assert [r["id"] for r in records] == [i for a in answers for i in a["ids"]]
    every_row = [row for n in range(3) for row in rows[: n + 1]]
    assert [r["prediction"] for r in records] == predicted(theirs, every_row, toy_roles)
    assert {r["git_revision"] for r in records} == {"5ad0"}
    assert all(r["latency_ms"] > 0 for r in records)
    classes = {"high", "low", "mid"} if task == "classification" else None
    assert all((r["probabilities"] and set(r["probabilities"])) == classes for r in records)


def shadow_records(root) -> list[dict]:
    from {{ cookiecutter.package_name }}.monitoring import shadow as report

    return report.read(root / "logs/shadow.jsonl")


def test_a_slow_shadow_never_delays_an_answer_and_a_full_queue_drops_counting(shadowed, tmp_path):
    client, _, _, started = shadowed(log_queue_rows=4)
    with client:
        os.kill(started.pid, signal.SIGSTOP)  # a shadow that takes nothing: a slow one
        try:
            begun = time.perf_counter()
            client.post("/predict", json={"instances": [GOOD]})
            for _ in range(6):
                answer = client.post("/predict", json={"instances": [GOOD, GOOD]})
                assert answer.status_code == 200
            assert time.perf_counter() - begun < 5
            health = client.get("/health").json()["shadow"]
        finally:
            os.kill(started.pid, signal.SIGCONT)
        # 1 row handed over, room for one more request of 2 rows, the other 10 dropped.
        counts = [health[f"rows_{n}"] for n in ("offered", "waiting", "dropped")]
        assert counts == [13, 3, 10]
    assert len(shadow_records(tmp_path)) == 3  # shutdown scored what was queued


def test_a_stalled_shadow_is_killed_at_shutdown_and_its_rows_counted_in_one_line(
    shadowed, tmp_path, caplog
):
    client, _, _, started = shadowed()
    started.stop_seconds = 0.5
    with client:
        os.kill(started.pid, signal.SIGSTOP)
        assert client.post("/predict", json={"instances": [GOOD, GOOD]}).status_code == 200
    status = started.status()
    assert (status["rows_failed"], status["rows_waiting"]) == (2, 0)
    lines = [r.getMessage() for r in caplog.records if "at shutdown" in r.getMessage()]
    assert lines == [
        "shadow forest-exp: 2 rows not scored at shutdown (its process took over 0.5 s: stalled?)"
    ]
    assert shadow_records(tmp_path) == []


def test_a_stalled_shadow_is_killed_at_shutdown_also_when_its_fork_server_is_gone(shadowed):
    """A SIGTERM to the server's process group (a service manager's stop) ends the fork
    server at once, which then reports its shadow ended while it still runs."""
    from multiprocessing import forkserver

    client, _, _, started = shadowed()
    started.stop_seconds = 0.5
    with client:
        os.kill(started.pid, signal.SIGSTOP)
        assert client.post("/predict", json={"instances": [GOOD]}).status_code == 200
        os.kill(forkserver._forkserver._forkserver_pid, signal.SIGTERM)
        closing = threading.Thread(target=started.close, daemon=True)
        closing.start()
        closing.join(10)
        if closing.is_alive():  # the test's own cleanup: the close never ends otherwise
            os.kill(started.pid, signal.SIGKILL)
        assert not closing.is_alive(), "close() waited on past stop_seconds"
    assert (started.status()["rows_failed"], started.status()["rows_waiting"]) == (1, 0)
    assert ended(started.pid)


def ended(pid: int) -> bool:
    """Whether the process `pid` has ended: gone, or a zombie its parent has not reaped."""
    try:
        stat = open(f"/proc/{pid}/stat").read()  # noqa: SIM115 - read at once
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


def test_a_dead_shadow_process_is_reported_once_and_the_server_answers_on(
    shadowed, toy_roles, caplog
):
    client, ours, _, started = shadowed()
    with client:
        client.post("/predict", json={"instances": [GOOD]})
        until(client, lambda h: h["rows_scored"] == 1, "the process never scored the row")
        os.kill(started.pid, signal.SIGKILL)
        until(client, lambda h: h["error"], "the dead process was never reported")
        for _ in range(3):
            answer = client.post("/predict", json={"instances": [GOOD]})
            assert answer.status_code == 200
            assert answer.json()["predictions"] == predicted(ours, [GOOD], toy_roles)
        health = client.get("/health").json()["shadow"]
    assert health["error"] == (
        "the shadow process ended (exit code -9): restart the server to shadow again"
    )
    counts = [health[f"rows_{n}"] for n in ("offered", "scored", "failed", "waiting")]
    assert counts == [4, 1, 3, 0]
    ended = [r for r in caplog.records if "shadow process ended" in r.getMessage()]
    assert len(ended) == 1 and ended[0].levelname == "WARNING"


def test_a_shadow_that_fails_to_score_counts_its_rows_and_warns_once(sources, tmp_path, caplog):
    class Failing:
        def predict(self, columns, rows):
            raise ValueError("cannot score this\nsecond line")

    _, (second, _) = sources()
    log = prediction_log.PredictionLog(
        tmp_path / "logs/shadow.jsonl", 1_000_000, 2, flush_seconds=60, queue_rows=100
    )
    scorer = shadow.Scorer(second, Failing(), log, None)
    columns = {name: [value] for name, value in GOOD.items()}
    for _ in range(3):
        scorer.score([shadow.Offer(time.time(), uuid.uuid4().hex, columns, 1)])
    log.close()
    assert scorer.counts()[:3] == (0, 3, "ValueError: cannot score this")
    failing = [r for r in caplog.records if "cannot score" in r.getMessage()]
    assert len(failing) == 1  # one warning, not one per batch
    assert shadow_records(tmp_path) == []


def test_the_shadow_process_reports_its_logs_failures_to_the_server(shadowed, tmp_path, caplog):
    client, _, _, _ = shadowed(log_flush_seconds=0.05)
    # The process opens its log file at its first write: a folder in its place fails it.
    (tmp_path / "logs/shadow.jsonl").unlink()
    (tmp_path / "logs/shadow.jsonl").mkdir()
    with client:
        client.post("/predict", json={"instances": [GOOD, GOOD]})
        health = until(client, lambda h: h["log"]["error"], "the log's failure never reported")
    assert health["rows_scored"] == 2 and health["log"]["rows_waiting"] == 2
    assert health["log"]["error"] == "Is a directory"
    lines = [r.getMessage() for r in caplog.records if "cannot write (" in r.getMessage()]
    assert len(lines) == 1 and "logs/shadow.jsonl: cannot write (Is a directory)" in lines[0]


def test_a_shadow_that_cannot_start_is_one_line_and_leaves_no_process(
    sources, tmp_path, configured
):
    _, (second, _) = sources()
    (tmp_path / "logs").write_text("a file where the logs' folder goes")
    settings = configured("serve", shadow="forest-exp", shadow_log="logs/shadow.jsonl")
    refused = r"^cannot write the shadow log logs/shadow.jsonl \(.*\): make .* serve.shadow_log"
    with pytest.raises(UserError, match=refused):
        shadow.start(tmp_path, settings, second, tmp_path / paths.MODEL_CONF)
    assert not [p for p in multiprocessing.active_children() if p.name.startswith("shadow")]


def test_health_counts_the_scored_rows(shadowed):
    client, _, _, _ = shadowed()
    with client:
        client.post("/predict", json={"instances": [GOOD, GOOD, GOOD]})
        health = until(client, lambda h: h["rows_scored"] == 3, "the rows were never scored")
    assert (health["rows_scored"], health["rows_waiting"], health["rows_failed"]) == (3, 0, 0)


def git(root, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, text=True)
    return done.stdout.strip()


def test_serve_refuses_a_shadow_it_cannot_find_fetch_compare_or_tell_apart(
    sources, tmp_path, monkeypatch
):
    """Each refusal is one line naming the fix: no such experiment or revision, a model
    not in the DVC cache, a model that could not score the champion's rows, the champion
    itself."""
    (champion, _), (second, _) = sources()
    task = champion.metadata["task"]
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q")
    unknown = r"^shadow 'nope': no experiment or git revision .*`dvc exp list`"
    with pytest.raises(DataError, match=unknown):
        registry.shadow(root, "nope", champion)
    md5 = hashlib.md5(second.model_bytes).hexdigest()
    lock = {"stages": {"export": {"outs": [{"path": str(paths.MODEL), "md5": md5}]}}}
    io.write_text(root / "dvc.lock", yaml.safe_dump(lock))
    git(root, "add", "dvc.lock")
    git(root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "export")
    head = git(root, "rev-parse", "HEAD")
    cache = tmp_path / "cache"
    monkeypatch.setattr(registry, "cache_path", lambda _, md5: cache / md5)
    with pytest.raises(DataError, match=r"not in the DVC cache: run `dvc exp pull <remote> HEAD`"):
        registry.shadow(root, "HEAD", champion)
    found = dataclasses.replace(second, git_revision=head)
    monkeypatch.setattr(registry, "from_version", lambda *_: found)
    io.write_bytes(cache / md5, second.model_bytes)
    assert registry.shadow(root, "HEAD", champion) is found
    with pytest.raises(DataError, match=r"is the served model itself \(md5 "):
        registry.shadow(root, "HEAD", found)
    roles = {**champion.metadata["features"]["roles"], "numeric": ["x1"]}
    other = {**champion.metadata, "features": {**champion.metadata["features"], "roles": roles}}
    unlike = r"reads \['x1', 'x2', 'color'\], the champion \['x1', 'color'\]: it could not score"
    with pytest.raises(DataError, match=unlike):
        registry.shadow(root, "HEAD", dataclasses.replace(champion, metadata=other))
    other = "regression" if task == "classification" else "classification"
    with pytest.raises(DataError, match=f"does {task}, the champion {other}"):
        other_task = {**champion.metadata, "task": other}
        registry.shadow(root, "HEAD", dataclasses.replace(champion, metadata=other_task))
