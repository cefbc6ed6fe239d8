"""Train: fit select's winner (`model: auto`, the default, with the hyperparameters select
cross-validated) or the model that `-S model=<name>` names, on the training split: every
row of it, or, with `train.max_rows` set and more training rows than that, a seeded sample
of `max_rows` rows (stratified by class for classification), the only rows read."""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd
from sklearn.base import clone
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import Pipeline

from ..core import compute, io, paths, progress
from ..core.params import Task, load
from ..modeling import models
from ..tables import row_budget, schema

log = logging.getLogger(__name__)


def train(
    train_rows: pd.DataFrame,
    roles: schema.Roles,
    transformer: ColumnTransformer,
    config: dict[str, Any],
    task: Task,
    seed: int,
    cores: int,
) -> Pipeline:
    """Preprocess's transformer and the model, fitted together on every row of `train_rows`.

    Fitted, not reused: a target encoder's fit_transform cross-fits the training rows (no
    row is encoded with its own label); the fitted encoder then equals preprocess's.
    """
    estimator = models.build(task, config, seed, len(train_rows))
    pipeline = Pipeline([("preprocess", clone(transformer)), ("model", estimator)])
    with (
        compute.cores(cores),
        progress.timed(f"fit {config['name']}", rows=len(train_rows)),
    ):
        X = schema.model_frame(train_rows, roles)
        pipeline.fit(X, schema.target_array(train_rows[roles.target]))
    return pipeline


def main() -> None:
    params = load()
    roles = schema.roles_from_dict(io.read_json(paths.FEATURES)["roles"])
    selection = io.read_json(paths.SELECT_REPORT) if paths.SELECT_REPORT.exists() else None
    config = models.chosen_config(params, selection)
    rows = row_budget.read(
        paths.TRAIN,
        [roles.target, *roles.features],
        roles.target,
        params.train.max_rows,
        params.task,
        params.seed,
        per_class=row_budget.FIT_ROWS_PER_CLASS,
        setting="train.max_rows",
    )
    transformer = io.load_model(paths.PREPROCESSOR)
    pipeline = train(
        rows, roles, transformer, config, params.task, params.seed, params.compute.cores
    )
    models.save(paths.TRAINED_MODEL, pipeline, config)
    progress.note(rows_in=len(rows), model=config["name"])
