"""`decide --apply`: the decision becomes a commit, and a PROMOTE a GTO version in prod.

Every precondition is checked before the first write (the challenger committed, no
uncommitted change to a tracked file but the challenger's own, a git identity, the GTO
tag to make still free), so a refusal leaves nothing behind; a step that fails after the
first write (a `dvc exp apply`, a commit, a tag) undoes the ones before it. HOLD and
REJECT commit the decision and leave prod and the workspace's model where they are.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from ..core.errors import DataError
from ..core.params import GateParams
from ..serving import registry
from . import record as records
from .evidence import PROD, Named, git

STAGING = "staging"


@dataclass(frozen=True)
class Plan:
    """What --apply does once the decision files are written."""

    verdict: str
    # The challenger's commit to bring into the workspace (dvc exp apply); None: HEAD's.
    bring_in: str | None
    # The version to assign and its stage (None on HOLD and REJECT), and whether it is
    # registered first (at the decision's commit).
    version: str | None = None
    stage: str | None = None
    register: bool = False


def run_command(root: Path, *command: str) -> str:
    """`command`'s output, run in `root`; its last line of error as a DataError."""
    done = subprocess.run(command, cwd=root, capture_output=True, text=True)
    if done.returncode != 0:
        problem = (done.stderr or done.stdout).strip().splitlines()
        raise DataError(f"`{' '.join(command)}` failed: {problem[-1] if problem else 'no output'}")
    return done.stdout


def refuse_unready(root: Path, challenger: Named) -> None:
    """What --apply needs before anything is scored or written."""
    if challenger.revision is None:
        raise DataError(
            "--apply records decisions about committed models only, and the workspace's "
            "export, splits or params.yaml differ from HEAD: commit them (git add dvc.lock "
            "params.yaml models && git commit) or decide without --apply"
        )
    changed = uncommitted(root, challenger.revision)
    if changed:
        raise DataError(
            f"tracked files have uncommitted changes ({changed[0]} ...) that are not the "
            "challenger's: --apply commits only its decision, so commit or stash them first "
            "(`git status` lists them)"
        )
    if git(root, "var", "GIT_COMMITTER_IDENT") is None:
        raise DataError(
            "git has no identity to commit the decision with: set user.name and user.email "
            "(`git config user.email you@example.com`)"
        )


def uncommitted(root: Path, challenger: str) -> list[str]:
    """The tracked files changed since HEAD (in the workspace or staged) that the
    challenger's commit does not have as they are. After a plain `dvc exp run` the
    workspace holds the experiment's results (dvc.lock, params.yaml, metrics) uncommitted;
    --apply brings in that same commit (`dvc exp apply`), so those files lose nothing and
    are no reason to refuse. A staged file is compared as staged: the commit would take it."""
    found: set[str] = set()
    for staged in (False, True):
        changed = _changed(root, "HEAD", staged=staged)
        if changed:
            found |= set(_changed(root, challenger, changed, staged=staged))
    return sorted(found)


def _changed(root: Path, commit: str, paths: list[str] = (), *, staged: bool) -> list[str]:
    """The files (of `paths`, or all) that differ from `commit` in the workspace, or staged."""
    where = ["--cached"] if staged else []
    listed = git(root, "diff", *where, "--name-only", "-z", commit, "--", *paths)
    if listed is None:
        raise DataError(f"{root.resolve()} is not a git repository: --apply commits decisions")
    return [name for name in listed.split("\0") if name]


def next_version(root: Path, artifact: str) -> str:
    """The version after the latest registered one (GTO's patch bump), its tag free."""
    from gto import api
    from gto.exceptions import ArtifactNotFound
    from gto.versions import SemVer

    try:
        latest = api.find_latest_version(str(root), artifact, registered=True)
    except ArtifactNotFound:  # nothing registered yet: the first version
        latest = None
    version = SemVer(latest.version).bump_patch().version if latest else "v0.0.1"
    if git(root, "rev-parse", "--verify", "--quiet", f"refs/tags/{artifact}@{version}"):
        raise DataError(
            f"git tag {artifact}@{version} exists but GTO does not list it as the latest "
            "version: delete or fix that tag (`gto show` lists versions), then decide again"
        )
    return version


