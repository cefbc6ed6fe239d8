"""A challenger in the shadow: a second model scores a share of the requests in a process
of its own, and its answers go to a log of their own (serve.shadow_log), never to the
caller.

A request is chosen by a hash of its id (the share is serve.shadow_share over many
requests, and which request was chosen can be told again from its id). A chosen request
only hands its columns over: a put on a multiprocessing queue, whose feeder thread
pickles them into a pipe. At most serve.log_queue_rows rows wait (handed over, not yet
scored); a request past that bound is counted dropped, never made to wait.

The shadow process (one per server process, started and stopped with it, at a lower
priority) takes what is queued every BATCH_SECONDS, scores it with one predict (the
model's per-call overhead paid once for many requests), and writes one record per row:
{time, id, request_id, row, model_version, model_md5, git_revision, prediction,
probabilities, latency_ms}, joined to the champion's record by `id`; latency_ms is the
shadow's own compute time for the batch the row was in. Its predict, its records and
their JSON encoding hold its own interpreter lock, not the server's (in a thread of the
server, ~430 µs per 100-row request, they had lengthened the answers' p99 up to 2x).

The process sends its counts, its log's state and its log lines back through a pipe, read
by a thread of the server (/health, the server's log). A process that dies is reported
(/health's error, one warning), the rows it held and those chosen later count failed,
and the champion answers on. close() hands over an end mark: the process scores what is
queued, closes its log (which writes or counts) and exits; one that has not ended after
stop_seconds is killed and the rows it held are counted lost in one line.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import logging
import multiprocessing
import os
import queue
import signal
import threading
import time
from pathlib import Path
from typing import Any, NamedTuple

from ..core.errors import UserError
from ..core.params import ServeParams
from ..tables import schema
from . import prediction_log, responses
from .prediction_log import PredictionLog
from .registry import ModelSource, load
from .runtime import choose

log = logging.getLogger(__name__)

# How often the process scores what is queued: long enough that a busy server's requests
# are scored together, short enough that the queue rarely grows past a few hundred rows.
BATCH_SECONDS = 0.05
# The process's niceness: when both cores are busy, the server's requests run first.
NICENESS = 10
# How long start() waits for the process to import the project and load the model.
START_SECONDS = 120.0
# How often an idle process reports its log's state and looks whether its server lives.
IDLE_SECONDS = 0.5
# Forked from a fork server (a process of one thread, started once per server process,
# that imports this module and skops once): a fork of the server itself would copy its
# threads' locks (the prediction log's, logging's) in whatever state they were; and a
# second shadow (a test's) starts in a fork's time, not in an import of skops' 2 s.
_CONTEXT = multiprocessing.get_context("forkserver")
_CONTEXT.set_forkserver_preload([__name__, "skops.io"])


def chosen(request_id: str, share: float) -> bool:
    """Whether the request `request_id` is scored by the shadow: its hash, read as a
    number in [0, 1), is below `share` (uniform over ids, so the share holds over many)."""
    digest = hashlib.blake2b(request_id.encode("ascii"), digest_size=8).digest()
    return int.from_bytes(digest, "big") < share * 2**64


def stop_seconds(settings: ServeParams) -> float:
    """How long close() waits for the process: its last predict, then its log's close,
    which itself waits for a stalled disk at most stall_seconds."""
    return 2 * prediction_log.stall_seconds(settings.log_flush_seconds)


class Offer(NamedTuple):
    """A chosen request, as handed over (a tuple: the request path builds one)."""

    time: float
    request_id: str
    columns: dict[str, list]
    rows: int


class Scorer:
    """The shadow process's work: a batch of offers scored with one predict, one log
    record per row; the rows scored and failed counted, one warning when scoring fails."""

    def __init__(self, source: ModelSource, runtime, log_: PredictionLog, class_names):
        """class_names: the probabilities' classes, None when the model gives none."""
        self.source, self.runtime, self.log = source, runtime, log_
        self.class_names = class_names
        self.scored = self.failed = 0
        self.error: str | None = None

    def score(self, batch: list[Offer]) -> None:
        rows = sum(offer.rows for offer in batch)
        try:
            self.log.write(self._records(batch))
        except Exception as exc:  # noqa: BLE001 - the shadow never stops the champion
            first = self.error is None
            self.error = f"{type(exc).__name__}: {exc}".splitlines()[0]
            self.failed += rows
            if first:
                log.warning("shadow %s cannot score: %s", self.source.version, self.error)
        else:
            self.scored += rows

    def counts(self) -> tuple[int, int, str | None, dict]:
        """(rows scored, rows failed, the scoring error, the log's status())."""
        return self.scored, self.failed, self.error, self.log.status()

    def _records(self, batch: list[Offer]) -> list[dict]:
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


