"""Bake a pruned matrix of answers (every choice value at least once) and check each bake
without running its pipeline: the exact file set, no Jinja left, a clean first commit,
DVC and Hydra set up, params.yaml composed from conf/, an importable, lint-clean package,
nothing left of a feature answered `no` (test_options.py: the other combinations)."""

from __future__ import annotations

import json
import re
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from conftest import MODELS, TEMPLATE, bake, git, package_of, run
from test_options import FEATURE_FILES, check_pruned, locks_as_uv_writes_them

MATRIX = [
    {},
    {
        "project_name": "Churn Model",
        "task": "regression",
        "python_version": "3.12",
        "license": "Apache-2.0",
        "ci": "gitlab",
        "use_pre_commit": "no",
        "metric": "r2",
        "dvc_remote_url": "webdavs://dav.example.com/remote.php/dav/files/me/churn",
        "serving": "no",
        "onnx": "no",
        "remote_sources": "no",
        "notebooks": "no",
    },
    {
        "project_name": "Fraud Signals",
        "python_version": "3.13",
        "license": "BSD-3-Clause",
        "ci": "none",
        "metric": "f1_macro",
        "dvc_remote_url": "s3://my-bucket/fraud",
        "onnx": "no",
        "remote_sources": "no",
    },
    {
        "project_name": "House Prices",
        "package_name": "house_core",
        "task": "regression",
        "license": "Proprietary",
        "author_name": "Ada Lovelace",
        "author_email": "ada@example.org",
        "dvc_remote_url": "/srv/dvc-storage/house",
        "serving": "no",
    },
]
DEFAULT_METRIC = {"classification": "neg_log_loss", "regression": "neg_root_mean_squared_error"}
# Written by `dvc init` / `dvc add data/raw` in the post-gen hook.
DVC_FILES = {".dvc/.gitignore", ".dvc/config", ".dvcignore", "data/.gitignore", "data/raw.dvc"}
LEFTOVER = re.compile(r"(?<!\$)\{\{|\{%|%\}")
# An action pinned to a commit, its release named in a comment (zizmor checks the pin).
PINNED = re.compile(r"[\w.-]+/[\w.-]+@[0-9a-f]{40} # v\d+\.\d+\.\d+")


def answers_of(extra: dict) -> dict:
    defaults = json.loads((TEMPLATE / "cookiecutter.json").read_text())
    merged = {k: v for k, v in defaults.items() if not k.startswith("_")} | extra
    for key, value in merged.items():
        if isinstance(value, list):
            merged[key] = extra.get(key, value[0])
    return merged


def expected_files(answers: dict, package: str) -> set[str]:
    """Template files, renamed and pruned by the answers, plus what the hook adds."""
    root = TEMPLATE / "{{cookiecutter.project_slug}}"
    files = {
        str(p.relative_to(root)).replace("{{cookiecutter.package_name}}", package)
        for p in root.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }
    classification_only = {"plots/lines_by_class.json", "plots/bars_by_class.json"} | {
        f"conf/model/{name}.yaml"
        for name in set(MODELS["classification"]) - set(MODELS["regression"])
    }
    # XGBoost's classifier on the target's own labels, and its test.
    classification_only |= {
        f"src/{package}/modeling/xgboost_labels.py",
        "tests/modeling/test_xgboost_labels.py",
    }
    regression_only = {"plots/scatter_with_diagonal.json", "plots/scatter_with_zero.json"} | {
        f"conf/model/{name}.yaml"
        for name in set(MODELS["regression"]) - set(MODELS["classification"])
    }
    pruned = regression_only if answers["task"] == "classification" else classification_only
    pruned |= {f for f in files if f.startswith(".github/")} if answers["ci"] != "github" else set()
    pruned |= {".gitlab-ci.yml"} if answers["ci"] != "gitlab" else set()
    pruned |= {".pre-commit-config.yaml"} if answers["use_pre_commit"] == "no" else set()
    for feature, names in FEATURE_FILES.items():
        if answers[feature] == "no":
            prefixes = tuple(name.replace("<pkg>", package) for name in names)
            pruned |= {f for f in files if f.startswith(prefixes)}
    # The raw batches are tracked by DVC (data/raw.dvc), not by git.
    raw = {f for f in files if f.startswith("data/raw/")}
    return (files - pruned - raw) | DVC_FILES | {"params.yaml", ".cruft.json"}


