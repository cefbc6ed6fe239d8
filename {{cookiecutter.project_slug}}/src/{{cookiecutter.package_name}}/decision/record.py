"""A decision written down: decisions/<UTC time>-<challenger's short rev>.json and .md.

The JSON holds everything needed to check the decision later: the verdict and each gate,
every measure and interval, both sides (what was asked for, the commit, the GTO version,
the md5s of the model, its manifest and the splits), the policy and its sha256, the
yardstick and the rows scored. Same inputs give the same bytes (sorted keys, rounded
measures), so `decide --replay` recomputes a decision from its recorded revisions and
policy and compares the JSON byte for byte. The markdown is what a reviewer reads.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path

from ..core import io
from ..core.errors import DataError
from ..core.params import GateParams
from .evidence import Evidence, Named
from .verdicts import Judgement

FOLDER = Path("decisions")
FORMAT = 1
# A rollback's record (decision/rollback.py) says so; decide's records have no kind.
ROLLBACK = "rollback"
# A JSON record's keys; a file without them is not a decision as decide writes it.
KEYS = {"format", "time", "verdict", "gates", "measures", "challenger", "champion", "policy"}


def stamp(now: dt.datetime) -> str:
    """20261206T233000Z: the UTC time in file names and records."""
    return now.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ")


def _text_keys(node: object) -> object:
    """Mapping keys as text (a value_matrix class written 0 in YAML is the int 0): JSON
    keys are text, and sorting mixed keys would fail."""
    if isinstance(node, dict):
        return {str(k): _text_keys(v) for k, v in node.items()}
    return node


def policy_sha256(policy: dict) -> str:
    return hashlib.sha256(io.json_text(policy).encode("utf-8")).hexdigest()


def build(evidence: Evidence, judgement: Judgement, policy: GateParams, time: str) -> dict:
    """The record of one decision, JSON-ready."""
    rules = policy.model_dump()
    yardstick = evidence.yardstick
    return {
        "format": FORMAT,
        "time": time,
        "verdict": judgement.verdict,
        "gates": [
            {
                "name": g.name,
                "value": g.value,
                "threshold": g.threshold,
                "outcome": g.outcome,
                "detail": g.detail,
            }
            for g in judgement.gates
        ],
        "measures": judgement.measures,
        "challenger": evidence.challenger.facts,
        "champion": evidence.champion.facts if evidence.champion else None,
        "policy": rules,
        "policy_sha256": policy_sha256(rules),
        "yardstick": {
            "task": yardstick.task,
            "metric": yardstick.metric,
            "business": _text_keys(yardstick.business.model_dump(exclude_none=True)),
        },
        "rows": {"scored": evidence.scored, "excluded": evidence.excluded},
    }


def text(record: dict) -> str:
    return io.json_text(record)


def stem(record: dict) -> str:
    revision = record["challenger"]["revision"]
    return f"{record['time']}-{revision[:7] if revision else 'workspace'}"


def write(root: Path, record: dict) -> tuple[Path, Path]:
    """Both files, each written whole or not at all: (json, md), relative to root."""
    return write_pair(root, stem(record), text(record), markdown(record))


def write_pair(root: Path, name: str, json_text: str, markdown_text: str) -> tuple[Path, Path]:
    """decisions/<name>.json and .md (a decision's or a rollback's), each written whole or
    not at all: their paths relative to root."""
    base = FOLDER / name
    paths = (base.with_suffix(".json"), base.with_suffix(".md"))
    io.write_text(root / paths[0], json_text)
    io.write_text(root / paths[1], markdown_text)
    return paths


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.6g}"


def gate_lines(record: dict) -> list[str]:
    """One line per gate: outcome, name, value against threshold, and what it means."""
    return [
        f"{g['outcome']:>4}  {g['name']}: value {_number(g['value'])}, threshold "
        f"{_number(g['threshold'])}: {g['detail']}"
        for g in record["gates"]
    ]


def _side_line(facts: dict | None) -> str:
    if facts is None:
        return "none in prod: only the absolute gates apply"
    revision = facts["revision"] or "uncommitted (not replayable)"
    version = facts["version"] or "unregistered"
    return (
        f"{facts['label']}: commit {revision}, version {version}, model {facts['model']} "
        f"(md5 {facts['model_md5']}, manifest md5 {facts['manifest_md5']}), train md5 "
        f"{facts['train_md5']}, test md5 {facts['test_md5']}"
    )


def _live_lines(live: dict | None) -> list[str]:
    """The shadow's live evidence (decide --challenger shadow), when the record has it."""
    if live is None:
        return []
    agreement = ", ".join(f"{k} {v}" for k, v in (live["agreement"] or {}).items())
    return [
        f"- live, in the shadow: {live['paired_rows']} rows answered by both "
        f"({agreement or 'none'}), {live['labelled_rows']} labelled: {live['metric']} "
        f"{_number(live['challenger'])} (challenger) against {_number(live['champion'])} "
        "(champion, as served)"
    ]


