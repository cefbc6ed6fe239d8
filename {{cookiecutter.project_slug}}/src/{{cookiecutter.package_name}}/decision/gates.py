"""The policy's gates (service.yaml's gate:) on two models' answers, and the verdict.

Every change is the challenger's value minus the champion's, in the direction in which
the metric is better. Gates, in the order they are reported:
- rows: the rows scored; fewer than gate.min_rows cannot pass (hold).
- headline, business: the lower end of the paired bootstrap interval of the change must
  reach min_improvement / min_business_change (pass); its upper end below it fails; an
  interval across it holds: more rows needed.
- group_gap:<column>: per data.groups column, the challenger's gap (diagnosis.GAP_METRIC
  between the values with gate.min_rows rows) minus the champion's, at most
  max_gap_increase; fewer than 2 such values hold.
- class:<class> (classification): the champion's recall and F1 minus the challenger's,
  each at most max_class_drop; a class with fewer than gate.min_rows rows holds.
- recent: the headline metric on the recent slice may drop by at most max_recent_drop.
- baseline: a prior/mean predictor must score below the challenger (ML Test Score, Model 5).
- live (`decide --challenger shadow` only): the headline change on the labelled rows both
  models answered live (the shadow's log), judged as the headline gate (live_gate).
Without a champion the relative gates (headline, business, group gaps, classes, recent)
do not apply (n/a). A gate's value and threshold are the numbers it compared, rounded to
6 decimals first, so a recorded decision reads the same as it was made.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..core.params import GateParams
from ..modeling import business
from ..quality import diagnosis
from . import bootstrap
from .verdicts import Answers, Gate, Judgement, Outcome, Rows, Verdict, Yardstick


@dataclass(frozen=True)
class _Case:
    """What every gate reads: the rows, both models' answers, how to score, the policy."""

    rows: Rows
    challenger: Answers
    champion: Answers | None
    yardstick: Yardstick
    policy: GateParams

    def scoring(self, metric: str) -> bootstrap.Scoring:
        return bootstrap.Scoring(metric, self.yardstick, self.rows.truth, self.rows.classes)

    @property
    def size(self) -> int:
        return len(self.rows.truth)


def _round(value: float | None) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return round(float(value), bootstrap.DECIMALS)


def _few_rows(name: str, rows: int, policy: GateParams, what: str = "rows scored") -> Gate:
    return Gate(
        name,
        None,
        None,
        "hold",
        f"{rows} {what} < gate.min_rows={policy.min_rows}: more rows needed",
    )


def _no_champion(name: str) -> Gate:
    return Gate(name, None, None, "n/a", "no champion: a relative gate")


def _rows_gate(case: _Case) -> Gate:
    outcome: Outcome = "pass" if case.size >= case.policy.min_rows else "hold"
    sign = ">=" if outcome == "pass" else "<"
    detail = f"{case.size} rows scored {sign} gate.min_rows={case.policy.min_rows}"
    return Gate("rows", float(case.size), float(case.policy.min_rows), outcome, detail)


def _interval_outcome(name: str, metric: str, interval, threshold: float) -> Gate:
    """pass: lower >= threshold (value: lower); fail: upper < threshold (value: upper);
    hold otherwise (value: lower, the end that fell short)."""
    if interval is None:
        return Gate(name, None, threshold, "hold", f"{metric} could not be scored on these rows")
    if interval.lower is None:
        detail = (
            f"{metric}: {interval.skipped} of {interval.samples} resamples could not be "
            "scored: more rows needed"
        )
        return Gate(name, None, threshold, "hold", detail)
    lower, upper = _round(interval.lower), _round(interval.upper)
    shown = f"{metric} change {interval.point:+.4f}, interval [{lower:+.4f}, {upper:+.4f}]"
    if lower >= threshold:
        return Gate(name, lower, threshold, "pass", f"{shown}: lower end >= {threshold:g}")
    if upper < threshold:
        return Gate(name, upper, threshold, "fail", f"{shown}: upper end < {threshold:g}")
    detail = f"{shown} straddles {threshold:g}: more rows needed"
    return Gate(name, lower, threshold, "hold", detail)


