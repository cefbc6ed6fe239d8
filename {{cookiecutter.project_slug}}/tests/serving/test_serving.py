"""The HTTP API in-process (FastAPI's TestClient, or the ASGI app called directly): the
request schema built from the features, 422s that name the field, 413s for bodies over
the limit (before they are read whole), the API key, unseen categories, the prediction
log, the OpenAPI schema's declared answers, and where the served model comes from
(dvc.yaml's artifact, dvc.lock's md5)."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import json
import os
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import yaml
from fastapi.testclient import TestClient

from {{ cookiecutter.package_name }}.core import io, paths
from {{ cookiecutter.package_name }}.core.errors import ConfigError, DataError
#% if cookiecutter.onnx == "yes"
from {{ cookiecutter.package_name }}.core.model_catalog import onnx_facts
from {{ cookiecutter.package_name }}.export import onnx_convert
#% endif
from {{ cookiecutter.package_name }}.serving import app as app_module
from {{ cookiecutter.package_name }}.serving import prediction_log, registry
from {{ cookiecutter.package_name }}.serving import request as request_schema
from {{ cookiecutter.package_name }}.serving.app import create_app
from {{ cookiecutter.package_name }}.stages import preprocess
from {{ cookiecutter.package_name }}.tables import schema

from conftest import FAMILIES

GOOD = {"x1": 0.5, "x2": -1.0, "color": "red"}
# The toy data's columns that are no feature: its target, an event time (data.time), an id
# (data.id_column) and a column of data.drop. A row may carry them, as the data does.
AS_IN_DATA = {**GOOD, "target": "high", "when": "2024-05-31T12:00:00+02:00", "key": "k1", "note": 3}
JSON = {"Content-Type": "application/json"}


@pytest.fixture
def model_source(fitted, toy_roles, simple_model, tmp_path):
    """model_source(task): (a ModelSource of a fitted toy pipeline, that pipeline); its
    model file (`config`) written to tmp_path/conf/model, where the served app reads it."""

#% if cookiecutter.onnx == "yes"
    def make(task: str = "classification", config: dict | None = None, onnx: bool = False):
#% else
    def make(task: str = "classification", config: dict | None = None):
#% endif
        config = config or simple_model[task]
        model, train, test = fitted(task, config)
        path = tmp_path / "model.skops"
        io.save_model(path, model)
        (tmp_path / paths.MODEL_CONF).mkdir(parents=True, exist_ok=True)
        (tmp_path / paths.MODEL_CONF / f"{config['name']}.yaml").write_text(yaml.safe_dump(config))
        # As preprocess describes a project's features whose data has `when` as data.time,
        # `key` as data.id_column (ingest takes it out) and `note` in data.drop.
        data = train.assign(when="2024-01-01", note=0)
        roles = dataclasses.replace(toy_roles, time="when")
        metadata = {
            "model": config["name"],
            "task": task,
            "metrics": {"accuracy": 1.0},
            "hyperparameters": {},
            "data": {"train_md5": "abc"},
            "features": preprocess.describe_features(data, roles, task, id_column="key"),
            "onnx": {"status": "missing"},
        }
#% if cookiecutter.onnx == "yes"
        onnx_bytes = None
        if onnx:  # as export does: converted and checked on the test split, or skipped
            try:
                onnx_bytes, parity, _ = onnx_convert.convert_checked(
                    model, schema.model_frame(test, toy_roles), toy_roles, onnx_facts(config)
                )
                metadata["onnx"] = {"status": "exported", "parity": parity}
            except onnx_convert.ConverterMissing:
                metadata["onnx"] = {"status": "skipped"}
        source = registry.ModelSource(
            "toy-model", "v0.0.1", "prod", "f00d", path.read_bytes(), metadata, onnx_bytes
        )
#% else
        source = registry.ModelSource(
            "toy-model", "v0.0.1", "prod", "f00d", path.read_bytes(), metadata
        )
#% endif
        return source, model

    return make


@pytest.fixture
def served(model_source, tmp_path, configured):
    """served(task, **settings): (TestClient, the fitted pipeline, logged); logged() writes
    the queued log rows and returns the log's records. The client's `.app` is the ASGI app;
    the log's timer is off the test's clock (60 s), so only logged() or shutdown write."""
    logs = []

    def make(
        task: str = "classification",
        api_key: str | None = None,
        config: dict | None = None,
#% if cookiecutter.onnx == "yes"
        onnx: bool = False,
        **settings,
    ):
        source, model = model_source(task, config, onnx)
#% else
        **settings,
    ):
        source, model = model_source(task, config)
#% endif
        log_path = tmp_path / "logs" / "predictions.jsonl"
        log = prediction_log.PredictionLog(
            log_path, 1_000_000, 2, flush_seconds=60, queue_rows=100_000
        )
        logs.append(log)
        app = create_app(
            source,
            configured("serve", **settings),
            api_key,
            log,
            tmp_path / paths.MODEL_CONF,
            feedback_log=tmp_path / "logs" / "feedback.jsonl",
        )

        def logged() -> list[dict]:
            log.flush()
            return prediction_log.read(log_path)

        return TestClient(app), model, logged

    yield make
    for log in logs:
        log.close()


def numbers(answer: dict) -> list[float]:
    """An answer's numbers: each class's probability (classification), else each prediction."""
    if "probabilities" in answer:
        return [p for by_class in answer["probabilities"] for p in by_class.values()]
    return answer["predictions"]


def logged_answer(records: list[dict]) -> dict:
    """Logged rows as the answer that gave them: its predictions (and probabilities)."""
    answer = {"predictions": [r["prediction"] for r in records]}
    if records and records[0]["probabilities"] is not None:
        answer["probabilities"] = [r["probabilities"] for r in records]
    return answer


#% if cookiecutter.onnx == "yes"
@pytest.mark.parametrize(
    ("task", "config"), FAMILIES, ids=[f"{t}-{c['name']}" for t, c in FAMILIES]
)
def test_both_runtimes_answer_as_scikit_learn_within_the_recorded_parity(
    served, fitted, toy_roles, task, config
):
    """Every test-split row, with a missing number, a missing and an unseen category added,
    through the ONNX runtime when export would write a graph and through skops always;
    each number, answered and logged, at the model's precision: a float32 graph's as the
    shortest text of the float32 (not its float64 widening's), skops' exactly (read back
    as the float32 that XGBoost answers in, or the float64 of scikit-learn's models)."""
    fast, model, fast_log = served(task, config=config, onnx=True)
    slow, _, slow_log = served(task, config=config, runtime="skops")
    _, _, test = fitted(task, config)
    rows = json.loads(schema.model_frame(test, toy_roles).to_json(orient="records"))
    rows[0]["x2"], rows[1]["color"], rows[2]["color"] = None, None, "ultraviolet"
    frame = schema.model_frame(pd.DataFrame(rows), toy_roles)
    try:
        _, parity, float32 = onnx_convert.convert_checked(
            model, frame, toy_roles, onnx_facts(config)
        )
        expected, allowed = "onnx", parity["allowed_abs_diff"]
    except onnx_convert.ConverterMissing:
        expected, allowed, float32 = "skops", 1e-12, False
    assert fast.get("/metadata").json()["runtime"] == expected
    assert slow.get("/metadata").json()["runtime"] == "skops"
    for client, tolerance, logged in ((fast, allowed, fast_log), (slow, 0.0, slow_log)):
        body = client.post("/predict", json={"instances": rows}).json()
        if task == "classification":
            assert body["predictions"] == model.predict(frame).tolist()
            got = [[p[str(c)] for c in model.classes_] for p in body["probabilities"]]
            want = model.predict_proba(frame)
        else:
            got, want = body["predictions"], model.predict(frame)
        np.testing.assert_allclose(np.asarray(got, want.dtype), want, rtol=0, atol=tolerance)
        if client is fast and float32:
            assert all(float(str(np.float32(x))) == x for x in numbers(body)), numbers(body)
        assert numbers(logged_answer(logged()[-len(rows) :])) == numbers(body)


def test_insisting_on_onnx_without_a_graph_is_refused_naming_the_fix(served):
    with pytest.raises(ConfigError, match="no parity-checked ONNX file .*set serve.runtime"):
        served("classification", runtime="onnx")


#% else
@pytest.mark.parametrize(
    ("task", "config"), FAMILIES, ids=[f"{t}-{c['name']}" for t, c in FAMILIES]
)
def test_the_skops_runtime_answers_as_scikit_learn(served, fitted, toy_roles, task, config):
    """Every test-split row, with a missing number, a missing and an unseen category added:
    without ONNX export, `auto` serves the skops pipeline, which predicts as it does."""
    client, model, logged = served(task, config=config)
    _, _, test = fitted(task, config)
    rows = json.loads(schema.model_frame(test, toy_roles).to_json(orient="records"))
    rows[0]["x2"], rows[1]["color"], rows[2]["color"] = None, None, "ultraviolet"
    frame = schema.model_frame(pd.DataFrame(rows), toy_roles)
    assert client.get("/metadata").json()["runtime"] == "skops"
    body = client.post("/predict", json={"instances": rows}).json()
    # Exactly the model's float64 numbers, answered and logged.
    if task == "classification":
        assert body["predictions"] == model.predict(frame).tolist()
        got = [[p[str(c)] for c in model.classes_] for p in body["probabilities"]]
        assert got == model.predict_proba(frame).tolist()
    else:
        assert body["predictions"] == model.predict(frame).tolist()
    assert numbers(logged_answer(logged())) == numbers(body)


def test_insisting_on_onnx_is_refused_naming_the_fix(served):
    with pytest.raises(ConfigError, match="exports no ONNX graph .*set serve.runtime to auto"):
        served("classification", runtime="onnx")


#% endif
def without_ids(answer: dict) -> dict:
    """An answer less its row ids, which differ from request to request."""
    return {key: value for key, value in answer.items() if key != "ids"}


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_predictions_equal_the_model_and_are_logged(served, toy_roles, task):
    client, model, logged = served(task)
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
    records = logged()
    assert [r["inputs"] for r in records] == rows
    assert [r["prediction"] for r in records] == body["predictions"]
    assert {r["model_version"] for r in records} == {"v0.0.1"}
    # One id per row, distinct, kept by the log: what labels that come later join on.
    assert len(set(body["ids"])) == len(rows)
    assert [r["id"] for r in records] == body["ids"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"instances": [{"x1": 1.0, "x2": 2.0}]}, "instances[0].color: Field required"),
        (
            {"instances": [GOOD, {**AS_IN_DATA, "size": 3}]},
            "instances[1]: unknown column 'size': neither a feature of the model nor a column "
            "of its data; remove it (GET /metadata lists both)",
        ),
        ({"instances": [{**GOOD, "b": 1, "a": 2}]}, "instances[0]: unknown columns 'b', 'a': "),
        ({"instances": [{**GOOD, "x1": "1.5"}]}, "instances[0].x1: Input should be a valid num"),
        ({"instances": [{**GOOD, "x1": True}]}, "instances[0].x1: Input should be a valid num"),
        ({"instances": [{**GOOD, "color": 2.5}]}, "instances[0].color: Input should be a str"),
        ({"instances": [{**GOOD, "color": True}]}, "instances[0].color: Input should be a str"),
        ({"instances": [{**GOOD, "x2": -1e101}]}, "instances[0].x2: beyond ±2.20351e+12"),
        ({"instances": [{**GOOD, "x1": 1e300}]}, "instances[0].x1: beyond ±2.32503e+12"),
        ({"instances": []}, "instances: List should have at least 1 item"),
        ({"instances": [GOOD] * 4}, "instances: List should have at most 3 items"),
        ({"instances": GOOD}, "instances: Input should be a valid list"),
        ({}, "instances: Field required"),
    ],
)
def test_bad_requests_are_422_naming_the_field(served, body, message):
    client, _, logged = served(max_rows=3)
    answer = client.post("/predict", json=body)
    assert answer.status_code == 422
    assert answer.json()["error"].startswith(message), answer.json()["error"]
    assert not logged()


