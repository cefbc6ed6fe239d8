"""Collect more data: copy a new batch file into the batch folder, then `dvc add` it.

Before anything is written the file gets the checks ingest makes (its suffix, a header
with a name for every column, once, nothing nested, at least one row, no column of
ingest's own) and is compared with the batches already there: the same columns, and the
same kind of values in each (number, text, ...), read from the first SAMPLE_ROWS rows of
each file, so the cost does not grow with the batches' sizes (ingest then compares every
row). The copy is atomic and never replaces an existing batch: a batch once ingested
stays as it was.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from ..core import io, paths
from ..core.errors import ConfigError, DataError
from ..core.params import DataParams, load
from ..tables import batches, headers

SAMPLE_ROWS = 1000


def sample(path: Path, missing_values: list[str]) -> pd.DataFrame:
    """The first SAMPLE_ROWS rows of a batch file, its columns as headers.names has them,
    read as ingest reads them (data.missing_values)."""
    try:
        if batches.suffix_of(path) == ".parquet":
            with pq.ParquetFile(path) as file:
                first = next(file.iter_batches(batch_size=SAMPLE_ROWS), None)
                rows = file.schema_arrow.empty_table() if first is None else first
            frame = rows.to_pandas(ignore_metadata=True)
            return frame[headers.parquet_names(rows.schema)]
        return batches.reader(path)(path, missing_values=missing_values, nrows=SAMPLE_ROWS)
    except UnicodeDecodeError as exc:
        raise DataError(headers.not_utf8(path, exc)) from None
    except Exception as exc:  # the reader's own message says what is wrong with the file
        raise DataError(headers.unreadable(path, exc)) from None


def check_columns(new: Path, columns: list[str], existing: Path) -> None:
    """The new batch has the columns of an existing one, named alike (any order)."""
    wanted, have = headers.names(existing), columns
    near = headers.near_misses(have, wanted)
    alike = {n for pair in near for n in pair}
    missing = sorted(set(wanted) - set(have) - alike)
    extra = sorted(set(have) - set(wanted) - alike)
    if missing or extra or near:
        parts = [f"missing {', '.join(missing)}" if missing else "",
                 f"extra {', '.join(extra)}" if extra else "",
                 *(f"{here!r} here, {there!r} there" for here, there in near)]  # fmt: skip
        raise DataError(
            f"{new} does not have the columns of the batches in {existing.parent} "
            f"({'; '.join(p for p in parts if p)}): rename or drop columns so they match "
            f"{existing.name}"
        )


def check_kinds(new: Path, name: str, existing: list[Path], data: DataParams) -> None:
    """Each column holds the same kind of values as in the existing batches (their first
    rows); the event time is left out: ingest reads years and dates alike."""
    seen: dict[str, tuple[str, str]] = {}
    for path in [*existing, new]:
        found = headers.kinds(sample(path, data.missing_values))
        found.pop(data.time, None)
        headers.agree(name if path == new else batches.name(path), found, seen)


def check_batch(new: Path, name: str, existing: list[Path], data: DataParams) -> None:
    """What ingest would refuse in `new`, refused before it joins the folder."""
    if new.stat().st_size == 0:
        raise DataError(f"{new} is empty (0 bytes): export it again")
    columns = headers.names(new)
    if sample(new, data.missing_values).empty:
        raise DataError(f"{new} has a header but no rows: export its rows again")
    clash = headers.reserved(columns, data.id_column)
    if clash:
        raise DataError(
            f"{new} has reserved column(s) {', '.join(clash)}: rename them, or set "
            "data.id_column to your id column"
        )
    if existing:
        check_columns(new, columns, existing[0])
        check_kinds(new, name, existing, data)


def add_batch(path: Path, folder: Path, data: DataParams, name: str | None = None) -> Path:
    """Copy `path` into `folder` as batch `name` (default: the file's own name); return it."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path} is not a file: give the path of a {batches.KINDS} batch")
    suffix = batches.suffix_of(path)
    if suffix is None:
        raise DataError(
            f"cannot add {path.name}: a batch is a {batches.KINDS} file; convert it to one first"
        )
    name = name or batches.name(path)
    if not paths.FILE_STEM.match(name):
        raise DataError(
            f"batch name {name!r} is not a file name: use letters, digits, '.', '_' and '-'"
        )
    existing = batches.listed(folder, [p for p in folder.iterdir() if not p.name.startswith(".")])
    taken = [p.name for p in existing if batches.name(p) == name]
    if taken:
        raise DataError(
            f"batch {name!r} already exists ({folder / taken[0]}): batches are never replaced; "
            "pick another name with --name"
        )
    check_batch(path, name, existing, data)
    target = folder / f"{name}{suffix}"
    io.write_bytes(target, path.read_bytes())
    return target


def batch_folder(data: DataParams) -> Path:
    """data.source, which must be a folder for batches to be added to it."""
    source = Path(data.source)
    if not source.is_dir():
        raise ConfigError(
            f"data.source {str(source)!r} is not a folder: add-batch adds files to a folder of "
            "batches; set data.source to one (e.g. data/raw)"
        )
    return source


def main(path: str, name: str | None = None, track: bool = True) -> None:
    data = load().data
    folder = batch_folder(data)
    target = add_batch(Path(path), folder, data, name)
    print(f"added batch {target}")
    command = [sys.executable, "-m", "dvc", "add", str(folder)]
    if track:
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            detail = (done.stderr or done.stdout).strip().splitlines()
            raise DataError(
                f"`dvc add {folder}` failed ({detail[-1] if detail else 'no output'}): "
                f"the batch is in place; fix that and run `dvc add {folder}` yourself"
            )
        print(f"dvc add {folder}: done")
    else:
        print(f"next: dvc add {folder}")
    print(f"then: dvc repro, and commit {folder}.dvc")
