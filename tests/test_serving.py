"""Serve a baked classification project for real: the pipeline, then the server in a
subprocess on a free loopback port. The API must predict as the model does in-process,
refuse bad requests with a 4xx naming the field and oversized bodies with a 413, follow
GTO stage assignments (deploy and roll back), and its prediction log must show drift for
a shifted batch and not otherwise, with every answered row logged once when SIGTERM
stops the server (one process, or `--workers 2` sharing the log), and counted in one line
when the disk is full. Schemathesis fuzzes
the server of each task from its own OpenAPI schema: no 5xx, every answer as the schema
declares, /health answering throughout."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import BIN, bake, chart_marks, docs_harness, git, package_of, run, status_lines

pytestmark = pytest.mark.slow

API_KEY = "test-key-123"
FEATURES = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g", "island", "sex"]
# Schemathesis' budget: test cases per operation (a run takes 10-20 s here), a fixed seed
# so that a failure reproduces, and a hard stop if the server hangs.
FUZZ_EXAMPLES = 150
FUZZ_SEED = 20261130
FUZZ_TIMEOUT_S = 240


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """`python -m PKG serve` in a subprocess, stopped by the context manager."""

    def __init__(self, root: Path, package: str, *args: str, api_key: str | None = API_KEY) -> None:
        self.root, self.package, self.args, self.api_key = root, package, args, api_key
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> httpx.Client:
        env = {**os.environ, "PYTHONPATH": str(self.root / "src")}
        env.pop("MODEL_API_KEY", None)
        if self.api_key:
            env["MODEL_API_KEY"] = self.api_key
        self.process = subprocess.Popen(
            [sys.executable, "-m", self.package, "serve", "--port", str(self.port), *self.args],
            cwd=self.root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            start_new_session=True,
        )  # fmt: skip
        headers = {"X-API-Key": self.api_key} if self.api_key else {}
        client = httpx.Client(base_url=self.url, headers=headers, timeout=30)
        deadline = time.time() + 60
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"server exited: {self.process.stdout.read()}")
            try:
                if client.get("/health").status_code == 200:
                    return client
            except httpx.TransportError:
                time.sleep(0.2)
        raise AssertionError("server did not start in 60 s")

    def __exit__(self, *exc) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)


def instances(frame: pd.DataFrame, columns: list[str] = FEATURES) -> list[dict]:
    rows = frame[columns].astype(object).where(frame[columns].notna(), None)
    return rows.to_dict(orient="records")


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> tuple[Path, str, str]:
    """A baked classification project after `dvc repro`, registered and assigned to prod."""
    root = bake(tmp_path_factory.mktemp("serve"), project_name="Serve Me")
    run(root, "dvc", "repro")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "First pipeline run")
    package = package_of(root)
    artifact = "serve-me-model"
    run(root, "gto", "register", artifact)
    run(root, "gto", "assign", artifact, "--stage", "prod")
    return root, package, artifact


def test_onnx_is_exported_and_byte_identical_on_rerun(project):
    root, _, _ = project
    onnx = root / "models/onnx/model.onnx"
    before = hashlib.md5(onnx.read_bytes()).hexdigest()
    meta = json.loads((root / "models/model.json").read_text())
    assert meta["onnx"]["status"] == "exported"
    assert meta["onnx"]["parity"]["max_abs_diff"] <= meta["onnx"]["parity"]["allowed_abs_diff"]
    lock = (root / "dvc.lock").read_text()
    run(root, "dvc", "repro", "--force", "--single-item", "export")
    assert hashlib.md5(onnx.read_bytes()).hexdigest() == before
    assert (root / "dvc.lock").read_text() == lock
    card = (root / "models/model_card.md").read_text()
    assert "### Per class" in card and "By `island`:" in card and "## Limits" in card


def test_api_predicts_as_the_model_in_process(project):
    root, package, _ = project
    sys.path.insert(0, str(root / "src"))
    try:
        io = __import__(f"{package}.core.io", fromlist=["io"])
        schema = __import__(f"{package}.tables.schema", fromlist=["schema"])
        model = io.load_model(root / "models/model.skops")
        roles = schema.roles_from_dict(json.loads((root / "models/model.json").read_text())
                                       ["features"]["roles"])  # fmt: skip
        test = pd.read_parquet(root / "data/processed/test.parquet")
        frame = schema.model_frame(test, roles)
        expected, proba = model.predict(frame), model.predict_proba(frame)
    finally:
        sys.path.remove(str(root / "src"))
        for name in [m for m in sys.modules if m.startswith(package)]:
            del sys.modules[name]
    with Server(root, package) as client:
        answer = client.post("/predict", json={"instances": instances(test)})
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["predictions"] == expected.tolist()
        got = np.array([[p[str(c)] for c in model.classes_] for p in body["probabilities"]])
        np.testing.assert_allclose(got, proba, rtol=0, atol=1e-12)
        meta = client.get("/metadata").json()
        assert (meta["version"], meta["stage"]) == ("v0.0.1", "prod")
        assert meta["git_revision"] == git(root, "rev-parse", "HEAD")


def test_bad_requests_get_a_4xx_naming_the_field(project):
    root, package, _ = project
    good = {"bill_length_mm": 39.1, "bill_depth_mm": 18.7, "flipper_length_mm": 181,
            "body_mass_g": 3750, "island": "Dream", "sex": "male"}  # fmt: skip
    missing = {k: v for k, v in good.items() if k != "sex"}
    cases = [
        ({"instances": [missing]}, "instances[0].sex: Field required"),
        ({"instances": [{**good, "beak": 1}]}, "instances[0]: unknown column 'beak': neither"),
        ({"instances": [{**good, "year": "soon"}]}, "instances[0].year: Value error, not a year"),
        ({"instances": [{**good, "body_mass_g": "heavy"}]}, "instances[0].body_mass_g: Input"),
        ({"instances": [{**good, "island": 3.5}]}, "instances[0].island: Input should be"),
        ({"instances": []}, "instances: List should have at least 1 item"),
        ({"instances": [good] * 1001}, "instances: List should have at most 1000 items"),
        ({"rows": [good]}, "instances: Field required"),
    ]
    with Server(root, package) as client:
        for body, message in cases:
            answer = client.post("/predict", json=body)
            assert answer.status_code == 422, (body, answer.text)
            assert answer.json()["error"].startswith(message), answer.json()["error"]
        broken = client.post("/predict", content=b'{"instances": [', headers={
            "Content-Type": "application/json"})  # fmt: skip
        assert broken.status_code == 422 and "malformed JSON" in broken.json()["error"]
        unseen = client.post("/predict", json={"instances": [{**good, "island": "Atlantis"}]})
        assert unseen.status_code == 200
        assert "'Atlantis' was not seen in training" in unseen.json()["warnings"][0]
        server_url = str(client.base_url).rstrip("/")
        anonymous = httpx.post(f"{server_url}/predict", json={"instances": [good]})
        assert anonymous.status_code == 401
        assert httpx.get(f"{server_url}/health").status_code == 200


def test_a_body_over_the_limit_is_413_and_the_server_keeps_answering(project):
    root, package, _ = project
    with Server(root, package) as client:
        limit = client.get("/metadata").json()["max_body_bytes"]
        row = {"bill_length_mm": 39.1, "bill_depth_mm": 18.7, "flipper_length_mm": 181,
               "body_mass_g": 3750, "island": "Dream", "sex": "male"}  # fmt: skip
        fits = json.dumps({"instances": [row] * 1000}, indent=8).encode()
        over = json.dumps({"instances": [row] * 20_000}).encode()
        assert len(fits) < limit < len(over)
        json_type = {"Content-Type": "application/json"}
        assert client.post("/predict", content=fits, headers=json_type).status_code == 200
        declared = client.post("/predict", content=over, headers=json_type)
        # A generator body goes out chunked, without Content-Length: uvicorn streams it in.
        pieces = (over[i : i + 65536] for i in range(0, len(over), 65536))
        streamed = client.post("/predict", content=pieces, headers=json_type)
        assert "content-length" not in streamed.request.headers
        for answer in (declared, streamed):
            assert answer.status_code == 413
            assert answer.json()["detail"].startswith(f"request body over {limit} bytes")
        assert client.get("/health").status_code == 200


def test_served_model_follows_the_stage_assignment(project):
    """Deploy v0.0.2 (another model) to prod, then roll back by reassigning v0.0.1."""
    root, package, artifact = project
    config = root / "conf/config.yaml"
    config.write_text(config.read_text().replace("  - model: auto\n",
                                                  "  - model: random_forest\n"))  # fmt: skip
    run(root, sys.executable, "-m", package, "params")
    run(root, "dvc", "repro")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "Random forest")
    run(root, "gto", "register", artifact)
    run(root, "gto", "assign", artifact, "--version", "v0.0.2", "--stage", "prod")
    with Server(root, package) as client:
        meta = client.get("/metadata").json()
        assert (meta["version"], meta["model"]) == ("v0.0.2", "random_forest")
    run(root, "gto", "assign", artifact, "--version", "v0.0.1", "--stage", "prod", "--force")
    with Server(root, package) as client:
        meta = client.get("/metadata").json()
        assert (meta["version"], meta["model"]) == ("v0.0.1", "logistic_regression")
    with Server(root, package, "--workspace") as client:
        assert client.get("/metadata").json()["model"] == "random_forest"


def test_a_version_whose_cached_files_differ_from_its_manifest_is_refused(project):
    """serve checks a GTO version's files against the manifest committed with them: a file
    of DVC's cache swapped for other bytes is refused in one line naming it and the fix,
    and the version is served again once the right bytes are back."""
    root, package, artifact = project
    run(root, "gto", "assign", artifact, "--version", "v0.0.1", "--stage", "staging")
    lock = yaml.safe_load(git(root, "show", f"{artifact}@v0.0.1:dvc.lock"))
    locked = {o["path"]: o["md5"] for o in lock["stages"]["export"]["outs"]}
    md5 = locked["models/model.skops"]
    cached = root / ".dvc/cache/files/md5" / md5[:2] / md5[2:]
    kept = cached.read_bytes()
    cached.chmod(0o644)
    cached.write_bytes(kept + b"\0")
    try:
        done = run(root, sys.executable, "-m", package, "serve", "--stage", "staging", check=False)
    finally:
        cached.write_bytes(kept)
    assert done.returncode == 1 and done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith(
        "error: models/model.skops is not the file models/manifest.json records (md5 "
    )
    assert "in version v0.0.1 (commit " in done.stderr
    assert f"delete .dvc/cache/files/md5/{md5[:2]}/{md5[2:]}, then run `dvc fetch" in done.stderr
    with Server(root, package, "--stage", "staging") as client:
        meta = client.get("/metadata").json()
    served = (meta["version"], meta["model_md5"], meta["manifest_md5"])
    assert served == ("v0.0.1", md5, locked["models/manifest.json"])


def test_a_challenger_in_the_shadow_is_served_compared_and_judged_live(project):
    """An experiment in the shadow of prod: it scores every request (shadow_share 1.0) and
    logs beside the champion; with labels, monitor compares the two and decide judges it
    with its live evidence; the shadows serve cannot use are refused in one line."""
    root, package, artifact = project
    for asked, problem in (
        ("no-such-exp", "shadow 'no-such-exp': no experiment or git revision of that name"),
        (f"{artifact}@v0.0.1", "is the served model itself"),
    ):
        done = run(root, sys.executable, "-m", package, "serve", "--stage", "prod",
                   "--shadow", asked, check=False)  # fmt: skip
        assert done.returncode == 1 and done.stderr.count("\n") == 1, done.stderr
        assert problem in done.stderr
    run(root, "dvc", "exp", "run", "--temp", "-n", "in-the-shadow", "-S",
        "model=hist_gradient_boosting")  # fmt: skip
    service = root / "service.yaml"
    shipped = service.read_text()
    service.write_text(shipped.replace("  shadow_share: 0.25\n", "  shadow_share: 1.0\n"))
    test = pd.read_parquet(root / "data/processed/test.parquet")
    try:
        with Server(root, package, "--shadow", "in-the-shadow") as client:
            ids = []
            for start in range(0, len(test), 7):
                rows = instances(test.iloc[start : start + 7])
                ids += client.post("/predict", json={"instances": rows}).json()["ids"]
            health = client.get("/health").json()["shadow"]
        assert (health["version"], health["share"]) == ("in-the-shadow", 1.0)
        records = [json.loads(line) for line in (root / "logs/shadow.jsonl").open()]
        assert sorted(r["id"] for r in records) == sorted(ids)
        exp = git(root, "for-each-ref", "--format=%(objectname)", "refs/exps/*/*/in-the-shadow")
        assert {r["git_revision"] for r in records} == {exp}
        labels = [{"id": i, "label": y, "time": "2026-01-01T00:00:00+00:00"}
                  for i, y in zip(ids, test["species"], strict=True)]  # fmt: skip
        (root / "logs/feedback.jsonl").write_text("".join(json.dumps(x) + "\n" for x in labels))
        run(root, sys.executable, "-m", package, "monitor")
        report = json.loads((root / "reports/shadow.json").read_text())
        assert report["paired_rows"] == len(ids) == report["live"]["labelled"]
        assert 0.5 < report["agreement"]["share_equal"] <= 1.0
        done = run(root, sys.executable, "-m", package, "decide", "--challenger", "shadow",
                   check=False)  # fmt: skip
        assert done.returncode in (0, 3, 4), done.stderr
        written = sorted((root / "decisions").glob("*.json"))[-1]
        record = json.loads(written.read_text())
        assert record["challenger"]["revision"] == exp
        assert record["live"]["labelled_rows"] == len(ids)
        assert record["gates"][-1]["name"] == "live"
        replayed = run(root, sys.executable, "-m", package, "decide", "--replay", str(written),
                       check=False)  # fmt: skip
        assert "the same decision, byte for byte" in replayed.stdout, replayed.stdout
    finally:
        service.write_text(shipped)
        for made in ("logs/shadow.jsonl", "logs/feedback.jsonl", "reports/shadow.json"):
            (root / made).unlink(missing_ok=True)
        for made in (root / "decisions").glob("*"):
            made.unlink()


def test_monitor_flags_a_shifted_batch_only(project):
    root, package, _ = project
    batches = sorted((root / "data/raw").glob("*.csv"))
    raw = pd.concat([pd.read_csv(p) for p in batches]).dropna(subset=["bill_length_mm"])
    shifted = raw.assign(bill_length_mm=raw["bill_length_mm"] + 12,
                         flipper_length_mm=raw["flipper_length_mm"] * 1.15)  # fmt: skip
    verdicts = {}
    for name, batch in (("unshifted", raw), ("shifted", shifted)):
        for old in (root / "logs").glob("predictions.jsonl*"):
            old.unlink()
        with Server(root, package) as client:
            # Rows as the data holds them: the target and the year too.
            rows = instances(batch, list(raw.columns))
            assert client.post("/predict", json={"instances": rows}).status_code == 200
        done = run(root, sys.executable, "-m", package, "monitor", "--fail-on-drift", check=False)
        report = json.loads((root / "reports/drift.json").read_text())
        verdicts[name] = (done.returncode, report["drift"], report["drifted_features"])
    assert verdicts["unshifted"] == (0, False, [])
    code, drift, drifted = verdicts["shifted"]
    assert (code, drift) == (3, True) and {"bill_length_mm", "flipper_length_mm"} <= set(drifted)
    assert (root / "reports/drift.md").exists()

    run(root, sys.executable, "-m", package, "monitor", "--to-batch", "data/raw/logged.csv")
    batch = pd.read_csv(root / "data/raw/logged.csv")
    assert list(batch.columns) == list(raw.columns)
    assert len(batch) == len(shifted) and batch["species"].isna().all()
    np.testing.assert_allclose(batch["bill_length_mm"], shifted["bill_length_mm"])
    # Each row's event time, as sent (a year: January 1st), in data.time's column.
    assert batch["year"].tolist() == [f"{y}-01-01T00:00:00+00:00" for y in shifted["year"]]
    again = run(root, sys.executable, "-m", package, "monitor", "--to-batch",
                "data/raw/logged.csv", check=False)  # fmt: skip
    assert again.returncode == 1 and "exists" in again.stderr


def test_monitor_scores_later_labels_estimates_and_draws_its_page_offline(project, tmp_path):
    """Rows served without their target, labels for two thirds of them sent later (lines of
    serve.feedback_log, by the answer's ids): monitor's live report counts and scores them
    for the version served, estimates the metric without labels (CBPE), and its page draws
    every chart in headless Chromium with no network."""
    root, package, _ = project
    for old in [*(root / "logs").glob("predictions.jsonl*"), root / "logs/feedback.jsonl"]:
        old.unlink(missing_ok=True)
    test = pd.read_parquet(root / "data/processed/test.parquet")
    with Server(root, package) as client:
        answer = client.post("/predict", json={"instances": instances(test)}).json()
    labelled = 2 * len(test) // 3
    sent = zip(answer["ids"][:labelled], test["species"], strict=False)
    now = dt.datetime.now(dt.UTC).isoformat()
    lines = [json.dumps({"id": i, "label": label, "time": now}) for i, label in sent]
    (root / "logs/feedback.jsonl").write_text("\n".join(lines) + "\n")
    run(root, sys.executable, "-m", package, "monitor")
    report = json.loads((root / "reports/live.json").read_text())
    assert (report["coverage"]["logged"], report["coverage"]["labelled"]) == (len(test), labelled)
    assert report["versions"] == ["v0.0.1"]
    figures = report["by_version"]["v0.0.1"]
    assert figures["labelled"] == labelled and figures["metric"]["value"] is not None
    estimate = figures["estimate_unlabelled"]
    assert estimate["estimate"] is True and estimate["rows"] == len(test) - labelled
    assert estimate["versions"] == {"v0.0.1": len(test) - labelled}
    assert "(estimate of v0.0.1)" in (root / "reports/live.md").read_text()
    page = tmp_path / "monitor.html"
    page.write_bytes((root / "reports/monitor.html").read_bytes())
    marks = chart_marks(page)
    titles = [m["title"] for m in marks]
    assert titles[0].startswith("Live ") and titles[-1] == "Input drift (PSI) per feature"
    assert len(marks) == 4 and all(m["marks"] > 0 for m in marks), marks  # sex, island


def run_step(root: Path, commands: str) -> str:
    """Commands of a docs block as written, in bash as a reader's shell would run them."""
    return run(root, "bash", "-euo", "pipefail", "-c", commands).stdout


def test_the_serving_docs_leave_git_status_as_they_say(tmp_path):
    """docs/serving.md's commands in order, after a first iteration is committed: the
    server (its first command, on a free port) and the curl of a row as the data holds it,
    promotion, a deployed copy, monitor and a batch of served rows back into the data.
    After each `git status --short  # prints ...`, git prints what the doc says."""
    root = bake(tmp_path, project_name="Docs Serve")
    package = package_of(root)
    run(root, "dvc", "repro")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "Iteration 1")
    harness = docs_harness(root)
    serve_block, curl_block, *rest = harness.bash_blocks(root / "docs/serving.md")
    first = serve_block.splitlines()[0].split("#")[0].split()
    assert first == ["python", "-m", package, "serve"]
    server = Server(root, package, api_key=None)
    checked = 0
    with server:  # `serve`, with a port of the test's: the doc's 8000 may be taken
        for commands, printed in harness.status_steps(curl_block):
            answer = run_step(root, commands.replace("localhost:8000", server.url))
            assert '"predictions"' in answer, answer  # the row was taken as it is
            assert status_lines(root) == printed
            checked += 1
    logged = json.loads((root / "logs/predictions.jsonl").read_text().splitlines()[-1])
    assert logged["event_time"] == "2007-01-01T00:00:00+00:00"
    assert status_lines(root) == []  # the log written at shutdown is ignored too
    # A new model to ship, as the Promote section's commit expects.
    config = root / "conf/config.yaml"
    config.write_text(config.read_text().replace("  - model: logistic_regression\n",
                                                  "  - model: random_forest\n"))  # fmt: skip
    run(root, sys.executable, "-m", package, "params")
    run(root, "dvc", "repro")
    for block in rest:
        for commands, printed in harness.status_steps(block):
            run_step(root, commands)
            if printed is not None:
                assert status_lines(root) == printed, f"after\n{commands}"
                checked += 1
    assert checked == 8
    assert (root / "deployed/prod.skops").exists() and (root / "reports/drift.md").exists()
    # The Labels section's file held the id of the row the curl sent: its label is stored.
    assert logged["id"] in (root / "logs/feedback.jsonl").read_text()


