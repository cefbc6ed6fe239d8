"""`monitor --act` and `loop`: prod rolled back by itself when the alert says so.

The alert (monitoring/alerts.py) judges the version in prod on the labelled rows it
answered. When it acts, prod goes back to the last version that held: walking GTO's prod
assignments newest first, the first version that is not the current one and that no
rollback record names as rolled back from (a version that failed once is never chosen
again by a rollback; a person may still assign it). The rollback is written as a decision
is (decisions/<UTC>-<commit>.json and .md, `"kind": "rollback"`: the breach, the windows'
figures, the alert policy and its sha256, both versions and their commits), committed
(that file only, so a change in the workspace is never swept in), then prod is assigned
(`gto assign --force`, as an old version is already known to the stage). A step that
fails undoes the ones before it; with no version to go back to, nothing is written.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
from dataclasses import dataclass
from pathlib import Path

from ..core import io
from ..core.errors import DataError, UserError
from ..core.params import Params, ServiceParams
from ..monitoring import alerts, labels, live
from ..serving import registry
from . import record as records
from .evidence import PROD, git
from .promote import run_command
from .verdicts import Yardstick

Assignment = registry.Assignment


@dataclass(frozen=True)
class Assessment:
    """What the alert found, and where a rollback would go."""

    artifact: str
    # None when nothing is in prod (nothing to judge or roll back).
    current: Assignment | None
    verdict: dict | None
    target: Assignment | None
    rolled_back_from: tuple[str, ...]


def prod_history(root: Path, artifact: str) -> list[Assignment]:
    """The prod assignments, newest first (registry.assignments)."""
    return registry.assignments(root, artifact, PROD)


def rolled_back_from(root: Path) -> tuple[str, ...]:
    """The versions the rollback records in decisions/ name as rolled back from."""
    found = set()
    for path in sorted((root / records.FOLDER).glob("*.json")):
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError):
            continue  # not a record; decide --replay names a damaged one
        if isinstance(record, dict) and record.get("kind") == records.ROLLBACK:
            found.add(record["from"]["version"])
    return tuple(sorted(found))


def last_held(history: list[Assignment], excluded: tuple[str, ...]) -> Assignment | None:
    """The newest assignment of a version other than the current one (history[0]) and
    none of `excluded`."""
    current = history[0].version
    for assignment in history[1:]:
        if assignment.version != current and assignment.version not in excluded:
            return assignment
    return None


def assess(root: Path, params: Params, service: ServiceParams, logged: list[dict]) -> Assessment:
    """The alert's verdict on the version in prod, from the logged records joined to the
    labels of serve.feedback_log; nothing written."""
    try:
        artifact = registry.artifact_name(root)
    except (DataError, OSError):  # no model artifact declared: no version can be in prod
        return Assessment("", None, None, None, ())
    history = prod_history(root, artifact)
    if not history:
        return Assessment(artifact, None, None, None, ())
    current = history[0]
    joined = labels.joined(logged, labels.latest(root / service.serve.feedback_log))
    figures = functools.partial(
        live.window_figures,
        yardstick=Yardstick(params.task, params.metric, params.business),
        groups=list(params.data.groups or []),
        min_rows=service.gate.min_rows,
    )
    verdict = alerts.judge(joined, current.version, current.time, figures, service.alert)
    excluded = rolled_back_from(root)
    return Assessment(artifact, current, verdict, last_held(history, excluded), excluded)


def build(assessment: Assessment, params: Params, service: ServiceParams, time: str) -> dict:
    """The rollback's record, JSON-ready."""
    rules = service.alert.model_dump()
    return {
        "format": records.FORMAT,
        "kind": records.ROLLBACK,
        "time": time,
        "verdict": "ROLLBACK",
        "artifact": assessment.artifact,
        "breach": assessment.verdict["summary"],
        "alert": assessment.verdict,
        "from": assessment.current.facts(),
        "to": assessment.target.facts(),
        "rolled_back_before": list(assessment.rolled_back_from),
        "policy": rules,
        "policy_sha256": records.policy_sha256(rules),
        "yardstick": {"task": params.task, "metric": params.metric},
    }


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def markdown(record: dict) -> str:
    """What a reviewer reads: the breach, both versions, each window, how to undo."""
    old, new, name = record["from"], record["to"], record["artifact"]
    lines = [
        f"# Rollback {record['time']}: prod {old['version']} -> {new['version']}",
        "",
        f"- breach: {record['breach']}",
        f"- from: {name} {old['version']} (commit {old['revision']}); a rollback never "
        "chooses it again",
        f"- to: {name} {new['version']} (commit {new['revision']}), the last version in "
        "prod that held",
        f"- policy: service.yaml alert:, sha256 {record['policy_sha256']}",
        "",
        "| window from | to | labelled | metric | group gaps | bias | breach |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for w in record["alert"]["windows"]:
        gaps = ", ".join(f"{c} {_number(g)}" for c, g in w["group_gaps"].items()) or "-"
        breach = "; ".join(w["breach"]) or "none"
        lines.append(
            f"| {w['from']} | {w['to']} | {w['labelled']} | {w['metric']['name']} "
            f"{_number(w['metric']['value'])} | {gaps} | {_number(w['bias'])} | {breach} |"
        )
    lines += [
        "",
        f"Undo: `gto assign {name} --version {old['version']} --stage prod --force`, then "
        "`git revert` the commit that added this record (the version is chosen again).",
    ]
    return "\n".join(lines) + "\n"


class NothingToRollBackTo(UserError):
    """The alert acts, but no earlier version held in prod: a person (or a retrain) must."""


def refuse_unready(root: Path, assessment: Assessment) -> None:
    """What a rollback needs before anything is written."""
    if assessment.target is None:
        tried = ", ".join(assessment.rolled_back_from) or "none"
        raise NothingToRollBackTo(
            f"the alert acts on {assessment.artifact} {assessment.current.version} but no "
            f"earlier version held in prod (rolled back from before: {tried}): nothing was "
            "rolled back; assign one by hand (`gto assign ... --stage prod --force`) or "
            "promote a fixed model (`decide --apply`)"
        )
    if git(root, "var", "GIT_COMMITTER_IDENT") is None:
        raise UserError(
            "git has no identity to commit the rollback with: set user.name and user.email "
            "(`git config user.email you@example.com`)"
        )


def message(record: dict) -> str:
    old, new = record["from"]["version"], record["to"]["version"]
    return f"rollback: prod {old} -> {new} ({record['breach']})"


def apply(root: Path, record: dict) -> str:
    """Write the record, commit it, assign prod; undo every step when one fails. The
    commit's id."""
    from gto import api

    head = run_command(root, "git", "rev-parse", "HEAD").strip()
    before = run_command(root, "git", "tag", "--list").split()
    name = f"{record['time']}-{record['to']['revision'][:7]}"
    written: tuple[Path, ...] = ()
    try:
        written = records.write_pair(root, name, io.json_text(record), markdown(record))
        paths = [str(p) for p in written]
        run_command(root, "git", "add", "--", *paths)
        # Only the record (a change in the workspace stays out); no hooks: a formatter
        # among them would change the record's bytes.
        run_command(root, "git", "commit", "-q", "--no-verify", "-m", message(record), "--", *paths)
        version = record["to"]["version"]
        try:
            api.assign(str(root), record["artifact"], PROD, version=version, force=True)
        except Exception as exc:  # GTO's own errors: one line, then undone below
            raise DataError(f"gto assign failed: {exc}") from None
        return run_command(root, "git", "rev-parse", "HEAD").strip()
    except BaseException:
        _undo(root, head, written, before)
        raise


def _undo(root: Path, head: str, written: tuple[Path, ...], tags: list[str]) -> None:
    """Back to where the rollback started: its commit dropped (the workspace untouched),
    its files removed, a tag it made deleted."""
    made = set((git(root, "tag", "--list") or "").split()) - set(tags)
    for tag in made:
        git(root, "tag", "-d", tag)
    git(root, "reset", "-q", "--soft", head)
    if written:
        git(root, "reset", "-q", head, "--", *map(str, written))
    for path in written:
        (root / path).unlink(missing_ok=True)


def run(
    root: Path, params: Params, service: ServiceParams, logged: list[dict], *, dry_run=False
) -> dict | None:
    """Judge prod and roll back when the alert acts: what was done (for loop.jsonl), or
    None when nothing was. Prints the verdict, then the rollback, a line each. dry_run:
    says what it would do, writes nothing."""
    assessment = assess(root, params, service, logged)
    if assessment.verdict is None:
        print("alert: no version in prod: nothing to judge", flush=True)
        return None
    print(f"alert: {assessment.verdict['summary']}", flush=True)
    if not assessment.verdict["act"]:
        return None
    refuse_unready(root, assessment)
    if dry_run:
        target = assessment.target.version
        print(f"alert (dry run): would roll prod back to {target}", flush=True)
        return None
    record = build(assessment, params, service, records.stamp(dt.datetime.now(dt.UTC)))
    commit = apply(root, record)
    old, new = record["from"]["version"], record["to"]["version"]
    print(f"rollback: prod {old} -> {new}, committed {commit[:7]}", flush=True)
    return {"from": old, "to": new, "commit": commit, "breach": record["breach"]}


def main(root: Path, params: Params, service: ServiceParams, logged: list[dict]) -> int:
    """`monitor --act` on the records `monitor` read (all of the log, whatever --since
    says: the alert judges prod's rows since its assignment): 0 when nothing was to do
    or prod was rolled back (a refusal is a UserError: status 1)."""
    run(root, params, service, logged)
    return 0
