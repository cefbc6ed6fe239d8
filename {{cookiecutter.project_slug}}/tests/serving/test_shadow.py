"""The challenger in the shadow (serving/shadow.py): which requests it scores, that it
scores them off the response path and never answers, its bounded queue, its log's
records, and the shadows serve refuses (serving/registry.py)."""

from __future__ import annotations

import dataclasses
import hashlib
import subprocess
import threading
import time
import uuid

import pandas as pd
import pytest
import yaml
from fastapi.testclient import TestClient

from {{ cookiecutter.package_name }}.core import io, paths
from {{ cookiecutter.package_name }}.core.errors import DataError
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
    """shadowed(runtime=None, **serve settings): (TestClient, champion model, shadow
    model, Shadow). runtime replaces the shadow's runtime (a slow or failing one)."""
    opened = []

    def make(runtime=None, **settings):
        (champion, ours), (second, theirs) = sources()
        settings = configured("serve", shadow="forest-exp", shadow_share=1.0, **settings)
        log = prediction_log.PredictionLog(
            tmp_path / "logs/p.jsonl", 1_000_000, 2, flush_seconds=60, queue_rows=100_000
        )
        started = shadow.start(tmp_path, settings, second, tmp_path / paths.MODEL_CONF)
        if runtime is not None:
            started.runtime = runtime
        opened.extend([log, started])
        app = create_app(champion, settings, None, log, tmp_path / paths.MODEL_CONF, shadow=started)
        return TestClient(app), ours, theirs, started

    yield make
    for thing in opened:
        thing.close()


def predicted(model, rows: list[dict], roles) -> list:
    return model.predict(schema.model_frame(pd.DataFrame(rows), roles)).tolist()


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
    client, ours, theirs, _ = shadowed()
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


class Blocked:
    """A shadow runtime that waits until released: a slow shadow."""

    name = "blocked"

    def __init__(self, runtime) -> None:
        self.runtime, self.release = runtime, threading.Event()

    def predict(self, columns, rows):
        self.release.wait(30)
        return self.runtime.predict(columns, rows)


def test_a_slow_shadow_never_delays_an_answer_and_a_full_queue_drops_counting(shadowed, tmp_path):
    client, _, _, started = shadowed(log_queue_rows=4)
    blocked = Blocked(started.runtime)
    started.runtime = blocked
    with client:
        client.post("/predict", json={"instances": [GOOD]})
        time.sleep(3 * shadow.BATCH_SECONDS)  # the thread now waits inside predict
        begun = time.perf_counter()
        for _ in range(6):
            assert client.post("/predict", json={"instances": [GOOD, GOOD]}).status_code == 200
        assert time.perf_counter() - begun < 5
        health = client.get("/health").json()["shadow"]
        # 1 row in predict, room for one more request of 2 rows, the other 10 dropped.
        counts = [health[f"rows_{n}"] for n in ("offered", "waiting", "dropped")]
        assert counts == [13, 3, 10]
        blocked.release.set()
    assert len(shadow_records(tmp_path)) == 3  # shutdown scored what was queued


def test_a_shadow_that_fails_is_counted_and_the_champion_still_answers(shadowed, tmp_path, caplog):
    class Failing:
        name = "failing"

        def predict(self, columns, rows):
            raise ValueError("cannot score this")

    client, _, _, started = shadowed(runtime=Failing())
    with client:
        for _ in range(3):
            assert client.post("/predict", json={"instances": [GOOD]}).status_code == 200
    assert shadow_records(tmp_path) == []
    assert started.status()["rows_failed"] == 3
    assert started.status()["error"] == "ValueError: cannot score this"
    failing = [r for r in caplog.records if "cannot score" in r.getMessage()]
    assert len(failing) == 1  # one warning, not one per batch


def test_health_counts_the_scored_rows(shadowed):
    client, _, _, _ = shadowed()
    with client:
        client.post("/predict", json={"instances": [GOOD, GOOD, GOOD]})
        deadline = time.monotonic() + 10
        while client.get("/health").json()["shadow"]["rows_scored"] < 3:
            assert time.monotonic() < deadline, "the thread never scored the rows"
            time.sleep(shadow.BATCH_SECONDS)
        health = client.get("/health").json()["shadow"]
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
