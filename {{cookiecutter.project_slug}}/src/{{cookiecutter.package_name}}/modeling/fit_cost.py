"""What a candidate's cross-validation costs, predicted before it runs, in reference seconds.

select's time budget (select.time_budget) cuts candidates by these predictions, never by a
clock: a prediction counts work from facts known before fitting (rows, the transformer's
input columns and output width, classes, the estimator's hyperparameters) and turns it
into seconds at rates measured once on the reference machine, so the same data and
config make the same cut on any machine, however fast or loaded. select logs the measured
seconds next to the predicted ones.

The rates were measured on the reference machine (2 cores) as CPU seconds
(time.process_time) of single-threaded fits plus predicting a quarter as many rows, the
least of 3 to 5 runs: the machine was shared (load average 9 to 11), and other jobs take a
process's wall time but not its CPU time, so these are the rates of the machine alone.
Data: standard-normal features with a signal; forests 2,000 to 20,000 rows x 3 to 62
features per split, 5 to 20 trees (a least-squares fit of the two tree rates, then
scaled to CPU time) and 300 trees on 50 rows (the fixed cost); histogram boosting 2,000
to 16,000 x 10 to 120, 20 to 50 iterations; the project's transformer with 2 to 60
numeric and 0 to 2 categorical columns. Trees and boosting hold within a factor of 1.6 of
those fits, linear models are an upper bound, and the tests hold every kind within a
factor of 3 of real fits (tests/modeling/test_fit_cost.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from sklearn.base import BaseEstimator

# The reference machine's cores: compute.n_jobs=-1 counts as this many wherever it runs,
# so that the cut does not follow the machine's core count.
REFERENCE_CORES = 2
# The transformer (per fold: fit on the fit rows, transform every row of the rung): a
# fixed cost, then seconds per row and numeric column (imputing and scaling) and per row
# and categorical column (imputing text, encoding).
TRANSFORM_FIXED = 0.012
TRANSFORM_NUMERIC = 6.5e-8
TRANSFORM_CATEGORICAL = 1.0e-6
# Trees of a forest: a fixed cost per tree (drawing its rows, building its arrays: what a
# tree on 50 rows takes), then sorting a node's rows on each feature drawn for the split,
# summed over the tree's levels (rows x sum over levels of log2 of a node's rows), times
# (TREE_PER_FEATURE x features per split + TREE_PER_ROW); the second is the work each
# level does whatever the features drawn (partitioning rows, drawing features).
TREE_FIXED = 7.5e-4
TREE_PER_FEATURE = 5.2e-9
TREE_PER_ROW = 6.5e-9
# Histogram gradient boosting, per tree (one per iteration; one per class and iteration
# for more than two classes): a fixed cost, split finding per feature (at 31 leaves,
# scaled by max_leaf_nodes) and building histograms per row and feature.
BOOST_TREE_FIXED = 6e-4
BOOST_PER_FEATURE = 6.7e-5
BOOST_PER_CELL = 1.5e-8
BOOST_LEAVES = 31
# Linear models from scikit-learn's linear_model: iterations x rows x features (x classes
# above two). Solvers stop when they converge, which no fact before fitting tells: this
# counts LINEAR_ITERATIONS (or max_iter, when smaller), twice what lbfgs needed on the
# calibration data: an upper bound there (ridge's solver is direct: 3 to 10 times over),
# small next to the transformer's cost and any tree's.
LINEAR_ITERATIONS = 20
LINEAR_PER_CELL = 2e-9


@dataclass(frozen=True)
class Shape:
    """The facts about a rung's data that cost follows: its rows (every fold's fit and
    scored rows), the transformer's input columns by kind, its output width, and the
    target's distinct classes (1 for regression)."""

    rows: int
    numeric: int
    categorical: int
    width: int
    classes: int = 1


