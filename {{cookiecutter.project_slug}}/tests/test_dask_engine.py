"""compute.engine: dask against a real distributed scheduler with two worker processes on
this machine: ingest's snapshot equals the local engine's, row for row and in order, and
select's cross-validation scores equal it exactly."""

from __future__ import annotations

import logging
import os
import re
import socket
import time

import numpy as np
import pandas as pd
import pytest

from {{ cookiecutter.package_name }} import cluster, io, paths
from {{ cookiecutter.package_name }}.errors import ConfigError, DataError
from {{ cookiecutter.package_name }}.params import PreprocessParams
from {{ cookiecutter.package_name }}.stages import ingest, preprocess, select

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def scheduler():
    """One cluster for the module: starting one costs about a second a worker."""
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
    ) as local:
        yield local.scheduler_address


def write_batches(folder) -> None:
    """Batches that exercise what must be global: a row repeated within and across
    batches (its -2, -3 ids), columns in another order, a column a CSV reader types as
    floats in one batch (all empty) and text in the others, and a time column."""
    folder.mkdir()
    rng = np.random.default_rng(0)
    first = pd.DataFrame(
        {
            "x": rng.normal(size=50).round(3),
            "note": [f"n{i % 7}" for i in range(50)],
            "when": pd.date_range("2024-01-01", periods=50, freq="h").strftime("%Y-%m-%d %H:%M"),
            "y": rng.integers(0, 2, 50),
        }
    )
    first.loc[10] = first.loc[3]  # a repeat within the batch
    first.to_csv(folder / "a.csv", index=False)
    second = first.iloc[::-1].reset_index(drop=True)[["y", "when", "x", "note"]]
    second.to_parquet(folder / "b.parquet")  # every row again, reordered
    third = first.head(5).assign(note=None)
    third.to_csv(folder / "c.csv", index=False)  # note reads back as float64


def dask_ingest(tmp_path, monkeypatch, make_params, scheduler, **data) -> int:
    """Batches written under tmp_path/raw, ingested on the cluster; the rows written."""
    from {{ cookiecutter.package_name }} import ingest_dask

    monkeypatch.chdir(tmp_path)
    write_batches(tmp_path / "raw")
    params = dask_params(make_params, scheduler, **data)
    return ingest_dask.run(ingest.batch_files(tmp_path / "raw"), params)


def dask_params(make_params, scheduler, **data):
    changes = {"data.source": "raw", "data.time": "when", **data}
    return make_params({**changes, "compute.engine": "dask", "compute.scheduler": scheduler})


def test_dask_ingest_equals_the_local_engine(tmp_path, monkeypatch, make_params, scheduler):
    rows = dask_ingest(tmp_path, monkeypatch, make_params, scheduler)
    params = make_params({"data.source": "raw", "data.time": "when"})
    files = ingest.batch_files(tmp_path / "raw")
    local = ingest.snapshot(ingest.read_batches(files), params.data)
    parts = sorted(p.name for p in paths.INGESTED.iterdir())
    assert parts == ["part-000000.parquet", "part-000001.parquet", "part-000002.parquet"]
    dask = io.read_parquet(paths.INGESTED)
    assert rows == len(local) == 105
    # A row of a.csv repeated within it, in b.parquet and in c.csv: the ids number it
    # across batches, which only a global pass can do.
    assert local["id"].str.endswith("-3").any()
    # What clean reads: the local engine's file against the folder of parts.
    io.write_parquet(tmp_path / "local.parquet", local)
    pd.testing.assert_frame_equal(dask, io.read_parquet(tmp_path / "local.parquet"))


def test_dask_ingest_with_given_ids_refuses_a_repeat_across_batches(
    tmp_path, monkeypatch, make_params, scheduler
):
    with pytest.raises(DataError, match="id column 'x' repeats"):
        dask_ingest(tmp_path, monkeypatch, make_params, scheduler, **{"data.id_column": "x"})


def test_the_local_engine_replaces_the_dask_engines_folder(
    tmp_path, monkeypatch, make_params, scheduler
):
    """Switching engines back: the folder of parts goes, the single file takes its place."""
    dask_ingest(tmp_path, monkeypatch, make_params, scheduler)
    assert paths.INGESTED.is_dir()
    params = make_params({"data.source": "raw", "data.time": "when"})
    monkeypatch.setattr(ingest, "load", lambda: params)
    ingest.main()
    assert paths.INGESTED.is_file()
    assert len(io.read_parquet(paths.INGESTED)) == 105


