"""What `decide` judges: both models, resolved to commits, scored on the same rows.

The challenger is the workspace's model (its commit when the workspace's export, splits
and params.yaml are HEAD's), a `dvc exp` name or a git revision; the champion the version
GTO puts in a stage (prod by default) or a git revision. Each side's files are read at its
commit: the ones committed to git from git, DVC's outputs from the local cache by the md5s
of that commit's dvc.lock (the dask engine's folders of parts through their `.dir`
listing), the model files checked against export's manifest as serving checks them. Only
the columns needed are read: the features of both models, the target, the row ids, the
group and time columns; the training splits give one column each (the champion's ids,
the challenger's target), so memory and time follow the test rows.
"""

from __future__ import annotations

import json
import logging
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from ..core import compute, io, paths
from ..core.errors import DataError
from ..core.params import GateParams, Params, ServeParams, parse
from ..export import manifest
from ..modeling import derivation
from ..monitoring import labels
from ..monitoring import shadow as shadowing
from ..quality import diagnosis
from ..serving import prediction_log, registry
from ..tables import schema
from . import bootstrap
from .verdicts import Answers, Rows, Yardstick

log = logging.getLogger(__name__)

WORKSPACE = "workspace"
PROD = "prod"
# `decide --challenger shadow`: the model serve.shadow names, or the shadow log's.
SHADOW = "shadow"


@dataclass(frozen=True)
class Named:
    """One side as a decision names it: what was asked for, the commit it resolved to
    (None: the uncommitted workspace), the GTO version and stage it holds there."""

    asked: str
    label: str
    revision: str | None
    version: str | None
    stage: str | None = None


@dataclass(frozen=True)
class Side:
    """A side's model and the hashes a decision records of it."""

    named: Named
    source: registry.ModelSource
    model: object
    facts: dict


@dataclass(frozen=True)
class Evidence:
    challenger: Side
    champion: Side | None
    rows: Rows
    # challenger, champion (absent without one) and baseline.
    answers: dict[str, Answers]
    yardstick: Yardstick
    # Test rows scored, and those left out because the champion trained on them.
    scored: int
    excluded: int


def git(root: Path, *args: str) -> str | None:
    """git's output, or None when it fails (no such revision, not a repository)."""
    done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True)
    return done.stdout if done.returncode == 0 else None


def version_at(root: Path, artifact: str, commit: str) -> str | None:
    """The GTO version registered at `commit` (the highest when several are)."""
    tags = git(root, "tag", "--points-at", commit, "--sort=-v:refname", "--list", f"{artifact}@*")
    first = (tags or "").split()
    return first[0].split("@", 1)[1] if first else None


def workspace_is_head(root: Path, files: dict[str, bytes]) -> str | None:
    """HEAD's commit when the workspace's export, its splits and params.yaml are HEAD's
    (the export's checked `files`); None when any differs, or there is no commit."""
    head = registry.commit_of(root, "HEAD")
    if head is None:
        return None
    committed = Snapshot(root, head)
    if committed.committed(manifest.MANIFEST) != files[manifest.MANIFEST]:
        return None
    if committed.committed(str(paths.PARAMS)) != (root / paths.PARAMS).read_bytes():
        return None
    lock = committed.lock()
    for path in (paths.TRAIN, paths.TEST):
        if not Snapshot(root, None).same_output(path, lock):
            return None
    return head


def resolve_challenger(root: Path, artifact: str, asked: str | None) -> Named:
    """The challenger: the workspace (None), an experiment's name, a GTO stage (the
    version in staging, say, on its way to prod), a GTO version or a git revision."""
    if asked is None:
        head = workspace_is_head(root, manifest.check_workspace(root))
        if head is None:
            return Named(WORKSPACE, "workspace (uncommitted)", None, None)
        label = f"workspace (HEAD {head[:7]})"
        return Named(WORKSPACE, label, head, version_at(root, artifact, head))
    commit = registry.experiment(root, asked)
    label = f"experiment {asked}"
    staged = registry.assigned_version(root, artifact, asked) if commit is None else None
    if staged is not None:
        version, commit = staged
        return Named(asked, f"{asked} ({version})", commit, version, asked)
    if commit is None:
        commit, label = registry.commit_of(root, f"{artifact}@{asked}"), f"version {asked}"
    if commit is None:
        commit, label = registry.commit_of(root, asked), f"revision {asked}"
    if commit is None:
        raise DataError(
            f"--challenger {asked}: no experiment, GTO stage or version, or git revision of "
            "that name: `dvc exp list` lists experiments, `gto show` stages and versions, "
            "`git log --oneline` commits"
        )
    return Named(asked, label, commit, version_at(root, artifact, commit))


