"""Bad answers are refused with one clear line, and nothing is left on disk."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest
import template_package
from conftest import TEMPLATE
from cookiecutter.exceptions import FailedHookException
from cookiecutter.generate import generate_context, generate_files
from cookiecutter.prompt import prompt_for_config
from sklearn.metrics import get_scorer_names

BAD_ANSWERS = [
    ({"project_slug": "Bad_Slug"}, "project_slug 'Bad_Slug' is not a valid slug"),
    ({"project_slug": "trailing-"}, "project_slug 'trailing-' is not a valid slug"),
    ({"package_name": "class"}, "package_name 'class' is a Python keyword"),
    ({"package_name": "9lives"}, "package_name '9lives' is not an importable name"),
    ({"package_name": "my-pkg"}, "package_name 'my-pkg' is not an importable name"),
    ({"package_name": "pandas"}, "package_name 'pandas' would shadow"),
    ({"package_name": "json"}, "package_name 'json' would shadow"),
    ({"author_email": "nobody"}, "author_email 'nobody' is not an email address"),
    (
        {"task": "regression", "metric": "balanced_accuracy"},
        "metric 'balanced_accuracy' is not a regression scorer (it is a classification metric)",
    ),
    ({"metric": "accuracy_typo"}, "metric 'accuracy_typo' is not a classification scorer"),
    (
        {"metric": "roc_auc"},
        "metric 'roc_auc' needs a binary target and the built-in penguins' species has 3 "
        "classes: use 'default' or roc_auc_ovr, roc_auc_ovr_weighted, roc_auc_ovo",
    ),
    ({"metric": "f1"}, "use 'default' or f1_macro, f1_weighted, f1_micro"),
    ({"metric": "recall_samples"}, "metric 'recall_samples' needs a multilabel target"),
    ({"dvc_remote_url": "storage"}, "dvc_remote_url 'storage' is inside the project"),
    ({"dvc_remote_url": "ftp://host/x"}, "dvc_remote_url scheme 'ftp' is unknown"),
    ({"project_name": " ", "project_slug": "blank"}, "project_name is empty"),
]


def cli_bake(output: Path, answers: dict[str, str]) -> subprocess.CompletedProcess:
    pairs = [f"{key}={value}" for key, value in answers.items()]
    command = [sys.executable, "-m", "cookiecutter", "--no-input", str(TEMPLATE), "-o"]
    return subprocess.run(
        [*command, str(output), *pairs], capture_output=True, text=True, env=os.environ
    )


@pytest.mark.parametrize(("answers", "message"), BAD_ANSWERS, ids=lambda v: str(v)[:40])
def test_bad_answer_is_refused_with_its_line_alone_and_leaves_nothing(tmp_path, answers, message):
    """cookiecutter's whole output is the refusal: no traceback, no other line."""
    done = cli_bake(tmp_path, answers)
    assert done.returncode != 0
    lines = (done.stdout + done.stderr).splitlines()
    assert len(lines) == 1 and lines[0].startswith("ERROR: ") and message in lines[0], lines
    assert list(tmp_path.iterdir()) == []


def test_two_bad_answers_give_two_lines(tmp_path):
    done = cli_bake(tmp_path, {"author_email": "nobody", "dvc_remote_url": "storage"})
    assert done.returncode != 0
    assert [line.split(" ")[1] for line in (done.stdout + done.stderr).splitlines()] == [
        "author_email",
        "dvc_remote_url",
    ]


def test_the_hook_refuses_answers_that_skipped_the_prompt_check(tmp_path, capfd, monkeypatch):
    """A context that never went through the prompts (a replay file): the pre_gen hook
    runs the same checks, refuses, and leaves nothing."""
    monkeypatch.syspath_prepend(str(TEMPLATE))  # as cookiecutter does: _extensions' module
    context = generate_context(str(TEMPLATE / "cookiecutter.json"))
    answers = prompt_for_config(context, no_input=True)
    context["cookiecutter"] = {**answers, "author_email": "nobody"}
    with pytest.raises(FailedHookException):
        generate_files(str(TEMPLATE), context=context, output_dir=str(tmp_path))
    assert "ERROR: author_email 'nobody' is not an email address" in capfd.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_choice_outside_the_list_is_refused(tmp_path):
    done = cli_bake(tmp_path, {"task": "clustering"})
    assert done.returncode != 0
    assert "clustering" in done.stderr and "classification" in done.stderr
    assert list(tmp_path.iterdir()) == []


def _hook_value(name: str):
    """A constant of pre_gen_project.py (a literal or a comprehension of literals)."""
    source = (TEMPLATE / "hooks" / "pre_gen_project.py").read_text()
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == name:
            return eval(compile(ast.Expression(node.value), "hook", "eval"), {})  # noqa: S307
    raise AssertionError(f"{name} not found in pre_gen_project.py")


def _hook_metrics() -> dict[str, tuple[str, ...]]:
    return _hook_value("METRICS")


def test_hook_metric_rules_are_the_bakes():
    """The hook's copies of the bake's scorers.py (the hook runs before the bake exists)."""
    scorers = template_package.module("core/scorers")
    hook = _hook_metrics()
    assert {task: set(names) for task, names in hook.items()} == scorers.METRICS
    assert _hook_value("BINARY_ONLY") == scorers.BINARY_ONLY
    assert _hook_value("MULTILABEL_ONLY") == scorers.MULTILABEL_ONLY


# The baked project's own scorers (its business.py), valid for both tasks.
PROJECT_SCORERS = {"business_value"}


def test_hook_metric_lists_match_scikit_learn():
    """The hook cannot import scikit-learn; its copy of the scorer names must stay true."""
    metrics = _hook_metrics()
    classification = set(metrics["classification"]) - PROJECT_SCORERS
    regression = set(metrics["regression"]) - PROJECT_SCORERS
    assert classification | regression <= set(get_scorer_names())
    assert not classification & regression
    assert set(metrics["classification"]) & set(metrics["regression"]) >= PROJECT_SCORERS


@pytest.mark.parametrize("hook", ["pre_gen_project.py", "post_gen_project.py"])
def test_hooks_are_valid_python_before_rendering(hook):
    """Jinja sits inside strings, so the hook files stay lintable Python."""
    compile((TEMPLATE / "hooks" / hook).read_text(), hook, "exec")
