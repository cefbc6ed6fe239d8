"""The answers' schemas: what GET /openapi.json promises and FastAPI checks on the way
out. The prediction's schema is built at startup, as the request's is: its labels are
the served model's classes."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import numpy as np
import orjson
from pydantic import BaseModel, Field, create_model

Finite = Annotated[float, Field(allow_inf_nan=False)]
Probability = Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)]


class LogStatus(BaseModel):
    """The answering worker's prediction log (each worker has its own queue)."""

    rows_waiting: int = Field(ge=0)
    # Rows answered but never logged since the worker started: the queue was full, or a
    # value JSON cannot hold.
    rows_lost: int = Field(ge=0)
    # Why writing fails (a full disk, say); None when the last write succeeded.
    error: str | None


class ShadowStatus(BaseModel):
    """The answering worker's shadow model (serving/shadow.py): which, its share of the
    requests, and its rows since the worker started."""

    version: str
    git_revision: str | None
    model_md5: str
    share: float = Field(ge=0.0, le=1.0)
    # Rows of the chosen requests; dropped: the queue was full; failed: the shadow could
    # not score them (error says why); waiting: queued, not yet scored.
    rows_offered: int = Field(ge=0)
    rows_scored: int = Field(ge=0)
    rows_dropped: int = Field(ge=0)
    rows_failed: int = Field(ge=0)
    rows_waiting: int = Field(ge=0)
    error: str | None
    log: LogStatus


class Health(BaseModel):
    status: Literal["ok"]
    version: str
    # The answering process's id: with `serve --workers N`, which worker this was.
    worker: int
    # None: the app keeps no prediction log.
    prediction_log: LogStatus | None = None
    # None: no model in the shadow (serve.shadow).
    shadow: ShadowStatus | None = None
    # Set when the stage holds a version this server cannot swap in (follow.py): why,
    # and that a restart serves it.
    restart_needed: str | None = None


class Features(BaseModel):
    numeric: list[str]
    categorical: dict[str, list[str]]
    # The data's other columns (target, time, id, data.drop): a row may carry them, as the
    # data does; they are ignored (the time is logged as the row's event time).
    non_features: list[str]
    # Columns the server derives from the others (modeling/derivation.py): not sent.
    derived: list[str] = []


class Metadata(BaseModel):
    artifact: str
    model: str
    version: str
    stage: str | None
    git_revision: str | None
    model_md5: str
    # models/manifest.json's md5: the whole set served (export/manifest.py); None only for
    # an app built from a ModelSource that did not come through registry.resolve.
    manifest_md5: str | None
    # What computes the predictions: onnx (onnxruntime, parity-checked) or skops.
    runtime: Literal["onnx", "skops"]
    task: Literal["classification", "regression"]
    data: dict[str, Any]
    metrics: dict[str, Any]
    hyperparameters: dict[str, Any]
    features: Features
    classes: list[Any] | None
    max_rows: int
    max_body_bytes: int
    unseen_category_rule: str


class ServedModel(BaseModel):
    artifact: str
    version: str


class Problem(BaseModel):
    """401, 400 (a body that is not text), 413: one line saying what is wrong."""

    detail: str


class Invalid(BaseModel):
    """422: `error` is one line naming the first bad field; `detail` lists every error."""

    error: str
    detail: list[dict[str, Any]]


class Stored(BaseModel):
    """POST /feedback's answer: the labels stored (a repeated id's last one), how many of
    them replaced a label sent before, and the ids in no prediction log left out
    (skip_unknown; without it they are a 422 and nothing is stored)."""

    stored: int = Field(ge=0)
    replaced: int = Field(ge=0)
    unknown: int = Field(ge=0)


def json_values(values: np.ndarray) -> list:
    """`values` as Python lists, each number at its own precision: a float32 (ONNX trees)
    as the shortest text that is that float32 (0.03, not 0.029999999329447746, its
    float64 widening), a float64 as the shortest that is that float64. orjson writes a
    float32 array that way; read back, each becomes the float64 that prints as that text.
    Anything else (labels, float64) as numpy's tolist()."""
    if values.dtype == np.float32:
        return orjson.loads(orjson.dumps(values, option=orjson.OPT_SERIALIZE_NUMPY))
    return values.tolist()


def prediction_model(task: str, classes: list, with_probabilities: bool) -> type[BaseModel]:
    """The answer to POST /predict: a label of `classes` (or a finite number) per row, each
    class's probability when the model gives them, the warnings and the served model."""
    label = Literal[tuple(classes)] if task == "classification" else Finite
    fields: dict[str, Any] = {"predictions": (list[label], ...)}
    if with_probabilities:
        fields["probabilities"] = (list[dict[str, Probability]], ...)
    return create_model(
        "Prediction",
        **fields,
        warnings=(list[str], ...),
        model=(ServedModel, ...),
        # One per row: the id `feedback` (and POST /feedback) joins a later label on.
        ids=(list[str], ...),
    )