def test_a_row_as_the_data_holds_it_is_predicted_and_its_event_time_logged(served):
    """The target, the event time, the id and a dropped column ride along, as in the data:
    the answer is the features' alone, and the log holds each row's event time (read as
    ingest reads data.time: a year is January 1st, a time without a zone UTC)."""
    client, _, logged = served()
    rows = [
        AS_IN_DATA,
        {**GOOD, "when": 2023},
        {**GOOD, "when": "2024-02-29"},
        GOOD,
        {**AS_IN_DATA, "when": None, "target": None, "note": {"any": ["thing"]}},
    ]
    answer = client.post("/predict", json={"instances": rows})
    assert answer.status_code == 200, answer.text
    first, again = answer.json(), client.post("/predict", json={"instances": [GOOD] * 5}).json()
    # The same rows, the same answer, each row under an id of its own.
    assert set(first["ids"]).isdisjoint(again["ids"])
    assert without_ids(first) == without_ids(again)
    records = logged()
    assert [r["event_time"] for r in records] == [
        "2024-05-31T12:00:00+02:00",
        "2023-01-01T00:00:00+00:00",
        "2024-02-29T00:00:00+00:00",
    ] + [None] * 7
    assert [r["inputs"] for r in records] == [GOOD] * 10


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_a_target_the_row_carries_is_logged_as_its_label_as_sent(served, task):
    """A label the caller knows rides along: logged as sent (text, a number, a list), for
    `loop` to score and batch; a row without it, or with null, logs no label at all."""
    client, _, logged = served(task)
    sent = ["high", 7, 2.5, None, "missing key", ["odd", 1]]
    rows = [GOOD if label == "missing key" else {**GOOD, "target": label} for label in sent]
    answer = client.post("/predict", json={"instances": rows})
    assert answer.status_code == 200, answer.text
    plain = client.post("/predict", json={"instances": [GOOD] * 6}).json()
    assert without_ids(answer.json()) == without_ids(plain)
    records = logged()[:6]
    assert [r.get("label", "absent") for r in records] == [
        "high",
        7,
        2.5,
        "absent",
        "absent",
        ["odd", 1],
    ]
    assert all("label" not in r for r in logged()[6:])


