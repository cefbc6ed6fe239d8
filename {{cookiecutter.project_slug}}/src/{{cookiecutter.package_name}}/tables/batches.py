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
from functools import partial
from pathlib import Path

import pandas as pd

from ..core import io
from ..core.errors import DataError

log = logging.getLogger(__name__)

# File suffix -> reader of a path or a file-like object.
READERS = {".csv": pd.read_csv, ".parquet": partial(pd.read_parquet, **io.PARQUET_READ)}
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
