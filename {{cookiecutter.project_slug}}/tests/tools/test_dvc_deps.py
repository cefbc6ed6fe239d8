"""Declared = used: each stage in dvc.yaml lists exactly the project modules it runs and
covers every params key it reads.

Two proofs. From the source: dvc_deps.py follows the imports (the pre-commit hook runs
the same check). From a run: every stage runs in its own process on a copy of the
project (tests/stage_trace.py), recording the project modules loaded and the params
keys read; a module or key the stage's entry in dvc.yaml does not cover fails the test,
naming the stage and what to add.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

#% if cookiecutter.remote_sources == "yes"
from {{ cookiecutter.package_name }}.core import config_sync, paths
#% else
from {{ cookiecutter.package_name }}.core import config_sync
#% endif
from {{ cookiecutter.package_name }}.core.params import CleanParams
from {{ cookiecutter.package_name }}.stages import STAGES
from {{ cookiecutter.package_name }}.tools import dvc_deps

PROJECT = dvc_deps.PROJECT
PACKAGE = dvc_deps.PACKAGE
PIPELINE = dvc_deps.stages()


@pytest.mark.parametrize("stage", sorted(PIPELINE))
def test_deps_list_exactly_the_code_a_stage_runs(stage):
    found = dvc_deps.problems(stage, PIPELINE[stage])
    assert not found, "\n".join(found)


def test_the_analysis_follows_every_kind_of_import(tmp_path):
    """A function-level import runs when the function is called, so it counts, and so do
    the packages' __init__.py; the entry point's function-level imports (serve, params,
    add-batch) are other commands'."""
    package = tmp_path / "src" / "pkg"
    (package / "stages").mkdir(parents=True)
    (package / "__init__.py").write_text("__version__ = '1'\n")
    (package / "stages" / "__init__.py").write_text("")
    for name in ("late", "full", "named"):
        (package / f"{name}.py").write_text("")
    (package / "stages" / "one.py").write_text(
        "import os\nimport pkg.full\nfrom pkg.named import x\nfrom .. import __version__\n\n\n"
        "def main():\n    from .. import late\n"
    )
    found = dvc_deps.closure({package / "stages" / "one.py"}, package)
    assert found == {
        package / "stages" / "one.py",
        package / "stages" / "__init__.py",
        package / "__init__.py",
        package / "late.py",
        package / "full.py",
        package / "named.py",
    }
#% if cookiecutter.serving == "yes"
    assert f"src/{PACKAGE.name}/serving/app.py" not in dvc_deps.runs("train")
#% endif
    assert f"src/{PACKAGE.name}/core/config_sync.py" not in dvc_deps.runs("train")


def test_a_model_class_of_the_project_runs_where_models_are_built(tmp_path):
    """A conf/model/ file whose _target_ is the project's own class: models.py imports it
    when it builds or loads that model, so its module runs where models.py does."""
#% if cookiecutter.task == "classification"
    assert f"src/{PACKAGE.name}/modeling/xgboost_labels.py" in dvc_deps.runs("train")
    assert f"src/{PACKAGE.name}/modeling/xgboost_labels.py" not in dvc_deps.runs("clean")
#% endif
    package = tmp_path / "src" / "pkg"
    (package / "modeling").mkdir(parents=True)
    (tmp_path / "conf" / "model").mkdir(parents=True)
    for name in ("__init__", "own", "models"):
        (package / "modeling" / f"{name}.py").write_text("")
    conf = tmp_path / "conf" / "model"
    (conf / "mine.yaml").write_text("_target_: pkg.modeling.own.Model\n")
    (conf / "ridge.yaml").write_text("_target_: sklearn.linear_model.Ridge\n")
    modeling = package / "modeling"
    found = dvc_deps.closure({modeling / "models.py"}, package)
    assert found == {modeling / "__init__.py", modeling / "own.py", modeling / "models.py"}
    assert dvc_deps.closure({modeling / "own.py"}, package) == {
        modeling / "own.py",
        modeling / "__init__.py",
    }


