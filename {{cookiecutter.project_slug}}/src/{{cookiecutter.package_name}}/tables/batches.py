"""A data source's batches: which files are batches, and the reader of each kind of file.

`ingest` reads the batches of data.source, `add-batch` adds one to its folder, and `fetch`
reads remote files of the same kinds: all three take the kinds from READERS.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import pandas as pd

from ..core import io
from ..core.errors import DataError

# File suffix -> reader of a path or a file-like object.
READERS = {".csv": pd.read_csv, ".parquet": partial(pd.read_parquet, **io.PARQUET_READ)}


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
