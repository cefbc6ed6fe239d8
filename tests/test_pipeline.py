"""Run a baked project as its README says, for each task: install, `dvc repro`, one
experiment per model, a hyperparameter override, a queued sweep, metrics, plots, its
own pytest, and going back to an earlier version."""

from __future__ import annotations

import importlib.util
import itertools
import json
import os
import re
import time
from pathlib import Path

import notebooks
import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import (
    BIN,
    MODELS,
    STAGES,
    bake,
    chart_marks,
    git,
    locked_model_md5,
    md5,
    package_of,
    ran,
    run,
)

pytestmark = pytest.mark.slow

DATA_STAGES = ["ingest", "clean", "annotate", "preprocess"]
HEADLINE = {"classification": "neg_log_loss", "regression": "neg_root_mean_squared_error"}
# The hyperparameter of each task's linear model (MODELS[task][0]) that sets its regularisation.
REGULARISATION = {"classification": "C", "regression": "alpha"}


def write_own_data(path: Path, task: str) -> None:
    """A data set unlike the penguins, from scikit-learn's bundled copies (offline)."""
    from sklearn.datasets import load_diabetes, load_wine

    loader = load_wine if task == "classification" else load_diabetes
    frame = loader(as_frame=True).frame.rename(columns={"target": "label"})
    rng = np.random.default_rng(7)
    frame.insert(0, "row_id", [f"r{i:04d}" for i in range(len(frame))])
    frame["site"] = rng.choice(["north", "south", "east"], len(frame))
    frame.loc[rng.choice(len(frame), 12, replace=False), frame.columns[1]] = np.nan
    frame.loc[rng.choice(len(frame), 9, replace=False), "site"] = None
    frame.to_csv(path, index=False)


def fixed_width_panels(text: str) -> list[dict[str, list[str]]]:
    """compare's text tables, title -> cells by column, cut where each rule's dashes are."""
    found, lines = [], text.splitlines()
    for number, rule in enumerate(lines):
        if not rule.startswith("---"):
            continue
        spans = [(m.start(), m.end()) for m in re.finditer(r"-+", rule)]
        # A table ends at a blank line, or at the note under it ("* not the model ...").
        body = itertools.takewhile(
            lambda line: line.strip() and line[0] != "*", lines[number + 1 :]
        )
        rows = [lines[number - 1], *body]
        cells = [[row[a:b].strip() for a, b in spans] for row in rows]
        found.append({column[0]: list(column[1:]) for column in zip(*cells, strict=True)})
    return found


@pytest.fixture(scope="class")
def project(request, tmp_path_factory) -> tuple[Path, str]:
    """A baked project after its first `dvc repro`, committed and tagged v1."""
    task = request.cls.task
    root = bake(tmp_path_factory.mktemp(task), project_name=f"Loop {task}", task=task)
    log = run(root, "dvc", "repro").stdout
    assert ran(log) == STAGES, log
    git(root, "add", "-A")
    git(root, "commit", "-qm", "First pipeline run")
    git(root, "tag", "v1")
    return root, task


def preload_servers_under(folder: Path) -> list[int]:
    """Pids of the preload servers whose working directory is under `folder`."""
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            command = (proc / "cmdline").read_bytes().split(b"\0")
            cwd = Path(os.readlink(proc / "cwd"))
        except OSError:
            continue
        if any(part.endswith(b"preload/server.py") for part in command) and (
            cwd.is_relative_to(folder) or not cwd.exists()
        ):
            found.append(int(proc.name))
    return found


def wait_until(condition, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.5)
    return True


def exp_show(root: Path) -> list[dict]:
    """Experiments of the workspace baseline, flattened to {name, params, metrics}."""
    rows = []
    for baseline in json.loads(run(root, "dvc", "exp", "show", "--json").stdout):
        for exp in [baseline] + [e for e in baseline.get("experiments") or []]:
            for revision in exp.get("revs") or [exp]:
                data = revision.get("data") or {}
                metrics = data.get("metrics", {}).get("reports/evaluate/metrics.json", {})
                params = data.get("params", {}).get("params.yaml", {})
                rows.append(
                    {
                        "name": revision.get("name") or revision.get("rev"),
                        "model": params.get("data", {}).get("model", {}).get("name"),
                        "metrics": metrics.get("data", {}),
                    }
                )
    return rows


