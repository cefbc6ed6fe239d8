"""A data source's batches: which files are batches, and the reader of each kind of file.

`ingest` reads the batches of data.source, `add-batch` adds one to its folder, and `fetch`
reads remote files of the same kinds: all three take the kinds from READERS.

A data folder's files are each read or refused by name, never skipped: a batch is a CSV,
plain or compressed (SUFFIXES), or a Parquet file, and any other file or folder in it is
refused. Hidden names (a leading dot: .gitignore, .DS_Store, an editor's swap file) are
not data and are passed over. A batch's name is its file name less that suffix, so two
files of one name (`2024.csv` and `2024.csv.gz`) are refused as one batch twice.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from ..core import io
from ..core.errors import DataError


def read_csv(
    source: object, *, missing_values: list[str], nrows: int | None = None
) -> pd.DataFrame:
    """A CSV file (a path or a file-like object; its first `nrows` rows) under the
    missing-value rule: an empty cell is missing, and so is a cell holding one of
    `missing_values` (data.missing_values); nothing else. pandas' default would also read
    NA, None, null, nan, N/A, ... as missing, so a class named NA would silently become an
    unlabelled row."""
    return pd.read_csv(source, keep_default_na=False, na_values=["", *missing_values], nrows=nrows)


def read_parquet(source: object, *, missing_values: list[str]) -> pd.DataFrame:
    """A Parquet file under the same rule: a null is missing, and so is a value that is one
    of `missing_values` (text compared as text, numbers as numbers)."""
    return as_missing(pd.read_parquet(source, **io.PARQUET_READ), missing_values)


def as_missing(frame: pd.DataFrame, missing_values: list[str]) -> pd.DataFrame:
    """`frame` with every value listed in `missing_values` made missing, in place."""
    if not missing_values:
        return frame
    numbers = pd.to_numeric(pd.Series(missing_values), errors="coerce").dropna().unique()
    for column in frame.columns:
        values = frame[column]
        if pd.api.types.is_bool_dtype(values) or pd.api.types.is_datetime64_any_dtype(values):
            continue
        listed = missing_values if not pd.api.types.is_numeric_dtype(values) else numbers
        hit = values.isin(listed)
        if hit.any():
            frame[column] = values.mask(hit)
    return frame


# File suffix -> reader of a path or a file-like object, called as
# `READERS[suffix](source, missing_values=data.missing_values)`.
READERS = {".csv": read_csv, ".parquet": read_parquet}

log = logging.getLogger(__name__)

# A batch file's suffix (lowercase) -> its kind in READERS: pandas reads these compressions
# from a path with the standard library alone (.csv.zst would need the zstandard package).
SUFFIXES = {
    ".csv": ".csv", ".csv.gz": ".csv", ".csv.bz2": ".csv", ".csv.xz": ".csv",
    ".csv.zip": ".csv", ".parquet": ".parquet",
}  # fmt: skip
KINDS = ".csv (plain, .gz, .bz2, .xz or .zip) or .parquet"


def suffix_of(path: Path) -> str | None:
    """The batch suffix `path`'s name ends in (lowercase), or None: not a batch file."""
    lower = path.name.lower()
    return next((s for s in SUFFIXES if lower.endswith(s) and len(lower) > len(s)), None)


def reader(path: Path) -> Callable[..., pd.DataFrame]:
    """The reader of a batch file; its compression pandas finds from the suffix."""
    return READERS[SUFFIXES[suffix_of(path)]]


def name(path: Path) -> str:
    """A batch file's name less its batch suffix (`2024-01.csv.gz` -> `2024-01`)."""
    return path.name[: -len(suffix_of(path))]


def files(source: Path) -> list[Path]:
    """The batch files of a source: the file itself, or a folder's files sorted by name."""
    if "://" in str(source):
        raise DataError(
#% if cookiecutter.remote_sources == "yes"
            f"data.source {str(source)!r} is a URL; ingest reads local files and folders: "
            "list the URL under data.fetch and set data.source to data/fetched "
            "(docs/data-sources.md: Remote sources)"
#% else
            f"data.source {str(source)!r} is a URL; ingest reads local files and folders: "
            "download it into data/raw/ (`python -m {{ cookiecutter.package_name }} add-batch "
            "FILE`)"
#% endif
        )
    if source.is_file():
        found = listed(source.parent, [source])
    elif source.is_dir():
        found = listed(source, [p for p in source.iterdir() if not p.name.startswith(".")])
    else:
        raise DataError(f"data.source {str(source)!r} does not exist: point it at a file or folder")
    if not found:
        raise DataError(f"data.source {str(source)!r} holds no batch file: add one, a {KINDS}")
    kinds = Counter(suffix_of(p) for p in found)
    log.info(
        "data.source %s: %d batch file(s) (%s)",
        source,
        len(found),
        ", ".join(f"{count} {suffix}" for suffix, count in sorted(kinds.items())),
    )
    return found


def listed(folder: Path, entries: list[Path]) -> list[Path]:
    """`entries` of `folder` sorted by name, once each is known to be a batch file of its
    own name: a folder, another kind of file, or a second file of one batch is refused."""
    others = sorted(p.name for p in entries if p.is_dir() or suffix_of(p) is None)
    if others:
        raise DataError(
            f"cannot read {', '.join(others[:5])}{' ...' if len(others) > 5 else ''} in "
            f"{folder}: a batch is a {KINDS} file; convert it to one, or move it out of the "
            "folder"
        )
    found = sorted(entries)
    seen: dict[str, str] = {}
    for path in found:
        if name(path) in seen:
            raise DataError(
                f"{seen[name(path)]} and {path.name} in {folder} are both batch "
                f"{name(path)!r}: keep one of them"
            )
        seen[name(path)] = path.name
    return found
