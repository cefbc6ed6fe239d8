"""Label quality: rows whose label a model trained without them disagrees with, and
pseudo-labels for unlabelled rows.

The model is deliberately simple and fast (imputation, scaling and categorical encoding as
`preprocess` configures them, and a logistic regression): it only has to be confident
where a label is plainly wrong. Its cost is bounded by `annotate.judge_max_rows`: on data
larger than that, each model is fitted on a stratified sample and still predicts every row.
Out-of-fold means each row's probabilities come from a model that never saw that row,
so a wrong label cannot vouch for itself. Classification only: a regression target has
no class probabilities, so regression projects get an empty issues file (header only).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import Pipeline, make_pipeline

from ..core import compute
from ..core.params import AnnotateParams, ComputeParams, PreprocessParams, StageSettings
from ..modeling.features import build_transformer, choose_encodings
from ..tables import schema

log = logging.getLogger(__name__)

# Rows per predict_proba call: bounds the transformed matrix held at once.
PREDICT_CHUNK = 200_000


@dataclass(frozen=True)
class JudgeSettings(StageSettings):
    """What the label judge reads: preprocess's feature transformation; annotate's
    cv_folds, issue_threshold, judge_max_rows (the rows a model is fitted on) and
    pseudo_label.min_confidence; the seed; compute.n_jobs (folds fitted side by side)."""

    annotate: AnnotateParams
    preprocess: PreprocessParams
    seed: int
    compute: ComputeParams


def judge(
    df: pd.DataFrame,
    roles: schema.Roles,
    rules: PreprocessParams,
    seed: int,
    encodings: dict | None = None,
) -> Pipeline:
    """The project's feature transformation as `rules` (the preprocess settings) configure
    it (encodings chosen from `df`, unless given), then a logistic regression."""
    if encodings is None:
        encodings = choose_encodings(df, roles.categorical, rules.encoding)
    return make_pipeline(
        build_transformer(roles, rules, "classification", encodings, seed),
        LogisticRegression(max_iter=2000),
    )


def predict_proba(model: Pipeline, X: pd.DataFrame, classes: np.ndarray) -> np.ndarray:
    """Probabilities in the columns of `classes` (a sample may lack a rare class), in chunks."""
    out = np.zeros((len(X), len(classes)))
    columns = np.searchsorted(classes, model.classes_)
    for start in range(0, len(X), PREDICT_CHUNK):
        out[start : start + PREDICT_CHUNK, columns] = model.predict_proba(
            X.iloc[start : start + PREDICT_CHUNK]
        )
    return out


def fold_plan(
    y: np.ndarray, folds: int, seed: int, max_rows: int
) -> tuple[np.ndarray, list[tuple[np.ndarray, np.ndarray]]] | None:
    """(classes, per fold: (its model's fit rows, the rows it predicts)) from the labels
    alone; None if too few rows. `y` may be the labels or any codes that sort as they do:
    the folds and the samples are the same positions."""
    classes, counts = np.unique(y, return_counts=True)
    folds = min(folds, int(counts.min())) if len(classes) else 0
    if len(classes) < 2 or folds < 2:
        log.warning("annotate: too few rows per class for out-of-fold predictions; no issues")
        return None
    splitter = StratifiedKFold(folds, shuffle=True, random_state=seed)
    plan = [
        (compute.sample(fit_rows, y, max_rows, seed), held_out)
        for fit_rows, held_out in splitter.split(np.zeros(len(y)), y)
    ]
    return classes, plan


def fit_judge(model: Pipeline, X: pd.DataFrame, y: np.ndarray, rows: np.ndarray) -> Pipeline:
    return clone(model).fit(X.iloc[rows], y[rows])


def out_of_fold_proba(
    df: pd.DataFrame, roles: schema.Roles, *, settings: JudgeSettings
) -> tuple[np.ndarray, np.ndarray] | None:
    """(probabilities, classes) per row from models that did not see it; None if too few rows.

    Each of annotate.cv_folds models is fitted on at most annotate.judge_max_rows rows of
    the other folds and predicts all of its own, so the cost grows linearly with the rows;
    folds run in parallel.
    """
    rules, seed, n_jobs = settings.annotate, settings.seed, settings.compute.cores
    y = schema.target_array(df[roles.target].astype(str))
    planned = fold_plan(y, rules.cv_folds, seed, rules.judge_max_rows)
    if planned is None:
        return None
    classes, plan = planned
    X = schema.model_frame(df, roles)
    model = judge(X, roles, settings.preprocess, seed)

    def one_fold(fit_rows: np.ndarray, held_out: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        fitted = fit_judge(model, X, y, fit_rows)
        return held_out, predict_proba(fitted, X.iloc[held_out], classes)

    with compute.folds(n_jobs):
        parts = Parallel(n_jobs=n_jobs)(delayed(one_fold)(fit, held) for fit, held in plan)
    proba = np.empty((len(y), len(classes)))
    for held_out, part in parts:
        proba[held_out] = part
    return proba, classes


def find_issues(df: pd.DataFrame, roles: schema.Roles, *, settings: JudgeSettings) -> pd.DataFrame:
    """Rows whose label disagrees with an out-of-fold prediction of at least
    annotate.issue_threshold probability, most confident first (ties by id, so the file
    is stable)."""
    found = out_of_fold_proba(df, roles, settings=settings)
    if found is None:
        return pd.DataFrame(columns=schema.ISSUE_COLUMNS)
    proba, classes = found
    labels = schema.target_array(df[roles.target].astype(str))
    threshold = settings.annotate.issue_threshold
    return ranked(disagreements(df[schema.ID], labels, proba, classes, threshold))


def disagreements(
    ids: pd.Series, labels: np.ndarray, proba: np.ndarray, classes: np.ndarray, threshold: float
) -> pd.DataFrame:
    """The rows (of any slice of the table) whose label the probabilities contradict with
    at least `threshold`, unsorted."""
    best = proba.argmax(axis=1)
    given = np.searchsorted(classes, labels)
    rows = np.arange(len(ids))
    issues = pd.DataFrame(
        {
            "id": ids.to_numpy(),
            "label": labels,
            "suggested_label": classes[best],
            "confidence": proba[rows, best].round(6),
            "label_probability": proba[rows, given].round(6),
        }
    )
    issues = issues[(issues["suggested_label"] != issues["label"])]
    return issues[issues["confidence"] >= threshold]


def ranked(issues: pd.DataFrame) -> pd.DataFrame:
    """Most confident first, ties by id, so the file is stable."""
    return issues.sort_values(["confidence", "id"], ascending=[False, True]).reset_index(drop=True)


def pseudo_label(
    labelled: pd.DataFrame,
    unlabelled: pd.DataFrame,
    roles: schema.Roles,
    *,
    settings: JudgeSettings,
) -> pd.DataFrame:
    """Unlabelled rows the model (fitted on at most annotate.judge_max_rows labelled rows)
    is at least annotate.pseudo_label.min_confidence sure of, with that label and the
    batch schema.PSEUDO_LABELLED (kept out of the test split)."""
    if unlabelled.empty:
        return unlabelled.iloc[0:0]
    rules, seed = settings.annotate, settings.seed
    y = labelled[roles.target]
    text = schema.target_array(y.astype(str))
    X = schema.model_frame(labelled, roles)
    rows = compute.sample(np.arange(len(X)), text, rules.judge_max_rows, seed)
    model = judge(X, roles, settings.preprocess, seed)
    model.fit(X.iloc[rows], text[rows])
    sure = rules.pseudo_label.min_confidence
    return Labeller(model, roles, sure, by_text(y.unique()), y.dtype).sure_rows(unlabelled)


def by_text(values) -> dict:
    """The target's distinct values (in order of appearance) by their text: the model
    sees them as text."""
    return {str(v): v for v in values}


@dataclass(frozen=True)
class Labeller:
    """A fitted judge that pseudo-labels: its `model`, the `roles` it reads, how sure it
    must be (`min_confidence`), and the target's values by their text (`labels`, see
    by_text), typed as the target (`dtype`). Both engines label through it."""

    model: Pipeline
    roles: schema.Roles
    min_confidence: float
    labels: dict
    dtype: Any

    def sure_rows(self, unlabelled: pd.DataFrame) -> pd.DataFrame:
        """The rows of `unlabelled` (any slice) the model is min_confidence sure of,
        labelled with the target value it chose."""
        model, target = self.model, self.roles.target
        proba = predict_proba(model, schema.model_frame(unlabelled, self.roles), model.classes_)
        sure = proba.max(axis=1) >= self.min_confidence
        out = unlabelled[sure].copy()
        suggested = model.classes_[proba[sure].argmax(axis=1)]
        labels = pd.Series([self.labels[s] for s in suggested], index=out.index)
        out[target] = labels.astype(self.dtype)
        out[schema.BATCH] = schema.PSEUDO_LABELLED
        return out
