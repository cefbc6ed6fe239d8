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


def model_proba(x: np.ndarray, sure: float = 4.0) -> np.ndarray:
    """The model's P(a), P(b): the right direction, too sure (slope 4 where the world's
    is 1.5): miscalibrated, so the calibration has work to do."""
    b = truth_proba(x, sure)
    return np.column_stack([1 - b, b])


def rows(
    mean: float, slope: float, seed: int, model: tuple[str, float] = ("m", 4.0)
) -> tuple[list[dict], np.ndarray]:
    """Logged records with the answers of model (md5, its slope: 4, too sure), x ~
    N(mean, 1), labels drawn by the world's rule of `slope`; and the labels."""
    rng = np.random.default_rng(seed)
    x = rng.normal(mean, 1.0, ROWS)
    labels = np.where(rng.random(ROWS) < truth_proba(x, slope), "b", "a")
    md5, sure = model
    proba = model_proba(x, sure)
    given = [dict(zip(CLASSES, p.tolist(), strict=True)) for p in proba]
    records = [
        {"prediction": CLASSES[int(p[1] > 0.5)], "probabilities": g, "label": str(label),
         "model_md5": md5, "model_version": f"v-{md5}"}
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


def test_rows_two_versions_answered_are_each_estimated_by_their_own_calibration(calibrated):
    """A window across a swap: v-m (too sure) answered 1,000 rows, v-u (unsure: slope 0.5
    where the world's is 1.5, calibrated on its own reference rows) 4,000 rows of
    shifted inputs. Each model's rows by its calibration, pooled by rows: the estimate
    covers both versions and tracks the truth of all 5,000 rows."""
    yardstick = Yardstick("classification", "accuracy", BUSINESS)
    unsure = ("u", 0.5)
    reference, labels = rows(0.0, 1.5, seed=6, model=unsure)
    own = cbpe.calibrate(cbpe.logged_proba(reference, CLASSES), labels, CLASSES)
    first, second = rows(0.0, 1.5, seed=7)[0][:1000], rows(2.0, 1.5, seed=8, model=unsure)[0]
    estimator = cbpe.Estimator({"m": calibrated, "u": own}, yardstick, seed=0)
    found = estimator(first + second)
    truth = realised(first + second, yardstick)
    print(f"two versions: estimate {found['value']} [{found['lower']}, {found['upper']}], "
          f"truth {truth:.4f}")  # fmt: skip
    assert found["rows"] == 5000 and "not_estimated" not in found
    assert found["versions"] == {"v-m": 1000, "v-u": 4000}
    assert abs(found["value"] - truth) < TOLERANCE
    # Pooled by rows: between the two versions' own estimates, nearer the larger one.
    alone = [estimator(part)["value"] for part in (first, second)]
    assert found["value"] == pytest.approx((alone[0] + 4 * alone[1]) / 5, abs=0.005)
    # The unsure model's rows read by the other's calibration would be estimated wrong.
    wrong = cbpe.Estimator({"u": calibrated}, yardstick, seed=0)(second)["value"]
    assert abs(wrong - realised(second, yardstick)) > TOLERANCE
