"""The server follows the stage GTO moves (serving/follow.py), in decide's repo (conftest:
v0.0.1 in prod, commit 2 registered here as v0.0.2 and assigned prod): the version now
assigned is swapped in between requests, /metadata, /health, the answers and the log
name it; a version of another API shape is not swapped in and /health says a restart is
needed; a tag list that did not change asks GTO nothing."""

from __future__ import annotations

import logging
import time

import pytest
from fastapi.testclient import TestClient
from gto import api

from {{ cookiecutter.package_name }}.core import paths
from {{ cookiecutter.package_name }}.core.params import load_service
from {{ cookiecutter.package_name }}.serving import app as app_module
from {{ cookiecutter.package_name }}.serving import prediction_log, registry
from {{ cookiecutter.package_name }}.tables.schema import Roles

ARTIFACT = "toy-model"  # conftest's
ROW = {"x1": 0.5, "x2": -1.0, "color": "red"}


@pytest.fixture
def in_prod(repo):
    """v0.0.2 (commit 2) in prod; the repo's root."""
    root, commits = repo
    api.register(str(root), ARTIFACT, commits["challenger"], version="v0.0.2")
    api.assign(str(root), ARTIFACT, "prod", version="v0.0.2")
    return root


def app_of(root, reload_seconds: float | None = 1.0, log=None):
    """serve's app of the version in prod, following the stage from `root`."""
    settings = load_service(root / "service.yaml").serve
    settings = settings.model_copy(update={"reload_seconds": reload_seconds})
    source = registry.resolve(root, "prod")
    return app_module.create_app(source, settings, None, log, root / paths.MODEL_CONF, root=root)


def test_a_reassigned_stage_is_swapped_in_and_the_answers_and_log_name_it(in_prod, tmp_path):
    root = in_prod
    log = prediction_log.PredictionLog(tmp_path / "p.jsonl", 10**6, 1, 60.0, queue_rows=100)
    app = app_of(root, log=log)
    client = TestClient(app)  # no lifespan: the test looks for the follower's thread
    assert client.get("/metadata").json()["version"] == "v0.0.2"
    assert client.post("/predict", json={"instances": [ROW]}).json()["model"]["version"] == "v0.0.2"
    follower = app.state.follower
    assert follower.check() is None  # nothing moved
    api.assign(str(root), ARTIFACT, "prod", version="v0.0.1", force=True)
    assert follower.check() == "v0.0.1"
    assert client.get("/metadata").json()["version"] == "v0.0.1"
    assert (
        client.get("/metadata").json()["git_revision"]
        == registry.assigned_version(root, ARTIFACT, "prod")[1]
    )
    answer = client.post("/predict", json={"instances": [ROW]}).json()
    assert answer["model"]["version"] == "v0.0.1"
    assert client.get("/health").json()["version"] == "v0.0.1"
    log.close()
    logged = prediction_log.read(tmp_path / "p.jsonl")
    assert [r["model_version"] for r in logged] == ["v0.0.2", "v0.0.1"]


def test_an_unchanged_tag_list_asks_gto_nothing(in_prod, monkeypatch):
    follower = app_of(in_prod).state.follower

    def asked(*args):
        raise AssertionError("GTO asked though no tag changed")

    monkeypatch.setattr(registry, "assigned_version", asked)
    assert follower.check() is None and follower.check() is None


def fewer_features(root, toy, task, conf, simple_model, repo_tools) -> None:
    """Commit 3: the model without x2, registered v0.0.3 and assigned prod."""
    from {{ cookiecutter.package_name }}.stages import preprocess, train

    roles = Roles(target="target", numeric=["x1"], categorical=["color"], time=None, groups=[])
    rows = toy(task).drop(columns=["x2"])
    train_rows, test_rows, transformer, _ = preprocess.preprocess(
        rows, roles, rules=conf.preprocess, seed=0, task=task
    )
    config = simple_model[task]
    pipeline = train.train(
        train_rows, roles, transformer, config=config, settings=train.Settings.of(conf)
    )
    repo_tools.export(root, pipeline, config, (train_rows, test_rows, roles), task)
    repo_tools.commit(root, "without x2")
    api.register(str(root), ARTIFACT, "HEAD", version="v0.0.3")
    api.assign(str(root), ARTIFACT, "prod", version="v0.0.3")


def test_a_version_of_another_shape_is_not_swapped_and_health_asks_for_a_restart(
    in_prod, toy, task, conf, simple_model, repo_tools, caplog
):
    root = in_prod
    client = TestClient(app := app_of(root))
    fewer_features(root, toy, task, conf, simple_model, repo_tools)
    with caplog.at_level(logging.WARNING):
        assert app.state.follower.check() is None
    (warning,) = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert "stage prod holds v0.0.3, not swapped in: its API differs (inputs" in warning
    health = client.get("/health").json()
    assert health["version"] == "v0.0.2" and "restart the server" in health["restart_needed"]
    assert client.post("/predict", json={"instances": [ROW]}).status_code == 200
    # Back to the version served: nothing left to restart for.
    api.assign(str(root), ARTIFACT, "prod", version="v0.0.2", force=True)
    assert app.state.follower.check() is None
    assert client.get("/health").json()["restart_needed"] is None


def test_the_thread_swaps_within_reload_seconds(in_prod):
    root = in_prod
    with TestClient(app_of(root, reload_seconds=0.2)) as client:  # lifespan: thread runs
        api.assign(str(root), ARTIFACT, "prod", version="v0.0.1", force=True)
        deadline = time.monotonic() + 20
        while client.get("/health").json()["version"] != "v0.0.1":
            assert time.monotonic() < deadline, "the follower did not swap in 20 s"
            time.sleep(0.1)
        assert client.get("/metadata").json()["version"] == "v0.0.1"


def test_no_following_without_a_stage_or_with_reload_seconds_null(in_prod, tmp_path):
    root = in_prod
    assert app_of(root, reload_seconds=None).state.follower is None
    settings = load_service(root / "service.yaml").serve
    workspace = registry.from_workspace(root, ARTIFACT)
    app = app_module.create_app(workspace, settings, None, None, root / paths.MODEL_CONF, root=root)
    assert app.state.follower is None


def test_each_worker_follows_from_what_serve_hands_over(in_prod, tmp_path, monkeypatch):
    root = in_prod
    settings = load_service(root / "service.yaml").serve.model_copy(
        update={"prediction_log": str(tmp_path / "p.jsonl")}
    )
    source = registry.resolve(root, "prod")
    (tmp_path / "handover").mkdir()
    handover = app_module.hand_over(root, source, settings, tmp_path / "handover")
    monkeypatch.setenv(app_module.HANDOVER_ENV, str(handover))
    follower = app_module.worker_app().state.follower
    api.assign(str(root), ARTIFACT, "prod", version="v0.0.1", force=True)
    assert follower.check() == "v0.0.1"
