"""The champion and its shadow compared (monitoring/shadow.py): pairs by id, agreement,
the PSI of their predictions, the shadow's latency, both live metrics on the same
labelled rows; and decide's live gate on those rows (decision/gates.live_gate)."""

from __future__ import annotations

import json

import numpy as np
import orjson
import pytest

from {{ cookiecutter.package_name }}.core.params import BusinessParams, MonitorParams
from {{ cookiecutter.package_name }}.decision import bootstrap, gates
from {{ cookiecutter.package_name }}.decision.verdicts import Yardstick
from {{ cookiecutter.package_name }}.monitoring import shadow

RULES = MonitorParams(psi_threshold=0.2, ks_alpha=0.01, bins=5, min_rows=20)


def logs(n: int, flip: int, task: str = "classification", seed: int = 0):
    """(champion records, shadow records) of n rows: the shadow differs on the first
    `flip` rows; the champion's rows carry labels equal to the shadow's prediction."""
    rng = np.random.default_rng(seed)
    ours, theirs = [], []
    for i in range(n):
        if task == "classification":
            mine = str(rng.choice(["a", "b"]))
            other = ("b" if mine == "a" else "a") if i < flip else mine
        else:
            mine = float(rng.normal(100, 10))
            other = mine * (1.2 if i < flip else 1.01)
        ids = {"time": "t", "request_id": f"r{i}", "row": 0, "id": f"r{i}-0"}
        ours.append({**ids, "inputs": {}, "prediction": mine, "label": other, "model_md5": "m1"})
        theirs.append({"id": f"r{i}-0", "prediction": other, "git_revision": "abc",
                       "model_version": "exp", "latency_ms": float(1 + i % 10)})  # fmt: skip
    return ours, theirs


def yardstick(task: str) -> Yardstick:
    metric = "accuracy" if task == "classification" else "neg_mean_absolute_error"
    return Yardstick(task, metric, BusinessParams(correct_value=1.0, wrong_value=0.0))


def test_agreement_psi_latency_and_both_live_metrics_on_the_same_rows():
    ours, theirs = logs(200, flip=50)
    # Rows the champion never logged (another window) are not paired.
    found = shadow.report(
        ours, [*theirs, {**theirs[0], "id": "gone-0"}], yardstick("classification"), RULES
    )
    assert (found["shadow_rows"], found["paired_rows"]) == (201, 200)
    assert found["agreement"] == {"share_equal": 0.75}
    assert found["champion_md5"] == ["m1"]
    assert found["latency"] == {"p50_ms": 5.5, "p99_ms": 10.0}
    # The labels are the shadow's answers: it is right on every row, the champion on 3/4.
    assert found["live"] == {"metric": "accuracy", "labelled": 200, "champion": 0.75, "shadow": 1.0}
    same = shadow.report(ours, logs(200, flip=0)[1], yardstick("classification"), RULES)
    assert same["prediction_psi"] == 0.0 < found["prediction_psi"]
    assert "| share_equal | 0.75 |" in shadow.summary(found)


def test_regression_agreement_is_a_mean_difference_and_a_share_within_the_tolerance():
    ours, theirs = logs(100, flip=30, task="regression")
    found = shadow.report(ours, theirs, yardstick("regression"), RULES)
    assert found["agreement"]["share_within_tolerance"] == 0.7
    differences = [
        abs(t["prediction"] - o["prediction"]) for o, t in zip(ours, theirs, strict=True)
    ]
    mean = found["agreement"]["mean_absolute_difference"]
    assert mean == pytest.approx(np.mean(differences), abs=1e-6)
    assert found["live"]["shadow"] == 0.0 > found["live"]["champion"]


def test_unlabelled_rows_give_no_live_metric_and_torn_lines_are_skipped(tmp_path):
    ours, theirs = logs(40, flip=10)
    ours = [{k: v for k, v in r.items() if k != "label"} for r in ours]
    path = tmp_path / "shadow.jsonl"
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in theirs) + b'{"id": "torn')
    assert shadow.read(path) == theirs
    found = shadow.report(ours, shadow.read(path), yardstick("classification"), RULES)
    assert found["live"] == {"metric": "accuracy", "labelled": 0, "champion": None, "shadow": None}
    assert json.loads(json.dumps(found)) == found


def live_section(ours, theirs, policy, task="classification") -> dict:
    """What evidence.live records, from the pairs (its scoring, without the git side)."""
    truth, champion, challenger, classes = shadow.labelled_answers(shadow.pairs(ours, theirs), task)
    scoring = bootstrap.Scoring(yardstick(task).metric, yardstick(task), truth, classes)
    interval = bootstrap.paired(scoring, challenger, champion, policy=policy)
    return {"labelled_rows": len(truth), "metric": scoring.metric, "change": interval.as_dict()}


def test_the_live_gate_passes_a_better_shadow_fails_a_worse_and_holds_under_min_rows(configured):
    policy = configured("gate", min_rows=30, bootstrap_samples=200, min_improvement=0.0)
    ours, theirs = logs(200, flip=50)
    better = gates.live_gate(live_section(ours, theirs, policy), policy)
    assert (better.name, better.outcome) == ("live", "pass")
    assert better.detail.startswith("live accuracy change +0.2500, interval [")
    # The champion right where the shadow is wrong: the labels are the champion's.
    worse = [{**o, "label": o["prediction"]} for o in ours]
    assert gates.live_gate(live_section(worse, theirs, policy), policy).outcome == "fail"
    few = gates.live_gate(live_section(ours[:20], theirs[:20], policy), policy)
    assert few.outcome == "hold"
    assert few.detail == "20 labelled rows the shadow scored < gate.min_rows=30: more rows needed"
