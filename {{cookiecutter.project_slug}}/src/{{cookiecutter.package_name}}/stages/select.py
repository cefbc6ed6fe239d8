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

Rows do not bound cost (width, depth and an estimator's defaults escape them), so
`select.time_budget` bounds it in reference seconds as well: each rung gets an equal share
of what is left of the budget, and its candidates run cheapest first, each with an equal
share of what is left of the rung's. A candidate predicted past its share is scored on the
largest sample of the rung's rows that fits (at least 1/FLOOR of the first rung's rows;
more than it was last scored on) and goes no further; when not even that fits it keeps
its earlier score, or ranks last unscored. The first rung's cheapest candidate is always
scored, so there is a winner. Costs are predicted before fitting (modeling/fit_cost.py),
never timed, so a rerun on any machine cuts the same; select.json records each cut, the
log adds the measured seconds.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
from joblib import parallel_config
from sklearn.base import BaseEstimator, clone
from sklearn.compose import ColumnTransformer
from sklearn.exceptions import NotFittedError
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
from ..modeling import fit_cost, models
from ..tables import row_budget, schema

log = logging.getLogger(__name__)

# A candidate whose rung does not fit its share of select.time_budget is scored on the
# largest sample of the rung's rows that does, but on no fewer than 1/FLOOR of the first
# rung's rows: fewer would rank it by noise.
FLOOR = 10
# What select.json records of a cut for time (ranking columns cut_<key>).
CUT_KEYS = ("rung", "rows", "predicted_seconds", "share_seconds")
# select warns when its cross-validations took SLOW_FACTOR times their predicted reference
# seconds, and at least SLOW_SECONDS (below, the noise of a busy machine is the ratio).
SLOW_FACTOR = 2.0
SLOW_SECONDS = 30.0


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


def planned_rungs(candidates: int, rows: int, *, rules: SelectParams) -> list[int]:
    """The rows of each rung that successive halving runs when nothing is cut for time."""
    size, alive, sizes = min(rows, rules.min_rows), candidates, []
    while True:
        sizes.append(size)
        alive = math.ceil(alive / rules.factor)
        if alive < 2 or size >= min(rows, rules.max_rows):
            return sizes
        size = min(size * rules.factor, rows, rules.max_rows)


def affordable_rows(
    cost: Callable[[int], float], size: int, share: float | None, floor: int
) -> int | None:
    """The most rows, from `floor` to `size`, whose predicted `cost` fits `share` (None:
    no limit, so `size`); None when not even `floor` rows fit. Cost grows with rows, so a
    bisection finds them."""
    if share is None or cost(size) <= share:
        return size
    if floor >= size or cost(floor) > share:
        return None
    fits, over = floor, size
    while over - fits > 1:
        middle = (fits + over) // 2
        fits, over = (middle, over) if cost(middle) <= share else (fits, middle)
    return fits


def survivors(alive: list[str], complete: list[str], results: dict, factor: int) -> list[str]:
    """The best 1/factor (rounded up) of the `alive` candidates that ran the rung, best
    first, chosen among those scored on all its rows (`complete`): a candidate cut for
    time does not go on."""
    keep = math.ceil(len(alive) / factor)
    return sorted(complete, key=lambda n: (-results[n]["mean"], n))[:keep]


def output_width(transformer: ColumnTransformer, X: pd.DataFrame, y: np.ndarray) -> int:
    """The columns `transformer` hands the model: the fitted one's (preprocess's), or those
    of a copy fitted on X, y when it is not fitted."""
    try:
        return len(transformer.get_feature_names_out())
    except NotFittedError:
        return len(clone(transformer).fit(X, y).get_feature_names_out())


