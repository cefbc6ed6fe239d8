"""Select: rank the candidate models by cross-validated `metric` on the training split.

Successive halving keeps the cost bounded at any size: every candidate is
cross-validated on a stratified sample of `select.min_rows` training rows, the best
1/`factor` (rounded up) on `factor` times as many rows, and so on while more than one
candidate is left, never on more than `select.max_rows`. Candidates that reached a
larger sample rank above those dropped earlier. With at most `min_rows` training rows,
this is plain cross-validation of every candidate on every row.

No rung is larger than `select.max_rows`, so neither is what select reads: with more
training rows than that, it ranks on a seeded sample of `max_rows` of them (stratified
by class for classification, chosen from the target column alone) and reads only those
rows (row_budget). With at most `max_rows`, it reads every row, as it always did.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import pandas as pd
from joblib import parallel_config
from sklearn.base import clone
from sklearn.compose import ColumnTransformer
from sklearn.model_selection import (
    GroupKFold,
    KFold,
    StratifiedGroupKFold,
    StratifiedKFold,
    cross_val_score,
)
from sklearn.pipeline import Pipeline

from ..core import compute, io, paths, progress
from ..core.params import (
    BusinessParams,
    ComputeParams,
    SelectParams,
    StageSettings,
    Task,
    load,
)
from ..modeling import models
from ..tables import row_budget, schema

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Settings(StageSettings):
    """What select reads from the config (its params in dvc.yaml)."""

    select: SelectParams
    task: Task
    metric: str
    seed: int
    business: BusinessParams
    compute: ComputeParams


def fold_splits(
    y: np.ndarray, groups: pd.Series, *, settings: Settings
) -> list[tuple[np.ndarray, np.ndarray]]:
    """select.cv_folds (fit rows, scored rows) pairs of the rows with targets `y`, made
    once per rung for every candidate; a row and its augmented copies (`groups`) stay
    together. Group-aware splitters cost a Python loop per group: used only when some
    group has several rows."""
    grouped = bool(groups.duplicated().any())
    if settings.task == "classification":
        kind = StratifiedGroupKFold if grouped else StratifiedKFold
    else:
        kind = GroupKFold if grouped else KFold
    folds = kind(settings.select.cv_folds, shuffle=True, random_state=settings.seed)
    return list(folds.split(np.zeros(len(y)), y, groups if grouped else None))


@contextmanager
def fold_runner(compute_settings: ComputeParams) -> Iterator[None]:
    """Where cross-validation's fits run: side by side in threads here (compute.folds),
    or, on the dask engine, one per worker process of the cluster (every worker), through
    joblib's dask backend. Each fit is single-threaded either way, so the scores are the
    same; cross_validate's fits take their number of jobs from this context."""
    if compute_settings.engine != "dask":
        with compute.folds(compute_settings.cores):
            yield
        return
    from ..core import cluster

    with cluster.client(compute_settings), parallel_config(backend="dask", n_jobs=-1):
        yield


def checked_scorer(y: np.ndarray, target: pd.Series, *, settings: Settings):
    """The scorer of `metric` for target values `y`, once they allow select.cv_folds folds
    of every class and `metric` suits the task."""
    task, metric = settings.task, settings.metric
    classes = np.unique(y) if task == "classification" else None
    if task == "classification":
        schema.require_rows_per_class(target, settings.select.cv_folds, "select.cv_folds")
    models.check_metric(task, metric, classes)
    return models.scorer(task, metric, settings.business, classes)


def cross_validate(
    pipeline: Pipeline, X: pd.DataFrame, y: np.ndarray, *, folds: list, scoring
) -> dict:
    """Mean and spread of `pipeline`'s scores on the `folds` (fold_splits) of rows X, y;
    the fits run as many at a time as fold_runner's context says."""
    scores = cross_val_score(pipeline, X, y, cv=folds, scoring=scoring)
    return {"mean": float(np.mean(scores)), "std": float(np.std(scores))}


