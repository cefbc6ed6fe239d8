"""The HTTP API (FastAPI): GET /health, GET /metadata, POST /predict (V1 inference protocol),
POST /feedback (labels that arrive later, for the rows' ids the answers gave).

No `from __future__ import annotations` here: FastAPI reads the request and answer models
from the endpoint's annotations at runtime, and both are built at startup from the
features. GET /openapi.json declares every answer, errors included.
"""

import contextlib
import copy
import dataclasses
import datetime as dt
import errno
import gc
import json
import logging
import os
import signal
import socket
import tempfile
import threading
import time
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

from ..core import paths
from ..core.errors import UserError
from ..core.params import ServeParams
from ..modeling import derivation
from ..tables import schema
from . import prediction_log, responses
from . import request as request_schema
from .body_limit import BodyLimit
from .exposure import API_KEY_HEADER, add_docs, exposure_warning, key_matches
from .follow import Current, Follower, SchemaChanged
from .prediction_log import IdIndex, PredictionLog
from .registry import ModelSource, load
from .runtime import choose
from .shadow import Shadow, start


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
    unknown = request_schema.unknown_columns(errors)
    if unknown:
        return unknown
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    what = request_schema.out_of_range(first) or first["msg"]
    return f"{_where(first['loc'])}: {what}{more}"


async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
    """A 422 saying what is wrong with the request, first error first."""
    # Without the offending input: it may be huge (1001 rows) or not JSON (NaN).
    errors = jsonable_encoder(
        [{k: v for k, v in e.items() if k not in ("input", "url")} for e in _one_per_field(exc)]
    )
    return JSONResponse({"error": _message(errors), "detail": errors}, status_code=422)


def _lifespan(
    prediction_log: PredictionLog | None, follower: Follower | None, shadow: Shadow | None
):
    """The app's startup and shutdown: the follower of the stage started in each server
    process (a worker's own thread) and stopped; the shadow closed, scoring what it still
    holds; `prediction_log` closed at shutdown, writing the rows still queued (on a full
    disk: one warning with the count lost, no exception)."""

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI):
        # The millions of objects loaded so far (scikit-learn, pandas, the model) live as
        # long as the server: out of the collector's sight, a full collection no longer
        # walks them, which had stalled answers by tens of milliseconds (p99).
        gc.freeze()
        if follower is not None:
            follower.start()
        yield
        if follower is not None:
            follower.stop()
        if shadow is not None:
            shadow.close()
        if prediction_log is not None:
            prediction_log.close()

    return lifespan


def _key_guard(api_key: str | None) -> tuple[list, dict]:
    """(the dependencies that check the X-API-Key header, the 401 answer it adds), or
    nothing without a key: declared only when a key is set, so that the schema says what
    the server enforces."""
    if not api_key:
        return [], {}
    header = APIKeyHeader(name=API_KEY_HEADER, auto_error=False)
    matches = key_matches(api_key)

    def check_key(given: str | None = Security(header)) -> None:
        if not matches(given):
            raise HTTPException(401, f"missing or wrong {API_KEY_HEADER} header")

    return [Depends(check_key)], {
        401: {"model": responses.Problem, "description": "No or wrong key"}
    }


BODY_ANSWERS = {
    400: {"model": responses.Problem, "description": "Body is not JSON text"},
    422: {"model": responses.Invalid, "description": "Invalid request"},
}


def _metadata(
    source: ModelSource, runtime: str, classes: list, max_rows: int, max_body_bytes: int
) -> responses.Metadata:
    """GET /metadata's answer: what is served, what it scored, what it takes."""
    meta = source.metadata
    return responses.Metadata(
        artifact=source.artifact,
        model=meta["model"],
        version=source.version,
        stage=source.stage,
        git_revision=source.git_revision,
        model_md5=source.md5,
        manifest_md5=source.manifest_md5,
        runtime=runtime,
        task=meta["task"],
        data=meta["data"],
        metrics=meta["metrics"],
        hyperparameters=meta["hyperparameters"],
        features={
            "numeric": request_schema.input_roles(meta["features"])["numeric"],
            "categorical": meta["features"]["categorical"],
            "non_features": request_schema.non_features(meta["features"]),
            "derived": derivation.recorded(meta["features"])[1],
        },
        classes=classes or None,
        max_rows=max_rows,
        max_body_bytes=max_body_bytes,
        unseen_category_rule="predicted, not refused: a one-hot encoded column gives "
        "it all zeros, a target-encoded one the overall training mean; reported in the "
        "response's warnings",
    )


