"""compare: the experiments tables built from `dvc exp show --json`, best headline first.

The sample has the shape `dvc exp show --json` gave for this project (workspace, the
branch head, its experiments; each with its params.yaml, its deps' hashes and its metrics
files; outs left out). The command's run over real experiments is a template test
(tests/test_pipeline.py of the template).
"""

from __future__ import annotations

import copy
import json
import re

import pytest

from {{ cookiecutter.package_name }}.__main__ import main
from {{ cookiecutter.package_name }}.tools import compare

SETTINGS = {
    "data": {"source": "data/raw", "target": "species", "groups": ["sex", "island"]},
    "model": {"name": "auto"},
    "task": "classification",
    "metric": "neg_log_loss",
    "seed": 42,
    "business": {"value_matrix": {}, "correct_value": 1.0, "wrong_value": 0.0},
}
RAW = "effcbd6225e566f7df8e543c7c3755ce.dir"


def headline(model, value, metric="neg_log_loss", **extra):
    return {"model": model, "headline_metric": metric, "headline": value, "business": 0.9, **extra}


def entry(rev, name, figures, changes=None, data_hash=RAW, winner="logistic_regression"):
    """One revision as `dvc exp show --json` gives it; `changes` set dotted params keys."""
    settings = copy.deepcopy(SETTINGS)
    for dotted, value in (changes or {}).items():
        *parents, leaf = dotted.split(".")
        node = settings
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = copy.deepcopy(value)
    metrics = {"reports/clean.json": {"data": {"rows_in": 224}}}
    if figures is not None:
        metrics["reports/evaluate/headline.json"] = {"data": figures}
        metrics["reports/select.json"] = {"data": {"winner": winner, "metric": "neg_log_loss"}}
    source = settings["data"]["source"]
    deps = {source: {"hash": data_hash, "size": 10049, "nfiles": 2},
            "src/pkg/io.py": {"hash": "0a1b", "size": 900, "nfiles": None}}  # fmt: skip
    data = {"rev": rev, "metrics": metrics, "deps": deps,
            "params": {"params.yaml": {"data": settings}}}  # fmt: skip
    return {"rev": rev, "name": name, "data": data, "error": None}


def experiment(rev, name, figures, changes=None, **kwargs):
    return {"revs": [entry(rev, name, figures, changes, **kwargs)], "executor": None, "name": name}


CLASSES = {"worst_class": "Chinstrap", "worst_class_f1": 0.8889, "gap_column": "island",
           "group_gap": 0.125, "recent_balanced_accuracy": 0.95}  # fmt: skip
# As conf/model/ files compose: `_target_` and the export facts follow from `name`.
LR = {"model": {"_target_": "sklearn.linear_model.LogisticRegression",
                "name": "logistic_regression", "C": 1.0, "max_iter": 1000,
                "_onnx_": {"float32": False}}}  # fmt: skip
FOREST = {"model": {"_target_": "sklearn.ensemble.RandomForestClassifier",
                    "name": "random_forest", "n_estimators": 100, "_onnx_": {"float32": True},
                    "_skops_trusted_": ["sklearn.tree._tree.Tree"]}}  # fmt: skip
SAMPLE = [
    {**entry("workspace", None, headline("random_forest", -0.0926, **CLASSES),
             FOREST),
     "experiments": None},
    {**entry("45246bfe70fcad652622b013f82d81b8995833c8", "main",
             headline("logistic_regression", -0.0402, **CLASSES)),
     "experiments": [
         experiment("e021df68424499e279fa6bf660469f7e3db4f54c", "a-rather-long-experiment-name",
                    headline("logistic_regression", -0.1419, **CLASSES), {**LR, "model.C": 0.01}),
         experiment("6a1f0c3e9d2b4a7c8e5f1a2b3c4d5e6f7a8b9c0d", "c-big",
                    headline("logistic_regression", -0.0139, **CLASSES), {**LR, "model.C": 10}),
         experiment("908e735b188ae24766643b0a64745c634fb205a8", None,
                    headline("logistic_regression", 0.97, metric="accuracy"),
                    {"metric": "accuracy"}),
         experiment("1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d", "own-data",
                    headline("logistic_regression", -0.2, **CLASSES),
                    {"data.source": "data/mine"}, data_hash="77aa.dir"),
         experiment("2c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d", "more-penguins",
                    headline("logistic_regression", -0.03, **CLASSES), data_hash="88bb.dir"),
         experiment("3c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d", "costly-mistakes",
                    headline("logistic_regression", -0.05, **CLASSES),
                    {"business.value_matrix": {"Adelie": {"Chinstrap": -2.0}}}),
         experiment("b325d9b8526112f87f88b9ad19f57585e2d571fd", "queued", None),
     ]},
]  # fmt: skip


