"""The questions cookiecutter asks: every yes/no question in one style."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from conftest import TEMPLATE

YES_NO = ["use_pre_commit", "serving", "onnx", "remote_sources", "notebooks"]


def test_every_yes_no_answer_is_a_yes_no_choice():
    """A JSON boolean would prompt `[y/n]` where the others list `1 - yes / 2 - no`."""
    context = json.loads((TEMPLATE / "cookiecutter.json").read_text())
    assert not [key for key, value in context.items() if isinstance(value, bool)]
    assert {key for key, value in context.items() if value == ["yes", "no"]} == set(YES_NO)


def test_the_interactive_bake_asks_yes_no_questions_alike(tmp_path):
    """Every default taken with Enter: each yes/no question lists `1 - yes`, `2 - no`."""
    done = subprocess.run(
        [sys.executable, "-m", "cookiecutter", str(TEMPLATE), "-o", str(tmp_path)],
        input="\n" * 40,
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "300"},
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "[y/n]" not in done.stdout
    prompts = json.loads((TEMPLATE / "cookiecutter.json").read_text())["__prompts__"]
    for key in YES_NO:
        after = done.stdout.split(prompts[key], 1)[1]
        assert after.split("Choose from", 1)[0].split() == ["1", "-", "yes", "2", "-", "no"]
    assert (tmp_path / "reality-loop-project" / ".pre-commit-config.yaml").is_file()