@pytest.fixture(scope="module", params=range(len(MATRIX)), ids=lambda i: f"bake{i}")
def baked(request, tmp_path_factory) -> tuple[Path, dict]:
    extra = MATRIX[request.param]
    project = bake(tmp_path_factory.mktemp(f"bake{request.param}"), **extra)
    return project, answers_of(extra)


def test_exact_file_set(baked):
    project, answers = baked
    tracked = set(git(project, "ls-files").splitlines())
    assert tracked == expected_files(answers, package_of(project))
    batches = sorted(p.name for p in (project / "data/raw").iterdir())
    assert batches == ["penguins_2007.csv", "penguins_2008.csv"]
    assert (project / "data/extra/penguins_2009.csv").stat().st_size > 4_000


def test_cruft_json_records_the_template_commit_and_answers(baked):
    project, answers = baked
    state = json.loads((project / ".cruft.json").read_text())
    assert state["template"] == git(TEMPLATE, "rev-parse", "--show-toplevel")
    assert state["commit"] == git(TEMPLATE, "rev-parse", "HEAD")
    recorded = state["context"]["cookiecutter"]
    given = {k: v for k, v in answers.items() if "{{" not in str(v)}  # not derived ones
    assert {k: recorded[k] for k in given} == given
    assert recorded["project_slug"] == project.name
    assert (recorded["_template"], recorded["_commit"]) == (state["template"], state["commit"])


def test_no_template_syntax_left(baked):
    project, _ = baked
    offenders = []
    for path in project.rglob("*"):
        if path.is_file() and not {".git", "cache", "tmp"} & set(path.relative_to(project).parts):
            text = path.read_text(encoding="utf-8", errors="replace")
            offenders += [
                f"{path.relative_to(project)}: {m.group()}" for m in LEFTOVER.finditer(text)
            ]
    assert offenders == []


def test_first_commit_is_clean_on_main(baked):
    project, answers = baked
    assert git(project, "branch", "--show-current") == "main"
    assert git(project, "rev-list", "--count", "HEAD") == "1"
    assert git(project, "status", "--porcelain") == ""
    # HOME has no git identity here: the hook set the author's, for later commits too.
    assert git(project, "config", "user.name") == answers["author_name"]
    assert git(project, "log", "-1", "--format=%ae") == answers["author_email"]


def test_dvc_hydra_and_remote(baked):
    project, answers = baked
    assert run(project, "dvc", "config", "hydra.enabled").stdout.strip() == "true"
    assert run(project, "dvc", "config", "core.remote").stdout.strip() == "storage"
    url = run(project, "dvc", "remote", "list").stdout.split()[1]
    wanted = answers["dvc_remote_url"].replace("{{ cookiecutter.project_slug }}", project.name)
    if "://" in wanted:
        assert url == wanted
    else:
        resolved = (project / ".dvc" / url).resolve() if not Path(url).is_absolute() else Path(url)
        assert resolved == (project / wanted).resolve()
        assert not resolved.is_relative_to(project)
    assert "path: raw" in (project / "data/raw.dvc").read_text()


