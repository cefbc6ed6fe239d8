"""Live figures of joined records: the metric, group gaps and prediction bias of a window,
computed by hand on rows built to give round numbers."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from {{ cookiecutter.package_name }}.decision.verdicts import Yardstick
from {{ cookiecutter.package_name }}.monitoring import live


def row(label, prediction, color: str, region: str, **extra) -> dict:
    """A joined record: color a feature (in inputs), region a group the request carried
    beside the features (the log's groups)."""
    record = {"inputs": {"color": color, "x": 1.0}, "groups": {"region": region}}
    record.update(prediction=prediction, probabilities=None, **extra)
    if label is not None:
        record["label"] = label
    return record


def classified() -> list[dict]:
    """red/north: 20 rows all right; blue/south: 20 rows that always say a (half wrong);
    5 rows without a label, which count for nothing."""
    red = [row(c, c, "red", "north") for c in "ab" * 10]
    blue = [row(c, "a", "blue", "south") for c in "ab" * 10]
    unlabelled = [row(None, "b", "blue", "south") for _ in range(5)]
    return red + blue + unlabelled


def test_a_classification_windows_figures(make_params):
    yardstick = Yardstick("classification", "accuracy", make_params().business)
    figures = live.window_figures(classified(), yardstick, ["color", "region"], min_rows=20)
    # Balanced accuracy 1.0 for red, 0.5 for blue; blue predicts a for all, half of it is a.
    assert figures == {
        "labelled": 40,
        "metric": {"name": "accuracy", "value": 0.75},
        "group_gaps": {"color": 0.5, "region": 0.5},
        "bias": 0.5,
    }
    # Groups short of min_rows have no gap and no slice: the overall share gap remains.
    fewer = live.window_figures(classified(), yardstick, ["color"], min_rows=21)
    assert fewer["group_gaps"] == {"color": None} and fewer["bias"] == 0.25
    assert fewer["metric"]["value"] == 0.75


def test_too_few_labelled_rows_give_no_figures(make_params):
    yardstick = Yardstick("classification", "accuracy", make_params().business)
    figures = live.window_figures(classified(), yardstick, ["color"], min_rows=41)
    assert figures == {
        "labelled": 40,
        "metric": {"name": "accuracy", "value": None, "why": "fewer than 41 labelled rows"},
        "group_gaps": {"color": None},
        "bias": None,
    }
    empty = live.window_figures([], yardstick, ["color"], min_rows=1)
    assert empty["labelled"] == 0 and empty["bias"] is None


def regressed(offsets: dict[str, float]) -> list[dict]:
    """20 rows per region, labels alternating 10 and 20, predictions off by the region's
    offset."""
    return [
        row(label, label + offset, "red", region)
        for region, offset in offsets.items()
        for label in [10.0, 20.0] * 10
    ]


def test_a_regression_windows_figures(make_params):
    yardstick = Yardstick(
        "regression", "neg_root_mean_squared_error", make_params({"task": "regression"}).business
    )
    figures = live.window_figures(
        regressed({"north": 1.0, "south": -3.0}), yardstick, ["region"], min_rows=20
    )
    # RMSE 1 and 3: the gap is 2. The labels' standard deviation is 5: south's mean is
    # 3 below, 0.6 deviations (overall, -1: 0.2).
    assert figures == {
        "labelled": 40,
        "metric": {"name": "neg_root_mean_squared_error", "value": round(-math.sqrt(5), 6)},
        "group_gaps": {"region": 2.0},
        "bias": 0.6,
    }


@pytest.mark.parametrize(
    ("records", "why"),
    [
        ([row(7.0, 7.0, "red", "n")] * 30, None),
        ([row("seven", 7.0, "red", "n")] * 30, "cannot score the logged answers: could not"),
    ],
)
def test_labels_that_do_not_vary_or_are_no_number_give_no_bias(make_params, records, why):
    yardstick = Yardstick(
        "regression", "neg_root_mean_squared_error", make_params({"task": "regression"}).business
    )
    figures = live.window_figures(records, yardstick, ["region"], min_rows=20)
    assert figures["bias"] is None
    assert figures["metric"].get("why", "").startswith(why or "")
    if why:
        assert figures["metric"]["value"] is None and figures["group_gaps"] == {"region": None}


def test_a_group_value_comes_from_the_inputs_else_from_the_logged_groups():
    record = row("a", "a", "red", "north")
    assert live.group_value(record, "color") == "red"
    assert live.group_value(record, "region") == "north"
    assert live.group_value({"inputs": {}}, "region") is None


def test_logged_answers_share_one_class_list_and_read_probabilities_only_from_all_sides():
    """The helper live figures and the shadow's comparison both use: classes named by
    either side's probabilities are columns of both (1, 1.0 and "1" one class); a side
    without probabilities leaves every side without them."""
    ours = [{**row(1, 1, "red", "n"), "probabilities": {1.0: 0.75, "2": 0.25}},
            {**row("2", "2", "red", "n"), "probabilities": {"1": 0.0, 2: 1.0}}]  # fmt: skip
    theirs = [{"prediction": "3", "probabilities": {"1": 0.25, "3": 0.75}},
              {"prediction": 2, "probabilities": {"2": 0.5, 3.0: 0.5}}]  # fmt: skip
    truth, (mine, other), classes = live.logged_answers(ours, [ours, theirs], "classification")
    assert classes == ["1", "2", "3"] and list(truth) == ["1", "2"]
    assert list(mine.predicted) == ["1", "2"] and list(other.predicted) == ["3", "2"]
    assert mine.proba.tolist() == [[0.75, 0.25, 0.0], [0.0, 1.0, 0.0]]
    assert other.proba.tolist() == [[0.25, 0.0, 0.75], [0.0, 0.5, 0.5]]
    blind = [{**theirs[0], "probabilities": None}, theirs[1]]
    _, (mine, other), classes = live.logged_answers(ours, [ours, blind], "classification")
    assert mine.proba is None and other.proba is None
    assert classes == ["1", "2", "3"], "the labels and predictions seen"
    numbers = [row(10.0, 12.0, "red", "n"), row(20.0, 17.5, "red", "n")]
    truth, (answers,), classes = live.logged_answers(numbers, [numbers], "regression")
    assert truth.tolist() == [10.0, 20.0] and answers.predicted.tolist() == [12.0, 17.5]
    assert answers.proba is None and classes is None


def timed(minute: int, version: str, label=None, label_minute: int | None = None) -> dict:
    """A joined record predicted at 12:<minute>, its label (if any) arriving at
    12:<label_minute>."""
    record = row(label, "a", "red", "north", model_version=version)
    record["time"] = f"2026-03-01T12:{minute:02d}:00+00:00"
    if label_minute is not None:
        record["label_time"] = f"2026-03-01T12:{label_minute:02d}:00+00:00"
    return record


def test_the_report_gives_coverage_freshness_versions_and_windows(make_params):
    yardstick = Yardstick("classification", "accuracy", make_params().business)
    settings = live.Settings(yardstick, ["color"], min_rows=2, recent_fraction=0.5, window_rows=2)
    records = [
        timed(0, "v1", "a", 10),
        timed(1, "v1"),
        timed(2, "v1", "b", 4),
        timed(3, "v2", "a"),  # carried by the request: no label_time, no delay
        timed(4, "v2", "a"),
        timed(5, "v2"),
    ]
    times = pd.to_datetime(pd.Series([r["time"] for r in records]), utc=True)
    seen = []

    def estimate(rows: list[dict]) -> dict:
        seen.append(len(rows))
        return {"estimate": True, "value": 0.5, "lower": 0.4, "upper": 0.6}

    found = live.report(records, times, settings, estimate)
    assert found["versions"] == ["v1", "v2"] and found["current_version"] == "v2"
    assert found["coverage"]["labelled"] == 4 and found["coverage"]["share"] == round(4 / 6, 6)
    assert found["coverage"]["by_version"]["v1"] == {"logged": 3, "labelled": 2, "share": 0.666667}
    v1 = found["by_version"]["v1"]
    assert v1["metric"]["value"] == 0.5 and v1["labelled"] == 2
    assert v1["per_class"]["b"]["recall"] == 0.0 and v1["recent"]["rows"] == 1
    # Windows of 2 labelled rows, each with the unlabelled rows among them; the last short.
    windows = found["windows"]["list"]
    spans = [(w["rows"], w["labelled"], w["versions"], w["complete"]) for w in windows]
    assert spans == [(3, 2, ["v1"], True), (2, 2, ["v2"], True), (1, 0, ["v2"], False)]
    assert seen[:4] == [3, 1, 3, 1], "each version's rows, then its unlabelled rows"
    fresh = live.freshness(records, pd.Timestamp("2026-03-01T12:20:00+00:00"))
    # Delays: 10, 2, 0 and 0 minutes; the newest label arrived at 12:10.
    assert fresh == {
        "newest_label": "2026-03-01T12:10:00+00:00",
        "newest_label_age_seconds": 600.0,
        "median_delay_seconds": 60.0,
    }
    text = live.summary({**found, "freshness": fresh})
    assert "4 of 6 logged rows have a label (66.7%)" in text
    assert "~0.5 [0.4, 0.6] (estimate)" in text
    # An estimate says which versions' rows it covered (cbpe.Estimator) and what it left.
    across = {"estimate": True, "value": 0.5, "lower": 0.4, "upper": 0.6,
              "versions": {"v1": 2, "v2": 1}, "not_estimated": 3}  # fmt: skip
    windows[0]["estimate"] = across
    text = live.summary({**found, "freshness": fresh})
    assert "| ~0.5 [0.4, 0.6] (estimate of v1, v2; 3 rows not estimated) |" in text