def test_a_group_that_is_no_feature_is_logged_beside_the_inputs(model_source, configured, tmp_path):
    """data.groups columns that are no feature (here `note`, in data.drop) are logged as
    sent, as `groups`, for monitor's per-group figures; a group that is a feature (color)
    is in `inputs` already and is not logged twice."""
    source, _ = model_source()
    source.metadata["features"]["roles"]["groups"] = ["color", "note"]
    log = prediction_log.PredictionLog(tmp_path / "p.jsonl", 1_000_000, 2, 60, queue_rows=100)
    app = create_app(source, configured("serve"), None, log, tmp_path / paths.MODEL_CONF)
    rows = [{**GOOD, "note": "n1"}, GOOD, {**GOOD, "note": 3}]
    answer = TestClient(app).post("/predict", json={"instances": rows})
    assert answer.status_code == 200, answer.text
    log.flush()
    records = prediction_log.read(tmp_path / "p.jsonl")
    assert [r["groups"] for r in records] == [{"note": "n1"}, {"note": None}, {"note": 3}]
    assert [r["inputs"]["color"] for r in records] == ["red"] * 3
    source.metadata["features"]["roles"]["groups"] = ["color"]
    app = create_app(source, configured("serve"), None, log, tmp_path / paths.MODEL_CONF)
    assert TestClient(app).post("/predict", json={"instances": rows}).status_code == 200
    log.flush()
    assert all("groups" not in r for r in prediction_log.read(tmp_path / "p.jsonl")[3:])


