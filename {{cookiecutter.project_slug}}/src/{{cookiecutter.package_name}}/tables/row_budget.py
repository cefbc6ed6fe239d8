"""The training split read on a row budget (`select.max_rows`, `train.max_rows`).

Within the budget the table is read whole, exactly as before. Past it, the rows are
chosen from the target column alone (compute.sample: seeded, stratified by class for
classification) and only those rows are read, a row group at a time (parts.take), so a
stage holds the sample, never the table, whether the table is one file or the dask
engine's folder of parts.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..core import compute, io, progress
from ..core.params import Task, TrainParams
from . import parts

# train's sample keeps at least this many rows of every class (all it has, if fewer): the
# model learns every class, and early stopping's stratified validation split needs two.
FIT_ROWS_PER_CLASS = 2


@dataclass(frozen=True)
class Budget:
    """At most `rows` rows of a table (None: every row); past it, a sample seeded by
    `seed`, stratified by class when `task` is classification and keeping `per_class`
    rows of every class (compute.sample). `setting` names the budget in the log."""

    rows: int | None
    setting: str
    task: Task
    seed: int
    per_class: int


def train_budget(rules: TrainParams, *, task: Task, seed: int) -> Budget:
    """train's budget (train.max_rows), which export counts again: the same sample."""
    return Budget(
        rows=rules.max_rows,
        setting="train.max_rows",
        task=task,
        seed=seed,
        per_class=FIT_ROWS_PER_CLASS,
    )


def positions(path: Path, target: str, budget: Budget) -> tuple[np.ndarray | None, int]:
    """(sorted positions of the sampled rows, or None for every row; the table's rows),
    chosen from the `target` column alone."""
    available = sum(parts.rows_per_part(path))
    if budget.rows is None or available <= budget.rows:
        return None, available
    classes = None
    if budget.task == "classification":
        # Category codes, in sorted order of the labels: the same strata as the labels, at
        # a byte or two a row where text labels as numpy strings take tens.
        column = io.read_parquet(path, columns=[target])[target]
        classes = column.astype("category").cat.codes.to_numpy()
        del column
    rows = np.arange(available)
    return compute.sample(rows, classes, budget.rows, budget.seed, budget.per_class), available


def read(path: Path, columns: list[str], target: str, *, budget: Budget) -> pd.DataFrame:
    """The table's `columns`: every row within `budget`, else the seeded sample of
    `positions` (logged as `sample rows=<read> of=<available> budget=<setting>`)."""
    chosen, available = positions(path, target, budget)
    if chosen is None:
        return io.read_parquet(path, columns=columns)
    progress.report("sample", rows=len(chosen), of=available, budget=budget.setting)
    return parts.take(path, chosen, columns)
