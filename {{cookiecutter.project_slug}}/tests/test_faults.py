"""Faults outside the pipeline's data, as a user meets them: a batch added with the wrong
types, a model whose files do not belong together, a full disk under the prediction log,
a server exposed without a key, Ctrl-C. Each case makes the fault for real (files, a
served app, a child process) and returns the one line the user sees; it asserts the rest
of what must hold (nothing written, nothing served, the count of rows lost) itself.

docs/faults.md is generated from these cases and the lines they really print, as
docs/bad-input.md is from tests/test_bad_input.py: a test fails when it is stale, and
`UPDATE_DOCS=1 pytest tests/test_faults.py` rewrites it.
"""

from __future__ import annotations

import contextlib
#% if cookiecutter.serving == "yes"
import errno
#% endif
import io
#% if cookiecutter.serving == "yes"
import json
import logging
#% endif
import os
import re
import shutil
import subprocess
import sys
#% if cookiecutter.serving == "yes"
import time
#% endif
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

PROJECT = Path(__file__).resolve().parents[1]
DOC = PROJECT / "docs" / "faults.md"


@dataclass(frozen=True)
class Fault:
    id: str
    what: str  # what happened, as the table says it
    where: str  # the command that meets it (serve, export, add-batch, any command)
    outcome: str  # "refused", or "handled: " and the rule that applies
    expect: str  # a regex the line must match
    # Makes the fault in the given empty folder (the test's cwd) and returns the line the
    # user sees; the fixtures it needs come from the request (request.getfixturevalue).
    run: Callable[[pytest.FixtureRequest, Path], str]


# Each area's cases live in its own list below; SECTIONS orders them in the table.


# --- Data: batches added, labels corrected -------------------------------------------


@pytest.fixture(scope="module")
def tracked_project(tmp_path_factory) -> Path:
    """A DVC project holding the shipped batches in data/raw, tracked by `dvc add`, with
    params.yaml: made once, copied by each case."""
    work = tmp_path_factory.mktemp("tracked")
    shutil.copy(PROJECT / "params.yaml", work / "params.yaml")
    shutil.copytree(PROJECT / "data" / "raw", work / "data" / "raw")
    for command in (["init", "--no-scm", "-q"], ["add", "-q", "data/raw"]):
        subprocess.run([sys.executable, "-m", "dvc", *command], check=True, cwd=work)
    return work


def state(work: Path) -> dict[str, bytes]:
    files = [work / "data" / "raw.dvc", *sorted((work / "data" / "raw").iterdir())]
    return {str(p.relative_to(work)): p.read_bytes() for p in files}


def refused_batch(name: str, write: Callable[[Path], None]) -> Callable:
    """A case: `add-batch NAME` of the batch `write` makes from the shipped rows is refused,
    and data/raw (its files and data/raw.dvc) is byte for byte as it was."""

    def run(request: pytest.FixtureRequest, work: Path) -> str:
        from {{ cookiecutter.package_name }}.__main__ import main

        shutil.copytree(request.getfixturevalue("tracked_project"), work, dirs_exist_ok=True)
        before = state(work)
        write(work / name)
        stderr = io.StringIO()
        with contextlib.redirect_stderr(stderr):
            assert main(["add-batch", name]) == 1
        assert state(work) == before, "a refused add-batch changed data/raw"
        return stderr.getvalue().strip()

    return run


def shipped_rows() -> pd.DataFrame:
    return pd.read_csv(sorted((PROJECT / "data" / "raw").glob("*.csv"))[0])


def text_in_numbers(path: Path) -> None:
    rows = shipped_rows()
    rows.assign(bill_length_mm=rows["bill_length_mm"].astype(str) + " mm").to_csv(path, index=False)


def list_column(path: Path) -> None:
    rows = shipped_rows()
    rows.assign(tags=[["ringed"]] * len(rows)).to_parquet(path, index=False)


def relabel_line(text: str, missing_values: list[str]) -> str:
    """annotate's reading of a relabel file holding `text` under its header."""
    from {{ cookiecutter.package_name }}.core.errors import DataError
    from {{ cookiecutter.package_name }}.stages import annotate

    path = Path("data", "annotations", "relabel.csv")
    path.parent.mkdir(parents=True)
    path.write_text("id,label,note\n" + text, encoding="utf-8")
    try:
        read = annotate.read_corrections(path, missing_values)
    except DataError as exc:
        return f"error: {exc}"
    return f"labels read: {', '.join(map(repr, read['label']))}"


