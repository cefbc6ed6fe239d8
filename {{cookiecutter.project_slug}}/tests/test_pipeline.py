"""All stages in order, in-process, on a sample of the raw data: outputs, metrics, determinism."""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest
import yaml

from {{ cookiecutter.package_name }}.__main__ import main
from {{ cookiecutter.package_name }}.core import config_sync, io, model_catalog, paths
from {{ cookiecutter.package_name }}.modeling import models
from {{ cookiecutter.package_name }}.stages import ingest
from {{ cookiecutter.package_name }}.tables import schema

# Small candidates and 3 folds keep the run short; select's winner is what gets trained
# (model: auto, the default).
FAST = [
    "select.cv_folds=3",
    "select.candidates.random_forest.n_estimators=10",
    "select.candidates.hist_gradient_boosting.max_iter=20",
]
# Outputs that must not change when the pipeline runs again on the same inputs.
STABLE = [
    paths.INGESTED,
    paths.CLEANED,
    paths.UNLABELLED,
    paths.ANNOTATED,
    paths.LABEL_ISSUES,
    paths.TRAIN,
    paths.TEST,
    paths.PREPROCESSOR,
    paths.FEATURES,
    paths.SELECT_REPORT,
    paths.SELECT_RANKING,
    paths.TRAINED_MODEL,
    paths.EVALUATE_DIR / "metrics.json",
    paths.MODEL,
    paths.MODEL_METADATA,
]
METRIC_KEYS = {
    "classification": {"accuracy", "balanced_accuracy", "f1_macro", "log_loss", "roc_auc_ovr"}
    | {"business_value", "per_class", "classes_short_of_data"},
    "regression": {"rmse", "mae", "r2", "business_value"},
}
DIAGNOSIS_KEYS = {"groups", "gate", "recent", "unseen_categories"}


@pytest.fixture(scope="module")
def run(project, tmp_path_factory):
    """A copy of the project on every 3rd raw row, with one label correction, run twice."""
    raw = sorted((project / "data" / "raw").glob("*.csv"))
    if not raw:
        pytest.skip("data/raw/ has no batch in the workspace: run `dvc pull`")
    work = tmp_path_factory.mktemp("project")
    shutil.copytree(project / "conf", work / "conf")
    (work / "data" / "raw").mkdir(parents=True)
    sample = pd.concat([pd.read_csv(path) for path in raw], ignore_index=True).iloc[::3]
    sample.to_csv(work / "data" / "raw" / "penguins.csv", index=False)

    (work / "params.yaml").write_text(config_sync.compose(work / "conf", FAST), encoding="utf-8")
    settings = yaml.safe_load((work / "params.yaml").read_text(encoding="utf-8"))
    # One correction, by the id that ingest gives the first complete row.
    batch = pd.read_csv(work / "data" / "raw" / "penguins.csv")
    row = batch.notna().all(axis=1).idxmax()
    target, current = settings["data"]["target"], batch.loc[row, settings["data"]["target"]]
    if settings["task"] == "classification":
        label = sorted(set(batch[target].dropna()) - {current})[0]
    else:
        label = float(current) + 1000.0
    corrected = ingest.content_ids(batch)[row]
    relabel = work / settings["annotate"]["relabel_file"]
    relabel.parent.mkdir(parents=True)
    relabel.write_text(f"id,label,note\n{corrected},{label},a test correction\n")

    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(work)
        patch.setenv("DVC_NO_ANALYTICS", "1")
        assert main(["run"]) == 0
        first = {path: (work / path).read_bytes() for path in STABLE}
        assert main(["run"]) == 0
    return {
        "work": work,
        "first": first,
        "settings": settings,
        "rows": len(sample),
        "corrected": (corrected, label),
    }


def test_every_declared_output_exists(project, run):
    work = run["work"]
    stages = yaml.safe_load((project / "dvc.yaml").read_text(encoding="utf-8"))["stages"]
    for stage in stages.values():
        for entry in stage.get("outs", []) + stage.get("metrics", []):
            out = next(iter(entry)) if isinstance(entry, dict) else entry
            assert (work / out).exists(), f"{out} missing after the run"
    assert any((work / paths.EVALUATE_DIR / "plots").rglob("*.json"))


