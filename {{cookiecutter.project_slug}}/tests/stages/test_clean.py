"""clean: every dropped row is counted once, under the first reason that applies; rows
without a target are kept aside, not dropped."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from {{ cookiecutter.package_name }}.core.errors import ConfigError, DataError
from {{ cookiecutter.package_name }}.core.params import CleanParams
from {{ cookiecutter.package_name }}.stages import clean

RULES = CleanParams(
    drop_duplicates=True,
    max_missing_fraction=0.5,
    valid_ranges={"mass": (0.0, 100.0)},
    exclude={"site": ["lab"]},
)


def rows() -> pd.DataFrame:
    """One row per drop reason, plus two keepers."""
    return pd.DataFrame(
        {
            "id": ["keep1", "notarget", "dup", "sparse", "range", "excl", "keep2"],
            "batch": ["b"] * 7,
            "mass": [10.0, 20.0, 10.0, np.nan, 250.0, 30.0, 40.0],
            "length": [1.0, 2.0, 1.0, np.nan, 3.0, 4.0, np.nan],
            "site": ["field", "field", "field", "field", "field", "lab", "field"],
            "y": ["a", None, "a", "b", "a", "b", "b"],
        }
    )


def test_each_reason_is_counted():
    out, unlabelled, report = clean.clean(rows(), target="y", rules=RULES)
    assert report == {
        "rows_in": 7,
        "rows_out": 2,
        "unlabelled": 1,
        "dropped": {
            "duplicate": 1,
            "too_many_missing": 1,
            "out_of_range": 1,
            "excluded": 1,
        },
        "coerced_to_missing": {},
        "non_finite_to_missing": {},
        "missing_markers_kept": {},
        "missing_per_column": {"mass": 1, "length": 2, "y": 1},
        "look_alike_values": {},
    }
    assert out["id"].tolist() == ["keep1", "keep2"]
    assert list(out.index) == [0, 1]
    assert unlabelled["id"].tolist() == ["notarget"]
    assert unlabelled["y"].isna().all()


def test_an_unlabelled_row_that_is_noise_is_dropped_not_kept_aside():
    df = rows()
    df.loc[1, "mass"] = 999.0  # no target and out of range
    _, unlabelled, report = clean.clean(df, target="y", rules=RULES)
    assert unlabelled.empty
    assert report["unlabelled"] == 0
    assert report["dropped"]["out_of_range"] == 2
    assert report["rows_out"] + report["unlabelled"] + sum(report["dropped"].values()) == 7


def test_duplicates_ignore_id_and_batch():
    df = rows()
    df.loc[2, "batch"] = "another batch"
    _, _, report = clean.clean(df, target="y", rules=RULES)
    assert report["dropped"]["duplicate"] == 1


def test_duplicates_can_be_kept():
    rules = RULES.model_copy(update={"drop_duplicates": False})
    out, _, report = clean.clean(rows(), target="y", rules=rules)
    assert report["dropped"]["duplicate"] == 0
    assert "dup" in out["id"].tolist()


def test_a_row_is_counted_under_its_first_reason_only():
    df = rows()
    df.loc[3, "site"] = "lab"  # too many missing values, and excluded
    _, _, report = clean.clean(df, target="y", rules=RULES)
    assert report["dropped"]["too_many_missing"] == 1
    assert report["dropped"]["excluded"] == 1
    dropped = sum(report["dropped"].values())
    assert dropped == report["rows_in"] - report["rows_out"] - report["unlabelled"]


@pytest.mark.parametrize(
    ("low", "high", "dropped"),
    [(None, 25.0, 3), (35.0, None, 3), (None, None, 0), (10.0, 40.0, 1)],
    ids=["max", "min", "unbounded", "inclusive"],
)
def test_valid_ranges(low, high, dropped):
    rules = RULES.model_copy(update={"valid_ranges": {"mass": (low, high)}, "exclude": {}})
    # A second class that no range drops (no mass), so every case has something to learn.
    df = pd.concat(
        [rows(), pd.DataFrame([{"id": "b", "batch": "b", "length": 5, "site": "field", "y": "b"}])]
    )
    _, _, report = clean.clean(df.reset_index(drop=True), target="y", rules=rules)
    assert report["dropped"]["out_of_range"] == dropped


def test_declared_numeric_text_becomes_missing_and_is_counted(caplog):
    df = rows().astype({"mass": object})
    df.loc[[0, 1], "mass"] = ["n/a?", "-"]  # keep1, and the row without a target
    out, unlabelled, report = clean.clean(df, target="y", rules=RULES, numeric=["mass", "length"])
    assert report["coerced_to_missing"] == {"mass": 2}
    assert out["mass"].dtype == "float64" and unlabelled["mass"].isna().all()
    assert out.set_index("id")["mass"].isna().to_dict() == {
        "keep1": True,
        "dup": False,
        "keep2": False,
    }
    assert "mass: 2 value(s) that are not numbers read as missing (e.g. 'n/a?', '-')" in caplog.text


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        ([None] * 7, "target 'y' is missing in every row that clean keeps \\(7 rows in\\)"),
        (["a"] * 7, "target 'y' has one value \\('a'\\) in all 3 labelled rows"),
    ],
    ids=["all-missing", "one-value"],
)
def test_a_target_with_nothing_to_learn_is_refused(labels, message):
    with pytest.raises(DataError, match=message):
        clean.clean(rows().assign(y=labels), target="y", rules=RULES)


def test_a_metric_the_kept_classes_cannot_take_is_refused():
    """The classes are those of the labelled rows clean keeps: a class dropped by
    clean.exclude does not count."""
    three = pd.DataFrame(
        {
            "id": ["p", "q", "r", "s"],
            "batch": "b",
            "mass": [1.0, 2.0, 3.0, 4.0],
            "site": ["field", "field", "field", "lab"],
            "y": ["a", "b", "c", "d"],  # d is in the excluded lab's row only
        }
    )
    with pytest.raises(
        ConfigError,
        match=r"metric 'roc_auc' needs a binary target but target 'y' has 3 classes: use "
        r"roc_auc_ovr, .*; set it with `dvc exp run -S metric=...`",
    ):
        clean.clean(three, target="y", rules=RULES, metric="roc_auc")
    rules = RULES.model_copy(update={"exclude": {"site": ["lab"], "y": ["c"]}})
    kept, _, report = clean.clean(three, target="y", rules=rules, metric="roc_auc")
    assert set(kept["y"]) == {"a", "b"} and "classes" not in report
    clean.clean(three, target="y", rules=RULES, metric="roc_auc_ovr")


def test_the_missing_fraction_is_a_threshold():
    strict = CleanParams(
        drop_duplicates=False, max_missing_fraction=0.0, valid_ranges={}, exclude={}
    )
    _, _, report = clean.clean(rows(), target="y", rules=strict)
    # "sparse" misses 2 of 3 features, "keep2" 1 of 3: both go, with any missing value.
    assert report["dropped"]["too_many_missing"] == 2


def test_rules_on_absent_columns_are_skipped():
    rules = RULES.model_copy(
        update={"valid_ranges": {"nope": (0.0, 1.0)}, "exclude": {"nada": ["x"]}}
    )
    _, _, report = clean.clean(rows(), target="y", rules=rules)
    assert report["dropped"]["out_of_range"] == 0
    assert report["dropped"]["excluded"] == 0


def test_a_missing_target_column_is_named():
    with pytest.raises(DataError, match="target column 'species' is not in the data"):
        clean.clean(rows(), target="species", rules=RULES)


def tricky() -> pd.DataFrame:
    """Repeats that pandas calls equal although their values differ in form or type."""
    return pd.DataFrame(
        {
            "x": [0.0, -0.0, np.nan, np.nan, 1.5, 1.5, 2.0],
            "o": [1, 1.0, None, np.nan, "a", "a", True],
            "s": pd.array(["p", "p", None, None, "q", "r", "p"], dtype="string"),
            "c": pd.Categorical(["u", "u", None, None, "v", "v", "u"]),
            "t": pd.to_datetime(["2024-01-01", "2024-01-01", None, None, "2024-01-02", None, None]),
        }
    )


def test_duplicated_matches_pandas():
    df = tricky()
    expected = df.duplicated(keep="first")
    pd.testing.assert_series_equal(clean.duplicated(df, list(df.columns)), expected)
    assert expected.tolist() == [False, True, False, True, False, False, False]


def test_duplicated_lets_pandas_decide_between_rows_whose_hashes_collide(monkeypatch):
    df = tricky()
    expected = df.duplicated(keep="first")

    def colliding(column: pd.Series, index: bool) -> pd.Series:
        return pd.Series(np.zeros(len(column), dtype=np.uint64))

    monkeypatch.setattr(clean.pd.util, "hash_pandas_object", colliding)
    pd.testing.assert_series_equal(clean.duplicated(df, list(df.columns)), expected)


def test_missing_share_matches_the_row_mean():
    df = rows()
    features = ["mass", "length", "site"]
    expected = df[features].isna().mean(axis=1)
    pd.testing.assert_series_equal(clean.missing_share(df, features), expected)


def test_infinities_in_a_feature_become_missing_and_are_counted(caplog):
    """inf as a number, and as text in a data.numeric column: both missing, one count."""
    df = rows()
    df["mass"] = df["mass"].astype(float)
    df.loc[0, "mass"] = np.inf
    df["size"] = pd.Series(["1", "-inf", "2", "3", "4", "5", "Infinity"], dtype="str")
    out, _, report = clean.clean(df, target="y", rules=RULES, numeric=["size"])
    assert report["non_finite_to_missing"] == {"mass": 1, "size": 2}
    assert np.isfinite(out["mass"].dropna()).all() and np.isfinite(out["size"].dropna()).all()
    assert "column size: 2 infinite value(s) (inf or -inf) read as missing" in caplog.text


def test_an_infinite_target_is_refused_naming_it_and_its_count():
    df = rows().assign(y=[1.0, np.inf, 2.0, -np.inf, 1.0, 2.0, 1.0])
    with pytest.raises(DataError, match=r"target 'y' has 2 infinite value\(s\)"):
        clean.clean(df, target="y", rules=RULES)


@pytest.mark.parametrize("marker", ["NA", "None", "null"])
def test_text_that_often_means_missing_stays_a_value_and_is_named(marker, caplog):
    """A class named NA (None, null) is a class: only data.missing_values say otherwise."""
    df = rows()
    df.loc[[0, 6], "y"] = marker
    out, unlabelled, report = clean.clean(df, target="y", rules=RULES)
    assert report["missing_markers_kept"] == {"y": 2}
    assert marker in set(out["y"]) and unlabelled["id"].tolist() == ["notarget"]
    assert f"column y: 2 value(s) '{marker}' read as values, not as missing" in caplog.text


def test_values_that_differ_only_in_case_or_spaces_are_named_and_counted(caplog):
    """'Field', 'field ' and 'field' stay three categories, as written: a warning names
    them, with the rows that hold any of them; the target is left to annotate's check."""
    df = rows()
    df.loc[[1, 6], "site"] = ["Field", "field "]
    df.loc[0, "y"] = "A"
    out, _, report = clean.clean(df, target="y", rules=RULES)
    assert report["look_alike_values"] == {"site": 6}
    assert "column site: values that differ only in case or spaces ('field', 'Field', " in (
        caplog.text
    )
    assert set(out["site"]) >= {"field", "field "}, "the values stay as written"


def test_columns_past_max_categories_are_no_categories_and_left_out(monkeypatch):
    monkeypatch.setattr(clean, "MAX_CATEGORIES", 2)
    df = rows()
    df.loc[[1, 4], "site"] = ["Field", "field "]
    assert clean.look_alikes(clean.text_counts(df, ["site"])) == {}
    assert clean.text_counts(df, ["site", "mass"]) == {"site": None}
