"""add-batch: a new batch file joins the folder only with the same columns, never replacing one."""

from __future__ import annotations

import pandas as pd
import pytest
import yaml

from {{ cookiecutter.package_name }}.__main__ import main
from {{ cookiecutter.package_name }}.core.errors import DataError
from {{ cookiecutter.package_name }}.tools.add_batch import add_batch


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
        ("notes.txt", None, "a batch is a .csv or .parquet file"),
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