DATA: list[Fault] = [
    Fault(
        "add-batch-retyped",
        "`add-batch` of a batch writing a number column as text (`39.1 mm`)",
        "add-batch",
        "refused",
        r"^error: column 'bill_length_mm' holds text in batch 'penguins_2009' but number in "
        r"batch 'penguins_2007': make it one type in every batch",
        refused_batch("penguins_2009.csv", text_in_numbers),
    ),
    Fault(
        "add-batch-nested",
        "`add-batch` of a Parquet batch with a list column",
        "add-batch",
        "refused",
        r"^error: penguins_2009.parquet has nested column\(s\) 'tags' \(list<.*>\)",
        refused_batch("penguins_2009.parquet", list_column),
    ),
    Fault(
        "add-batch-zstd",
        "`add-batch` of a `.csv.zst` file (a compression read only with an extra package)",
        "add-batch",
        "refused",
        r"^error: cannot add penguins_2009.csv.zst: a batch is a .csv \(plain, .gz, .bz2, .xz "
        r"or .zip\) or .parquet file",
        refused_batch("penguins_2009.csv.zst", lambda path: path.write_bytes(b"(\xb5/\xfd")),
    ),
    Fault(
        "relabel-empty-label",
        "a relabel.csv line with an empty label",
        "annotate",
        "refused",
        r"error: data/annotations/relabel.csv has 1 correction\(s\) without a label \(first "
        r"on line 3;.*\): write the label, or delete the line",
        lambda request, work: relabel_line("a1,Adelie,\nb2,,checked\n", []),
    ),
    Fault(
        "relabel-label-na",
        "a relabel.csv label `NA`, data.missing_values empty",
        "annotate",
        "handled: the class NA (only an empty cell is missing)",
        r"labels read: 'NA'",
        lambda request, work: relabel_line("a1,NA,\n", []),
    ),
]

# --- Files that belong together: the exported model's identity ------------------------
#% if cookiecutter.serving == "yes"
# md5s in a line (a file's, or a DVC cache path's): the table shows <md5>, so that it is
# the same in every bake and on every machine.
MD5 = re.compile(r"\b[0-9a-f]{32}\b|\b[0-9a-f]{2}/[0-9a-f]{30}\b")


def _export_toy(request: pytest.FixtureRequest, c: float = 1.0) -> None:
    """models/ in the cwd as export leaves it, for a toy classification pipeline (the same
    in both tasks' bakes, so the table is too; `c` its regularisation, another model):
    model.skops by export's own writer, model.json,{% if cookiecutter.onnx == "yes" %} the ONNX graph,{% endif %} then the manifest.
    Beside it the files `serve` reads: dvc.yaml (the artifact), service.yaml, the model's
    conf/model/ file."""
    import shutil

    import yaml

    from {{ cookiecutter.package_name }}.core import io, paths
    from {{ cookiecutter.package_name }}.export import manifest
    from {{ cookiecutter.package_name }}.stages import export, preprocess
    from {{ cookiecutter.package_name }}.tables import schema

    config = {**request.getfixturevalue("simple_model")["classification"], "C": c}
    roles = request.getfixturevalue("toy_roles")
    model, train, test = request.getfixturevalue("fitted")("classification", config)
    rows = schema.model_frame(test, roles)
    export.write_model(model, rows, config)
    meta = {
        "model": config["name"],
        "task": "classification",
        "metrics": {},
        "hyperparameters": {"C": c},
        "data": {},
        "features": preprocess.describe_features(train, roles, "classification"),
    }
#% if cookiecutter.onnx == "yes"
    onnx_bytes, meta["onnx"] = export.onnx_model(model, rows, roles, config)
    export.write_onnx(onnx_bytes, meta["onnx"].get("reason"))