def logged_rows(root: Path) -> list[tuple[str, int]]:
    """(request_id, row) of every line of the prediction log and its backups."""
    files = sorted((root / "logs").glob("predictions.jsonl*"))
    lines = [
        line for f in files if not f.name.endswith(".lock") for line in f.read_text().splitlines()
    ]
    return [(r["request_id"], r["row"]) for r in map(json.loads, lines)]


def test_sigterm_right_after_the_answers_loses_no_logged_row(project):
    """The log's timer is set beyond the test's length: only the shutdown SIGTERM starts
    (uvicorn's graceful stop, then the app's lifespan) can have written the rows."""
    root, package, _ = project
    for old in (root / "logs").glob("predictions.jsonl*"):
        old.unlink()
    params = root / "service.yaml"
    before = params.read_text()
    assert "  log_flush_seconds: 1.0\n" in before
    params.write_text(before.replace("  log_flush_seconds: 1.0\n", "  log_flush_seconds: 600\n"))
    test = pd.read_parquet(root / "data/processed/test.parquet")
    sizes = [1, 7, 3, 25, 1]
    try:
        server = Server(root, package)
        with server as client:
            for n in sizes:
                answer = client.post("/predict", json={"instances": instances(test.head(n))})
                assert answer.status_code == 200, answer.text
            assert logged_rows(root) == []  # still queued in the server
    finally:
        params.write_text(before)
    rows = logged_rows(root)
    assert len(rows) == sum(sizes) and len(set(rows)) == len(rows)


