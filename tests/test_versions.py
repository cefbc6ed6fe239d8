"""Versions and rollback, as the baked docs/versions.md says: a new batch reruns the whole pipeline;
a git tag, or a GTO version and stage, brings back byte-identical data and model; after
losing the DVC cache, `dvc pull` from the default remote restores them."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import STAGES, bake, git, locked_model_md5, md5, ran, run

pytestmark = pytest.mark.slow

# Files whose bytes a version must bring back: the data and the model.
TRACKED = [
    "data/raw/penguins_2007.csv",
    "data/interim/ingested.parquet",
    "data/processed/train.parquet",
    "models/model.skops",
]


def snapshot(root: Path) -> dict[str, str]:
    return {name: md5(root / name) for name in TRACKED}


def test_new_batch_tags_registry_rollback_and_pull(tmp_path):
    root = bake(tmp_path, project_name="Versioned Loop")
    package, artifact = "versioned_loop", "versioned-loop-model"
    assert ran(run(root, "dvc", "repro").stdout) == STAGES
    git(root, "add", "-A")
    git(root, "commit", "-qm", "First pipeline run")
    git(root, "tag", "v1")
    first = snapshot(root)
    assert first["models/model.skops"] == locked_model_md5(git(root, "show", "v1:dvc.lock"))

    # The model registry: a version of the artifact in dvc.yaml, then a stage for it.
    run(root, "gto", "register", artifact, "v1", "--version", "v1.0.0")
    run(root, "gto", "assign", artifact, "--version", "v1.0.0", "--stage", "prod")
    tags = set(git(root, "tag", "--list").splitlines())
    assert {f"{artifact}@v1.0.0", f"{artifact}#prod#1"} <= tags

    # More data: one command copies and tracks the batch; repro reruns everything after.
    done = run(root, "python", "-m", package, "add-batch", "data/extra/penguins_2009.csv")
    assert "added batch data/raw/penguins_2009.csv" in done.stdout
    assert git(root, "status", "--porcelain", "data/raw.dvc").startswith("M")
    assert ran(run(root, "dvc", "repro").stdout) == STAGES
    git(root, "add", "-A")
    git(root, "commit", "-qm", "Add the 2009 batch")
    second = snapshot(root)
    assert second["models/model.skops"] != first["models/model.skops"]
    assert second["data/interim/ingested.parquet"] != first["data/interim/ingested.parquet"]

    # Back to the tag: the same bytes as when it was tagged.
    git(root, "checkout", "-q", "v1")
    run(root, "dvc", "checkout", "--force")
    assert snapshot(root) == first
    assert not (root / "data/raw/penguins_2009.csv").exists()
    git(root, "checkout", "-q", "main")
    run(root, "dvc", "checkout", "--force")
    assert snapshot(root) == second

    # The registry's prod model, fetched by stage and by version, from the default remote.
    run(root, "dvc", "push")
    for number, selector in enumerate((["--stage", "prod"], ["--rev", "v1.0.0"])):
        out = tmp_path / f"artifact{number}" / "model.skops"
        run(root, "dvc", "artifacts", "get", ".", artifact, *selector, "-o", str(out))
        assert md5(out) == first["models/model.skops"], selector

    # Lose the cache and the workspace copies: the remote gives them back.
    shutil.rmtree(root / ".dvc/cache")
    for folder in ("data/raw", "data/interim", "data/processed"):
        shutil.rmtree(root / folder)
    (root / "models/model.skops").unlink()
    run(root, "dvc", "pull")
    assert snapshot(root) == second
    assert "up to date" in run(root, "dvc", "status").stdout
