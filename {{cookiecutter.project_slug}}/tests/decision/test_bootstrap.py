"""bootstrap: stored answers score as the model that gave them; the paired interval of a
change covers it, is the same for the same seed, and skips the resamples a scorer cannot
score."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression, Ridge

from {{ cookiecutter.package_name }}.core import scorers
from {{ cookiecutter.package_name }}.core.params import BusinessParams
from {{ cookiecutter.package_name }}.decision import bootstrap
from {{ cookiecutter.package_name }}.decision.verdicts import Answers, Yardstick
from {{ cookiecutter.package_name }}.modeling import models

from conftest import SHIPPED_BUSINESS


@pytest.fixture
def gate(configured):
    """service.yaml's gate:, with few resamples (the fewest it allows) to keep tests quick."""
    return configured("gate", bootstrap_samples=100)


# Metrics scored from per-row values (one take and one mean per resample).
PER_ROW = {
    "classification": ["accuracy", "business_value", "neg_log_loss"],
    "regression": [
        "business_value",
        "neg_mean_absolute_error",
        "neg_mean_squared_error",
        "neg_root_mean_squared_error",
    ],
}


def yardstick(task: str, metric: str = "business_value") -> Yardstick:
    return Yardstick(task, metric, BusinessParams(**SHIPPED_BUSINESS[task]))


def fitted(task: str, classes: int = 3, n: int = 240, seed: int = 0):
    """A fitted model, its rows and truth, its stored answers and classes (None: regression)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    if task == "regression":
        # Positive targets, so the deviance and log-error scorers can score them.
        y = np.exp(0.5 * X[:, 0] + rng.normal(scale=0.3, size=n))
        model = Ridge().fit(X, y)
        return model, X, y, Answers(model.predict(X)), None
    y = np.digitize(X[:, 0] + rng.normal(scale=0.7, size=n), [-0.5, 0.5][: classes - 1])
    model = LogisticRegression(max_iter=1000).fit(X, y)
    answers = Answers(model.predict(X), model.predict_proba(X))
    return model, X, y, answers, list(model.classes_)


def usable(task: str, classes: list | None) -> list[str]:
    """The task's scorers that can score these classes."""
    return [
        name
        for name in sorted(scorers.METRICS[task])
        if not scorers.task_problem(task, name)
        and not (classes and scorers.classes_problem(name, classes))
    ]


# top_k_accuracy warns that k=2 of 2 classes is always right; it is, for both.
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.UndefinedMetricWarning")
@pytest.mark.parametrize(
    ("task", "classes"), [("classification", 2), ("classification", 3), ("regression", 0)]
)
def test_stored_answers_score_as_the_model_does_with_every_scorer(task, classes):
    model, X, y, answers, labels = fitted(task, classes)
    checked = 0
    for name in usable(task, labels):
        if name == "average_precision" and classes == 3:
            # It prefers decision_function, and stored answers hold probabilities: on more
            # than two classes they rank rows differently (both models are scored alike).
            continue
        scoring = bootstrap.Scoring(name, yardstick(task), y, labels)
        try:
            expected = models.scorer(task, name, scoring.yardstick.business, labels)(model, X, y)
        except ValueError:
            expected = None
        ours = scoring.score(answers)
        assert (ours is None) == (expected is None), name
        if expected is not None:
            assert ours == pytest.approx(expected, rel=1e-9, abs=1e-12), name
            checked += 1
    assert checked >= 10


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_means_of_row_values_skip_the_scorer_and_agree_with_it(task, gate, monkeypatch):
    _, _, y, answers, labels = fitted(task)
    worse = Answers(np.roll(answers.predicted, 7), answers.proba)
    for name in PER_ROW[task]:
        scoring = bootstrap.Scoring(name, yardstick(task), y, labels)
        assert scoring.per_row(answers) is not None, name
        fast = bootstrap.paired(scoring, answers, worse, policy=gate)
        with monkeypatch.context() as patched:
            patched.setattr(bootstrap.Scoring, "per_row", lambda self, answers: None)
            by_scorer = bootstrap.paired(scoring, answers, worse, policy=gate)
        # The same draws, scored both ways: the same interval.
        for field in ("point", "lower", "upper"):
            assert getattr(fast, field) == pytest.approx(getattr(by_scorer, field)), name


@pytest.mark.parametrize("metric", ["accuracy", "f1_macro", "neg_log_loss"])
def test_a_model_against_itself_changes_by_exactly_zero(metric, gate):
    _, _, y, answers, labels = fitted("classification")
    scoring = bootstrap.Scoring(metric, yardstick("classification"), y, labels)
    interval = bootstrap.paired(scoring, answers, answers, policy=gate)
    assert (interval.point, interval.lower, interval.upper, interval.skipped) == (0, 0, 0, 0)