def test_runs_name_each_row_and_read_its_figures_settings_and_data_version():
    found = compare.runs(SAMPLE)
    names = [r.name for r in found]
    assert names == ["workspace", "main", "a-rather-long-experiment-name", "c-big", "908e735",
                     "own-data", "more-penguins", "costly-mistakes", "queued"]  # fmt: skip
    workspace, main_ = found[:2]
    assert workspace.figures["model"] == "random_forest"
    assert workspace.select_first == "logistic_regression"
    assert workspace.params["model.n_estimators"] == 100 and "model.C" not in workspace.params
    assert main_.params["data.groups"] == ["sex", "island"], "a list is one value"
    assert main_.params["business.value_matrix"] == {}, "an empty mapping is one value"
    assert found[5].params["data.source"] == "data/mine"
    assert found[5].deps["data/mine"] == "77aa.dir"
    assert found[8].figures == {} and found[8].select_first is None, "queued: no results"


def test_runs_on_other_data_metric_or_business_settings_are_listed_apart_saying_why():
    groups = compare.sections(compare.runs(SAMPLE))
    assert [[r.name for r in g.runs] for g in groups] == [
        ["workspace", "main", "a-rather-long-experiment-name", "c-big", "queued"],
        ["908e735"],
        ["own-data"],
        ["more-penguins"],
        ["costly-mistakes"],
    ]
    assert [(g.metric, g.apart) for g in groups] == [
        ("neg_log_loss", ""),
        ("accuracy", "scored by accuracy"),
        ("neg_log_loss", "different data: data/mine"),
        ("neg_log_loss", "different data: another version of data/raw"),
        ("neg_log_loss", "business.value_matrix differs"),
    ]


def test_the_setting_most_runs_share_is_ranked_first():
    """After `dvc exp run -S business...`, the workspace holds that run's settings: the
    runs on the usual settings are still the main table, and those two are listed apart."""
    costly = {"business.value_matrix": {"Adelie": {"Chinstrap": -2.0}}}
    shown = [
        {**entry("workspace", None, headline("logistic_regression", -0.05), costly),
         "experiments": None},
        {**entry("45246bfe70fcad652622b013f82d81b8995833c8", "main",
                 headline("logistic_regression", -0.04)),
         "experiments": [
             experiment("e021df68424499e279fa6bf660469f7e3db4f54c", "costly",
                        headline("logistic_regression", -0.05), costly),
             experiment("6a1f0c3e9d2b4a7c8e5f1a2b3c4d5e6f7a8b9c0d", "forest",
                        headline("random_forest", -0.09), {"model.name": "random_forest"}),
             experiment("908e735b188ae24766643b0a64745c634fb205a8", "older",
                        headline("random_forest", -0.1), {"model.name": "random_forest"}),
         ]},
    ]  # fmt: skip
    groups = compare.sections(compare.runs(shown))
    assert [([r.name for r in g.runs], g.apart) for g in groups] == [
        (["main", "forest", "older"], ""),
        (["workspace", "costly"], "business.value_matrix differs"),
    ]


def test_greater_headline_ranks_first_also_for_losses():
    first = compare.sections(compare.runs(SAMPLE))[0]
    order = [r.name for r in compare.ranked(first.runs)]
    # neg_log_loss -0.01 beats -0.04 beats -0.09 beats -0.14; a run without one follows.
    assert order == ["c-big", "main", "workspace", "a-rather-long-experiment-name", "queued"]