#% endif
    io.write_json(paths.MODEL_METADATA, meta)
    io.write_json(paths.MODEL_MANIFEST, manifest.record())
    for name in ("dvc.yaml", "service.yaml"):
        shutil.copy(PROJECT / name, name)
    (paths.MODEL_CONF / f"{config['name']}.yaml").parent.mkdir(parents=True, exist_ok=True)
    (paths.MODEL_CONF / f"{config['name']}.yaml").write_text(yaml.safe_dump(config))


def _serve(request: pytest.FixtureRequest, *args: str) -> str:
    """The line `serve` prints, md5s masked; uvicorn is replaced, so a set that is not
    refused prints no error and the case fails."""
    import contextlib
    import io as text

    import uvicorn

    from {{ cookiecutter.package_name }}.__main__ import main

    request.getfixturevalue("monkeypatch").setattr(uvicorn, "run", lambda *a, **k: None)
    err = text.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(["serve", *args])
    errors = [line for line in err.getvalue().splitlines() if line.startswith("error: ")]
    assert code == 1 and len(errors) == 1, err.getvalue()
    return MD5.sub("<md5>", errors[0])


def export_cut_short(request: pytest.FixtureRequest, work: Path) -> str:
    """export's first write, models/model.skops of a new model, then nothing: killed."""
    from {{ cookiecutter.package_name }}.stages import export
    from {{ cookiecutter.package_name }}.tables import schema

    _export_toy(request)
    config = {**request.getfixturevalue("simple_model")["classification"], "C": 1e-4}
    new, _, test = request.getfixturevalue("fitted")("classification", config)
    export.write_model(new, schema.model_frame(test, request.getfixturevalue("toy_roles")), config)
    return _serve(request, "--workspace")


def manifest_missing(request: pytest.FixtureRequest, work: Path) -> str:
    _export_toy(request)
    Path("models/manifest.json").unlink()
    return _serve(request, "--workspace")


def metadata_edited(request: pytest.FixtureRequest, work: Path) -> str:
    _export_toy(request)
    meta = Path("models/model.json")
    meta.write_text(meta.read_text().replace('"metrics": {}', '"metrics": {"accuracy": 1.0}'))
    return _serve(request, "--workspace")


#% if cookiecutter.onnx == "yes"
def old_onnx_graph(request: pytest.FixtureRequest, work: Path) -> str:
    """The ONNX graph of an earlier export copied back beside a later one."""
    old_export = work / "old"
    old_export.mkdir()
    os.chdir(old_export)
    _export_toy(request, c=1e-4)
    os.chdir(work)
    _export_toy(request)
    graph = "models/onnx/model.onnx"
    Path(graph).write_bytes((old_export / graph).read_bytes())
    return _serve(request, "--workspace")


#% endif
def _re_export(request: pytest.FixtureRequest, obj: object) -> None:
    """A toy export whose model.skops holds `obj`, recorded in the manifest as export
    would record whatever its model is."""
    from {{ cookiecutter.package_name }}.core import io, paths
    from {{ cookiecutter.package_name }}.export import manifest

    _export_toy(request)
    io.save_model(paths.MODEL, obj)
    io.write_json(paths.MODEL_MANIFEST, manifest.record())


def a_dict_as_model(request: pytest.FixtureRequest, work: Path) -> str:
    _re_export(request, {"coef": [1.0, 2.0]})
    return _serve(request, "--workspace")


def other_task_model(request: pytest.FixtureRequest, work: Path) -> str:
    """A regression pipeline where model.json says classification."""
    regression = request.getfixturevalue("simple_model")["regression"]
    model, _, _ = request.getfixturevalue("fitted")("regression", regression)
    _re_export(request, model)
    return _serve(request, "--workspace")


