"""The benchmarks' own mechanisms on small data: the synthetic shapes (signal, missing
values, chunks, the long shape unchanged), shapes.py's budget verdicts, everyday.py's
schedule, stage times, table and preload-server stop, bench_smoke.py's pass/fail rule and
its coverage of every script, and serving.py's model list."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from conftest import MODELS, TEMPLATE, bake
from sklearn.compose import make_column_transformer
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.metrics import log_loss, r2_score
from sklearn.model_selection import KFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import TargetEncoder
from threadpoolctl import threadpool_limits

sys.path[:0] = [str(TEMPLATE / "benchmarks"), str(TEMPLATE / "scripts")]
import bench_smoke  # noqa: E402
import everyday  # noqa: E402
import serving  # noqa: E402
import shapes  # noqa: E402
import synthetic  # noqa: E402
from scale import Run  # noqa: E402


def read(files: list[Path]) -> pd.DataFrame:
    return pd.concat([pq.read_table(f).to_pandas() for f in files], ignore_index=True)


def test_every_benchmark_script_has_smoke_settings_and_ci_runs_them():
    scripts = {p.name for p in (TEMPLATE / "benchmarks").glob("*.py")}
    runnable = {s for s in scripts if "__main__" in (TEMPLATE / "benchmarks" / s).read_text()}
    assert set(bench_smoke.HELPERS) <= scripts
    assert runnable - set(bench_smoke.HELPERS) == set(bench_smoke.SMOKE)
    makefile = (TEMPLATE / "Makefile").read_text()
    recipe = re.search(r"^bench-smoke:.*\n((?:\t.*\n)+)", makefile, re.M)[1]
    assert "scripts/bench_smoke.py" in recipe
    # The everyday loop's table comes first in `make bench`, before the sizes.
    bench = re.search(r"^bench:.*\n((?:\t.*\n)+)", makefile, re.M)[1]
    assert bench.index("benchmarks/everyday.py") < bench.index("benchmarks/scale.py")
    ci = (TEMPLATE / ".ci" / "run").read_text()
    assert ci.index("make test") < ci.index("make bench-smoke")


def test_the_long_shape_is_the_table_it_always_was(tmp_path):
    # The bake's docs quote figures measured on this table: a new shape must not move it.
    # The hash of its content, taken before the other shapes existed.
    frame = read(synthetic.write(3000, tmp_path, batches=2, seed=0))
    assert int(pd.util.hash_pandas_object(frame, index=False).sum()) % 2**64 == (
        16956151830084510313
    )


@pytest.fixture(scope="module")
def tables(tmp_path_factory: pytest.TempPathFactory) -> dict[str, pd.DataFrame]:
    """Every shape at 12,000 rows in 2 batches, built in chunks of 5,000 rows."""
    out = tmp_path_factory.mktemp("shapes")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(synthetic, "CHUNK", 5000)
        return {s: read(synthetic.write(12_000, out / s, 2, 0, s)) for s in synthetic.SHAPES}


@pytest.mark.parametrize("shape", list(synthetic.SHAPES))
def test_each_shape_names_its_columns_and_has_missing_values(tables, shape):
    spec, frame = synthetic.SHAPES[shape], tables[shape]
    assert len(frame) == 12_000
    assert {spec.target, spec.time, *spec.groups} <= set(frame.columns)
    assert frame[spec.target].notna().all()
    features = frame.drop(columns=[spec.target, spec.time, *spec.groups])
    assert 0.01 < features.isna().mean().max() < 0.15
    # Time runs forward across batches, as a table collected over time does.
    assert frame[spec.time].iloc[-1] > frame[spec.time].iloc[0]


@pytest.mark.parametrize("shape", list(synthetic.SHAPES))
# One thread: OpenMP's spinning threads on a shared 2-core machine cost more than they give.
@threadpool_limits.wrap(limits=1)
def test_each_shape_target_depends_on_its_features(tables, shape):
    spec, frame = synthetic.SHAPES[shape], tables[shape]
    features = frame.drop(columns=[spec.target, spec.time])
    text = [c for c in features if not pd.api.types.is_numeric_dtype(features[c])]
    features[text] = features[text].fillna("missing")
    # Target-encoded, as high-cardinality categories must be: a title's effect is its own.
    encode = make_column_transformer(
        (TargetEncoder(cv=KFold(5, shuffle=True, random_state=0)), text), remainder="passthrough"
    )
    train, test = slice(0, 9000), slice(9000, None)
    y = frame[spec.target]
    if spec.task == "regression":
        model = make_pipeline(encode, HistGradientBoostingRegressor(random_state=0))
        model.fit(features[train], y[train])
        assert r2_score(y[test], model.predict(features[test])) > 0.5
        return
    model = make_pipeline(encode, HistGradientBoostingClassifier(random_state=0))
    model.fit(features[train], y[train])
    prior = y[train].value_counts(normalize=True).reindex(model.classes_).to_numpy()
    baseline = log_loss(y[test], np.tile(prior, (len(y[test]), 1)), labels=model.classes_)
    assert log_loss(y[test], model.predict_proba(features[test])) < 0.8 * baseline


def test_each_shape_has_the_trait_it_is_named_for(tables):
    wide = tables["wide"]
    assert (wide.dtypes == "float32").sum() >= 60
    assert wide["cat_a"].nunique() == wide["cat_b"].nunique() == 50
    categorical = tables["categorical"]
    assert len(categorical.columns) == 28
    assert sum(not pd.api.types.is_numeric_dtype(t) for t in categorical.dtypes) >= 19
    assert categorical["converted"].eq("yes").mean() == pytest.approx(0.05, abs=0.005)
    titles = tables["text"]["title"].dropna()
    assert titles.str.len().between(40, 120).all() and titles.nunique() > 1000
    assert tables["rare"]["status"].value_counts(normalize=True)["fraud"] < 0.006


def test_overrides_point_the_data_settings_at_the_shape(tmp_path):
    assert shapes.overrides("wide", tmp_path) == [
        "-S", f"data.source={tmp_path}", "-S", "data.target=y",
        "-S", "data.groups=[]", "-S", "data.time=event_time",
    ]  # fmt: skip
    assert "data.groups=[region]" in shapes.overrides("categorical", tmp_path)


def done(stage: str, seconds: float, mb: int) -> str:
    return f"12:00:00 {stage} done rows_in=10 seconds={seconds} peak_rss_mb={mb}\n"


def test_shape_rows_mark_a_shape_over_time_or_a_stage_over_memory():
    log = done("ingest", 10, 900) + done("preprocess", 20, 3100)
    rows = shapes.shape_rows("wide", Run("ok", 120.0, log), "ridge")
    assert [r[3] for r in rows] == ["OVER", "ok", "OVER"]
    assert rows[0][1:3] == ("120.0 s", "3100 MB") and rows[0][4] == "winner ridge"
    slow = shapes.shape_rows("long", Run("ok", 301.0, done("ingest", 301, 100)), "ridge")
    assert [r[3] for r in slow] == ["OVER", "ok"]
    fast = shapes.shape_rows("long", Run("ok", 299.0, done("ingest", 299, 3072)), "ridge")
    assert [r[3] for r in fast] == ["ok", "ok"]


def test_shape_rows_count_dask_workers_and_name_where_a_run_stopped():
    log = done("ingest", 1, 100) + "12:00:01 clean dask workers workers=2 peak_rss_mb=400,3500\n"
    log += done("clean", 2, 200) + "error: the target column 'y' is missing\n"
    rows = shapes.shape_rows("wide", Run("failed", 5.0, log), "-")
    assert rows[0][1] == "failed at 5.0 s" and rows[0][3] == "OVER"
    assert rows[0][4] == "annotate: error: the target column 'y' is missing"
    assert rows[2] == ("wide: clean", "2.0 s", "200 MB", "OVER", "Dask workers up to 3500 MB each")


@pytest.mark.parametrize(
    ("body", "why"),
    [
        ("print('| x | 1.5 s |')", None),
        ("print('machine: 2 cores, 23.5 GiB RAM')", "printed no figures"),
        ("print('1.5 s'); raise SystemExit(3)", "exit 3"),
    ],
)
def test_bench_smoke_fails_a_script_that_exits_non_zero_or_prints_no_figures(
    tmp_path, monkeypatch, body, why
):
    (tmp_path / "fake.py").write_text(body)
    monkeypatch.setattr(bench_smoke, "BENCHMARKS", tmp_path)
    monkeypatch.setitem(bench_smoke.SMOKE, "fake.py", [])
    assert bench_smoke.smoke("fake.py", timeout=60) == why


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_serving_measures_the_bakes_own_candidates(tmp_path, task, capsys):
    project = bake(tmp_path, task=task)
    assert serving.candidates(project, None) == MODELS[task]
    assert serving.candidates(project, MODELS[task][1]) == [MODELS[task][1]]
    with pytest.raises(SystemExit, match=r"--models lasso not in this bake: "):
        serving.candidates(project, "lasso")


def test_everyday_rounds_alternate_on_and_off_and_stop_the_server_before_a_cold_run():
    for round_ in (0, 1, 2):
        steps = everyday.schedule(round_)
        assert steps[0].what == "floor"
        assert sorted(map(str, steps)) == sorted(map(str, [*everyday.MEASURES, everyday.STOP]))
        assert steps[steps.index(everyday.STOP) + 1].mode == "on, cold"
        for what in ("repro", "exp", "noop"):
            modes = [s.mode for s in steps if s.what == what]
            assert (modes[0] == "off") == (round_ % 2 == 1)


def test_everyday_stamps_each_stage_and_returns_while_a_forked_server_holds_its_output(
    tmp_path,
):
    # A stage that leaves a process behind with the run's output open, as a preload
    # server forked by a stage may: the run ends when the command does, not when it does.
    script = (
        "echo \"Running stage 'ingest':\"; sleep 0.4; "
        "echo '12:00:00 ingest     done seconds=0.25 peak_rss_mb=90'; "
        "echo \"Running stage 'clean':\"; (cd / && sleep 60 &); sleep 0.2; echo 'Use dvc push'"
    )
    env = {**os.environ, everyday.MARKER: str(tmp_path)}
    started = time.perf_counter()
    run = everyday.stamped(tmp_path, "sh", "-c", script, env=env, timeout=30)
    assert time.perf_counter() - started < 5
    assert run.status == "ok" and run.stages_ran() == ["ingest", "clean"]
    walls = run.stage_walls()
    assert 0.35 < walls["ingest"] < 1.5 and 0.15 < walls["clean"] < 1.5
    assert run.inside() == {"ingest": 0.25}
    # The orphan left the bake's folder but carries the run's marker: stop() finds it and
    # kills it by id.
    assert len(everyday.preload_pids(tmp_path)) == 1
    assert everyday.stop(tmp_path, grace=0.3) == ["sleep 60"]
    assert everyday.preload_pids(tmp_path) == []


def test_everyday_stop_removes_the_socket_and_lets_a_server_exit_by_itself(tmp_path):
    socket = tmp_path / everyday.PRELOAD_DIR / "server.sock"
    socket.parent.mkdir(parents=True)
    socket.touch()
    server = subprocess.Popen(  # the preloader's contract: it exits once its socket is gone
        [sys.executable, "-c", f"import os,time\nwhile os.path.exists({str(socket)!r}): "
         "time.sleep(0.05)"], cwd=tmp_path,
    )  # fmt: skip
    assert everyday.preload_pids(tmp_path) == [server.pid]
    assert everyday.stop(tmp_path, grace=5) == []
    assert server.wait(timeout=1) == 0 and not socket.parent.exists()


def stamped_run(seconds: float, stages: dict[str, tuple[float, float]], status="ok"):
    """A Stamped run of `stages` {name: (own seconds, wall)}, one after the other."""
    log, stamps, at = "", [], 0.5
    for name, (own, wall) in stages.items():
        stamps.append((at, f"Running stage '{name}':"))
        log += done(name, own, 100)
        at += wall
    stamps.append((at, "Use `dvc push` to send your updates to remote storage."))
    return everyday.Stamped(status, seconds, log, stamps)


def test_everyday_rows_give_median_each_run_ratio_target_and_stages_ran():
    floor = [everyday.Stamped("ok", s, done("ingest", 1, 90), []) for s in (10, 9, 11)]
    repro = [stamped_run(s, {"ingest": (1.0, 2.0), "clean": (0.5, 1.5)}) for s in (14, 16, 15)]
    noop = [stamped_run(s, {}) for s in (1.6, 1.4, 1.7)]
    floor_row = everyday.summary_row(everyday.MEASURES[0], floor, 10.0)
    assert floor_row[1:4] == ("10.0 s", "10.0, 9.0, 11.0", "1.00x")
    row = everyday.summary_row(everyday.MEASURES[1], repro, 10.0)
    assert row == ("dvc repro -f (on, cold)", "15.0 s", "14.0, 16.0, 15.0", "1.50x",
                   "<= 1.5x: met", "stages run: 2")  # fmt: skip
    assert everyday.summary_row(everyday.MEASURES[3], repro, 9.9)[4] == "<= 1.5x: missed"
    assert everyday.summary_row(everyday.MEASURES[6], noop, 10.0)[4] == "<= 1.5 s: missed"
    runs = {m: [] for m in everyday.MEASURES} | {everyday.MEASURES[0]: floor}
    # Runs killed at the timeout are left out: their totals would move the medians.
    runs[everyday.MEASURES[1]] = [*repro, *[everyday.Stamped("timeout", 99.0, "", [])] * 2]
    rows = everyday.stage_rows(runs)
    assert rows[0] == ("ingest", "1.00", "1.00 / 2.00", "- / -", "- / -")
    assert rows[1] == ("clean", "-", "0.50 / 1.50", "- / -", "- / -")
    # Outside: the floor's 10 s less its stage's 1 s; repro's 15 s less 3.5 s of stages.
    assert rows[-1] == ("outside any stage", "9.00", "11.50", "-", "-")


def test_everyday_a_failed_run_is_its_row_and_exits_1_after_the_table():
    failed = everyday.Stamped("failed", 3.0, "error: the target column 'y' is missing\n", [])
    runs = [stamped_run(14, {}), failed]
    assert failed.stage_walls() == {} and stamped_run(14, {}).stage_walls() == {}
    row = everyday.summary_row(everyday.MEASURES[2], runs, 10.0)
    assert row[1:3] == ("failed at 3.0 s", "14.0, 3.0")
    assert row[5] == "ingest: error: the target column 'y' is missing"
    with pytest.raises(SystemExit, match="1 run"):
        everyday.exit_if_failed([row])


def test_everyday_warns_when_the_load_passed_the_cores(monkeypatch):
    monkeypatch.setattr(everyday.os, "cpu_count", lambda: 2)
    monkeypatch.setattr(everyday.os, "getloadavg", lambda: (1.5, 1.0, 1.0))
    assert everyday.busy("0.50 0.40 0.30") is None
    assert everyday.busy("4.58 4.11 3.06").startswith("warning: load 4.6 on 2 cores")
    monkeypatch.setattr(everyday.os, "getloadavg", lambda: (11.1, 7.1, 4.6))
    assert "load 11.1 on 2 cores" in everyday.busy("0.50 0.40 0.30")
