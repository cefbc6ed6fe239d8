"""The baked README's install, as written, in a fresh shell that has only Python, git and
make on PATH (PyPI reachable): it gives an environment with DVC, uv and the package, and
uv survives a later `uv sync` (the docs' `uv add` needs it)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import bake, package_of

INSTALL = re.compile(r"^## Install\n.*?```bash\n(.*?)```", re.S | re.M)


def install_commands(project: Path) -> str:
    """The first shell block of the README's Install section, as a reader copies it."""
    found = INSTALL.search((project / "README.md").read_text())
    assert found, "README.md has no ```bash block under ## Install"
    return found.group(1)


def bare_path(folder: Path) -> str:
    """A PATH folder holding only python3, git and make (the real programs, not shims)."""
    folder.mkdir()
    (folder / "python3").symlink_to(os.path.realpath(sys._base_executable))
    for tool in ("git", "make"):
        (folder / tool).symlink_to(shutil.which(tool))
    return str(folder)


def shell(project: Path, script: str, path: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in {"VIRTUAL_ENV", "PYTHONPATH"}}
    return subprocess.run(
        ["/bin/bash", "-e", "-c", script],
        cwd=project,
        env={**env, "PATH": path},
        capture_output=True,
        text=True,
    )


@pytest.mark.slow
def test_readme_install_works_with_only_python_git_and_make(tmp_path):
    project = bake(tmp_path / "out")
    path = bare_path(tmp_path / "bin")
    package = package_of(project)
    lock = (project / "uv.lock").read_text()
    uv_pin = re.search(r'name = "uv"\nversion = "([^"]+)"', lock).group(1)
    script = install_commands(project) + (
        f"dvc --version\nuv --version\npython -m {package} params --check\n"
        "uv sync --extra dev --quiet\n.venv/bin/uv --version\n"
    )
    done = shell(project, script, path)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert "3.67.1" in lines  # dvc --version: the pin of pyproject.toml
    # uv on PATH after the install, and still in .venv/ after a second `uv sync`.
    assert sum(line.startswith(f"uv {uv_pin} ") for line in lines) == 2, lines
    assert (project / ".venv" / "bin" / "dvc").is_file()
