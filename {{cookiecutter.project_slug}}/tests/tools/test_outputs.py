"""tools/outputs.py, what the notebooks read with: the workspace's file or a revision's, in
git or in DVC's cache; and the notebooks themselves, as committed: a `rev` parameter, no
outputs, every file named through core/paths.py. (The template's tests run them.)"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from {{ cookiecutter.package_name }}.core import paths
from {{ cookiecutter.package_name }}.core.errors import DataError
from {{ cookiecutter.package_name }}.tools import outputs

from conftest import PROJECT

NOTEBOOKS = sorted((PROJECT / "notebooks").glob("*.ipynb"))


def sh(cwd: Path, *command: str) -> None:
    env = {**os.environ, "DVC_NO_ANALYTICS": "1", "GIT_AUTHOR_NAME": "t", "GIT_COMMITTER_NAME": "t"}
    env |= {"GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_EMAIL": "t@example.com"}
    subprocess.run(command, cwd=cwd, env=env, check=True, capture_output=True)


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    """Two commits: v1 and then HEAD, each with its own headline (in git) and test split
    (in DVC's cache), and a workspace that changed both again."""
    root = tmp_path_factory.mktemp("repo")
    sh(root, "git", "init", "-q")
    sh(root, sys.executable, "-m", "dvc", "init", "-q")
    (root / "dvc.yaml").write_text("stages: {}\n")
    for number in (1, 2, 3):
        paths_in(root, paths.HEADLINE).write_text(json.dumps({"headline": number}))
        paths_in(root, paths.TEST).write_text(f"split {number}\n")
        if number < 3:
            sh(root, sys.executable, "-m", "dvc", "add", "-q", str(paths.TEST))
            sh(root, "git", "add", "-A")
            sh(root, "git", "commit", "-qm", f"run {number}")
            sh(root, "git", "tag", f"v{number}")
    return root


def paths_in(root: Path, path: Path) -> Path:
    (root / path).parent.mkdir(parents=True, exist_ok=True)
    return root / path


def test_a_notebook_in_a_subfolder_finds_the_project(repo, monkeypatch):
    (repo / "notebooks").mkdir(exist_ok=True)
    monkeypatch.chdir(repo / "notebooks")
    assert outputs.enter_project() == repo.resolve()
    assert Path.cwd() == repo.resolve()


def test_outside_a_project_the_error_says_where_to_open_it(tmp_path):
    with pytest.raises(DataError, match="no dvc.yaml in .* or above: open the notebook inside"):
        outputs.project_root(tmp_path)


def test_the_workspace_or_a_revision_from_git_or_dvc(repo, monkeypatch):
    monkeypatch.chdir(repo)
    assert outputs.read_json(paths.HEADLINE) == {"headline": 3}
    assert outputs.read_json(paths.HEADLINE, "v1") == {"headline": 1}
    assert outputs.read_json(paths.HEADLINE, "HEAD") == {"headline": 2}
    # A DVC-tracked file: git holds its .dvc file, the bytes come from DVC's cache.
    assert outputs.read_bytes(paths.TEST, "v1") == b"split 1\n"
    assert outputs.read_bytes(paths.TEST) == b"split 3\n"


@pytest.mark.parametrize(
    ("path", "rev", "says"),
    [
        (paths.HEADLINE, "v9", r"reports/evaluate/headline.json at revision 'v9' cannot be read "
         r"\(unknown Git revision 'v9'\): check the revision"),
        (paths.LABEL_ISSUES, "v1", r"reports/label_issues.csv at revision 'v1' cannot be read"),
        (paths.LABEL_ISSUES, None, r"reports/label_issues.csv does not exist: run `dvc repro`"),
    ],
)  # fmt: skip
def test_a_missing_output_or_revision_is_one_line(repo, monkeypatch, path, rev, says):
    monkeypatch.chdir(repo)
    with pytest.raises(DataError, match=says) as caught:
        outputs.read_bytes(path, rev)
    assert "\n" not in str(caught.value)


def test_the_project_ships_notebooks():
    assert [p.name for p in NOTEBOOKS] == ["1.0-explore-data.ipynb", "2.0-pipeline-results.ipynb"]


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_a_notebook_is_committed_without_outputs_and_takes_a_revision(notebook):
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    code = [c for c in cells if c["cell_type"] == "code"]
    assert all(c["outputs"] == [] and c["execution_count"] is None for c in code)
    parameters = [c for c in code if "parameters" in c["metadata"].get("tags", [])]
    assert len(parameters) == 1, "one cell tagged `parameters` (papermill's convention)"
    assert "\nrev = None" in "\n" + "".join(parameters[0]["source"])


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_a_notebook_names_files_through_paths_never_by_their_path(notebook):
    """A literal path would read the workspace's file whatever `rev` says, and go stale
    when paths.py moves it."""
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    source = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
    literals = [
        node.value
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    ]
    assert [s for s in literals if "/" in s or s.endswith((".json", ".csv", ".parquet"))] == []
    assert "outputs.enter_project()" in source
