"""The command line: `params` writes and checks params.yaml; user errors are one line, exit 1;
command line mistakes one line, exit 2; Ctrl-C one line, exit 130, nothing half written;
compute.engine picks the module that runs a data stage, here and nowhere else."""

from __future__ import annotations

import dataclasses
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from {{ cookiecutter.package_name }}.__main__ import COMMANDS, DASK_STAGES, main, stage_module
from {{ cookiecutter.package_name }}.core import params
from {{ cookiecutter.package_name }}.stages import STAGES
from {{ cookiecutter.package_name }}.tools import dvc_deps

PACKAGE = dvc_deps.PACKAGE.name


@pytest.fixture
def conf_copy(project, tmp_path, monkeypatch):
    shutil.copytree(project / "conf", tmp_path / "conf")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_params_writes_then_checks_params_yaml(project, conf_copy, capsys):
    assert main(["params", "--check"]) == 1, "no params.yaml yet"
    assert main(["params"]) == 0
    written = (conf_copy / "params.yaml").read_text(encoding="utf-8")
    assert written == (project / "params.yaml").read_text(encoding="utf-8")
    assert main(["params", "--check"]) == 0

    config = conf_copy / "conf" / "config.yaml"
    config.write_text(
        config.read_text(encoding="utf-8").replace("seed: 42", "seed: 43"), encoding="utf-8"
    )
    assert main(["params", "--check"]) == 1
    assert "params.yaml is out of sync with conf/" in capsys.readouterr().err
    assert main(["params"]) == 0
    assert yaml.safe_load((conf_copy / "params.yaml").read_text(encoding="utf-8"))["seed"] == 43


def test_params_takes_overrides(conf_copy):
    assert main(["params", "model=random_forest", "seed=5"]) == 0
    written = yaml.safe_load((conf_copy / "params.yaml").read_text(encoding="utf-8"))
    assert written["model"]["name"] == "random_forest"
    assert written["seed"] == 5


def test_a_user_error_is_one_line_and_exit_status_1(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["ingest"]) == 1
    err = capsys.readouterr().err
    *progress, error = err.splitlines()
    assert error.startswith("error: params.yaml not found: run `python -m")
    assert [line.split()[1:] for line in progress] == [["ingest", "start"]]
    assert "Traceback" not in err


def test_an_unknown_command_is_refused(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["teach"])
    assert exit_.value.code == 2
    assert "invalid choice: 'teach'" in capsys.readouterr().err


def test_the_engine_picks_the_stage_module_only_for_stages_with_a_dask_twin():
    assert sorted(DASK_STAGES) == ["annotate", "clean", "ingest", "preprocess"]
    for name in STAGES:
        assert stage_module(name, "local").__name__ == f"{{ cookiecutter.package_name }}.stages.{name}"
        twin = "dask_engine" if name in DASK_STAGES else "stages"
        assert stage_module(name, "dask").__name__ == f"{{ cookiecutter.package_name }}.{twin}.{name}"


@pytest.mark.parametrize("engine", ["local", "dask"])
def test_a_stage_command_runs_the_main_of_the_configured_engine(engine, make_params, monkeypatch):
    configured = make_params({"compute.engine": engine})
    monkeypatch.setattr(params, "load", lambda: configured)
    ran = []
    for module in (stage_module("clean", "local"), stage_module("clean", "dask")):
        monkeypatch.setattr(module, "main", lambda module=module: ran.append(module.__name__))
    assert main(["clean"]) == 0
    folder = "dask_engine" if engine == "dask" else "stages"
    assert ran == [f"{{ cookiecutter.package_name }}.{folder}.clean"]


def package_copy_with(tmp_path, module: str, code: str):
    """The package under tmp_path/src with stages/<module>.py holding `code`; a runner of
    `python -m <package> ...` on that copy, from tmp_path."""
    package = Path(main.__code__.co_filename).parent
    copy = tmp_path / "src" / package.name
    shutil.copytree(package, copy, ignore=shutil.ignore_patterns("__pycache__"))
    (copy / "stages" / f"{module}.py").write_text(code)
    environment = {**os.environ, "PYTHONPATH": str(tmp_path / "src")}

    def run(*args: str) -> subprocess.CompletedProcess:
        command = [sys.executable, "-m", package.name, *args]
        return subprocess.run(
            command, cwd=tmp_path, env=environment, capture_output=True, text=True
        )

    return run


