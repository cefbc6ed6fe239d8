"""The dask engine's tables. A pipeline table on disk is a Parquet file (the local
engine's) or a folder of parts (the dask engine's, `part-NNNNNN.parquet`, read in name
order); here it becomes a dask DataFrame with a partition per part, each read by
`io.read_parquet` on a worker, so its dtypes are the ones the local engine sees; and a
dask DataFrame goes back to disk as a folder of parts, one per partition, written by
the workers and swapped in whole (`io.atomic_dir`).

`take` reads chosen rows of such a table, file or folder, one row group at a time with
pyarrow alone: how select and train read the training split on a row budget without
holding it whole.

dask is imported here, in core/cluster.py and in dask_engine/ only: the local engine
never loads it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..core import io
from ..core.errors import DataError

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
    import dask
    import dask.dataframe as dd

    parts = files(path)
    meta = empty(parts[0], columns)
    # Without this, dask turns text columns into its pyarrow strings (missing as pd.NA),
    # which scikit-learn's imputers cannot compare: the partitions keep pandas' dtypes.
    with dask.config.set({"dataframe.convert-string": False}):
        return dd.from_map(
            io.read_parquet, parts, columns=columns, meta=meta, enforce_metadata=False
        )


def empty(path: Path, columns: list[str] | None = None) -> pd.DataFrame:
    """The part's columns and dtypes as an empty frame, from its footer alone: reading the
    part and slicing it would read every row, and the slice, a view, would keep them."""
    import pyarrow.parquet as pq

    table = pq.read_schema(path).empty_table()
    return (table if columns is None else table.select(columns)).to_pandas()


def rows_per_part(path: Path) -> list[int]:
    """Each part's row count, from the Parquet footers: no column is read."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return [pq.ParquetFile(f).metadata.num_rows for f in files(path)]
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataError(io.damaged(path, exc)) from None


def take(path: Path, positions: np.ndarray, columns: list[str] | None = None) -> pd.DataFrame:
    """The rows at `positions` (sorted row numbers of the whole table, parts in name order)
    of the table at `path`, file or folder of parts, as `io.read_parquet(path,
    columns).iloc[positions]` gives them, index reset: same values, same dtypes. Only the
    row groups holding a chosen row are read, one at a time, so the memory is the rows
    taken and one row group, whatever the table's size."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    positions = np.asarray(positions, dtype=np.int64)
    if positions.size and (positions[0] < 0 or (np.diff(positions) < 0).any()):
        raise ValueError("positions must be sorted row numbers, none negative")
    pieces, start = [], 0
    try:
        for part in files(path):
            table = pq.ParquetFile(part)
            taken = False
            for group in range(table.metadata.num_row_groups):
                rows = table.metadata.row_group(group).num_rows
                first, last = np.searchsorted(positions, [start, start + rows])
                if last > first:
                    chunk = table.read_row_group(group, columns=columns, use_pandas_metadata=True)
                    pieces.append(chunk.take(positions[first:last] - start))
                    taken = True
                start += rows
            empty = not positions.size and not pieces
            if not taken and (empty or _has_categories(table.schema_arrow, columns)):
                # A part with no chosen row still gives its categories to a categorical
                # column (io.read_parquet's categories are the union over every part),
                # and the first part gives the columns when no row is chosen at all.
                pieces.append(_no_rows(table, columns))
        if positions.size and positions[-1] >= start:
            raise ValueError(f"row {positions[-1]} is past the {start} rows of {path}")
        frame = pa.concat_tables(pieces).to_pandas()
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataError(io.damaged(path, exc)) from None
    return frame


def _has_categories(schema, columns: list[str] | None) -> bool:
    import pyarrow as pa

    return any(
        pa.types.is_dictionary(field.type)
        for field in schema
        if columns is None or field.name in columns
    )


def _no_rows(table, columns: list[str] | None):
    """A part's columns with no row (and a categorical column's full dictionary)."""
    if table.metadata.num_row_groups == 0:
        return table.schema_arrow.empty_table().select(columns or table.schema_arrow.names)
    return table.read_row_group(0, columns=columns, use_pandas_metadata=True).slice(0, 0)


def _write(frame: pd.DataFrame, target: Path) -> int:
    frame.to_parquet(target, index=False, engine="pyarrow")
    return len(frame)


def write(frames: list, path: Path, check: Callable[[list[int]], None] | None = None) -> int:
    """Write each of `frames` (delayed pandas frames, e.g. `ddf.to_delayed()`, in row
    order) as a part of the folder `path`, replacing it whole; the rows written. `check`
    sees the rows per part before the folder is swapped in: raising there leaves the
    old output in place."""

    def check_one(rows: dict[Path, list[int]], _facts: list) -> None:
        if check is not None:
            check(rows[path])

    rows, _ = write_many({path: frames}, check=check_one)
    return sum(rows[path])


def write_many(
    tables: dict[Path, list],
    facts: list = (),
    check: Callable[[dict[Path, list[int]], list], None] | None = None,
) -> tuple[dict[Path, list[int]], list]:
    """Several outputs of one stage, in one pass over the cluster: each table's delayed
    frames become the parts of its folder, and `facts` (delayed, e.g. per-partition
    counts) are computed alongside. `check(rows per part of each table, facts)` runs
    before any folder is swapped in; raising there leaves every old output in place.
    Returns (rows per part of each table, facts)."""
    import dask

    with contextlib.ExitStack() as stack:
        folders = {path: stack.enter_context(io.atomic_dir(path)).resolve() for path in tables}
        writes = [
            [
                dask.delayed(_write)(frame, folders[path] / part_name(number))
                for number, frame in enumerate(frames)
            ]
            for path, frames in tables.items()
        ]
        written, facts = dask.compute(writes, list(facts))
        rows = dict(zip(tables, map(list, written), strict=True))
        if check is not None:
            check(rows, facts)
    return rows, facts
