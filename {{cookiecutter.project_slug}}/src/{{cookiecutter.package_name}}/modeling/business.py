"""The business metric `business_value`: the expected value of one prediction.

Classification: `business.value_matrix[true][predicted]` is the gain (positive) or
cost (negative) of predicting `predicted` when the truth is `true`. Pairs the matrix
leaves out are worth `business.correct_value` when right and `business.wrong_value`
when wrong (1 and 0 by default, so an empty matrix makes business_value the accuracy).
Regression: each unit of absolute error costs `business.cost_per_unit_error`, so the
value is minus the mean cost (higher is better, like every scorer).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd
from sklearn.metrics import make_scorer

from ..core.errors import ConfigError
from ..core.params import BusinessParams, Task
from ..tables import schema

NAME = "business_value"


def _matrix(raw: dict) -> dict[str, dict[str, float]]:
    return {
        schema.category_label(true): {
            schema.category_label(pred): float(v) for pred, v in row.items()
        }
        for true, row in raw.items()
    }


def classification_row_values(
    y_true: Iterable,
    y_pred: Iterable,
    *,
    matrix: dict,
    correct_value: float,
    wrong_value: float,
) -> np.ndarray:
    """The value of each prediction. Vectorised: each distinct (true, predicted) pair is
    looked up once, so the cost is one pass over the rows (decision/bootstrap.py resamples
    these values instead of scoring every resample again)."""
    table = _matrix(matrix)
    true_codes, true_classes = pd.factorize(np.asarray(y_true), use_na_sentinel=False)
    pred_codes, pred_classes = pd.factorize(np.asarray(y_pred), use_na_sentinel=False)
    pairs = np.empty((len(true_classes), len(pred_classes)))
    for i, true in enumerate(map(schema.category_label, true_classes)):
        for j, pred in enumerate(map(schema.category_label, pred_classes)):
            default = correct_value if true == pred else wrong_value
            pairs[i, j] = table.get(true, {}).get(pred, default)
    return pairs[true_codes, pred_codes]


def classification_value(
    y_true: Iterable,
    y_pred: Iterable,
    *,
    matrix: dict,
    correct_value: float,
    wrong_value: float,
) -> float:
    values = classification_row_values(
        y_true, y_pred, matrix=matrix, correct_value=correct_value, wrong_value=wrong_value
    )
    return float(np.mean(values)) if values.size else 0.0


def regression_row_values(
    y_true: Iterable, y_pred: Iterable, *, cost_per_unit_error: float
) -> np.ndarray:
    """Minus the cost of each prediction's absolute error."""
    error = np.abs(np.asarray(y_true, dtype=float) - np.asarray(y_pred, dtype=float))
    return -cost_per_unit_error * error


def regression_value(y_true: Iterable, y_pred: Iterable, *, cost_per_unit_error: float) -> float:
    values = regression_row_values(y_true, y_pred, cost_per_unit_error=cost_per_unit_error)
    return float(np.mean(values)) if values.size else 0.0


def row_values(
    task: Task, business: BusinessParams, y_true: Iterable, y_pred: Iterable
) -> np.ndarray:
    """business_value of each row: its mean over the rows is business_value."""
    if task == "classification":
        return classification_row_values(
            y_true,
            y_pred,
            matrix=business.value_matrix,
            correct_value=business.correct_value,
            wrong_value=business.wrong_value,
        )
    return regression_row_values(y_true, y_pred, cost_per_unit_error=business.cost_per_unit_error)


def check_matrix(business: BusinessParams, classes: Iterable) -> None:
    """Every class the matrix names must be a class of the target: a typo is an error."""
    known = {schema.category_label(c) for c in classes}
    table = _matrix(business.value_matrix)
    named = set(table) | {pred for row in table.values() for pred in row}
    unknown = sorted(named - known)
    if unknown:
        raise ConfigError(
            f"business.value_matrix names classes not in the target: {', '.join(unknown)} "
            f"(classes: {', '.join(sorted(known))}): fix the names in conf/config.yaml"
        )


def scorer(task: Task, business: BusinessParams, classes: Iterable | None = None):
    """business_value as a scikit-learn scorer (for cross_val_score and evaluate)."""
    if task == "classification":
        if classes is not None:
            check_matrix(business, classes)
        return make_scorer(
            classification_value,
            matrix=business.value_matrix,
            correct_value=business.correct_value,
            wrong_value=business.wrong_value,
        )
    return make_scorer(regression_value, cost_per_unit_error=business.cost_per_unit_error)
