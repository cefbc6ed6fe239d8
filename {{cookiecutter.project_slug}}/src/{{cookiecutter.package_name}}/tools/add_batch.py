"""Collect more data: copy a new batch file into the batch folder, then `dvc add` it.

The file must have the same columns as the batches already there (the ingest
stage refuses anything else, but later and with less to go on). The copy is
atomic and never replaces an existing batch: a batch once ingested stays as it was.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from ..core import io, paths
from ..core.errors import ConfigError, DataError
from ..core.params import load
from ..tables import batches


def columns_of(path: Path) -> list[str]:
    """Column names from the file's header or schema, without reading its rows."""
    try:
        if path.suffix.lower() == ".parquet":
            return [name for name in pq.read_schema(path).names if name != "__index_level_0__"]
        return list(pd.read_csv(path, nrows=0).columns)
    except Exception as exc:
        raise DataError(f"cannot read the columns of {path}: {exc}") from None


def check_columns(new: Path, existing: list[Path]) -> None:
    if not existing:
        return
    wanted, have = set(columns_of(existing[0])), set(columns_of(new))
    missing, extra = sorted(wanted - have), sorted(have - wanted)
    if missing or extra:
        parts = [f"missing {', '.join(missing)}" if missing else "",
                 f"extra {', '.join(extra)}" if extra else ""]  # fmt: skip
        raise DataError(
            f"{new} does not have the columns of the batches in {existing[0].parent} "
            f"({'; '.join(p for p in parts if p)}): rename or drop columns so they match "
            f"{existing[0].name}"
        )


def add_batch(path: Path, folder: Path, name: str | None = None) -> Path:
    """Copy `path` into `folder` as batch `name` (default: the file's own name); return it."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path} is not a file: give the path of a .csv or .parquet batch")
    suffix = path.suffix.lower()
    if suffix not in batches.READERS:
        raise DataError(f"cannot add {path.name}: a batch is a .csv or .parquet file")
    name = name or path.stem
    if not paths.FILE_STEM.match(name):
        raise DataError(
            f"batch name {name!r} is not a file name: use letters, digits, '.', '_' and '-'"
        )
    existing = batches.files(folder) if folder.is_dir() and any(folder.iterdir()) else []
    taken = [p.name for p in existing if p.stem == name]
    if taken:
        raise DataError(
            f"batch {name!r} already exists ({folder / taken[0]}): batches are never replaced; "
            "pick another name with --name"
        )
    check_columns(path, existing)
    target = folder / f"{name}{suffix}"
    io.write_bytes(target, path.read_bytes())
    return target


def batch_folder() -> Path:
    """data.source, which must be a folder for batches to be added to it."""
    source = Path(load().data.source)
    if not source.is_dir():
        raise ConfigError(
            f"data.source {str(source)!r} is not a folder: add-batch adds files to a folder of "
            "batches; set data.source to one (e.g. data/raw)"
        )
    return source


def main(path: str, name: str | None = None, track: bool = True) -> None:
    folder = batch_folder()
    target = add_batch(Path(path), folder, name)
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