def _change_gate(case: _Case, name: str, metric: str, threshold: float) -> tuple[Gate, dict]:
    """headline or business: the interval of the change against `threshold`."""
    scoring = case.scoring(metric)
    measure = {"metric": metric, "challenger": scoring.score(case.challenger)}
    if case.champion is None:
        return _no_champion(name), {**measure, "champion": None, "change": None}
    measure["champion"] = scoring.score(case.champion)
    interval = bootstrap.paired(scoring, case.challenger, case.champion, policy=case.policy)
    measure["change"] = interval.as_dict() if interval is not None else None
    if case.size < case.policy.min_rows:
        return _few_rows(name, case.size, case.policy), measure
    return _interval_outcome(name, metric, interval, threshold), measure


def _gap_gate(
    column: str, metric: str, ours: dict, theirs: dict | None, policy: GateParams
) -> Gate:
    name, limit = f"group_gap:{column}", _round(policy.max_gap_increase)
    if theirs is None:
        return _no_champion(name)
    if "gap" not in ours:
        detail = (
            f"{column}: fewer than 2 of its values have gate.min_rows={policy.min_rows} rows: "
            "no gap to compare, more rows needed"
        )
        return Gate(name, None, limit, "hold", detail)
    increase = _round(ours["gap"] - theirs["gap"])
    outcome: Outcome = "pass" if increase <= limit else "fail"
    detail = (
        f"{column}: {metric} gap {ours['gap']:.3f} vs champion {theirs['gap']:.3f} "
        f"({increase:+.3f} {'<=' if outcome == 'pass' else '>'} {limit:g})"
    )
    return Gate(name, increase, limit, outcome, detail)


def _group_gates(case: _Case) -> tuple[list[Gate], dict]:
    """One gate per data.groups column; per value metrics and the gap of both models."""
    task, truth = case.yardstick.task, case.rows.truth
    metric = diagnosis.GAP_METRIC[task]
    gates, measures = [], {}
    for column in case.rows.groups.columns:
        frame = case.rows.groups[[column]]

        def of(answers: Answers, frame=frame, column=column) -> dict:
            found = diagnosis.per_group(truth, answers.predicted, frame, task, case.policy.min_rows)
            return found[diagnosis.key(column)]

        ours = of(case.challenger)
        theirs = of(case.champion) if case.champion is not None else None
        measures[column] = {"metric": metric, "challenger": ours, "champion": theirs}
        gates.append(_gap_gate(column, metric, ours, theirs, case.policy))
    return gates, measures


def _class_gate(label: str, ours: dict, theirs: dict | None, policy: GateParams) -> Gate:
    name, limit = f"class:{label}", _round(policy.max_class_drop)
    if theirs is None:
        return _no_champion(name)
    if ours["support"] < policy.min_rows:
        return _few_rows(name, ours["support"], policy, f"rows of class {label}")
    drops = {m: _round(theirs[m] - ours[m]) for m in ("recall", "f1")}
    dropped = [m for m, drop in drops.items() if drop > limit]
    shown = "; ".join(
        f"{m} {ours[m]:.3f} vs champion {theirs[m]:.3f} (drop {drops[m]:+.3f})" for m in drops
    )
    verdict_text = f"{' and '.join(dropped)} dropped by more than" if dropped else "both within"
    detail = f"{label}: {shown}: {verdict_text} {limit:g}"
    return Gate(name, max(drops.values()), limit, "fail" if dropped else "pass", detail)


def _class_gates(case: _Case) -> tuple[list[Gate], dict | None]:
    """Classification: one gate per class (recall and F1); per class metrics of both."""
    if case.yardstick.task != "classification":
        return [], None
    truth, classes, least = case.rows.truth, case.rows.classes, case.policy.min_rows
    ours, _ = diagnosis.per_class(truth, case.challenger.predicted, classes, least)
    theirs = None
    if case.champion is not None:
        theirs, _ = diagnosis.per_class(truth, case.champion.predicted, classes, least)
    gates, measures = [], {}
    for label, values in ours.items():
        other = theirs[label] if theirs is not None else None
        measures[label] = {"challenger": values, "champion": other}
        gates.append(_class_gate(label, values, other, case.policy))
    return gates, measures


