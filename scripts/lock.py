"""Regenerate the baked project's uv.lock and requirements.lock (`make lock`; needs PyPI).

The template's pyproject.toml is Jinja, so uv cannot lock it where it stands: bake the
default answers into a temporary folder, lock there, export requirements.lock, and copy
both back. The bake's uv.lock (rendered from the template's) seeds uv's preferences, so
only what pyproject.toml changed moves; `--upgrade` moves everything to its newest version.
The one rendered value in uv.lock, the project's name, goes back as Jinja; the export
leaves the project out, so requirements.lock has no rendered value at all.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from cookiecutter.main import cookiecutter

TEMPLATE = Path(__file__).resolve().parents[1]
PROJECT = TEMPLATE / "{{cookiecutter.project_slug}}"
NAME_JINJA = 'name = "{{ cookiecutter.project_slug }}"'
# The command in requirements.lock's header: a baked project regenerates it the same way.
EXPORT = [
    "export",
    "--frozen",
    "--no-hashes",
    "--no-emit-project",
    "--no-annotate",
    "--extra",
    "dev",
    "--output-file",
    "requirements.lock",
]


def uv(project: Path, *args: str) -> None:
    """Run uv in `project`; never download a Python (`uv lock` is given this one)."""
    binary = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
    if binary is None:
        sys.exit("uv is not installed: make venv (or pip install uv), then make lock again")
    command = [binary, *args, "--quiet"]
    done = subprocess.run(command, cwd=project, env={**os.environ, "UV_PYTHON_DOWNLOADS": "never"})
    if done.returncode != 0:
        sys.exit(f"uv {' '.join(args)} failed in {project} (its message is above)")


def templated(lock: str, slug: str) -> str:
    """uv.lock with the baked project's name put back as Jinja; fails if it is not there once."""
    line = f'name = "{slug}"'
    if lock.count(f'"{slug}"') != 1 or lock.count(line) != 1:
        sys.exit(f"uv.lock: expected the project's name {slug!r} exactly once, as {line}")
    if "{{" in lock or "{%" in lock:
        sys.exit("uv.lock holds '{{' or '{%': cookiecutter would read it as Jinja")
    return lock.replace(line, NAME_JINJA)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--upgrade", action="store_true", help="newest version of every package")
    upgrade = parser.parse_args().upgrade
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(cookiecutter(str(TEMPLATE), no_input=True, output_dir=tmp))
        # This Python satisfies the floor in pyproject.toml whatever .python-version says.
        uv(project, "lock", "--python", sys.executable, *(["--upgrade"] if upgrade else []))
        uv(project, *EXPORT)
        lock = templated((project / "uv.lock").read_text(), project.name)
        (PROJECT / "uv.lock").write_text(lock)
        shutil.copyfile(project / "requirements.lock", PROJECT / "requirements.lock")
    print(f"wrote {PROJECT / 'uv.lock'} and {PROJECT / 'requirements.lock'}")


if __name__ == "__main__":
    main()
