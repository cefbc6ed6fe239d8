"""Progress lines: one format with their fields; --quiet and LOG_LEVEL silence them."""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import sys

import pandas as pd
import pytest

from {{ cookiecutter.package_name }}.__main__ import main
from {{ cookiecutter.package_name }}.core import progress

LINE = re.compile(r"^\d\d:\d\d:\d\d (\S+) +(.*)$")


@pytest.fixture
def batches(project, tmp_path, monkeypatch):
    """A project copy whose data/raw holds the shipped rows as 45 small batch files."""
    shutil.copy(project / "params.yaml", tmp_path / "params.yaml")
    raw = pd.concat(
        [pd.read_csv(p) for p in sorted((project / "data" / "raw").glob("*.csv"))],
        ignore_index=True,
    )
    folder = tmp_path / "data" / "raw"
    folder.mkdir(parents=True)
    for number in range(45):
        raw.iloc[number::45].to_csv(folder / f"batch_{number:02d}.csv", index=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LOG_LEVEL", raising=False)
    return len(raw)


def lines(err: str) -> list[tuple[str, str]]:
    found = [LINE.match(line) for line in err.splitlines()]
    assert all(found), f"a line out of format in:\n{err}"
    return [(m[1], m[2]) for m in found]


def test_a_stage_logs_start_batches_and_done_with_rows_and_seconds(batches, params_raw, capsys):
    if params_raw["data"]["source"] != "data/raw":
        pytest.skip("the project reads its own data")
    assert main(["ingest"]) == 0
    logged = lines(capsys.readouterr().err)
    assert {stage for stage, _ in logged} == {"ingest"}
    assert logged[0][1] == "start"
    # 45 files: every 45 // BATCH_LINES = 2nd one and the last, not all 45.
    reported = [m for _, m in logged if m.startswith("batch ")]
    assert len(reported) == 45 // 2 + 1
    assert re.fullmatch(r"batch 2/45 data/raw/batch_01\.csv rows=\d+ seconds=[\d.]+", reported[0])
    assert reported[-1].startswith("batch 45/45 ")
    assert re.fullmatch(
        rf"done files=45 rows_out={batches} seconds=[\d.]+ peak_rss_mb=\d+", logged[-1][1]
    )


@pytest.mark.parametrize("how", ["--quiet", "-q", "LOG_LEVEL=WARNING", "LOG_LEVEL=error"])
def test_quiet_and_log_level_silence_progress(batches, params_raw, monkeypatch, capsys, how):
    if params_raw["data"]["source"] != "data/raw":
        pytest.skip("the project reads its own data")
    if how.startswith("LOG_LEVEL="):
        monkeypatch.setenv("LOG_LEVEL", how.split("=")[1])
        argv = ["ingest"]
    else:
        argv = [how, "ingest"]
    assert main(argv) == 0
    assert capsys.readouterr().err == ""


def test_quiet_keeps_warnings_and_errors(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["--quiet", "ingest"]) == 1
    assert capsys.readouterr().err.startswith("error: params.yaml not found")
    progress.configure("evaluate", progress.level(True, {}))
    logging.getLogger("{{ cookiecutter.package_name }}.stages.evaluate").warning("few rows")
    progress.report("start")
    (line,) = capsys.readouterr().err.splitlines()
    assert LINE.match(line)[1] == "evaluate" and line.endswith(" WARNING: few rows")


def test_a_bad_log_level_is_a_one_line_error(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LOG_LEVEL", "LOUD")
    assert main(["ingest"]) == 1
    assert capsys.readouterr().err == (
        "error: LOG_LEVEL='LOUD' is not a log level: use one of DEBUG, INFO, WARNING, ERROR\n"
    )


def test_timed_reports_its_fields_and_seconds(capsys):
    progress.configure("select", logging.INFO)
    with progress.timed("candidate ridge") as line:
        line.update(score=-0.123456789, rows=20000)
    (logged,) = lines(capsys.readouterr().err)
    assert logged[0] == "select"
    assert re.fullmatch(r"candidate ridge score=-0\.1235 rows=20000 seconds=[\d.]+", logged[1])


def test_every_keeps_about_batch_lines_lines():
    assert progress.every(5) == 1
    assert progress.every(10_000) == 10_000 // progress.BATCH_LINES


def test_a_stage_started_by_a_large_process_reports_its_own_peak():
    """The peak is the stage's own: getrusage's ru_maxrss survives exec, so a stage that a
    process holding 600 MB started would report 600 MB."""
    child = "from {{ cookiecutter.package_name }}.core import progress; print(progress.peak_rss_mb())"
    parent = (
        "import subprocess, sys\n"
        "held = b'x' * (600 * 2**20)\n"  # written, so resident
        f"run = subprocess.run([sys.executable, '-c', {child!r}], capture_output=True)\n"
        "print(run.stdout.decode())\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    out = subprocess.run([sys.executable, "-c", parent], capture_output=True, env=env, check=True)
    assert 0 < int(out.stdout) < 400
