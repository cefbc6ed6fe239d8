"""add-batch: a new batch file joins the folder only when ingest would read it with the
others (same columns, same kinds of values), never replacing one; a refusal writes nothing."""

from __future__ import annotations

import pandas as pd
import pytest
import yaml

from {{ cookiecutter.package_name }}.__main__ import main
from {{ cookiecutter.package_name }}.core.errors import DataError
from {{ cookiecutter.package_name }}.core.params import DataParams
from {{ cookiecutter.package_name }}.tools import add_batch as adding

from conftest import plain_data


def data(**changes) -> DataParams:
    return DataParams(**plain_data(**{"source": "raw", "target": "b", **changes}))


def add_batch(path, folder, name=None, **changes):
    return adding.add_batch(path, folder, data(**changes), name)


def rows(**extra) -> pd.DataFrame:
    return pd.DataFrame({"a": [1.0, 2.0], "b": ["x", "y"], **extra})


@pytest.fixture
def folder(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    rows().to_csv(raw / "2024-01.csv", index=False)
    return raw


def test_adds_a_csv_byte_for_byte_under_its_own_name(folder, tmp_path):
    new = tmp_path / "2024-02.csv"
    rows()[["b", "a"]].to_csv(new, index=False)
    target = add_batch(new, folder)
    assert target == folder / "2024-02.csv"
    assert target.read_bytes() == new.read_bytes()
    assert not list(folder.glob(".*.tmp"))


def test_adds_a_parquet_under_a_given_name(folder, tmp_path):
    new = tmp_path / "export.parquet"
    rows().to_parquet(new, index=False)
    assert add_batch(new, folder, name="2024-03") == folder / "2024-03.parquet"


def test_names_missing_and_extra_columns(folder, tmp_path):
    new = tmp_path / "2024-02.csv"
    rows(c=[0, 1]).drop(columns=["b"]).to_csv(new, index=False)
    with pytest.raises(DataError, match=r"\(missing b; extra c\): rename or drop columns"):
        add_batch(new, folder)
    assert sorted(p.name for p in folder.iterdir()) == ["2024-01.csv"]


@pytest.mark.parametrize("name", ["2024-01", None])
def test_never_replaces_a_batch_even_with_another_suffix(folder, tmp_path, name):
    new = tmp_path / "2024-01.parquet"
    rows().to_parquet(new, index=False)
    with pytest.raises(DataError, match="batch '2024-01' already exists.*pick another name"):
        add_batch(new, folder, name=name)


@pytest.mark.parametrize(
    ("file", "name", "message"),
    [
        ("missing.csv", None, "is not a file"),
        ("notes.txt", None, r"a batch is a .csv \(plain, .gz, .bz2, .xz or .zip\) or .parquet"),
        ("ok.csv", "../escape", "is not a file name"),
    ],
)
def test_refuses_bad_files_and_names(folder, tmp_path, file, name, message):
    (tmp_path / "notes.txt").write_text("hi")
    rows().to_csv(tmp_path / "ok.csv", index=False)
    with pytest.raises(DataError, match=message):
        add_batch(tmp_path / file, folder, name=name)


def test_the_first_batch_of_an_empty_folder_is_accepted(tmp_path):
    (tmp_path / "raw").mkdir()
    rows().to_csv(tmp_path / "first.csv", index=False)
    assert add_batch(tmp_path / "first.csv", tmp_path / "raw").exists()


def test_cli_adds_to_data_source_and_says_what_is_next(tmp_path, monkeypatch, capsys, params_raw):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data" / "raw").mkdir(parents=True)
    rows().to_csv("data/raw/one.csv", index=False)
    rows().to_csv("two.csv", index=False)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params_raw), encoding="utf-8")
    assert main(["add-batch", "two.csv", "--no-dvc"]) == 0
    out = capsys.readouterr().out
    assert "added batch data/raw/two.csv" in out and "next: dvc add data/raw" in out
    assert main(["add-batch", "two.csv", "--no-dvc"]) == 1
    assert capsys.readouterr().err.startswith("error: batch 'two' already exists")


