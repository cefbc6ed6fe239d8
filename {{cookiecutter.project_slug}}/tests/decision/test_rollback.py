"""`monitor --act`'s rollback in conftest's git + DVC + GTO repo with v0.0.2 (commit 2) in
prod after v0.0.1 (commit 1): labels that say v0.0.2 is wrong roll prod back to v0.0.1,
the record committed alone; a second run finds nothing to act on; with no version to go
back to, or a step that fails, nothing is left behind."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
import uuid

import pytest
import yaml
from gto import api

from {{ cookiecutter.package_name }}.__main__ import main
from {{ cookiecutter.package_name }}.core.errors import DataError, UserError
from {{ cookiecutter.package_name }}.core.params import load, load_service
from {{ cookiecutter.package_name }}.decision import rollback
from {{ cookiecutter.package_name }}.monitoring import labels
from {{ cookiecutter.package_name }}.serving import prediction_log

ARTIFACT = "toy-model"  # conftest's
ALERT = {"min_labelled_rows": 20, "windows": 3, "breaches": 2, "max_bias": 0.15}


def run(root, *command: str) -> str:
    return subprocess.run(command, cwd=root, capture_output=True, text=True, check=True).stdout


def read(log) -> list[dict]:
    """The log's records, as `monitor` hands them to the rollback (Logged.every)."""
    return prediction_log.load(log).records


def prod(root) -> str:
    return api.show(str(root))[ARTIFACT]["stage"]["prod"]


def answers(task: str, wrong: bool) -> tuple[object, object]:
    """(prediction, label) of a row: the same, or far apart (a bias of every slice)."""
    if task == "classification":
        return "low", "high" if wrong else "low"
    return 0.0, 50.0 if wrong else 0.0


def write_log(path, version, task, rows: int, *, wrong: bool, feedback, after: int = 0) -> None:
    """`rows` answers of `version`, logged `after` seconds from now, a millisecond apart;
    their labels sent later to `feedback`."""
    now = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=after)
    request = uuid.uuid4().hex
    prediction, label = answers(task, wrong)
    records = [
        {
            "time": (now + dt.timedelta(milliseconds=i)).isoformat(timespec="milliseconds"),
            "request_id": request,
            "row": i,
            "id": f"{request}-{i}",
            "model_version": version,
            "inputs": {},
            "prediction": prediction + i % 2 if task == "regression" else prediction,
            "probabilities": None,
        }
        for i in range(rows)
    ]
    log = prediction_log.PredictionLog(path, 10_000_000, 2, 60.0, queue_rows=10_000)
    log.write(records)
    log.close()
    pairs = [
        (r["id"], label + i % 2 if task == "regression" else label) for i, r in enumerate(records)
    ]
    labels.append(feedback, pairs, now.isoformat())


@pytest.fixture
def two_versions(repo, tmp_path, task):
    """v0.0.2 (commit 2) in prod after v0.0.1; (root, params, service, log path)."""
    root, commits = repo
    api.register(str(root), ARTIFACT, commits["challenger"], version="v0.0.2")
    api.assign(str(root), ARTIFACT, "prod", version="v0.0.2")
    feedback = tmp_path / "logs" / "feedback.jsonl"
    service = load_service(root / "service.yaml")
    service = service.model_copy(
        update={
            "alert": service.alert.model_copy(update=ALERT),
            "serve": service.serve.model_copy(update={"feedback_log": str(feedback)}),
        }
    )
    return root, load(root / "params.yaml"), service, tmp_path / "logs" / "predictions.jsonl"


def decisions(root) -> list[str]:
    folder = root / "decisions"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_wrong_answers_roll_prod_back_with_a_committed_record_and_only_once(
    two_versions, task, capsys
):
    root, params, service, log = two_versions
    feedback = service.serve.feedback_log
    write_log(log, "v0.0.2", task, 60, wrong=True, feedback=feedback)
    head = run(root, "git", "rev-parse", "HEAD").strip()
    assert rollback.main(root, params, service, read(log)) == 0
    out = capsys.readouterr().out
    assert "alert: v0.0.2: 3 of the last 3 windows of 20 labelled rows breached" in out
    assert "rollback: prod v0.0.2 -> v0.0.1, committed" in out
    assert prod(root) == "v0.0.1"
    assert run(root, "git", "rev-parse", "HEAD~1").strip() == head
    assert run(root, "git", "log", "-1", "--format=%s").startswith(
        "rollback: prod v0.0.2 -> v0.0.1"
    )
    files = run(root, "git", "show", "--name-only", "--format=", "HEAD").split()
    assert files == [f"decisions/{name}" for name in decisions(root)] and len(files) == 2
    assert run(root, "git", "status", "--porcelain") == ""
    record = json.loads((root / files[0]).read_text())
    assert (record["kind"], record["from"]["version"], record["to"]["version"]) == (
        "rollback", "v0.0.2", "v0.0.1",
    )  # fmt: skip
    assert len(record["alert"]["windows"]) == 3 and record["policy"]["min_labelled_rows"] == 20
    assert all("bias" in reason for w in record["alert"]["windows"] for reason in w["breach"])
    assert "| window from |" in (root / files[1]).read_text()
    # Idempotent: the version rolled back to has answered nothing since: no window, no act.
    tags = run(root, "git", "tag")
    assert rollback.main(root, params, service, read(log)) == 0
    assert "v0.0.1: 0 of the last 0 windows" in capsys.readouterr().out
    assert run(root, "git", "tag") == tags and len(decisions(root)) == 2


