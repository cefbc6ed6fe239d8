"""compare: the experiments table built from `dvc exp show --json`, best headline first.

The sample has the shape `dvc exp show --json` gave for this project (workspace, the
branch head, its experiments; params, deps and outs left out: compare reads only
reports/evaluate/headline.json). The command's run over real experiments is a template
test (tests/test_pipeline.py of the template).
"""

from __future__ import annotations

import json

import pytest

from {{ cookiecutter.package_name }}.__main__ import main
from {{ cookiecutter.package_name }}.tools import compare


def headline(model, value, metric="neg_log_loss", **extra):
    return {
        "model": model,
        "headline_metric": metric,
        "headline": value,
        "business": 0.9,
        **extra,
    }


def entry(rev, name, figures):
    metrics = {"reports/clean.json": {"data": {"rows_in": 224}}}
    if figures is not None:
        metrics["reports/evaluate/headline.json"] = {"data": figures}
    return {"rev": rev, "name": name, "data": {"rev": rev, "metrics": metrics}, "error": None}


def experiment(rev, name, figures):
    return {"revs": [entry(rev, name, figures)], "executor": None, "name": name}


CLASSES = {"worst_class": "Chinstrap", "worst_class_f1": 0.8889, "gap_column": "island",
           "group_gap": 0.125, "recent_balanced_accuracy": 0.95}  # fmt: skip
SAMPLE = [
    {**entry("workspace", None, headline("random_forest", -0.0926, **CLASSES)),
     "experiments": None},
    {**entry("45246bfe70fcad652622b013f82d81b8995833c8", "main",
             headline("logistic_regression", -0.0402, **CLASSES)),
     "experiments": [
         experiment("e021df68424499e279fa6bf660469f7e3db4f54c", "a-rather-long-experiment-name",
                    headline("hist_gradient_boosting", -0.1419, **CLASSES)),
         experiment("908e735b188ae24766643b0a64745c634fb205a8", None,
                    headline("logistic_regression", 0.97, metric="accuracy")),
         experiment("b325d9b8526112f87f88b9ad19f57585e2d571fd", "queued", None),
     ]},
]  # fmt: skip


def test_rows_name_the_workspace_branches_and_experiments():
    found = compare.rows(SAMPLE)
    names = [r["name"] for r in found]
    assert names == ["workspace", "main", "a-rather-long-experiment-name", "908e735", "queued"]
    assert found[1]["model"] == "logistic_regression"
    assert found[4] == {"name": "queued"}, "an experiment without results has no figures"


def test_greater_headline_ranks_first_also_for_losses():
    found = compare.rows(SAMPLE)
    metric = compare.headline_metric(found)
    assert metric == "neg_log_loss"
    order = [r["name"] for r in compare.ranked(found, metric)]
    # neg_log_loss -0.04 beats -0.09 beats -0.14; another metric's row, then none, follow.
    assert order == ["main", "workspace", "a-rather-long-experiment-name", "908e735", "queued"]


def test_text_table_fits_120_columns_and_keeps_names_models_headlines_whole():
    found = compare.ranked(compare.rows(SAMPLE), "neg_log_loss")
    columns, cells = compare.table(found, "neg_log_loss")
    assert [c.title for c in columns] == [
        "Experiment", "Model", "neg_log_loss", "business", "worst class (F1)", "group gap",
        "recent",
    ]  # fmt: skip
    text = compare.render_text(columns, cells, 120)
    lines = text.splitlines()
    assert all(len(line) <= 120 for line in lines)
    assert lines[0].split()[:3] == ["Experiment", "Model", "neg_log_loss"]
    assert lines[2].split()[:3] == ["main", "logistic_regression", "-0.0402"]
    single = [{"name": "x", **headline("m", -0.040242)}]
    assert compare.table(single, "neg_log_loss")[1][0][2] == "-0.040242", "as evaluate rounds"
    assert "a-rather-long-experiment-name  hist_gradient_boosting" in lines[4]
    assert "0.97 (accuracy)" in lines[5], "a row scored by another metric says which"
    narrow = compare.render_text(columns, cells, 110).splitlines()
    assert all(len(line) <= 110 for line in narrow)
    assert "a-rather-long-experiment-name  hist_gradient_boosting" in narrow[4]
    assert "Chinstrap 0.8889" not in narrow[4] and "Chin" in narrow[4], "names give way first"
    wide = compare.render_text(columns, cells, 200)
    assert "Chinstrap 0.8889" in wide and "island 0.125" in wide