@pytest.mark.parametrize(
    "when", ["yesterday", "2024-13-01", "2024", "１２３４", 2024.5, 99999, 999, True, [2024]]
)
def test_an_event_time_that_is_no_time_is_a_422_naming_the_field(served, when):
    client, _, logged = served()
    answer = client.post("/predict", json={"instances": [AS_IN_DATA, {**GOOD, "when": when}]})
    assert answer.status_code == 422
    assert answer.json()["error"] == (
        "instances[1].when: Value error, not a year or a date: send a year (2024) or ISO "
        "8601 text (2024-05-31 or 2024-05-31T12:00:00Z)"
    )
    assert not logged()


def test_malformed_json_and_non_finite_numbers_are_422(served):
    client, _, _ = served()
    answer = client.post("/predict", content=b'{"instances": [{"x1": 1,', headers=JSON)
    assert answer.status_code == 422 and answer.json()["error"].startswith("malformed JSON")
    nan = client.post(
        "/predict",
        content=b'{"instances": [{"x1": NaN, "x2": 1, "color": "red"}]}',
        headers=JSON,
    )
    assert nan.status_code == 422 and "instances[0].x1" in nan.json()["error"]
    # A lone surrogate is valid JSON but no UTF-8 text: the log and the answer could not
    # hold it.
    surrogate = client.post(
        "/predict",
        content=b'{"instances": [{"x1": 1, "x2": 1, "color": "\\ud800"}]}',
        headers=JSON,
    )
    assert surrogate.status_code == 422
    assert surrogate.json()["error"].startswith("instances[0].color: Value error, not valid")


@pytest.mark.parametrize("token", [b"NaN", b"Infinity", b"-Infinity", b"1e999"])
def test_a_non_finite_number_is_a_422_in_one_line_naming_the_field(served, token):
    client, _, logged = served()
    answer = client.post(
        "/predict",
        content=b'{"instances": [{"x1": 1, "x2": 1, "color": "red"}, {"x1": 1, "x2": '
        + token
        + b', "color": "red"}]}',
        headers=JSON,
    )
    assert answer.status_code == 422
    assert answer.json()["error"] == "instances[1].x2: Input should be a finite number"
    assert logged() == []


