"""What a stage may spend, in one place: cores (`compute.n_jobs`) and row budgets.

Two kinds of parallelism meet in a stage: joblib (random-forest trees, cross-validation
folds) and the native thread pools of BLAS and OpenMP (linear algebra, histogram
gradient boosting). `cores(n)` sets both for one fit or prediction; `folds(n)` runs
independent fits side by side in threads, each fit single-threaded inside, so two
levels never oversubscribe the machine. Threads, not processes: the fits release the
GIL, and the data is shared instead of copied into every worker.

Every split of the work is fixed by the settings, not by timing, so a rerun with the
same `compute.n_jobs` gives byte-identical models.

Row budgets (`sample`) are for choosing and judging (select's halving, annotate's label
judge), for preprocess's transformer fit, and for train only when `train.max_rows` is set
(row_budget reads such a sample without reading the table); evaluate scores every test row.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
from joblib import parallel_config
from sklearn.model_selection import train_test_split
from threadpoolctl import threadpool_limits


@contextmanager
def cores(n: int) -> Iterator[None]:
    """One fit or prediction on `n` cores."""
    with parallel_config(backend="threading", n_jobs=n), threadpool_limits(limits=n):
        yield


@contextmanager
def folds(n: int) -> Iterator[None]:
    """`n` independent fits at a time (pass n_jobs=n to cross_validate), each on one core."""
    with parallel_config(backend="threading", n_jobs=n), threadpool_limits(limits=1):
        yield


def sample(
    rows: np.ndarray, y: np.ndarray | None, size: int, seed: int, per_class: int = 0
) -> np.ndarray:
    """At most `size` of the positions `rows`, sorted, stratified by `y` when given (every
    class keeps its share); all of them when they fit. With `per_class`, a class whose
    share is smaller keeps that many rows (all it has, if fewer), so that stratified folds
    of the sample still see every class: the sample grows by those few rows."""
    if len(rows) <= size:
        return rows
    stratify = None
    if y is not None:
        _, counts = np.unique(y[rows], return_counts=True)
        # A class of one row cannot be split in proportion: fall back to a plain sample.
        stratify = y[rows] if counts.min() >= 2 else None
    kept, _ = train_test_split(rows, train_size=size, stratify=stratify, random_state=seed)
    if y is not None and per_class:
        kept = np.concatenate([kept, _topped_up(rows, kept, y, per_class, seed)])
    return np.sort(kept)


def _topped_up(
    rows: np.ndarray, kept: np.ndarray, y: np.ndarray, per_class: int, seed: int
) -> np.ndarray:
    """Rows of `rows` not in `kept` that bring each class up to per_class rows in kept."""
    have = dict(zip(*np.unique(y[kept], return_counts=True), strict=True))
    short = [c for c in np.unique(y[rows]) if have.get(c, 0) < per_class]
    if not short:
        return np.empty(0, dtype=rows.dtype)
    rng = np.random.default_rng(seed)
    spare = np.setdiff1d(rows, kept)
    return np.concatenate(
        [rng.permutation(spare[y[spare] == c])[: per_class - have.get(c, 0)] for c in short]
    )