def test_sigterm_on_a_full_disk_exits_0_with_one_line_counting_the_rows_lost(project):
    """The log on /dev/full (ENOSPC on every write): answers go on, /health shows the rows
    waiting and the error, and SIGTERM stops the server with status 0, no traceback, and
    one line counting the rows that could not be written."""
    root, package, _ = project
    logs = root / "logs"
    for old in logs.glob("predictions.jsonl*"):
        old.unlink()
    logs.mkdir(exist_ok=True)
    (logs / "predictions.jsonl").symlink_to("/dev/full")
    test = pd.read_parquet(root / "data/processed/test.parquet")
    server = Server(root, package)
    try:
        with server as client:
            for n in (1, 7, 3):
                answer = client.post("/predict", json={"instances": instances(test.head(n))})
                assert answer.status_code == 200, answer.text
            deadline = time.time() + 30
            while (log := client.get("/health").json()["prediction_log"])["error"] is None:
                assert time.time() < deadline, "the log's writer never tried to write"
                time.sleep(0.2)
            assert log == {"rows_waiting": 11, "rows_lost": 0, "error": "No space left on device"}
            server.process.terminate()
            output, _ = server.process.communicate(timeout=30)
    finally:
        (logs / "predictions.jsonl").unlink()
    assert server.process.returncode == 0, output
    assert "Traceback" not in output and "ERROR" not in output, output
    said = [line for line in output.splitlines() if "prediction log" in line]
    assert len(said) == 2, output  # writing failed; then the shutdown's count
    assert said[-1].endswith(
        "predictions.jsonl: 11 rows not logged since the start, 11 of them at shutdown "
        "(No space left on device)"
    ), said


