"""Bake a pruned matrix of answers (every choice value at least once) and check each bake
without running its pipeline: the exact file set, no Jinja left, a clean first commit,
DVC and Hydra set up, params.yaml composed from conf/, an importable, lint-clean package."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import pytest
import yaml
from conftest import TEMPLATE, bake, git, run

MATRIX = [
    {},
    {
        "project_name": "Churn Model",
        "task": "regression",
        "python_version": "3.12",
        "license": "Apache-2.0",
        "ci": "gitlab",
        "use_pre_commit": False,
        "metric": "r2",
    },
    {
        "project_name": "Fraud Signals",
        "python_version": "3.13",
        "license": "BSD-3-Clause",
        "ci": "none",
        "metric": "f1_macro",
        "dvc_remote_url": "s3://my-bucket/fraud",
    },
    {
        "project_name": "House Prices",
        "package_name": "house_core",
        "task": "regression",
        "license": "Proprietary",
        "author_name": "Ada Lovelace",
        "author_email": "ada@example.org",
        "dvc_remote_url": "/srv/dvc-storage/house",
    },
]
MODELS = {
    "classification": {"logistic_regression", "random_forest", "hist_gradient_boosting"},
    "regression": {"ridge", "random_forest", "hist_gradient_boosting"},
}
DEFAULT_METRIC = {"classification": "neg_log_loss", "regression": "neg_root_mean_squared_error"}
# Written by `dvc init` / `dvc add data/raw` in the post-gen hook.
DVC_FILES = {".dvc/.gitignore", ".dvc/config", ".dvcignore", "data/.gitignore", "data/raw.dvc"}
LEFTOVER = re.compile(r"(?<!\$)\{\{|\{%|%\}")


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
    classification_only = {
        "conf/model/logistic_regression.yaml",
        "plots/lines_by_class.json",
        "plots/bars_by_class.json",
    }
    regression_only = {
        "conf/model/ridge.yaml",
        "plots/scatter_with_diagonal.json",
        "plots/scatter_with_zero.json",
    }
    pruned = regression_only if answers["task"] == "classification" else classification_only
    pruned |= {f for f in files if f.startswith(".github/")} if answers["ci"] != "github" else set()
    pruned |= {".gitlab-ci.yml"} if answers["ci"] != "gitlab" else set()
    pruned |= {".pre-commit-config.yaml"} if answers["use_pre_commit"] is False else set()
    # The raw batches are tracked by DVC (data/raw.dvc), not by git.
    raw = {f for f in files if f.startswith("data/raw/")}
    return (files - pruned - raw) | DVC_FILES | {"params.yaml"}


@pytest.fixture(scope="module", params=range(len(MATRIX)), ids=lambda i: f"bake{i}")
def baked(request, tmp_path_factory) -> tuple[Path, dict]:
    extra = MATRIX[request.param]
    project = bake(tmp_path_factory.mktemp(f"bake{request.param}"), **extra)
    return project, answers_of(extra)


def package_of(project: Path) -> str:
    return json.loads((project / ".cookiecutter.json").read_text())["answers"]["package_name"]


def test_exact_file_set(baked):
    project, answers = baked
    tracked = set(git(project, "ls-files").splitlines())
    assert tracked == expected_files(answers, package_of(project))
    batches = sorted(p.name for p in (project / "data/raw").iterdir())
    assert batches == ["penguins_2007.csv", "penguins_2008.csv"]
    assert (project / "data/extra/penguins_2009.csv").stat().st_size > 4_000


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
    assert set(params["select"]["candidates"]) == MODELS[answers["task"]]
    assert {p.stem for p in (project / "conf/model").glob("*.yaml")} == MODELS[answers["task"]]
    target = "species" if answers["task"] == "classification" else "body_mass_g"
    assert params["data"]["target"] == target


def test_package_imports_and_lints(baked):
    project, answers = baked
    package = package_of(project)
    imports = f"import {package}.__main__, {package}.stages.export; print({package}.__version__)"
    assert run(project, "python", "-c", imports).stdout.strip() == "0.1.0"
    run(project, "ruff", "check", "src", "tests")
    pyproject = tomllib.loads((project / "pyproject.toml").read_text())
    assert pyproject["project"]["requires-python"] == f">={answers['python_version']}"
    assert pyproject["tool"]["realityloop"]["template_version"]
    for name in ("dvc.yaml", "params.yaml", ".cookiecutter.json"):
        assert (project / name).read_text().strip()


def test_hook_metric_lists_agree_with_the_package(baked):
    project, answers = baked
    package = package_of(project)
    code = (
        f"from {package} import models; import json; print(json.dumps("
        "[sorted(models.CLASSIFICATION_METRICS), sorted(models.REGRESSION_METRICS)]))"
    )
    classification, regression = json.loads(run(project, "python", "-c", code).stdout)
    from test_hooks import _hook_metrics

    hook = _hook_metrics()
    assert sorted(hook["classification"]) == classification
    assert sorted(hook["regression"]) == regression


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
def test_pre_commit_hooks_pass_then_catch_stale_params(tmp_path):
    """The hooks install from PyPI alone and guard params.yaml against conf/ edits."""
    project = bake(tmp_path)
    done = run(project, "pre-commit", "run", "--all-files")
    assert re.search(r"dvc\.yaml deps list the modules each stage imports\.+Passed", done.stdout)
    config = project / "conf/config.yaml"
    config.write_text(config.read_text().replace("seed: 42", "seed: 7"))
    done = run(project, "pre-commit", "run", "--all-files", check=False)
    assert done.returncode != 0
    assert "params.yaml is out of sync with conf/" in done.stdout + done.stderr
    run(project, "python", "-m", package_of(project), "params")
    run(project, "pre-commit", "run", "--all-files")


@pytest.mark.slow
def test_pre_commit_refuses_an_import_whose_module_is_not_in_the_deps(tmp_path):
    """A stage that starts to import a module cannot be committed until dvc.yaml lists it."""
    project = bake(tmp_path)
    package = package_of(project)
    run(project, "pre-commit", "install")
    stage = project / "src" / package / "stages" / "clean.py"
    stage.write_text(
        stage.read_text() + "\n\ndef gap_metric(task: str) -> str:\n"
        "    from ..diagnosis import GAP_METRIC\n\n    return GAP_METRIC[task]\n"
    )
    git(project, "add", "-A")
    done = run(project, "git", "commit", "-m", "clean imports diagnosis", check=False)
    assert done.returncode != 0
    assert (
        f"dvc.yaml: stage clean imports src/{package}/diagnosis.py, which its deps do not "
        "list: add it"
    ) in done.stdout + done.stderr
    assert git(project, "rev-list", "--count", "HEAD") == "1"
    dvc_yaml = project / "dvc.yaml"
    listed = f"      - src/{package}/stages/clean.py\n"
    dvc_yaml.write_text(
        dvc_yaml.read_text().replace(listed, f"{listed}      - src/{package}/diagnosis.py\n")
    )
    git(project, "add", "-A")
    git(project, "commit", "-qm", "clean imports diagnosis, listed in its deps")
