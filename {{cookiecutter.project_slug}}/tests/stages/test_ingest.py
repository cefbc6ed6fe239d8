"""ingest: batch discovery, content-hash row ids, and the snapshot's bookkeeping columns."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from {{ cookiecutter.package_name }}.core.errors import DataError, UserError
from {{ cookiecutter.package_name }}.core.params import DataParams
from {{ cookiecutter.package_name }}.stages import ingest
from {{ cookiecutter.package_name }}.tables import batches, row_hash

from conftest import plain_data


def data(**changes) -> DataParams:
    """A data set of plain columns: no id, time, group or fetched source unless changed."""
    return DataParams(**plain_data(**changes))


def frame(**columns) -> pd.DataFrame:
    return pd.DataFrame(columns or {"a": [1.0, 2.0], "b": ["x", "y"], "y": [0, 1]})


# batches.files


def test_batches_files_lists_a_folder_sorted_and_passes_over_hidden_names(tmp_path):
    frame().to_csv(tmp_path / "b.csv", index=False)
    frame().to_csv(tmp_path / "c.CSV.GZ", index=False)
    frame().to_parquet(tmp_path / "a.parquet")
    for hidden in (".gitignore", ".DS_Store", ".~lock.b.csv#"):
        (tmp_path / hidden).write_text("not data")
    (tmp_path / ".ipynb_checkpoints").mkdir()
    found = batches.files(tmp_path)
    assert found == [tmp_path / "a.parquet", tmp_path / "b.csv", tmp_path / "c.CSV.GZ"]
    assert [batches.name(p) for p in found] == ["a", "b", "c"]


def test_batches_files_accepts_a_single_file(tmp_path):
    path = tmp_path / "only.csv"
    frame().to_csv(path, index=False)
    assert batches.files(path) == [path]


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("missing", "does not exist"),
        ("empty", "holds no batch file: add one, a .csv"),
        ("data.json", r"cannot read data.json in .*: a batch is a .csv \(plain, .gz, .bz2, .xz "
         r"or .zip\) or .parquet file; convert it to one, or move it out of the folder"),
    ],
)  # fmt: skip
def test_batches_files_errors(tmp_path, name, message):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / ".gitignore").write_text("/x\n")
    (tmp_path / "data.json").write_text("{}")
    with pytest.raises(DataError, match=message):
        batches.files(tmp_path / name)


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("notes.txt", "cannot read notes.txt in"),
        ("part3.csv.zst", "cannot read part3.csv.zst in"),
        ("old", "cannot read old in"),
        ("a.csv.gz", "a.csv and a.csv.gz in .* are both batch 'a': keep one of them"),
    ],
)
def test_a_folder_entry_that_is_no_batch_of_its_own_is_refused_by_name(tmp_path, entry, message):
    """Nothing in a data folder is skipped silently: another kind of file, a folder, or a
    second file of one batch stops ingest naming it."""
    frame().to_csv(tmp_path / "a.csv", index=False)
    if entry == "old":
        (tmp_path / entry).mkdir()
    else:
        (tmp_path / entry).write_bytes(b"x")
    with pytest.raises(DataError, match=message):
        batches.files(tmp_path)


def test_batches_files_refuses_a_url():
    with pytest.raises(DataError, match="is a URL"):
        batches.files("s3://bucket/data.csv")


def test_read_batch_wraps_reader_errors(tmp_path):
    path = tmp_path / "broken.parquet"
    path.write_bytes(b"not parquet")
    with pytest.raises(DataError, match="cannot read .*broken.parquet"):
        ingest.read_batch(path, [])


@pytest.mark.parametrize("suffix", [".csv.gz", ".csv.bz2", ".csv.xz", ".csv.zip"])
def test_a_compressed_csv_reads_as_the_plain_one_and_names_its_batch(tmp_path, suffix):
    frame().to_csv(tmp_path / "plain.csv", index=False)
    frame().to_csv(tmp_path / f"2024-01{suffix}", index=False)
    plain = ingest.read_batch(tmp_path / "plain.csv", [])
    pd.testing.assert_frame_equal(ingest.read_batch(tmp_path / f"2024-01{suffix}", []), plain)
    ((name, _),) = ingest.read_batches([tmp_path / f"2024-01{suffix}"], [])
    assert name == "2024-01"


def test_a_compressed_header_only_csv_is_refused_by_name(tmp_path):
    frame().head(0).to_csv(tmp_path / "b.csv.gz", index=False)
    with pytest.raises(DataError, match=r"b.csv.gz has a header but no rows"):
        ingest.read_batch(tmp_path / "b.csv.gz", [])


def test_a_repeated_header_is_refused_before_pandas_renames_it(tmp_path, monkeypatch):
    path = tmp_path / "b.csv"
    path.write_text("a,b,a\n1,x,2\n", encoding="utf-8")
    monkeypatch.setitem(batches.READERS, ".csv", lambda *_: pytest.fail("rows were read"))
    with pytest.raises(DataError, match=r"repeats column name\(s\) 'a'"):
        ingest.read_batch(path, [])


def test_a_nested_column_is_refused_from_the_schema_before_any_row_is_read(tmp_path, monkeypatch):
    pd.DataFrame({"a": [1.0], "tags": [{"k": 1}]}).to_parquet(tmp_path / "b.parquet")
    monkeypatch.setitem(batches.READERS, ".parquet", lambda *_: pytest.fail("rows were read"))
    with pytest.raises(DataError, match=r"has nested column\(s\) 'tags'"):
        ingest.read_batch(tmp_path / "b.parquet", [])


def test_a_parquet_files_named_index_stays_a_column(tmp_path):
    frame().set_index("b").to_parquet(tmp_path / "b.parquet")
    assert sorted(ingest.read_batch(tmp_path / "b.parquet", []).columns) == ["a", "b", "y"]


# content_ids


def test_content_ids_are_stable_and_ignore_column_order_and_number_type():
    df = frame()
    ids = ingest.content_ids(df)
    assert ids.tolist() == ingest.content_ids(df.copy()).tolist()
    assert ids.tolist() == ingest.content_ids(df[["y", "b", "a"]]).tolist()
    as_floats = df.assign(y=df["y"].astype("float64"))
    assert ids.tolist() == ingest.content_ids(as_floats).tolist()
    assert ids.str.fullmatch(r"[0-9a-f]{16}").all()
    assert ids.nunique() == 2


def test_content_ids_change_with_any_value():
    df = frame()
    changed = df.assign(a=[1.0, 2.5])
    before, after = ingest.content_ids(df), ingest.content_ids(changed)
    assert before[0] == after[0]
    assert before[1] != after[1]


def test_content_ids_number_repeated_rows_in_order():
    df = pd.DataFrame({"a": [1, 2, 1, 1, np.nan, np.nan], "b": ["x", "y", "x", "x", None, None]})
    ids = ingest.content_ids(df).tolist()
    assert ids[2] == f"{ids[0]}-2"
    assert ids[3] == f"{ids[0]}-3"
    assert ids[5] == f"{ids[4]}-2"
    assert len(set(ids)) == len(ids)


def test_content_ids_are_pinned():
    """Ids name rows in relabel files and reports: any change to them must be deliberate."""
    df = pd.DataFrame({"a": [1.0, 2.0, np.nan, 1.0], "b": ["x", "y", None, "x"], "y": [0, 1, 1, 0]})
    assert ingest.content_ids(df).tolist() == [
        "e12fbed4aa1caeb3",
        "c3bf1d84f9f0e900",
        "bea7ac1ce04386ed",
        "e12fbed4aa1caeb3-2",
    ]
    assert pd.api.types.is_string_dtype(ingest.content_ids(df))


def test_content_ids_depend_on_column_names_not_their_order():
    df = frame()
    ids = ingest.content_ids(df).tolist()
    assert ingest.content_ids(df[["b", "y", "a"]]).tolist() == ids
    renamed = ingest.content_ids(df.rename(columns={"a": "c"})).tolist()
    swapped = ingest.content_ids(df.rename(columns={"a": "y", "y": "a"})).tolist()
    assert not set(renamed) & set(ids)
    assert not set(swapped) & set(ids)


@pytest.mark.parametrize(
    "empty",
    [
        pd.Series([np.nan], dtype="float64"),
        pd.Series([None], dtype=object),
        pd.Series([None], dtype="string"),
        pd.Series([None], dtype="Int64"),
        pd.Series([None], dtype="boolean"),
        pd.Series([pd.NaT], dtype="datetime64[ms]"),
        pd.Series([""], dtype="string"),  # a CSV cannot tell it from a missing value
    ],
    ids=["float", "object", "string", "Int64", "boolean", "datetime", "empty-text"],
)
def test_a_missing_value_hashes_alike_whatever_the_dtype(empty):
    expected = ingest.content_ids(pd.DataFrame({"a": [1.0], "b": [np.nan]}))
    assert ingest.content_ids(pd.DataFrame({"a": [1.0], "b": empty})).tolist() == expected.tolist()


def test_booleans_hash_as_text_and_times_as_instants():
    assert row_hash.value_hashes(pd.Series([True, False])).tolist() == (
        row_hash.value_hashes(pd.Series(["True", "False"])).tolist()
    )
    at = pd.Series(pd.to_datetime(["2024-05-31 12:00:00.25", None]))
    expected = row_hash.value_hashes(at).tolist()
    assert row_hash.value_hashes(at.dt.as_unit("ns")).tolist() == expected
    assert row_hash.value_hashes(at.dt.tz_localize("UTC")).tolist() == expected
    in_paris = at.dt.tz_localize("UTC").dt.tz_convert("Europe/Paris")
    assert row_hash.value_hashes(in_paris).tolist() == expected
    assert len(set(row_hash.value_hashes(pd.Series([0.0, -0.0, 0])).tolist())) == 1


def test_a_row_read_from_csv_or_parquet_gets_the_same_id(tmp_path):
    df = pd.DataFrame(
        {
            "n": [1, 2, None],
            "x": [0.5, np.nan, 2.0],
            "s": ["a", None, "c"],
            "flag": [True, None, False],
        }
    )
    df.to_csv(tmp_path / "b.csv", index=False)
    df.to_parquet(tmp_path / "b.parquet")
    from_csv = ingest.content_ids(ingest.read_batch(tmp_path / "b.csv", []))
    from_parquet = ingest.content_ids(ingest.read_batch(tmp_path / "b.parquet", []))
    assert from_csv.tolist() == from_parquet.tolist()


# snapshot


def test_snapshot_puts_id_and_batch_first_and_names_batches():
    out = ingest.snapshot(
        [("2024-01", frame()), ("2024-02", frame(a=[3.0], b=["z"], y=[1]))], data=data()
    )
    assert list(out.columns) == ["id", "batch", "a", "b", "y"]
    assert out["batch"].tolist() == ["2024-01", "2024-01", "2024-02"]
    assert out["id"].is_unique
    assert pd.api.types.is_string_dtype(out["id"])
    assert pd.api.types.is_string_dtype(out["batch"])


def test_snapshot_ids_do_not_depend_on_the_batch():
    alone = ingest.snapshot([("a", frame())], data=data())
    again = ingest.snapshot([("other-name", frame())], data=data())
    assert alone["id"].tolist() == again["id"].tolist()


def test_snapshot_gives_a_row_repeated_across_batches_a_suffix():
    out = ingest.snapshot([("a", frame()), ("b", frame())], data=data())
    ids = out["id"].tolist()
    assert ids[2:] == [f"{ids[0]}-2", f"{ids[1]}-2"]


def test_snapshot_aligns_batch_columns_by_name():
    first = frame()
    second = frame()[["y", "b", "a"]]
    out = ingest.snapshot([("a", first), ("b", second)], data=data())
    assert out["a"].tolist() == [1.0, 2.0, 1.0, 2.0]


def test_snapshot_refuses_batches_with_different_columns():
    other = frame().rename(columns={"b": "colour"})
    with pytest.raises(
        DataError, match=r"batch 'late' has different columns from 'early' \(b, colour\)"
    ):
        ingest.snapshot([("early", frame()), ("late", other)], data=data())


def test_snapshot_names_columns_that_differ_between_batches_only_in_case_or_spaces():
    other = frame().rename(columns={"b": " B"})
    with pytest.raises(DataError, match=r"\(' B' here, 'b' there\): every batch"):
        ingest.snapshot([("early", frame()), ("late", other)], data=data())


def test_snapshot_refuses_a_column_whose_kind_changes_between_batches():
    """pd.concat would make it an object column that Parquet cannot write (ArrowInvalid)."""
    texts = frame().assign(a=["1.5", "heavy"])
    with pytest.raises(
        DataError, match=r"column 'a' holds text in batch 'late' but number in batch 'early'"
    ):
        ingest.snapshot([("early", frame()), ("late", texts)], data=data())
    empty = frame().assign(b=None)  # no values in this batch: fits the others' text
    assert len(ingest.snapshot([("early", empty), ("late", frame())], data=data())) == 4
    years = frame().assign(t=[2007, 2008])
    dates = frame().assign(t=["2009-05-01", "2009-06-01"])  # event times: read alike
    assert len(ingest.snapshot([("a", years), ("b", dates)], data=data(time="t"))) == 4


def test_snapshot_refuses_a_text_column_of_dates_until_its_role_is_named():
    """A date read as a category is a new value on every day: refused before any row is
    written, in the batch where it shows, whichever way the column is decided."""
    dated = frame().assign(signup_date=["2023-03-04", "2023-03-05"])
    with pytest.raises(DataError, match=r"column 'signup_date' holds dates .* batch 'late'"):
        ingest.snapshot([("early", frame().assign(signup_date=None)), ("late", dated)], data=data())
    as_time = ingest.snapshot([("late", dated)], data=data(time="signup_date"))
    assert pd.api.types.is_datetime64_any_dtype(as_time["signup_date"])
    dropped = ingest.snapshot([("late", dated)], data=data(drop=["signup_date"]))
    assert dropped["signup_date"].tolist() == ["2023-03-04", "2023-03-05"]


@pytest.mark.parametrize("reserved", ["id", "batch", "ID", " Batch"])
def test_snapshot_refuses_reserved_columns(reserved):
    df = frame().assign(**{reserved: ["p", "q"]})
    with pytest.raises(
        DataError, match=f"batch 'b1' has reserved column.*{reserved.strip()}.*data.id_column"
    ):
        ingest.snapshot([("b1", df)], data=data())


def test_snapshot_uses_the_id_column_and_drops_it():
    df = frame().assign(key=[10, 20])
    out = ingest.snapshot([("b1", df)], data=data(id_column="key"))
    assert out["id"].tolist() == ["10", "20"]
    assert "key" not in out.columns
    assert list(out.columns) == ["id", "batch", "a", "b", "y"]


def test_snapshot_accepts_a_column_named_id_as_the_id_column():
    df = frame().assign(id=["p", "q"])
    out = ingest.snapshot([("b1", df)], data=data(id_column="id"))
    assert out["id"].tolist() == ["p", "q"]


@pytest.mark.parametrize(
    ("key", "message"),
    [
        (["p", "p"], "repeats 1 id\\(s\\) \\(e.g. p\\)"),
        (["p", None], "has 1 empty value\\(s\\)"),
    ],
)
def test_snapshot_refuses_bad_id_columns(key, message):
    df = frame().assign(key=key)
    with pytest.raises(DataError, match=message):
        ingest.snapshot([("b1", df)], data=data(id_column="key"))


def test_snapshot_refuses_ids_repeated_across_batches():
    with pytest.raises(DataError, match="unique across batches"):
        ingest.snapshot(
            [("a", frame().assign(key=[1, 2])), ("b", frame().assign(key=[2, 3]))],
            data=data(id_column="key"),
        )


def test_snapshot_names_a_missing_id_column():
    with pytest.raises(DataError, match="data.id_column 'key' is not in the data"):
        ingest.snapshot([("b1", frame())], data=data(id_column="key"))


def test_snapshot_needs_a_batch():
    with pytest.raises(UserError, match="no batches"):
        ingest.snapshot([], data=data())


def test_snapshot_reads_batches_one_at_a_time():
    """A generator of batches is consumed as it goes: a bad first batch stops the reading."""
    read = []

    def batches():
        for name in ("first", "second"):
            read.append(name)
            yield name, frame().assign(batch=["p", "q"])

    with pytest.raises(DataError, match="batch 'first' has reserved column"):
        ingest.snapshot(batches(), data=data())
    assert read == ["first"]


def test_snapshot_from_a_generator_matches_a_list():
    listed = [("a", frame()), ("b", frame(a=[3.0], b=["z"], y=[1])), ("c", frame())]
    streamed = ingest.snapshot(iter(listed), data=data())
    pd.testing.assert_frame_equal(streamed, ingest.snapshot(listed, data=data()))
    assert streamed["id"].is_unique
    assert streamed["batch"].tolist() == ["a", "a", "b", "c", "c"]


# event time


def test_event_time_reads_years_as_january_first_utc():
    out = ingest.event_time(pd.Series([2009, 2007, None], name="year"))
    assert out.dt.tz is not None and str(out.dt.tz) == "UTC"
    assert out.iloc[0] == pd.Timestamp("2009-01-01", tz="UTC")
    assert out.iloc[1] < out.iloc[0]
    assert pd.isna(out.iloc[2])


@pytest.mark.parametrize("dtype", ["int64", "float64", "Int64"])
def test_event_time_years_keep_the_index_name_and_unit(dtype):
    years = pd.Series([1000, 2024, 9999], index=[7, 8, 9], name="year", dtype=dtype)
    out = ingest.event_time(years)
    assert str(out.dtype) == "datetime64[us, UTC]"
    assert out.name == "year" and out.index.tolist() == [7, 8, 9]
    assert out.tolist() == [pd.Timestamp(f"{y}-01-01", tz="UTC") for y in (1000, 2024, 9999)]


def test_event_time_reads_iso_text_with_or_without_a_zone():
    out = ingest.event_time(pd.Series(["2024-05-31", "2024-05-31T12:00:00+02:00", None], name="at"))
    assert out.tolist()[:2] == [
        pd.Timestamp("2024-05-31T00:00:00Z"),
        pd.Timestamp("2024-05-31T10:00:00Z"),
    ]
    assert pd.isna(out.iloc[2])


def test_event_time_keeps_datetimes_in_utc():
    naive = pd.Series(pd.to_datetime(["2024-01-02 03:04"]), name="at")
    assert ingest.event_time(naive).iloc[0] == pd.Timestamp("2024-01-02T03:04Z")


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ([2007, 17.5], "time column 'at' holds numbers that are not years \\(e.g. 17.5\\)"),
        (
            ["2024-05-31", "last tuesday"],
            "1 value\\(s\\) that are not dates or times \\(e.g. 'last tuesday'\\)",
        ),
    ],
)
def test_event_time_refuses_what_it_cannot_read(values, message):
    with pytest.raises(DataError, match=message):
        ingest.event_time(pd.Series(values, name="at"))


def test_snapshot_parses_the_time_column_and_keeps_ids_from_the_raw_values():
    df = frame().assign(year=[2007, 2008])
    out = ingest.snapshot([("b1", df)], data=data(time="year"))
    assert pd.api.types.is_datetime64_any_dtype(out["year"])
    assert out["year"].dt.year.tolist() == [2007, 2008]
    assert out["id"].tolist() == ingest.content_ids(df).tolist()


def test_snapshot_skips_a_time_column_that_is_not_there(caplog):
    out = ingest.snapshot([("b1", frame())], data=data(time="when"))
    assert list(out.columns) == ["id", "batch", "a", "b", "y"]
    assert "skipping time column not in the data: when" in caplog.text


def test_read_batch_drops_a_snapshots_own_metadata(tmp_path):
    df = frame()
    df.attrs = {"content_sha256": "abc"}
    df.to_parquet(tmp_path / "s.parquet")
    assert ingest.read_batch(tmp_path / "s.parquet", []).attrs == {}
