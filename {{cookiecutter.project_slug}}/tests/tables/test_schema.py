"""schema: column roles inferred from dtypes, config overrides, and the typed model frame."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from {{ cookiecutter.package_name }}.core.errors import DataError
from {{ cookiecutter.package_name }}.core.params import DataParams
from {{ cookiecutter.package_name }}.tables import schema

from conftest import plain_data


def data(**changes) -> DataParams:
    return DataParams(**plain_data(**{"target": "target", **changes}))


def test_roles_are_inferred_from_dtypes(toy):
    df = toy("regression").assign(flag=True, year=2007, note="x")
    roles = schema.infer_roles(
        df, data(time="year", drop=["note"], groups=["color", "gone"]), "regression"
    )
    assert roles.numeric == ["x1", "x2"]
    assert roles.categorical == ["color", "flag"], "booleans are categories"
    assert roles.time == "year"
    assert roles.groups == ["color"], "absent group columns are skipped"
    assert roles.features == ["x1", "x2", "color", "flag"]
    assert schema.roles_from_dict(roles.to_dict()) == roles


def test_configured_roles_win(toy):
    df = toy("classification").assign(code=1)
    roles = schema.infer_roles(df, data(categorical=["code", "color"]), "classification")
    assert roles.numeric == ["x1", "x2"]
    assert roles.categorical == ["code", "color"]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"numeric": ["x1", "height"]}, "name columns not in the data: height"),
        ({"numeric": ["x1", "color"]}, "numeric hold non-numbers: color"),
        ({"target": "species"}, "target column 'species' is not in the data"),
        ({"drop": ["x1", "x2", "color"]}, "no feature columns left"),
    ],
)
def test_role_errors(toy, changes, message):
    with pytest.raises(DataError, match=message):
        schema.infer_roles(toy("regression"), data(**changes), "regression")


def test_regression_needs_a_numeric_target(toy):
    with pytest.raises(DataError, match="regression needs numbers"):
        schema.infer_roles(toy("classification"), data(), "regression")


def test_model_frame_types_features(toy, toy_roles):
    df = toy("classification").assign(
        x1=lambda d: d["x1"].astype(str), color=lambda d: d["x2"].round()
    )
    out = schema.model_frame(df, toy_roles)
    assert list(out.columns) == ["x1", "x2", "color"]
    assert out["x1"].dtype == "float64"
    assert out["color"].dropna().map(type).eq(str).all()
    assert out["x2"].isna().sum() == 1 and out["color"].isna().sum() == 1, "missing stays missing"
    with pytest.raises(DataError, match="lack feature column.*color"):
        schema.model_frame(df.drop(columns=["color"]), toy_roles)


def test_model_frame_keeps_float32_and_shares_each_text_value(toy, toy_roles):
    """float32 stays float32 and a float column is not copied; other numbers become
    float64; text is an object column with one Python string per distinct value (what
    scikit-learn reads, 8 bytes a cell)."""
    df = toy("regression").assign(
        x1=lambda d: d["x1"].astype("float32"), x2=lambda d: d["x2"].round().astype("Int64")
    )
    out = schema.model_frame(df, toy_roles)
    assert out["x1"].dtype == "float32" and np.shares_memory(out["x1"], df["x1"])
    assert out["x2"].dtype == "float64"
    assert out["color"].dtype == object
    assert out["color"].dropna().tolist() == df["color"].dropna().tolist()
    assert out["color"].isna().sum() == df["color"].isna().sum() == 1
    firsts = {}
    assert all(firsts.setdefault(v, v) is v for v in out["color"].dropna())
    missing = schema.model_frame(df.assign(color=None).head(2), toy_roles)["color"]
    assert missing.dtype == object and missing.isna().all()


def test_snapshot_schema_rejects_repeated_ids(toy):
    df = toy("regression")
    df.loc[1, "id"] = df.loc[0, "id"]
    with pytest.raises(DataError, match="the snapshot failed its schema check"):
        schema.validate(df, schema.snapshot_schema(), "the snapshot")


def test_base_ids_strip_augmentation_suffixes():
    ids = pd.Series(["a1", "a1-aug1", "a1-aug12", "b-2-aug3", "aug1"])
    assert schema.base_ids(ids).tolist() == ["a1", "a1", "a1", "b-2", "aug1"]


def test_a_text_column_of_mostly_numbers_is_refused_naming_count_and_examples(toy):
    rows = toy("regression").astype({"x2": object})
    rows.loc[:9, "x2"] = "n/a?"
    message = "column 'x2' looks numeric but 10 of 60 values are text \\(e.g. 'n/a\\?'\\): list "
    with pytest.raises(
        DataError,
        match=message
        + "those values in data.missing_values if they mean missing, or the column in "
        "data.numeric .* or in data.categorical",
    ):
        schema.infer_roles(rows, data(), "regression")
    # Deciding the role either way is the fix.
    roles = schema.infer_roles(rows, data(categorical=["color", "x2"]), "regression")
    assert "x2" in roles.categorical


@pytest.mark.parametrize(
    "values",
    [["red", "1", "blue", "green"], ["1", "2", "x", "y"], ["1", "2", "3", None]],
    ids=["mostly-text", "half-numbers", "text-of-numbers-only"],
)
def test_a_text_column_is_refused_only_when_mostly_but_not_only_numbers(values):
    schema.numbers_in_text(pd.Series(values, name="c", dtype=object))


@pytest.mark.parametrize(
    "dates",
    [
        ["2023-03-04", "2023-11-30"],
        ["2023-03-04T12:00:00Z", "2023-03-04 08:15:00+01:00"],
        ["04/03/2023", "30.11.23"],
        ["2023/3/4", "2023/11/30"],
    ],
    ids=["iso-dates", "iso-timestamps", "day-month-year", "year-month-day"],
)
def test_a_text_column_of_mostly_dates_is_found(dates):
    column = [*dates, *dates, "unknown", None]
    frame = pd.DataFrame({"target": ["a"] * 6, "signup": column, "colour": ["red"] * 6})
    assert schema.misread_text(frame, data()) == [("signup", "dates", 4, 5, dates[0])]


@pytest.mark.parametrize(
    "values",
    [
        ["Monday", "May", "2023", "Q1-2023"],  # words and years are categories
        ["2023-03-04", "x", "y", None],  # half dates is not mostly
        [None, None, None, None],
    ],
    ids=["words-and-years", "half-dates", "empty"],
)
def test_other_text_is_not_taken_for_dates(values):
    frame = pd.DataFrame({"target": ["a"] * 4, "c": pd.Series(values, dtype=object)})
    assert schema.misread_text(frame, data()) == []


@pytest.mark.parametrize(
    "decided",
    [
        {"time": "signup"},
        {"drop": ["signup"]},
        {"id_column": "signup"},
        {"categorical": ["signup"]},
        {"target": "signup"},
    ],
    ids=lambda d: next(iter(d)),
)
def test_a_date_column_whose_role_the_config_decides_is_left_alone(decided):
    frame = pd.DataFrame({"target": ["a", "b"], "signup": ["2023-03-04", "2023-03-05"]})
    assert schema.misread_text(frame, data(**decided)) == []


def test_the_date_check_reads_a_bounded_sample():
    """Only the first SAMPLE values found among the first 10x rows count: dates after
    them are not read, so the check costs the same on any batch size."""
    size = schema.SAMPLE
    column = ["red"] * size + ["2023-03-04"] * (5 * size)
    frame = pd.DataFrame({"target": ["a"] * len(column), "c": column})
    assert schema.misread_text(frame, data()) == []
    late = pd.DataFrame({"target": "a", "c": [None] * (10 * size) + ["2023-03-04"] * size})
    assert schema.misread_text(late, data()) == []


def test_a_date_column_is_refused_naming_the_column_and_the_choice():
    found = [("signup_date", "dates", 9, 10, "2023-03-04")]
    message = (
        r"column 'signup_date' holds dates \(9 of the first 10 values of batch 'b1', e.g. "
        r"'2023-03-04'\), which would be read as categories: name it in data.time \(the event "
        r"time\) or data.drop"
    )
    with pytest.raises(DataError, match=message):
        schema.refuse_misread_text(found, "b1")
    schema.refuse_misread_text([], "b1")


@pytest.mark.parametrize(
    "values",
    [["6,123.45", "12,000", "-1,234,567.5"], ["12,5", "0,75", "-3,0"]],
    ids=["thousands-separators", "decimal-commas"],
)
def test_numbers_written_with_commas_are_refused_as_categories_would_be(values):
    column = [*values, *values, "unknown", None]
    frame = pd.DataFrame({"target": ["a"] * 8, "spend": column})
    found = schema.misread_text(frame, data())
    assert found == [("spend", "numbers written with commas", 6, 7, values[0])]
    with pytest.raises(
        DataError,
        match=r"column 'spend' holds numbers written with commas "
        r"\(6 of the first 7 values of batch 'b1', e.g. '[-\d,.]+'\), .*: write "
        r"them with a '.' decimal point and no thousands separator",
    ):
        schema.refuse_misread_text(found, "b1")


@pytest.mark.parametrize("values", [["1,2,3", "a,b"], ["12", "3.5"], ["Smith, J", "Doe, A"]])
def test_lists_plain_numbers_and_names_with_commas_are_not_numbers_with_commas(values):
    frame = pd.DataFrame({"target": ["a"] * 4, "c": pd.Series(values * 2, dtype=object)})
    assert schema.misread_text(frame, data()) == []


@pytest.mark.parametrize(("mark", "word"), [(";", "semicolon"), ("\t", "tab"), ("|", "pipe")])
def test_a_batch_read_as_one_column_separated_otherwise_is_refused(mark, word):
    header = mark.join(["species", "island", "bill_length_mm"])
    with pytest.raises(
        DataError,
        match=rf"batch 'b1' reads as one column named .*: its values "
        rf"are separated by {word}s .*: save it as comma-separated CSV",
    ):
        schema.refuse_other_separator([header], "b1")
    schema.refuse_other_separator(["species", "island;x"], "b1")  # many columns: read right
    schema.refuse_other_separator(["species"], "b1")


def test_a_text_column_with_a_different_value_in_every_row_is_an_id_not_a_category():
    ids = [f"C{i:05d}" for i in range(schema.ID_SAMPLE)]
    frame = pd.DataFrame({"target": ["a"] * len(ids), "customer": ids})
    found = schema.misread_text(frame, data())
    assert found == [("customer", schema.IDS, len(ids), len(ids), "C00000")]
    with pytest.raises(
        DataError,
        match=r"column 'customer' holds a different value in every "
        r"row \(50 of the first 50 values .*: name it in data.id_column",
    ):
        schema.refuse_misread_text(found, "b1")
    assert schema.misread_text(frame.head(schema.ID_SAMPLE - 1), data()) == []  # too few
    repeated = frame.assign(customer=ids[:-1] + ids[:1])
    assert schema.misread_text(repeated, data()) == []
    assert schema.misread_text(frame, data(id_column="customer")) == []


def test_classes_that_differ_only_in_case_or_spaces_are_refused():
    counts = pd.Series({"no": 50, "yes": 30, "Yes": 4, " no": 2, "maybe": 9})
    message = (
        r"target 'churned' has classes that differ only in case or spaces: 'no', ' no' "
        r"\(52 rows\) \(1 other group\(s\) too\): write each class one way in the data, or "
        r"leave a spelling out by listing it under clean.exclude.churned"
    )
    with pytest.raises(DataError, match=message):
        schema.require_class_counts(counts, "churned", 2, "annotate.cv_folds")
    schema.refuse_look_alike_classes(pd.Series({"no": 5, "yes": 3}), "churned")
    schema.refuse_look_alike_classes(pd.Series({0: 5, 1: 3}), "churned")  # numbers: no case


def test_one_rule_makes_categories_text_for_columns_and_single_values():
    """business, diagnosis and serving's requests name categories as training does."""
    values = [1.0, 2.5, 2.0**60, -3.0, 7]
    column = schema.category_text(pd.Series(values[:4]))
    assert column.tolist() == ["1", "2.5", str(2**60), "-3"]
    assert [schema.category_label(v) for v in values] == [*column, "7"]
    assert schema.category_label("1.0") == "1.0", "text stays as written"
