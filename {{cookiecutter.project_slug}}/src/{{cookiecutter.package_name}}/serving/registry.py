"""Which model to serve: the version GTO assigns to a stage, else the workspace model.

A version is a git tag made by `gto register`; a stage assignment is another tag
(`gto assign --stage prod`). The model bytes of a version are found offline: the tagged
commit's dvc.lock gives the md5 of models/model.skops, and DVC's cache holds the file
under that md5 (`dvc fetch`/`dvc pull` fills the cache from the remote when it is not).
models/model.json is committed to git (cache: false), so it is read from the commit.
"""

from __future__ import annotations

import functools
import hashlib
import json
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ..core import paths
from ..core.errors import DataError

WORKSPACE = "workspace"


@dataclass(frozen=True)
class ModelSource:
    """A model to serve: its skops bytes, its model.json, its ONNX graph when export wrote
    one, and where they came from."""

    artifact: str
    version: str
    stage: str | None
    git_revision: str | None
    model_bytes: bytes = field(repr=False)
    metadata: dict = field(repr=False)
    onnx_bytes: bytes | None = field(default=None, repr=False)

    @functools.cached_property
    def md5(self) -> str:
        """Hashed once: the answer logs it with every predicted row."""
        return hashlib.md5(self.model_bytes).hexdigest()


def artifact_name(root: Path = Path(".")) -> str:
    """The model artifact declared in dvc.yaml (`artifacts:`), of type model."""
    declared = yaml.safe_load((root / "dvc.yaml").read_text(encoding="utf-8")).get("artifacts")
    for name, spec in (declared or {}).items():
        if spec.get("type") == "model" and spec.get("path") == str(paths.MODEL):
            return name
    raise DataError(f"dvc.yaml declares no model artifact with path {paths.MODEL}: add one")


def _git(root: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True)
    if done.returncode != 0:
        raise DataError(f"git {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout


def assigned_version(root: Path, artifact: str, stage: str) -> tuple[str, str] | None:
    """(version, commit) that `gto show` lists in `stage`, or None when nothing is assigned.

    After a rollback (`gto assign --version OLD --stage prod --force`) a stage holds the
    most recently assigned version, as `gto show` says.
    """
    from gto import api

    state = api.show(str(root)).get(artifact)
    version = (state or {}).get("stage", {}).get(stage)
    if not version:
        return None
    commit = _git(root, "rev-parse", f"{artifact}@{version}^" + "{commit}").strip()
    return version, commit


def locked_md5(lock_text: str, path: Path = paths.MODEL) -> str:
    """The md5 dvc.lock records for `path` (an output of some stage)."""
    for stage in (yaml.safe_load(lock_text) or {}).get("stages", {}).values():
        for out in stage.get("outs", []):
            if out.get("path") == str(path):
                return out["md5"]
    raise DataError(f"dvc.lock has no entry for {path}: that commit has no exported model")


@functools.cache
def _local_cache(root: str):
    """The project's DVC cache, opened once: a served version reads up to three files."""
    from dvc.repo import Repo

    with Repo(root) as repo:
        return repo.cache.local


def cached_file(root: Path, md5: str) -> bytes:
    """A file from DVC's local cache by its md5 (.dvc/cache/files/md5/xx/yyyy...)."""
    path = Path(_local_cache(str(Path(root).resolve())).oid_to_path(md5))
    if not path.exists():
        raise DataError(
            f"model file {md5} is not in the DVC cache: run `dvc fetch --all-tags` "
            "(or `dvc pull` on that commit) first"
        )
    return path.read_bytes()


#% if cookiecutter.onnx == "yes"
def cached_onnx(root: Path, lock_text: str) -> bytes | None:
    """model.onnx of the version whose dvc.lock is `lock_text`: models/onnx is a folder
    output, cached as a listing (<md5>.dir: relpath and md5 of each file)."""
    try:
        listing = json.loads(cached_file(root, locked_md5(lock_text, paths.ONNX_DIR)))
    except DataError:
        return None
    for entry in listing:
        if entry.get("relpath") == "model.onnx":
            return cached_file(root, entry["md5"])
    return None  # SKIPPED.md: no converter for this model


#% endif
def from_version(root: Path, artifact: str, version: str, stage: str | None, commit: str):
    lock = _git(root, "show", f"{commit}:dvc.lock")
    model_bytes = cached_file(root, locked_md5(lock))
    metadata = json.loads(_git(root, "show", f"{commit}:{paths.MODEL_METADATA}"))
#% if cookiecutter.onnx == "yes"
    onnx_bytes = cached_onnx(root, lock)
    return ModelSource(artifact, version, stage, commit, model_bytes, metadata, onnx_bytes)


#% else
    return ModelSource(artifact, version, stage, commit, model_bytes, metadata)


#% endif
def from_workspace(root: Path, artifact: str) -> ModelSource:
    model, meta = root / paths.MODEL, root / paths.MODEL_METADATA
    for path in (model, meta):
        if not path.exists():
            raise DataError(f"{path} does not exist: run `dvc repro` to build it")
    try:
        revision = _git(root, "rev-parse", "HEAD").strip()
    except DataError:  # not a git repository, or no commit yet
        revision = None
    metadata = json.loads(meta.read_text(encoding="utf-8"))
#% if cookiecutter.onnx == "yes"
    onnx = root / paths.ONNX_DIR / "model.onnx"
    onnx_bytes = onnx.read_bytes() if onnx.exists() else None
    return ModelSource(
        artifact, WORKSPACE, None, revision, model.read_bytes(), metadata, onnx_bytes
    )


#% else
    return ModelSource(artifact, WORKSPACE, None, revision, model.read_bytes(), metadata)


#% endif
def resolve(root: Path, stage: str | None) -> ModelSource:
    """The model assigned to `stage`; with none assigned (or stage None), the workspace's."""
    artifact = artifact_name(root)
    found = assigned_version(root, artifact, stage) if stage else None
    if found is None:
        return from_workspace(root, artifact)
    version, commit = found
    return from_version(root, artifact, version, stage, commit)