class Predictor:
    """POST /predict's work: the answer to validated rows, each logged when the server
    keeps a prediction log, and offered to the shadow when it has one."""

    # create_app sets it; a swap (swapped) carries it over to the next version.
    shadow: Shadow | None = None

    def __init__(
        self,
        source: ModelSource,
        runtime,
        classes: list,
        with_probabilities: bool,
        prediction_log: PredictionLog | None,
    ):
        self.prediction_log = prediction_log
        self.with_probabilities = with_probabilities
        self._answer_with(source, runtime, classes)

    def _answer_with(self, source: ModelSource, runtime, classes: list) -> None:
        """What depends on the version answered: its source, runtime and features."""
        self.source, self.runtime = source, runtime
        self.features = source.metadata["features"]
        self.roles = schema.roles_from_dict(self.features["roles"])
        self.inputs = request_schema.input_roles(self.features)
        self.task = source.metadata["task"]
        self.class_names = [str(c) for c in classes]
        self.known = {c: frozenset(v) for c, v in self.features["categorical"].items()}
        self.missing = request_schema.missing_values(self.features)
        self.served = {"artifact": source.artifact, "version": source.version}
        # A row may carry the target, a label the caller knows: the log keeps it, and
        # `loop` scores the served model on such rows and makes them a batch.
        self.target = self.roles.target
        # data.groups columns that are no feature: a row may carry them (non_features), and
        # the log keeps them, so that monitor measures the live figures per group.
        self.groups = [c for c in self.roles.groups if c not in self.roles.features]

    def swapped(self, source: ModelSource, runtime, classes: list) -> "Predictor":
        """A copy answering with another version (the log, and whatever else was set on
        this one, shared): the follower swaps it in (follow.py)."""
        new = copy.copy(self)
        new._answer_with(source, runtime, classes)
        return new

    def answer(self, instances: list) -> dict[str, Any]:
        """Predictions (and probabilities) of `instances`, with warnings of unseen categories."""
        # Column by column from the validated rows: what both runtimes take.
        columns = request_schema.columns(instances, self.inputs, self.missing)
        columns = request_schema.with_derived(columns, self.features)
        times = request_schema.event_times(instances, self.roles.time)
        predicted, probabilities = self.runtime.predict(columns, len(instances))
        _refuse_non_finite(predicted if self.task == "regression" else probabilities)
        predictions = responses.json_values(predicted)
        answer: dict[str, Any] = {"predictions": predictions}
        per_row = None
        if self.with_probabilities:
            names = self.class_names
            per_row = [
                dict(zip(names, p, strict=True)) for p in responses.json_values(probabilities)
            ]
            answer["probabilities"] = per_row
        unseen = request_schema.unseen_categories(columns, self.known)
        answer["warnings"] = [message for _, message in unseen]
        answer["model"] = self.served
        # One id per row, the key that labels arriving later (feedback) are joined on.
        request_id = uuid.uuid4().hex
        answer["ids"] = prediction_log.row_ids(request_id, len(instances))
        if self.shadow is not None:  # a queue append at most: scored off this path
            self.shadow.offer(request_id, columns, len(instances))
        if self.prediction_log is not None:
            given = {
                "event_time": times,
                "label": [getattr(r, self.target) for r in instances],
                "groups": [{c: getattr(r, c, None) for c in self.groups} for r in instances]
                if self.groups
                else None,
            }
            self.log(request_id, columns, given, (predictions, per_row), unseen)
        return answer

    def log(
        self,
        request_id: str,
        columns: dict,
        given: dict[str, list | None],
        outputs: tuple[list, list | None],
        unseen: list,
    ) -> None:
        """One prediction log row per input row, under one request id, each with its row
        id (the answer's `ids`): `time` when it arrived, `event_time` the row's own time
        (data.time) when the request gave one, `label` the target when the row carried it
        (a JSON value as sent; no key when it did not), `groups` the data.groups columns
        that are no feature, as sent (no key when every group is a feature: `inputs` has
        it). given: per log key, each row's value, or None when no row gave one. outputs:
        the predictions, the probabilities."""
        times, labels = given["event_time"], given["label"]
        predictions, per_row = outputs
        when = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")
        values = zip(*columns.values(), strict=True)
        rows = [dict(zip(self.roles.features, row, strict=True)) for row in values]
        row_warnings: dict[int, list[str]] = {}
        for i, message in unseen:
            row_warnings.setdefault(i, []).append(message)
        records = [
            {
                "time": when,
                "event_time": times[i] if times else None,
                "request_id": request_id,
                "row": i,
                "id": f"{request_id}-{i}",
                "model_version": self.source.version,
                "model_md5": self.source.md5,
                "inputs": row,
                "prediction": predictions[i],
                "probabilities": per_row[i] if per_row else None,
                "warnings": row_warnings.get(i, []),
            }
            for i, row in enumerate(rows)
        ]
        for record, label in zip(records, labels, strict=True):
            if label is not None:
                record["label"] = label
        if given["groups"]:
            for record, values in zip(records, given["groups"], strict=True):
                record["groups"] = values
        self.prediction_log.write(records)


