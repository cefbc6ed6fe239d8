"""Baking helpers shared by the template's tests.

Every test runs with a throwaway HOME (no git identity, no cookiecutter replay
files in the real home) and with the venv's tools first on PATH, as a user who
followed the README would.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from cookiecutter.main import cookiecutter

TEMPLATE = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
STAGES = ["ingest", "clean", "annotate", "preprocess", "select", "train", "evaluate", "export"]


@pytest.fixture(scope="session", autouse=True)
def isolated_env(tmp_path_factory: pytest.TempPathFactory) -> None:
    home = tmp_path_factory.mktemp("home")
    (home / ".cookiecutterrc").write_text(
        f"replay_dir: {home / 'replay'}\ncookiecutters_dir: {home / 'cookiecutters'}\n"
    )
    os.environ.update(
        HOME=str(home),
        GIT_CONFIG_NOSYSTEM="1",
        DVC_NO_ANALYTICS="1",
        PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}",
    )
    os.environ.pop("GIT_CONFIG_GLOBAL", None)
    os.environ.pop("PYTHONPATH", None)


def bake(output_dir: Path, template: Path = TEMPLATE, **answers: str) -> Path:
    """Bake the template with default answers except `answers`; return the project folder."""
    output_dir.mkdir(parents=True, exist_ok=True)
    project = cookiecutter(
        str(template),
        no_input=True,
        extra_context=answers,
        output_dir=str(output_dir),
        config_file=str(Path(os.environ["HOME"]) / ".cookiecutterrc"),
    )
    return Path(project)


def package_of(project: Path) -> str:
    """The bake's package name, from its record of the answers (.cruft.json)."""
    answers = json.loads((project / ".cruft.json").read_text())["context"]["cookiecutter"]
    return answers["package_name"]


def run(cwd: Path, *command: str, check: bool = True, **env: str) -> subprocess.CompletedProcess:
    """Run a command in a baked project, its src/ importable as after `pip install -e .`."""
    environment = {**os.environ, "PYTHONPATH": str(cwd / "src"), **env}
    done = subprocess.run(command, cwd=cwd, env=environment, capture_output=True, text=True)
    if check and done.returncode != 0:
        raise AssertionError(
            f"{' '.join(command)} exited {done.returncode}\n"
            f"--- stdout\n{done.stdout[-4000:]}\n--- stderr\n{done.stderr[-4000:]}"
        )
    return done


def git(cwd: Path, *args: str) -> str:
    return run(cwd, "git", *args).stdout.strip()


def ran(log: str, stages: list[str] = STAGES) -> list[str]:
    """The stages a `dvc repro` / `dvc exp run` log says it ran, in pipeline order."""
    return [s for s in stages if f"Running stage '{s}'" in log]


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def locked_model_md5(lock_text: str) -> str:
    """The md5 that a dvc.lock records for the exported model."""
    outs = yaml.safe_load(lock_text)["stages"]["export"]["outs"]
    return next(o["md5"] for o in outs if o["path"] == "models/model.skops")