def survivors(alive: list[str], results: dict, factor: int) -> list[str]:
    """The best 1/factor of the candidates still alive (rounded up), best first."""
    keep = math.ceil(len(alive) / factor)
    return sorted(alive, key=lambda n: (-results[n]["mean"], n))[:keep]


def ranked(results: dict) -> pd.DataFrame:
    """Candidates that reached a larger sample first, then by mean score, then by name."""
    ranking = pd.DataFrame(list(results.values())).sort_values(
        ["rows", "mean", "model"], ascending=[False, False, True]
    )
    ranking.insert(0, "rank", range(1, len(ranking) + 1))
    return ranking.reset_index(drop=True)


def rank(
    train: pd.DataFrame,
    roles: schema.Roles,
    transformer: ColumnTransformer,
    *,
    settings: Settings,
) -> pd.DataFrame:
    """One row per candidate (rank, model, mean, std, rows it was last scored on), best first."""
    rules, task, seed = settings.select, settings.task, settings.seed
    y = schema.target_array(train[roles.target])
    scoring = checked_scorer(y, train[roles.target], settings=settings)
    strata = y if task == "classification" else None
    X = schema.model_frame(train, roles)
    groups = schema.base_ids(train[schema.ID])
    size = min(len(X), rules.min_rows)
    alive, results = list(rules.candidates), {}
    with fold_runner(settings.compute):
        while True:
            # One sample, one copy of its rows and one set of folds per rung, for every candidate.
            rows = compute.sample(np.arange(len(X)), strata, size, seed, rules.cv_folds)
            X_rung, fit_rows = X.iloc[rows], len(rows) * (rules.cv_folds - 1) // rules.cv_folds
            folds = fold_splits(y[rows], groups.iloc[rows], settings=settings)
            for name in alive:
                with progress.timed(f"candidate {name}") as line:
                    model = models.build(task, rules.candidates[name], seed, fit_rows)
                    pipeline = Pipeline([("preprocess", clone(transformer)), ("model", model)])
                    scores = cross_validate(pipeline, X_rung, y[rows], folds=folds, scoring=scoring)
                    results[name] = {"model": name, **scores, "rows": len(rows)}
                    line.update(score=results[name]["mean"], rows=len(rows))
            keep = survivors(alive, results, rules.factor)
            if len(keep) < 2 or size >= min(len(X), rules.max_rows):
                break
            alive = keep
            size = min(size * rules.factor, len(X), rules.max_rows)
            log.info("halving: %s go on to %d rows", ", ".join(alive), size)
    return ranked(results)


def summary(ranking: pd.DataFrame, metric: str) -> dict:
    best = ranking.iloc[0]
    return {
        "winner": str(best["model"]),
        "metric": metric,
        "cv_score": round(float(best["mean"]), 6),
        "candidates": {
            str(r.model): {"mean": round(r.mean, 6), "std": round(r.std, 6), "rows": int(r.rows)}
            for r in ranking.itertuples()
        },
    }


def main() -> None:
    params = load()
    features = io.read_json(paths.FEATURES)
    roles = schema.roles_from_dict(features["roles"])
    budget = row_budget.Budget(
        rows=params.select.max_rows,
        setting="select.max_rows",
        task=params.task,
        seed=params.seed,
        # The sample keeps rows enough of every class for rank's stratified folds.
        per_class=params.select.cv_folds,
    )
    columns = [schema.ID, roles.target, *roles.features]
    rows = row_budget.read(paths.TRAIN, columns, roles.target, budget=budget)
    transformer = io.load_model(paths.PREPROCESSOR)
    ranking = rank(rows, roles, transformer, settings=Settings.of(params))
    io.write_csv(paths.SELECT_RANKING, ranking.round(6))
    io.write_json(paths.SELECT_REPORT, summary(ranking, params.metric))
    log.info("cross-validated %s:\n%s", params.metric, ranking.to_string(index=False))
    progress.note(rows_in=len(rows), winner=ranking["model"].iloc[0])
