"""docs/data-sources.md's own-data steps, run as written in a bake (test_walkthrough's
way: each bash block through bash -euo pipefail), with `git status` checked after each
step against what the page says: an experiment must not leave the new data untracked."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import test_walkthrough
from conftest import bake, git, run

pytestmark = pytest.mark.slow

# What `dvc exp run` may leave modified in the workspace, as the page says.
RESULTS = re.compile(r"^ M (params\.yaml|dvc\.lock|models/\S+|reports/\S+)$")


def blocks(page: str, title: str) -> list[str]:
    return dict(test_walkthrough.turns(page))[title]


def status(root: Path) -> list[str]:
    return run(root, "git", "status", "--porcelain").stdout.splitlines()


def step(root: Path, block: str) -> list[str]:
    run(root, "bash", "-euo", "pipefail", "-c", block)
    return status(root)


def results_only(lines: list[str]) -> bool:
    return bool(lines) and all(RESULTS.match(line) for line in lines)


def test_bring_your_own_data_then_experiments_keep_git_status_as_the_page_says(tmp_path):
    root = bake(tmp_path / "out")
    readme = (root / "README.md").read_text()
    first_run = next(b for b in re.findall(r"```bash\n(.*?)```", readme, re.S) if "git add" in b)
    assert step(root, first_run) == []  # "commit what it wrote"

    page = (root / "docs/data-sources.md").read_text()
    add, try_it, own_config = blocks(page, "Bring your own data")
    batch = tmp_path / "batch-2026-01.csv"
    # A batch as pandas or a spreadsheet exports it: a missing value is an empty cell (the
    # shipped penguins write NA, which their conf/data/penguins.yaml lists as missing).
    raw = (root / "data/raw/penguins_2007.csv").read_text()
    batch.write_text(re.sub(r"(?<=,)NA(?=,|$)", "", raw, flags=re.M))
    assert step(root, add.replace("/path/to/batch-2026-01.csv", str(batch))) == []
    assert git(root, "ls-files", "data/mine.dvc") == "data/mine.dvc"

    after = step(root, try_it.replace("your_target_column", "species"))
    assert results_only(after), after
    assert git(root, "ls-files", "data/mine.dvc") == "data/mine.dvc"

    config = (root / "conf/data/custom.yaml").read_text()
    config = config.replace("source: ???", "source: data/mine")
    # The batch "Collect more data" adds below writes a missing value as NA, as the
    # penguins do: this data's config says so.
    config = config.replace("missing_values: []", "missing_values: [NA]")
    (root / "conf/data/mine.yaml").write_text(config.replace("target: ???", "target: species"))
    after = step(root, own_config)
    assert results_only(after), after
    assert git(root, "ls-files", "data/mine.dvc", "conf/data/mine.yaml").split() == [
        "conf/data/mine.yaml",
        "data/mine.dvc",
    ]

    run(root, "git", "add", "-A")
    run(root, "git", "commit", "-qm", "Keep the experiment")  # "git add -A && git commit"
    (more,) = blocks(page, "Collect more data")
    assert step(root, more) == []