@dataclass
class Halving:
    """One ranking's rows and scorer, and what it has found: each candidate's last score
    (results), its cut for time (cuts), the predicted and the measured seconds of its
    cross-validations. Predictions (fit_cost) alone decide; measured seconds are logged."""

    X: pd.DataFrame
    y: np.ndarray
    groups: pd.Series
    transformer: ColumnTransformer
    scoring: Any
    settings: Settings
    shape: fit_cost.Shape = fit_cost.Shape(rows=0, numeric=0, categorical=0, width=0)
    floor: int = 1
    results: dict = field(default_factory=dict)
    cuts: dict = field(default_factory=dict)
    predicted: float = 0.0
    measured: float = 0.0

    def sample(self, rows: np.ndarray, size: int) -> np.ndarray:
        strata = self.y if self.settings.task == "classification" else None
        rules = self.settings.select
        return compute.sample(rows, strata, size, self.settings.seed, rules.cv_folds)

    def model(self, name: str, rows: int) -> BaseEstimator:
        folds, task = self.settings.select.cv_folds, self.settings.task
        config = self.settings.select.candidates[name]
        return models.build(task, config, self.settings.seed, rows * (folds - 1) // folds)

    def cost(self, name: str, rows: int) -> float:
        """Predicted reference seconds of cross-validating `name` on `rows` rows."""
        shape = replace(self.shape, rows=rows)
        folds, n_jobs = self.settings.select.cv_folds, self.settings.compute.n_jobs
        return fit_cost.cv_seconds(self.model(name, rows), shape, folds=folds, n_jobs=n_jobs)

    def run_rung(
        self, number: int, size: int, budget: float | None, alive: list[str]
    ) -> tuple[list[str], float]:
        """Cross-validate the `alive` candidates on a sample of `size` rows, cheapest first,
        each within an equal share of what is left of `budget` (reference seconds; None: no
        limit). Returns those scored on every row, and the predicted seconds spent."""
        # One sample, one copy of its rows and one set of folds per rung, for every candidate.
        rows = self.sample(np.arange(len(self.X)), size)
        folds = fold_splits(self.y[rows], self.groups.iloc[rows], settings=self.settings)
        costs = {name: self.cost(name, len(rows)) for name in alive}
        order = sorted(alive, key=lambda n: (costs[n], n))
        complete, spent = [], 0.0
        for i, name in enumerate(order):
            share = None if budget is None else max(budget - spent, 0.0) / (len(order) - i)
            # The cheapest candidate of the first rung always gets a score: select has a winner.
            spent += self.run_candidate(name, number, (rows, folds), share, number + i == 0)
            if name not in self.cuts:
                complete.append(name)
        return complete, spent

    def run_candidate(
        self, name: str, rung: int, sample: tuple, share: float | None, always: bool
    ) -> float:
        """Score `name` on the rung's sample (rows, folds) when its predicted cost fits
        `share`; else, recording the cut, on the largest sample of those rows that fits, of
        at least the floor (or more rows than it was last scored on), or not at all.
        `always`: on the floor even when that does not fit. Returns predicted seconds."""
        rows, folds = sample
        floor = self.results[name]["rows"] + 1 if name in self.results else self.floor
        fitting = affordable_rows(lambda n: self.cost(name, n), len(rows), share, floor)
        if fitting is None and always:
            fitting = min(floor, len(rows))
        if fitting == len(rows):
            return self.score(name, rows, folds)
        self.cut_for_time(name, rung, rows=len(rows), share=share, scored=fitting or 0)
        if fitting is None:
            # Unscored: ranked last. Scored on an earlier rung: ranked by that score.
            unscored = {"model": name, "mean": np.nan, "std": np.nan, "rows": 0}
            self.results.setdefault(name, {**unscored, "predicted_seconds": 0.0})
            return 0.0
        rows = self.sample(rows, fitting)
        folds = fold_splits(self.y[rows], self.groups.iloc[rows], settings=self.settings)
        return self.score(name, rows, folds)

    def score(self, name: str, rows: np.ndarray, folds: list) -> float:
        """Cross-validate `name` on `rows`; log its score, rows, predicted and measured
        seconds. Returns the predicted seconds."""
        predicted = self.cost(name, len(rows))
        with progress.timed(f"candidate {name}") as line:
            started = time.perf_counter()
            pipeline = Pipeline(
                [("preprocess", clone(self.transformer)), ("model", self.model(name, len(rows)))]
            )
            X, y = self.X.iloc[rows], self.y[rows]
            scores = cross_validate(pipeline, X, y, folds=folds, scoring=self.scoring)
            self.measured += time.perf_counter() - started
            self.results[name] = {
                "model": name,
                **scores,
                "rows": len(rows),
                "predicted_seconds": round(predicted, 2),
            }
            line.update(score=scores["mean"], rows=len(rows), predicted=round(predicted, 2))
        self.predicted += predicted
        return predicted

    def cut_for_time(self, name: str, rung: int, *, rows: int, share: float, scored: int) -> None:
        """Record and log that `name` did not fit its share on rung `rung` of `rows` rows:
        the prediction that cut it and the share (reference seconds), and the rows it was
        scored on instead (0: none)."""
        predicted, share = round(self.cost(name, rows), 2), round(share, 2)
        self.cuts[name] = dict(zip(CUT_KEYS, (rung, rows, predicted, share), strict=True))
        report = {"rung": rung, "rows": rows, "predicted": predicted, "share": share}
        progress.report(f"time cut {name}", **report, scored_rows=scored)

    def warn_if_slow(self) -> None:
        """One line when the fits took far longer than predicted: the cuts follow reference
        seconds, so on a slower (or busy) machine select runs longer than its budget."""
        if self.measured < max(SLOW_SECONDS, SLOW_FACTOR * self.predicted):
            return
        log.warning(
            "select's cross-validations took %.0f s, %.1fx the %.0f reference seconds "
            "predicted: this machine is slower than the reference (or busy), and the time "
            "cuts follow reference seconds; to bound select's time here, lower "
            "select.time_budget by that factor",
            self.measured,
            self.measured / max(self.predicted, 1e-9),
            self.predicted,
        )


def ranked(results: dict, cuts: dict) -> pd.DataFrame:
    """Candidates that reached a larger sample first, then by mean score, then by name
    (unscored ones last), with the predicted seconds of the scoring they rank by; those cut
    for time say where and why (cut_<CUT_KEYS>)."""
    rows = [
        {**r, **{f"cut_{k}": cuts.get(r["model"], {}).get(k) for k in CUT_KEYS}}
        for r in results.values()
    ]
    ranking = pd.DataFrame(rows).sort_values(
        ["rows", "mean", "model"], ascending=[False, False, True], na_position="last"
    )
    ranking.insert(0, "rank", range(1, len(ranking) + 1))
    types = {"cut_rung": "Int64", "cut_rows": "Int64"}
    types |= {"cut_predicted_seconds": "float64", "cut_share_seconds": "float64"}
    return ranking.astype(types).reset_index(drop=True)


def rank(
    train: pd.DataFrame,
    roles: schema.Roles,
    transformer: ColumnTransformer,
    *,
    settings: Settings,
) -> pd.DataFrame:
    """One row per candidate, best first: rank, model, mean, std, the rows it was last
    scored on, the predicted seconds of that scoring, and where it was cut for time."""
    rules = settings.select
    y = schema.target_array(train[roles.target])
    X = schema.model_frame(train, roles)
    halving = Halving(
        X=X,
        y=y,
        groups=schema.base_ids(train[schema.ID]),
        transformer=transformer,
        scoring=checked_scorer(y, train[roles.target], settings=settings),
        settings=settings,
    )
    sizes = planned_rungs(len(rules.candidates), len(X), rules=rules)
    first = halving.sample(np.arange(len(X)), sizes[0])
    halving.floor = max(sizes[0] // FLOOR, 1)
    halving.shape = fit_cost.Shape(
        rows=len(first),
        numeric=len(roles.numeric),
        categorical=len(roles.categorical),
        width=output_width(transformer, X.iloc[first], y[first]),
        classes=len(np.unique(y)) if settings.task == "classification" else 1,
    )
    alive, left = list(rules.candidates), rules.time_budget
    with fold_runner(settings.compute):
        for number, size in enumerate(sizes):
            budget = None if left is None else left / (len(sizes) - number)
            complete, spent = halving.run_rung(number, size, budget, alive)
            left = None if left is None else left - spent
            alive = survivors(alive, complete, halving.results, rules.factor)
            if len(alive) < 2 or number == len(sizes) - 1:
                break
            log.info("halving: %s go on to %d rows", ", ".join(alive), sizes[number + 1])
    halving.warn_if_slow()
    return ranked(halving.results, halving.cuts)


def summary(ranking: pd.DataFrame, metric: str, time_budget: float | None) -> dict:
    """select.json: the winner, and per candidate its score, rows, predicted seconds and
    cut for time. Only numbers that a rerun repeats: predictions, never a clock."""
    best = ranking.iloc[0]
    return {
        "winner": str(best["model"]),
        "metric": metric,
        "cv_score": round(float(best["mean"]), 6),
        "time_budget": time_budget,
        "cut_for_time": sorted(str(m) for m in ranking.loc[ranking["cut_rung"].notna(), "model"]),
        "candidates": {str(r["model"]): _candidate(r) for r in ranking.to_dict("records")},
    }


def _candidate(row: dict) -> dict:
    """One candidate's entry of select.json; plain numbers (JSON has no NaN)."""
    scored = row["rows"] > 0
    cut = None
    if not pd.isna(row["cut_rung"]):
        cut = {
            "rung": int(row["cut_rung"]),
            "rows": int(row["cut_rows"]),
            "predicted_seconds": float(row["cut_predicted_seconds"]),
            "share_seconds": float(row["cut_share_seconds"]),
        }
    return {
        "mean": round(float(row["mean"]), 6) if scored else None,
        "std": round(float(row["std"]), 6) if scored else None,
        "rows": int(row["rows"]),
        "predicted_seconds": float(row["predicted_seconds"]),
        "cut_for_time": cut,
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
    io.write_json(paths.SELECT_REPORT, summary(ranking, params.metric, params.select.time_budget))
    log.info("cross-validated %s:\n%s", params.metric, ranking.to_string(index=False))
    progress.note(rows_in=len(rows), winner=ranking["model"].iloc[0])