def test_params_compose_from_conf_with_the_answers(baked):
    project, answers = baked
    run(project, "python", "-m", package_of(project), "params", "--check")
    params = yaml.safe_load((project / "params.yaml").read_text())
    assert params["task"] == answers["task"]
    metric = answers["metric"]
    assert params["metric"] == (DEFAULT_METRIC[answers["task"]] if metric == "default" else metric)
    assert set(params["select"]["candidates"]) == set(MODELS[answers["task"]])
    models = {p.stem for p in (project / "conf/model").glob("*.yaml")}
    # LightGBM and XGBoost are models to pick (-S model=...), not candidates: at 1e6 rows
    # select's halving kept its budget only without them (docs/pipeline.md "Models").
    assert models == {"auto", *MODELS[answers["task"]], "lightgbm", "xgboost"}
    assert params["model"] == {"name": "auto"}, "the default trains select's winner"
    target = "species" if answers["task"] == "classification" else "body_mass_g"
    assert params["data"]["target"] == target


def test_package_imports_and_lints(baked):
    project, answers = baked
    package = package_of(project)
    imports = f"import {package}.__main__, {package}.stages.export; print({package}.__version__)"
    assert run(project, "python", "-c", imports).stdout.strip() == "0.1.0"
    run(project, "ruff", "check", "src", "tests")
    pyproject = tomllib.loads((project / "pyproject.toml").read_text())
    # One floor for every answer (so one uv.lock); the answer is the Python uv installs.
    assert pyproject["project"]["requires-python"] == ">=3.11"
    assert (project / ".python-version").read_text() == f"{answers['python_version']}\n"
    assert pyproject["tool"]["realityloop"]["template_version"]
    for name in ("dvc.yaml", "params.yaml"):
        assert (project / name).read_text().strip()


def test_ci_files_pass_their_audit(baked):
    """The CI file of the answer, and no other: the GitHub workflow with no zizmor finding
    at any severity and valid against GitHub's schema, the GitLab file against GitLab's."""
    project, answers = baked
    workflow, gitlab = project / ".github/workflows/ci.yml", project / ".gitlab-ci.yml"
    assert workflow.exists() == (answers["ci"] == "github")
    assert gitlab.exists() == (answers["ci"] == "gitlab")
    assert not (project / ".github").exists() or answers["ci"] == "github"
    workflows = sorted(project.glob(".github/workflows/*.yml"))
    loop = project / ".github/workflows/loop.yml"
    assert loop.exists() == (answers["ci"] == "github" and answers["serving"] == "yes")
    for each in workflows:
        audit = run(project, "zizmor", "--offline", "--persona", "pedantic", str(each))
        assert "No findings" in audit.stdout + audit.stderr, audit.stdout
        run(project, "check-jsonschema", "--builtin-schema", "vendor.github-workflows", str(each))
        uses = re.findall(r"uses: (.+)", each.read_text())
        assert uses and [u for u in uses if not PINNED.fullmatch(u)] == []
    if loop.exists():
        check_loop_workflow(yaml.safe_load(loop.read_text()), package_of(project))
    if workflow.exists():
        steps = yaml.safe_load(workflow.read_text())["jobs"]["test"]["steps"]
        script = "\n".join(s.get("run", "") for s in steps)
        assert "uv sync --locked" in script
        assert "dvc metrics diff --md origin/main" in script
        assert '>> "$GITHUB_STEP_SUMMARY"' in script
    if gitlab.exists():
        check_gitlab(project, answers)


def check_gitlab(project: Path, answers: dict) -> None:
    """.gitlab-ci.yml valid against GitLab's schema; with serving, a loop job that only a
    pipeline schedule runs, and the check job only the others."""
    gitlab = project / ".gitlab-ci.yml"
    run(project, "check-jsonschema", "--builtin-schema", "vendor.gitlab-ci", str(gitlab))
    jobs = yaml.safe_load(gitlab.read_text())
    assert "uv sync --locked" in "\n".join(jobs["check"]["script"])
    assert ("loop" in jobs) == (answers["serving"] == "yes")
    if "loop" in jobs:
        assert jobs["loop"]["rules"] == [{"if": '$CI_PIPELINE_SOURCE == "schedule"'}]
        assert f"python -m {package_of(project)} loop" in jobs["loop"]["script"]
        assert jobs["check"]["rules"] == [{"if": '$CI_PIPELINE_SOURCE != "schedule"'}]


