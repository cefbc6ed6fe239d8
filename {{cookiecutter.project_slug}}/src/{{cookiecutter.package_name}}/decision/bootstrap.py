"""A metric of stored answers, and the paired, seeded bootstrap of its change.

Both models answered once (decision/verdicts.py's Answers); nothing here predicts again.
Any scorer `metric` may name works: `Stored` is an estimator whose "features" are row
positions and whose predictions are the stored ones, so a scikit-learn scorer called on
(Stored, positions, truth[positions]) scores exactly those rows. Metrics that are a
function of the mean of per-row values (business_value, accuracy, log loss, MAE, MSE,
RMSE) skip the scorer: a resample costs one take and one mean of those values.

Paired: one resample is one draw of row positions, used for both models, so the interval
is of the change itself and the noise both models share (hard rows, easy rows) cancels.
Seeded: the draws come from numpy's Generator seeded with gate.seed, the same draws for
every metric, so the same answers give the same interval.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from functools import cached_property

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.utils.metaestimators import available_if

from ..core import scorers
from ..core.params import GateParams
from ..modeling import business, models
from .verdicts import Answers, Yardstick

DECIMALS = 6


class _Stored(BaseEstimator):
    """Stored answers as a fitted estimator: X is an array of row positions."""

    def __init__(self, answers: Answers, classes: list | None = None):
        self.answers = answers
        self.classes = classes

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.answers.predicted[X]

    @available_if(lambda self: self.answers.proba is not None)
    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        return self.answers.proba[X]


class _StoredClassifier(ClassifierMixin, _Stored):
    @property
    def classes_(self) -> np.ndarray:
        # The scorers read classes_ to find the positive class and proba's columns.
        return np.asarray(self.classes)


class _StoredRegressor(RegressorMixin, _Stored):
    pass


def stored(answers: Answers, classes: list | None) -> _Stored:
    """An estimator that answers `scorer(estimator, positions, truth[positions])`."""
    if classes is None:
        return _StoredRegressor(answers)
    return _StoredClassifier(answers, classes)


def _identity(mean: np.ndarray) -> np.ndarray:
    return mean


def _minus_root(mean: np.ndarray) -> np.ndarray:
    return -np.sqrt(mean)


def _errors(truth: np.ndarray, answers: Answers) -> np.ndarray:
    return np.asarray(truth, dtype=float) - np.asarray(answers.predicted, dtype=float)


def _log_likelihood(truth: np.ndarray, answers: Answers, classes: list | None) -> np.ndarray:
    """Minus each row's log loss, clipped as sklearn.metrics.log_loss clips."""
    column = pd.Index(classes).get_indexer(truth)
    proba = answers.proba[np.arange(len(truth)), column]
    eps = np.finfo(proba.dtype).eps
    return np.log(np.clip(proba, eps, 1 - eps)).astype(float)


# metric -> (greater-is-better values of each row, what turns their mean into the score).
_PER_ROW: dict[str, tuple[Callable, Callable]] = {
    "accuracy": (lambda t, a, c: (a.predicted == t).astype(float), _identity),
    "neg_log_loss": (_log_likelihood, _identity),
    "neg_mean_absolute_error": (lambda t, a, c: -np.abs(_errors(t, a)), _identity),
    "neg_mean_squared_error": (lambda t, a, c: -(_errors(t, a) ** 2), _identity),
    "neg_root_mean_squared_error": (lambda t, a, c: _errors(t, a) ** 2, _minus_root),
}


@dataclass(frozen=True)
class Scoring:
    """One metric (a scorer name, greater is better) on the shared rows' truth."""

    metric: str
    yardstick: Yardstick
    truth: np.ndarray
    classes: list | None

    def per_row(self, answers: Answers) -> tuple[np.ndarray, Callable] | None:
        """Each row's value and the finish that makes their mean the score; None when the
        metric is not a mean of row values, or these answers cannot give them."""
        if self.metric == business.NAME:
            task, rules = self.yardstick.task, self.yardstick.business
            return business.row_values(task, rules, self.truth, answers.predicted), _identity
        if self.metric not in _PER_ROW:
            return None
        if self.metric == "neg_log_loss" and (
            answers.proba is None or (pd.Index(self.classes).get_indexer(self.truth) < 0).any()
        ):
            return None
        values, finish = _PER_ROW[self.metric]
        return values(self.truth, answers, self.classes), finish

    def score(self, answers: Answers, positions: np.ndarray | None = None) -> float | None:
        """The metric on the rows at `positions` (all rows by default); None when the
        scorer cannot score them (one class only for AUC, say)."""
        if positions is None:
            positions = np.arange(len(self.truth))
        if not len(positions):
            return None
        rows = self.per_row(answers)
        if rows is not None:
            values, finish = rows
            return float(finish(values[positions].mean()))
        return self.by_scorer(stored(answers, self.classes), positions)

    @cached_property
    def scorer(self) -> Callable:
        task, rules = self.yardstick.task, self.yardstick.business
        return models.scorer(task, self.metric, rules, self.classes)

    def by_scorer(self, estimator: _Stored, positions: np.ndarray) -> float | None:
        """The scikit-learn scorer on the rows at `positions`; None when it cannot score."""
        scorer = self.scorer
        try:
            with warnings.catch_warnings():
                # A resample without some class makes many scorers warn; the value stands.
                warnings.simplefilter("ignore")
                value = float(scorer(estimator, positions, self.truth[positions]))
        except (ValueError, IndexError, ZeroDivisionError):
            return None
        return value if np.isfinite(value) else None