def test_a_category_named_na_is_a_category_and_null_is_missing(served):
    """The data's missing-value rule (features.json's missing_values, none here): "NA",
    "None" and "null" are categories (unseen: predicted, with a warning), null is missing."""
    client, _, logged = served()
    rows = [{**GOOD, "color": text} for text in ("NA", "None", "null")] + [{**GOOD, "color": None}]
    answer = client.post("/predict", json={"instances": rows})
    assert answer.status_code == 200
    assert [w.split(":")[0] for w in answer.json()["warnings"]] == [
        f"instances[{n}].color" for n in range(3)
    ]
    assert [r["inputs"]["color"] for r in logged()] == ["NA", "None", "null", None]


def test_a_category_the_data_lists_as_missing_is_missing(toy_roles):
    """With data.missing_values [NA] (recorded in features.json) "NA" is read as null, as
    ingest read it in training; other text stays a category."""
    features = {"roles": toy_roles.to_dict(), "missing_values": ["NA"]}
    roles = request_schema.input_roles({**features, "derived": {}})
    rows = [
        SimpleNamespace(
            **{c: 1.0 for c in roles["numeric"]}, **{c: v for c in roles["categorical"]}
        )
        for v in ("NA", "None", None, 7)
    ]
    found = request_schema.columns(rows, roles, request_schema.missing_values(features))
    column = roles["categorical"][0]
    assert found[column] == [None, "None", None, "7"]
    assert request_schema.missing_values({"roles": {}}) == frozenset()


def test_the_server_reads_a_listed_missing_value_as_null(model_source, configured, tmp_path):
    """features.json's missing_values [NA]: "NA" predicts as null does, with no warning."""
#% if cookiecutter.onnx == "yes"
    source, _ = model_source("classification", None, False)
#% else
    source, _ = model_source("classification")
#% endif
    source.metadata["features"]["missing_values"] = ["NA"]
    app = create_app(source, configured("serve"), None, None, tmp_path / paths.MODEL_CONF)
    client = TestClient(app)
    listed = client.post("/predict", json={"instances": [{**GOOD, "color": "NA"}]}).json()
    null = client.post("/predict", json={"instances": [{**GOOD, "color": None}]}).json()
    assert listed["warnings"] == [] and without_ids(listed) == without_ids(null)


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


def test_the_openapi_schema_declares_every_answer(served):
    client, _, _ = served(api_key="s3cret")
    whole = client.get("/openapi.json", headers={"X-API-Key": "s3cret"}).json()  # test_exposure
    paths = whole["paths"]
    assert set(paths["/predict"]["post"]["responses"]) == {"200", "400", "401", "413", "422"}
    assert set(paths["/feedback"]["post"]["responses"]) == {
        "200", "400", "401", "413", "422", "503"
    }  # fmt: skip
    assert set(paths["/metadata"]["get"]["responses"]) == {"200", "401", "413"}
    assert set(paths["/health"]["get"]["responses"]) == {"200", "413"}
    schemas = whole["components"]["schemas"]
    required = schemas["Prediction"]["required"]
    assert required == ["predictions", "probabilities", "warnings", "model", "ids"]
    labels = schemas["Prediction"]["properties"]["predictions"]["items"]["enum"]
    assert labels == ["high", "low", "mid"]
    color = schemas["Instance"]["properties"]["color"]["anyOf"]
    assert color == [{"type": "string"}, {"type": "integer"}, {"type": "null"}]
    # The data's other columns: declared, optional, said to be ignored (the time and
    # the target logged).
    instance = schemas["Instance"]
    assert instance["required"] == ["x1", "x2", "color"]
    assert list(instance["properties"]) == ["x1", "x2", "color", "key", "target", "when", "note"]
    when = instance["properties"]["when"]
    assert "event time (data.time)" in when["description"]
    assert [w.get("format", w["type"]) for w in when["anyOf"]] == [
        "number",
        "date",
        "date-time",
        "null",
    ]
    for column in ("key", "note"):
        assert "ignored" in instance["properties"][column]["description"]
    assert "logged as the row's label" in instance["properties"]["target"]["description"]
    assert instance["additionalProperties"] is False
    x1 = schemas["Instance"]["properties"]["x1"]["anyOf"][0]
    assert x1["type"] == "number" and x1["maximum"] == -x1["minimum"] >= request_schema.REACH
    assert "security" in paths["/predict"]["post"] and "security" not in paths["/health"]["get"]
    assert "security" in paths["/feedback"]["post"]
    assert schemas["Stored"]["required"] == ["stored", "replaced", "unknown"]
    assert schemas["FeedbackRequest"]["required"] == ["labels"]
    assert schemas["Label"]["additionalProperties"] is False
    open_paths = served()[0].get("/openapi.json").json()["paths"]
    assert "401" not in open_paths["/predict"]["post"]["responses"]
    assert "security" not in open_paths["/predict"]["post"]