def resolve_champion(root: Path, artifact: str, asked: str | None) -> Named | None:
    """The champion: the version in GTO stage `asked` (prod when None), else the git
    revision `asked`. None when no version is in prod and none was asked for."""
    stage = asked or PROD
    found = registry.assigned_version(root, artifact, stage)
    if found is not None:
        version, commit = found
        return Named(stage, f"{stage} ({version})", commit, version, stage)
    if asked is None:
        return None
    commit = registry.commit_of(root, asked) or registry.commit_of(root, f"{artifact}@{asked}")
    if commit is None:
        raise DataError(
            f"--champion {asked}: no version of {artifact} is in stage {asked!r} and no git "
            f"revision has that name: `gto show` lists stages and versions; leave --champion "
            "out to judge against prod, or by the absolute gates alone when prod is empty"
        )
    return Named(asked, f"revision {asked}", commit, version_at(root, artifact, commit))


def cached(root: Path, md5: str, what: str) -> Path:
    """The file of DVC's local cache holding `md5`."""
    found = registry.cache_path(root, md5)
    if not found.is_file():
        raise DataError(
            f"{what} is not in the DVC cache: run `dvc pull` at that commit (`dvc exp pull` "
            "for an experiment), or `dvc fetch --all-commits`"
        )
    return found


@dataclass(frozen=True)
class Snapshot:
    """The project's files at a commit, or in the workspace (revision None)."""

    root: Path
    revision: str | None

    @property
    def where(self) -> str:
        return "the workspace" if self.revision is None else f"commit {self.revision[:12]}"

    def committed(self, name: str) -> bytes | None:
        """A file git tracks, as this snapshot holds it; None when it holds none."""
        if self.revision is None:
            path = self.root / name
            return path.read_bytes() if path.is_file() else None
        done = subprocess.run(
            ["git", "show", f"{self.revision}:{name}"], cwd=self.root, capture_output=True
        )
        return done.stdout if done.returncode == 0 else None

    def lock(self) -> str:
        text = self.committed("dvc.lock")
        if text is None:
            raise DataError(f"{self.where} has no dvc.lock: run `dvc repro` and commit it")
        return text.decode("utf-8")

    def params(self) -> Params:
        text = self.committed(str(paths.PARAMS))
        if text is None:
            raise DataError(f"{self.where} has no {paths.PARAMS}: it holds no pipeline run")
        return parse(yaml.safe_load(text) or {}, f"{paths.PARAMS} of {self.where}")

    def table_files(self, path: Path) -> list[Path]:
        """The Parquet files of the table at `path` (a file, or a folder of parts), in
        row order: the workspace's, or DVC's cached copies by this commit's dvc.lock."""
        if self.revision is None:
            if not (self.root / path).exists():
                raise DataError(f"{path} does not exist: run `dvc repro` to build it")
            folder = self.root / path
            return sorted(folder.glob("*.parquet")) if folder.is_dir() else [folder]
        md5 = registry.locked_md5(self.lock(), path)
        if not md5.endswith(".dir"):
            return [cached(self.root, md5, f"{path} of {self.where}")]
        listing = json.loads(cached(self.root, md5, f"{path} of {self.where}").read_bytes())
        parts = sorted(listing, key=lambda entry: entry["relpath"])
        return [
            cached(self.root, e["md5"], f"{path}/{e['relpath']} of {self.where}")
            for e in parts
            if e["relpath"].endswith(".parquet")
        ]

    def same_output(self, path: Path, lock: str) -> bool:
        """Whether the workspace's table at `path` is the one dvc.lock `lock` records."""
        md5 = registry.locked_md5(lock, path)
        target = self.root / path
        if not md5.endswith(".dir"):
            return target.is_file() and io.file_md5(target) == md5
        listing = cached(self.root, md5, f"the listing of {path}")
        want = {e["relpath"]: e["md5"] for e in json.loads(listing.read_bytes())}
        found = sorted(p for p in target.rglob("*") if p.is_file()) if target.is_dir() else []
        got = {p.relative_to(target).as_posix(): io.file_md5(p) for p in found}
        return got == want

    def read(self, path: Path, wanted: set[str]) -> pd.DataFrame:
        """The columns of `wanted` that the table at `path` has, every row."""
        files = self.table_files(path)
        columns = io.parquet_columns(files[0], wanted)
        frames = [io.read_parquet(f, columns=columns) for f in files]
        return frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)

    def model(self, root: Path, artifact: str, named: Named) -> registry.ModelSource:
        """The side's export, every file checked against its manifest."""
        if self.revision is None:
            return registry.from_workspace(root, artifact)
        version = named.version or self.revision[:12]
        return registry.from_version(root, artifact, version, named.stage, self.revision)