class _Reporter(logging.Handler):
    """The shadow process's end of the pipe: its counts and its log lines, sent to the
    server, which keeps the one and logs the other as its own."""

    def __init__(self, outbox, level: int) -> None:
        super().__init__(level)
        self.outbox = outbox
        self._last: tuple | None = None
        root = logging.getLogger()
        root.handlers = [self]
        root.setLevel(level)

    def emit(self, record: logging.LogRecord) -> None:
        self.send("log", record.name, record.levelno, record.getMessage())

    def send(self, *message: Any) -> None:
        # The main thread and the log's writer both log; a pipe takes one sender at a time.
        with self.lock, contextlib.suppress(OSError):  # the server is gone: nobody to tell
            self.outbox.send(message)

    def counts(self, scorer: Scorer) -> None:
        """The scorer's counts, when they changed since the last sent."""
        counts = scorer.counts()
        if counts != self._last:
            self.send("counts", *counts)
            self._last = counts


def _scorer(spec: dict) -> Scorer:
    """The shadow of spec's source: loaded as the champion is (load, the same runtime
    choice), its log opened now (one it cannot write: a UserError)."""
    source, settings = spec["source"], spec["settings"]
    model = load(source, spec["models_dir"])
    roles = schema.roles_from_dict(source.metadata["features"]["roles"])
    task = source.metadata["task"]
    onnx_status = source.metadata.get("onnx", {}).get("status", "missing")
    runtime = choose(settings.runtime, model, source.onnx_bytes, onnx_status, roles, task)
    log_ = prediction_log.opened(spec["root"], settings, "shadow_log")
    names = None
    if task == "classification" and hasattr(model, "predict_proba"):
        names = [str(c) for c in model.classes_]
    return Scorer(source, runtime, log_, names)


def run(spec: dict, inbox, outbox) -> None:
    """The shadow process: its model loaded and its log opened (or one line saying why
    not), then the offers scored until the end mark, or until its server is gone."""
    # Ctrl-C and a service manager's SIGTERM reach the whole process group: the server
    # ends this process (close), after it has scored what it holds.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    with contextlib.suppress(OSError):
        os.nice(NICENESS)
    report = _Reporter(outbox, spec["log_level"])
    try:
        scorer = _scorer(spec)
    except Exception as exc:  # noqa: BLE001 - told to the server, which refuses to start
        line = str(exc) if isinstance(exc, UserError) else f"{type(exc).__name__}: {exc}"
        report.send("refused", line.splitlines()[0])
        return
    report.send("ready")
    try:
        _score_until_end(scorer, inbox, report)
    finally:
        scorer.log.close()
        report.counts(scorer)


def _score_until_end(scorer: Scorer, inbox, report: _Reporter) -> None:
    while True:
        try:
            first = inbox.get(timeout=IDLE_SECONDS)
        except queue.Empty:
            report.counts(scorer)  # the log's writes since the last batch
            if not multiprocessing.parent_process().is_alive():
                return
            continue
        time.sleep(BATCH_SECONDS)  # a busy server's next requests join this batch
        batch = [first, *_queued(inbox)]
        offers = [offer for offer in batch if offer is not None]
        if offers:
            scorer.score(offers)
        report.counts(scorer)
        if len(offers) < len(batch):  # the end mark: the server closes
            return


def _queued(inbox) -> list:
    """What the queue holds now, without waiting."""
    taken = []
    with contextlib.suppress(queue.Empty):
        while True:
            taken.append(inbox.get_nowait())
    return taken


class _Link(NamedTuple):
    """The server's ends of a shadow process: the process, the queue of offers (to it),
    the pipe of reports (from it)."""

    process: Any
    inbox: Any
    outbox: Any