def test_regression_rows_have_no_worst_class_column():
    found = [{"name": "workspace", **headline("ridge", -3.2, "neg_root_mean_squared_error",
                                              gap_column="island", group_gap=0.4,
                                              recent_rmse=3.5)}]  # fmt: skip
    columns, cells = compare.table(found, "neg_root_mean_squared_error")
    assert [c.title for c in columns] == [
        "Experiment", "Model", "neg_root_mean_squared_error", "business", "group gap",
        "recent",
    ]  # fmt: skip
    assert cells == [["workspace", "ridge", "-3.2", "0.9", "island 0.4", "3.5"]]
    (title, rule, row) = compare.render_text(columns, cells, 60).splitlines()
    assert len(title) <= 60 and "neg_ro" in title and "…" in title, "the caption has it whole"
    assert row.split() == cells[0][:4] + ["island", "0.4", "3.5"]


def test_markdown_is_a_github_table(monkeypatch, capsys):
    monkeypatch.setattr(compare, "exp_show", lambda options: SAMPLE)
    assert main(["compare", "--md"]) == 0
    caption, blank, *lines = capsys.readouterr().out.splitlines()
    assert caption == (
        "Headline metric: neg_log_loss on the test split (greater is better), best first. "
        "recent: balanced_accuracy on the most recent test rows."
    )
    assert blank == ""
    assert lines[0] == (
        "| Experiment | Model | neg_log_loss | business | worst class (F1) | group gap | recent |"
    )
    assert lines[1] == "|---|---|---:|---:|---|---|---:|"
    assert lines[2] == (
        "| main | logistic_regression | -0.0402 | 0.9 | Chinstrap 0.8889 | island 0.125 | 0.95 |"
    )
    assert len(lines) == 2 + 5


def test_markdown_without_experiments_is_the_workspace_row(monkeypatch, capsys):
    monkeypatch.setattr(compare, "exp_show", lambda options: [entry("workspace", None, None)])
    assert main(["compare", "--md"]) == 0
    caption, _, *lines = capsys.readouterr().out.splitlines()
    assert caption.startswith("No experiment has reports/evaluate/headline.json yet")
    assert lines[2:] == ["| workspace | - | - | - | - | - |"]


def test_unknown_options_go_to_dvc_exp_show(monkeypatch, capsys):
    seen = []
    monkeypatch.setattr(compare, "exp_show", lambda options: seen.append(options) or SAMPLE)
    assert main(["compare", "-n", "3", "--rev", "main", "--sort-by", "business"]) == 0
    assert seen == [["-n", "3", "--rev", "main", "--sort-by", "business"]]
    out = capsys.readouterr().out.splitlines()
    body = out[next(i for i, line in enumerate(out) if line.startswith("---")) + 1 :]
    assert [line.split()[0] for line in body][:2] == ["workspace", "main"], "DVC's order kept"


def test_output_format_options_and_dvc_failures_are_one_line_errors(tmp_path, monkeypatch, capsys):
    assert main(["compare", "--csv"]) == 1
    assert capsys.readouterr().err.startswith("error: compare prints its own table, so --csv")
    monkeypatch.chdir(tmp_path)  # not a DVC repository
    assert main(["compare"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: dvc exp show failed: ") and len(err.splitlines()) == 1


def test_other_commands_still_refuse_unknown_options(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["ingest", "--rev", "main"])
    assert exit_.value.code == 2
    assert "unrecognized arguments: --rev main" in capsys.readouterr().err


def test_exp_show_json_is_parsed(monkeypatch):
    class Done:
        returncode, stdout, stderr = 0, json.dumps(SAMPLE), ""

    calls = []
    monkeypatch.setattr(compare.subprocess, "run", lambda cmd, **kw: calls.append(cmd) or Done)
    assert compare.exp_show(["-A"]) == SAMPLE
    assert calls[0][1:] == ["-m", "dvc", "exp", "show", "--json", "-A"]
