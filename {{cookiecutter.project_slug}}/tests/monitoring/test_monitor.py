"""Drift: PSI and KS on tiny frames, the report's verdicts, and the log as a raw batch."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from {{ cookiecutter.package_name }}.core import io
from {{ cookiecutter.package_name }}.core.errors import ConfigError, DataError
from {{ cookiecutter.package_name }}.core.params import MonitorParams
from {{ cookiecutter.package_name }}.monitoring import monitor
from {{ cookiecutter.package_name }}.tables import batches
from {{ cookiecutter.package_name }}.tables.schema import Roles

ROLES = Roles(target="y", numeric=["x"], categorical=["c"], time=None, groups=[])
RULES = MonitorParams(psi_threshold=0.2, ks_alpha=0.01, bins=5, min_rows=20)


def frame(n: int, shift: float = 0.0, colors=("red", "blue"), seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"x": rng.normal(shift, 1.0, n), "c": rng.choice(colors, n)})


def test_psi_is_zero_for_equal_shares_and_grows_with_the_difference():
    same = pd.Series({"a": 0.5, "b": 0.5})
    assert monitor.psi(same, same) == 0.0
    slight = monitor.psi(same, pd.Series({"a": 0.6, "b": 0.4}))
    large = monitor.psi(same, pd.Series({"a": 0.9, "b": 0.1}))
    assert 0 < slight < large
    # (0.6-0.5)ln(0.6/0.5) + (0.4-0.5)ln(0.4/0.5)
    assert slight == pytest.approx(0.1 * np.log(1.2) - 0.1 * np.log(0.8))


def test_no_drift_for_the_same_distribution():
    report = monitor.drift_report(frame(2000), frame(500, seed=1), ROLES, RULES)
    assert report["enough_rows"] and not report["drift"]
    assert report["features"]["x"]["psi"] < 0.05 and report["features"]["x"]["ks_pvalue"] > 0.01


def test_a_shifted_numeric_feature_drifts():
    report = monitor.drift_report(frame(2000), frame(500, shift=1.5, seed=1), ROLES, RULES)
    assert report["drifted_features"] == ["x"]
    assert report["features"]["x"]["psi"] > 0.2 and report["features"]["x"]["ks_pvalue"] < 1e-6


def test_unseen_and_missing_categories_count():
    live = frame(300, colors=("red", "green"), seed=1)
    live.loc[:50, "c"] = None
    result = monitor.drift_report(frame(2000), live, ROLES, RULES)["features"]["c"]
    assert result["drift"] and result["unseen_share"] > 0.3


def test_too_few_rows_give_no_verdict():
    report = monitor.drift_report(frame(2000), frame(10, shift=5.0), ROLES, RULES)
    assert report["enough_rows"] is False and report["drift"] is False
    assert "no verdict" in monitor.summary(report)


# Logged rows: `time` when each arrived, `event_time` its data.time when the request gave one.
LOGGED = [
    {"time": "2026-01-03T09:00:00.000+00:00", "event_time": None, "request_id": "r3", "row": 0},
    {
        "time": "2026-01-01T09:00:00.000+00:00",
        "event_time": "2025-12-31T00:00:00+00:00",
        "request_id": "r1",
        "row": 0,
    },
    {"time": "2026-01-02T09:00:00.000+00:00", "event_time": None, "request_id": "r2", "row": 0},
    # A log written before event times were logged.
    {"time": "2026-01-02T09:00:00.000+00:00", "request_id": "r2", "row": 1},
]


def test_rows_are_ordered_and_windowed_by_event_time_else_arrival():
    rows, times = monitor.window(LOGGED, None)
    order = [(r["request_id"], r["row"]) for r in rows]
    assert order == [("r1", 0), ("r2", 0), ("r2", 1), ("r3", 0)]
    assert monitor.period(rows, times) == {
        "from": "2025-12-31T00:00:00+00:00",
        "to": "2026-01-03T09:00:00+00:00",
        "event_time_rows": 1,
    }
    recent, _ = monitor.window(LOGGED, monitor.since_time("2026-01-02T10:00:00+01:00"))
    assert [r["request_id"] for r in recent] == ["r2", "r2", "r3"]
    assert monitor.window(LOGGED, monitor.since_time("2027-01-01"))[0] == []


def test_since_that_is_no_time_is_refused_naming_the_fix():
    with pytest.raises(ConfigError, match="--since 'last week' is not a date or time: use ISO"):
        monitor.since_time("last week")


def test_the_log_becomes_a_raw_batch(make_params):
    records = [
        {**LOGGED[0], "request_id": "r1", "row": 0, "inputs": {"x": 1.5, "c": "red"}},
        {**LOGGED[1], "request_id": "r1", "row": 1, "inputs": {"x": None, "c": "blue"}},
    ]
    plain = monitor.to_batch(records, ["y", "x", "c", "year"], make_params())
    assert list(plain.columns) == ["y", "x", "c", "year"]
    assert plain["y"].isna().all() and plain["x"].tolist()[0] == 1.5
    # data.time (year): each row's time, its event time else its arrival.
    assert plain["year"].tolist() == ["2026-01-03T09:00:00+00:00", "2025-12-31T00:00:00+00:00"]
    keyed = monitor.to_batch(records, ["y", "x", "c"], make_params({"data.id_column": "key"}))
    assert keyed["key"].tolist() == ["log-r1-0", "log-r1-1"]


def test_monitor_reads_the_exported_models_roles_only_beside_its_training_data(
    tmp_path, monkeypatch
):
    """The roles come from the checked set's model.json, and the training split must be
    the one that model was trained on: else one line naming the file and the fix."""
    from {{ cookiecutter.package_name }}.core import io, paths
    from {{ cookiecutter.package_name }}.core.errors import DataError
    from {{ cookiecutter.package_name }}.export import manifest

    monkeypatch.chdir(tmp_path)
    io.write_parquet(paths.TRAIN, frame(30).assign(y=1))
    roles = {"target": "y", "numeric": ["x"], "categorical": ["c"], "time": None, "groups": []}
    meta = {"features": {"roles": roles}, "data": {"train_md5": io.file_md5(paths.TRAIN)}}
    io.write_bytes(paths.MODEL, b"model")
    io.write_json(paths.MODEL_METADATA, meta)
    io.write_json(paths.MODEL_MANIFEST, manifest.record())
    assert monitor.exported_roles() == ROLES
    io.write_parquet(paths.TRAIN, frame(31).assign(y=1))
    with pytest.raises(DataError, match="^data/processed/train.parquet is not the training data"):
        monitor.exported_roles()
    io.write_bytes(paths.MODEL, b"another model")
    with pytest.raises(DataError, match="^models/model.skops is not the file models/manifest"):
        monitor.exported_roles()


def test_lines_of_the_log_that_are_no_record_are_named_counted_and_reported(tmp_path, caplog):
    path = tmp_path / "p.jsonl"
    whole = [json.dumps({**r, "inputs": {"x": 1.0, "c": "red"}}) for r in LOGGED[:3]]
    lines = [whole[0], whole[1][:30], whole[1], "{}", whole[2]]  # a torn one, an edited one
    path.write_text("".join(line + "\n" for line in lines))
    logged = monitor.logged_rows(path, None)
    assert [r["request_id"] for r in logged.rows] == ["r1", "r2", "r3"] and len(logged.times) == 3
    assert logged.skipped == 2 and len(logged.every) == 3
    assert f"{path} line 2: not a whole prediction record" in caplog.text
    assert "2 such lines in the log" in caplog.text
    report = {**monitor.drift_report(frame(50), frame(50), ROLES, RULES), "skipped_lines": 2}
    assert "2 lines of the log were no whole record" in monitor.summary(report)


def test_a_log_with_no_whole_record_is_refused_naming_the_line(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text('{"time": "2026-01-01", "request_id": "r", "ro\n')
    with pytest.raises(DataError, match=rf"no predictions logged in {path} \({path} line 1: "):
        monitor.logged_rows(path, None)


def test_logged_text_like_na_is_a_category_and_null_is_missing():
    """The data's rule in the log: a logged "NA" is a category (unseen when training had
    none, known when it had one), a logged null is missing."""
    records = [{"inputs": {"x": 0.0, "c": "NA" if n % 2 else None}} for n in range(40)]
    live = monitor.logged_inputs(records, ROLES)
    unseen = monitor.drift_report(frame(2000), live, ROLES, RULES)["features"]["c"]
    assert unseen["unseen_share"] == 0.5
    known = monitor.drift_report(frame(2000, colors=("NA", "red")), live, ROLES, RULES)
    assert known["features"]["c"]["unseen_share"] == 0.0


def test_a_batch_from_the_log_reads_back_by_the_same_rule(tmp_path, make_params):
    """to_batch writes a null as an empty cell and "NA" as text: ingest reads them back
    as missing and as the category NA (data.missing_values empty)."""
    records = [
        {**LOGGED[0], "request_id": "r1", "row": 0, "inputs": {"x": 1.5, "c": "NA"}},
        {**LOGGED[1], "request_id": "r1", "row": 1, "inputs": {"x": None, "c": None}},
    ]
    params = make_params({"data.missing_values": []})
    path = tmp_path / "batch.csv"
    io.write_csv(path, monitor.to_batch(records, ["y", "x", "c"], params))
    back = batches.READERS[".csv"](path, missing_values=params.data.missing_values)
    assert back["c"].tolist()[0] == "NA" and back["c"].isna().tolist() == [False, True]
    assert back["x"].isna().tolist() == [False, True] and back["y"].isna().all()
