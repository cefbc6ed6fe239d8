"""The HTTP API (FastAPI): GET /health, GET /metadata, POST /predict (V1 inference protocol).

No `from __future__ import annotations` here: FastAPI reads the request and answer models
from the endpoint's annotations at runtime, and both are built at startup from the
features. GET /openapi.json declares every answer, errors included.
"""

import contextlib
import datetime as dt
import gc
import json
import os
import secrets
import socket
import tempfile
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from fastapi import Depends, FastAPI, HTTPException, Request, Security
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.security import APIKeyHeader

from .. import models, schema
from ..params import ServeParams
from . import request as request_schema
from . import responses
from .body_limit import BodyLimit
from .prediction_log import PredictionLog
from .registry import ModelSource
from .runtime import choose

API_KEY_HEADER = "X-API-Key"  # pragma: allowlist secret (a header name)


def load(source: ModelSource):
    """The skops model from its bytes, through models.load (reviewed types only)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.skops"
        path.write_bytes(source.model_bytes)
        return models.load(path)


def _where(loc: tuple | list) -> str:
    """A pydantic error location as a path: body.instances.0.x -> instances[0].x"""
    text = ""
    for part in loc[1:] if loc and loc[0] == "body" else loc:
        text += f"[{part}]" if isinstance(part, int) else f".{part}"
    return text.lstrip(".") or "body"


def _one_per_field(exc: RequestValidationError) -> list[dict]:
    """The errors, with a category's two (neither a string nor an integer: pydantic tries
    each member of the union) told as one."""
    out, seen = [], set()
    for error in exc.errors():
        loc = tuple(error["loc"])
        if loc and loc[-1] in ("str", "int"):
            if loc[:-1] in seen:
                continue
            seen.add(loc[:-1])
            error = {**error, "loc": loc[:-1], "msg": "Input should be a string or an integer"}
        out.append(error)
    return out


def _message(errors: list[dict]) -> str:
    first = errors[0]
    if first.get("type") == "json_invalid":
        return f"malformed JSON: {first.get('ctx', {}).get('error', first['msg'])}"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    what = request_schema.out_of_range(first) or first["msg"]
    return f"{_where(first['loc'])}: {what}{more}"


def create_app(
    source: ModelSource,
    settings: ServeParams,
    api_key: str | None = None,
    prediction_log: PredictionLog | None = None,
) -> FastAPI:
    """An app serving `source`; with `api_key`, /metadata and /predict need it. The app
    closes `prediction_log` at shutdown (its lifespan), writing the rows still queued."""
    model = load(source)
    features = source.metadata["features"]
    roles = schema.roles_from_dict(features["roles"])
    task = source.metadata["task"]
    classes = [c.item() if hasattr(c, "item") else c for c in getattr(model, "classes_", [])]
    class_names = [str(c) for c in classes]
    PredictRequest = request_schema.request_model(features, settings.max_rows)  # noqa: N806
    with_probabilities = task == "classification" and hasattr(model, "predict_proba")
    onnx_status = source.metadata.get("onnx", {}).get("status", "missing")
    runtime = choose(settings.runtime, model, source.onnx_bytes, onnx_status, roles, task)
    known = {c: frozenset(values) for c, values in features["categorical"].items()}
    served = {"artifact": source.artifact, "version": source.version}
    Prediction = responses.prediction_model(task, classes, with_probabilities)  # noqa: N806
    max_body_bytes = settings.max_body_bytes or request_schema.body_limit(
        features, settings.max_rows
    )

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI):
        # The millions of objects loaded so far (scikit-learn, pandas, the model) live as
        # long as the server: out of the collector's sight, a full collection no longer
        # walks them, which had stalled answers by tens of milliseconds (p99).
        gc.freeze()
        yield
        if prediction_log is not None:
            prediction_log.close()

    app = FastAPI(
        lifespan=lifespan,
        title=f"{source.artifact} {source.version}",
        description=f"{task} model `{source.metadata['model']}`; see GET /metadata",
        responses={413: {"model": responses.Problem, "description": "Request body too large"}},
    )
    app.add_middleware(BodyLimit, max_bytes=max_body_bytes)

    # Declared only when a key is set, so that the schema says what the server enforces.
    guard: list = []
    key_answers: dict = {}
    if api_key:
        header = APIKeyHeader(name=API_KEY_HEADER, auto_error=False)

        def check_key(given: str | None = Security(header)) -> None:
            if not (given and secrets.compare_digest(given, api_key)):
                raise HTTPException(401, f"missing or wrong {API_KEY_HEADER} header")

        guard = [Depends(check_key)]
        key_answers = {401: {"model": responses.Problem, "description": "No or wrong key"}}
    body_answers = {
        400: {"model": responses.Problem, "description": "Body is not JSON text"},
        422: {"model": responses.Invalid, "description": "Invalid request"},
    }

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        # Without the offending input: it may be huge (1001 rows) or not JSON (NaN).
        errors = jsonable_encoder(
            [{k: v for k, v in e.items() if k not in ("input", "url")} for e in _one_per_field(exc)]
        )
        return JSONResponse({"error": _message(errors), "detail": errors}, status_code=422)

    @app.get("/health")
    def health() -> responses.Health:
        return responses.Health(status="ok", version=source.version, worker=os.getpid())

    @app.get("/metadata", dependencies=guard, responses=key_answers)
    def metadata() -> responses.Metadata:
        meta = source.metadata
        return responses.Metadata(
            artifact=source.artifact,
            model=meta["model"],
            version=source.version,
            stage=source.stage,
            git_revision=source.git_revision,
            model_md5=source.md5,
            runtime=runtime.name,
            task=task,
            data=meta["data"],
            metrics=meta["metrics"],
            hyperparameters=meta["hyperparameters"],
            features={"numeric": roles.numeric, "categorical": features["categorical"]},
            classes=classes or None,
            max_rows=settings.max_rows,
            max_body_bytes=max_body_bytes,
            unseen_category_rule="predicted, not refused: a one-hot encoded column gives "
            "it all zeros, a target-encoded one the overall training mean; reported in the "
            "response's warnings",
        )

    @app.post(
        "/predict",
        dependencies=guard,
        responses={**key_answers, **body_answers},
        response_model=Prediction,
    )
    def predict(body: PredictRequest) -> Response:
        instances = body.instances
        n = len(instances)
        # Column by column from the validated rows: what both runtimes take.
        columns = request_schema.columns(instances, features["roles"])
        predicted, probabilities = runtime.predict(columns, n)
        _refuse_non_finite(predicted if task == "regression" else probabilities)
        predictions = predicted.tolist()
        answer: dict[str, Any] = {"predictions": predictions}
        per_row = None
        if with_probabilities:
            per_row = [dict(zip(class_names, p, strict=True)) for p in probabilities.tolist()]
            answer["probabilities"] = per_row
        unseen = request_schema.unseen_categories(columns, known)
        answer["warnings"] = [message for _, message in unseen]
        answer["model"] = served
        if prediction_log is not None:
            request_id = uuid.uuid4().hex
            when = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")
            values = zip(*columns.values(), strict=True)
            rows = [dict(zip(roles.features, row, strict=True)) for row in values]
            row_warnings: dict[int, list[str]] = {}
            for i, message in unseen:
                row_warnings.setdefault(i, []).append(message)
            prediction_log.write(
                [
                    {
                        "time": when,
                        "request_id": request_id,
                        "row": i,
                        "model_version": source.version,
                        "model_md5": source.md5,
                        "inputs": row,
                        "prediction": predictions[i],
                        "probabilities": per_row[i] if per_row else None,
                        "warnings": row_warnings.get(i, []),
                    }
                    for i, row in enumerate(rows)
                ]
            )
        # The answer is built to the declared schema (schemathesis checks it): encoded here
        # (orjson), FastAPI spends no time validating it again.
        return Response(orjson.dumps(answer), media_type="application/json")

    return app


def _refuse_non_finite(outputs: np.ndarray | None) -> None:
    """A 422 naming the rows whose model output is not a finite number."""
    if outputs is None:
        return
    bad = np.flatnonzero(~np.isfinite(outputs.reshape(len(outputs), -1)).all(axis=1))
    if len(bad):
        raise RequestValidationError(
            [
                {
                    "type": "value_error",
                    "loc": ("body", "instances", int(i)),
                    "msg": "the model's output for this row is not a finite number: its "
                    "numbers are too far outside the training range (GET /metadata)",
                }
                for i in bad
            ]
        )


# `serve --workers N`: where each worker finds what `serve` resolved (a JSON file).
HANDOVER_ENV = "MODEL_SERVE_HANDOVER"


def served_app(root: Path, source: ModelSource, settings: ServeParams) -> FastAPI:
    """The app with its API key (from the environment) and its prediction log."""
    api_key = os.environ.get(settings.api_key_env) or None
    log = PredictionLog(
        root / settings.prediction_log,
        settings.log_max_bytes,
        settings.log_backups,
        settings.log_flush_seconds,
    )
    return create_app(source, settings, api_key, log)


def hand_over(root: Path, source: ModelSource, settings: ServeParams, folder: Path) -> Path:
    """Write what a worker needs into `folder`: the model bytes once, the rest as JSON.
    Workers load the model `serve` resolved, not the stage again (it may move meanwhile)."""
    model = folder / "model.skops"
    model.write_bytes(source.model_bytes)
    onnx = None
    if source.onnx_bytes is not None:
        onnx = folder / "model.onnx"
        onnx.write_bytes(source.onnx_bytes)
    spec = {
        "root": str(root.resolve()),
        "settings": settings.model_dump(),
        "source": {
            "artifact": source.artifact,
            "version": source.version,
            "stage": source.stage,
            "git_revision": source.git_revision,
            "metadata": source.metadata,
        },
        "model": str(model),
        "onnx": str(onnx) if onnx else None,
    }
    path = folder / "handover.json"
    path.write_text(json.dumps(spec), encoding="utf-8")
    return path


def worker_app() -> FastAPI:
    """The app of one uvicorn worker (`factory=True`), from the handover file `serve` wrote."""
    spec = json.loads(Path(os.environ[HANDOVER_ENV]).read_text(encoding="utf-8"))
    model_bytes = Path(spec["model"]).read_bytes()
    onnx_bytes = Path(spec["onnx"]).read_bytes() if spec["onnx"] else None
    source = ModelSource(**spec["source"], model_bytes=model_bytes, onnx_bytes=onnx_bytes)
    return served_app(Path(spec["root"]), source, ServeParams(**spec["settings"]))


def serve(
    root: Path, settings: ServeParams, stage: str | None, host: str, port: int, workers: int
) -> None:
    """Resolve the model for `stage` and run the app with uvicorn until interrupted: in
    this process, or in `workers` uvicorn worker processes sharing the port and the log."""
    import logging

    import uvicorn

    from .registry import resolve

    source = resolve(root, stage)
    logging.getLogger(__name__).info(
        "serving %s %s (stage %s, md5 %s) on http://%s:%d with %d worker%s%s",
        source.artifact,
        source.version,
        source.stage or "none: workspace model",
        source.md5,
        host,
        port,
        workers,
        "s" if workers > 1 else "",
        f", {API_KEY_HEADER} required" if os.environ.get(settings.api_key_env) else "",
    )
    if workers == 1:
        uvicorn.run(served_app(root, source, settings), host=host, port=port)
        return
    from uvicorn.supervisors import Multiprocess

    with tempfile.TemporaryDirectory(prefix="serve-") as folder:
        os.environ[HANDOVER_ENV] = str(hand_over(root, source, settings, Path(folder)))
        try:
            config = uvicorn.Config(
                f"{__name__}:worker_app", factory=True, workers=workers, host=host, port=port
            )
            Multiprocess(config, sockets=[tcp_socket(host, port)]).run()
        finally:
            del os.environ[HANDOVER_ENV]


def tcp_socket(host: str, port: int) -> socket.socket:
    """The workers' shared listening socket, bound here rather than by uvicorn: uvicorn's
    leaves the protocol number 0, so asyncio never sets TCP_NODELAY on the connections it
    accepts and every keep-alive answer waits ~40 ms for a delayed ACK (uvicorn issue
    3149; measured: 90 requests/s for a bare endpoint, 1,784 with this socket)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.set_inheritable(True)
    return sock