IDENTITY: list[Fault] = [
    Fault(
        "export-cut-short",
        "an export cut short after writing models/model.skops: the new model beside the "
        "rest of the old export",
        "serve",
        "refused",
        r"^error: models/model\.skops is not the file models/manifest\.json records .*"
        r"dvc repro export",
        export_cut_short,
    ),
    Fault(
        "manifest-missing",
        "models/manifest.json missing (an export killed before its last write)",
        "serve",
        "refused",
        r"^error: models/manifest\.json is missing.*dvc checkout --force export",
        manifest_missing,
    ),
    Fault(
        "metadata-edited",
        "models/model.json edited by hand after export",
        "serve",
        "refused",
        r"^error: models/model\.json is not the file models/manifest\.json records",
        metadata_edited,
    ),
#% if cookiecutter.onnx == "yes"
    Fault(
        "old-onnx-graph",
        "an earlier export's ONNX graph copied back beside a later model",
        "serve",
        "refused",
        r"^error: models/onnx/model\.onnx is not the file models/manifest\.json records",
        old_onnx_graph,
    ),
#% endif
    Fault(
        "dict-as-model",
        "a skops file that loads but holds a dict, not a pipeline",
        "serve",
        "refused",
        r"^error: models/model\.skops holds a dict, not the scikit-learn pipeline",
        a_dict_as_model,
    ),
    Fault(
        "other-task-model",
        "a regression pipeline where models/model.json says classification",
        "serve",
        "refused",
        r"^error: models/model\.skops holds a Ridge, which does not do classification",
        other_task_model,
    ),
]


#% else
IDENTITY: list[Fault] = []


#% endif

# --- The prediction log ----------------------------------------------------------------
#% if cookiecutter.serving == "yes"
LOG_PATH = Path("logs/predictions.jsonl")  # relative: the table shows no test folder
LOGGED_ROW = {"time": "2026-01-01T00:00:00", "request_id": "r", "row": 0, "inputs": {"x": 1}}