def test_a_column_for_each_setting_that_tells_the_runs_apart():
    first = compare.sections(compare.runs(SAMPLE))[0]
    # model.C: the runs holding it differ; model.max_iter: those holding it agree; the
    # class and the export facts (model._target_, model._onnx_.float32) follow the name.
    assert compare.differing(first.runs) == ["model.name", "model.C"]
    columns, cells = compare.table(first)
    assert [c.title for c in columns][-2:] == ["model.name", "model.C"]
    assert [row[-2:] for row in cells] == [
        ["random_forest", "-"],
        ["auto", "-"],
        ["logistic_regression", "0.01"],
        ["logistic_regression", "10"],
        ["auto", "-"],
    ]
    assert columns[-1].numeric and not columns[-2].numeric
    assert compare.differing(compare.sections(compare.runs(SAMPLE))[1].runs) == []


def test_a_model_other_than_selects_first_is_marked_and_named():
    first = compare.sections(compare.runs(SAMPLE))[0]
    columns, cells = compare.table(first)
    assert [row[1] for row in cells][:2] == ["random_forest*", "logistic_regression"]
    assert compare.notes(first.runs) == (
        "* not the model select ranked first: workspace (select's first: logistic_regression)."
    )
    assert compare.notes(first.runs[1:]) == ""


def rendered(monkeypatch, capsys, width: int, *options: str) -> str:
    monkeypatch.setattr(compare, "exp_show", lambda options: SAMPLE)
    monkeypatch.setenv("COLUMNS", str(width))
    assert main(["compare", *options]) == 0
    return capsys.readouterr().out


def test_at_80_columns_no_line_is_wider_and_every_figure_is_whole(monkeypatch, capsys):
    out = rendered(monkeypatch, capsys, 80)
    assert max(len(line) for line in out.splitlines()) <= 80
    for group in compare.sections(compare.runs(SAMPLE)):
        _, cells = compare.table(group)
        for row in cells:
            assert row[2] in out and row[3] in out, row  # headline, business
            for cell in row[4:]:  # "island 0.125": its figure, whole, after a space
                assert f" {cell.rsplit(' ', 1)[-1]}" in out, (cell, out)
    assert not re.search(r"[\d.]…", out), "no figure is cut"
    # Too wide for one table: panels, each led by the experiment's name, names whole.
    headers = [line for line in out.splitlines() if line.startswith("Experiment")]
    assert len(headers) > 5, "the first section in two panels, and four more sections"
    assert out.count("a-rather-long-experiment-name  ") == 3 and "…" not in out


def test_wide_enough_it_is_one_table_with_nothing_cut(monkeypatch, capsys):
    out = rendered(monkeypatch, capsys, 200)
    lines = out.splitlines()
    assert lines[0] == (
        "Headline metric: neg_log_loss on the test split (greater is better), best first. "
        "recent: balanced_accuracy on the most recent test rows."
    )
    assert lines[1].split() == [
        "Experiment", "Model", "neg_log_loss", "business", "worst", "class", "F1", "group",
        "gap", "recent", "model.name", "model.C",
    ]  # fmt: skip
    assert lines[3].split() == [
        "c-big", "logistic_regression", "-0.0139", "0.9", "Chinstrap", "0.8889", "island",
        "0.125", "0.95", "logistic_regression", "10",
    ]  # fmt: skip
    assert "…" not in out
    assert "* not the model select ranked first: workspace" in out
    assert "Listed apart, not ranked with the runs above (different data: data/mine): " in out


def test_narrower_it_cuts_names_a_little_before_splitting_into_panels():
    group = compare.sections(compare.runs(SAMPLE))[0]
    columns, cells = compare.table(group)
    natural = len(compare.render_text(columns, cells, 500).splitlines()[1])  # the rule
    (one,) = compare.panels(columns, cells, natural - 4)
    assert len(one[0]) == len(columns), "one panel, names cut a little"
    text = compare.render_text(columns, cells, natural - 4)
    assert "a-rather-long-experiment…  " in text, "the widest name gives way first"
    assert all(len(line) <= natural - 4 for line in text.splitlines())
    split = compare.panels(columns, cells, 60)
    assert len(split) > 1 and all(chosen[0] == 0 for chosen, _ in split)
    assert sorted(i for chosen, _ in split for i in chosen[1:]) == list(range(1, len(columns)))


