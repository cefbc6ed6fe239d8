"""Train: fit select's winner (`model: auto`, the default, with the hyperparameters select
cross-validated) or the model that `-S model=<name>` names, on the training split: every
row of it, or, with `train.max_rows` set and more training rows than that, a seeded sample
of `max_rows` rows (stratified by class for classification), the only rows read."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import pandas as pd
from sklearn.base import clone
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import Pipeline

from ..core import compute, io, paths, progress
from ..core.params import ComputeParams, StageSettings, Task, load
from ..modeling import models
from ..tables import row_budget, schema

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Settings(StageSettings):
    """What train() reads from the config; main() also reads train.max_rows, and the
    model's settings (models.chosen_config)."""

    task: Task
    seed: int
    compute: ComputeParams


def train(
    train_rows: pd.DataFrame,
    roles: schema.Roles,
    transformer: ColumnTransformer,
    *,
    config: dict[str, Any],
    settings: Settings,
) -> Pipeline:
    """Preprocess's transformer and the model `config` (a conf/model/ mapping), fitted
    together on every row of `train_rows`.

    Fitted, not reused: a target encoder's fit_transform cross-fits the training rows (no
    row is encoded with its own label); the fitted encoder then equals preprocess's.
    """
    cores = settings.compute.cores
    estimator = models.build(settings.task, config, settings.seed, len(train_rows), cores)
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
    selection = models.read_selection()
    config = models.chosen_config(params, selection)
    budget = row_budget.train_budget(params.train, task=params.task, seed=params.seed)
    columns = [roles.target, *roles.features]
    rows = row_budget.read(paths.TRAIN, columns, roles.target, budget=budget)
    transformer = io.load_model(paths.PREPROCESSOR)
    pipeline = train(rows, roles, transformer, config=config, settings=Settings.of(params))
    models.save(paths.TRAINED_MODEL, pipeline, config)
    progress.note(rows_in=len(rows), model=config["name"])
