"""Turn the rendered files into a working repository: git, DVC, data, first commit.

Runs inside the new project with the Python that runs cookiecutter, which has
DVC (and so Hydra) when installed as the README says. Each step says what it
does; a failing step stops with the step's name and the tool's own message.
"""

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

# Rendered by cookiecutter: valid Python before and after (JSON inside a raw string).
ANSWERS = json.loads(r"""{{ cookiecutter | tojson }}""")

# Files that only the other task uses: its model, and the plot templates of its charts.
OTHER_TASK_FILES = {
    "classification": [
        "conf/model/ridge.yaml",
        "plots/scatter_with_diagonal.json",
        "plots/scatter_with_zero.json",
    ],
    "regression": [
        "conf/model/logistic_regression.yaml",
        "plots/lines_by_class.json",
        "plots/bars_by_class.json",
    ],
}
CI_FILES = {"github": [".github"], "gitlab": [".gitlab-ci.yml"], "none": []}
ENV = {**os.environ, "DVC_NO_ANALYTICS": "1", "PYTHONUTF8": "1"}


class StepFailed(Exception):
    pass


def run(step: str, *command: str) -> str:
    try:
        done = subprocess.run(command, capture_output=True, text=True, env=ENV, check=False)
    except FileNotFoundError as exc:
        raise StepFailed(f"{step}: {exc.filename} is not installed") from None
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).strip().splitlines()
        raise StepFailed(f"{step}: {' '.join(command)} failed: {detail[-1] if detail else ''}")
    return done.stdout.strip()


def dvc(step: str, *args: str) -> str:
    return run(step, sys.executable, "-m", "dvc", *args)


def is_yes(value: object) -> bool:
    return str(value).strip().lower() in {"true", "yes", "y", "1"}


def prune_options() -> None:
    """Delete what the answers did not ask for; Jinja alone cannot skip whole files."""
    doomed = list(OTHER_TASK_FILES[ANSWERS["task"]])
    for ci, files in CI_FILES.items():
        if ci != ANSWERS["ci"]:
            doomed += files
    if not is_yes(ANSWERS["use_pre_commit"]):
        doomed.append(".pre-commit-config.yaml")
    for name in doomed:
        path = Path(name)
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


def compose_params() -> None:
    """params.yaml = conf/ composed, by the same module the project's own check uses."""
    sys.path.insert(0, str(Path("src", ANSWERS["package_name"]).resolve()))
    try:
        import config_sync
    except ImportError as exc:
        raise StepFailed(f"compose params.yaml: {exc}") from None
    try:
        config_sync.main([])
    except Exception as exc:
        raise StepFailed(f"compose params.yaml: {exc}") from None
    finally:
        sys.path.pop(0)


def init_git() -> None:
    run("git init", "git", "init", "--quiet", "--initial-branch=main")
    for key, answer in (("user.name", "author_name"), ("user.email", "author_email")):
        has = subprocess.run(["git", "config", key], capture_output=True, text=True, env=ENV)
        if has.returncode != 0 or not has.stdout.strip():
            # No identity configured: the author's lets this and later commits work.
            run("git identity", "git", "config", key, ANSWERS[answer])


def init_dvc() -> None:
    if importlib.util.find_spec("dvc") is None:
        raise StepFailed(
            f"dvc init: DVC is not installed for {sys.executable}: "
            "`pip install dvc==3.67.1` next to cookiecutter (or use `make demo`)"
        )
    dvc("dvc init", "init", "--quiet")
    dvc("dvc config", "config", "core.autostage", "true")
    dvc("dvc config", "config", "hydra.enabled", "true")
    # Vega inlined: `dvc plots show` renders offline (the default page loads it from a CDN).
    # DVC resolves this path from .dvc/.
    dvc("dvc config", "config", "plots.html_template", "../plots/offline_template.html")
    # A relative folder is stored relative to .dvc/, so project and storage can move together.
    dvc("dvc remote", "remote", "add", "--default", "storage", ANSWERS["dvc_remote_url"])
    dvc("dvc add", "add", "--quiet", "data/raw")


def first_commit() -> None:
    run("git add", "git", "add", "--all")
    message = f"Bake {ANSWERS['project_name']} from realityloop {ANSWERS['_template_version']}"
    run("git commit", "git", "commit", "--quiet", "--no-verify", "-m", message)


def main() -> int:
    try:
        prune_options()
        compose_params()
        init_git()
        init_dvc()
        first_commit()
    except StepFailed as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 1
    print(f"Baked {Path.cwd()}: next, `cd {Path.cwd().name}` and follow its README.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
