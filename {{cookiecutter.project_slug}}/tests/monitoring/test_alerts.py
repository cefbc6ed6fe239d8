"""The alert's windows, breaches and k-of-n verdict (monitoring/alerts.py), on records and
figures made by hand: the figures function is given, so each rule is tried alone."""

from __future__ import annotations

import datetime as dt

import pytest

from {{ cookiecutter.package_name }}.core.params import AlertParams
from {{ cookiecutter.package_name }}.monitoring import alerts

RULES = {
    "min_metric": 0.7,
    "max_group_gap": 0.2,
    "max_bias": 0.15,
    "min_labelled_rows": 4,
    "windows": 3,
    "breaches": 2,
}
START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def alert(**changes) -> AlertParams:
    return AlertParams(**{**RULES, **changes})


def record(second: int, version: str = "v0.0.2", label: object = "a", row: int = 0) -> dict:
    when = (START + dt.timedelta(seconds=second)).isoformat(timespec="milliseconds")
    found = {"time": when, "request_id": f"r{second}", "row": row, "model_version": version}
    return found if label is None else {**found, "label": label}


def fine(window: list[dict]) -> dict:
    return {
        "labelled": len(window),
        "metric": {"name": "accuracy", "value": 0.9},
        "group_gaps": {"segment": 0.05},
        "bias": 0.01,
    }


def test_windows_hold_the_versions_labelled_rows_in_prediction_order_whole_ones_only():
    mine = [record(s) for s in (5, 1, 3, 2, 4, 0, 6, 7, 8)]
    other = [record(s, version="v0.0.1") for s in range(9)]
    unlabelled = [record(s, label=None) for s in range(9)]
    cut = alerts.windows(mine + other + unlabelled, "v0.0.2", 4)
    assert [[r["request_id"] for r in w] for w in cut] == [
        ["r0", "r1", "r2", "r3"],
        ["r4", "r5", "r6", "r7"],
    ]  # r8 is a partial window: no window


def test_rows_before_the_latest_assignment_to_prod_are_no_window():
    rows = [record(s) for s in range(8)]
    assert len(alerts.windows(rows, "v0.0.2", 4)) == 2
    assert len(alerts.windows(rows, "v0.0.2", 4, START + dt.timedelta(seconds=4))) == 1


@pytest.mark.parametrize(
    ("changed", "reason"),
    [
        ({"metric": {"name": "accuracy", "value": 0.5}}, "live accuracy 0.5 < min_metric 0.7"),
        ({"group_gaps": {"segment": 0.4}}, "segment gap 0.4 > max_group_gap 0.2"),
        ({"bias": 0.3}, "bias 0.3 > max_bias 0.15"),
    ],
)
def test_each_rule_breaches_alone(changed, reason):
    figures = {**fine([]), **changed}
    assert alerts.breach_reasons(figures, alert()) == [reason]
    assert alerts.breach_reasons(fine([]), alert()) == []


def test_a_figure_without_enough_rows_breaches_nothing():
    figures = {
        "labelled": 4,
        "metric": {"name": "accuracy", "value": None, "why": "fewer than 10 labelled rows"},
        "group_gaps": {"segment": None},
        "bias": None,
    }
    assert alerts.breach_reasons(figures, alert()) == []


def breaching_from(first_bad: int):
    """Figures whose metric falls below the floor from window `first_bad` on (0-based)."""

    def figures(window: list[dict]) -> dict:
        bad = int(window[0]["request_id"][1:]) >= first_bad * 4
        return {**fine(window), "metric": {"name": "accuracy", "value": 0.4 if bad else 0.9}}

    return figures


def test_k_of_n_one_noisy_window_never_acts_two_of_the_last_three_do():
    rows = [record(s) for s in range(20)]  # five windows
    late = alerts.judge(rows, "v0.0.2", None, breaching_from(4), alert())
    assert (late["breached"], late["act"]) == (1, False)
    assert [bool(w["breach"]) for w in late["windows"]] == [False, False, True]
    acting = alerts.judge(rows, "v0.0.2", None, breaching_from(3), alert())
    assert (acting["breached"], acting["act"]) == (2, True)
    assert acting["windows_total"] == 5 and len(acting["windows"]) == 3
    assert "2 of the last 3 windows" in acting["summary"]
    assert "live accuracy 0.4 < min_metric 0.7" in acting["summary"]


def test_no_windows_no_act_and_the_verdict_is_json_ready():
    import json

    verdict = alerts.judge([record(s) for s in range(3)], "v0.0.2", START, fine, alert())
    assert (verdict["act"], verdict["windows"], verdict["breached"]) == (False, [], 0)
    assert json.loads(json.dumps(verdict)) == verdict