def test_cli_refuses_when_data_source_is_a_single_file(tmp_path, monkeypatch, capsys, params_raw):
    monkeypatch.chdir(tmp_path)
    rows().to_csv("only.csv", index=False)
    raw = {**params_raw, "data": {**params_raw["data"], "source": "only.csv"}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw), encoding="utf-8")
    assert main(["add-batch", "only.csv", "--no-dvc"]) == 1
    assert "is not a folder: add-batch adds files to a folder" in capsys.readouterr().err


def test_a_compressed_batch_keeps_its_suffix_and_its_name_is_the_stem(folder, tmp_path):
    new = tmp_path / "2024-02.csv.gz"
    rows().to_csv(new, index=False)
    assert add_batch(new, folder) == folder / "2024-02.csv.gz"
    with pytest.raises(DataError, match="batch '2024-02' already exists"):
        add_batch(tmp_path / "2024-02.csv.gz", folder)


def written(folder) -> dict:
    return {p.name: p.read_bytes() for p in folder.iterdir()}


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p.write_text("a,b,a\n1,x,2\n"), r"repeats column name\(s\) 'a'"),
        (lambda p: p.write_text("a, B\n1,x\n"), r"\(' B' here, 'b' there\): rename or drop"),
        (lambda p: p.write_text("a,b\n"), "has a header but no rows"),
        (lambda p: p.write_bytes(b""), r"is empty \(0 bytes\)"),
        (lambda p: p.write_text("a,b,ID\n1,x,7\n"), r"has reserved column\(s\) ID"),
        (lambda p: rows().assign(a=["1.5", "heavy"]).to_csv(p, index=False),
         r"column 'a' holds text in batch '2024-02' but number in batch '2024-01'"),
        (lambda p: rows().assign(b=[True, False]).to_csv(p, index=False),
         r"column 'b' holds true/false in batch '2024-02' but text in batch '2024-01'"),
    ],
)  # fmt: skip
def test_what_ingest_would_refuse_is_refused_before_anything_is_written(
    folder, tmp_path, make, message
):
    new = tmp_path / "2024-02.csv"
    make(new)
    before = written(folder)
    with pytest.raises(DataError, match=message):
        add_batch(new, folder)
    assert written(folder) == before


def test_a_nested_or_retyped_parquet_batch_is_refused_from_its_first_rows(folder, tmp_path):
    nested = tmp_path / "nested.parquet"
    rows().assign(b=[["x"], ["y"]]).to_parquet(nested)
    with pytest.raises(DataError, match=r"has nested column\(s\) 'b'"):
        add_batch(nested, folder)
    retyped = tmp_path / "retyped.parquet"
    rows().assign(a=["1.5", "heavy"]).to_parquet(retyped)
    with pytest.raises(DataError, match="column 'a' holds text in batch 'retyped'"):
        add_batch(retyped, folder)
    assert sorted(written(folder)) == ["2024-01.csv"]


def test_the_type_check_reads_a_bounded_sample_and_spares_the_event_time(
    folder, tmp_path, monkeypatch
):
    """Only the first SAMPLE_ROWS rows are compared (ingest compares every row); the event
    time may be years in one batch and dates in another, as ingest reads both."""
    monkeypatch.setattr(adding, "SAMPLE_ROWS", 2)
    late = tmp_path / "late.csv"
    text_later = pd.concat([rows(), rows().assign(a="x")]).assign(t=[2007, 2008, 2009, 2010])
    text_later.to_csv(late, index=False)
    (folder / "2024-01.csv").write_text("a,b,t\n1,x,2007-05-01\n")
    assert add_batch(late, folder, time="t").exists()


def test_a_folder_holding_a_file_ingest_refuses_is_named(folder, tmp_path):
    (folder / "notes.txt").write_text("hi")
    (folder / ".gitignore").write_text("/x\n")
    rows().to_csv(tmp_path / "2024-02.csv", index=False)
    with pytest.raises(DataError, match="cannot read notes.txt in"):
        add_batch(tmp_path / "2024-02.csv", folder)
