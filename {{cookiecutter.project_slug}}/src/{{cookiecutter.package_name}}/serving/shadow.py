"""A challenger in the shadow: a second model scores a share of the requests off the
response path, and its answers go to a log of their own (serve.shadow_log), never to
the caller.

A request is chosen by a hash of its id (the share is serve.shadow_share over many
requests, and which request was chosen can be told again from its id). A chosen
request only queues its columns (a deque append); at most serve.log_queue_rows rows
wait, and a request past that bound is counted dropped, never made to wait. A
background thread wakes every BATCH_SECONDS, scores everything queued with one predict
(one call for many requests: the per-call overhead of the model is paid once), and
writes one record per row: {time, id, request_id, row, model_version, model_md5,
git_revision, prediction, probabilities, latency_ms}, joined to the champion's record
by `id`; latency_ms is the shadow's own compute time for the batch the row was in.
close() scores what is still queued, then closes the log (which writes or counts).
"""

from __future__ import annotations

import collections
import contextlib
import datetime as dt
import hashlib
import logging
import os
import threading
import time
from pathlib import Path
from typing import NamedTuple

from ..core.params import ServeParams
from ..tables import schema
from . import prediction_log, responses
from .prediction_log import PredictionLog
from .registry import ModelSource, load
from .runtime import choose

log = logging.getLogger(__name__)

# How often the thread scores what is queued: long enough that a busy server's requests
# are scored together, short enough that the queue rarely grows past a few hundred rows.
BATCH_SECONDS = 0.05
# The thread's niceness: when both cores are busy, the requests' threads run first.
NICENESS = 10


def chosen(request_id: str, share: float) -> bool:
    """Whether the request `request_id` is scored by the shadow: its hash, read as a
    number in [0, 1), is below `share` (uniform over ids, so the share holds over many)."""
    digest = hashlib.blake2b(request_id.encode("ascii"), digest_size=8).digest()
    return int.from_bytes(digest, "big") < share * 2**64


class _Offer(NamedTuple):
    """A chosen request, as queued (a tuple: the request path builds one)."""

    time: float
    request_id: str
    columns: dict[str, list]
    rows: int


class Shadow:
    """The shadow model of one server process, its queue, its thread and its log."""

    def __init__(
        self,
        source: ModelSource,
        runtime,
        log_: PredictionLog,
        settings: ServeParams,
        class_names: list[str] | None,
    ):
        """class_names: the probabilities' classes, None when the model gives none."""
        self.source, self.runtime, self.log = source, runtime, log_
        self.share, self.queue_rows = settings.shadow_share, settings.log_queue_rows
        self.class_names = class_names
        self._queue: collections.deque[_Offer] = collections.deque()
        self._counting = threading.Lock()
        self._counts = {"offered": 0, "scored": 0, "dropped": 0, "failed": 0, "waiting": 0}
        self._error: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="shadow", daemon=True)
        self._thread.start()

    def offer(self, request_id: str, columns: dict[str, list], rows: int) -> None:
        """Queue a request's columns when it is chosen; past the bound, count it dropped."""
        if not chosen(request_id, self.share):
            return
        with self._counting:
            self._counts["offered"] += rows
            if self._counts["waiting"] + rows > self.queue_rows:
                self._counts["dropped"] += rows
                return
            self._counts["waiting"] += rows
        self._queue.append(_Offer(time.time(), request_id, columns, rows))

    def status(self) -> dict:
        """GET /health's shadow: which model, the share, the row counts, its log's state."""
        with self._counting:
            counts = dict(self._counts)
        return {
            "version": self.source.version,
            "git_revision": self.source.git_revision,
            "model_md5": self.source.md5,
            "share": self.share,
            "rows_offered": counts["offered"],
            "rows_scored": counts["scored"],
            "rows_dropped": counts["dropped"],
            "rows_failed": counts["failed"],
            "rows_waiting": counts["waiting"],
            "error": self._error,
            "log": self.log.status(),
        }

    def close(self) -> None:
        """Stop the thread, score what is queued, close the log (idempotent)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        self.drain()
        self.log.close()

    def drain(self) -> None:
        """Score every queued request in one predict and log the rows."""
        batch = []
        while self._queue:
            batch.append(self._queue.popleft())
        if not batch:
            return
        rows = sum(offer.rows for offer in batch)
        try:
            self.log.write(self._records(batch))
        except Exception as exc:  # noqa: BLE001 - the shadow never stops the champion
            self._failed(rows, exc)
        else:
            with self._counting:
                self._counts["scored"] += rows
        with self._counting:
            self._counts["waiting"] -= rows

    def _run(self) -> None:
        # Linux gives each thread its own niceness; elsewhere it stays as it is.
        with contextlib.suppress(AttributeError, OSError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), NICENESS)
        while not self._stop.wait(BATCH_SECONDS):
            self.drain()

    def _failed(self, rows: int, exc: Exception) -> None:
        first = self._error is None
        self._error = f"{type(exc).__name__}: {exc}".splitlines()[0]
        with self._counting:
            self._counts["failed"] += rows
        if first:
            log.warning("shadow %s cannot score: %s", self.source.version, self._error)

    def _records(self, batch: list[_Offer]) -> list[dict]:
        """The log records of a batch of requests, scored with one predict."""
        columns = {
            name: [value for offer in batch for value in offer.columns[name]]
            for name in batch[0].columns
        }
        rows = sum(offer.rows for offer in batch)
        started = time.perf_counter()
        predicted, probabilities = self.runtime.predict(columns, rows)
        latency_ms = round((time.perf_counter() - started) * 1000, 3)
        predictions = responses.json_values(predicted)
        per_row = None
        if self.class_names is not None and probabilities is not None:
            names = self.class_names
            per_row = [
                dict(zip(names, p, strict=True)) for p in responses.json_values(probabilities)
            ]
        source, records, at = self.source, [], 0
        for offer in batch:
            when = dt.datetime.fromtimestamp(offer.time, dt.UTC).isoformat(timespec="milliseconds")
            for row in range(offer.rows):
                records.append(
                    {
                        "time": when,
                        "id": f"{offer.request_id}-{row}",
                        "request_id": offer.request_id,
                        "row": row,
                        "model_version": source.version,
                        "model_md5": source.md5,
                        "git_revision": source.git_revision,
                        "prediction": predictions[at],
                        "probabilities": per_row[at] if per_row else None,
                        "latency_ms": latency_ms,
                    }
                )
                at += 1
        return records


def start(root: Path, settings: ServeParams, source: ModelSource, models_dir: Path) -> Shadow:
    """The shadow of `source`: loaded as the champion is (load, the same runtime choice),
    its log opened now, so that a log it cannot write is a start-up error."""
    model = load(source, models_dir)
    roles = schema.roles_from_dict(source.metadata["features"]["roles"])
    task = source.metadata["task"]
    onnx_status = source.metadata.get("onnx", {}).get("status", "missing")
    runtime = choose(settings.runtime, model, source.onnx_bytes, onnx_status, roles, task)
    log_ = prediction_log.opened(root, settings, "shadow_log")
    names = None
    if task == "classification" and hasattr(model, "predict_proba"):
        names = [str(c) for c in model.classes_]
    return Shadow(source, runtime, log_, settings, names)
