"""The dask engine's tables. A pipeline table on disk is a Parquet file (the local
engine's) or a folder of parts (the dask engine's, `part-NNNNNN.parquet`, read in name
order); here it becomes a dask DataFrame with a partition per part, each read by
`io.read_parquet` on a worker, so its dtypes are the ones the local engine sees; and a
dask DataFrame goes back to disk as a folder of parts, one per partition, written by
the workers and swapped in whole (`io.atomic_dir`).

dask is imported here, in cluster.py and in the `*_dask` modules only: the local
engine never loads it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from . import io
from .errors import DataError

if TYPE_CHECKING:
    import dask.dataframe as dd


def part_name(number: int) -> str:
    # Zero-padded: Parquet readers list a folder's parts in name order.
    return f"part-{number:06d}.parquet"


def files(path: Path) -> list[Path]:
    """The Parquet files that hold the table at `path`, in row order; absolute, because
    workers may not share this process's working directory."""
    path = Path(path).resolve()
    if not path.exists():
        raise DataError(f"{path} does not exist: run `dvc repro` to build it")
    return sorted(path.glob("*.parquet")) if path.is_dir() else [path]


def read(path: Path, columns: list[str] | None = None) -> dd.DataFrame:
    """The table at `path` as a dask DataFrame, one partition per file, rows in order."""
    import dask.dataframe as dd

    parts = files(path)
    meta = io.read_parquet(parts[0], columns=columns).iloc[:0]
    return dd.from_map(io.read_parquet, parts, columns=columns, meta=meta, enforce_metadata=False)


def rows_per_part(path: Path) -> list[int]:
    """Each part's row count, from the Parquet footers: no column is read."""
    import pyarrow.parquet as pq

    return [pq.ParquetFile(f).metadata.num_rows for f in files(path)]


def _write(frame: pd.DataFrame, target: Path) -> int:
    frame.to_parquet(target, index=False, engine="pyarrow")
    return len(frame)


def write(frames: list, path: Path, check: Callable[[list[int]], None] | None = None) -> int:
    """Write each of `frames` (delayed pandas frames, e.g. `ddf.to_delayed()`, in row
    order) as a part of the folder `path`, replacing it whole; the rows written. `check`
    sees the rows per part before the folder is swapped in: raising there leaves the
    old output in place."""
    import dask

    with io.atomic_dir(path) as folder:
        folder = folder.resolve()
        written = dask.compute(
            *[
                dask.delayed(_write)(frame, folder / part_name(number))
                for number, frame in enumerate(frames)
            ]
        )
        if check is not None:
            check(list(written))
    return sum(written)