def cv_seconds(estimator: BaseEstimator, shape: Shape, *, folds: int, n_jobs: int) -> float:
    """Predicted reference seconds of cross-validating transformer + `estimator` on
    `shape` in `folds` folds, min(folds, cores) fits at a time (n_jobs -1: the reference
    machine's cores)."""
    cores = REFERENCE_CORES if n_jobs == -1 else n_jobs
    fit_rows = max(shape.rows * (folds - 1) // folds, 1)
    transform = TRANSFORM_FIXED + shape.rows * (
        TRANSFORM_NUMERIC * shape.numeric + TRANSFORM_CATEGORICAL * shape.categorical
    )
    per_fold = transform + fit_seconds(estimator, fit_rows, shape.width, shape.classes)
    return folds * per_fold / min(folds, cores)


def fit_seconds(estimator: BaseEstimator, rows: int, width: int, classes: int = 1) -> float:
    """Predicted reference seconds of fitting `estimator` on `rows` x `width` and
    predicting a quarter as many rows. An estimator of another kind than those below
    counts as the dearest of the shipped defaults, a forest of 100 full-depth trees
    drawing every feature: an upper bound for most, stated so a user who adds a model
    knows what its cut assumes."""
    kind = type(estimator).__name__
    settings = estimator.get_params(deep=False)
    if kind.startswith(("RandomForest", "ExtraTrees")):
        return forest_seconds(settings, rows, width)
    if kind.startswith("HistGradientBoosting"):
        return boosting_seconds(settings, rows, width, classes)
    if kind.startswith(("LGBM", "XGB")):
        return boosting_seconds(as_histogram_boosting(kind, settings), rows, width, classes)
    if type(estimator).__module__.startswith("sklearn.linear_model"):
        iterations = min(settings.get("max_iter") or LINEAR_ITERATIONS, LINEAR_ITERATIONS)
        return LINEAR_PER_CELL * iterations * rows * width * _per_class(classes)
    return forest_seconds({"n_estimators": 100, "max_features": None}, rows, width)


def forest_seconds(settings: dict[str, Any], rows: int, width: int) -> float:
    """A random forest's (or extra trees'): trees x the work of one tree on the rows it
    draws (max_samples, bootstrap), to its depth (max_depth, max_leaf_nodes,
    min_samples_leaf)."""
    drawn = rows
    if settings.get("bootstrap", True):
        drawn = _count(settings.get("max_samples"), rows)
    leaf = _count(settings.get("min_samples_leaf", 1), drawn)
    levels = math.log2(max(drawn / leaf, 2)) + 1
    if settings.get("max_depth"):
        levels = min(levels, settings["max_depth"])
    if settings.get("max_leaf_nodes"):
        levels = min(levels, math.log2(settings["max_leaf_nodes"]) + 1)
    # A node at level d holds about drawn / 2**d rows: sorting them costs log2 of that.
    sorting = levels * math.log2(max(drawn, 2)) - levels * (levels - 1) / 2
    per_row = TREE_PER_FEATURE * features_per_split(settings.get("max_features"), width)
    per_tree = TREE_FIXED + drawn * sorting * (per_row + TREE_PER_ROW)
    return settings.get("n_estimators", 100) * per_tree


def features_per_split(max_features: Any, width: int) -> int:
    """The features a tree weighs at each split, as scikit-learn resolves max_features."""
    if max_features is None:
        return width
    if max_features == "sqrt":
        return max(1, int(math.sqrt(width)))
    if max_features == "log2":
        return max(1, int(math.log2(width)))
    if isinstance(max_features, float):
        return max(1, int(max_features * width))
    return min(int(max_features), width)


def boosting_seconds(settings: dict[str, Any], rows: int, width: int, classes: int) -> float:
    """Histogram gradient boosting's: max_iter rounds (early stopping may end sooner, so
    this is an upper bound) of one tree, or one per class above two."""
    leaves = settings.get("max_leaf_nodes") or BOOST_LEAVES
    per_tree = (
        BOOST_TREE_FIXED
        + BOOST_PER_FEATURE * width * leaves / BOOST_LEAVES
        + BOOST_PER_CELL * rows * width
    )
    return settings.get("max_iter", 100) * _per_class(classes) * per_tree


def as_histogram_boosting(kind: str, settings: dict[str, Any]) -> dict[str, Any]:
    """LightGBM's or XGBoost's settings as histogram boosting's: the same algorithm (one
    histogram tree per round and class), so the same rates. At 1e6 rows x 10 features
    they fit in 0.86x (LightGBM) and 1.1x (XGBoost) histogram boosting's time for
    classification, 1.1x and 1.15x for regression. XGBoost grows depth-wise: max_depth levels
    make up to 2**max_depth leaves, unless max_leaves bounds them."""
    if kind.startswith("LGBM"):
        leaves = settings.get("num_leaves") or BOOST_LEAVES
    else:
        leaves = settings.get("max_leaves") or 2 ** (settings.get("max_depth") or 6)
    return {"max_iter": settings.get("n_estimators") or 100, "max_leaf_nodes": leaves}


def _per_class(classes: int) -> int:
    """Models fitted per round: one for two classes or a number, one per class above."""
    return classes if classes > 2 else 1


def _count(value: Any, rows: int) -> int:
    """A scikit-learn row count setting: None (every row), a share (float) or a number."""
    if value is None:
        return rows
    if isinstance(value, float):
        return max(1, math.ceil(value * rows))
    return min(int(value), rows)
