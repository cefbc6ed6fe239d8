"""Which model to serve: the version GTO assigns to a stage, else the workspace model.

A version is a git tag made by `gto register`; a stage assignment is another tag
(`gto assign --stage prod`). The model bytes of a version are found offline: the tagged
commit's dvc.lock gives the md5 of models/model.skops, and DVC's cache holds the file
under that md5 (`dvc fetch`/`dvc pull` fills the cache from the remote when it is not).
models/model.json and models/manifest.json are committed to git (cache: false), so they
are read from the commit. Whichever the source, the files are served only once they
match the manifest export wrote with them (export/manifest.py), and load() makes the
model of them for `serve` and `decide` alike, without FastAPI.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import os
import re
import subprocess
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ..core import model_catalog, paths
from ..core.errors import DataError
from ..export import manifest
from ..modeling import models
from ..tables import schema

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
    # The md5 of models/manifest.json as read (dvc.lock shows it too): it names the whole
    # set served, model, metadata{% if cookiecutter.onnx == "yes" %}, ONNX graph{% endif %} and card, each checked against it.
    manifest_md5: str | None = None

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


@dataclass(frozen=True)
class Assignment:
    """One GTO assignment of a version to a stage: the tag `<artifact>#<stage>#<number>`."""

    version: str
    commit: str
    time: dt.datetime
    number: int

    def facts(self) -> dict:
        return {"version": self.version, "revision": self.commit}


def assignments(root: Path, artifact: str, stage: str) -> list[Assignment]:
    """The assignments of versions to `stage`, newest first: by the tag's number, GTO's
    own count (two tags made in the same second share a time, so time cannot order them)."""
    from gto import api

    found = []
    for event in api.history(str(root), artifact):
        if event["event"] != "assignment" or event["stage"] != stage:
            continue
        number = re.search(r"#(\d+)$", event["ref"])
        found.append(
            Assignment(
                event["version"],
                event["commit"],
                event["timestamp"],
                int(number.group(1)) if number else 0,
            )
        )
    return sorted(found, key=lambda a: (a.number, a.time), reverse=True)


def assigned_version(root: Path, artifact: str, stage: str) -> tuple[str, str] | None:
    """(version, commit) of the version most recently assigned to `stage` (assignments),
    or None when nothing is: after a rollback (`gto assign --version OLD --stage prod
    --force`) the stage holds OLD."""
    found = assignments(root, artifact, stage)
    return (found[0].version, found[0].commit) if found else None


def version_commit(root: Path, artifact: str, version: str) -> str:
    """The commit GTO registered `version` of `artifact` at (its tag <artifact>@<version>)."""
    return _git(root, "rev-list", "-n", "1", f"{artifact}@{version}").strip()


def committed_text(root: Path, commit: str, name: str) -> str:
    """A file as `commit` holds it in git; DataError when it holds none."""
    return _git(root, "show", f"{commit}:{name}")


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


def cache_path(root: Path, md5: str) -> Path:
    """Where the project's DVC cache keeps the file (or a folder's listing, `<md5>.dir`)
    whose md5 dvc.lock records."""
    return Path(_local_cache(str(Path(root).resolve())).oid_to_path(md5))


def _read_cached(path: Path, name: str, where: str) -> bytes:
    """A file from DVC's local cache (.dvc/cache/files/md5/xx/yyyy...)."""
    if not path.exists():
        raise DataError(
            f"{name} of {where} is not in the DVC cache: run `dvc fetch --all-tags` (or "
            "`dvc pull` on that commit) first"
        )
    return path.read_bytes()


def cached_paths(root: Path, lock_text: str, where: str) -> dict[str, Path]:
    """Where DVC's cache keeps each cached file export wrote, by the md5s of the dvc.lock
    `lock_text`: models/model.skops, and the files of models/onnx/ when export writes ONNX."""
    found = {manifest.MODEL: cache_path(root, locked_md5(lock_text))}
#% if cookiecutter.onnx == "yes"
    # A folder output is cached as a listing (<md5>.dir: each file's relpath and md5).
    folder = paths.ONNX_DIR.as_posix()
    listing = cache_path(root, locked_md5(lock_text, paths.ONNX_DIR))
    for entry in json.loads(_read_cached(listing, folder, where)):
        found[f"{folder}/{entry['relpath']}"] = cache_path(root, entry["md5"])
#% endif
    return found


def _damaged(path: Path, data: bytes | None) -> bool:
    """Whether a file of DVC's cache holds other bytes than its name (their md5) says."""
    return data is not None and hashlib.md5(data).hexdigest() != path.parent.name + path.name


def _committed(root: Path, commit: str, name: str) -> bytes | None:
    """A file as `commit` holds it in git, or None when it holds none there."""
    done = subprocess.run(["git", "show", f"{commit}:{name}"], cwd=root, capture_output=True)
    return done.stdout if done.returncode == 0 else None