def test_gitlab_with_serving_runs_the_loop_on_pipeline_schedules_only(tmp_path):
    """The matrix's GitLab bake answers serving=no: this one has the loop job."""
    project = bake(tmp_path, ci="gitlab")
    check_gitlab(project, answers_of({"ci": "gitlab"}))


def check_loop_workflow(flow: dict, package: str) -> None:
    """The scheduled loop: a cron and a manual start, no permission by default and write
    only for the job that pushes, one turn at a time, the log's URL from a variable passed
    through the environment (no expression inside a script), the turn, then the push."""
    # PyYAML reads the key `on` as True (YAML 1.1).
    assert set(flow[True]) == {"schedule", "workflow_dispatch"} and flow[True]["schedule"]
    assert flow["permissions"] == {}
    assert flow["concurrency"]["cancel-in-progress"] is False
    (job,) = flow["jobs"].values()
    assert job["permissions"] == {"contents": "write"}
    steps = {step.get("name", step.get("uses")): step for step in job["steps"]}
    fetch = steps["Data, model and prediction log"]
    assert fetch["env"] == {"PREDICTION_LOG_URL": "${{ vars.PREDICTION_LOG_URL }}"}
    assert 'dvc get-url "$PREDICTION_LOG_URL" logs/predictions.jsonl' in fetch["run"]
    assert f"python -m {package} loop" in steps["Turn"]["run"]
    assert "--tags" in steps["Push the turn's commits and tags"]["run"]
    assert not any("${{" in step.get("run", "") for step in job["steps"])


def test_locks_agree_with_pyproject(baked, tmp_path):
    """uv.lock matches pyproject.toml, requirements.lock is its export (`make lock` writes
    both), and `uv sync --locked` (the README's install) gives a working environment."""
    project, _ = baked
    # This Python satisfies the floor whatever .python-version asks for: nothing to download.
    python = ("--python", sys.executable)
    run(project, "uv", "lock", "--check", *python, UV_PYTHON_DOWNLOADS="never")
    exported = tmp_path / "requirements.lock"
    command = (project / "requirements.lock").read_text().splitlines()[1].split()[1:]
    assert command[:2] == ["uv", "export"] and command[-2:] == [
        "--output-file",
        "requirements.lock",
    ]
    run(project, *command[:-1], str(exported))
    assert (
        exported.read_text().splitlines()[2:]
        == ((project / "requirements.lock").read_text().splitlines()[2:])
    )
    # What `uv lock` writes for this pyproject.toml: the hook's pruning left nothing to add.
    assert locks_as_uv_writes_them(project, tmp_path / "relocked")
    venv = tmp_path / "venv"
    run(
        project,
        "uv",
        "sync",
        "--locked",
        "--extra",
        "dev",
        *python,
        UV_PROJECT_ENVIRONMENT=str(venv),
    )
    run(project, str(venv / "bin/python"), "-m", package_of(project), "params", "--check")
    # The CLI loads with only the locked packages (none a `no` feature needed).
    run(project, str(venv / "bin/python"), "-m", package_of(project), "--help")


def test_a_feature_answered_no_leaves_nothing_behind(baked):
    project, answers = baked
    check_pruned(project, answers)


def test_existing_git_identity_is_left_alone(tmp_path):
    gitconfig = tmp_path / "gitconfig"
    gitconfig.write_text("[user]\n\tname = Existing Person\n\temail = existing@example.com\n")
    import os

    os.environ["GIT_CONFIG_GLOBAL"] = str(gitconfig)
    try:
        project = bake(tmp_path / "out")
    finally:
        del os.environ["GIT_CONFIG_GLOBAL"]
    assert run(project, "git", "config", "--local", "--get", "user.name", check=False).stdout == ""
    assert git(project, "log", "-1", "--format=%an") == "Existing Person"


