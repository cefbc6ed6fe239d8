"""Derived features: preprocess.ratios and derived.derive() through one path, its checks,
and what features.json and a request get of them."""

from __future__ import annotations

import pandas as pd
import pytest

from {{ cookiecutter.package_name }}.core.errors import ConfigError, DataError
from {{ cookiecutter.package_name }}.modeling import derivation, derived
from {{ cookiecutter.package_name }}.tables import schema

ROLES = schema.Roles(
    target="y", numeric=["mass", "length", "mass_per_length"], categorical=[], time=None, groups=[]
)
FEATURES = {
    "roles": ROLES.to_dict(),
    "derived": {"ratios": [["mass", "length"]], "columns": ["mass_per_length"]},
}


def yours(monkeypatch, derive) -> None:
    """derived.derive replaced by `derive`, as a user edits derived.py."""
    monkeypatch.setattr(derived, "derive", derive)


def test_ratios_divide_and_leave_the_input_alone():
    df = pd.DataFrame({"mass": [10.0, 6.0, 5.0], "length": [2, 0, None]})
    out, names = derivation.add(df, [("mass", "length")])
    assert names == ["mass_per_length"]
    assert out["mass_per_length"].iloc[0] == 5.0
    assert out["mass_per_length"].iloc[1:].isna().all(), "zero or missing denominators"
    assert "mass_per_length" not in df.columns


def test_a_ratio_named_as_a_column_of_the_data_is_refused():
    df = pd.DataFrame({"a": [1.0], "b": [2.0], "a_per_b": [9.0]})
    with pytest.raises(ConfigError, match=r"preprocess.ratios makes column\(s\) a_per_b, which "
                       "the data already has"):  # fmt: skip
        derivation.add(df, [("a", "b")])


def test_ratios_of_absent_columns_are_skipped():
    df = pd.DataFrame({"mass": [1.0]})
    assert derivation.add(df, [("mass", "depth"), ("depth", "mass")])[1] == []


def test_without_derived_features_the_table_itself_and_nothing_recorded():
    df = pd.DataFrame({"mass": [1.0, 2.0]})
    out, names = derivation.add(df, [])
    assert out is df and names == []
    assert derivation.record([], names) == {}, "features.json stays as it was"


def test_your_columns_follow_the_ratios_and_are_recorded(monkeypatch):
    yours(monkeypatch, lambda df: pd.DataFrame({"heavy": df["mass"] > 5}, index=df.index))
    df = pd.DataFrame({"mass": [10.0, 1.0], "length": [2.0, 1.0]})
    out, names = derivation.add(df, [("mass", "length")])
    assert names == ["mass_per_length", "heavy"]
    assert out["heavy"].tolist() == [True, False]
    assert derivation.record([("mass", "length")], names) == {
        "derived": {"ratios": [["mass", "length"]], "columns": names}
    }


@pytest.mark.parametrize(
    ("derive", "message"),
    [
        (lambda df: df["mass"] * 2, "must return a DataFrame on its input's index"),
        (lambda df: pd.DataFrame({"x": [1.0]}), "must return a DataFrame on its input's index"),
        (lambda df: pd.DataFrame({"mass": df["mass"]}), "already has: give derived columns new"),
        (lambda df: pd.DataFrame({"z": df["target"]}), "reads column 'target'"),
    ],
)
def test_a_wrong_derive_is_one_line_naming_the_fix(monkeypatch, derive, message):
    yours(monkeypatch, derive)
    with pytest.raises(ConfigError, match=message):
        derivation.add(pd.DataFrame({"mass": [1.0, 2.0]}), [])


def test_a_derive_that_reads_other_rows_is_refused_by_the_recomputation(monkeypatch):
    """export recomputes the derived columns from the test rows alone, as the server does
    per request: a column mean differs there from the whole table's."""
    yours(monkeypatch, lambda df: pd.DataFrame({"centred": df["mass"] - df["mass"].mean()}))
    table = pd.DataFrame({"mass": [1.0, 2.0, 3.0, 10.0]})
    stored, _ = derivation.add(table, [])
    roles = schema.Roles(
        target="y", numeric=["mass", "centred"], categorical=[], time=None, groups=[]
    )
    test = schema.model_frame(stored, roles).iloc[2:]
    with pytest.raises(DataError, match="not row-wise"):
        derivation.refuse_different(test, test[["mass"]], [], roles)


def test_a_row_wise_derive_passes_the_recomputation():
    table = pd.DataFrame({"mass": [1.0, 2.0, 3.0], "length": [2.0, 0.0, 1.0]})
    stored, _ = derivation.add(table, [("mass", "length")])
    test = schema.model_frame(stored, ROLES).iloc[1:]
    derivation.refuse_different(test, test[["mass", "length"]], [("mass", "length")], ROLES)


def test_a_model_trained_with_other_derived_columns_is_refused(monkeypatch):
    derivation.refuse_changed(FEATURES)
    yours(monkeypatch, lambda df: pd.DataFrame({"heavy": df["mass"] > 5}, index=df.index))
    with pytest.raises(ConfigError, match=r"now derives \['mass_per_length', 'heavy'\]"):
        derivation.refuse_changed(FEATURES)


def test_a_request_carries_the_raw_features_only():
    assert derivation.inputs(ROLES, ["mass_per_length"]).numeric == ["mass", "length"]