def test_numbers_at_the_bound_get_answers_from_every_model(
    served, fitted, toy_roles, task_models, task, monkeypatch
):
    """The largest numbers the schema accepts overflow none of this task's models (trees
    compute in float32, linear models sum in float64)."""
    for name, config in task_models.items():
        model, train, _ = fitted(task, config)
        monkeypatch.setattr(app_module, "load", lambda source, models_dir, model=model: model)
        client, _, _ = served(task)
        seen = preprocess.describe_features(train, toy_roles, task)["numeric"]
        x1, x2 = (request_schema.number_bound(seen[c]) for c in ("x1", "x2"))
        extremes = [{"x1": a * x1, "x2": b * x2, "color": "red"} for a in (-1, 1) for b in (-1, 1)]
        answer = client.post("/predict", json={"instances": extremes})
        assert answer.status_code == 200, (name, answer.text)


def test_a_non_finite_model_output_is_a_422_naming_the_row(served, monkeypatch):
    load = app_module.load

    class Overflowing:
        """The served model, except that it overflows where x1 is huge."""

        def __init__(self, model):
            self.model = model

        def predict(self, frame):
            return np.where(frame["x1"] > 1e9, np.inf, self.model.predict(frame))

    monkeypatch.setattr(app_module, "load", lambda *args: Overflowing(load(*args)))
    client, _, logged = served("regression")
    answer = client.post("/predict", json={"instances": [GOOD, {**GOOD, "x1": 1e10}]})
    assert answer.status_code == 422
    assert answer.json()["error"].startswith(
        "instances[1]: the model's output for this row is not a finite number"
    )
    assert not logged()


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
    assert meta["features"]["non_features"] == ["key", "target", "when", "note"]


def test_the_prediction_log_rotates_and_stays_bounded(tmp_path):
    path = tmp_path / "predictions.jsonl"
    log = prediction_log.PredictionLog(
        path, max_bytes=2000, backups=2, flush_seconds=60, queue_rows=100_000
    )
    log.write(
        [{"time": "t", "request_id": "r", "row": i, "inputs": {"x": "y" * 50}} for i in range(200)]
    )
    log.close()
    files = prediction_log.log_files(path)
    assert [f.name for f in files] == [f"{path.name}.2", f"{path.name}.1", path.name]
    assert all(f.stat().st_size <= 2000 for f in files)
    rows = [r["row"] for r in prediction_log.read(path)]
    assert rows == sorted(rows) and rows[-1] == 199 and len(rows) < 200


def test_shutdown_writes_the_queued_rows_and_health_names_the_worker_and_its_log(served, tmp_path):
    client, _, _ = served()
    path = tmp_path / "logs" / "predictions.jsonl"
    with client:  # runs the app's lifespan: startup here, shutdown on leaving
        health = client.get("/health").json()
        log = {"rows_waiting": 0, "rows_lost": 0, "error": None}
        assert health == {
            "status": "ok",
            "version": "v0.0.1",
            "worker": os.getpid(),
            "prediction_log": log,
            "shadow": None,
            "restart_needed": None,
        }
        for _ in range(3):
            assert client.post("/predict", json={"instances": [GOOD, GOOD]}).status_code == 200
        assert prediction_log.read(path) == []  # queued: the 60 s timer has not fired
        assert client.get("/health").json()["prediction_log"] == {**log, "rows_waiting": 6}
    records = prediction_log.read(path)
    assert len(records) == 6 and len({(r["request_id"], r["row"]) for r in records}) == 6