def test_the_same_seed_gives_the_same_interval_and_another_seed_another(gate, configured):
    _, _, y, answers, labels = fitted("classification")
    worse = Answers(np.roll(answers.predicted, 3), answers.proba)
    for metric in ("business_value", "f1_macro"):
        scoring = bootstrap.Scoring(metric, yardstick("classification"), y, labels)
        first = bootstrap.paired(scoring, answers, worse, policy=gate)
        assert bootstrap.paired(scoring, answers, worse, policy=gate) == first
        other = configured("gate", bootstrap_samples=100, seed=gate.seed + 1)
        assert bootstrap.paired(scoring, answers, worse, policy=other).lower != first.lower


def test_text_classes_and_their_codes_give_the_same_interval(gate):
    _, _, y, answers, labels = fitted("classification")
    names = np.array(["Adelie", "Chinstrap", "Gentoo"])
    worse = Answers(np.roll(answers.predicted, 5))
    intervals = [
        bootstrap.paired(
            bootstrap.Scoring("f1_macro", yardstick("classification"), rename(y), classes),
            Answers(rename(answers.predicted)),
            Answers(rename(worse.predicted)),
            policy=gate,
        )
        for rename, classes in ((lambda v: v, labels), (lambda v: names[v], list(names)))
    ]
    assert intervals[0] == intervals[1]


def two_models(task: str, n: int, seed: int) -> tuple[np.ndarray, Answers, Answers, float]:
    """Truth, a challenger and a champion drawn independently, and the true change of
    accuracy (classification) or minus the mean absolute error (regression)."""
    rng = np.random.default_rng(seed)
    if task == "classification":
        truth = rng.integers(0, 3, n)
        guess = [np.where(rng.random(n) < p, truth, (truth + 1) % 3) for p in (0.85, 0.75)]
        return truth, Answers(guess[0]), Answers(guess[1]), 0.10
    truth = rng.normal(size=n)
    guess = [truth + rng.normal(scale=s, size=n) for s in (1.0, 1.5)]
    # E|N(0, s)| = s * sqrt(2 / pi)
    return truth, Answers(guess[0]), Answers(guess[1]), 0.5 * np.sqrt(2 / np.pi)


@pytest.mark.parametrize(
    ("task", "metric"),
    [("classification", "accuracy"), ("regression", "neg_mean_absolute_error")],
)
def test_the_interval_covers_the_true_change(task, metric, configured):
    """At 95% confidence, 40 seeded data sets: at least 34 intervals cover the truth (a
    correct interval misses that often with probability ~0.1%)."""
    gate = configured("gate", bootstrap_samples=1000, confidence=0.95)
    covered = 0
    for seed in range(40):
        truth, challenger, champion, change = two_models(task, 400, seed)
        classes = [0, 1, 2] if task == "classification" else None
        scoring = bootstrap.Scoring(metric, yardstick(task), truth, classes)
        interval = bootstrap.paired(scoring, challenger, champion, policy=gate)
        covered += interval.lower <= change <= interval.upper
    assert covered >= 34


def test_pairing_cancels_the_noise_both_models_share(gate):
    """Models that differ on 5 of 1000 rows: the change's interval is a few rows wide,
    though either model's own accuracy varies by ~0.03 between resamples."""
    truth, challenger, _, _ = two_models("classification", 1000, 0)
    predicted = challenger.predicted.copy()
    wrong = np.flatnonzero(predicted == truth)[:5]
    predicted[wrong] = (truth[wrong] + 1) % 3
    scoring = bootstrap.Scoring("accuracy", yardstick("classification"), truth, [0, 1, 2])
    interval = bootstrap.paired(scoring, challenger, Answers(predicted), policy=gate)
    assert interval.point == pytest.approx(0.005)
    assert interval.lower > 0 and interval.upper - interval.lower < 0.01


def test_resamples_a_scorer_cannot_score_are_skipped_and_too_many_leave_no_interval(configured):
    """roc_auc needs both classes: 2 positives in 40 rows miss from ~13% of resamples,
    more than the 2.5% tail an interval at 95% could lose."""
    gate = configured("gate", bootstrap_samples=100, confidence=0.95)
    truth = np.zeros(40, dtype=int)
    truth[[3, 30]] = 1
    rng = np.random.default_rng(0)
    proba = [rng.uniform(size=40) for _ in range(2)]
    models_ = [Answers((p > 0.5).astype(int), np.column_stack([1 - p, p])) for p in proba]
    scoring = bootstrap.Scoring("roc_auc", yardstick("classification"), truth, [0, 1])
    interval = bootstrap.paired(scoring, *models_, policy=gate)
    assert interval.point is not None
    assert 0.05 * gate.bootstrap_samples < interval.skipped < 0.25 * gate.bootstrap_samples
    assert (interval.lower, interval.upper) == (None, None)
    one_class = bootstrap.Scoring("roc_auc", yardstick("classification"), truth * 0, [0, 1])
    assert bootstrap.paired(one_class, *models_, policy=gate) is None