def copy_with_clean_importing_diagnosis(tmp_path: Path) -> Path:
    """The package, dvc.yaml and conf/model/ under tmp_path, stages/clean.py importing a
    module more; the copy's dvc_deps.py."""
    shutil.copytree(PACKAGE, tmp_path / "src" / PACKAGE.name)
    module = tmp_path / "src" / PACKAGE.name / "stages" / "clean.py"
    module.write_text(module.read_text() + "\n\ndef late():\n    from ..quality import diagnosis\n")
    shutil.copy(PROJECT / "dvc.yaml", tmp_path / "dvc.yaml")
    shutil.copytree(PROJECT / "conf" / "model", tmp_path / "conf" / "model")
    return tmp_path / "src" / PACKAGE.name / "tools" / "dvc_deps.py"


def test_the_hook_names_the_stage_and_the_missing_module(tmp_path):
    """What the pre-commit hook prints for an import whose module is not in the deps."""
    script = copy_with_clean_importing_diagnosis(tmp_path)
    done = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True
    )
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        f"dvc.yaml: stage clean imports src/{PACKAGE.name}/quality/__init__.py, "
        "which its deps do not list: add it",
        f"dvc.yaml: stage clean imports src/{PACKAGE.name}/quality/diagnosis.py, "
        "which its deps do not list: add it",
        f"`python src/{PACKAGE.name}/tools/dvc_deps.py --fix` rewrites each stage's code deps",
    ]


def code_deps_dropped(text: str) -> list[str]:
    return [line for line in text.splitlines() if not dvc_deps.CODE_LINE.match(line)]


def test_fix_rewrites_only_the_code_deps_of_the_stages_that_need_it(tmp_path):
    """--fix: the code deps of a stale stage rewritten (its stages/ module first), the
    same dvc.yaml otherwise, line for line; a second run finds nothing to do."""
    script = copy_with_clean_importing_diagnosis(tmp_path)
    dvc_yaml = tmp_path / "dvc.yaml"
    before = dvc_yaml.read_text(encoding="utf-8")
    fix = [sys.executable, str(script), "--fix"]
    done = subprocess.run(fix, cwd=tmp_path, capture_output=True, text=True)
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.splitlines() == ["dvc.yaml: stage clean's code deps rewritten"]
    after = dvc_yaml.read_text(encoding="utf-8")
    assert code_deps_dropped(after) == code_deps_dropped(before)
    clean = dvc_deps.stages(tmp_path)["clean"]["deps"]
    package = f"src/{PACKAGE.name}"
    assert clean[0] == f"{package}/stages/clean.py"
    assert f"{package}/quality/diagnosis.py" in clean
    assert dvc_deps.stages(tmp_path)["train"] == PIPELINE["train"]
    again = subprocess.run(fix, cwd=tmp_path, capture_output=True, text=True)
    assert (again.returncode, again.stdout, again.stderr) == (0, "", "")
    assert dvc_yaml.read_text(encoding="utf-8") == after


def test_fix_keeps_comments_and_data_deps_and_adds_a_missing_list():
    text = (
        "stages:\n"
        "  one:\n"
        "    cmd: python -m pkg one\n"
        "    deps:\n"
        "      # why this data\n"
        "      - data/a.csv\n"
        "      - src/pkg/old.py\n"
        "      - src/pkg/stages/one.py\n"
        "    outs:\n"
        "      - out.csv\n"
        "  two:\n"
        "    deps:\n"
        "      - data/b.csv\n"
    )
    code = {"one": ["src/pkg/stages/one.py", "src/pkg/new.py"], "two": ["src/pkg/stages/two.py"]}
    assert dvc_deps.with_code_deps(text, code) == (
        "stages:\n"
        "  one:\n"
        "    cmd: python -m pkg one\n"
        "    deps:\n"
        "      # why this data\n"
        "      - data/a.csv\n"
        "      - src/pkg/stages/one.py\n"
        "      - src/pkg/new.py\n"
        "    outs:\n"
        "      - out.csv\n"
        "  two:\n"
        "    deps:\n"
        "      - src/pkg/stages/two.py\n"
        "      - data/b.csv\n"
    )