def version_files(root: Path, version: str, commit: str) -> dict[str, bytes]:
    """The files export wrote for `version`, checked against its manifest: the manifest
    and the files committed to git as `commit` holds them, the cached ones from DVC's
    cache by the md5s of that commit's dvc.lock. Path -> bytes."""
    where = f"version {version} (commit {commit[:12]})"
    lock = _git(root, "show", f"{commit}:dvc.lock")
    text = _committed(root, commit, manifest.MANIFEST)
    if text is None:
        raise DataError(
            f"{where} has no {manifest.MANIFEST}, so nothing says its files are one export: "
            "export it again (`dvc repro export`), commit, and register that commit"
        )
    recorded = manifest.parse(text, f"{manifest.MANIFEST} of {where}")
    cached = cached_paths(root, lock, where)
    found = {manifest.MANIFEST: text}
    for name in sorted(set(recorded) | set(cached) | {manifest.METADATA}):
        found[name] = (
            _read_cached(cached[name], name, where)
            if name in cached
            else _committed(root, commit, name)
        )
    wrong = manifest.mismatch(recorded, found)
    if wrong:
        name, problem = wrong
        fix = "that commit is not one export: register a commit whose export finished"
        if name in cached and _damaged(cached[name], found[name]):
            shown = os.path.relpath(cached[name], root)
            fix = f"its copy in the DVC cache is damaged: delete {shown}, then run "
            fix += "`dvc fetch --all-tags`"
        raise DataError(f"{problem}, in {where}: {fix}")
    return {name: data for name, data in found.items() if data is not None}


def _source(artifact: str, version: str, stage: str | None, revision: str | None, files: dict):
    """A ModelSource of a checked set of export's files (path -> bytes)."""
    return ModelSource(
        artifact,
        version,
        stage,
        revision,
        files[manifest.MODEL],
        json.loads(files[manifest.METADATA]),
#% if cookiecutter.onnx == "yes"
        files.get(f"{paths.ONNX_DIR.as_posix()}/model.onnx"),
#% endif
        manifest_md5=hashlib.md5(files[manifest.MANIFEST]).hexdigest(),
    )


def from_version(root: Path, artifact: str, version: str, stage: str | None, commit: str):
    return _source(artifact, version, stage, commit, version_files(root, version, commit))


def from_workspace(root: Path, artifact: str) -> ModelSource:
    for path in (root / paths.MODEL, root / paths.MODEL_METADATA):
        if not path.exists():
            raise DataError(f"{path} does not exist: run `dvc repro` to build it")
    files = manifest.check_workspace(root)
    try:
        revision = _git(root, "rev-parse", "HEAD").strip()
    except DataError:  # not a git repository, or no commit yet
        revision = None
    return _source(artifact, WORKSPACE, None, revision, files)


def _git_or_none(root: Path, *args: str) -> str | None:
    """git's output, or None when it fails (no such revision, not a repository)."""
    done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True)
    return done.stdout if done.returncode == 0 else None


def commit_of(root: Path, rev: str) -> str | None:
    """The commit `rev` names (a sha, a branch, a tag), or None when it names none."""
    found = _git_or_none(root, "rev-parse", "--verify", "--quiet", rev + "^{commit}")
    return found.strip() if found else None


def experiment(root: Path, name: str) -> str | None:
    """The commit of the `dvc exp` named `name`: refs/exps/<baseline>/<name>, the one on
    HEAD's baseline when names repeat across baselines (as `dvc exp apply` picks)."""
    listed = _git_or_none(root, "for-each-ref", "--format=%(refname) %(objectname)", "refs/exps")
    refs = [line.split() for line in (listed or "").splitlines()]
    found = [(ref, sha) for ref, sha in refs if ref.rsplit("/", 1)[-1] == name]
    if len(found) > 1:
        head = commit_of(root, "HEAD") or ""
        found = [(ref, sha) for ref, sha in found if "".join(ref.split("/")[2:4]) == head]
    if len(found) > 1:
        raise DataError(
            f"experiment {name!r} exists on several baselines: check out the commit it ran on"
        )
    return found[0][1] if found else None


