"""Refuse bad answers while cookiecutter reads them, with one line and no traceback.

cookiecutter.json's `__answers_checked` is rendered with the `checked_answers` filter
after the last question and before any file is written. A refusal raises
FailedHookException, which cookiecutter's command line prints as its bare message
(a failing pre_gen_project hook, by contrast, makes cookiecutter log a traceback).
cookiecutter and cruft put the template's folder on sys.path while they render, so
`_extensions` finds this module. The checks themselves are hooks/pre_gen_project.py's,
one copy: that hook still runs them for answers that skip this step (a replay file).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from cookiecutter.exceptions import FailedHookException
from jinja2.ext import Extension

HOOK = Path(__file__).resolve().parent / "hooks" / "pre_gen_project.py"


def _hook_module():
    spec = importlib.util.spec_from_file_location("realityloop_pre_gen_project", HOOK)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class AnswersRefused(FailedHookException):
    """The answers cannot make a working project; the message says which and how to fix."""


def checked_answers(answers: dict) -> str:
    """'yes' when the answers pass the pre_gen_project checks, else AnswersRefused."""
    found = _hook_module().problems(dict(answers))
    if found:
        raise AnswersRefused("\n".join(f"ERROR: {message}" for message in found))
    return "yes"


class CheckAnswers(Extension):
    def __init__(self, environment) -> None:
        super().__init__(environment)
        environment.filters["checked_answers"] = checked_answers