def test_fix_gives_a_stage_without_deps_its_code_deps(tmp_path):
    """A new stage's block, as docs/make-it-yours.md appends it (no `deps:` yet), gets
    them from --fix; dvc.yaml's last stage, so the end of the file is handled too."""
    script = copy_with_clean_importing_diagnosis(tmp_path)
    stage = tmp_path / "src" / PACKAGE.name / "stages" / "summarize.py"
    stage.write_text("from ..core import paths\n\n\ndef main():\n    print(paths.ANNOTATED)\n")
    dvc_yaml = tmp_path / "dvc.yaml"
    with dvc_yaml.open("a", encoding="utf-8") as handle:
        handle.write(
            f"\n  summarize:\n    cmd: PYTHONPATH=src python -m {PACKAGE.name} summarize\n"
            "    outs:\n      - reports/summary.json\n"
        )
    done = subprocess.run(
        [sys.executable, str(script), "--fix"], cwd=tmp_path, capture_output=True, text=True
    )
    assert (done.returncode, done.stderr) == (0, "")
    assert "dvc.yaml: stage summarize's code deps rewritten" in done.stdout.splitlines()
    summarize = dvc_deps.stages(tmp_path)["summarize"]
    assert summarize["deps"][0] == f"src/{PACKAGE.name}/stages/summarize.py"
    assert f"src/{PACKAGE.name}/core/paths.py" in summarize["deps"]
    assert summarize["outs"] == ["reports/summary.json"]
    assert not dvc_deps.problems("summarize", summarize, tmp_path / "src" / PACKAGE.name)


def test_the_params_view_records_each_key_read(make_params):
    from stage_trace import Traced

    reads: set[str] = set()
    view = Traced(make_params({"compute.n_jobs": 2}), "", reads)
    assert isinstance(view.clean, CleanParams)
    assert view.compute.cores == 2  # a property: its reads count
    assert view.data.model_copy(update={"numeric": ["x"]}).numeric == ["x"]
    assert view.select.candidates  # a dict-valued key is read whole
    view.business.model_dump()  # so is a dumped section
    assert reads == {"compute.n_jobs", "data.numeric", "select.candidates", "business"}


# Small candidates and 3 folds keep the runs short (as in test_pipeline.py).
FAST = [
    "select.cv_folds=3",
    "select.candidates.random_forest.n_estimators=10",
    "select.candidates.hist_gradient_boosting.max_iter=20",
]
# The stages run on params.yaml composed with each run's overrides. The second takes the
# other side of the branches on `model` (named, not auto) and on metric (business_value).
SECOND = ["model=random_forest", "model.n_estimators=10", "metric=business_value"]
RUNS = [(FAST, STAGES), (FAST + SECOND, ("select", "train", "export"))]
# Listed keys that no run here reads: (stage, key) -> (the task of the bakes where that
# holds, None for both; why the key stays listed).
JUDGE = "the label-issue judge reads it, for classification only"
UNREAD = {
    **{
        ("annotate", key): ("regression", JUDGE)
        for key in (
            "seed",
            "compute.n_jobs",
            "data.id_column",
            "data.time",
            "data.numeric",
            "data.categorical",
            "data.drop",
            "data.groups",
            "annotate.issue_threshold",
            "annotate.cv_folds",
            "annotate.judge_max_rows",
        )
    },
    ("evaluate", "evaluate.min_class_support"): ("regression", "per-class support: classification"),
    ("evaluate", "evaluate.on_gap_exceeded"): (None, "read when a group gap exceeds max_group_gap"),
}
# Keys a stage's entry interpolates (`${data.source}`): DVC sees a change to one as a
# change to the entry (another dep path, another command), so the stage reruns.
INTERPOLATED = re.compile(r"\$\{\s*([\w.]+)\s*\}")