def test_metrics_cover_the_task_and_the_headline_metric(run):
    work, settings = run["work"], run["settings"]
    values = json.loads((work / paths.EVALUATE_DIR / "metrics.json").read_text())
    assert set(values) == METRIC_KEYS[settings["task"]] | DIAGNOSIS_KEYS | {settings["metric"]}
    assert set(values["groups"]) == set(settings["data"]["groups"])
    assert values["recent"]["rows"] > 0
    if settings["task"] == "classification":
        assert values["accuracy"] > 0.8
    else:
        assert values["r2"] > 0.5


def test_reports_add_up(run):
    work = run["work"]
    ingested = io.read_parquet(work / paths.INGESTED)
    assert list(ingested.columns[:2]) == ["id", "batch"]
    assert (ingested["batch"] == "penguins").all()
    clean = json.loads((work / paths.CLEAN_REPORT).read_text())
    assert clean["rows_in"] == len(ingested) == run["rows"]
    dropped = sum(clean["dropped"].values())
    assert clean["rows_out"] == clean["rows_in"] - clean["unlabelled"] - dropped
    annotate = json.loads((work / paths.ANNOTATE_REPORT).read_text())
    assert annotate["corrections"] == annotate["labels_changed"] == 1
    assert annotate["unlabelled"] == clean["unlabelled"]
    issues = pd.read_csv(work / paths.LABEL_ISSUES)
    assert list(issues.columns[:4]) == ["id", "label", "suggested_label", "confidence"]
    assert annotate["label_issues"] == len(issues)
    if run["settings"]["task"] == "classification":
        # The test's correction gave a row another species: the judge should disagree.
        assert run["corrected"][0] in set(issues["id"])
    prep = json.loads((work / paths.PREPROCESS_REPORT).read_text())
    assert prep["train_rows"] + prep["test_rows"] == clean["rows_out"]


def test_the_correction_is_applied(run):
    work, target = run["work"], run["settings"]["data"]["target"]
    row_id, label = run["corrected"]
    annotated = io.read_parquet(work / paths.ANNOTATED).set_index("id")
    assert annotated.loc[row_id, target] == label
    processed = pd.concat([io.read_parquet(work / p) for p in (paths.TRAIN, paths.TEST)])
    assert processed.set_index("id").loc[row_id, target] == label


def test_the_selected_model_is_exported_with_its_metadata(run):
    work, settings = run["work"], run["settings"]
    selection = json.loads((work / paths.SELECT_REPORT).read_text())
    meta = json.loads((work / paths.MODEL_METADATA).read_text())
    assert settings["model"] == {"name": "auto"}
    assert meta["model"] == selection["winner"]
    assert selection["cut_for_time"] == [], "the default time budget cuts nothing on penguins"
    assert (meta["select"]["first"], meta["select"]["chosen_by"]) == (selection["winner"], "select")
    card = (work / paths.MODEL_CARD).read_text()
    assert f"- Chosen by `select` (`model=auto`): first of {len(selection['candidates'])}" in card
    winner = settings["select"]["candidates"][selection["winner"]]
    # Its keyword arguments: not its name, class nor export facts (_target_, _onnx_, ...).
    assert meta["hyperparameters"] == {
        k: v for k, v in winner.items() if k != "name" and not k.startswith("_")
    }
    assert meta["hyperparameters"] == model_catalog.hyperparameters(winner) != {}
    assert meta["metrics"] == json.loads((work / paths.EVALUATE_DIR / "metrics.json").read_text())
    assert meta["data"]["train_md5"] == io.file_md5(work / paths.TRAIN)
    assert (meta["task"], meta["metric"], meta["seed"]) == (
        settings["task"],
        settings["metric"],
        settings["seed"],
    )


def test_the_exported_model_predicts_raw_rows(run):
    work = run["work"]
    features = json.loads((work / paths.FEATURES).read_text())
    roles = schema.roles_from_dict(features["roles"])
    meta = json.loads((work / paths.MODEL_METADATA).read_text())
    model = models.load(
        work / paths.MODEL, model_catalog.read(meta["model"], work / paths.MODEL_CONF)
    )
    rows = pd.read_csv(work / "data" / "raw" / "penguins.csv")
    predictions = model.predict(schema.model_frame(rows, roles))
    assert len(predictions) == len(rows)
    if features["task"] == "classification":
        assert set(predictions) <= set(features["classes"])


def test_a_rerun_is_byte_identical(run):
    work = run["work"]
    changed = [str(p) for p, data in run["first"].items() if (work / p).read_bytes() != data]
    assert not changed, f"outputs differ on a rerun: {', '.join(changed)}"