def _recent_gate(case: _Case) -> tuple[Gate, dict | None]:
    """The headline metric on the recent slice: the drop from the champion's."""
    if case.rows.recent is None:
        return Gate("recent", None, None, "n/a", "no data.time: no recent slice"), None
    positions = np.flatnonzero(case.rows.recent)
    metric, limit = case.yardstick.metric, _round(case.policy.max_recent_drop)
    scoring = case.scoring(metric)
    ours = _round(scoring.score(case.challenger, positions))
    measure = {"metric": metric, "rows": len(positions), "challenger": ours, "champion": None}
    if case.champion is None:
        return _no_champion("recent"), measure
    theirs = measure["champion"] = _round(scoring.score(case.champion, positions))
    if len(positions) < case.policy.min_rows:
        return _few_rows("recent", len(positions), case.policy, "recent rows"), measure
    if ours is None or theirs is None:
        detail = f"{metric} could not be scored on the {len(positions)} recent rows"
        return Gate("recent", None, limit, "hold", detail), measure
    drop = _round(theirs - ours)
    outcome: Outcome = "pass" if drop <= limit else "fail"
    detail = (
        f"{metric} on {len(positions)} recent rows {ours:.4f} vs champion {theirs:.4f} "
        f"(drop {drop:+.4f} {'<=' if outcome == 'pass' else '>'} {limit:g})"
    )
    return Gate("recent", drop, limit, outcome, detail), measure


def _baseline_gate(case: _Case, baseline: Answers) -> tuple[Gate, dict]:
    """The challenger must score above a prior/mean predictor on the headline metric."""
    metric = case.yardstick.metric
    scoring = case.scoring(metric)
    ours, theirs = _round(scoring.score(case.challenger)), _round(scoring.score(baseline))
    measure = {"metric": metric, "challenger": ours, "baseline": theirs}
    if case.size < case.policy.min_rows:
        return _few_rows("baseline", case.size, case.policy), measure
    if ours is None or theirs is None:
        return Gate("baseline", ours, theirs, "hold", f"{metric} could not be scored"), measure
    if ours > theirs:
        detail = f"{metric} {ours:.4f} > baseline {theirs:.4f}"
        return Gate("baseline", ours, theirs, "pass", detail), measure
    detail = f"{metric} {ours:.4f} <= baseline {theirs:.4f}: a prior/mean predictor does as well"
    return Gate("baseline", ours, theirs, "fail", detail), measure


def live_gate(live: dict, policy: GateParams) -> Gate:
    """live (decide --challenger shadow): the change of the headline metric on the
    labelled rows both models answered live (evidence.live), judged as the headline
    gate; fewer than gate.min_rows labelled rows hold."""
    rows = live["labelled_rows"]
    if rows < policy.min_rows:
        return _few_rows("live", rows, policy, "labelled rows the shadow scored")
    change = live["change"]
    interval = None if change is None else bootstrap.Interval(**change)
    metric = f"live {live['metric']}"
    return _interval_outcome("live", metric, interval, _round(policy.min_improvement))


def _json(value):
    """Measures as JSON: plain numbers, 6 decimals, None for what could not be measured."""
    if isinstance(value, dict):
        return {str(k): _json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json(v) for v in value]
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return _round(value)
    return value


def verdict(gates: list[Gate]) -> Verdict:
    """REJECT if any gate fails; else HOLD if any holds; else PROMOTE."""
    outcomes = {gate.outcome for gate in gates}
    if "fail" in outcomes:
        return "REJECT"
    return "HOLD" if "hold" in outcomes else "PROMOTE"


def judge(
    rows: Rows,
    challenger: Answers,
    champion: Answers | None,
    baseline: Answers,
    *,
    yardstick: Yardstick,
    policy: GateParams,
) -> Judgement:
    """Every gate of the policy on the shared rows (champion None: no model in prod, so
    only the absolute gates, rows and baseline, apply)."""
    case = _Case(rows, challenger, champion, yardstick, policy)
    recent = int(rows.recent.sum()) if rows.recent is not None else None
    measures: dict = {"rows": {"scored": case.size, "recent": recent}}
    gates = [_rows_gate(case)]
    if case.size == 0:
        return Judgement(_json(measures), gates, verdict(gates))
    for name, metric, threshold in (
        ("headline", yardstick.metric, policy.min_improvement),
        ("business", business.NAME, policy.min_business_change),
    ):
        gate, measures[name] = _change_gate(case, name, metric, _round(threshold))
        gates.append(gate)
    group_gates, measures["groups"] = _group_gates(case)
    class_gates, measures["classes"] = _class_gates(case)
    recent_gate, measures["recent"] = _recent_gate(case)
    baseline_gate, measures["baseline"] = _baseline_gate(case, baseline)
    gates += [*group_gates, *class_gates, recent_gate, baseline_gate]
    return Judgement(_json(measures), gates, verdict(gates))
