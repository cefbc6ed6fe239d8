"""The answers' schemas: what GET /openapi.json promises and FastAPI checks on the way
out. The prediction's schema is built at startup, as the request's is: its labels are
the served model's classes."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, create_model

Finite = Annotated[float, Field(allow_inf_nan=False)]
Probability = Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)]


class Health(BaseModel):
    status: Literal["ok"]
    version: str
    # The answering process's id: with `serve --workers N`, which worker this was.
    worker: int


class Features(BaseModel):
    numeric: list[str]
    categorical: dict[str, list[str]]


class Metadata(BaseModel):
    artifact: str
    model: str
    version: str
    stage: str | None
    git_revision: str | None
    model_md5: str
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


def prediction_model(task: str, classes: list, with_probabilities: bool) -> type[BaseModel]:
    """The answer to POST /predict: a label of `classes` (or a finite number) per row, each
    class's probability when the model gives them, the warnings and the served model."""
    label = Literal[tuple(classes)] if task == "classification" else Finite
    fields: dict[str, Any] = {"predictions": (list[label], ...)}
    if with_probabilities:
        fields["probabilities"] = (list[dict[str, Probability]], ...)
    return create_model("Prediction", **fields, warnings=(list[str], ...), model=(ServedModel, ...))
