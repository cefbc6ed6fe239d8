"""A data source's batches: which files are batches, and the reader of each kind of file.

`ingest` reads the batches of data.source, `add-batch` adds one to its folder, and `fetch`
reads remote files of the same kinds: all three take the kinds from READERS.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..core import io
from ..core.errors import DataError


def read_csv(source: object, *, missing_values: list[str]) -> pd.DataFrame:
    """A CSV file (a path or a file-like object) under the missing-value rule: an empty
    cell is missing, and so is a cell holding one of `missing_values` (data.missing_values);
    nothing else. pandas' default would also read NA, None, null, nan, N/A, ... as missing,
    so a class named NA would silently become an unlabelled row."""
    return pd.read_csv(source, keep_default_na=False, na_values=["", *missing_values])


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
        found = [source]
    elif source.is_dir():
        found = sorted(p for p in source.iterdir() if p.suffix.lower() in READERS)
    else:
        raise DataError(f"data.source {str(source)!r} does not exist: point it at a file or folder")
    if not found:
        raise DataError(
            f"data.source {str(source)!r} holds no .csv or .parquet file: add one batch per file"
        )
    unknown = [p.name for p in found if p.suffix.lower() not in READERS]
    if unknown:
        raise DataError(f"cannot read {', '.join(unknown)}: use .csv or .parquet")
    return found
