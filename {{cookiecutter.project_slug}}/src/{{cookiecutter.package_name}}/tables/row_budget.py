"""The training split read on a row budget (`select.max_rows`, `train.max_rows`).

Within the budget the table is read whole, exactly as before. Past it, the rows are
chosen from the target column alone (compute.sample: seeded, stratified by class for
classification) and only those rows are read, a row group at a time (parts.take), so a
stage holds the sample, never the table, whether the table is one file or the dask
engine's folder of parts.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..core import compute, io, progress
from ..core.params import Task
from . import parts

# train's sample keeps at least this many rows of every class (all it has, if fewer): the
# model learns every class, and early stopping's stratified validation split needs two.
FIT_ROWS_PER_CLASS = 2


def positions(
    path: Path,
    target: str,
    budget: int | None,
    task: Task,
    seed: int,
    per_class: int = 0,
) -> tuple[np.ndarray | None, int]:
    """(sorted positions of the sampled rows, or None for every row; the table's rows)."""
    available = sum(parts.rows_per_part(path))
    if budget is None or available <= budget:
        return None, available
    classes = None
    if task == "classification":
        # Category codes, in sorted order of the labels: the same strata as the labels, at
        # a byte or two a row where text labels as numpy strings take tens.
        column = io.read_parquet(path, columns=[target])[target]
        classes = column.astype("category").cat.codes.to_numpy()
        del column
    return compute.sample(np.arange(available), classes, budget, seed, per_class), available


def read(
    path: Path,
    columns: list[str],
    target: str,
    budget: int | None,
    task: Task,
    seed: int,
    *,
    per_class: int,
    setting: str,
) -> pd.DataFrame:
    """The table's `columns`: every row within `budget`, else the seeded sample of
    `positions` (logged as `sample rows=<read> of=<available> budget=<setting>`)."""
    chosen, available = positions(path, target, budget, task, seed, per_class)
    if chosen is None:
        return io.read_parquet(path, columns=columns)
    progress.report("sample", rows=len(chosen), of=available, budget=setting)
    return parts.take(path, chosen, columns)
