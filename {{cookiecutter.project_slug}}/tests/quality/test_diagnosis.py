"""diagnosis: per-class, per-group and recent-slice metrics on tiny frames; the gap gate."""

from __future__ import annotations

import logging
import warnings

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import MetricFrame
from sklearn import metrics as skm

from {{ cookiecutter.package_name }}.quality import diagnosis


def test_per_class_names_each_class_and_the_short_ones():
    y_true = np.array(["a", "a", "a", "b", "b", "c"])
    y_pred = np.array(["a", "a", "b", "b", "b", "a"])
    values, short = diagnosis.per_class(y_true, y_pred, ["a", "b", "c"], min_support=2)
    assert values["a"] == {"precision": 0.666667, "recall": 0.666667, "f1": 0.666667, "support": 3}
    assert values["b"] == {"precision": 0.666667, "recall": 1.0, "f1": 0.8, "support": 2}
    assert values["c"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    assert short == ["c (1 test rows)"]


def test_per_class_keys_are_safe_for_dvc():
    labels = np.array(["sp. nov", "Gentoo"], dtype=object)
    values, _ = diagnosis.per_class(labels, labels, list(labels), 1)
    assert set(values) == {"sp_nov", "Gentoo"}, "DVC joins nested keys with dots"
    assert diagnosis.key(2009.0) == "2009"


def test_per_group_metrics_and_the_gap_of_large_groups_only():
    y_true = np.array(["a", "b"] * 6 + ["a", "b"])
    y_pred = np.array(["a", "b"] * 3 + ["b", "b"] * 3 + ["b", "a"])
    groups = pd.DataFrame({"sex": ["f"] * 6 + ["m"] * 6 + [None, None]})
    values = diagnosis.per_group(y_true, y_pred, groups, "classification", min_size=3)
    sex = values["sex"]
    assert sex["f"] == {"accuracy": 1.0, "balanced_accuracy": 1.0, "rows": 6}
    assert sex["m"] == {"accuracy": 0.5, "balanced_accuracy": 0.5, "rows": 6}
    assert sex["missing"] == {"accuracy": 0.0, "balanced_accuracy": 0.0, "rows": 2}
    assert sex["gap"] == 0.5, "the 2 'missing' rows are below min_size: not in the gap"


def test_regression_groups_use_rmse_and_mae():
    y_true = np.array([1.0, 2.0, 3.0, 4.0])
    y_pred = np.array([1.0, 2.0, 5.0, 4.0])
    groups = pd.DataFrame({"island": ["x", "x", "y", "y"]})
    values = diagnosis.per_group(y_true, y_pred, groups, "regression", min_size=1)["island"]
    assert values["x"] == {"rmse": 0.0, "mae": 0.0, "rows": 2}
    assert values["y"] == {"rmse": pytest.approx(1.414214), "mae": 1.0, "rows": 2}
    assert values["gap"] == pytest.approx(1.414214)


PLAIN = {
    "classification": {
        "accuracy": skm.accuracy_score,
        "balanced_accuracy": skm.balanced_accuracy_score,
    },
    "regression": {"rmse": skm.root_mean_squared_error, "mae": skm.mean_absolute_error},
}


def metric_frame(*args, **kwargs) -> pd.DataFrame:
    with warnings.catch_warnings():
        # A group holding one class makes balanced accuracy warn; the value is still right.
        warnings.simplefilter("ignore", UserWarning)
        return MetricFrame(*args, **kwargs).by_group


def plain_by_group(y_true, y_pred, values, task) -> pd.DataFrame:
    """The per-group figures computed the plain way: sklearn's metrics on every row."""
    return metric_frame(
        metrics=PLAIN[task], y_true=y_true, y_pred=y_pred, sensitive_features=values
    )


def random_case(task: str, rows: int, seed: int):
    """Labels with a class only predicted, never true; a group value with one row; missing
    group values; regression targets of very different sizes."""
    r = np.random.default_rng(seed)
    groups = pd.DataFrame(
        {
            "site": pd.Series(r.choice(["x", "y", "z", None], rows), dtype=object),
            "year": r.choice([2007.0, 2008.0, np.nan], rows),
        }
    )
    groups.loc[0, "site"] = "lonely"
    if task == "classification":  # fixed-width text, as schema.target_array gives
        y_true = np.array(["Adelie", "Gentoo", "Chinstrap"])[r.integers(0, 3, rows)]
        unseen = np.array(["Adelie", "Gentoo", "Chinstrap", "Emperor"])
        y_pred = np.where(r.random(rows) < 0.7, y_true, unseen[r.integers(0, 4, rows)])
    else:
        y_true = r.normal(4000, 800, rows) * r.choice([1e-3, 1.0, 1e6], rows)
        y_pred = y_true + r.standard_cauchy(rows) * 100
    return y_true, y_pred, groups


@pytest.mark.parametrize("task", ["classification", "regression"])
@pytest.mark.parametrize("rows", [2, 40, 20_000], ids=["two-rows", "small", "large"])
def test_summarised_rows_give_exactly_the_figures_of_every_row(task, rows):
    """20,000 rows: groups longer than numpy's 8,192-element blocks, where a sum taken
    differently from sklearn's would show in the last digits."""
    y_true, y_pred, groups = random_case(task, rows, seed=rows)
    for column in groups.columns:
        values = diagnosis._group_values(groups[column]).to_numpy()
        want = plain_by_group(y_true, y_pred, values, task)
        truth, pred, group, weight = diagnosis._summary(y_true, y_pred, values, task)
        assert len(truth) <= 3 * 4 * len(want), "a few rows per group, not one per row"
        got = metric_frame(
            metrics=diagnosis.GROUP_METRICS[task],
            y_true=truth,
            y_pred=pred,
            sensitive_features=group,
            sample_params={m: {"sample_weight": weight} for m in PLAIN[task]},
        )
        assert got.index.tolist() == want.index.tolist()
        for metric in PLAIN[task]:
            assert got[metric].tolist() == want[metric].tolist(), f"{column}: {metric} not equal"
        found = diagnosis.per_group(y_true, y_pred, groups[[column]], task, min_size=2)
        counts = pd.Series(values).value_counts()
        assert {value: found[column][diagnosis.key(value)]["rows"] for value in counts.index} == {
            value: int(count) for value, count in counts.items()
        }


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_one_summary_row_is_not_refused(task):
    """One group value, every prediction right: one summarised row, which MetricFrame
    alone would refuse (it squeezes it to a scalar)."""
    y_true = np.array(["a", "a", "a"]) if task == "classification" else np.array([1.0, 2, 4])
    y_pred = y_true if task == "classification" else np.array([1.0, 2, 2])
    found = diagnosis.per_group(y_true, y_pred, pd.DataFrame({"sex": ["f"] * 3}), task, 1)
    if task == "classification":
        assert found["sex"] == {"f": {"accuracy": 1.0, "balanced_accuracy": 1.0, "rows": 3}}
    else:
        assert found["sex"] == {"f": {"rmse": 1.154701, "mae": 0.666667, "rows": 3}}


def test_per_group_matches_the_plain_computation_key_for_key():
    y_true, y_pred, groups = random_case("classification", 500, seed=7)
    found = diagnosis.per_group(y_true, y_pred, groups, "classification", min_size=30)
    for column in groups.columns:
        values = diagnosis._group_values(groups[column]).to_numpy()
        want = plain_by_group(y_true, y_pred, values, "classification")
        counts = pd.Series(values).value_counts()
        expected = {
            diagnosis.key(value): {
                "accuracy": diagnosis._round(row["accuracy"]),
                "balanced_accuracy": diagnosis._round(row["balanced_accuracy"]),
                "rows": int(counts[value]),
            }
            for value, row in want.iterrows()
        }
        large = want.loc[counts[counts >= 30].index, "balanced_accuracy"]
        expected["gap"] = diagnosis._round(large.max() - large.min())
        assert found[column] == expected


def test_recent_mask_takes_the_latest_share_with_ties():
    years = pd.Series([2007, 2009, 2008, 2009, 2007, 2008, None])
    mask, cutoff = diagnosis.recent_mask(years, 0.2)
    assert cutoff == 2009
    assert mask.tolist() == [False, True, False, True, False, False, False]
    mask, cutoff = diagnosis.recent_mask(years, 0.5)  # 3 of 6 rows: 2009, 2009, then 2008
    assert cutoff == 2008 and mask.sum() == 4


def test_recent_mask_parses_dates_written_as_text():
    dates = pd.Series(["2024-01-05", "2023-12-31", "2024-02-01", "2024-01-20"])
    mask, _ = diagnosis.recent_mask(dates, 0.5)
    assert mask.tolist() == [False, False, True, True]


@pytest.mark.parametrize(
    ("limit", "exceeded"), [(None, False), (0.6, False), (0.4, True)], ids=["off", "ok", "over"]
)
def test_gate(limit, exceeded, configured):
    groups = {"sex": {"gap": 0.5}, "island": {"gap": 0.1}, "year": {}}
    result = diagnosis.gate(groups, configured("evaluate", max_group_gap=limit))
    assert result["largest_group_gap"] == 0.5
    assert result["worst_group_column"] == "sex"
    assert result["group_gap_exceeded"] is exceeded
    assert ("max_group_gap" in result) is (limit is not None)


def test_diagnose_skips_missing_columns_with_a_warning_that_names_them(caplog, configured):
    test = pd.DataFrame({"sex": ["f", "m"] * 10, "year": [2020] * 10 + [2021] * 10})
    y_true = np.array(["a", "b"] * 10)
    with caplog.at_level(logging.WARNING):
        values = diagnosis.diagnose(
            test,
            y_true,
            y_true,
            classes=["a", "b"],
            rules=configured("evaluate"),
            data=configured("data", groups=["sex", "island", "colony"], time="when"),
        )
    assert "group columns not in the test data: island, colony" in caplog.text
    assert "time column not in the test data: when" in caplog.text
    assert set(values["groups"]) == {"sex"} and "recent" not in values
    assert values["gate"]["group_gap_exceeded"] is False


def test_diagnose_reports_the_recent_slice(configured):
    test = pd.DataFrame({"year": [2020] * 8 + [2021] * 4})
    y_true = np.array(["a", "b"] * 6)
    y_pred = np.array(["a", "b"] * 4 + ["b", "b", "b", "b"])
    values = diagnosis.diagnose(
        test,
        y_true,
        y_pred,
        classes=["a", "b"],
        rules=configured("evaluate"),
        data=configured("data", groups=[], time="year"),
    )
    assert values["recent"] == {
        "accuracy": 0.5, "balanced_accuracy": 0.5, "f1_macro": 0.333333, "rows": 4, "since": 2021.0
    }  # fmt: skip
    assert values["groups"] == {}