class PipelineChecks:
    """Run in order on one baked project; each task's class runs on one xdist worker."""

    task: str

    def test_install_resolves_to_the_pinned_environment(self, project):
        """`pip install -e '.[dev]'` needs nothing beyond the pinned set already installed."""
        root, _ = project
        done = run(root, str(BIN / "python"), "-m", "pip", "install", "--dry-run", "--no-deps",
                   "--no-build-isolation", "-e", ".[dev]")  # fmt: skip
        assert "Would install" in done.stdout
        check = run(root, str(BIN / "python"), "-m", "pip", "check")
        assert "No broken requirements" in check.stdout

    def test_baked_project_own_tests_pass(self, project):
        """Before any experiment: the workspace is the committed baseline."""
        root, _ = project
        # A short traceback, and a summary line wide enough for each failure's message:
        # what the 4,000 characters of a failure here show.
        pytest = (str(BIN / "python"), "-m", "pytest", "-q", "-p", "no:cacheprovider", "--tb=short")
        done = run(root, *pytest, COLUMNS="400")
        assert " passed" in done.stdout and "failed" not in done.stdout

    def test_noop_repro_runs_nothing(self, project):
        root, _ = project
        started = time.perf_counter()
        log = run(root, "dvc", "repro").stdout
        assert ran(log) == []
        assert "up to date" in log
        assert time.perf_counter() - started < 30

    def test_the_preloader_leaves_every_output_byte_identical(self, project):
        """Stages that DVC runs are forked from the project's preload server (on by
        default); as plain processes (REALITYLOOP_PRELOAD=0) they write the same bytes,
        on the dask engine too (once: the classification class)."""
        root, task = project
        lock = (root / "dvc.lock").read_text()
        # A stage that finds no server runs in its own process and starts one; once it
        # listens (its socket), every stage of the next run is forked.
        # On here even in `make test-plain`, which turns it off for the other tests.
        run(root, "dvc", "repro", "-f", "--single-item", "ingest", REALITYLOOP_PRELOAD="1")
        folder = root / ".dvc" / "tmp" / "preload"
        assert wait_until(lambda: any(folder.glob("*.sock")), 120)
        assert ran(run(root, "dvc", "repro", "-f", REALITYLOOP_PRELOAD="1").stdout) == STAGES
        (server_log,) = folder.glob("*.log")
        forked = re.findall(r"preload: \d+ runs (?:--quiet )?(\w+)", server_log.read_text())
        assert set(STAGES) <= set(forked), server_log.read_text()
        assert (root / "dvc.lock").read_text() == lock
        plain = run(root, "dvc", "repro", "-f", REALITYLOOP_PRELOAD="0").stdout
        assert ran(plain) == STAGES
        assert (root / "dvc.lock").read_text() == lock
        if task != "classification":
            return
        # The data stages are the ones with a dask twin.
        run(root, "python", "-m", package_of(root), "params", "compute.engine=dask")
        on = run(root, "dvc", "repro", "preprocess", REALITYLOOP_PRELOAD="1")
        assert ran(on.stdout) == DATA_STAGES
        on_dask = (root / "dvc.lock").read_text()
        run(root, "dvc", "repro", "-f", "preprocess", REALITYLOOP_PRELOAD="0")
        assert (root / "dvc.lock").read_text() == on_dask
        git(root, "checkout", "params.yaml")
        run(root, "dvc", "repro")  # back on the local engine: its run cache, or a rerun
        assert (root / "dvc.lock").read_text() == lock

    def test_editing_a_module_changes_exactly_the_stages_that_import_it(self, project):
        """After a comment is appended to a module, `dvc status` names exactly the stages
        whose imports (followed from the source by the project's dvc_deps.py) reach it."""
        root, _ = project
        package = package_of(root)
        source = root / "src" / package
        spec = importlib.util.spec_from_file_location("dvc_deps", source / "tools" / "dvc_deps.py")
        dvc_deps = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(dvc_deps)
        runs = {stage: dvc_deps.runs(stage, source) for stage in STAGES}
        for module in (
            "core/io.py",
            "core/params.py",
            "tables/schema.py",
            "modeling/features.py",
            "modeling/derived.py",
            "stages/select.py",
        ):
            path = source / module
            original = path.read_bytes()
            path.write_bytes(original + b"# an edit\n")
            try:
                changed = set(json.loads(run(root, "dvc", "status", "--json").stdout))
            finally:
                path.write_bytes(original)
            users = {stage for stage in STAGES if f"src/{package}/{module}" in runs[stage]}
            assert users and changed == users, f"{module}: {sorted(changed)} != {sorted(users)}"
        assert json.loads(run(root, "dvc", "status", "--json").stdout) == {}

    def test_outputs_and_metrics(self, project):
        root, task = project
        metrics = json.loads((root / "reports/evaluate/metrics.json").read_text())
        expected = {"accuracy", "balanced_accuracy", "f1_macro", "roc_auc_ovr", "log_loss"}
        if task == "regression":
            expected = {"rmse", "mae", "r2"}
        assert expected | {HEADLINE[task]} <= set(metrics)
        if task == "classification":
            assert metrics["balanced_accuracy"] > 0.9
        else:
            assert metrics["r2"] > 0.6
        meta = json.loads((root / "models/model.json").read_text())
        assert meta["metrics"] == metrics
        assert meta["format"] == "skops"
        shown = run(root, "dvc", "metrics", "show", "--json").stdout
        assert HEADLINE[task] in shown
        run(root, "dvc", "plots", "show", "-o", "plots_html")
        html = (root / "plots_html/index.html").read_text()
        title = "Confusion matrix (test" if task == "classification" else "Predicted vs actual"
        assert title in html
        assert 'src="https://' not in html  # Vega is inlined: the page renders offline

    def test_one_experiment_per_model_reruns_only_model_stages(self, project):
        root, task = project
        for model in MODELS[task]:
            log = run(
                root, "dvc", "exp", "run", "-n", f"exp-{model}", "-S", f"model={model}"
            ).stdout
            assert not set(ran(log)) & set(DATA_STAGES), log
        rows = {r["name"]: r for r in exp_show(root)}
        values = [rows[f"exp-{m}"]["metrics"][HEADLINE[task]] for m in MODELS[task]]
        assert len(set(values)) == len(values), values
        csv = run(root, "dvc", "exp", "show", "--csv").stdout.splitlines()
        header = csv[0].split(",")
        assert HEADLINE[task] in header and "model.name" in header

    @pytest.mark.parametrize("model", ["lightgbm", "xgboost"])
    def test_the_boosting_libraries_train_evaluate_and_export(self, project, model):
        """`-S model=lightgbm` / `xgboost` (not select's candidates: docs/pipeline.md) run
        the model stages only, and export writes skops and an ONNX graph within parity."""
        root, task = project
        log = run(root, "dvc", "exp", "run", "-n", f"exp-{model}", "-S", f"model={model}").stdout
        assert not set(ran(log)) & set(DATA_STAGES), log
        assert {"train", "evaluate", "export"} <= set(ran(log)), log
        card = json.loads((root / "models" / "model.json").read_text())
        assert card["model"] == model
        onnx = card["onnx"]
        assert onnx["status"] == "exported", onnx
        assert onnx["parity"]["max_abs_diff"] <= onnx["parity"]["allowed_abs_diff"]
        assert onnx["parity"].get("labels_differ", 0) == 0
        headline = {r["name"]: r for r in exp_show(root)}[f"exp-{model}"]["metrics"]
        assert headline[HEADLINE[task]] == card["metrics"][HEADLINE[task]]

    def test_plots_show_and_diff_draw_every_chart_offline(self, project):
        """Every chart of dvc.yaml draws marks in headless Chromium, for `dvc plots show`
        and for `dvc plots diff` of v1 against the last experiment; a chart whose data
        cannot be drawn is caught (its marks are counted as none)."""
        root, _ = project
        charts = list(yaml.safe_load((root / "dvc.yaml").read_text())["plots"])
        titles = sorted(next(iter(chart)) for chart in charts)
        (root / "plots_html").mkdir(exist_ok=True)  # dvc makes the last folder only
        for command in (["show"], ["diff", "v1"]):
            page = root / "plots_html" / command[0]
            run(root, "dvc", "plots", *command, "-o", str(page))
            marks = chart_marks(page / "index.html")
            assert sorted(m["title"] for m in marks) == titles, marks
            assert all(m["marks"] > 0 for m in marks), (command, marks)
        drawn = {m["title"]: m["marks"] for m in marks}
        data = root / "reports/evaluate/plots/importance.json"
        original = data.read_bytes()
        blank = [{**row, "importance": None} for row in json.loads(original)]
        data.write_text(json.dumps(blank))
        try:
            run(root, "dvc", "plots", "show", "-o", str(root / "plots_html/blank"))
            marks = chart_marks(root / "plots_html/blank/index.html")
        finally:
            data.write_bytes(original)
        (importance,) = [t for t in titles if t.startswith("Permutation importance")]
        assert {m["title"]: m["marks"] for m in marks}[importance] == 0, marks
        assert all(m["marks"] > 0 for m in marks if m["title"] != importance), marks
        assert drawn[importance] > 0

    def test_compare_tells_runs_apart_at_80_columns(self, project):
        """Two experiments that differ only in the linear model's regularisation, then
        `COLUMNS=80 python -m <package> compare`: no line over 80 characters; each run's
        name, model and headline whole, best first; a column for the setting that differs;
        a model that select did not rank first marked `*` and named under the table;
        `--md` has the same rows; `dvc exp show` lists headline.json's columns first."""
        root, task = project
        package = package_of(root)
        linear, key = MODELS[task][0], REGULARISATION[task]
        for name, value in (("reg-small", "0.1"), ("reg-large", "10")):
            log = run(root, "dvc", "exp", "run", "-n", name, "-S", f"model={linear}",
                      "-S", f"model.{key}={value}").stdout  # fmt: skip
            assert ran(log) == ["train", "evaluate", "export"], log
        figures, winner = {}, None
        for baseline in json.loads(run(root, "dvc", "exp", "show", "--json").stdout):
            for exp in baseline.get("experiments") or []:
                for revision in exp["revs"]:
                    metrics = revision["data"]["metrics"]
                    figures[revision["name"]] = metrics["reports/evaluate/headline.json"]["data"]
                    winner = metrics["reports/select.json"]["data"]["winner"]
        assert {f"exp-{m}" for m in MODELS[task]} | {"reg-small", "reg-large"} <= set(figures)
        table = run(root, str(BIN / "python"), "-m", package, "compare", COLUMNS="80").stdout
        assert max(len(line) for line in table.splitlines()) <= 80, table
        assert table.startswith(f"Headline metric: {HEADLINE[task]} ")
        assert "Listed apart" not in table, "one data set, metric and value matrix"
        first, *others = fixed_width_panels(table)
        assert list(first)[:3] == ["Experiment", "Model", HEADLINE[task]], table
        names = first["Experiment"]
        assert {"workspace", "main"} <= set(names)
        for name, values in figures.items():
            row = names.index(name)
            marked = values["model"] + ("*" if values["model"] != winner else "")
            assert first["Model"][row] == marked, table
            assert first[HEADLINE[task]][row] == f"{values['headline']:.6g}", table
        order = [float(value) for value in first[HEADLINE[task]]]
        assert order == sorted(order, reverse=True), "best headline first"
        (settings,) = [p for p in [first, *others] if f"model.{key}" in p]
        regularised = dict(zip(settings["Experiment"], settings[f"model.{key}"], strict=True))
        assert (regularised["reg-small"], regularised["reg-large"]) == ("0.1", "10"), table
        note = " ".join(table.split())  # the note is wrapped at 80 columns
        assert "* not the model select ranked first: " in note, table
        # Which model select ranks first on penguins is close (regression: the forest and
        # ridge within 0.1%): the note names whichever experiment trained another.
        other = next(m for m in MODELS[task] if m != winner)
        assert f"exp-{other} (select's first: {winner})" in note, table
        markdown = run(root, str(BIN / "python"), "-m", package, "compare", "--md").stdout
        rows = [line for line in markdown.splitlines() if line.startswith("| ")][1:]
        assert [row.split(" | ")[0].lstrip("| ") for row in rows] == names
        # Plain `dvc exp show`: right after DVC's own columns, the headline file's.
        header = run(root, "dvc", "exp", "show", "--csv").stdout.splitlines()[0].split(",")
        assert header[:5] == ["Experiment", "rev", "typ", "Created", "parent"], header
        assert header[5:8] == ["model", "headline_metric", "headline"], header
        first_column = header.index("model")
        assert first_column < header.index("business_value") < header.index("winner"), header

    def test_hyperparameter_override_needs_the_group_in_the_same_command(self, project):
        root, _ = project
        log = run(root, "dvc", "exp", "run", "-S", "model=random_forest",
                  "-S", "model.n_estimators=25").stdout  # fmt: skip
        assert ran(log) == ["train", "evaluate", "export"], log
        assert yaml.safe_load((root / "params.yaml").read_text())["model"]["n_estimators"] == 25
        alone = run(root, "dvc", "exp", "run", "-S", "model.n_estimators=30", check=False)
        assert alone.returncode != 0
        assert "n_estimators" in alone.stderr + alone.stdout

    def test_metric_switch_reruns_select_onwards_and_shows_the_diagnosis(self, project):
        """`-S metric=...` reruns select and what follows; the diagnosis keys (per class,
        per group with the gap, the recent slice) show in `dvc exp show`."""
        root, task = project
        metric = "balanced_accuracy" if task == "classification" else "business_value"
        log = run(root, "dvc", "exp", "run", "-n", "exp-metric", "-S", f"metric={metric}").stdout
        # clean checks the metric against the target's classes; its outputs are unchanged,
        # so annotate and preprocess are not rerun.
        assert ran(log) == ["clean", "select", "train", "evaluate", "export"], log
        assert json.loads((root / "reports/select.json").read_text())["metric"] == metric
        shown = {r["name"]: r for r in exp_show(root)}["exp-metric"]["metrics"]
        assert {metric, "business_value"} <= set(shown)
        assert set(shown["groups"]) == {"sex", "island"}
        assert {"female", "male", "gap"} <= set(shown["groups"]["sex"])
        assert shown["recent"]["rows"] > 0 and shown["gate"]["group_gap_exceeded"] is False
        if task == "classification":
            assert set(shown["per_class"]) == {"Adelie", "Chinstrap", "Gentoo"}
            assert {"precision", "recall", "f1", "support"} == set(shown["per_class"]["Adelie"])

    @pytest.mark.parametrize(
        ("override", "says"),
        [
            # Refused by Hydra while composing (its own multi-line message).
            ("model=no_such_model", "Could not find 'model/no_such_model'"),
            ("train.max_row=5000", "Key 'max_row' is not in struct"),
            # Refused by the project's check of the composed config: one line.
            ("+train.max_row=5000", "error: the composed config: train.max_row is not "
             "a setting: did you mean max_rows?"),
            ("+model.C=0.5", "error: the composed config: model: Value error, auto trains "
             "select's winner with its select.candidates settings, so C would be ignored"),
            ("data=custom", "error: the composed config: data.source, data.target must be set"),
            ("preprocess.test_size=0", "error: the composed config: preprocess.test_size: Input "
             "should be greater than 0 (got 0)"),
            # A model setting its estimator lacks, added with + or not: checked against the
            # estimator's parameters (its `_target_` class's signature), with the closest name.
            ("model=random_forest,+model.n_estimator=50", "error: the composed config: "
             "model.n_estimator is not a parameter of RandomForest"),
            ("+select.candidates.random_forest.max_dept=3", "did you mean max_depth?"),
        ],
    )  # fmt: skip
    def test_a_bad_override_is_refused_before_anything_is_written(self, project, override, says):
        """`override` holds one -S value, or several joined by commas."""
        root, _ = project
        kept = ["params.yaml", "dvc.lock", "models/model.skops", "reports/evaluate/metrics.json"]
        before = {name: (root / name).read_bytes() for name in kept}
        status = git(root, "status", "--porcelain")
        values = [arg for value in override.split(",") for arg in ("-S", value)]
        done = run(root, "dvc", "exp", "run", *values, check=False)
        assert done.returncode != 0
        assert says in done.stderr, done.stderr[-2000:]
        if says.startswith("error: "):
            assert done.stderr.strip() == done.stderr.strip().splitlines()[0], "one line"
        assert "Running stage" not in done.stdout
        assert {name: (root / name).read_bytes() for name in kept} == before
        assert git(root, "status", "--porcelain") == status

    def test_queued_sweep(self, project):
        root, task = project
        first, second = MODELS[task][:2]
        run(root, "dvc", "exp", "run", "--queue", "-S", f"model={first},{second}")
        run(root, "dvc", "queue", "start", "-j", "1")
        deadline = time.time() + 300
        while time.time() < deadline:
            status = run(root, "dvc", "queue", "status").stdout
            if "Queued" not in status and "Running" not in status:
                break
            time.sleep(2)
        assert "Failed" not in status, status
        assert status.count("Success") >= 2, status
        # Each queued run had a preload server in its own temporary workspace; DVC removed
        # the workspace, and with it the socket: the server is gone too.
        exps = root / ".dvc" / "tmp" / "exps"
        assert wait_until(lambda: not preload_servers_under(exps), 15), preload_servers_under(exps)

    def test_bring_your_own_data_with_overrides_only(self, project):
        """Another CSV (integer or numeric target, an id column, a text column, gaps) runs
        the whole pipeline with no code change; penguin-only columns are skipped, loudly."""
        root, task = project
        write_own_data(root / "own.csv", task)
        done = run(root, "dvc", "exp", "run", "-S", "data.source=own.csv",
                   "-S", "data.target=label", "-S", "data.id_column=row_id")  # fmt: skip
        assert ran(done.stdout) == STAGES
        # scikit-learn's diabetes data has a `sex` column of its own; neither has `island`.
        skipped = "sex, island" if task == "classification" else "island"
        assert f"skipping group columns not in the data: {skipped}" in done.stdout + done.stderr
        roles = json.loads((root / "data/processed/features.json").read_text())["roles"]
        assert roles["categorical"] == ["site"] and "row_id" not in roles["numeric"]
        metrics = json.loads((root / "reports/evaluate/metrics.json").read_text())
        assert HEADLINE[task] in metrics

    def test_bad_target_fails_with_one_clear_line(self, project):
        root, _ = project
        done = run(root, "dvc", "exp", "run", "-S", "data.target=no_such_column", check=False)
        assert done.returncode != 0
        errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
        assert errors == [
            "error: target column 'no_such_column' is not in the data (columns: species, island, "
            "bill_length_mm, bill_depth_mm, flipper_length_mm, body_mass_g, sex, year): set "
            "data.target to one of them"
        ], done.stderr[-2000:]

    def test_params_follow_conf_after_an_exp_run(self, project):
        root, _ = project
        run(root, "dvc", "exp", "run")
        run(root, "python", "-m", package_of(root), "params", "--check")

    def test_checkout_restores_the_tagged_model_byte_for_byte(self, project):
        root, task = project

        tagged_md5 = locked_model_md5(git(root, "show", "v1:dvc.lock"))
        # A new baseline changes conf/ (params.yaml follows it), not just an override.
        config = root / "conf/config.yaml"
        default = "  - model: auto\n"
        assert default in config.read_text()
        # Another model than the one v1 trained (select's winner there, whichever it was).
        winner = json.loads(git(root, "show", "v1:reports/select.json"))["winner"]
        other = next(m for m in MODELS[task][1:] if m != winner)
        config.write_text(config.read_text().replace(default, f"  - model: {other}\n"))
        run(root, "dvc", "exp", "run")
        git(root, "add", "-A")
        git(root, "commit", "-qm", "Switch model")
        assert md5(root / "models/model.skops") != tagged_md5
        git(root, "checkout", "-q", "v1")
        run(root, "dvc", "checkout")
        assert md5(root / "models/model.skops") == tagged_md5
        git(root, "checkout", "-q", "main")
        run(root, "dvc", "checkout")

    def test_notebooks_run_on_the_workspace_and_on_an_earlier_revision(self, project, tmp_path):
        """Every notebook runs without an error on the outputs of `dvc repro`; the results
        notebook with `rev = "v1"` shows v1's headline, not the workspace's (the previous
        test committed another model over it)."""
        root, _ = project
        shown_now = {}
        for notebook in sorted((root / "notebooks").glob("*.ipynb")):
            shown_now[notebook.name], seconds = notebooks.execute(
                root, notebook, tmp_path / notebook.name
            )
            print(f"{notebook.name}: {seconds:.1f} s")
            assert notebooks.images(tmp_path / notebook.name) >= 2, notebook.name
        now = json.loads((root / "reports/evaluate/headline.json").read_text())
        then = json.loads(git(root, "show", "v1:reports/evaluate/headline.json"))
        assert now["model"] != then["model"]
        results = root / "notebooks/2.0-pipeline-results.ipynb"
        shown, seconds = notebooks.execute(root, results, tmp_path / "v1.ipynb", rev="v1")
        print(f"{results.name} at v1: {seconds:.1f} s")
        assert "revision: v1" in shown
        assert re.search(rf"model\s+{then['model']}\n", shown), shown[:2000]
        assert re.search(rf"headline\s+{then['headline']}\n", shown), shown[:2000]
        assert not re.search(rf"model\s+{now['model']}\n", shown)
        assert re.search(rf"model\s+{now['model']}\n", shown_now[results.name])
        # The recent slice the notebook predicts again has evaluate's very figures.
        recent = json.loads(git(root, "show", "v1:reports/evaluate/metrics.json"))["recent"]
        (line,) = [line for line in shown.splitlines() if line.startswith("recent slice: ")]
        assert line.startswith(f"recent slice: {recent['rows']} of ")
        for name, value in recent.items():
            assert name in ("rows", "since") or f"'{name}': {value}" in line, (name, line)

    def test_relabelling_a_listed_issue_reruns_annotate_onwards(self, project):
        """Copy a row of reports/label_issues.csv into relabel.csv, `dvc repro`: annotate
        and what follows rerun, never ingest or clean."""
        root, task = project
        relabel = root / "data/annotations/relabel.csv"
        cleaned = pd.read_parquet(root / "data/interim/cleaned.parquet").dropna()
        if task == "classification":
            # A careless annotator gives two plain rows the wrong species ...
            wrong = {"Gentoo": "Adelie", "Chinstrap": "Gentoo"}
            noisy = [cleaned[cleaned["species"] == s].iloc[0] for s in wrong]
            relabel.write_text(
                "id,label\n" + "".join(f"{r.id},{wrong[r.species]}\n" for r in noisy)
            )
            assert ran(run(root, "dvc", "repro", "annotate").stdout) == ["annotate"]
            issues = pd.read_csv(root / "reports/label_issues.csv")
            assert set(issues["id"].head(2)) == {r.id for r in noisy}, issues.head()
            # ... and the user copies the first listed fix over it, as docs/pipeline.md says.
            fix = issues.iloc[0]
            kept = [line for line in relabel.read_text().splitlines() if fix["id"] not in line]
            relabel.write_text("\n".join([*kept, f"{fix['id']},{fix['suggested_label']}"]) + "\n")
            row_id, label = fix["id"], fix["suggested_label"]
        else:
            row = cleaned.iloc[0]
            row_id, label = row["id"], float(row["body_mass_g"]) + 100.0
            relabel.write_text(f"id,label\n{row_id},{label}\n")
        log = run(root, "dvc", "repro").stdout
        assert ran(log) == STAGES[2:], log
        target = "species" if task == "classification" else "body_mass_g"
        annotated = pd.read_parquet(root / "data/interim/annotated.parquet").set_index("id")
        assert annotated.loc[row_id, target] == label


class TestClassification(PipelineChecks):
    task = "classification"


class TestRegression(PipelineChecks):
    task = "regression"