def test_regression_rows_have_no_worst_class_column_nor_data_without_groups_a_gap():
    figures = headline("ridge", -3.2, "neg_root_mean_squared_error", gap_column="island",
                       group_gap=0.4, recent_rmse=3.5)  # fmt: skip
    shown = [entry("workspace", None, figures, {"task": "regression"}, winner="ridge")]
    (group,) = compare.sections(compare.runs(shown))
    columns, cells = compare.table(group)
    assert [c.title for c in columns] == [
        "Experiment", "Model", "neg_root_mean_squared_error", "business", "group gap", "recent",
    ]  # fmt: skip
    assert cells == [["workspace", "ridge", "-3.2", "0.9", "island 0.4", "3.5"]]
    (title, rule, row) = compare.render_text(columns, cells, 60).splitlines()
    assert len(title) <= 60 and "neg_ro" in title and "…" in title, "the caption has it whole"
    assert row.split() == cells[0][:4] + ["island", "0.4", "3.5"]
    del figures["gap_column"], figures["group_gap"]
    (group,) = compare.sections(compare.runs(shown))
    assert [c.title for c in compare.table(group)[0]][-2:] == ["business", "recent"]


def test_markdown_is_a_github_table_per_section(monkeypatch, capsys):
    out = rendered(monkeypatch, capsys, 80, "--md")
    caption, blank, *lines = out.splitlines()
    assert caption == (
        "Headline metric: neg_log_loss on the test split (greater is better), best first. "
        "recent: balanced_accuracy on the most recent test rows."
    )
    assert blank == ""
    assert lines[0] == (
        "| Experiment | Model | neg_log_loss | business | worst class F1 | group gap | recent "
        "| model.name | model.C |"
    )
    assert lines[1] == "|---|---|---:|---:|---|---|---:|---|---:|"
    assert lines[2] == (
        "| c-big | logistic_regression | -0.0139 | 0.9 | Chinstrap 0.8889 | island 0.125 | 0.95 "
        "| logistic_regression | 10 |"
    )
    assert lines[7:9] == ["", "* not the model select ranked first: workspace (select's "
                          "first: logistic_regression)."]  # fmt: skip
    apart = [line for line in lines if line.startswith("Listed apart")]
    assert [line.split("(")[1].split(")")[0] for line in apart] == [
        "scored by accuracy",
        "different data: data/mine",
        "different data: another version of data/raw",
        "business.value_matrix differs",
    ]
    assert sum(line.startswith("| Experiment |") for line in lines) == 5


def test_markdown_without_experiments_is_the_workspace_row(monkeypatch, capsys):
    shown = [{"rev": "workspace", "name": None, "data": {"rev": "workspace"}, "error": None}]
    monkeypatch.setattr(compare, "exp_show", lambda options: shown)
    assert main(["compare", "--md"]) == 0
    caption, _, *lines = capsys.readouterr().out.splitlines()
    assert caption.startswith("No experiment has reports/evaluate/headline.json yet")
    assert lines[0] == "| Experiment | Model | headline | business |", "no diagnosis columns"
    assert lines[2:] == ["| workspace | - | - | - |"]


def test_unknown_options_go_to_dvc_exp_show(monkeypatch, capsys):
    seen = []
    monkeypatch.setattr(compare, "exp_show", lambda options: seen.append(options) or SAMPLE)
    assert main(["compare", "-n", "3", "--rev", "main", "--sort-by", "business"]) == 0
    assert seen == [["-n", "3", "--rev", "main", "--sort-by", "business"]]
    out = capsys.readouterr().out.splitlines()
    body = out[next(i for i, line in enumerate(out) if line.startswith("---")) + 1 :]
    assert [line.split()[0] for line in body[:2]] == ["workspace", "main"], "DVC's order kept"


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