class _Heard(logging.Handler):
    """The prediction log's warnings, as the server log shows them."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())

    def wait_for(self, text: str) -> str:
        """The first line holding `text`, once the writer thread has logged it."""
        deadline = time.time() + 10
        while not any(text in line for line in self.lines):
            assert time.time() < deadline, f"no {text!r} in {self.lines}"
            time.sleep(0.02)
        return next(line for line in self.lines if text in line)


@contextlib.contextmanager
def _full_disk_log(queue_rows: int = 4):
    """A PredictionLog on /dev/full (ENOSPC on every write), its timer at 20 ms, and what
    it logs; closed on the way out."""
    from {{ cookiecutter.package_name }}.serving import prediction_log

    LOG_PATH.parent.mkdir()
    LOG_PATH.symlink_to("/dev/full")
    heard, logger = _Heard(), logging.getLogger(prediction_log.__name__)
    logger.addHandler(heard)
    log = prediction_log.PredictionLog(LOG_PATH, 10**6, 1, 0.02, queue_rows=queue_rows)
    try:
        yield log, heard
    finally:
        log.close()
        logger.removeHandler(heard)


def _rows(n: int) -> list[dict]:
    return [{**LOGGED_ROW, "row": i} for i in range(n)]


def _disk_full(request, work) -> str:
    with _full_disk_log() as (log, heard):
        log.write(_rows(3))
        line = heard.wait_for("cannot write")
        assert log.status()["rows_waiting"] == 3
    return line


def _queue_full(request, work) -> str:
    with _full_disk_log() as (log, heard):
        log.write(_rows(3))
        heard.wait_for("cannot write")
        log.write(_rows(2))  # 3 + 2 > queue_rows (4): dropped, the request not held up
        line = heard.wait_for("queue full")
        assert log.status()["rows_lost"] == 2
    return line


def _space_returns(request, work) -> str:
    from {{ cookiecutter.package_name }}.serving import prediction_log

    with _full_disk_log() as (log, heard):
        log.write(_rows(3))
        heard.wait_for("cannot write")
        log.write(_rows(2))
        heard.wait_for("queue full")
        LOG_PATH.unlink()
        LOG_PATH.touch()
        line = heard.wait_for("written again")
    assert prediction_log.read(LOG_PATH) == _rows(3)
    return line


def _write_cut_short(request, work) -> str:
    """os.write writes half the bytes, then ENOSPC, until space returns: the file ends up
    with every row once, no torn line (tests/serving/test_prediction_log.py checks the
    bytes after the cut)."""
    from {{ cookiecutter.package_name }}.serving import prediction_log

    heard, logger = _Heard(), logging.getLogger(prediction_log.__name__)
    logger.addHandler(heard)
    log = prediction_log.PredictionLog(LOG_PATH, 10**6, 1, 0.02, queue_rows=100)
    try:
        log.write(_rows(1))
        log.flush()
        real_write = os.write

        def half_then_full(fd: int, data) -> int:
            real_write(fd, bytes(data[: len(data) // 2]))
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        request.getfixturevalue("monkeypatch").setattr(os, "write", half_then_full)
        log.write(_rows(2))
        line = heard.wait_for("cannot write")
        request.getfixturevalue("monkeypatch").setattr(os, "write", real_write)
    finally:
        log.close()
        logger.removeHandler(heard)
    contents = prediction_log.load(LOG_PATH)
    assert contents.records == _rows(1) + _rows(2) and contents.unreadable == []
    return line


def _shutdown_disk_full(request, work) -> str:
    with _full_disk_log(queue_rows=100) as (log, heard):
        log.write(_rows(7))
    (line,) = heard.lines[-1:]
    return line


def _torn_line(request, work) -> str:
    from {{ cookiecutter.package_name }}.monitoring import monitor

    LOG_PATH.parent.mkdir()
    whole = json.dumps(LOGGED_ROW) + "\n"
    LOG_PATH.write_text(whole + whole[:20] + "\n" + whole)
    heard, logger = _Heard(), logging.getLogger(monitor.__name__)
    logger.addHandler(heard)
    try:
        logged = monitor.logged_rows(LOG_PATH, None)
    finally:
        logger.removeHandler(heard)
    assert len(logged.rows) == 2 and logged.skipped == 1
    return heard.lines[-1]


def _nothing_readable(request, work) -> str:
    from {{ cookiecutter.package_name }}.core.errors import UserError
    from {{ cookiecutter.package_name }}.monitoring import monitor

    LOG_PATH.parent.mkdir()
    LOG_PATH.write_text("not json\n")
    with pytest.raises(UserError) as refused:
        monitor.logged_rows(LOG_PATH, None)
    return f"error: {refused.value}"


LOG: list[Fault] = [
    Fault(
        "log-disk-full",
        "The disk under the prediction log is full (ENOSPC on every write)",
        "serve",
        "handled: answers go on; rows wait in memory, up to serve.log_queue_rows, and "
        "are retried at each flush; /health shows the error and the rows waiting",
        r"^prediction log logs/predictions.jsonl: cannot write \(No space left on device\): "
        r"3 rows wait",
        _disk_full,
    ),
    Fault(
        "log-queue-full",
        "Rows keep coming while nothing can be written (the queue is full)",
        "serve",
        "handled: a request whose rows would pass serve.log_queue_rows is answered, not "
        "logged; its rows are counted lost (/health's rows_lost), never waited for",
        r"queue full \(3 rows waiting\): rows of new requests are dropped",
        _queue_full,
    ),
    Fault(
        "log-space-returns",
        "Space returns after rows were dropped",
        "serve",
        "handled: the waiting rows are written, each on a line of its own; one line gives "
        "the count dropped",
        r"written again; 2 rows dropped meanwhile, 2 since the start",
        _space_returns,
    ),
    Fault(
        "log-write-cut-short",
        "A write stops part way (some bytes written, then ENOSPC)",
        "serve",
        "handled: the file is cut back to its last whole line and the rows are retried: "
        "no torn line, no row twice",
        r"cannot write \(No space left on device\)",
        _write_cut_short,
    ),
    Fault(
        "log-shutdown-disk-full",
        "The server is stopped (SIGTERM, Ctrl-C) while the disk is full",
        "serve",
        "handled: a clean stop, exit status 0 for SIGTERM; one line counts the rows lost",
        r"7 rows not logged since the start, 7 of them at shutdown \(No space left on device\)",
        _shutdown_disk_full,
    ),
    Fault(
        "log-torn-line",
        "A log line is torn (a crash of an older version) or edited by hand",
        "monitor",
        "handled: the line is skipped and named with the count (drift.json's "
        "skipped_lines); the writer starts its next row on a new line",
        r"^logs/predictions.jsonl line 2: not a whole prediction record .*1 such line",
        _torn_line,
    ),
    Fault(
        "log-nothing-readable",
        "No line of the log is a whole record",
        "monitor",
        "refused",
        r"^error: no predictions logged in logs/predictions.jsonl \(logs/predictions.jsonl "
        r"line 1: ",
        _nothing_readable,
    ),
]


#% else
LOG: list[Fault] = []


#% endif


# --- Exposure and start-up ---------------------------------------------------------------
#% if cookiecutter.serving == "yes"
def free_port() -> str:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return str(probe.getsockname()[1])


def serve_line(request: pytest.FixtureRequest, *args: str, key: str | None = None) -> str:
    """The last line `serve ARGS` prints, run in-process in the case's folder (with this
    project's service.yaml and dvc.yaml, no model) on a free port unless ARGS give one,
    MODEL_API_KEY set to `key`."""
    import shutil

    from {{ cookiecutter.package_name }}.__main__ import main

    if "--port" not in args:
        args = (*args, "--port", free_port())
    for name in ("service.yaml", "dvc.yaml"):
        shutil.copy(PROJECT / name, name)
    monkeypatch = request.getfixturevalue("monkeypatch")
    if key:
        monkeypatch.setenv("MODEL_API_KEY", key)
    else:
        monkeypatch.delenv("MODEL_API_KEY", raising=False)
    capsys = request.getfixturevalue("capsys")
    capsys.readouterr()
    try:
        status = main(["serve", *args])
    except SystemExit as exit_:
        status = exit_.code
    assert status in (1, 2)
    line = capsys.readouterr().err.strip().splitlines()[-1]
    return line.replace(f"{Path.cwd()}/", "").replace("{{ cookiecutter.package_name }}", "PKG")


def serve_on_a_taken_port(request: pytest.FixtureRequest, work: Path) -> str:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        return serve_line(request, "--port", port).replace(port, "PORT")


def serve_an_empty_stage(request: pytest.FixtureRequest, work: Path) -> str:
    """A git repository whose one commit holds dvc.yaml; no GTO version, no stage."""
    import subprocess

    (work / "dvc.yaml").write_bytes((PROJECT / "dvc.yaml").read_bytes())
    identity = ["-c", "user.name=t", "-c", "user.email=t@example.com"]
    for command in (["init", "-q"], ["add", "dvc.yaml"], [*identity, "commit", "-qm", "x"]):
        subprocess.run(["git", *command], check=True, capture_output=True)
    return serve_line(request, "--stage", "staging")


EXPOSURE: list[Fault] = [
    Fault(
        "open-host-no-key",
        "`--host 0.0.0.0` (or `::`, or any address but loopback) and no API key",
        "serve",
        "refused",
        r"^error: host 0\.0\.0\.0 .*set MODEL_API_KEY .*--no-api-key",
        lambda request, work: serve_line(request, "--host", "0.0.0.0"),
    ),
    Fault(
        "no-key-flag-with-key",
        "`--no-api-key` while MODEL_API_KEY is set",
        "serve",
        "refused",
        r"^error: --no-api-key, yet MODEL_API_KEY is set",
        lambda request, work: serve_line(request, "--no-api-key", key="k"),
    ),
    Fault(
        "port-in-use",
        "the port is taken by another process",
        "serve",
        "refused",
        r"^error: port PORT on 127\.0\.0\.1 is in use",
        serve_on_a_taken_port,
    ),
    Fault(
        "host-not-here",
        "`--host` an address this machine does not have",
        "serve",
        "refused",
        r"^error: 192\.0\.2\.1 is no address of this machine",
        lambda request, work: serve_line(request, "--host", "192.0.2.1", key="k"),
    ),
    Fault(
        "host-unresolved",
        "`--host` a name that does not resolve",
        "serve",
        "refused",
        r"^error: host 'no-such-host\.invalid' does not resolve",
        lambda request, work: serve_line(request, "--host", "no-such-host.invalid"),
    ),
    Fault(
        "bad-port",
        "`--port 70000` (or `--workers 0`)",
        "serve",
        "refused (exit 2)",
        r"^error: .* argument --port: '70000' is not a port",
        lambda request, work: serve_line(request, "--port", "70000"),
    ),
    Fault(
        "no-model",
        "no model built or pulled yet",
        "serve",
        "refused",
        r"^error: models/model\.skops does not exist: .*(dvc repro|dvc pull)",
        lambda request, work: serve_line(request, "--workspace"),
    ),
    Fault(
        "empty-stage",
        "`--stage staging` and no version assigned to it",
        "serve",
        "refused",
        r"^error: no version of .* is assigned to stage 'staging'",
        serve_an_empty_stage,
    ),
]


#% else
EXPOSURE: list[Fault] = []


#% endif
# --- Any command ------------------------------------------------------------------------
def ctrl_c(request: pytest.FixtureRequest, work: Path) -> str:
    """A stage sent SIGINT in a child process while it writes (test_cli's)."""
    from test_cli import interrupt_stage

    done = interrupt_stage(work)
    assert done.returncode == 130 and "Traceback" not in done.stderr
    assert (work / "out.bin").stat().st_size == 5_000_000  # the last whole write, or none
    return done.stderr.strip().splitlines()[-1]


def argument_mistake(request: pytest.FixtureRequest, work: Path) -> str:
    from {{ cookiecutter.package_name }}.__main__ import main

    capsys = request.getfixturevalue("capsys")
    with pytest.raises(SystemExit) as exit_:
        main(["train", "--bogus"])
    assert exit_.value.code == 2
    return capsys.readouterr().err.strip().replace("{{ cookiecutter.package_name }}", "PKG")


COMMANDS: list[Fault] = [
    Fault(
        "ctrl-c",
        "Ctrl-C (SIGINT) while a command runs, a stage under `dvc repro` too",
        "any command",
        "handled: exit 130; atomic writes leave the last whole file or none",
        r"^interrupted: rewrite stopped; outputs it had not finished were not written$",
        ctrl_c,
    ),
    Fault(
        "bad-argument",
        "an option the command does not take",
        "any command",
        "refused (exit 2)",
        r"^error: python -m PKG: unrecognized arguments: --bogus; see --help$",
        argument_mistake,
    ),
]

SECTIONS = {
    "Data: batches added, labels corrected": DATA,
    "Files that belong together": IDENTITY,
    "The prediction log": LOG,
    "Exposure and start-up": EXPOSURE,
    "Any command": COMMANDS,
}
FAULTS = [fault for cases in SECTIONS.values() for fault in cases]
SEEN: dict[str, str] = {}  # case id -> the line seen, for the table


def see(fault: Fault, request: pytest.FixtureRequest, work: Path) -> str:
    work.mkdir(parents=True, exist_ok=True)
    cwd = Path.cwd()
    os.chdir(work)
    try:
        line = fault.run(request, work)
    finally:
        os.chdir(cwd)
    SEEN[fault.id] = line
    return line


@pytest.mark.parametrize("fault", FAULTS, ids=lambda f: f.id)
def test_each_fault_is_refused_in_one_line_or_handled_by_its_rule(fault, request, tmp_path):
    line = see(fault, request, tmp_path / fault.id)
    assert re.search(fault.expect, line), f"expected /{fault.expect}/, saw: {line!r}"
    assert "\n" not in line.strip() and "Traceback" not in line


def table() -> str:
    rows = [
        "# Faults: what you see",
        "",
        "Generated by `UPDATE_DOCS=1 pytest tests/test_faults.py` from the cases that test",
        "makes for real; the test fails when this file is stale. Faults in the data and the",
        "settings a pipeline run meets are in [bad-input.md](bad-input.md).",
        "**Refused**: the command stops with this one line and writes or serves nothing;",
        "fix what it names and rerun. **Handled**: the stated rule applies, and the line",
        "says what it did.",
    ]
    for title, cases in SECTIONS.items():
        if not cases:
            continue
        rows += ["", f"## {title}", "", "| Case | Met by | Outcome | What you see |"]
        rows.append("|---|---|---|---|")
        for fault in cases:
            line = SEEN[fault.id].strip().replace("|", "\\|")
            rows.append(f"| {fault.what} | {fault.where} | {fault.outcome} | `` {line} `` |")
    return "\n".join(rows) + "\n"


def test_the_faults_table_in_docs_is_current(request, tmp_path):
    for fault in FAULTS:  # the cases a -k left out, so the table is whole
        if fault.id not in SEEN:
            see(fault, request, tmp_path / fault.id)
    expected = table()
    if os.environ.get("UPDATE_DOCS"):
        DOC.write_text(expected, encoding="utf-8")
    current = DOC.read_text(encoding="utf-8") if DOC.exists() else ""
    assert current == expected, "docs/faults.md is stale: UPDATE_DOCS=1 pytest tests/test_faults.py"