def test_a_rerun_writes_the_same_bytes_and_readers_take_the_folder(
    tmp_path, monkeypatch, make_params, scheduler
):
    """export's ingested_md5 of the folder is the same for a rerun (the parts are
    byte-identical whichever worker wrote which) and monitor reads its columns."""
    from {{ cookiecutter.package_name }} import ingest_dask, monitor

    dask_ingest(tmp_path, monkeypatch, make_params, scheduler)
    first = io.file_md5(paths.INGESTED)
    ingest_dask.run(ingest.batch_files(tmp_path / "raw"), dask_params(make_params, scheduler))
    assert io.file_md5(paths.INGESTED) == first
    assert monitor.raw_columns() == ["x", "note", "when", "y"]
    last = paths.INGESTED / "part-000002.parquet"
    io.read_parquet(last).head(4).to_parquet(last, index=False)
    assert io.file_md5(paths.INGESTED) != first


def test_dask_select_scores_equal_the_local_engine(
    toy, toy_roles, task, task_models, make_params, scheduler
):
    """The folds' fits run on the cluster's workers (the scheduler's transition count
    moves), and the ranking, scores and all, equals the local engine's exactly."""
    rows = toy(task)
    transformer = preprocess.build_transformer(toy_roles, PreprocessParams(), task)
    settings = {"select.candidates": task_models, "select.cv_folds": 3}
    local = select.rank(rows, toy_roles, transformer, make_params(settings))
    on_dask = make_params({**settings, "compute.engine": "dask", "compute.scheduler": scheduler})
    with distributed.Client(scheduler) as client:
        before = client.run_on_scheduler(lambda dask_scheduler: dask_scheduler.transition_counter)
        dask = select.rank(rows, toy_roles, transformer, on_dask)
        after = client.run_on_scheduler(lambda dask_scheduler: dask_scheduler.transition_counter)
    assert after > before
    pd.testing.assert_frame_equal(dask, local, check_exact=True)


def test_without_a_scheduler_a_stage_gets_a_local_cluster_of_n_jobs_processes(make_params):
    settings = make_params({"compute.engine": "dask", "compute.n_jobs": 2}).compute
    with cluster.client(settings) as client:
        pids = set(client.run(os.getpid).values())
        threads = {w["nthreads"] for w in client.scheduler_info()["workers"].values()}
    assert len(pids) == 2 and os.getpid() not in pids
    assert threads == {1}
    assert client.status == "closed"


# --- Measured: each worker's peak memory; an unreachable or malformed scheduler ---------


def test_closing_a_stages_client_reports_each_workers_peak_memory(make_params, scheduler, caplog):
    """One progress line when the client closes: a worker that held an array reports a
    peak of at least its previous peak plus the array, in worker-address order."""
    caplog.set_level(logging.INFO)
    settings = make_params({"compute.engine": "dask", "compute.scheduler": scheduler}).compute
    with cluster.client(settings) as client:
        workers = sorted(client.scheduler_info()["workers"])
        held = client.run(cluster.peak_rss_mb)[workers[1]] + 200
        touched = client.submit(
            lambda mb: int(np.ones(mb * 2**20 // 8).sum()), held, workers=[workers[1]], pure=False
        )
        assert touched.result() == held * 2**20 // 8
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("dask workers")]
    assert len(lines) == 1, lines
    reported = re.fullmatch(r"dask workers workers=2 peak_rss_mb=(\d+),(\d+)", lines[0])
    assert reported, lines[0]
    assert int(reported[2]) >= held
    assert int(reported[1]) > 0


def test_an_unreachable_scheduler_is_a_one_line_error_naming_it_and_the_fix(
    make_params, monkeypatch
):
    """A port where nothing listens: distributed retries until the timeout (shortened
    here), then the stage stops with one line."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        address = f"tcp://127.0.0.1:{probe.getsockname()[1]}"
    monkeypatch.setattr(cluster, "CONNECT_TIMEOUT", "1s")
    settings = make_params({"compute.engine": "dask", "compute.scheduler": address}).compute
    started = time.monotonic()
    with pytest.raises(DataError) as failure, cluster.client(settings):
        pytest.fail("connected to a port where nothing listens")
    message = str(failure.value)
    assert "\n" not in message
    assert message.startswith(f"cannot reach the Dask scheduler {address!r}")
    assert "start it (`dask scheduler`), fix compute.scheduler" in message
    assert time.monotonic() - started < 10


@pytest.mark.parametrize("address", ["localhost:abc", "htp://x:8786", "tcp://host", ""])
def test_a_malformed_scheduler_address_fails_at_load(make_params, address):
    with pytest.raises(ConfigError) as failure:
        make_params({"compute.scheduler": address})
    message = str(failure.value)
    assert "\n" not in message
    assert message.startswith("params.yaml: compute.scheduler: ")
    assert "host:port (e.g. tcp://10.0.0.5:8786), or null" in message
    assert repr(address) in message


@pytest.mark.parametrize(
    "address", ["tcp://10.0.0.5:8786", "scheduler-0.dask:8786", "tls://[::1]:8786"]
)
def test_a_scheduler_address_loads(make_params, address):
    assert make_params({"compute.scheduler": address}).compute.scheduler == address
