"""A small git + DVC + GTO project for decide's tests, built by hand in seconds: the toy
rows split and fitted as preprocess and train do, export's files written as export
writes them (model, model.json, manifest), DVC's cache and dvc.lock filled by `dvc
commit`. Commit 1 holds a linear model, registered v0.0.1 and assigned prod; commit 2
(HEAD) a challenger fitted with other settings. Either can be served (serve's app, in
test_follow.py). Tests that write copy it first."""

from __future__ import annotations

import copy
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
import yaml

ARTIFACT = "toy-model"
# Lenient on purpose: on ~75 test rows a better model must be able to pass every gate.
LENIENT = {
    "min_improvement": -1.0,
    "min_business_change": -1.0,
    "max_gap_increase": 1.0,
    "max_class_drop": 1.0,
    "max_recent_drop": 1.0,
    "min_rows": 5,
    "bootstrap_samples": 200,
}
DVC_YAML = {
    "artifacts": {ARTIFACT: {"path": "models/model.skops", "type": "model"}},
    "stages": {
        "export": {
            "cmd": "true",
            "outs": [
                "data/processed/train.parquet",
                "data/processed/test.parquet",
                "models/model.skops",
#% if cookiecutter.onnx == "yes"
                "models/onnx",
#% endif
            ],
        }
    },
}


def toy_rows(task: str, n: int = 400, seed: int = 1) -> pd.DataFrame:
    """The top conftest's toy rows (ids, two numbers, a colour as the group, a value of
    each missing), more of them."""
    from conftest import _toy

    return _toy(task, n, seed)


def run(root: Path, *command: str) -> str:
    done = subprocess.run(command, cwd=root, capture_output=True, text=True)
    assert done.returncode == 0, f"{' '.join(command)}: {done.stderr}"
    return done.stdout


def dvc(root: Path, *args: str) -> str:
    return run(root, sys.executable, "-m", "dvc", *args)


def toy_params(params_raw: dict, model: dict) -> dict:
    """The bake's params.yaml, its data section set to conftest's toy rows."""
    raw = copy.deepcopy(params_raw)
    raw["data"].update(
        target="target",
        id_column=None,
        time=None,
        groups=["color"],
        numeric=None,
        categorical=None,
        drop=[],
        missing_values=[],
    )
    raw["model"] = dict(model)
    return raw


def export(root: Path, pipeline, config: dict, split: tuple, task: str) -> None:
    """export's files of `pipeline` (fitted from `config` on split's train rows)."""
    from {{ cookiecutter.package_name }}.core import io, paths
    from {{ cookiecutter.package_name }}.export import manifest
    from {{ cookiecutter.package_name }}.modeling import models
    from {{ cookiecutter.package_name }}.stages import preprocess

    train_rows, test_rows, roles = split
    io.write_parquet(root / paths.TRAIN, train_rows)
    io.write_parquet(root / paths.TEST, test_rows)
    models.save(root / paths.MODEL, pipeline, config)
    metadata = {
        "model": config["name"],
        "task": task,
        # As export describes them: a version of this repo can be served (test_follow.py).
        "features": preprocess.describe_features(train_rows, roles, task),
        "metrics": {},
        "hyperparameters": {},
        "data": {
            "train_md5": io.file_md5(root / paths.TRAIN),
            "test_md5": io.file_md5(root / paths.TEST),
        },
    }
    io.write_json(root / paths.MODEL_METADATA, metadata)
    io.write_text(root / paths.MODEL_CARD, f"# {config['name']}\n")
#% if cookiecutter.onnx == "yes"
    io.write_text(root / paths.ONNX_DIR / "SKIPPED.md", "not converted in this test\n")
#% endif
    io.write_json(root / paths.MODEL_MANIFEST, manifest.record(root))


def commit(root: Path, message: str) -> str:
    dvc(root, "commit", "-q", "--force", "export")
    run(root, "git", "add", "-A")
    run(root, "git", "commit", "-q", "-m", message)
    return run(root, "git", "rev-parse", "HEAD").strip()


@pytest.fixture(scope="session")
def decision_repo(tmp_path_factory, project, params_raw, conf, toy_roles, task, simple_model):
    """(root, {"champion": commit 1, "challenger": commit 2}); the files live in root."""
    from gto import api

    from {{ cookiecutter.package_name }}.stages import preprocess, train

    root = tmp_path_factory.mktemp("decide") / "project"
    root.mkdir()
    shutil.copytree(project / "conf", root / "conf")
    service = yaml.safe_load((project / "service.yaml").read_text(encoding="utf-8"))
    service["gate"].update(LENIENT)
    (root / "service.yaml").write_text(yaml.safe_dump(service), encoding="utf-8")
    (root / "dvc.yaml").write_text(yaml.safe_dump(DVC_YAML, sort_keys=False), encoding="utf-8")
    run(root, "git", "init", "-q")
    run(root, "git", "config", "user.email", "test@example.com")
    run(root, "git", "config", "user.name", "test")
    dvc(root, "init", "-q")
    dvc(root, "config", "core.analytics", "false")
    rows = toy_rows(task)
    train_rows, test_rows, transformer, _ = preprocess.preprocess(
        rows, toy_roles, rules=conf.preprocess, seed=0, task=task
    )
    linear = simple_model[task]
    # The champion: the same model, regularised until it predicts worse.
    weak = dict(linear, **({"C": 0.001} if task == "classification" else {"alpha": 500.0}))
    commits = {}
    for name, config in (("champion", weak), ("challenger", linear)):
        params = yaml.safe_dump(toy_params(params_raw, config), sort_keys=False)
        (root / "params.yaml").write_text(params, encoding="utf-8")
        settings = train.Settings.of(conf)
        pipeline = train.train(train_rows, toy_roles, transformer, config=config, settings=settings)
        export(root, pipeline, config, (train_rows, test_rows, toy_roles), task)
        commits[name] = commit(root, name)
        if name == "champion":
            api.register(str(root), ARTIFACT, "HEAD", version="v0.0.1")
            api.assign(str(root), ARTIFACT, "prod", version="v0.0.1")
    return root, commits


@pytest.fixture(scope="session")
def repo_tools() -> SimpleNamespace:
    """This module's helpers, for tests that add a commit to a repo."""
    return SimpleNamespace(export=export, commit=commit, run=run)


@pytest.fixture
def repo(decision_repo, tmp_path, monkeypatch):
    """A copy of the decision repo to change, the working directory while the test runs."""
    source, commits = decision_repo
    root = tmp_path / "project"
    shutil.copytree(source, root, symlinks=True)
    monkeypatch.chdir(root)
    return root, commits