def load_side(root: Path, artifact: str, named: Named) -> Side:
    """A side's model, loaded as serving loads it (the skops types io and the checkout's
    conf/model/<name>.yaml trust), and the hashes of what it came from."""
    snapshot = Snapshot(root, named.revision)
    source = snapshot.model(root, artifact, named)
    if named.revision is None:
        _refuse_stale_splits(root, source.metadata)
    lock = snapshot.lock()
    facts = {
        "asked": named.asked,
        "label": named.label,
        "revision": named.revision,
        "version": named.version,
        "stage": named.stage,
        "model": source.metadata["model"],
        "model_md5": source.md5,
        "manifest_md5": source.manifest_md5,
        "train_md5": registry.locked_md5(lock, paths.TRAIN),
        "test_md5": registry.locked_md5(lock, paths.TEST),
    }
    return Side(named, source, registry.load(source, root / paths.MODEL_CONF), facts)


def _refuse_stale_splits(root: Path, metadata: dict) -> None:
    """The workspace's splits must be the ones its model was exported from (model.json
    records their md5s): else its training rows could be among the rows it is scored on."""
    for key, path in (("train_md5", paths.TRAIN), ("test_md5", paths.TEST)):
        if (root / path).exists() and io.file_md5(root / path) != metadata["data"][key]:
            raise DataError(
                f"{path} is not the split {paths.MODEL} was exported from: run `dvc repro` "
                "so that the model and its splits are one run"
            )


# What a side reads from DVC's cache at its commit: its export and its splits.
# (ONNX_DIR only where export writes it: _missing skips what a dvc.lock lacks.)
SIDE_OUTPUTS = (paths.MODEL, paths.ONNX_DIR, paths.TRAIN, paths.TEST)


def _missing(root: Path, revision: str) -> list[str]:
    """The outputs of SIDE_OUTPUTS that `revision`'s dvc.lock records and the cache lacks
    (a folder by its listing only: fetching it brings its files too)."""
    lock = Snapshot(root, revision).lock()
    missing = []
    for path in SIDE_OUTPUTS:
        try:
            md5 = registry.locked_md5(lock, path)
        except DataError:  # that commit has no such output (no ONNX export, say)
            continue
        if not registry.cache_path(root, md5).is_file():
            missing.append(str(path))
    return missing


def fetch_missing(root: Path, sides: list[Named | None]) -> None:
    """Bring what the committed sides read into DVC's cache from the default remote when
    it lacks them (a fresh clone in CI holds only HEAD's outputs, after `dvc pull`), so
    that a decision needs no `dvc fetch` of every tagged commit first. Without a remote,
    or when the fetch fails, the reads below say what is missing, in one line."""
    wanted = {n.revision: _missing(root, n.revision) for n in sides if n and n.revision}
    wanted = {revision: paths_ for revision, paths_ in wanted.items() if paths_}
    if not wanted:
        return
    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    with Repo(str(root)) as repo:
        if not repo.config["core"].get("remote"):
            return
        for revision, targets in wanted.items():
            try:
                repo.fetch(targets=targets, revs=[revision], workspace=False)
            except DvcException as exc:
                log.warning("could not fetch %s of %s: %s", ", ".join(targets), revision, exc)