@pytest.mark.slow
def test_pre_commit_hooks_pass_then_catch_what_they_guard(tmp_path):
    """The hooks install from PyPI alone, pass on a fresh bake, and refuse stale params,
    a large file, a secret and broken YAML, all in one run."""
    project = bake(tmp_path)
    done = run(project, "pre-commit", "run", "--all-files")
    assert re.search(r"dvc\.yaml deps list the modules each stage imports\.+Passed", done.stdout)
    assert re.search(r"zizmor audits the GitHub Actions workflow\.+Passed", done.stdout)
    assert re.search(r"DVC status\.+Passed", done.stdout)
    config = project / "conf/config.yaml"
    config.write_text(config.read_text().replace("seed: 42", "seed: 7"))
    big = project / "data/extra/big.parquet"
    big.write_bytes(bytes(600 * 1024))
    (project / "storage.yaml").write_text("aws_access_key_id: AKIAIOSFODNN7EXAMPLE\n")
    (project / "broken.yaml").write_text("stages: [train\n")
    git(project, "add", "-A")
    done = run(project, "pre-commit", "run", "--all-files", check=False)
    out = done.stdout + done.stderr
    assert done.returncode != 0
    assert "params.yaml is out of sync with conf/" in out
    assert re.search(r"data goes in DVC: `dvc add <file>`\)\.+Failed", out)
    assert "data/extra/big.parquet (600 KB) exceeds 500 KB" in out
    assert re.search(r"Secret Type: AWS Access Key\s+Location:\s+storage\.yaml:1", out)
    assert re.search(r"YAML files parse\.+Failed", out) and "broken.yaml" in out
    run(project, "python", "-m", package_of(project), "params")
    git(project, "rm", "-q", "--cached", "data/extra/big.parquet", "storage.yaml", "broken.yaml")
    for path in (big, project / "storage.yaml", project / "broken.yaml"):
        path.unlink()
    run(project, "pre-commit", "run", "--all-files")


@pytest.mark.slow
def test_pre_commit_refuses_an_import_whose_module_is_not_in_the_deps(tmp_path):
    """A stage that starts to import a module cannot be committed until dvc.yaml lists it."""
    project = bake(tmp_path)
    package = package_of(project)
    run(project, "pre-commit", "install")
    # DVC's hooks too: `dvc push` before a push, `dvc checkout` after a branch checkout.
    for hook in ("pre-push", "post-checkout"):
        assert f"--hook-type={hook}" in (project / ".git/hooks" / hook).read_text()
    stage = project / "src" / package / "stages" / "clean.py"
    stage.write_text(
        stage.read_text() + "\n\ndef gap_metric(task: str) -> str:\n"
        "    from ..quality.diagnosis import GAP_METRIC\n\n    return GAP_METRIC[task]\n"
    )
    git(project, "add", "-A")
    done = run(project, "git", "commit", "-m", "clean imports diagnosis", check=False)
    assert done.returncode != 0
    assert (
        f"dvc.yaml: stage clean imports src/{package}/quality/diagnosis.py, which its deps do not "
        "list: add it"
    ) in done.stdout + done.stderr
    assert git(project, "rev-list", "--count", "HEAD") == "1"
    # The hook's own fix: each stage's code deps in dvc.yaml rewritten to what it imports.
    fixed = run(project, "python", f"src/{package}/tools/dvc_deps.py", "--fix").stdout
    assert fixed.splitlines() == ["dvc.yaml: stage clean's code deps rewritten"]
    assert f"      - src/{package}/quality/diagnosis.py\n" in (project / "dvc.yaml").read_text()
    git(project, "add", "-A")
    git(project, "commit", "-qm", "clean imports diagnosis, listed in its deps")
