"""core/model_catalog.py's cache of installed classes: composing conf/ (every `dvc exp
run`) checks each model against its class without importing scikit-learn again, and a
changed package is checked afresh."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from conftest import venv_inside

PROJECT = Path(__file__).resolve().parents[2]
CHECK = textwrap.dedent(
    """
    import json, sys
    from {{ cookiecutter.package_name }}.core import model_catalog
    config = {"_target_": sys.argv[1], "name": "m", **json.loads(sys.argv[2])}
    problem = model_catalog.class_problem("classification", "model", config, cached=True)
    print(json.dumps([problem, sys.argv[1].rpartition(".")[0] in sys.modules]))
    """
)


def check(
    root: Path, target: str, hyperparameters: dict, path: str = "", python: str = ""
) -> tuple:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(PROJECT / "src"), path]))}
    done = subprocess.run(
        [python or sys.executable, "-c", CHECK, target, json.dumps(hyperparameters)],
        cwd=root, env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return tuple(json.loads(done.stdout))


def test_a_known_class_is_checked_without_importing_it_again(tmp_path):
    (tmp_path / ".dvc" / "tmp").mkdir(parents=True)
    target = "sklearn.linear_model.LogisticRegression"
    first = check(tmp_path, target, {"Cc": 1.0})
    assert first[1] is True  # imported, then remembered
    assert "did you mean C?" in first[0]
    second = check(tmp_path, target, {"Cc": 1.0})
    assert second == (first[0], False)  # the same refusal, the class never imported
    assert check(tmp_path, target, {"C": 0.5}) == (None, False)


def test_a_changed_package_is_checked_afresh_and_a_project_without_dvc_is_not_cached(tmp_path):
    site = tmp_path / "site" / "fakelib"
    site.mkdir(parents=True)
    body = (
        "from sklearn.base import BaseEstimator, ClassifierMixin\n\n\n"
        "class Model(ClassifierMixin, BaseEstimator):\n"
        "    def __init__(self, {name}=1):\n        self.{name} = {name}\n"
    )
    (site / "__init__.py").write_text(body.format(name="alpha"))
    project = tmp_path / "project"
    (project / ".dvc" / "tmp").mkdir(parents=True)
    path = str(tmp_path / "site")
    assert check(project, "fakelib.Model", {"alpha": 2}, path)[0] is None
    assert check(project, "fakelib.Model", {"alpha": 2}, path)[1] is False  # cached
    (site / "__init__.py").write_text(body.format(name="beta") + "\n# version 2\n")
    problem, imported = check(project, "fakelib.Model", {"alpha": 2}, path)
    assert imported is True and "alpha is not a parameter of Model" in problem
    bare = tmp_path / "bare"
    bare.mkdir()
    check(bare, "fakelib.Model", {"beta": 2}, path)
    assert not (bare / ".dvc").exists()


def test_a_library_in_the_projects_venv_is_cached_and_a_class_of_the_project_is_not(tmp_path):
    """The README installs into the project's .venv/: its packages are libraries. A model
    class in the project's own code is edited at will: always checked afresh."""
    project = tmp_path / "project"
    (project / ".dvc" / "tmp").mkdir(parents=True)
    python = venv_inside(project)
    target = "sklearn.linear_model.LogisticRegression"
    assert check(project, target, {"C": 0.5}, python=python) == (None, True)
    assert check(project, target, {"C": 0.5}, python=python) == (None, False)  # cached
    mine = project / "models_of_mine"
    mine.mkdir()
    (mine / "__init__.py").write_text(
        "from sklearn.linear_model import LogisticRegression as Model\n"
    )
    for _ in range(2):
        assert check(project, "models_of_mine.Model", {"C": 0.5}, str(project), python)[1]