def gather(root: Path, challenger: Named, champion: Named | None) -> Evidence:
    """Both sides loaded and scored on the challenger's test split, less the rows the
    champion trained on, with the prior/mean baseline; the yardstick is the challenger's."""
    fetch_missing(root, [challenger, champion])
    artifact = registry.artifact_name(root)
    new = load_side(root, artifact, challenger)
    old = load_side(root, artifact, champion) if champion else None
    if old is not None and old.source.md5 == new.source.md5:
        raise DataError(
            f"the challenger ({new.named.label}) is the champion's model ({old.named.label}, "
            f"md5 {new.source.md5}): nothing to decide; train a challenger (`dvc exp run`)"
        )
    snapshot = Snapshot(root, challenger.revision)
    params = snapshot.params()
    if old is not None and old.source.metadata["task"] != params.task:
        raise DataError(
            f"the champion does {old.source.metadata['task']}, the challenger {params.task}: "
            "a decision compares models of one task"
        )
    test = snapshot.read(paths.TEST, _wanted(params, [new, old]))
    keep = _unseen(root, old, test)
    test = test[keep].reset_index(drop=True) if not keep.all() else test
    rows = _rows(test, params, new.model)
    with compute.cores(params.compute.cores):
        answers = {"challenger": _answers(new, test, rows.classes)}
        if old is not None:
            answers["champion"] = _answers(old, test, rows.classes)
    answers["baseline"] = _baseline(snapshot, params, rows)
    yardstick = Yardstick(params.task, params.metric, params.business)
    excluded = int((~keep).sum())
    return Evidence(new, old, rows, answers, yardstick, len(test), excluded)


def _inputs(side: Side) -> list[str]:
    """The columns a side's model reads, and those its derived features are made from."""
    features = side.source.metadata["features"]
    roles = schema.roles_from_dict(features["roles"])
    _, derived = derivation.recorded(features)
    return roles.features + derivation.inputs(roles, derived).features


def _wanted(params: Params, sides: list[Side | None]) -> set[str]:
    data = params.data
    wanted = {data.target, schema.ID, *data.groups, *([data.time] if data.time else [])}
    return wanted.union(*(_inputs(s) for s in sides if s is not None))


def _unseen(root: Path, champion: Side | None, test: pd.DataFrame) -> np.ndarray:
    """Which test rows the champion did not train on (its training split's ids, each
    augmented copy counted as its original row)."""
    if champion is None:
        return np.ones(len(test), dtype=bool)
    trained = Snapshot(root, champion.named.revision).read(paths.TRAIN, {schema.ID})
    if schema.ID not in trained or schema.ID not in test:
        raise DataError(
            f"the splits lack the {schema.ID!r} column that tells which test rows the "
            "champion trained on: rebuild them with this project's preprocess (`dvc repro`)"
        )
    seen = pd.Index(schema.base_ids(trained[schema.ID]).unique())
    return ~test[schema.ID].astype(str).isin(seen).to_numpy()


def _rows(test: pd.DataFrame, params: Params, model) -> Rows:
    data = params.data
    groups = schema.present(test, list(data.groups), "group columns", "the test split")
    text = {
        c: schema.category_text(test[c]).where(test[c].notna(), diagnosis.MISSING).astype(str)
        for c in groups
    }
    recent = None
    if data.time and schema.present(test, [data.time], "time column", "the test split"):
        recent = diagnosis.recent_mask(test[data.time], params.evaluate.recent_fraction)[0]
    return Rows(
        truth=schema.target_array(test[data.target]),
        groups=pd.DataFrame(text, index=test.index),
        recent=recent,
        classes=list(model.classes_) if params.task == "classification" else None,
    )


def _frame(side: Side, test: pd.DataFrame) -> pd.DataFrame:
    """The side's feature columns of the rows, typed as in training; a derived feature
    the rows lack is made from their raw columns as the server makes it."""
    features = side.source.metadata["features"]
    roles = schema.roles_from_dict(features["roles"])
    pairs, derived = derivation.recorded(features)
    lacking = [c for c in roles.features if c not in test.columns]
    if set(lacking) & set(derived):
        raw = derivation.inputs(roles, derived)
        if all(c in test.columns for c in raw.features):
            made = derivation.columns(schema.model_frame(test, raw), pairs)
            test = test.assign(**{c: made[c] for c in lacking if c in made.columns})
    lacking = [c for c in roles.features if c not in test.columns]
    if lacking:
        raise DataError(
            f"the {side.named.label} model reads {', '.join(lacking)}, which the challenger's "
            "test split lacks and which it does not derive: judge it against a champion "
            "trained on the same columns (--champion REV)"
        )
    return schema.model_frame(test, roles)


def _answers(side: Side, test: pd.DataFrame, classes: list | None) -> Answers:
    frame = _frame(side, test)
    model = side.model
    # Numbers far outside the training range can overflow inside a model (as in serving).
    with np.errstate(all="ignore"):
        predicted = model.predict(frame)
        proba = None
        if classes is not None and hasattr(model, "predict_proba"):
            proba = aligned(model.predict_proba(frame), list(model.classes_), classes)
    return Answers(np.asarray(predicted), proba)


