"""`feedback FILE`: labels for logged rows from a CSV or Parquet file of id,label, stored
all or none (the last of a repeated id), each refusal one line with nothing written."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest

from {{ cookiecutter.package_name }}.__main__ import main
from {{ cookiecutter.package_name }}.monitoring import labels
from {{ cookiecutter.package_name }}.serving.prediction_log import PredictionLog

LOG = "logs/predictions.jsonl"
FEEDBACK = "logs/feedback.jsonl"  # service.yaml's serve.feedback_log


def truth(task: str, i: int) -> object:
    """A label of this task: a class name (classification), a number (regression)."""
    return ["Adelie", "Gentoo"][i % 2] if task == "classification" else i + 0.5


@pytest.fixture
def workspace(project, tmp_path, monkeypatch, task):
    """A project folder (params.yaml, service.yaml), the working directory, whose
    prediction log holds rows r-0 .. r-4 (r-1's request carried its label)."""
    for name in ("params.yaml", "service.yaml"):
        shutil.copy(project / name, tmp_path / name)
    monkeypatch.chdir(tmp_path)
    log = PredictionLog(tmp_path / LOG, 10_000_000, 2, 60.0, queue_rows=1000)
    records = [
        {"time": "2026-01-01T00:00:00.000+00:00", "request_id": "r", "row": i, "id": f"r-{i}",
         "inputs": {}, "prediction": truth(task, 0)}
        for i in range(5)
    ]  # fmt: skip
    records[1]["label"] = truth(task, 1)
    log.write(records)
    log.close()
    return tmp_path


def csv(path, rows: list[tuple]) -> str:
    pd.DataFrame(rows, columns=["id", "label"]).to_csv(path, index=False)
    return str(path)


def test_labels_of_logged_rows_are_stored_the_last_of_a_repeated_id_wins(workspace, task, capsys):
    logged = (workspace / LOG).read_bytes()
    rows = [("r-0", truth(task, 0)), ("r-2", truth(task, 2)), ("r-0", truth(task, 1))]
    assert main(["feedback", csv(workspace / "a.csv", rows + [("r-3", truth(task, 3))])]) == 0
    assert capsys.readouterr().out == (
        f"stored 3 labels in {FEEDBACK} (0 replaced an earlier one); labelled: 4 of 5 logged "
        "rows (80.0%)\n"
    )
    assert main(["feedback", csv(workspace / "b.csv", [("r-0", truth(task, 0))])]) == 0
    assert "stored 1 label in logs/feedback.jsonl (1 replaced" in capsys.readouterr().out
    stored = {id_: entry["label"] for id_, entry in labels.latest(workspace / FEEDBACK).items()}
    expected = {"r-0": truth(task, 0), "r-2": truth(task, 2), "r-3": truth(task, 3)}
    assert stored == expected
    assert (workspace / LOG).read_bytes() == logged  # the log is never rewritten


def test_a_class_named_by_a_number_is_stored_as_its_text(workspace, task, capsys):
    if task != "classification":
        pytest.skip("classification only: a regression's labels are numbers")
    # A column of whole numbers with a gap reads as floats: 1.0 names the class "1".
    assert main(["feedback", csv(workspace / "n.csv", [("r-0", 1), ("r-2", None)])]) == 0
    assert labels.latest(workspace / FEEDBACK)["r-0"]["label"] == "1"
    assert "1 row without a label skipped" in capsys.readouterr().out


def test_unknown_ids_are_refused_in_one_line_unless_skip_unknown(workspace, task, capsys):
    rows = [("r-0", truth(task, 0))] + [(f"x-{i}", truth(task, i)) for i in range(4)]
    file = csv(workspace / "a.csv", rows)
    assert main(["feedback", file]) == 1
    assert capsys.readouterr().err == (
        "error: 4 of 5 ids are in no prediction log ('x-0', 'x-1', 'x-2' ...): nothing "
        "stored; check the ids against the answers' `ids`, or pass --skip-unknown to store "
        "the 1 known\n"
    )
    assert not (workspace / FEEDBACK).exists()
    assert main(["feedback", file, "--skip-unknown"]) == 0
    assert "stored 1 label" in capsys.readouterr().out
    assert list(labels.latest(workspace / FEEDBACK)) == ["r-0"]


def test_a_parquet_file_with_other_columns_and_rows_without_a_label(workspace, task, capsys):
    frame = pd.DataFrame(
        {"annotator": ["ann", "bo", "cy"], "id": ["r-3", "r-4", "r-2"],
         "label": [truth(task, 3), None, truth(task, 2)]}
    )  # fmt: skip
    frame.to_parquet(workspace / "labels.parquet")
    assert main(["feedback", "labels.parquet", "--log", LOG]) == 0
    out = capsys.readouterr().out
    assert "stored 2 labels" in out and "1 row without a label skipped" in out
    assert set(labels.latest(workspace / FEEDBACK)) == {"r-3", "r-2"}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "a.csv is empty: give it a header id,label"),
        ("id,label\n", "a.csv has no rows: nothing to store"),
        ("id,truth\nr-0,x\n", "a.csv has no label column: give it the columns id,label"),
        ("key,truth\nr-0,x\n", "a.csv has no id and no label column"),
        ("id,label\nr-0,\n", "a.csv: no row has a label (1 rows): nothing to store"),
        ("id,label\nr-0,x\n,x\n", "a.csv row 2 has no id: every label needs its row's id"),
    ],
)
def test_a_bad_file_is_one_line_and_nothing_is_written(workspace, capsys, content, message):
    (workspace / "a.csv").write_text(content)
    assert main(["feedback", "a.csv"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: {message}") and err.count("\n") == 1, err
    assert not (workspace / FEEDBACK).exists()


def test_a_label_of_the_wrong_type_is_one_line_naming_the_row(workspace, task, capsys):
    if task == "classification":
        rows, message = [("r-0", 2.0), ("r-2", 1.5)], "row 2: label 1.5 is no class"
    else:
        rows, message = [("r-0", 1.0), ("r-2", "many")], "row 2: label 'many' is no finite number"
    assert main(["feedback", csv(workspace / "a.csv", rows)]) == 1
    assert message in capsys.readouterr().err
    assert not (workspace / FEEDBACK).exists()


def test_no_such_file_kind_or_log_is_one_line(workspace, task, capsys):
    (workspace / "a.txt").write_text("id,label\n")
    for argv, message in (
        (["missing.csv"], "missing.csv does not exist"),
        (["a.txt"], "a.txt is no .csv or .parquet file"),
        ([csv(workspace / "a.csv", [("r-0", truth(task, 0))]), "--log", "other.jsonl"],
         "no prediction log at other.jsonl"),
    ):  # fmt: skip
        assert main(["feedback", *argv]) == 1
        assert message in capsys.readouterr().err
    assert not (workspace / FEEDBACK).exists()
