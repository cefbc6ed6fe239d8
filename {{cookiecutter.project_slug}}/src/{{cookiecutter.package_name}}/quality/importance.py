"""Permutation importance of each input column, on a seeded sample of test rows.

Model-agnostic: a column matters as much as the headline score drops when its values
are shuffled (scikit-learn's permutation_importance on the whole pipeline, so an input
column counts once, however many encoded columns it became). The cost is one prediction
of the sample per column and repeat, so it is bounded by evaluate.importance_rows and
evaluate.importance_repeats, not by the size of the test split. For classification the
sample is stratified and keeps a row of every class: a score such as log loss fails on
rows that lack a class the model knows.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import is_classifier
from sklearn.inspection import permutation_importance

from ..core import compute
from ..core.params import EvaluateParams


def sample(y: np.ndarray, rows: int, seed: int, stratify: bool) -> np.ndarray:
    """Positions of the rows to score: all of them, or a seeded sample of about `rows`
    (stratified by the class `y`, topped up to a row of every class, if `stratify`)."""
    return compute.sample(np.arange(len(y)), y if stratify else None, rows, seed, per_class=1)


def permutation(
    model: Any, X: pd.DataFrame, y: np.ndarray, *, scorer: Any, rules: EvaluateParams, seed: int
) -> list[dict]:
    """[{feature, importance, std}], most important first: the mean drop of `scorer` over
    evaluate.importance_repeats shuffles of each column, on a sample of about
    evaluate.importance_rows rows (see `sample`; stratified for a classifier)."""
    keep = sample(y, rules.importance_rows, seed, stratify=is_classifier(model))
    result = permutation_importance(
        model,
        X.iloc[keep],
        y[keep],
        scoring=scorer,
        n_repeats=rules.importance_repeats,
        random_state=seed,
    )
    found = [
        {"feature": str(name), "importance": round(float(mean), 6), "std": round(float(std), 6)}
        for name, mean, std in zip(
            X.columns, result.importances_mean, result.importances_std, strict=True
        )
    ]
    return sorted(found, key=lambda row: (-row["importance"], row["feature"]))