def test_right_answers_and_one_noisy_window_do_not_act(two_versions, task, capsys):
    root, params, service, log = two_versions
    feedback = service.serve.feedback_log
    write_log(log, "v0.0.2", task, 40, wrong=False, feedback=feedback)
    write_log(log, "v0.0.2", task, 20, wrong=True, feedback=feedback, after=10)
    assert rollback.main(root, params, service, read(log)) == 0
    assert "1 of the last 3 windows" in capsys.readouterr().out
    assert prod(root) == "v0.0.2" and decisions(root) == []


def test_no_version_to_go_back_to_is_one_line_status_1_and_nothing_written(
    two_versions, task, capsys
):
    root, params, service, log = two_versions
    write_log(log, "v0.0.2", task, 60, wrong=True, feedback=service.serve.feedback_log)
    run(root, "git", "tag", "-d", f"{ARTIFACT}#prod#1")  # v0.0.1 was never in prod
    tags = run(root, "git", "tag")
    with pytest.raises(UserError, match="no earlier version held in prod"):
        rollback.main(root, params, service, read(log))
    assert decisions(root) == [] and run(root, "git", "tag") == tags and prod(root) == "v0.0.2"


def test_a_failing_assign_undoes_the_commit_and_keeps_the_workspace(
    two_versions, task, monkeypatch
):
    root, params, service, log = two_versions
    write_log(log, "v0.0.2", task, 60, wrong=True, feedback=service.serve.feedback_log)
    (root / "service.yaml").write_text((root / "service.yaml").read_text() + "\n# mine\n")
    head, tags = run(root, "git", "rev-parse", "HEAD"), run(root, "git", "tag")

    def refuse(*args, **kwargs):
        raise RuntimeError("tag refused")

    monkeypatch.setattr(api, "assign", refuse)
    with pytest.raises(DataError, match="gto assign failed: tag refused"):
        rollback.main(root, params, service, read(log))
    assert run(root, "git", "rev-parse", "HEAD") == head and run(root, "git", "tag") == tags
    assert decisions(root) == []
    assert run(root, "git", "status", "--porcelain") == " M service.yaml\n"


def test_a_version_rolled_back_from_is_never_chosen_again():
    when = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    history = [
        rollback.Assignment(version, f"c{version}", when, number)
        for number, version in ((4, "v3"), (3, "v2"), (2, "v3"), (1, "v1"))
    ]
    assert rollback.last_held(history, ()).version == "v2"
    assert rollback.last_held(history, ("v2",)).version == "v1"
    assert rollback.last_held(history, ("v2", "v1")) is None


def test_monitor_act_in_the_cli_and_decide_refuses_to_replay_a_rollback(
    two_versions, task, capsys, project, monkeypatch
):
    root, *_ = two_versions
    shutil.copytree(project / "plots", root / "plots")  # monitor's page draws with it
    settings = yaml.safe_load((root / "service.yaml").read_text())
    settings["alert"].update(ALERT)
    (root / "service.yaml").write_text(yaml.safe_dump(settings))
    run(root, "git", "commit", "-qam", "alert: windows of 20 rows")
    service = load_service(root / "service.yaml")
    feedback = root / service.serve.feedback_log
    write_log(
        root / service.serve.prediction_log, "v0.0.2", task, 60, wrong=True, feedback=feedback
    )
    reads, load = [], prediction_log.load
    monkeypatch.setattr(prediction_log, "load", lambda path: reads.append(path) or load(path))
    assert main(["monitor", "--act"]) == 0
    # One read for the drift, the live figures, the shadow and the alert (was three).
    assert [str(p) for p in reads] == [service.serve.prediction_log]
    assert "rollback: prod v0.0.2 -> v0.0.1" in capsys.readouterr().out
    assert prod(root) == "v0.0.1"
    (path,) = [p for p in decisions(root) if p.endswith(".json")]
    assert main(["decide", "--replay", f"decisions/{path}"]) == 1
    err = capsys.readouterr().err
    assert "records a rollback (monitor --act), which decide does not replay" in err
    assert err.count("\n") == 1


def test_a_loop_turn_rolls_back_first_and_its_line_records_it(two_versions, task, capsys):
    from {{ cookiecutter.package_name }}.decision import loop

    root, params, service, log = two_versions
    write_log(log, "v0.0.2", task, 60, wrong=True, feedback=service.serve.feedback_log)
    assert loop.main(params, service, log) == 0
    assert prod(root) == "v0.0.1"
    subjects = run(root, "git", "log", "-2", "--format=%s").splitlines()
    assert subjects[0].startswith("loop: no trigger (prod rolled back v0.0.2 -> v0.0.1;")
    assert subjects[1].startswith("rollback: prod v0.0.2 -> v0.0.1")
    line = json.loads((root / loop.RECORD).read_text().splitlines()[-1])
    assert (line["rollback"]["from"], line["rollback"]["to"]) == ("v0.0.2", "v0.0.1")
    assert line["rollback"]["commit"] == run(root, "git", "rev-parse", "HEAD~1").strip()


def test_a_loop_turn_with_nothing_to_roll_back_to_records_it_and_goes_on(two_versions, task):
    """monitor --act fails (a person must act); a loop turn records the refusal and goes on,
    since its retrain may be the way out."""
    from {{ cookiecutter.package_name }}.decision import loop

    root, params, service, log = two_versions
    write_log(log, "v0.0.2", task, 60, wrong=True, feedback=service.serve.feedback_log)
    run(root, "git", "tag", "-d", f"{ARTIFACT}#prod#1")  # v0.0.1 was never in prod
    assert loop.main(params, service, log) == 0
    assert prod(root) == "v0.0.2" and decisions(root) == ["loop.jsonl"]  # no rollback record
    subject = run(root, "git", "log", "-1", "--format=%s")
    assert subject.startswith("loop: no trigger (the alert acts, but no earlier version")
    line = json.loads((root / loop.RECORD).read_text().splitlines()[-1])
    assert "no earlier version held in prod" in line["rollback"]["refused"]
