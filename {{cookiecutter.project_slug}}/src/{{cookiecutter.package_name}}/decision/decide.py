"""`python -m <package> decide`: judge a challenger against the champion by the policy in
service.yaml (gate:), print the verdict and one line per gate, write the decision to
decisions/, and with --apply commit it and, on PROMOTE, move prod (promote.py).

The exit status is verdicts.EXIT_STATUS's (0 PROMOTE, 3 HOLD, 4 REJECT) so CI can act on
it; an input decide refuses is one line and status 1, with nothing written.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

from pydantic import ValidationError

from ..core import paths
from ..core.errors import DataError
from ..core.params import GateParams, load_service
from ..serving import registry
from . import evidence, gates, promote
from . import record as records
from .verdicts import EXIT_STATUS, Judgement


def judged(
    root: Path, challenger, champion, policy: GateParams, time: str, live: dict | None = None
) -> dict:
    """The record of one decision: both sides scored and judged; with the shadow's `live`
    evidence (evidence.live), its section and its gate too."""
    found = evidence.gather(root, challenger, champion)
    answers = found.answers
    judgement = gates.judge(
        found.rows,
        answers["challenger"],
        answers.get("champion"),
        answers["baseline"],
        yardstick=found.yardstick,
        policy=policy,
    )
    if live is not None:
        every = [*judgement.gates, gates.live_gate(live, policy)]
        judgement = Judgement(judgement.measures, every, gates.verdict(every))
    record = records.build(found, judgement, policy, time)
    if live is not None:
        record["live"] = live
    return record


def run(
    root: Path,
    challenger: str | None = None,
    champion: str | None = None,
    *,
    apply: bool = False,
    now: dt.datetime | None = None,
    say: Callable[[str], None] = print,
) -> int:
    """One decision; `now` (UTC) names it, the current time unless given."""
    service = load_service(root / paths.SERVICE)
    policy = service.gate
    artifact = registry.artifact_name(root)
    shadow = challenger == evidence.SHADOW
    if shadow:
        challenger = evidence.shadow_asked(root, service.serve)
    new = evidence.resolve_challenger(root, artifact, challenger)
    old = evidence.resolve_champion(root, artifact, champion)
    if apply:
        promote.refuse_unready(root, new)
    live = evidence.live(root, service.serve, new, policy) if shadow else None
    time = records.stamp(now or dt.datetime.now(dt.UTC))
    record = judged(root, new, old, policy, time, live)
    steps = promote.plan(root, artifact, record, policy) if apply else None
    _report(record, say)
    if steps is None:
        written = records.write(root, record)
        say(f"written: {written[0]} and {written[1]} (--apply commits them)")
    else:
        say(promote.apply(root, artifact, record, steps))
    return EXIT_STATUS[record["verdict"]]


def _report(record: dict, say: Callable[[str], None]) -> None:
    champion = record["champion"]
    against = champion["label"] if champion else "no model in prod (absolute gates only)"
    say(f"{record['verdict']}: {record['challenger']['label']} against {against}")
    for line in records.gate_lines(record):
        say(f"  {line}")


def replay(root: Path, path: Path, say: Callable[[str], None] = print) -> int:
    """Recompute a recorded decision from its revisions and policy; the verdict's status
    when the JSON comes out byte for byte the same, else 1 naming the first difference."""
    recorded = records.read(path)
    try:
        policy = GateParams.model_validate(recorded["policy"])
    except ValidationError as exc:
        problem = exc.errors()[0]["msg"]
        raise DataError(f"{path} is damaged: its policy is not valid ({problem})") from None
    new = records.named(recorded["challenger"], "challenger", path)
    old = records.named(recorded["champion"], "champion", path)
    # The live evidence is what the logs held then: carried over, its gate judged again.
    again = judged(root, new, old, policy, recorded["time"], recorded.get("live"))
    again = records.text(again)
    difference = records.first_difference(Path(path).read_text(encoding="utf-8"), again)
    if difference:
        say(f"replay differs from {path}: {difference}")
        return 1
    say(f"replayed {path}: the same decision, byte for byte ({recorded['verdict']})")
    return EXIT_STATUS[recorded["verdict"]]
