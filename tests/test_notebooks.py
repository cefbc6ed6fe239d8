"""A notebook's outputs never reach git: with pre-commit, its nbstripout hook strips them
from a commit; without, the filter the bake's notebooks/README.md installs does. (The
notebooks themselves run in test_pipeline.py, on the outputs of `dvc repro`.)"""

from __future__ import annotations

import itertools
import json
import os
import re
import subprocess

import pytest
from conftest import BIN, bake, docs_harness, git, run

pytestmark = pytest.mark.slow
NOTEBOOK = "notebooks/2.0-pipeline-results.ipynb"
ADDED = "issues.tail(3)"


def with_outputs(path) -> None:
    """The notebook as a run leaves it after its user added a cell: counts, a printed
    line, a displayed table."""
    nb = json.loads(path.read_text())
    nb["cells"].append({"cell_type": "code", "metadata": {}, "source": [ADDED]})
    for count, cell in enumerate(c for c in nb["cells"] if c["cell_type"] == "code"):
        cell["execution_count"] = count + 1
        cell["outputs"] = [
            {"name": "stdout", "output_type": "stream", "text": ["a customer's row\n"]},
            {
                "data": {"text/plain": ["species  Adelie"]},
                "execution_count": count + 1,
                "metadata": {},
                "output_type": "execute_result",
            },
        ]
    path.write_text(json.dumps(nb, indent=1) + "\n")


def committed_outputs(project, name: str = NOTEBOOK) -> list:
    nb = json.loads(git(project, "show", f"HEAD:{name}"))
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert code and any("parameters" in c["metadata"].get("tags", []) for c in code)
    assert "".join(code[-1]["source"]) == ADDED, "the new cell is committed"
    return [
        (c["execution_count"], c["outputs"]) for c in code if c["outputs"] or c["execution_count"]
    ]


def test_the_pre_commit_hook_strips_a_notebooks_outputs(tmp_path):
    project = bake(tmp_path)
    run(project, "pre-commit", "install")
    with_outputs(project / NOTEBOOK)
    git(project, "add", NOTEBOOK)
    done = run(project, "git", "commit", "-m", "A notebook run", check=False)
    assert done.returncode != 0
    out = done.stdout + done.stderr
    assert re.search(r"notebooks without outputs \(nbstripout\)\.+Failed", out), out[-3000:]
    assert "a customer's row" not in (project / NOTEBOOK).read_text()
    # As for ruff's fixes: add the stripped notebook and commit again.
    git(project, "add", NOTEBOOK)
    git(project, "commit", "-qm", "A notebook run, stripped")
    assert committed_outputs(project) == []
    assert git(project, "status", "--short", "--", "notebooks") == ""


def test_without_pre_commit_the_readmes_filter_strips_them_in_git_only(tmp_path):
    project = bake(tmp_path, use_pre_commit="no")
    assert not (project / ".pre-commit-config.yaml").exists()
    harness = docs_harness(project)
    (block,) = harness.bash_blocks(project / "notebooks/README.md")
    assert block.strip() == ".venv/bin/nbstripout --install"
    # The project's environment here is the tests' one (BIN), not a .venv of the bake.
    run(project, "bash", "-c", block.replace(".venv/bin/", f"{BIN}/"))
    with_outputs(project / NOTEBOOK)
    git(project, "add", NOTEBOOK)
    git(project, "commit", "-qm", "A notebook run")
    assert committed_outputs(project) == []
    # The file on disk keeps what the run showed.
    assert "a customer's row" in (project / NOTEBOOK).read_text()


def test_the_readmes_command_opens_jupyter_lab_on_the_notebooks(tmp_path):
    """The README's command starts JupyterLab, with the project's environment, in notebooks/."""
    project = bake(tmp_path)
    readme = (project / "README.md").read_text()
    section = readme.split("\n## Notebooks\n", 1)[1].split("\n## ", 1)[0]
    (block,) = re.findall(r"```bash\n(.*?)```", section, flags=re.S)
    assert block.strip() == ".venv/bin/jupyter lab notebooks/"
    command = block.strip().replace(".venv/bin/", f"{BIN}/").split()
    command += ["--no-browser", "--ServerApp.port=0"]
    # Containers and CI run tests as root, which Jupyter refuses unless told.
    command += ["--allow-root"] if os.geteuid() == 0 else []
    server = subprocess.Popen(
        command,
        cwd=project,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "JUPYTER_CONFIG_DIR": str(tmp_path / "config")},
    )
    try:
        lines = iter(server.stderr.readline, "")
        log = "".join(itertools.takewhile(lambda line: "is running at" not in line, lines))
        assert server.poll() is None, log
        assert f"Serving notebooks from local directory: {project / 'notebooks'}" in log, log
    finally:
        server.terminate()
        server.wait(timeout=30)
