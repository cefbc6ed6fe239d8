"""A bake records its template and commit (.cruft.json), so `cruft update` brings a later
template commit into it without touching the user's own edits.

The template is copied into a throwaway git repository, as a user's clone would be, so
the test can commit changes to it.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from conftest import TEMPLATE, bake, git, package_of, run

SLUG = "{{cookiecutter.project_slug}}"


def commit_all(repo: Path, message: str) -> str:
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=Template", "-c", "user.email=t@ex.com", "commit", "-qm", message)
    return git(repo, "rev-parse", "HEAD")


def copy_template(folder: Path) -> Path:
    """The template's files as checked out, edits included, without its git history."""
    listed = git(TEMPLATE, "ls-files", "--cached", "--others", "--exclude-standard", "-z")
    for name in filter(None, listed.split("\0")):
        if (TEMPLATE / name).is_file():
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(TEMPLATE / name, folder / name)
    return folder


@pytest.fixture(scope="module")
def template_repo(tmp_path_factory) -> tuple[Path, str]:
    """The template in a repository of its own, as a user's clone would be."""
    repo = copy_template(tmp_path_factory.mktemp("template") / "realityloop")
    git(repo, "init", "-q", "--initial-branch=main")
    return repo, commit_all(repo, "The template")


def cruft_state(project: Path) -> dict:
    return json.loads((project / ".cruft.json").read_text())


@pytest.mark.slow
def test_cruft_update_brings_a_template_change_and_keeps_the_users_edits(template_repo, tmp_path):
    repo, first = template_repo
    project = bake(tmp_path / "out", repo, project_name="Churn Model", task="regression")
    package = package_of(project)
    state = cruft_state(project)
    assert (state["template"], state["commit"], state["directory"]) == (str(repo), first, None)
    assert state["context"]["cookiecutter"]["task"] == "regression"
    assert git(project, "ls-files", ".cruft.json") == ".cruft.json"
    assert "up to date" in run(project, "cruft", "check").stdout

    # The user's own work: a model config of theirs and a README paragraph.
    mine = "# @package model\nname: ridge\nparams:\n  alpha: 3.0\n"
    (project / "conf/model/mine.yaml").write_text(mine)
    readme = project / "README.md"
    readme.write_text(readme.read_text() + "\n## Our notes\n\nAsk Ada before retraining.\n")
    git(project, "add", "-A")
    git(project, "commit", "-qm", "Our model config and notes")

    # The template improves: a line in a module, a new module, the README, a conf default.
    module = repo / SLUG / "src/{{cookiecutter.package_name}}/core/paths.py"
    first_line = module.read_text().splitlines()[0]
    module.write_text(module.read_text().replace(first_line, f"{first_line}\n# Improved.", 1))
    (module.parent / "lineage.py").write_text('"""Where each output came from."""\n')
    template_readme = repo / SLUG / "README.md"
    template_readme.write_text(
        template_readme.read_text().replace(
            "## Tests\n", "## Tests\n\nThe template's newest advice.\n", 1
        )
    )
    conf = repo / SLUG / "conf/config.yaml"
    conf.write_text(conf.read_text().replace("seed: 42", "seed: 43", 1))
    second = commit_all(repo, "Improve the template")

    done = run(project, "cruft", "check", check=False)
    assert done.returncode == 1 and "out of date" in done.stdout

    run(project, "cruft", "update", "--skip-apply-ask")
    source = project / "src" / package
    assert "\n# Improved.\n" in (source / "core" / "paths.py").read_text()
    assert (source / "core" / "lineage.py").read_text() == '"""Where each output came from."""\n'
    assert (project / "conf/model/mine.yaml").read_text() == mine
    merged = readme.read_text()
    assert "The template's newest advice." in merged
    assert merged.endswith("## Our notes\n\nAsk Ada before retraining.\n")
    # params.yaml is conf/ composed: the diff carries the new default into both.
    assert yaml.safe_load((project / "params.yaml").read_text())["seed"] == 43
    run(project, "python", "-m", package, "params", "--check")
    assert cruft_state(project)["commit"] == second
    assert not list(project.rglob("*.rej"))
    git(project, "add", "-A")
    git(project, "commit", "-qm", "Template update")
    assert "up to date" in run(project, "cruft", "check").stdout

    # What the project has that the template does not: the user's README paragraph.
    diff = run(project, "cruft", "diff").stdout
    assert "-Ask Ada before retraining." in diff
    assert "+The template's newest advice." not in diff


@pytest.mark.slow
def test_cruft_create_bakes_the_same_record_and_a_clean_first_commit(template_repo, tmp_path):
    """`cruft create` writes .cruft.json after the hook's first commit; the hook wrote the
    same bytes before it, so the new project starts clean."""
    repo, _ = template_repo
    commit = git(repo, "rev-parse", "HEAD")  # the other test may have moved it on
    (tmp_path / "cruft").mkdir()
    run(tmp_path, "cruft", "create", "--no-input", "--output-dir", "cruft", str(repo))
    by_cruft = tmp_path / "cruft/reality-loop-project"
    assert git(by_cruft, "status", "--porcelain") == ""
    assert git(by_cruft, "ls-files", ".cruft.json") == ".cruft.json"
    by_cookiecutter = bake(tmp_path / "cookiecutter", repo)
    record = (by_cookiecutter / ".cruft.json").read_text()
    assert (by_cruft / ".cruft.json").read_text() == record
    assert json.loads(record)["commit"] == commit


def test_a_template_that_is_not_a_git_checkout_gets_no_record_and_says_so(tmp_path, capfd):
    """No commit to update from: no .cruft.json (none invented), a note, a clean bake."""
    template = copy_template(tmp_path / "unpacked")
    project = bake(tmp_path / "out", template)
    assert "NOTE: no .cruft.json: the template" in capfd.readouterr().err
    assert not (project / ".cruft.json").exists()
    assert git(project, "status", "--porcelain") == ""
