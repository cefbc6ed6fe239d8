"""Select: cross-validate the candidate models on the training split, rank them by `metric`."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.compose import ColumnTransformer
from sklearn.model_selection import GroupKFold, StratifiedGroupKFold, cross_val_score
from sklearn.pipeline import Pipeline

from .. import io, models, paths, schema
from ..params import Params, load

log = logging.getLogger(__name__)


def rank(
    train: pd.DataFrame, roles: schema.Roles, transformer: ColumnTransformer, params: Params
) -> pd.DataFrame:
    """One row per candidate, best first. Folds group a row with its augmented copies."""
    y = train[roles.target]
    n_classes = y.nunique() if params.task == "classification" else None
    models.check_metric(params.task, params.metric, n_classes)
    classes = y.unique() if params.task == "classification" else None
    scoring = models.scorer(params.task, params.metric, params.business, classes)
    X = schema.model_frame(train, roles)
    groups = schema.base_ids(train[schema.ID])
    folds = params.select.cv_folds
    splitter = (
        StratifiedGroupKFold(folds, shuffle=True, random_state=params.seed)
        if params.task == "classification"
        else GroupKFold(folds, shuffle=True, random_state=params.seed)
    )
    rows = []
    for name, config in params.select.candidates.items():
        pipeline = Pipeline(
            [
                ("preprocess", clone(transformer)),
                ("model", models.build(params.task, config, params.seed)),
            ]
        )
        scores = cross_val_score(pipeline, X, y, groups=groups, cv=splitter, scoring=scoring)
        rows.append({"model": name, "mean": float(np.mean(scores)), "std": float(np.std(scores))})
    ranking = pd.DataFrame(rows).sort_values(["mean", "model"], ascending=[False, True])
    ranking.insert(0, "rank", range(1, len(ranking) + 1))
    return ranking.reset_index(drop=True)


def summary(ranking: pd.DataFrame, metric: str) -> dict:
    best = ranking.iloc[0]
    return {
        "winner": str(best["model"]),
        "metric": metric,
        "cv_score": round(float(best["mean"]), 6),
        "candidates": {
            str(r.model): {"mean": round(r.mean, 6), "std": round(r.std, 6)}
            for r in ranking.itertuples()
        },
    }


def main() -> None:
    params = load()
    features = io.read_json(paths.FEATURES)
    roles = schema.roles_from_dict(features["roles"])
    ranking = rank(io.read_parquet(paths.TRAIN), roles, io.load_model(paths.PREPROCESSOR), params)
    io.write_csv(paths.SELECT_RANKING, ranking.round(6))
    io.write_json(paths.SELECT_REPORT, summary(ranking, params.metric))
    log.info("cross-validated %s:\n%s", params.metric, ranking.to_string(index=False))
