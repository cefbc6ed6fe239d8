"""Who may reach the server and what it tells those without the key: a reachable host
needs a key or --no-api-key; with a key, nothing a client without it can fetch holds a
training range, a category or a class label; start-up failures are one line each."""

from __future__ import annotations

import json
import re
import socket

import pytest
import test_serving

from {{ cookiecutter.package_name }}.core.errors import UserError
from {{ cookiecutter.package_name }}.serving import app as app_module
from {{ cookiecutter.package_name }}.serving import exposure

# The served toy model's fixtures (its categories red/green/blue, classes high/low/mid).
GOOD, model_source, served = test_serving.GOOD, test_serving.model_source, test_serving.served


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("::ffff:127.0.0.1", True),
        ("localhost", True),
        ("LOCALHOST", True),
        ("0.0.0.0", False),
        ("::", False),
        ("192.168.1.5", False),
        ("fe80::1", False),
        ("myhost.example", False),
    ],
)
def test_only_loopback_counts_as_this_machine_alone(host, loopback):
    assert exposure.is_loopback(host) is loopback


def test_a_reachable_host_needs_a_key_or_the_flag_said_out_loud():
    with pytest.raises(UserError, match=r"host 0\.0\.0\.0 .* every network interface .*"
                       r"set MODEL_API_KEY .* or pass --no-api-key"):  # fmt: skip
        exposure.exposure_warning("0.0.0.0", None, no_api_key=False, key_env="MODEL_API_KEY")
    with pytest.raises(UserError, match="host 10.1.2.3 .* listens on a network"):
        exposure.exposure_warning("10.1.2.3", None, no_api_key=False, key_env="MODEL_API_KEY")
    warning = exposure.exposure_warning("::", None, no_api_key=True, key_env="MODEL_API_KEY")
    assert warning.startswith("NO API KEY on :: (every network interface")
    assert exposure.exposure_warning("0.0.0.0", "k", no_api_key=False, key_env="K") == ""
    assert exposure.exposure_warning("127.0.0.1", None, no_api_key=False, key_env="K") == ""
    with pytest.raises(UserError, match="--no-api-key, yet K is set: unset K"):
        exposure.exposure_warning("127.0.0.1", "k", no_api_key=True, key_env="K")


def fetched_without_key(client) -> dict[str, str]:
    """Everything a client without the key can fetch: each path's answer text."""
    paths = ["/openapi.json", "/docs", "/redoc", "/health", "/metadata", "/", "/favicon.ico"]
    texts = {path: client.get(path).text for path in paths}
    texts["/predict"] = client.post("/predict", json={"instances": [GOOD]}).text
    return texts


def test_a_client_without_the_key_sees_no_range_category_or_class(served, model_source):
    client, model, _ = served(api_key="s3cret")
    source, _ = model_source()
    features = source.metadata["features"]
    words = {c for known in features["categorical"].values() for c in known}
    words |= {str(c) for c in model.classes_}
    numbers = set()
    for seen in features["numeric"].values():
        numbers |= {seen["min"], seen["max"], app_module.request_schema.number_bound(seen)}
    assert words == {"red", "green", "blue", "high", "low", "mid"} and len(numbers) >= 4
    for path, text in fetched_without_key(client).items():
        found = [w for w in words if re.search(rf"\b{w}\b", text)]
        assert not found, (path, found)
        for number in numbers:
            assert repr(number) not in text and f"{number:g}" not in text, (path, number)
    # The schema without the facts still describes the request: fields, types, security.
    public = client.get("/openapi.json").json()
    instance = public["components"]["schemas"]["Instance"]
    assert instance["required"] == ["x1", "x2", "color"]
    assert instance["properties"]["x1"]["description"] == "number"
    assert "security" in public["paths"]["/predict"]["post"]
    # With the key, the whole schema: what schemathesis fuzzes.
    whole = client.get("/openapi.json", headers={"X-API-Key": "s3cret"}).json()
    schemas = whole["components"]["schemas"]
    assert "training range" in schemas["Instance"]["properties"]["x1"]["description"]
    labels = schemas["Prediction"]["properties"]["predictions"]
    assert labels["items"]["enum"] == ["high", "low", "mid"]
    assert client.get("/openapi.json", headers={"X-API-Key": "nope"}).json() == public


def test_without_a_key_set_the_schema_is_whole_and_the_docs_load(served):
    client, _, _ = served()
    schema = client.get("/openapi.json").json()
    assert "one of: " in json.dumps(schema["components"]["schemas"]["Instance"])
    for path in ("/docs", "/redoc"):
        page = client.get(path)
        assert page.status_code == 200 and "/openapi.json" in page.text


def test_a_port_in_use_is_one_line_naming_the_fix():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(UserError, match=rf"^port {port} on 127.0.0.1 is in use .*--port"):
            app_module.tcp_socket("127.0.0.1", port)


def test_a_host_not_of_this_machine_or_not_resolving_is_one_line():
    with pytest.raises(UserError, match="^192.0.2.1 is no address of this machine"):
        app_module.tcp_socket("192.0.2.1", 8000)  # TEST-NET-1: never a local address
    with pytest.raises(UserError, match="^host 'no-such-host.invalid' does not resolve"):
        app_module.tcp_socket("no-such-host.invalid", 8000)


def test_the_listening_socket_sets_tcp_nodelay_on_each_family():
    for host in ("127.0.0.1", "::1"):
        with app_module.tcp_socket(host, 0) as sock:
            assert sock.proto == socket.IPPROTO_TCP and sock.get_inheritable()


def test_a_prediction_log_it_cannot_write_is_one_line_before_serving(tmp_path, configured):
    (tmp_path / "logs" / "predictions.jsonl").mkdir(parents=True)  # a folder where the file goes
    settings = configured("serve", prediction_log="logs/predictions.jsonl")
    expected = r"^cannot write the prediction log logs/predictions\.jsonl \(Is a directory\)"
    with pytest.raises(UserError, match=expected + ": make .* or set serve.prediction_log"):
        app_module.open_log(tmp_path, settings)
    (tmp_path / "file").write_text("")
    settings = configured("serve", prediction_log="file/predictions.jsonl")
    with pytest.raises(UserError, match=r"\((File exists|Not a directory)\)"):
        app_module.open_log(tmp_path, settings)
