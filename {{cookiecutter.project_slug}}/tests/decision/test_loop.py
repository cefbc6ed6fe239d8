"""loop: the trigger as pure functions (k-of-n, cooldown, schedule, the window carried
over, the live metric's floor), bad input as one line, and turns end to end in a small
project of its own (git, DVC, an exported model's training split and manifest)."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from {{ cookiecutter.package_name }}.__main__ import main as cli
from {{ cookiecutter.package_name }}.core import io, paths
from {{ cookiecutter.package_name }}.core.errors import ConfigError, DataError, UserError
from {{ cookiecutter.package_name }}.core.params import LoopParams, load_service
from {{ cookiecutter.package_name }}.decision import loop, triggers
from {{ cookiecutter.package_name }}.decision.verdicts import Yardstick
from {{ cookiecutter.package_name }}.export import manifest
from {{ cookiecutter.package_name }}.monitoring import labels, live

RULES = {
    "min_rows": 40,
    "min_drifted_features": 2,
    "windows": 3,
    "breaches": 2,
    "cooldown_hours": 24,
    "every_days": None,
    "live_metric_floor": None,
}
NOW = dt.datetime(2026, 3, 1, 12, tzinfo=dt.UTC)


def rules(**changes) -> LoopParams:
    return LoopParams(**{**RULES, **changes})


def fires(flags, retrained=None, model_time=None, **changes):
    loop_rules = rules(**changes)
    return triggers.trigger(NOW, flags, retrained=retrained, model_time=model_time, loop=loop_rules)


def test_k_of_n_retrains_only_when_enough_of_the_last_windows_breached():
    assert fires([True]) == (None, "1 of the last 1 windows breached, 2 needed")
    # The first breach has left the last three windows: one noisy window never retrains.
    assert fires([True, False, False, True]) == (None, "1 of the last 3 windows breached, 2 needed")
    assert fires([False, True, True]) == ("2 of the last 3 windows breached", None)
    assert fires([True], breaches=1, windows=1) == ("1 of the last 1 windows breached", None)


def test_the_cooldown_holds_back_every_trigger_until_it_ends():
    retrained = NOW - dt.timedelta(hours=23)
    assert fires([True, True], retrained, every_days=0.5) == (
        None,
        "cooldown until 2026-03-01T13:00:00+00:00 (loop.cooldown_hours)",
    )
    after = fires([True, True], NOW - dt.timedelta(hours=24))
    assert after == ("2 of the last 2 windows breached", None)


def test_the_schedule_counts_from_the_last_retrain_else_from_the_models_commit():
    week = dt.timedelta(days=7)
    assert fires([False], None, NOW - week, every_days=7) == (
        "schedule: last retrain 7.0 days ago (loop.every_days)",
        None,
    )
    assert fires([False], NOW - 2 * week, NOW - week / 7, every_days=7)[0].startswith(
        "schedule: last retrain 14.0 days"
    )
    assert fires([False], NOW - week / 2, NOW - 2 * week, every_days=7)[0] is None
    assert fires([False], None, None, every_days=7)[0] is None  # no model yet: no clock


def test_a_carried_window_counts_for_nothing_but_the_schedule():
    assert fires(None) == (None, "window carried: fewer than 40 rows (loop.min_rows)")
    assert fires(None, None, NOW - dt.timedelta(days=2), every_days=1)[0].startswith("schedule")


def record(minute: int, **extra) -> dict:
    when = (NOW - dt.timedelta(hours=1) + dt.timedelta(minutes=minute)).isoformat()
    return {"time": when, "request_id": f"r{minute}", "row": 0, "inputs": {}, **extra}


def test_the_window_starts_after_the_last_one_and_ends_at_the_turn():
    records = [record(m) for m in (30, 5, 10, 20, 59)]
    start, end = NOW - dt.timedelta(minutes=50), NOW - dt.timedelta(minutes=30)
    rows, times = triggers.window(records, start, end)
    assert [r["request_id"] for r in rows] == ["r20", "r30"]  # (start, end], in time order
    assert times.is_monotonic_increasing
    # An event time, when logged, is the row's time (as monitor reads it).
    late = record(50, event_time=(NOW - dt.timedelta(days=1)).isoformat())
    assert triggers.window([late], None, end)[0] == [late]
    assert triggers.window([late], start, end)[0] == []


def test_the_windows_since_the_last_retrain_are_the_ones_counted():
    past = [{"breach": True}, {"experiment": "loop-1", "breach": True}, {"breach": False}, {}]
    assert triggers.since_retrain(past) == [{"breach": False}, {}]
    assert triggers.retrains(past) == [past[1]]
    assert triggers.since_retrain(past[:1]) == past[:1]


def labelled(task: str, right: int, wrong: int) -> list[dict]:
    """Logged answers whose request carried the target: `right` of them right."""
    if task == "regression":
        return [{"label": 10.0, "prediction": 10.0}] * right + [
            {"label": 10.0, "prediction": 14.0}
        ] * wrong
    sure = {"a": 0.9, "b": 0.1}
    return [{"label": "a", "prediction": "a", "probabilities": sure}] * right + [
        {"label": "b", "prediction": "a", "probabilities": sure}
    ] * wrong


@pytest.mark.parametrize(
    ("task", "metric", "value"),
    [
        ("classification", "accuracy", 0.75),
        ("classification", "neg_log_loss", round((3 * np.log(0.9) + np.log(0.1)) / 4, 6)),
        ("regression", "neg_root_mean_squared_error", -2.0),
    ],
)
def test_the_live_metric_scores_the_logged_answers_and_breaches_below_its_floor(
    make_params, task, metric, value
):
    yardstick = Yardstick(task, metric, make_params({"task": task}).business)
    rows = labelled(task, 30, 10)
    scored = live.live_metric(rows, yardstick, min_rows=20)
    assert scored == {"metric": metric, "value": value, "rows": 40}
    assert triggers.breach_reasons([], scored, rules(live_metric_floor=value)) == []
    below = rules(live_metric_floor=value + 0.01)
    assert triggers.breach_reasons([], scored, below) == [f"live {metric} {value} < {value + 0.01}"]
    too_few = live.live_metric(rows[:19], yardstick, min_rows=20)
    assert too_few["value"] is None and too_few["why"].startswith("fewer than 20 labelled")
    assert triggers.breach_reasons(["x", "c"], too_few, below) == ["2 features drift"]


def test_a_metric_the_log_cannot_score_is_said_not_breached(make_params):
    yardstick = Yardstick("classification", "neg_log_loss", make_params().business)
    rows = [{**r, "probabilities": None} for r in labelled("classification", 30, 10)]
    scored = live.live_metric(rows, yardstick, min_rows=20)
    assert scored["value"] is None
    assert scored["why"] == "cannot score the logged answers: the log holds no probabilities"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--now", "yesterday"], "error: --now 'yesterday' is not a date or time: use ISO 8601"),
        (["--log", "{tmp}"], "error: cannot read the prediction log {tmp} (Is a directory): "),
    ],
)
def test_bad_input_is_one_line_and_status_1(project, tmp_path, monkeypatch, capsys, argv, message):
    monkeypatch.chdir(project)
    message = message.format(tmp=tmp_path)
    assert cli(["loop", *(a.format(tmp=tmp_path) for a in argv)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(message) and err.count("\n") == 1, err


def test_a_damaged_record_file_is_one_line_naming_it(tmp_path):
    good = '{"time": "2026-01-01T00:00:00+00:00", "window": {}}\n'
    for bad in ('{"time\n', '{"time": "2026-01-01T00:00:00+00:00"}\n', "[]\n"):
        (tmp_path / "loop.jsonl").write_text(good + bad)
        with pytest.raises(DataError, match=r"loop.jsonl line 2 is not a loop record: restore"):
            loop.history(tmp_path / "loop.jsonl")
    with pytest.raises(ConfigError, match="^--now '2026-13-01' is not a date"):
        triggers.parse_now("2026-13-01")
    assert triggers.parse_now("2026-01-31") == dt.datetime(2026, 1, 31, tzinfo=dt.UTC)


# Turns end to end in a project of their own: git, DVC, a batch of data, and a stand-in
# for the export (its training split, model.json's roles, the manifest).


def sh(*command: str) -> str:
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout.strip()


def git(*args: str) -> str:
    return sh("git", *args)


def label_of(task: str, n: int, seed: int) -> list:
    rng = np.random.default_rng(seed)
    if task == "regression":
        return rng.normal(50, 5, n).round(2).tolist()
    return rng.choice(["a", "b"], n).tolist()


@pytest.fixture
def little(tmp_path, monkeypatch, make_params, project, task):
    """A project with one batch, DVC, and an exported model's training split: (params,
    service, write_log(rows, shift, labels))."""
    monkeypatch.chdir(tmp_path)
    for who in ("AUTHOR", "COMMITTER"):
        monkeypatch.setenv(f"GIT_{who}_NAME", "Loop Test")
        monkeypatch.setenv(f"GIT_{who}_EMAIL", "loop@example.org")
    git("init", "-q", "-b", "main")
    sh(sys.executable, "-m", "dvc", "init", "-q")
    rng, n = np.random.default_rng(0), 400
    data = pd.DataFrame({"y": label_of(task, n, 0), "x": rng.normal(0, 1, n)})
    data = data.assign(c=rng.choice(["red", "blue"], n), year=2025)
    io.write_csv(paths.RAW / "first.csv", data)
    sh(sys.executable, "-m", "dvc", "add", "-q", str(paths.RAW))
    ids = [f"r{i}" for i in range(n)]
    io.write_parquet(paths.INGESTED, data.assign(id=ids, batch="first"))
    io.write_parquet(paths.TRAIN, data.assign(id=ids))
    roles = {"target": "y", "numeric": ["x"], "categorical": ["c"], "time": "year", "groups": []}
    meta = {"features": {"roles": roles}, "data": {"train_md5": io.file_md5(paths.TRAIN)}}
    io.write_bytes(paths.MODEL, b"model")
    io.write_json(paths.MODEL_METADATA, meta)
    io.write_json(paths.MODEL_MANIFEST, manifest.record())
    (tmp_path / ".gitignore").write_text("/models\n/data/interim\n/data/processed\n/logs\n")
    (tmp_path / "dvc.lock").write_text("schema: '2.0'\n")
    git("add", "-A")
    git("commit", "-qm", "start")
    params = make_params({"data.target": "y", "data.groups": [], "data.missing_values": []})
    service = load_service(project / "service.yaml")
    service = service.model_copy(update={"loop": rules(breaches=1, windows=1)})

    def write_log(n: int, shift: float = 0.0, labels: int = 0, day: int = 1) -> None:
        """n logged rows on 2026-03-<day>, x shifted by `shift` and a new colour when
        shifted (two features drift), the first `labels` with their label."""
        rows = np.random.default_rng(day)
        colours = ["green"] if shift else ["red", "blue"]
        path = tmp_path / "logs" / "predictions.jsonl"
        path.parent.mkdir(exist_ok=True)
        truth = label_of(task, n, day)
        with path.open("a") as handle:
            for i in range(n):
                entry = {
                    "time": f"2026-03-{day:02d}T0{i % 10}:00:{i % 60:02d}.000+00:00",
                    "event_time": None,
                    "request_id": f"d{day}r{i}",
                    "row": 0,
                    "inputs": {"x": float(rows.normal(shift, 1)), "c": str(rows.choice(colours))},
                    "prediction": truth[i],
                    "probabilities": None,
                }
                handle.write(json.dumps({**entry, **({"label": truth[i]} if i < labels else {})}))
                handle.write("\n")

    return params, service, write_log


def turn(params, service, now: str) -> int:
    return loop.main(params, service, None, now=now)


def test_every_turn_is_one_committed_line_and_a_carried_window_starts_the_next(little, capsys):
    params, service, write_log = little
    write_log(10)
    assert turn(params, service, "2026-03-02") == 0
    assert "window carried: fewer than 40 rows (loop.min_rows)" in capsys.readouterr().out
    carried = json.loads(loop.RECORD.read_text())
    assert (carried["rows"], carried["carried"], carried["trigger"]) == (10, True, None)
    assert git("log", "-1", "--format=%s") == f"loop: no trigger ({triggers.figures(carried)})"
    write_log(110, day=2)
    assert turn(params, service, "2026-03-03") == 0
    line = json.loads(loop.RECORD.read_text().splitlines()[-1])
    assert (line["rows"], line["breach"], line["trigger"]) == (120, False, None)
    assert line["window"] == {"from": None, "to": "2026-03-02T23:59:58+00:00"}
    message = git("log", "-1", "--format=%s")
    assert message == f"loop: no trigger ({triggers.figures(line)})"
    assert message.startswith("loop: no trigger (120 rows; 0 drifted; breaches 0 of 1; 0 of the")
    assert git("status", "--porcelain") == ""
    assert turn(params, service, "2026-03-04") == 0  # nothing new logged: a line says so
    last = json.loads(loop.RECORD.read_text().splitlines()[-1])
    assert (last["rows"], last["carried"]) == (0, True)
    assert git("rev-list", "--count", "HEAD") == "4"
    assert git("status", "--porcelain") == ""
    with pytest.raises(ConfigError, match="^the turn's time 2026-03-01T00:00:00\\+00:00 is befo"):
        turn(params, service, "2026-03-01")


def test_labels_that_arrived_later_count_in_the_turns_window(little):
    """A label sent through feedback (serve.feedback_log, by row id) joins its logged row:
    the turn counts and scores it as one the request carried."""
    params, service, write_log = little
    write_log(50)
    later = [(f"d1r{i}-0", label) for i, label in enumerate(label_of("regression", 30, 9))]
    if params.task == "classification":
        later = [(id_, "a") for id_, _ in later]
    labels.append(Path(service.serve.feedback_log), later, "2026-03-01T12:00:00+00:00")
    assert turn(params, service, "2026-03-02") == 0
    record = json.loads(loop.RECORD.read_text())
    assert record["rows"] == 50 and record["labelled"] == 30
    assert record["live_metric"]["rows"] == 30


def test_a_failing_step_undoes_the_turn_and_names_the_step(little):
    """Drift fires; the batch and the queue are written and committed; then the
    experiment cannot run (this project has no dvc.yaml): git is back where it was."""
    params, service, write_log = little
    write_log(50, shift=4.0, labels=20)
    start = git("rev-parse", "HEAD")
    with pytest.raises(UserError) as failed:
        turn(params, service, "2026-03-02")
    message = str(failed.value)
    assert message.startswith("step dvc exp run failed: ")
    assert message.endswith(f"; the turn is undone (git back at {start[:7]})")
    assert "\n" not in message
    assert git("rev-parse", "HEAD") == start and git("status", "--porcelain") == ""
    assert sorted(p.name for p in paths.RAW.iterdir()) == ["first.csv"]
    assert not loop.QUEUE.exists()


def test_a_batch_add_batch_refuses_undoes_the_turn_naming_the_step(little):
    """The raw data gained a column the batches lack: add-batch refuses the window's
    batch, and the turn says which step, undone."""
    params, service, write_log = little
    ingested = pd.read_parquet(paths.INGESTED).assign(z=1.0)
    io.write_parquet(paths.INGESTED, ingested)
    write_log(50, shift=4.0, labels=20)
    with pytest.raises(UserError) as failed:
        turn(params, service, "2026-03-02")
    assert str(failed.value).startswith(
        "step batch and labelling queue failed: .dvc/tmp/loop-20260302T000000Z.csv does not "
        "have the columns of the batches in data/raw (extra z)"
    )
    assert "the turn is undone" in str(failed.value)
    assert git("status", "--porcelain") == "" and git("rev-list", "--count", "HEAD") == "1"
    assert sorted(p.name for p in paths.RAW.iterdir()) == ["first.csv"]


def test_a_retrain_commits_the_data_then_the_verdict_and_a_labelled_queue_joins_later(
    little, monkeypatch, task
):
    """The challenger's run and judgement (decide) stubbed by a HOLD: the data commit,
    the record and its commit, then the queue file labelled and folded in a later turn."""
    params, service, write_log = little
    judged = []
    monkeypatch.setattr(loop, "challenge", lambda t: judged.append(t.name) or "HOLD")
    write_log(50, shift=4.0, labels=20)
    assert turn(params, service, "2026-03-02") == 0
    name = "loop-20260302T000000Z"
    assert judged == [name]
    line = json.loads(loop.RECORD.read_text())
    assert (line["experiment"], line["verdict"]) == (name, "HOLD")
    assert line["drifted_features"] == ["c", "x"] and line["breach_reasons"] == ["2 features drift"]
    assert line["batch"] == {"path": f"data/raw/{name}.csv", "rows": 20}
    assert line["queue"] == {"path": f"data/labelling/{name}.csv", "rows": 30}
    assert git("log", "-2", "--format=%s").splitlines() == [
        f"loop: HOLD {name} ({triggers.figures(line)})",
        f"loop: data for {name} ({triggers.figures(line)})",
    ]
    assert "data/raw.dvc" in git("show", "--name-only", "HEAD~1")
    batch = pd.read_csv(paths.RAW / f"{name}.csv")
    assert batch["y"].notna().all() and len(batch) == 20
    queue = loop.QUEUE / f"{name}.csv"
    assert git("ls-files", str(loop.QUEUE)).splitlines() == [
        "data/labelling/.gitignore",
        f"data/labelling/{name}.csv.dvc",
    ]
    assert git("status", "--porcelain") == ""
    # Labelled by a person, the queue file becomes a batch at the next retrain.
    filled = pd.read_csv(queue).assign(y=label_of(task, 30, 9))
    io.write_csv(queue, filled)
    write_log(50, shift=4.0, day=3)
    assert turn(params, service, "2026-03-04") == 0
    line = json.loads(loop.RECORD.read_text().splitlines()[-1])
    assert line["from_queue"] == [str(queue)] and line["batch"] is None
    assert len(pd.read_csv(paths.RAW / f"{name}-labelled.csv")) == 30
    assert not queue.exists() and f"{name}.csv.dvc" not in git("ls-files", str(loop.QUEUE))
    assert git("status", "--porcelain") == ""