def aligned(proba: np.ndarray, own: list, classes: list) -> np.ndarray:
    """Probability columns in the order of `classes` (the challenger's), classes matched
    as text. A class `classes` lacks takes its share along: each row is spread again over
    the classes kept (evenly when none kept any)."""
    own_text = [schema.category_label(c) for c in own]
    wanted = [schema.category_label(c) for c in classes]
    if own_text == wanted:
        return proba
    out = np.zeros((len(proba), len(wanted)), dtype=np.float64)
    for i, label in enumerate(own_text):
        if label in wanted:
            out[:, wanted.index(label)] = proba[:, i]
    total = out.sum(axis=1, keepdims=True)
    even = np.full_like(out, 1.0 / len(wanted))
    return np.divide(out, total, out=even, where=total > 0)


def _baseline(snapshot: Snapshot, params: Params, rows: Rows) -> Answers:
    """ML Test Score's simple baseline: the class prior, or the mean, of the challenger's
    training targets (their one column read), for every scored row."""
    from sklearn.dummy import DummyClassifier, DummyRegressor

    target = params.data.target
    y = schema.target_array(snapshot.read(paths.TRAIN, {target})[target])
    if not len(y):
        raise DataError(f"{paths.TRAIN} of {snapshot.where} has no rows: rerun `dvc repro`")
    blank = np.zeros((len(rows.truth), 1))
    if rows.classes is None:
        dummy = DummyRegressor(strategy="mean").fit(np.zeros((len(y), 1)), y)
        return Answers(dummy.predict(blank))
    dummy = DummyClassifier(strategy="prior").fit(np.zeros((len(y), 1)), y)
    proba = aligned(dummy.predict_proba(blank), list(dummy.classes_), rows.classes)
    return Answers(dummy.predict(blank), proba)


def shadow_asked(root: Path, serve: ServeParams) -> str:
    """What `--challenger shadow` judges: serve.shadow, else the git revision the shadow
    log's last record names (a server started with `--shadow`)."""
    if serve.shadow:
        return serve.shadow
    records = shadowing.read(root / serve.shadow_log)
    if not records or not records[-1]["git_revision"]:
        raise DataError(
            f"--challenger shadow: serve.shadow is null and {serve.shadow_log} holds no "
            "shadow's answers: serve with `--shadow EXP|REV` (or set serve.shadow) first"
        )
    return records[-1]["git_revision"]


def live(root: Path, serve: ServeParams, challenger: Named, policy: GateParams) -> dict:
    """The shadow's live evidence (JSON-ready): its rows paired with the champion's
    answers to the same requests, their agreement, and on the labelled pairs both
    models' headline metric and the paired bootstrap interval of the change, scored by
    the challenger's yardstick. What the logs hold now: a replay carries it over."""
    params = Snapshot(root, challenger.revision).params()
    yardstick = Yardstick(params.task, params.metric, params.business)
    theirs = [
        r
        for r in shadowing.read(root / serve.shadow_log)
        if r["git_revision"] == challenger.revision
    ]
    ours = prediction_log.load(root / serve.prediction_log).records
    ours = labels.joined(ours, labels.latest(root / serve.feedback_log))
    matched = shadowing.pairs(ours, theirs)
    truth, champion, shadow, classes = shadowing.labelled_answers(matched, params.task)
    found = {
        "paired_rows": len(matched),
        "labelled_rows": len(truth),
        "champion_md5": sorted({c.get("model_md5") for c, _ in matched} - {None}),
        "agreement": shadowing.agreement(matched, params.task) if matched else None,
        "metric": yardstick.metric,
        "challenger": None,
        "champion": None,
        "change": None,
    }
    if not len(truth):
        return found
    scoring = bootstrap.Scoring(yardstick.metric, yardstick, truth, classes)
    try:
        interval = bootstrap.paired(scoring, shadow, champion, policy=policy)
    except AttributeError:  # a scorer that needs probabilities the logs lack
        return found
    if interval is not None:
        found["challenger"] = round(float(scoring.score(shadow)), bootstrap.DECIMALS)
        found["champion"] = round(float(scoring.score(champion)), bootstrap.DECIMALS)
        found["change"] = interval.as_dict()
    return found