def test_any_module_of_stages_is_a_command_that_runs_its_main(tmp_path):
    code = "from pathlib import Path\n\n\ndef main():\n    Path('hello.txt').write_text('hi')\n"
    run = package_copy_with(tmp_path, "hello", code)
    assert "run the hello stage" in run("--help").stdout
    done = run("hello")
    assert (done.returncode, (tmp_path / "hello.txt").read_text()) == (0, "hi"), done.stderr


def test_a_stage_module_without_main_is_one_line_naming_the_fix(tmp_path):
    done = package_copy_with(tmp_path, "hello", "X = 1\n")("hello")
    assert done.returncode == 1
    assert done.stderr.strip().endswith("has no main(): add `def main() -> None:`"), done.stderr
    assert "Traceback" not in done.stderr


# A stage that rewrites out.bin (5 MB, atomically, core/io.py) until it is stopped.
REWRITING = """\
from pathlib import Path

from ..core import io


def main():
    Path("started").write_text("")
    while True:
        io.write_bytes(Path("out.bin"), b"x" * 5_000_000)
"""


def interrupt_stage(tmp_path: Path) -> subprocess.CompletedProcess:
    """`python -m <package> rewrite` (REWRITING) in a child process, sent SIGINT (Ctrl-C
    sends it to the terminal's process group) while it writes."""
    package_copy_with(tmp_path, "rewrite", REWRITING)
    environment = {**os.environ, "PYTHONPATH": str(tmp_path / "src")}
    command = [sys.executable, "-m", PACKAGE, "rewrite"]
    child = subprocess.Popen(
        command, cwd=tmp_path, env=environment, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while not (tmp_path / "started").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)  # some writes done, one under way
    os.killpg(child.pid, signal.SIGINT)
    _, err = child.communicate(timeout=60)
    return subprocess.CompletedProcess(command, child.returncode, "", err)


def test_ctrl_c_is_one_line_exit_130_and_leaves_no_half_written_file(tmp_path):
    done = interrupt_stage(tmp_path)
    assert done.returncode == 130, done.stderr
    assert "Traceback" not in done.stderr
    *_, last = done.stderr.splitlines()
    assert last == "interrupted: rewrite stopped; outputs it had not finished were not written"
    assert (tmp_path / "out.bin").stat().st_size == 5_000_000
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_ctrl_c_in_any_command_is_the_one_line(name, monkeypatch, capsys):
    def interrupted(args):
        """Ctrl-C while it runs"""
        raise KeyboardInterrupt

    monkeypatch.setitem(COMMANDS, name, dataclasses.replace(COMMANDS[name], run=interrupted))
    given = {"add-batch": ["add-batch", "x.csv"], "feedback": ["feedback", "x.csv"]}
    argv = given.get(name, [name])
    assert main(argv) == 130
    err = capsys.readouterr().err
    assert err.startswith(f"interrupted: {name} stopped; ") and err.count("\n") == 1


def test_a_command_line_mistake_is_one_line_exit_2(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["train", "--bogus"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err == f"error: python -m {PACKAGE}: unrecognized arguments: --bogus; see --help\n"


def test_run_follows_dvc_yaml_and_takes_your_stage_where_it_stands(project, tmp_path):
    """`run` runs dvc.yaml's stages in its order: the built-in ones, then an appended one."""
    shutil.copy(project / "dvc.yaml", tmp_path / "dvc.yaml")
    with (tmp_path / "dvc.yaml").open("a", encoding="utf-8") as handle:
        handle.write(f"\n  summarize:\n    cmd: PYTHONPATH=src python -m {PACKAGE} summarize\n")
#% if cookiecutter.remote_sources == "yes"
    assert dvc_deps.pipeline(tmp_path) == ["fetch", *STAGES, "summarize"]
#% else
    assert dvc_deps.pipeline(tmp_path) == [*STAGES, "summarize"]
#% endif
