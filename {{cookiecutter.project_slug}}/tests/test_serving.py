"""The HTTP API in-process (FastAPI's TestClient): the request schema built from the
features, 422s that name the field, the API key, unseen categories, the prediction log,
and where the served model comes from (dvc.yaml's artifact, dvc.lock's md5)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from {{ cookiecutter.package_name }} import io, schema
from {{ cookiecutter.package_name }}.errors import DataError
from {{ cookiecutter.package_name }}.params import ServeParams
from {{ cookiecutter.package_name }}.serving import prediction_log, registry
from {{ cookiecutter.package_name }}.serving.app import create_app
from {{ cookiecutter.package_name }}.stages import preprocess

GOOD = {"x1": 0.5, "x2": -1.0, "color": "red"}


@pytest.fixture
def served(fitted, toy_roles, tmp_path):
    """serve(task, **settings): (TestClient, the fitted pipeline, the prediction log path)."""

    def make(task: str = "classification", api_key: str | None = None, **settings):
        model, train, _ = fitted(task)
        path = tmp_path / "model.skops"
        io.save_model(path, model)
        metadata = {
            "model": "logistic_regression" if task == "classification" else "ridge",
            "task": task,
            "metrics": {"accuracy": 1.0},
            "hyperparameters": {},
            "data": {"train_md5": "abc"},
            "features": preprocess.describe_features(train, toy_roles, task),
        }
        source = registry.ModelSource(
            "toy-model", "v0.0.1", "prod", "f00d", path.read_bytes(), metadata
        )
        log_path = tmp_path / "logs" / "predictions.jsonl"
        log = prediction_log.PredictionLog(log_path, 1_000_000, 2)
        app = create_app(source, ServeParams(**settings), api_key, log)
        return TestClient(app), model, log_path

    return make


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_predictions_equal_the_model_and_are_logged(served, toy_roles, task):
    client, model, log_path = served(task)
    rows = [GOOD, {"x1": -2.0, "x2": None, "color": None}]
    answer = client.post("/predict", json={"instances": rows})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    frame = schema.model_frame(pd.DataFrame(rows), toy_roles)
    assert body["predictions"] == model.predict(frame).tolist()
    if task == "classification":
        expected = model.predict_proba(frame)
        got = [[p[str(c)] for c in model.classes_] for p in body["probabilities"]]
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)
    else:
        assert "probabilities" not in body
    assert body["warnings"] == []
    records = prediction_log.read(log_path)
    assert [r["inputs"] for r in records] == rows
    assert [r["prediction"] for r in records] == body["predictions"]
    assert {r["model_version"] for r in records} == {"v0.0.1"}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"instances": [{"x1": 1.0, "x2": 2.0}]}, "instances[0].color: Field required"),
        ({"instances": [{**GOOD, "size": 3}]}, "instances[0].size: Extra inputs are not"),
        ({"instances": [{**GOOD, "x1": "1.5"}]}, "instances[0].x1: Input should be a valid num"),
        ({"instances": [{**GOOD, "x1": True}]}, "instances[0].x1: Input should be a valid num"),
        ({"instances": [{**GOOD, "color": 2.5}]}, "instances[0].color: Input should be a valid"),
        ({"instances": []}, "instances: List should have at least 1 item"),
        ({"instances": [GOOD] * 4}, "instances: List should have at most 3 items"),
        ({"instances": GOOD}, "instances: Input should be a valid list"),
        ({}, "instances: Field required"),
    ],
)
def test_bad_requests_are_422_naming_the_field(served, body, message):
    client, _, log_path = served(max_rows=3)
    answer = client.post("/predict", json=body)
    assert answer.status_code == 422
    assert answer.json()["error"].startswith(message), answer.json()["error"]
    assert not prediction_log.read(log_path)


def test_malformed_json_and_non_finite_numbers_are_422(served):
    client, _, _ = served()
    json_type = {"Content-Type": "application/json"}
    answer = client.post("/predict", content=b'{"instances": [{"x1": 1,', headers=json_type)
    assert answer.status_code == 422 and answer.json()["error"].startswith("malformed JSON")
    nan = client.post(
        "/predict",
        content=b'{"instances": [{"x1": NaN, "x2": 1, "color": "red"}]}',
        headers=json_type,
    )
    assert nan.status_code == 422 and "instances[0].x1" in nan.json()["error"]


def test_an_unseen_category_predicts_and_warns(served):
    client, _, _ = served()
    answer = client.post("/predict", json={"instances": [GOOD, {**GOOD, "color": "teal"}]})
    assert answer.status_code == 200
    assert answer.json()["warnings"] == [
        "instances[1].color: 'teal' was not seen in training; encoded as all zeros "
        "(none of the known categories)"
    ]


def test_an_integer_names_the_same_category_as_its_text(served):
    client, _, _ = served()
    answer = client.post("/predict", json={"instances": [{**GOOD, "color": 7}]})
    assert answer.status_code == 200
    assert "'7' was not seen in training" in answer.json()["warnings"][0]


def test_api_key_guards_predict_and_metadata_not_health(served):
    client, _, _ = served(api_key="s3cret")
    assert client.get("/health").status_code == 200
    assert client.get("/metadata").status_code == 401
    assert client.post("/predict", json={"instances": [GOOD]}).status_code == 401
    wrong = {"X-API-Key": "nope"}
    assert client.post("/predict", json={"instances": [GOOD]}, headers=wrong).status_code == 401
    right = {"X-API-Key": "s3cret"}
    assert client.post("/predict", json={"instances": [GOOD]}, headers=right).status_code == 200
    meta = client.get("/metadata", headers=right).json()
    assert (meta["version"], meta["stage"], meta["git_revision"]) == ("v0.0.1", "prod", "f00d")
    assert meta["metrics"] == {"accuracy": 1.0} and meta["data"] == {"train_md5": "abc"}


def test_the_prediction_log_rotates_and_stays_bounded(tmp_path):
    path = tmp_path / "predictions.jsonl"
    log = prediction_log.PredictionLog(path, max_bytes=2000, backups=2)
    log.write([{"row": i, "inputs": {"x": "y" * 50}} for i in range(200)])
    log.close()
    files = prediction_log.log_files(path)
    assert [f.name for f in files] == [f"{path.name}.2", f"{path.name}.1", path.name]
    assert all(f.stat().st_size <= 2000 for f in files)
    rows = [r["row"] for r in prediction_log.read(path)]
    assert rows == sorted(rows) and rows[-1] == 199 and len(rows) < 200


def test_the_model_artifact_and_its_locked_md5(project):
    assert registry.artifact_name(project) == "{{ cookiecutter.project_slug }}-model"
    lock = {"stages": {"export": {"outs": [{"path": "models/model.skops", "md5": "ab12"}]}}}
    assert registry.locked_md5(json.dumps(lock)) == "ab12"
    with pytest.raises(DataError, match="dvc.lock has no entry for models/model.skops"):
        registry.locked_md5(json.dumps({"stages": {}}))