def test_the_served_model_loads_with_the_types_its_model_file_lists_only(
    served, model_source, task, task_models, tmp_path, configured
):
    """The reviewed list is conf/model/<model>.yaml of the checkout that serves, never a
    list that travels with the model."""
    forest = task_models["random_forest"]
    client, _, _ = served(task, config=forest)
    assert client.post("/predict", json={"instances": [GOOD]}).status_code == 200
    untrusted = {k: v for k, v in forest.items() if k != "_skops_trusted_"}
    with pytest.raises(DataError, match="outside the reviewed list: sklearn.tree._tree.Tree; "):
        served(task, config=untrusted)
    source, _ = model_source(task, forest)
    (tmp_path / paths.MODEL_CONF / "random_forest.yaml").unlink()
    with pytest.raises(ConfigError, match="conf/model/random_forest.yaml not found"):
        create_app(source, configured("serve"), None, None, tmp_path / paths.MODEL_CONF)


def test_a_model_file_that_is_not_what_export_writes_is_refused_at_start_up(
    model_source, simple_model, configured, tmp_path
):
    """A skops file may hold any trusted object: refused in one line naming the file and
    the fix, before the server starts, not a traceback on the first request."""
    from sklearn.base import clone

    source, model = model_source("classification")
    wrong = {
        "a list, not the scikit-learn pipeline export writes": [1, 2],
        "a pipeline that was never fitted": clone(model),
    }
    for problem, obj in wrong.items():
        path = tmp_path / "wrong.skops"
        io.save_model(path, obj)
        bad = dataclasses.replace(source, model_bytes=path.read_bytes())
        with pytest.raises(DataError) as refused:
            create_app(bad, configured("serve"), None, None, tmp_path / paths.MODEL_CONF)
        assert str(refused.value) == (
            f"models/model.skops of version v0.0.1 holds {problem}: export it again "
            "(`dvc repro export`), commit, and register that commit"
        )
    reordered = {**source.metadata["features"]["roles"], "numeric": ["x2", "x1"]}
    moved = {**source.metadata, "features": {**source.metadata["features"], "roles": reordered}}
    with pytest.raises(DataError, match=r"holds a pipeline fitted on \['x1', 'x2', 'color'\], "):
        app_module.load(dataclasses.replace(source, metadata=moved), tmp_path / paths.MODEL_CONF)


def test_the_workspace_set_is_served_only_as_its_manifest_records(model_source, tmp_path):
    """registry reads export's files once, checks them against models/manifest.json, and
    serves those very bytes; /metadata's manifest_md5 is the manifest's md5."""
    from {{ cookiecutter.package_name }}.export import manifest

    source, _ = model_source("classification")
    root = tmp_path / "project"
    io.write_bytes(root / paths.MODEL, source.model_bytes)
    io.write_json(root / paths.MODEL_METADATA, source.metadata)
    io.write_json(root / paths.MODEL_MANIFEST, manifest.record(root))
    served = registry.from_workspace(root, "toy-model")
    assert served.model_bytes == source.model_bytes and served.metadata == source.metadata
    assert served.manifest_md5 == io.file_md5(root / paths.MODEL_MANIFEST)
    io.write_bytes(root / paths.MODEL, source.model_bytes + b" ")
    with pytest.raises(DataError, match="^models/model.skops is not the file models/manifest"):
        registry.from_workspace(root, "toy-model")


def test_a_worker_builds_the_app_from_what_serve_hands_over(
    model_source, tmp_path, monkeypatch, configured
):
    source, model = model_source("classification")
    settings = configured("serve", max_rows=5, prediction_log="logs/p.jsonl")
    (tmp_path / "handover").mkdir()
    handover = app_module.hand_over(tmp_path, source, settings, tmp_path / "handover")
    monkeypatch.setenv(app_module.HANDOVER_ENV, str(handover))
    roles = schema.roles_from_dict(source.metadata["features"]["roles"])
    expected = model.predict(schema.model_frame(pd.DataFrame([GOOD]), roles)).tolist()
    with TestClient(app_module.worker_app()) as client:
        assert client.get("/metadata").json()["max_rows"] == 5
        assert client.post("/predict", json={"instances": [GOOD]}).json()["predictions"] == expected
    assert [r["inputs"] for r in prediction_log.read(tmp_path / "logs/p.jsonl")] == [GOOD]


def test_the_model_artifact_and_its_locked_md5(project):
    assert registry.artifact_name(project) == "{{ cookiecutter.project_slug }}-model"
    lock = {"stages": {"export": {"outs": [{"path": "models/model.skops", "md5": "ab12"}]}}}
    assert registry.locked_md5(json.dumps(lock)) == "ab12"
    with pytest.raises(DataError, match="dvc.lock has no entry for models/model.skops"):
        registry.locked_md5(json.dumps({"stages": {}}))


