"""The dask engine's cluster: a client of `compute.scheduler`, or of a LocalCluster of
`compute.n_jobs` worker processes started for one stage and stopped after it.

Worker processes, one thread each: the stages' pandas and hashing code holds the GIL
for much of its work, and a process per core keeps one task's memory apart from the
others'. distributed is imported here only, so the local engine never loads it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from . import progress
from .errors import DataError, first_line
from .params import ComputeParams

if TYPE_CHECKING:
    from distributed import Client

log = logging.getLogger(__name__)

# How long a stage waits for compute.scheduler: distributed retries a refused connection
# until then (a scheduler that is still starting comes up in seconds).
CONNECT_TIMEOUT = "30s"


def report_workers(connected: Client) -> None:
    """One progress line with each worker process's peak RSS, in worker-address order:
    the stage's `done` line gives this process's, and on the dask engine the table's
    rows are in the workers. A worker started before the stage (compute.scheduler)
    reports its peak since it started."""
    peaks = connected.run(progress.peak_rss_mb)
    values = ",".join(str(peaks[worker]) for worker in sorted(peaks))
    progress.report("dask workers", workers=len(peaks), peak_rss_mb=values)


@contextmanager
def client(compute: ComputeParams) -> Iterator[Client]:
    """A distributed Client for the stage; a LocalCluster it started is closed on exit."""
    from distributed import Client, LocalCluster

    # distributed logs each connection and worker at INFO: the stage's own progress lines
    # would drown. Its warnings (a worker lost, memory pressure) still show.
    logging.getLogger("distributed").setLevel(logging.WARNING)
    if compute.scheduler:
        try:
            connected = Client(compute.scheduler, timeout=CONNECT_TIMEOUT)
        except (OSError, TimeoutError) as exc:
            raise DataError(
                f"cannot reach the Dask scheduler {compute.scheduler!r} ({first_line(exc)}): "
                "start it (`dask scheduler`), fix compute.scheduler, or set it to null for a "
                "cluster on this machine"
            ) from None
        with connected:
            yield connected
            report_workers(connected)
        return
    # The dashboard (when bokeh is installed) on a free port: a second stage or test on
    # this machine would otherwise fight over 8787.
    with (
        LocalCluster(
            n_workers=compute.cores,
            threads_per_worker=1,
            processes=True,
            dashboard_address=":0",
        ) as local,
        Client(local) as connected,
    ):
        log.info("dask: LocalCluster of %d worker processes", compute.cores)
        yield connected
        report_workers(connected)
