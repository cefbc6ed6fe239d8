"""A server that follows its stage: a rollback (or a promotion) reaches it without a restart.

Each server process (each worker of `serve --workers N`) runs one daemon thread that
every serve.reload_seconds lists the repository's tags (`git for-each-ref refs/tags`, one
cheap git call) and, only when they changed since it last looked, asks GTO which version
the stage holds. A version other than the one served is loaded off the request path
(registry.from_version: the commit's files, the model from DVC's cache) and swapped in
whole: a request reads the served reference once, so it answers with one version from
start to end and requests in flight finish on the old one; the request path takes no
lock. The tags are the checkout's own: a server on another machine follows a rollback
once its tags are fetched (`git fetch --tags`).

A version whose request or answer schema differs from the served one's (other features
or classes) is not swapped in: one warning in the server log, and GET /health says a
restart is needed. A version that fails to load is one warning too; either way the
server keeps answering with its version.
"""

from __future__ import annotations

import logging
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path

from ..core.errors import UserError, first_line
from . import registry
from .registry import ModelSource

log = logging.getLogger(__name__)


class SchemaChanged(UserError):
    """A version the running server cannot answer with (its request or answer schema differs)."""


class Current:
    """The served reference (read once per request, replaced whole by a swap), and why a
    restart is needed when a version could not be swapped in."""

    __slots__ = ("served", "restart_needed")

    def __init__(self, served: object) -> None:
        self.served = served
        self.restart_needed: str | None = None


def tags(root: Path) -> str:
    """Every tag and what it points at: a changed listing is a changed stage, maybe."""
    done = subprocess.run(
        ["git", "for-each-ref", "--format=%(refname) %(objectname)", "refs/tags"],
        cwd=root,
        capture_output=True,
        text=True,
    )
    return done.stdout


class Follower:
    """The thread that keeps `current` serving the version GTO assigns to `stage`."""

    def __init__(
        self,
        root: Path,
        source: ModelSource,
        seconds: float,
        current: Current,
        swap: Callable[[ModelSource], None],
    ) -> None:
        self.root, self.artifact, self.stage = root, source.artifact, source.stage
        self.seconds, self.current, self.swap = seconds, current, swap
        self.version = source.version
        self.listed = tags(root)
        self.refused: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="follow-stage", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=self.seconds + 5)

    def _run(self) -> None:
        while not self._stop.wait(self.seconds):
            try:
                self.check()
            except Exception as exc:  # the thread must outlive any one look
                log.warning("following stage %s: %s", self.stage, first_line(exc))

    def check(self) -> str | None:
        """One look: the version swapped in, or None when nothing changed."""
        listed = tags(self.root)
        if listed == self.listed:
            return None
        self.listed = listed
        found = registry.assigned_version(self.root, self.artifact, self.stage)
        if found is None or found[0] == self.refused:
            return None
        if found[0] == self.version:  # back to the served version: nothing to restart for
            self.refused = self.current.restart_needed = None
            return None
        version, commit = found
        try:
            source = registry.from_version(self.root, self.artifact, version, self.stage, commit)
            self.swap(source)
        except UserError as exc:
            self.refused = version
            if isinstance(exc, SchemaChanged):
                self.current.restart_needed = str(exc)
            log.warning("stage %s holds %s, not swapped in: %s", self.stage, version, exc)
            return None
        log.info("stage %s: now serving %s (was %s)", self.stage, version, self.version)
        self.version, self.refused = version, None
        self.current.restart_needed = None
        return version
