"""headers: a batch's column names read from the file itself and refused by name when
blank, repeated, colliding or nested; each column's kind of values agreeing across batches."""

from __future__ import annotations

import gzip
import zipfile

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from {{ cookiecutter.package_name }}.core.errors import DataError
from {{ cookiecutter.package_name }}.tables import batches, headers


def rows() -> pd.DataFrame:
    return pd.DataFrame({"a": [1.0, 2.0], "b": ["x", "y"]})


@pytest.mark.parametrize("suffix", [".csv", ".csv.gz", ".csv.bz2", ".csv.xz", ".csv.zip"])
def test_names_come_from_the_header_of_every_kind_of_csv(tmp_path, suffix):
    path = tmp_path / f"batch{suffix}"
    rows().to_csv(path, index=False)  # pandas compresses by the suffix
    assert headers.names(path) == ["a", "b"]
    assert batches.reader(path)(path, missing_values=[]).equals(rows())


def test_names_skip_blank_lines_and_a_byte_order_mark_as_pandas_does(tmp_path):
    path = tmp_path / "b.csv"
    path.write_bytes(b'\xef\xbb\xbf\n\n"a,1",b\n1,2\n')
    assert headers.names(path) == ["a,1", "b"] == list(pd.read_csv(path).columns)


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("mass,bill,mass", r"repeats column name\(s\) 'mass' in its header: give every column"),
        (",mass,bill", r"column 1 of the header has no name: name it, or drop the column \(a "
         r"saved row index\?"),
        ("mass,bill, ", "column 3 of the header has no name"),
        ("Body Mass,bill,body mass ", r"has columns 'Body Mass' and 'body mass ', which differ "
         "only in case or spaces: rename or drop one of them"),
    ],
)  # fmt: skip
def test_a_header_pandas_would_rename_is_refused_by_name(tmp_path, header, message):
    path = tmp_path / "b.csv"
    path.write_text(f"{header}\n1,2,3\n", encoding="utf-8")
    with pytest.raises(DataError, match=message):
        headers.names(path)


def test_a_repeated_parquet_name_is_refused_from_the_schema(tmp_path):
    path = tmp_path / "b.parquet"
    pq.write_table(pa.table([[1], [2]], names=["mass", "mass"]), path)
    with pytest.raises(DataError, match="repeats column name.*'mass'"):
        headers.names(path)


@pytest.mark.parametrize(
    "column",
    [
        pa.array([[1, 2], [3]]),
        pa.array([{"x": 1}, {"x": 2}]),
        pa.array([[("k", 1)], [("k", 2)]], type=pa.map_(pa.string(), pa.int64())),
    ],
    ids=["list", "struct", "map"],
)
def test_a_nested_parquet_column_is_refused_by_name_from_the_schema(tmp_path, column):
    path = tmp_path / "b.parquet"
    pq.write_table(pa.table({"a": [1.0, 2.0], "tags": column}), path)
    with pytest.raises(DataError, match=r"has nested column\(s\) 'tags' \(.*\): a batch holds "
                       r"one value per cell; flatten them"):  # fmt: skip
        headers.names(path)


def test_a_pandas_index_is_no_column_name(tmp_path):
    path = tmp_path / "b.parquet"
    rows().set_index(pd.Index([5, 6])).to_parquet(path)
    assert headers.names(path) == ["a", "b"]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("b.csv.gz", b"not gzip", r"cannot read .*b.csv.gz: Not a gzipped file .*: write the "
         "file again"),
        ("b.csv.gz", gzip.compress(b"", mtime=0), r"b.csv.gz is empty \(no header, no rows\)"),
        ("b.csv.bz2", b"not bz2", r"cannot read .*b.csv.bz2: Invalid data stream"),
        ("b.csv.xz", b"not xz", r"cannot read .*b.csv.xz: Input format not supported"),
        ("b.csv.zip", b"not zip", r"cannot read .*b.csv.zip: File is not a zip file"),
        ("b.csv", "m\xe9ss\n1\n".encode("latin-1"),
         r"b.csv is not UTF-8 text \(byte 0xe9"),
    ],
)  # fmt: skip
def test_a_broken_or_empty_file_is_one_line_naming_it(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(DataError, match=message):
        headers.names(path)


def test_a_zip_of_two_files_is_refused_naming_them(tmp_path):
    path = tmp_path / "b.csv.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("one.csv", "a\n1\n")
        archive.writestr("two.csv", "a\n2\n")
    with pytest.raises(DataError, match=r"holds 2 files \(one.csv, two.csv\): a .csv.zip batch"):
        headers.names(path)


def test_reserved_names_count_case_and_spaces_but_spare_the_id_column():
    assert headers.reserved(["ID", "batch ", "x"], None) == ["ID", "batch "]
    assert headers.reserved(["ID", "x"], "ID") == []


def test_kinds_leave_out_a_column_without_values():
    frame = pd.DataFrame(
        {
            "n": [1, 2],
            "f": [True, False],
            "t": ["x", None],
            "d": pd.to_datetime(["2024-01-01", None]),
            "e": [None, None],
        }
    )
    assert headers.kinds(frame) == {"n": "number", "f": "true/false", "t": "text", "d": "date-time"}


def test_agree_refuses_a_column_of_another_kind_naming_both_batches():
    seen: dict = {}
    headers.agree("a", {"x": "number"}, seen)
    headers.agree("b", {"y": "text"}, seen)  # a column first seen later is learnt then
    headers.agree("c", {"x": "number", "y": "text"}, seen)
    with pytest.raises(
        DataError,
        match=r"column 'x' holds text in batch 'd' but number in batch 'a': make it one type",
    ):
        headers.agree("d", {"x": "text"}, seen)