def shadow(root: Path, asked: str, champion: ModelSource) -> ModelSource:
    """The model of the experiment or git revision `asked`, to score beside `champion`
    (serve --shadow): read as a version is (dvc.lock's md5, DVC's cache, the manifest).
    Refused in one line when it names nothing, its model is not in the cache, it could
    not score the champion's rows (other features, derived columns or task), or it is
    the champion's very model."""
    commit = experiment(root, asked) or commit_of(root, asked)
    if commit is None:
        raise DataError(
            f"shadow {asked!r}: no experiment or git revision of that name: `dvc exp list` "
            "lists experiments, `git log --oneline` commits"
        )
    where = f"shadow {asked} (commit {commit[:12]})"
    lock = _committed(root, commit, "dvc.lock")
    if lock is None:
        raise DataError(f"{where} has no dvc.lock: it holds no pipeline run")
    if not cache_path(root, locked_md5(lock.decode("utf-8"))).is_file():
        raise DataError(
            f"the model of {where} is not in the DVC cache: run `dvc exp pull <remote> "
            f"{asked}` for an experiment, or `dvc fetch --all-commits` for a commit"
        )
    found = from_version(root, champion.artifact, asked, None, commit)
    problem = _unlike(found.metadata, champion.metadata)
    if problem:
        raise DataError(
            f"{where} {problem}: it could not score the same rows; shadow a model trained "
            "on the champion's features"
        )
    if found.md5 == champion.md5:
        raise DataError(
            f"{where} is the served model itself (md5 {found.md5}): shadow another model "
            "(`dvc exp list`)"
        )
    return found


def _unlike(shadow: dict, champion: dict) -> str | None:
    """How the shadow's model.json differs from the champion's in what scoring one
    request's columns needs (the task, the features in order, the derived columns)."""
    if shadow["task"] != champion["task"]:
        return f"does {shadow['task']}, the champion {champion['task']}"
    ours = schema.roles_from_dict(shadow["features"]["roles"]).features
    theirs = schema.roles_from_dict(champion["features"]["roles"]).features
    if ours != theirs:
        return f"reads {ours}, the champion {theirs}"
    derived = (shadow["features"].get("derived"), champion["features"].get("derived"))
    if derived[0] != derived[1]:
        return f"derives {derived[0]}, the champion {derived[1]}"
    return None


def resolve(root: Path, stage: str | None) -> ModelSource:
    """The model assigned to `stage`; with none assigned (or stage None), the workspace's."""
    artifact = artifact_name(root)
    found = assigned_version(root, artifact, stage) if stage else None
    if found is None:
        return from_workspace(root, artifact)
    version, commit = found
    return from_version(root, artifact, version, stage, commit)


def load(source: ModelSource, models_dir: Path):
    """The skops model from its bytes, through models.load: trusting io's reviewed types
    and those that models_dir/<its name>.yaml (conf/model/ of the checkout that serves)
    lists. Not a list recorded in model.json: that file travels with the model, so a model
    would vouch for itself; the model file is written and reviewed by a person, in git.
    Refused in one line unless it is what export writes (_refuse_foreign)."""
    config = model_catalog.read(source.metadata["model"], models_dir)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.skops"
        path.write_bytes(source.model_bytes)
        try:
            model = models.load(path, config)
        except zipfile.BadZipFile as exc:
            problem = f"{_named(source)} is not a skops file ({exc})"
            raise DataError(f"{problem}: {_refit(source)}") from None
    _refuse_foreign(model, source)
    return model


def _named(source: ModelSource) -> str:
    if source.version == WORKSPACE:
        return str(paths.MODEL)
    return f"{paths.MODEL} of version {source.version}"


def _refit(source: ModelSource) -> str:
    """The fix for a model file that is not what export writes."""
    if source.version == WORKSPACE:
        return "export it again (`dvc repro export`)"
    return "export it again (`dvc repro export`), commit, and register that commit"


def _refuse_foreign(model, source: ModelSource) -> None:
    """A DataError unless `model` is what export writes for its model.json. A skops file
    may hold any trusted object (a dict, another estimator), and the server would fail on
    its first use with a traceback."""
    features = schema.roles_from_dict(source.metadata["features"]["roles"]).features
    problem = _foreign(model, source.metadata["task"], features)
    if problem:
        raise DataError(f"{_named(source)} holds {problem}: {_refit(source)}")


def _foreign(model, task: str, features: list[str]) -> str | None:
    """What `model` is instead of a fitted scikit-learn Pipeline that does `task`, fitted
    on `features` in their order; None when it is one."""
    from sklearn.base import is_classifier, is_regressor
    from sklearn.exceptions import NotFittedError
    from sklearn.pipeline import Pipeline
    from sklearn.utils.validation import check_is_fitted

    if not isinstance(model, Pipeline):
        return f"a {type(model).__name__}, not the scikit-learn pipeline export writes"
    try:
        check_is_fitted(model)
    except NotFittedError:
        return "a pipeline that was never fitted"
    if not (is_classifier if task == "classification" else is_regressor)(model):
        return f"a {type(model.steps[-1][1]).__name__}, which does not do {task}"
    fitted_on = [str(c) for c in getattr(model, "feature_names_in_", [])]
    if fitted_on != features:
        return f"a pipeline fitted on {fitted_on}, not on {paths.MODEL_METADATA}'s {features}"
    return None