@pytest.fixture(scope="module")
def used(project, tmp_path_factory) -> dict[str, dict[str, set[str]]]:
    """stage -> the modules it loaded and the params keys it read, over every run here."""
    raw = sorted((project / "data" / "raw").glob("*.csv"))
    if not raw:
        pytest.skip("data/raw/ has no batch in the workspace: run `dvc pull`")
    work = tmp_path_factory.mktemp("traced")
    shutil.copytree(project / "conf", work / "conf")
    for folder in ("raw", "annotations"):
        shutil.copytree(project / "data" / folder, work / "data" / folder)
    tracer = subprocess.Popen(
        [sys.executable, str(PROJECT / "tests" / "stage_trace.py")],
        cwd=work,
        env={**os.environ, "PYTHONPATH": str(PROJECT / "src")},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    found: dict[str, dict[str, set[str]]] = {}

    def record(stage: str, *command: str) -> None:
        out = work / f"{stage}.json"
        tracer.stdin.write("\t".join([str(out), *command]) + "\n")
        tracer.stdin.flush()
        if tracer.stdout.readline().strip() != "0":
            log = Path(f"{out}.log")
            tail = log.read_text()[-3000:] if log.exists() else "(tests/stage_trace.py died)"
            pytest.fail(f"{' '.join(command)} failed:\n{tail}")
        seen = json.loads(out.read_text(encoding="utf-8"))
        entry = found.setdefault(stage, {"modules": set(), "params": set()})
        for kind in entry:
            entry[kind] |= set(seen[kind])

    try:
        for overrides, stages in RUNS:
            (work / "params.yaml").write_text(config_sync.compose(work / "conf", overrides))
            for stage in stages:
                record(stage, stage)
#% if cookiecutter.remote_sources == "yes"
        # fetch, with one data.fetch entry: a raw batch through a file:// URL.
        settings = yaml.safe_load(config_sync.compose(work / "conf", FAST))
        settings["data"].update(
            fetch={"penguins": {"url": raw[0].resolve().as_uri()}}, source=str(paths.FETCHED)
        )
        (work / "params.yaml").write_text(yaml.safe_dump(settings))
        record("fetch", "fetch", "penguins")
#% endif
    finally:
        tracer.stdin.close()
        tracer.wait()
    return found


def covered(key: str, entries: set[str]) -> bool:
    """A listed section (`clean`) covers its keys (`clean.exclude`); a key covers itself."""
    return any(key == entry or key.startswith(f"{entry}.") for entry in entries)


def read(entry: str, keys: set[str]) -> bool:
    """Some key under `entry` was read, or a section holding it was read whole."""
    return any(covered(key, {entry}) or covered(entry, {key}) for key in keys)


def parts(entry: str, values: dict) -> list[str]:
    """A listed section's keys (`clean` -> `clean.exclude`, ...); a listed key itself."""
    node = values
    for name in entry.split("."):
        node = node[name]
    return [f"{entry}.{name}" for name in node] if isinstance(node, dict) and node else [entry]


def test_each_stage_loads_and_reads_only_what_dvc_yaml_declares(used, task, params_raw):
    """Every module a stage loaded is in its deps; every key it read is in its params;
    every key its params list was read (unless UNREAD says why not)."""
    stages = yaml.safe_load((PROJECT / "dvc.yaml").read_text(encoding="utf-8"))["stages"]
    unread = {key: why for key, (where, why) in UNREAD.items() if where in (None, task)}
    found = []
    for stage, spec in PIPELINE.items():
        if stage not in used:
            found.append(f"stage {stage} did not run here: add it to RUNS")
            continue
        modules, keys = used[stage]["modules"], used[stage]["params"]
        listed = set(spec.get("params", []))
        # stage_trace.py loads params.py before the stage does: fair only if the stage does.
        if not keys:
            found.append(f"stage {stage} read no params key: stage_trace.py hides its imports")
        found += [
            f"stage {stage} loads {m}, which its deps do not list: add it to dvc.yaml"
            for m in sorted(modules - dvc_deps.declared(spec))
        ]
        interpolated = set(INTERPOLATED.findall(yaml.safe_dump(stages[stage])))
        found += [
            f"stage {stage} reads params key {k}, which its params do not list: add it to dvc.yaml"
            for k in sorted(keys)
            if not covered(k, listed | interpolated)
        ]
        # A listed section counts as read when each of its keys is (a needless rerun else).
        found += [
            f"stage {stage} lists params key {k} that no run read: list only what it reads "
            "in dvc.yaml"
            for entry in sorted(listed)
            for k in parts(entry, params_raw)
            if not read(k, keys) and not {(stage, entry), (stage, k)} & unread.keys()
        ]
        found += [
            f"stage {stage} read {k}, which UNREAD says it does not ({why}): remove it there"
            for (name, k), why in sorted(unread.items())
            if name == stage and read(k, keys)
        ]
    assert not found, "\n".join(found)