class Feedback:
    """POST /feedback's work: labels for logged rows (this server's or another's of the
    project), appended to `path` (serve.feedback_log) only when every id is a logged
    row's, or with skip_unknown the known ones. One request at a time per process: each
    looks at what the logs gained since the last (IdIndex), not at the whole logs."""

    def __init__(self, path: Path, log: PredictionLog, task: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path, self.log, self.task = path, log, task
        # A stalled disk holds the log's writer and its lock: a request waits for them at
        # most as long as close() waits, then is a 503 (its thread is never held for good).
        self.wait = prediction_log.stall_seconds(log.flush_seconds)
        self.logged = IdIndex(log.path, prediction_log.logged_id)
        self.labelled = IdIndex(path, prediction_log.labelled_id)
        self.busy = threading.Lock()

    def store(self, labels: list, skip_unknown: bool) -> Response:
        pairs = request_schema.label_pairs(labels, self.task)
        deadline = time.monotonic() + self.wait
        if not self.busy.acquire(timeout=self.wait):
            raise HTTPException(503, "earlier labels are still being stored (a stalled disk?)")
        try:
            return self._store(pairs, skip_unknown, deadline)
        except OSError as exc:  # a full disk, or Stalled: a writer holds a log's lock
            raise HTTPException(
                503, f"labels not stored ({exc.strerror or exc}): nothing stored, send again"
            ) from None
        finally:
            self.busy.release()

    def _store(self, pairs: list[tuple], skip_unknown: bool, deadline: float) -> Response:
        # The rows answered a moment ago are still queued: written first, so that a label
        # for one is known. On a full disk they stay queued, their ids unknown for now.
        with contextlib.suppress(OSError):
            self.log.flush(wait=max(0.0, deadline - time.monotonic()))
        self.logged.refresh(max(0.0, deadline - time.monotonic()))
        known, unknown = prediction_log.split_known(pairs, self.logged)
        if unknown and not skip_unknown:
            return _unknown(pairs, unknown)
        self.labelled.refresh(max(0.0, deadline - time.monotonic()))
        replaced = sum(id_ in self.labelled for id_ in known)
        if known:
            when = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")
            prediction_log.append_labels(self.path, list(known.items()), when)
        stored = {"stored": len(known), "replaced": replaced, "unknown": len(unknown)}
        return Response(orjson.dumps(stored), media_type="application/json")


def _unknown(pairs: list[tuple[str, object]], unknown: list[str]) -> JSONResponse:
    """The 422 for ids in no prediction log: one line, and each such label's place."""
    line = prediction_log.unknown_line(unknown, len({id_ for id_, _ in pairs}))
    missing = set(unknown)
    detail = [
        {"type": "unknown_id", "loc": ["body", "labels", i, "id"], "msg": "no logged row's id"}
        for i, (id_, _) in enumerate(pairs)
        if id_ in missing
    ]
    error = (
        f"{line}: nothing stored; send ids a POST /predict answer gave (`ids`), or set "
        "skip_unknown to store the known ones"
    )
    return JSONResponse({"error": error, "detail": detail}, status_code=422)


FEEDBACK_ANSWERS = {
    **BODY_ANSWERS,
    503: {"model": responses.Problem, "description": "Labels not stored: a failed or stalled disk"},
}


def _bare_app(
    source: ModelSource,
    max_body_bytes: int,
    prediction_log: PredictionLog | None,
    follower: Follower | None,
    shadow: Shadow | None,
) -> FastAPI:
    """The app without its endpoints: its title, body limit, error answers and lifespan.
    Without FastAPI's /openapi.json, /docs and /redoc: exposure.add_docs adds its own."""
    app = FastAPI(
        lifespan=_lifespan(prediction_log, follower, shadow),
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
        title=f"{source.artifact} {source.version}",
        description=(
            f"{source.metadata['task']} model `{source.metadata['model']}`; see GET /metadata"
        ),
        responses={413: {"model": responses.Problem, "description": "Request body too large"}},
    )
    app.add_middleware(BodyLimit, max_bytes=max_body_bytes)
    app.add_exception_handler(RequestValidationError, _invalid)
    return app


@dataclasses.dataclass(frozen=True)
class Served:
    """What one version serves, swapped whole (follow.py): its source, the predictor that
    answers with it, GET /metadata's answer, and the shape of the API it answers (the
    columns a request carries, the task, the classes, whether it gives probabilities)."""

    source: ModelSource
    predictor: Predictor
    about: responses.Metadata
    shape: dict


def serving(
    source: ModelSource,
    settings: ServeParams,
    models_dir: Path,
    prediction_log: PredictionLog | None,
    predictor: Predictor | None = None,
) -> Served:
    """`source` loaded and checked, ready to answer; predictor: the one it replaces."""
    model = load(source, models_dir)
    features, task = source.metadata["features"], source.metadata["task"]
    roles = schema.roles_from_dict(features["roles"])
    derivation.refuse_changed(features)
    classes = [c.item() if hasattr(c, "item") else c for c in getattr(model, "classes_", [])]
    with_probabilities = task == "classification" and hasattr(model, "predict_proba")
    onnx_status = source.metadata.get("onnx", {}).get("status", "missing")
    runtime = choose(settings.runtime, model, source.onnx_bytes, onnx_status, roles, task)
    max_body_bytes = settings.max_body_bytes or request_schema.body_limit(
        features, settings.max_rows
    )
    about = _metadata(source, runtime.name, classes, settings.max_rows, max_body_bytes)
    if predictor is None:
        predictor = Predictor(source, runtime, classes, with_probabilities, prediction_log)
    else:
        predictor = predictor.swapped(source, runtime, classes)
    shape = {
        "inputs": request_schema.input_roles(features),
        "non_features": request_schema.non_features(features),
        "task": task,
        "classes": classes,
        "probabilities": with_probabilities,
    }
    return Served(source, predictor, about, shape)


def _swapper(current: Current, settings: ServeParams, models_dir: Path):
    """The follower's swap: a version loaded beside the served one, then put in its place
    with one assignment (follow.py). The request and answer models stay the first
    version's: a version of another shape (other columns, task, classes) is refused, one
    of other training ranges answers within the first one's (generous) number bounds and
    body limit."""

    def swap(source: ModelSource) -> None:
        served = current.served
        new = serving(source, settings, models_dir, None, served.predictor)
        changed = [key for key, value in new.shape.items() if served.shape[key] != value]
        if changed:
            raise SchemaChanged(
                f"its API differs ({', '.join(changed)}): restart the server to serve "
                f"{source.version} (it serves {served.source.version} meanwhile)"
            )
        limit = {"max_body_bytes": served.about.max_body_bytes}
        current.served = dataclasses.replace(new, about=new.about.model_copy(update=limit))

    return swap


def create_app(
    source: ModelSource,
    settings: ServeParams,
    api_key: str | None = None,
    prediction_log: PredictionLog | None = None,
    models_dir: Path = paths.MODEL_CONF,
    *,
    root: Path | None = None,
    shadow: Shadow | None = None,
    feedback_log: Path | None = None,
) -> FastAPI:
    """An app serving `source`; with `api_key`, /metadata, /predict and /feedback need it,
    and /openapi.json leaves the training facts out for a client without it. The app
    closes `prediction_log` at shutdown (its lifespan), writing the rows still queued.
    models_dir: the model files, whose reviewed skops types load() trusts. feedback_log:
    where POST /feedback appends labels (serve.feedback_log); no such endpoint without it
    or without a prediction log (no ids to label). root: the
    project whose GTO tags the app follows (source's stage, every serve.reload_seconds;
    follow.py); None, a workspace model or reload_seconds null: it keeps `source`.
    shadow: a second model scoring a share of the requests off the response path."""
    current = Current(serving(source, settings, models_dir, prediction_log))
    first = current.served
    first.predictor.shadow = shadow
    follower = None
    if root is not None and source.stage and settings.reload_seconds:
        swap = _swapper(current, settings, models_dir)
        follower = Follower(root, source, settings.reload_seconds, current, swap)
    app = _bare_app(source, first.about.max_body_bytes, prediction_log, follower, shadow)
    app.state.current, app.state.follower = current, follower
    features, shape = source.metadata["features"], first.shape
    add_docs(app, api_key, shape["inputs"])
    guard, key_answers = _key_guard(api_key)
    PredictRequest = request_schema.request_model(features, settings.max_rows)  # noqa: N806
    Prediction = responses.prediction_model(  # noqa: N806
        shape["task"], shape["classes"], shape["probabilities"]
    )

    @app.get("/health")
    def health() -> responses.Health:
        logged = None if prediction_log is None else prediction_log.status()
        return responses.Health(
            status="ok",
            version=current.served.source.version,
            worker=os.getpid(),
            prediction_log=logged,
            shadow=None if shadow is None else shadow.status(),
            restart_needed=current.restart_needed,
        )

    @app.get("/metadata", dependencies=guard, responses=key_answers)
    def metadata() -> responses.Metadata:
        return current.served.about

    @app.post(
        "/predict",
        dependencies=guard,
        responses={**key_answers, **BODY_ANSWERS},
        response_model=Prediction,
    )
    def predict(body: PredictRequest) -> Response:
        # The answer is built to the declared schema (schemathesis checks it): encoded here
        # (orjson), FastAPI spends no time validating it again. One read of the served
        # reference: the whole request answers with one version, whatever a swap does.
        predictor = current.served.predictor
        return Response(
            orjson.dumps(predictor.answer(body.instances)), media_type="application/json"
        )

    if feedback_log is not None and prediction_log is not None:
        task = shape["task"]
        FeedbackRequest = request_schema.feedback_model(task, settings.max_rows)  # noqa: N806
        feedback = Feedback(feedback_log, prediction_log, task)

        @app.post(
            "/feedback",
            dependencies=guard,
            responses={**key_answers, **FEEDBACK_ANSWERS},
            response_model=responses.Stored,
        )
        def store_feedback(body: FeedbackRequest) -> Response:
            return feedback.store(body.labels, body.skip_unknown)

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


def served_app(
    root: Path, source: ModelSource, settings: ServeParams, shadow: ModelSource | None = None
) -> FastAPI:
    """The app with its API key (from the environment), its prediction log and, given a
    shadow's model, that model scoring a share of the requests (shadow.py)."""
    api_key = os.environ.get(settings.api_key_env) or None
    log = open_log(root, settings)
    models_dir = root / paths.MODEL_CONF
    second = None if shadow is None else start(root, settings, shadow, models_dir)
    return create_app(
        source,
        settings,
        api_key,
        log,
        models_dir,
        root=root,
        shadow=second,
        feedback_log=root / settings.feedback_log,
    )


def open_log(root: Path, settings: ServeParams) -> PredictionLog:
    """The prediction log (serve.prediction_log), writable or a one-line start-up error."""
    return prediction_log.opened(root, settings, "prediction_log")


def hand_over(
    root: Path,
    source: ModelSource,
    settings: ServeParams,
    folder: Path,
    shadow: ModelSource | None = None,
) -> Path:
    """Write what a worker needs into `folder`: the model bytes once, the rest as JSON.
    Workers load the model `serve` resolved, not the stage again (it may move meanwhile),
    and the shadow's it resolved, each worker scoring its own share of the requests."""
    spec = {
        "root": str(root.resolve()),
        "settings": settings.model_dump(),
        "source": _handed(source, folder / "model"),
        "shadow": None if shadow is None else _handed(shadow, folder / "shadow"),
    }
    path = folder / "handover.json"
    path.write_text(json.dumps(spec), encoding="utf-8")
    return path


def _handed(source: ModelSource, stem: Path) -> dict:
    """A model's files written at `stem`.skops (and .onnx), and its facts, as JSON."""
    model = stem.with_suffix(".skops")
    model.write_bytes(source.model_bytes)
    onnx = None
    if source.onnx_bytes is not None:
        onnx = stem.with_suffix(".onnx")
        onnx.write_bytes(source.onnx_bytes)
    return {
        "artifact": source.artifact,
        "version": source.version,
        "stage": source.stage,
        "git_revision": source.git_revision,
        "metadata": source.metadata,
        "manifest_md5": source.manifest_md5,
        "model": str(model),
        "onnx": str(onnx) if onnx else None,
    }


def _received(spec: dict) -> ModelSource:
    facts = {k: v for k, v in spec.items() if k not in ("model", "onnx")}
    onnx_bytes = Path(spec["onnx"]).read_bytes() if spec["onnx"] else None
    model_bytes = Path(spec["model"]).read_bytes()
    return ModelSource(**facts, model_bytes=model_bytes, onnx_bytes=onnx_bytes)


def worker_app() -> FastAPI:
    """The app of one uvicorn worker (`factory=True`), from the handover file `serve` wrote."""
    spec = json.loads(Path(os.environ[HANDOVER_ENV]).read_text(encoding="utf-8"))
    shadow = None if spec["shadow"] is None else _received(spec["shadow"])
    settings = ServeParams(**spec["settings"])
    return served_app(Path(spec["root"]), _received(spec["source"]), settings, shadow)


def serve(
    root: Path,
    settings: ServeParams,
    stage: str | None,
    *,
    no_api_key: bool = False,
    stage_required: bool = False,
) -> None:
    """Serve the model of `stage` on settings.host and settings.port until interrupted: in
    this process, or in settings.workers uvicorn worker processes sharing the port and the
    log. Each start-up failure is a UserError (one line), met before the server starts:
    a reachable host without a key, a port taken or not this machine's, no model, no
    version in a stage asked for by name (stage_required), a log it cannot write, a
    shadow (settings.shadow) it cannot find or that could not score the same rows."""
    import uvicorn

    from .registry import resolve, shadow

    log = logging.getLogger(__name__)
    api_key = os.environ.get(settings.api_key_env) or None
    with contextlib.closing(tcp_socket(settings.host, settings.port)) as sock:
        warning = exposure_warning(
            settings.host, api_key, no_api_key=no_api_key, key_env=settings.api_key_env
        )
        if stage_required:
            _refuse_empty_stage(root, stage)
        source = resolve(root, stage)
        second = shadow(root, settings.shadow, source) if settings.shadow else None
        # Built before anything is announced: a model or log that fails is the one line.
        # With workers, a trial here: each would fail alike, with uvicorn's traceback.
        prediction_log = open_log(root, settings)
        models_dir = root / paths.MODEL_CONF
        shadowed = None if second is None else start(root, settings, second, models_dir)
        app = create_app(
            source,
            settings,
            api_key,
            prediction_log,
            models_dir,
            root=root,
            shadow=shadowed,
            feedback_log=root / settings.feedback_log,
        )
        if warning:
            log.warning(warning)
        log.info(_serving_line(source, settings, api_key))
        if second is not None:
            log.info(_shadow_line(second, settings))
        if settings.workers == 1:
            # uvicorn stops gracefully on SIGTERM (the app's shutdown writes or counts the
            # logged rows), then raises it again, which would end the process with status
            # 143; a planned stop exits 0.
            signal.signal(signal.SIGTERM, _exit_zero)
            uvicorn.Server(uvicorn.Config(app)).run(sockets=[sock])
            return
        prediction_log.close()
        if shadowed is not None:
            shadowed.close()
        del app
        gc.collect()
        _run_workers(root, (source, second), settings, sock)


def _exit_zero(*_: object) -> None:
    raise SystemExit(0)


def _refuse_empty_stage(root: Path, stage: str) -> None:
    """A stage asked for by name (--stage) that holds no version: refused, where the
    configured serve.stage falls back to the workspace model."""
    from .registry import artifact_name, assigned_version

    artifact = artifact_name(root)
    if assigned_version(root, artifact, stage) is None:
        raise UserError(
            f"no version of {artifact} is assigned to stage {stage!r}: assign one (`gto "
            f"assign {artifact} --version vX.Y.Z --stage {stage}`), or serve the workspace "
            "model with --workspace"
        )


def _shadow_line(second: ModelSource, settings: ServeParams) -> str:
    revision = (second.git_revision or "")[:12]
    return (
        f"shadow {second.version} (commit {revision}, md5 {second.md5}) scores "
        f"{settings.shadow_share * 100:.0f}% of the requests off the response path into "
        f"{settings.shadow_log}"
    )


def _serving_line(source: ModelSource, settings: ServeParams, api_key: str | None) -> str:
    workers = settings.workers
    return (
        f"serving {source.artifact} {source.version} (stage "
        f"{source.stage or 'none: workspace model'}, md5 {source.md5}) on "
        f"http://{settings.host}:{settings.port} with {workers} worker"
        f"{'s' if workers > 1 else ''}{f', {API_KEY_HEADER} required' if api_key else ''}"
    )


def _run_workers(
    root: Path,
    sources: tuple[ModelSource, ModelSource | None],
    settings: ServeParams,
    sock: socket.socket,
) -> None:
    """settings.workers uvicorn workers on `sock`, each building the app from what this
    process hands over. sources: the model served, the shadow's (or None)."""
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    class Supervisor(Multiprocess):
        """uvicorn's supervisor, which returns after Ctrl-C as after SIGTERM; this one
        notes it, so that `serve` then ends as an interrupted command does."""

        interrupted = False

        def handle_int(self) -> None:
            self.interrupted = True
            super().handle_int()

    with tempfile.TemporaryDirectory(prefix="serve-") as folder:
        handover = hand_over(root, sources[0], settings, Path(folder), sources[1])
        os.environ[HANDOVER_ENV] = str(handover)
        try:
            config = uvicorn.Config(
                f"{__name__}:worker_app", factory=True, workers=settings.workers
            )
            supervisor = Supervisor(config, sockets=[sock])
            supervisor.run()
        finally:
            del os.environ[HANDOVER_ENV]
    if supervisor.interrupted:
        raise KeyboardInterrupt


def tcp_socket(host: str, port: int) -> socket.socket:
    """The listening socket, bound here rather than by uvicorn: a port taken, or a host
    that does not resolve or is not this machine's, is one line before the model loads.
    And uvicorn's own leaves the protocol number 0, so asyncio never sets TCP_NODELAY on
    the connections it accepts and every keep-alive answer waits ~40 ms for a delayed
    ACK (uvicorn issue 3149; measured: 90 requests/s for a bare endpoint, 1,784 with
    this socket)."""
    try:
        family, *_, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror as exc:
        raise UserError(
            f"host {host!r} does not resolve ({exc.strerror}): give an address (127.0.0.1 "
            "for this machine only) or a name this machine resolves"
        ) from None
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise UserError(_bind_problem(host, port, exc)) from None
    sock.set_inheritable(True)
    return sock


def _bind_problem(host: str, port: int, exc: OSError) -> str:
    if exc.errno == errno.EADDRINUSE:
        return (
            f"port {port} on {host} is in use (another server?): stop it, or pick another "
            "port with --port (or serve.port)"
        )
    if exc.errno == errno.EADDRNOTAVAIL:
        return (
            f"{host} is no address of this machine: give one of its own (127.0.0.1 for "
            "this machine only, 0.0.0.0 for every interface) with --host (or serve.host)"
        )
    return f"cannot listen on {host} port {port} ({exc.strerror}): pick another with --port"
