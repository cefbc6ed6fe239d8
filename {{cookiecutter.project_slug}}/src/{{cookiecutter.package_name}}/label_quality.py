"""Label quality: rows whose label a model trained without them disagrees with, and
pseudo-labels for unlabelled rows.

The model is deliberately simple and fast (imputation, scaling, one-hot encoding and a
logistic regression): it only has to be confident where a label is plainly wrong.
Out-of-fold means each row's probabilities come from a model that never saw that row,
so a wrong label cannot vouch for itself. Classification only: a regression target has
no class probabilities, so regression projects get an empty issues file (header only).
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import Pipeline, make_pipeline

from . import schema
from .features import build_transformer
from .params import PreprocessParams

log = logging.getLogger(__name__)

ISSUE_COLUMNS = ["id", "label", "suggested_label", "confidence", "label_probability"]


def judge(roles: schema.Roles) -> Pipeline:
    """The project's default feature transformation, then a logistic regression."""
    return make_pipeline(
        build_transformer(roles, PreprocessParams()), LogisticRegression(max_iter=2000)
    )


def out_of_fold_proba(
    df: pd.DataFrame, roles: schema.Roles, folds: int, seed: int
) -> tuple[np.ndarray, np.ndarray] | None:
    """(probabilities, classes) per row from models that did not see it; None if too few rows."""
    y = df[roles.target].astype(str).to_numpy()
    classes, counts = np.unique(y, return_counts=True)
    folds = min(folds, int(counts.min())) if len(classes) else 0
    if len(classes) < 2 or folds < 2:
        log.warning("annotate: too few rows per class for out-of-fold predictions; no issues")
        return None
    splitter = StratifiedKFold(folds, shuffle=True, random_state=seed)
    X = schema.model_frame(df, roles)
    proba = cross_val_predict(judge(roles), X, y, cv=splitter, method="predict_proba")
    return proba, classes


def find_issues(
    df: pd.DataFrame, roles: schema.Roles, threshold: float, folds: int, seed: int
) -> pd.DataFrame:
    """Rows whose label disagrees with an out-of-fold prediction of at least `threshold`
    probability, most confident first (ties by id, so the file is stable)."""
    found = out_of_fold_proba(df, roles, folds, seed)
    if found is None:
        return pd.DataFrame(columns=ISSUE_COLUMNS)
    proba, classes = found
    labels = df[roles.target].astype(str).to_numpy()
    best = proba.argmax(axis=1)
    given = np.searchsorted(classes, labels)
    issues = pd.DataFrame(
        {
            "id": df[schema.ID].to_numpy(),
            "label": labels,
            "suggested_label": classes[best],
            "confidence": proba[np.arange(len(df)), best].round(6),
            "label_probability": proba[np.arange(len(df)), given].round(6),
        }
    )
    issues = issues[(issues["suggested_label"] != issues["label"])]
    issues = issues[issues["confidence"] >= threshold]
    return issues.sort_values(["confidence", "id"], ascending=[False, True]).reset_index(drop=True)


def pseudo_label(
    labelled: pd.DataFrame,
    unlabelled: pd.DataFrame,
    roles: schema.Roles,
    min_confidence: float,
) -> pd.DataFrame:
    """Unlabelled rows the model (fitted on every labelled row) is at least `min_confidence`
    sure of, with that label and the batch schema.PSEUDO_LABELLED (kept out of the test split)."""
    if unlabelled.empty:
        return unlabelled.iloc[0:0]
    y = labelled[roles.target]
    model = judge(roles).fit(schema.model_frame(labelled, roles), y.astype(str))
    proba = model.predict_proba(schema.model_frame(unlabelled, roles))
    sure = proba.max(axis=1) >= min_confidence
    out = unlabelled[sure].copy()
    suggested = model.classes_[proba[sure].argmax(axis=1)]
    # Back to the target's own values: the model saw them as text.
    by_text = {str(v): v for v in y.unique()}
    out[roles.target] = pd.Series([by_text[s] for s in suggested], index=out.index).astype(y.dtype)
    out[schema.BATCH] = schema.PSEUDO_LABELLED
    return out