def markdown(record: dict) -> str:
    """What a reviewer reads: the verdict, a table of the gates, both sides, the policy."""
    rows, yardstick = record["rows"], record["yardstick"]
    lines = [
        f"# Decision {record['time']}: {record['verdict']}",
        "",
        f"- challenger: {_side_line(record['challenger'])}",
        f"- champion: {_side_line(record['champion'])}",
        f"- rows: {rows['scored']} test rows of the challenger scored, {rows['excluded']} left "
        "out (the champion trained on them)",
        f"- yardstick: {yardstick['task']}, headline metric {yardstick['metric']}",
        f"- policy: service.yaml gate:, sha256 {record['policy_sha256']}",
        *_live_lines(record.get("live")),
        "",
        "| gate | value | threshold | outcome | detail |",
        "| --- | --- | --- | --- | --- |",
    ]
    for g in record["gates"]:
        detail = g["detail"].replace("|", "\\|")
        lines.append(
            f"| {g['name']} | {_number(g['value'])} | {_number(g['threshold'])} | "
            f"{g['outcome']} | {detail} |"
        )
    lines += ["", "Every measure and interval, and the policy, are in the JSON file beside this."]
    return "\n".join(lines) + "\n"


def read(path: Path) -> dict:
    """A record as decide wrote it; a damaged one is refused in one line."""
    try:
        record = json.loads(Path(path).read_text(encoding="utf-8"))
        if isinstance(record, dict) and record.get("kind") == ROLLBACK:
            raise DataError(
                f"{path} records a rollback (monitor --act), which decide does not replay: "
                "its .md beside it says how to check it and how to undo it"
            )
        valid = isinstance(record, dict) and set(record) >= KEYS
        valid = valid and isinstance(record["challenger"], dict)
    except FileNotFoundError:
        raise DataError(f"{path} does not exist: name a decisions/*.json file") from None
    except (ValueError, UnicodeDecodeError):
        valid = False
    if not valid or record.get("format") != FORMAT:
        raise DataError(
            f"{path} is damaged (not a decision as decide writes it): restore it from git "
            f"(`git checkout -- {path}`)"
        )
    return record


def named(facts: dict | None, role: str, path: Path) -> Named | None:
    """A recorded side, to resolve again by its commit."""
    if facts is None:
        return None
    try:
        side = Named(*(facts[key] for key in ("asked", "label", "revision", "version", "stage")))
    except (KeyError, TypeError):
        raise DataError(f"{path} is damaged: its {role} lacks fields decide records") from None
    if side.revision is None:
        raise DataError(
            f"{path}: its {role} was an uncommitted workspace, which no commit holds, so it "
            "cannot be replayed: commit the pipeline's outputs before deciding"
        )
    return side


def first_difference(recorded: str, replayed: str) -> str | None:
    """Where two JSON texts first differ, as `line N: recorded ... / replayed ...`."""
    if recorded == replayed:
        return None
    old, new = recorded.splitlines(), replayed.splitlines()
    for number, (a, b) in enumerate(zip(old, new, strict=False), start=1):
        if a != b:
            return f"line {number}: recorded {a.strip()} / replayed {b.strip()}"
    number = min(len(old), len(new)) + 1
    return f"line {number}: one text ends there (recorded {len(old)} lines, replayed {len(new)})"