class Shadow:
    """The shadow of one server process, as the server holds it: the chosen requests
    handed to its process, their counts, and what the process reports back."""

    def __init__(self, source: ModelSource, settings: ServeParams, link: _Link):
        self.source, self.share = source, settings.shadow_share
        self.queue_rows = settings.log_queue_rows
        self.stop_seconds = stop_seconds(settings)
        self._link = link
        self._counting = threading.Lock()
        # handed: rows put on the queue; lost: rows chosen that no process will score.
        self._counts = {"offered": 0, "dropped": 0, "handed": 0, "lost": 0}
        # What the process reported last: Scorer.counts().
        self._theirs: tuple = (0, 0, None, {"rows_waiting": 0, "rows_lost": 0, "error": None})
        self._ended: str | None = None  # why the process ended early
        self._closing = False
        self._gone = threading.Event()  # the process's end of the pipe closed: it ended
        self._listener = threading.Thread(target=self._listen, name="shadow-reports", daemon=True)
        self._listener.start()

    @property
    def pid(self) -> int:
        """The shadow process's id."""
        return self._link.process.pid

    def offer(self, request_id: str, columns: dict[str, list], rows: int) -> None:
        """Hand a request's columns over when it is chosen; past the bound, count it
        dropped; with no process to score it, count it failed."""
        if not chosen(request_id, self.share):
            return
        with self._counting:
            counts = self._counts
            counts["offered"] += rows
            if self._ended or self._closing:
                counts["lost"] += rows
            elif self._waiting() + rows > self.queue_rows:
                counts["dropped"] += rows
            else:
                counts["handed"] += rows
                # Under the lock: nothing follows close()'s end mark.
                self._link.inbox.put(Offer(time.time(), request_id, columns, rows))

    def status(self) -> dict:
        """GET /health's shadow: which model, the share, the row counts, its log's state."""
        with self._counting:
            counts, (scored, failed, error, logged) = dict(self._counts), self._theirs
            waiting, ended = self._waiting(), self._ended
        return {
            "version": self.source.version,
            "git_revision": self.source.git_revision,
            "model_md5": self.source.md5,
            "share": self.share,
            "rows_offered": counts["offered"],
            "rows_scored": scored,
            "rows_dropped": counts["dropped"],
            "rows_failed": failed + counts["lost"],
            "rows_waiting": waiting,
            "error": ended or error,
            "log": logged,
        }

    def close(self) -> None:
        """Hand over the end mark and wait for the process to score what it holds and
        close its log; at most stop_seconds, then it is killed and the rows it held are
        counted lost in one line (idempotent)."""
        with self._counting:
            if self._closing:
                return
            self._closing = True
            if not self._ended:
                self._link.inbox.put(None)
        process = self._link.process
        # The end of its pipe (_gone) is the end of the process. Not process.is_alive():
        # that asks the fork server, which a SIGTERM to the process group ends at once,
        # and then a process still running counts as ended and is never killed.
        stalled = not self._gone.wait(self.stop_seconds)
        if stalled:  # it holds its pipe's end: it runs, and its pid is still its own
            os.kill(process.pid, signal.SIGKILL)
        self._listener.join()
        why = f"its process ended with exit code {process.exitcode}"
        if stalled:
            why = f"its process took over {self.stop_seconds:g} s: stalled?"
        # Offers a killed or dead process never took are counted: the queue's feeder
        # thread must not hold the server's exit trying to hand them over.
        self._link.inbox.cancel_join_thread()
        self._link.inbox.close()
        lost = self._forget_waiting()
        if lost:
            log.warning(
                "shadow %s: %d rows not scored at shutdown (%s)", self.source.version, lost, why
            )

    def _waiting(self) -> int:
        """Rows handed over and not yet scored or failed (under _counting)."""
        scored, failed = self._theirs[:2]
        return self._counts["handed"] - scored - failed

    def _forget_waiting(self) -> int:
        """Count the rows the process holds lost (it has ended); how many."""
        with self._counting:
            lost = self._waiting()
            self._counts["lost"] += lost
            self._counts["handed"] -= lost
        return lost

    def _listen(self) -> None:
        """The reports of the process, until it ends (the pipe's end)."""
        while True:
            try:
                kind, *body = self._link.outbox.recv()
            except (EOFError, OSError):
                self._gone.set()
                break
            if kind == "log":
                name, level, text = body
                logging.getLogger(name).log(level, "%s", text)
            elif kind == "counts":
                with self._counting:
                    self._theirs = tuple(body)
        self._link.process.join(1)  # its exit code
        with self._counting:
            if self._closing:
                return
            self._ended = (
                f"the shadow process ended (exit code {self._link.process.exitcode}): "
                "restart the server to shadow again"
            )
        lost = self._forget_waiting()
        log.warning(
            "shadow %s: %s; %d rows it held and the rows chosen from now on count failed",
            self.source.version,
            self._ended,
            lost,
        )


def start(root: Path, settings: ServeParams, source: ModelSource, models_dir: Path) -> Shadow:
    """The shadow of `source` in a process of its own, loaded as the champion is (load,
    the same runtime choice) and its log opened there; waited for, so that a model it
    cannot load or a log it cannot write is a start-up error (one line)."""
    spec = {
        "root": root,
        "settings": settings,
        "source": source,
        "models_dir": models_dir,
        "log_level": logging.getLogger().getEffectiveLevel(),
    }
    inbox = _CONTEXT.Queue()
    outbox, theirs = _CONTEXT.Pipe(duplex=False)
    process = _CONTEXT.Process(
        target=run, args=(spec, inbox, theirs), name=f"shadow of {os.getpid()}", daemon=True
    )
    process.start()
    theirs.close()  # the process holds its own: the pipe ends when the process does
    link = _Link(process, inbox, outbox)
    try:
        _await_ready(link)
    except BaseException:
        process.kill()
        process.join()
        inbox.cancel_join_thread()
        raise
    return Shadow(source, settings, link)


def _await_ready(link: _Link) -> None:
    """Wait for the process's "ready" (its log lines meanwhile logged here); its
    refusal, an early end or START_SECONDS without word: a UserError."""
    deadline = time.monotonic() + START_SECONDS
    while link.outbox.poll(max(0.0, deadline - time.monotonic())):
        try:
            kind, *body = link.outbox.recv()
        except EOFError:
            link.process.join()
            raise UserError(
                f"the shadow process ended while loading its model (exit code "
                f"{link.process.exitcode}): see the lines above"
            ) from None
        if kind == "ready":
            return
        if kind == "refused":
            raise UserError(body[0])
        if kind == "log":
            name, level, text = body
            logging.getLogger(name).log(level, "%s", text)
    raise UserError(
        f"the shadow process did not load its model within {START_SECONDS:g} s: is the "
        "machine swapping? serve without --shadow meanwhile"
    )
