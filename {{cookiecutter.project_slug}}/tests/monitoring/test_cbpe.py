"""CBPE against the truth: a model whose probabilities are off (too sure) is calibrated on
reference rows; under covariate shift (P(x) moves, P(y|x) stays) the estimate tracks the
true live metric, under concept drift (P(y|x) changes) it misses it. Run with -s to see
the figures (docs/serving.md quotes them)."""

from __future__ import annotations

import numpy as np
import pytest

from {{ cookiecutter.package_name }}.core.params import BusinessParams
from {{ cookiecutter.package_name }}.decision.verdicts import Yardstick
from {{ cookiecutter.package_name }}.monitoring import cbpe, live

# The project's business rules whatever its task: this model is a classifier.
BUSINESS = BusinessParams(value_matrix={}, correct_value=1.0, wrong_value=0.0)
ROWS = 4000
CLASSES = ["a", "b"]
# The estimate tracks the truth within this under covariate shift (4000 rows: the
# realised accuracy's own sampling spread is about 0.007).
TOLERANCE = 0.02


def truth_proba(x: np.ndarray, slope: float) -> np.ndarray:
    """P(b | x): the world's rule."""
    return 1 / (1 + np.exp(-slope * x))


def model_proba(x: np.ndarray) -> np.ndarray:
    """The model's P(a), P(b): the right direction, too sure (slope 4 where the world's
    is 1.5): miscalibrated, so the calibration has work to do."""
    b = truth_proba(x, 4.0)
    return np.column_stack([1 - b, b])


def rows(mean: float, slope: float, seed: int) -> tuple[list[dict], np.ndarray]:
    """Logged records with the model's answers, x ~ N(mean, 1), labels drawn by the world's
    rule of `slope`; and the labels."""
    rng = np.random.default_rng(seed)
    x = rng.normal(mean, 1.0, ROWS)
    labels = np.where(rng.random(ROWS) < truth_proba(x, slope), "b", "a")
    proba = model_proba(x)
    given = [dict(zip(CLASSES, p.tolist(), strict=True)) for p in proba]
    records = [
        {"prediction": CLASSES[int(p[1] > 0.5)], "probabilities": g, "label": str(label),
         "model_md5": "m"}
        for p, g, label in zip(proba, given, labels, strict=True)
    ]  # fmt: skip
    return records, labels


def realised(records: list[dict], yardstick: Yardstick) -> float:
    return live.live_metric(records, yardstick, 1)["value"]


@pytest.fixture
def calibrated() -> cbpe.Calibration:
    """Calibrated on reference rows (the test split's role): x ~ N(0, 1), slope 1.5."""
    records, labels = rows(0.0, 1.5, seed=1)
    proba = cbpe.logged_proba(records, CLASSES)
    return cbpe.calibrate(proba, labels, CLASSES)


def estimate_and_truth(calibration, yardstick, mean: float, slope: float, label: str):
    """(the estimate, the true metric) of live rows x ~ N(mean, 1) under slope, printed."""
    records, _ = rows(mean, slope, seed=3)
    guess = cbpe.Estimator({"m": calibration}, yardstick, seed=0)(records)
    truth = realised(records, yardstick)
    print(
        f"{yardstick.metric} {label}: estimate {guess['value']} [{guess['lower']}, "
        f"{guess['upper']}], truth {truth:.4f}"
    )
    assert guess["estimate"] is True and guess["rows"] == ROWS
    return guess["value"], truth


@pytest.mark.parametrize("metric", ["accuracy", "business_value"])
def test_the_estimate_tracks_covariate_shift(calibrated, metric):
    yardstick = Yardstick("classification", metric, BUSINESS)
    reference = realised(rows(0.0, 1.5, seed=2)[0], yardstick)
    print(f"{metric} reference (no shift): {reference:.4f}")
    estimated, truth = estimate_and_truth(calibrated, yardstick, 2.0, 1.5, "covariate shift")
    # The metric moved well beyond the tolerance; the estimate moved with it.
    assert abs(truth - reference) > 3 * TOLERANCE
    assert abs(estimated - truth) < TOLERANCE


@pytest.mark.parametrize("metric", ["accuracy", "business_value", "roc_auc", "neg_log_loss"])
def test_the_estimate_misses_concept_drift(calibrated, metric):
    yardstick = Yardstick("classification", metric, BUSINESS)
    reference = realised(rows(0.0, 1.5, seed=2)[0], yardstick)
    estimated, truth = estimate_and_truth(calibrated, yardstick, 0.0, -0.5, "concept drift")
    # The inputs did not move, so neither did the estimate: it stays at the reference
    # while the truth fell far.
    assert abs(estimated - reference) < 2 * TOLERANCE
    assert estimated - truth > 5 * TOLERANCE


def test_the_calibration_maps_probabilities_to_frequencies(calibrated):
    records, labels = rows(0.0, 1.5, seed=4)
    proba = cbpe.logged_proba(records, CLASSES)
    fixed = calibrated.apply(proba)
    np.testing.assert_allclose(fixed.sum(axis=1), 1.0)
    # Among rows the model gives P(b) > 0.9, b is rarer than it says; calibrated, about right.
    sure = proba[:, 1] > 0.9
    observed = (labels[sure] == "b").mean()
    assert proba[sure, 1].mean() - observed > 0.05
    assert abs(fixed[sure, 1].mean() - observed) < 0.03


def test_rows_of_another_model_or_a_regression_are_not_estimated(calibrated):
    yardstick = Yardstick("classification", "accuracy", BUSINESS)
    records = rows(0.0, 1.5, seed=5)[0][:100]
    other = [{**r, "model_md5": "other"} for r in records[:10]]
    found = cbpe.Estimator({"m": calibrated}, yardstick, seed=0)(records[10:] + other)
    assert found["rows"] == 90 and found["not_estimated"] == 10
    again = cbpe.Estimator({"m": calibrated}, yardstick, seed=0)(records[10:] + other)
    assert again == found, "seeded: the same rows give the same estimate"
    regression = Yardstick("regression", "neg_root_mean_squared_error", yardstick.business)
    said = cbpe.Estimator({}, regression, seed=0)(records)
    assert said == {"estimate": True, "value": None, "why": cbpe.NOT_FOR_REGRESSION}