@pytest.mark.parametrize("workers", ["1", "2"])
def test_ctrl_c_stops_the_server_cleanly_in_one_line_exit_130(project, workers):
    """SIGINT to the server's process group, as Ctrl-C in its terminal sends it: uvicorn
    finishes and runs the app's shutdown (rows logged), then `serve` says so in one line
    and exits 130 as an interrupted command does; no worker prints a traceback."""
    root, package, _ = project
    server = Server(root, package, "--workers", workers)
    with server as client:
        assert client.get("/health").status_code == 200
        os.killpg(server.process.pid, signal.SIGINT)
        output, _ = server.process.communicate(timeout=60)
    assert server.process.returncode == 130, output
    assert "Traceback" not in output
    assert output.strip().splitlines()[-1] == (
        "interrupted: serve stopped; the server shut down as on SIGTERM, requests in flight "
        "answered"
    )


def test_two_workers_answer_and_log_every_row_once(project):
    root, package, _ = project
    for old in (root / "logs").glob("predictions.jsonl*"):
        old.unlink()
    test = pd.read_parquet(root / "data/processed/test.parquet")
    server = Server(root, package, "--workers", "2")
    sent, workers, lock = [0], set(), threading.Lock()

    def send(seed: int) -> None:
        # A new connection per request, so that the kernel hands them to either worker.
        for i in range(20):
            rows = instances(test.sample(1 + (seed + i) % 5, random_state=seed * 100 + i))
            answer = httpx.post(f"{server.url}/predict", json={"instances": rows},
                                headers={"X-API-Key": API_KEY}, timeout=30)  # fmt: skip
            assert answer.status_code == 200, answer.text
            worker = httpx.get(f"{server.url}/health", timeout=30).json()["worker"]
            with lock:
                sent[0] += len(rows)
                workers.add(worker)

    with server:
        threads = [threading.Thread(target=send, args=(seed,)) for seed in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert len(workers) == 2 and server.process.pid not in workers, workers
    rows = logged_rows(root)
    assert sent[0] == 4 * sum(1 + i % 5 for i in range(20)) and len(rows) == sent[0]
    assert len(set(rows)) == len(rows)
    run(root, sys.executable, "-m", package, "monitor")
    assert json.loads((root / "reports/drift.json").read_text())["live_rows"] == sent[0]


@pytest.fixture(scope="module")
def regression_project(tmp_path_factory) -> tuple[Path, str]:
    """A baked regression project whose model `... run` made (the stages in one process:
    a quarter of `dvc repro`'s time), served from its workspace."""
    root = bake(tmp_path_factory.mktemp("serve-regression"), project_name="Serve Amounts",
                task="regression")  # fmt: skip
    run(root, sys.executable, "-m", "serve_amounts", "run")
    return root, "serve_amounts"


class HealthPoller(threading.Thread):
    """GET /health every 0.1 s until stopped; `answers` holds each status code (or the
    error, when no answer came within 5 s)."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url, self.answers, self.halt = url, [], threading.Event()

    def run(self) -> None:
        with httpx.Client(timeout=5) as client:
            while not self.halt.is_set():
                try:
                    self.answers.append(client.get(f"{self.url}/health").status_code)
                except httpx.HTTPError as exc:
                    self.answers.append(repr(exc))
                self.halt.wait(0.1)


# POST /feedback answers schema-valid labels for ids no answer gave (all of the fuzzer's) with
# a 422 naming them, by design, and a body past the limit with a 413 as every endpoint does:
# both are accepted answers to valid data there, and only there.
FUZZ_CONFIG = """
[[operations]]
include-path = "/feedback"
checks.positive_data_acceptance.expected-statuses = ["2xx", "413", "422"]
"""


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_schemathesis_finds_no_error_and_health_answers_throughout(task, request, tmp_path):
    if task == "classification":
        root, package, _ = request.getfixturevalue("project")
        server = Server(root, package)
    else:
        root, package = request.getfixturevalue("regression_project")
        server = Server(root, package, "--workspace")
    report = tmp_path / "schemathesis.json"
    config = tmp_path / "schemathesis.toml"
    config.write_text(FUZZ_CONFIG)
    with server as client:
        poller = HealthPoller(server.url)
        poller.start()
        # Every check: no 5xx, status codes, content types, headers and bodies as the
        # schema declares, invalid data refused, valid data accepted, the key enforced.
        done = subprocess.run(
            [str(BIN / "st"), "--config-file", str(config), "run", f"{server.url}/openapi.json",
             "--checks", "all",
             "--header", f"X-API-Key: {API_KEY}", "--max-examples", str(FUZZ_EXAMPLES),
             "--seed", str(FUZZ_SEED), "--generation-database", "none",
             "--request-timeout", "10", "--report", "json", "--report-json-path", str(report),
             "--no-color"],
            cwd=tmp_path, capture_output=True, text=True, timeout=FUZZ_TIMEOUT_S,
        )  # fmt: skip
        poller.halt.set()
        poller.join()
        after = client.get("/health")
        stored = round_trip(client, task)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    summary = json.loads(report.read_text())
    cases = summary["test_cases"]
    print(f"schemathesis {task}: {summary['operations']['tested']} operations, "
          f"{cases['generated']} test cases, {summary['running_time']:.1f} s, "
          f"{len(poller.answers)} health polls")  # fmt: skip
    assert (summary["failures"], summary["errors"]) == ([], [])
    assert summary["operations"]["tested"] == 4  # /health, /metadata, /predict, /feedback
    assert cases["generated"] >= FUZZ_EXAMPLES
    assert len(poller.answers) >= 10 and set(poller.answers) == {200}, poller.answers
    assert after.status_code == 200
    assert stored == {"stored": 1, "replaced": 0, "unknown": 0}


def round_trip(client: httpx.Client, task: str) -> dict:
    """POST /feedback's answer to a label for the id a POST /predict answer just gave."""
    row = {"bill_length_mm": 39.1, "bill_depth_mm": 18.7, "flipper_length_mm": 181,
           "body_mass_g": 3750, "island": "Torgersen", "sex": "male"}  # fmt: skip
    if task == "regression":
        row.pop("body_mass_g")
        row["species"] = "Adelie"
    answer = client.post("/predict", json={"instances": [row]})
    assert answer.status_code == 200, answer.text
    label = "Adelie" if task == "classification" else 3750.0
    body = {"labels": [{"id": answer.json()["ids"][0], "label": label}]}
    return client.post("/feedback", json=body).json()
