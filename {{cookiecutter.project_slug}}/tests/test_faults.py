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

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

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

# --- Data: batches added to the data folder -------------------------------------------
DATA: list[Fault] = []

# --- Files that belong together: the exported model's identity ------------------------
IDENTITY: list[Fault] = []

# --- The prediction log ----------------------------------------------------------------
LOG: list[Fault] = []


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
    "Data: batches added to the data folder": DATA,
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