def post_asgi(app, headers: list[tuple[bytes, bytes]], chunks) -> tuple[int, dict, int]:
    """POST /predict straight to the ASGI app, the body as `chunks` (an iterator of bytes;
    more_body until it ends): (status, JSON answer, how many chunks the app read)."""
    read = 0
    sent: list[dict] = []

    async def receive() -> dict:
        nonlocal read
        read += 1
        chunk = next(chunks, None)
        return {"type": "http.request", "body": chunk or b"", "more_body": chunk is not None}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/predict",
        "raw_path": b"/predict",
        "root_path": "",
        "query_string": b"",
        "headers": [(b"content-type", b"application/json"), *headers],
        "client": ("127.0.0.1", 1234),
        "server": ("127.0.0.1", 8000),
    }
    asyncio.run(app(scope, receive, send))
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return status, json.loads(body), read


def test_a_body_over_the_limit_is_413_naming_the_limit_and_the_fix(served):
    client, _, logged = served(max_body_bytes=2048)
    over = json.dumps({"instances": [GOOD] * 60}).encode()
    assert len(over) > 2048
    declared = client.post("/predict", content=over, headers=JSON)
    # A generator body goes out chunked, without Content-Length: the limit counts it.
    streamed = client.post("/predict", content=iter([over[:1000], over[1000:]]), headers=JSON)
    for answer in (declared, streamed):
        assert answer.status_code == 413
        assert answer.json() == {
            "detail": "request body over 2048 bytes (serve.max_body_bytes): send fewer rows "
            "per request, or raise serve.max_body_bytes in service.yaml"
        }
    assert "transfer-encoding" in streamed.request.headers
    assert "content-length" not in streamed.request.headers
    pieces = [b'{"instances": ', json.dumps([GOOD]).encode(), b"}"]
    fits = client.post("/predict", content=iter(pieces), headers=JSON)
    assert fits.status_code == 200, fits.text
    assert client.get("/health").status_code == 200
    assert len(logged()) == 1


def test_an_over_limit_body_is_refused_without_reading_it_whole(served):
    client, _, _ = served(max_body_bytes=4096)
    # A declared length over the limit: refused before a byte of the body is read.
    status, answer, read = post_asgi(
        client.app, [(b"content-length", b"10000000000")], itertools.repeat(b" " * 1000)
    )
    assert (status, read) == (413, 0) and "4096 bytes" in answer["detail"]
    # No length and a body without end: refused once 4096 bytes have come in.
    status, answer, read = post_asgi(client.app, [], itertools.repeat(b" " * 1000))
    assert (status, read) == (413, 5) and "4096 bytes" in answer["detail"]


def test_the_default_limit_fits_max_rows_indented_rows(served, model_source):
    """1000 rows as the data holds them (the columns that are no feature too), indented."""
    client, _, _ = served()
    features = model_source("classification")[0].metadata["features"]
    limit = client.get("/metadata").json()["max_body_bytes"]
    assert limit == request_schema.body_limit(features, 1000)
    extremes = {"x1": -1.2345678901234567e-100, "x2": 123456789.12345678, "color": "green"}
    rows = [{**AS_IN_DATA, **extremes, "when": "2024-05-31T12:00:00.123456+02:00", "key": "k" * 40}]
    body = json.dumps({"instances": rows * 1000}, indent=8).encode()
    assert len(body) < limit < 8 * len(json.dumps({"instances": rows * 1000}))
    answer = client.post("/predict", content=body, headers=JSON)
    assert answer.status_code == 200, answer.text[:300]
    assert len(answer.json()["predictions"]) == 1000


def test_a_raw_row_gets_its_derived_columns_as_preprocess_made_them():
    """A derived feature is no field of the request: the server computes it from the row."""
    features = {
        "roles": {
            "target": "y",
            "numeric": ["mass", "length", "mass_per_length"],
            "categorical": [],
            "time": None,
            "groups": [],
        },
        "numeric": {c: {"min": 0.0, "max": 10.0} for c in ("mass", "length", "mass_per_length")},
        "categorical": {},
        "non_features": ["y"],
        "derived": {"ratios": [["mass", "length"]], "columns": ["mass_per_length"]},
    }
    assert set(request_schema.row_model(features).model_fields) == {"mass", "length", "y"}
    columns = request_schema.with_derived({"mass": [10.0, 1.0], "length": [2, 0]}, features)
    assert columns == {"mass": [10.0, 1.0], "length": [2, 0], "mass_per_length": [5.0, None]}
