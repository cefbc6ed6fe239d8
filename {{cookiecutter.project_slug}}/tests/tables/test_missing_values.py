"""The one missing-value rule of every batch reader (tables/batches.py): an empty cell or a
null is missing, and so is a value data.missing_values lists; nothing else is."""

from __future__ import annotations

import io as text_io

import numpy as np
import pandas as pd
import pytest

from {{ cookiecutter.package_name }}.tables import batches

MARKERS = ["NA", "None", "null", "N/A", "nan", "NULL"]
CSV = "kind,size\n" + "".join(f"{m},{n}\n" for n, m in enumerate(MARKERS)) + ",7\nx,NA\n"


def read_csv(missing_values: list[str]) -> pd.DataFrame:
    return batches.READERS[".csv"](text_io.StringIO(CSV), missing_values=missing_values)


def test_csv_markers_stay_text_unless_listed_and_empty_cells_are_missing():
    frame = read_csv([])
    assert frame["kind"].iloc[:6].tolist() == MARKERS, "pandas' NA strings are text"
    assert frame["kind"].isna().tolist() == [False] * 6 + [True, False]
    assert frame["size"].iloc[-1] == "NA", "so a numeric column holding NA is text"


def test_csv_listed_values_are_missing_in_text_and_numeric_columns():
    frame = read_csv(["NA", "None"])
    assert frame["kind"].isna().tolist() == [True, True] + [False] * 4 + [True, False]
    assert pd.api.types.is_float_dtype(frame["size"]) and np.isnan(frame["size"].iloc[-1])


def test_parquet_nulls_are_missing_and_listed_values_too(tmp_path):
    path = tmp_path / "b.parquet"
    pd.DataFrame(
        {"kind": ["NA", None, "None", "x"], "size": [1.0, -999.0, np.nan, 4.0], "n": [1, 2, 3, 4]}
    ).to_parquet(path)
    read = batches.READERS[".parquet"]
    kept = read(path, missing_values=[])
    assert kept["kind"].isna().tolist() == [False, True, False, False]
    listed = read(path, missing_values=["NA", "-999"])
    assert listed["kind"].isna().tolist() == [True, True, False, False]
    assert listed["size"].isna().tolist() == [False, True, True, False], "numbers as numbers"
    assert listed["n"].tolist() == [1, 2, 3, 4]


def test_infinities_are_read_as_numbers_for_clean_to_rule_on():
    """CSV's inf, -Infinity and 1e999 are float infinities, whatever missing_values says:
    clean makes them missing in a feature and refuses them in the target."""
    text = "x\n1\ninf\n-Infinity\n1e999\n"
    frame = batches.READERS[".csv"](text_io.StringIO(text), missing_values=["NA"])
    assert np.isinf(frame["x"]).tolist() == [False, True, True, True]


@pytest.mark.parametrize(("given", "read"), [([-999], ["-999"]), (["NA", 0.5], ["NA", "0.5"])])
def test_numbers_in_missing_values_are_compared_as_the_file_writes_them(make_params, given, read):
    assert make_params({"data.missing_values": given}).data.missing_values == read