@dataclass(frozen=True)
class Interval:
    """The change (challenger minus champion) on all rows and its bootstrap interval;
    lower and upper are None when too many resamples could not be scored."""

    point: float
    lower: float | None
    upper: float | None
    samples: int
    skipped: int

    def as_dict(self) -> dict:
        return {
            k: round(v, DECIMALS) if isinstance(v, float) else v for k, v in asdict(self).items()
        }


def _draws(rows: int, policy: GateParams):
    rng = np.random.default_rng(policy.seed)
    for _ in range(policy.bootstrap_samples):
        yield rng.integers(0, rows, size=rows)


def _fast_changes(rows: tuple, other: tuple, policy: GateParams) -> list[float]:
    """Each resample's change from per-row values: one take and one mean."""
    (values, finish), (other_values, _) = rows, other
    if finish is _identity:
        # The mean of the difference is the difference of the means.
        difference = values - other_values
        return [float(difference[draw].mean()) for draw in _draws(len(values), policy)]
    both = np.column_stack([values, other_values])
    changes = []
    for draw in _draws(len(values), policy):
        challenger, champion = finish(both[draw].mean(axis=0))
        changes.append(float(challenger - champion))
    return changes


def _coded(
    scoring: Scoring, challenger: Answers, champion: Answers
) -> tuple[Scoring, Answers, Answers]:
    """The same scoring with each class as its position in the classes: scikit-learn's
    metrics sort the labels they are given, and integers sort ~3x faster than text. Not
    for the scorers that read a label's value (the class 1 as the positive one)."""
    if scoring.classes is None or scorers.depends_on_classes(scoring.metric):
        return scoring, challenger, champion
    seen = pd.unique(np.concatenate([scoring.truth, challenger.predicted, champion.predicted]))
    labels = pd.Index(list(scoring.classes)).append(pd.Index(seen).difference(scoring.classes))
    codes = range(len(scoring.classes))
    coded = replace(scoring, truth=labels.get_indexer(scoring.truth), classes=list(codes))
    return (
        coded,
        replace(challenger, predicted=labels.get_indexer(challenger.predicted)),
        replace(champion, predicted=labels.get_indexer(champion.predicted)),
    )


def _scored_changes(
    scoring: Scoring, challenger: Answers, champion: Answers, policy: GateParams
) -> list[float]:
    """Each resample's change by the scorer; resamples it cannot score are left out."""
    scoring, challenger, champion = _coded(scoring, challenger, champion)
    ours, theirs = stored(challenger, scoring.classes), stored(champion, scoring.classes)
    changes = []
    for draw in _draws(len(scoring.truth), policy):
        a, b = scoring.by_scorer(ours, draw), scoring.by_scorer(theirs, draw)
        if a is not None and b is not None:
            changes.append(a - b)
    return changes


def paired(
    scoring: Scoring, challenger: Answers, champion: Answers, *, policy: GateParams
) -> Interval | None:
    """The change and its `policy.confidence` percentile interval over
    `policy.bootstrap_samples` paired resamples; None when the metric cannot be scored on
    the rows themselves."""
    point_challenger, point_champion = scoring.score(challenger), scoring.score(champion)
    if point_challenger is None or point_champion is None:
        return None
    rows, other = scoring.per_row(challenger), scoring.per_row(champion)
    if rows is not None and other is not None:
        changes = _fast_changes(rows, other, policy)
    else:
        changes = _scored_changes(scoring, challenger, champion, policy)
    skipped = policy.bootstrap_samples - len(changes)
    tail = (1.0 - policy.confidence) / 2
    lower = upper = None
    # A percentile interval reads the tails: when more resamples were skipped than one
    # tail holds, the skipped ones could have been that whole tail.
    if changes and skipped <= tail * policy.bootstrap_samples:
        lower, upper = (float(q) for q in np.quantile(changes, [tail, 1.0 - tail]))
    change = point_challenger - point_champion
    return Interval(change, lower, upper, policy.bootstrap_samples, skipped)
