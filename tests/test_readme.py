"""The template's README and Makefile say what is there: the tree of a default bake
lists paths a fresh bake has, and every top-level entry of it; `make help` lists every
target with its description; the quick start stays two commands."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from conftest import TEMPLATE, bake, git

README = TEMPLATE / "README.md"
# A tree line: the ancestors' columns ("│   " or "    "), the branch, the name.
TREE_LINE = re.compile(r"^((?:│   |    )*)(?:├── |└── )(\S+)")
TARGET = re.compile(r"^([a-z][a-z-]*):(?!=)")


def fenced_blocks(text: str) -> list[list[str]]:
    blocks, current = [], None
    for line in text.splitlines():
        if line.startswith("```"):
            if current is None:
                current = []
            else:
                blocks.append(current)
                current = None
        elif current is not None:
            current.append(line)
    return blocks


def tree_paths(lines: list[str]) -> list[str]:
    """Each node of a `tree`-style listing as a path under its root line."""
    paths, stack = [], []
    for line in lines[1:]:
        match = TREE_LINE.match(line)
        if not match:
            continue
        depth = len(match.group(1)) // 4
        stack[depth:] = [match.group(2).rstrip("/")]
        paths.append("/".join(stack))
    return paths


@pytest.fixture(scope="module")
def default_bake(tmp_path_factory) -> Path:
    return bake(tmp_path_factory.mktemp("readme"))


def test_the_tree_is_a_default_bakes(default_bake):
    (tree,) = [b for b in fenced_blocks(README.read_text()) if b[:1] == ["reality-loop-project/"]]
    paths = tree_paths(tree)
    assert len(paths) > 30
    assert [p for p in paths if not (default_bake / p).exists()] == []
    top = {p.split("/")[0] for p in paths}
    tracked = {f.split("/")[0] for f in git(default_bake, "ls-files").splitlines()}
    assert sorted(tracked - top) == []


def test_the_quick_start_is_two_commands():
    section = README.read_text().split("## Quick start", 1)[1].split("\n## ", 1)[0]
    commands = [line.split("#")[0].strip() for line in fenced_blocks(section)[0]]
    assert commands == ["make demo", "make test"]


def test_make_help_lists_every_target_with_its_description():
    makefile = (TEMPLATE / "Makefile").read_text()
    targets = [m.group(1) for line in makefile.splitlines() if (m := TARGET.match(line))]
    phony = re.search(r"^\.PHONY: (.+)$", makefile, re.M).group(1).split()
    assert sorted(phony) == sorted(targets)
    done = subprocess.run(["make", "-s", "help"], cwd=TEMPLATE, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    listed = {line.split()[0]: line.split(None, 1)[1] for line in done.stdout.splitlines()}
    assert sorted(listed) == sorted(targets)
    assert all(len(description) > 10 for description in listed.values())