def plan(root: Path, artifact: str, record: dict, policy: GateParams) -> Plan:
    """What --apply will do, every precondition of it checked; nothing written."""
    revision = record["challenger"]["revision"]
    head = git(root, "rev-parse", "HEAD")
    bring_in = revision if head is None or head.strip() != revision else None
    if record["verdict"] != "PROMOTE":
        return Plan(record["verdict"], None)
    existing = record["challenger"]["version"]
    if existing is None:
        stage = STAGING if policy.require_staging else PROD
        return Plan("PROMOTE", bring_in, next_version(root, artifact), stage, register=True)
    staged = registry.assigned_version(root, artifact, STAGING)
    in_staging = staged is not None and staged[0] == existing
    stage = STAGING if policy.require_staging and not in_staging else PROD
    return Plan("PROMOTE", bring_in, existing, stage)


def message(record: dict) -> str:
    """The commit's one line: the verdict, the challenger, each gate's outcome."""
    outcomes = ", ".join(f"{g['name']} {g['outcome']}" for g in record["gates"])
    return f"decide: {record['verdict']} {record['challenger']['label']} ({outcomes})"


def apply(root: Path, artifact: str, record: dict, steps: Plan) -> str:
    """Write the decision, commit it (with the challenger's files on PROMOTE when it is
    not HEAD), register and assign; undo what was done when a step fails. Returns what
    happened, one line."""
    head = run_command(root, "git", "rev-parse", "HEAD").strip()
    written: tuple[Path, Path] = ()
    try:
        written = records.write(root, record)
        changed = _bring_in(root, head, steps.bring_in) if steps.verdict == "PROMOTE" else []
        run_command(root, "git", "add", "-A", "--", *map(str, written), *changed)
        # No hooks: a formatter among them would change the record's bytes, and replay
        # compares those.
        run_command(root, "git", "commit", "-q", "--no-verify", "-m", message(record))
        return _assign(root, artifact, steps)
    except BaseException:
        _undo(root, artifact, head, written, steps)
        raise


def _bring_in(root: Path, head: str, revision: str | None) -> list[str]:
    """The challenger's files into the workspace (its outputs from the DVC cache); the
    paths git tracks that differ from HEAD's, to commit."""
    if revision is None:
        return []
    run_command(root, sys.executable, "-m", "dvc", "exp", "apply", revision)
    listed = run_command(root, "git", "diff", "--name-only", head, revision)
    return listed.splitlines()


def _assign(root: Path, artifact: str, steps: Plan) -> str:
    from gto import api

    if steps.version is None:
        return f"decision committed; {PROD} stays where it was"
    if steps.register:
        api.register(str(root), artifact, "HEAD", version=steps.version)
    api.assign(str(root), artifact, steps.stage, version=steps.version)
    done = f"{artifact}@{steps.version} assigned {steps.stage}"
    if steps.stage == STAGING:
        done += f" (gate.require_staging: `decide --challenger {STAGING} --apply` next)"
    return done


def _undo(root: Path, artifact: str, head: str, written: tuple, steps: Plan) -> None:
    """Back to where --apply started: the commit dropped, the workspace HEAD's again,
    the decision files and a tag this run made removed."""
    if steps.register and steps.version:
        git(root, "tag", "-d", f"{artifact}@{steps.version}")
    git(root, "reset", "-q", "--hard", head)
    if steps.bring_in:
        dvc = [sys.executable, "-m", "dvc", "checkout", "-q", "--force"]
        subprocess.run(dvc, cwd=root, capture_output=True)
    for path in written:
        (root / path).unlink(missing_ok=True)
