"""Run docs/make-it-yours.md of a baked project section by section, exactly as written,
and check what each section claims. Your own model: the model file composes; the first
run stops at train with the line the page quotes, writing no model; once the file trusts
the tree type, ExtraTrees is what is trained and exported (and served); the one line the
page adds to conf/config.yaml makes it a select candidate. Your own feature: it reaches
features.json, the model and a raw row's prediction. Your own stage: it runs, writes its
output and its deps are its code; the pipeline is up to date after."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from conftest import STAGES, bake, package_of, ran, run

pytestmark = pytest.mark.slow


def section(page: Path, title: str) -> str:
    """The text of the page's `## title` section."""
    for part in re.split(r"^## ", page.read_text(), flags=re.M)[1:]:
        if part.splitlines()[0] == title:
            return part
    raise AssertionError(f"{page} has no section {title!r}")


def blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", text, flags=re.S | re.M)


def bash(root: Path, commands: str, check: bool = True) -> tuple[int, str]:
    """(exit status, what the commands printed, stdout and stderr)."""
    done = run(root, "bash", "-euo", "pipefail", "-c", commands, check=check)
    return done.returncode, done.stdout + done.stderr


def trained_class(root: Path) -> str:
    """The class of the exported pipeline's model, loaded as the pipeline loads it."""
    package = package_of(root)
    code = (
        f"from {package}.core import model_catalog, paths\n"
        f"from {package}.modeling import models\n"
        "config = model_catalog.read('extra_trees', paths.MODEL_CONF)\n"
        "print(type(models.load(paths.MODEL, config)[-1]).__name__)"
    )
    return run(root, "python", "-c", code).stdout.strip()


@pytest.mark.parametrize(
    ("task", "features"),
    [("classification", "yes"), ("regression", "no")],
    ids=["classification-served-onnx", "regression-no-serving-no-onnx"],
)
def test_your_own_model_as_the_page_says(tmp_path, task, features):
    root = bake(tmp_path, project_name="Own Model", task=task, serving=features, onnx=features)
    text = section(root / "docs/make-it-yours.md", "Your own model")
    write, train, *serve, candidate = blocks(text, "bash")
    assert len(serve) == (1 if features == "yes" else 0)
    (refusal,) = blocks(text, "text")
    (line,) = blocks(text, "yaml")

    bash(root, write)
    status, printed = bash(root, "dvc exp run -S model=extra_trees", check=False)
    assert status != 0
    assert refusal.strip() in printed
    assert not (root / "models/trained.skops").exists(), "train wrote nothing"

    _, log = bash(root, train)
    assert ran(log)[-3:] == ["train", "evaluate", "export"]
    assert log.count('"model": "extra_trees"') == 2, "headline.json and model.json"
    extra = "ExtraTreesClassifier" if task == "classification" else "ExtraTreesRegressor"
    assert trained_class(root) == extra
    assert (root / "models/model.skops").exists()
    if features == "yes":
        assert (root / "models/onnx/model.onnx").exists()
        assert "`_onnx_: {float32: " in log, "export names the ONNX facts it found"
        assert '"model":"extra_trees"' in bash(root, serve[0])[1]

    config = root / "conf/config.yaml"
    before = config.read_text()
    assert before.count("  - _self_\n") == 1
    config.write_text(before.replace("  - _self_\n", f"{line}  - _self_\n"))
    assert ",extra_trees," in bash(root, candidate)[1]


def sections(doc: str) -> dict[str, list[str]]:
    """Each `## ` section's title and its bash blocks, in document order."""
    parts = re.split(r"^## ", doc, flags=re.M)[1:]
    return {p.splitlines()[0]: re.findall(r"```bash\n(.*?)```", p, flags=re.S) for p in parts}


def run_blocks(root: Path, blocks: list[str]) -> str:
    return "".join(run(root, "bash", "-euo", "pipefail", "-c", b).stdout + "\n" for b in blocks)


def test_the_page_adds_a_feature_and_a_stage_as_it_says(tmp_path):
    root = bake(tmp_path, project_name="Yours")
    package = package_of(root)
    found = sections((root / "docs/make-it-yours.md").read_text())
    assert list(found) == ["Your own model", "Your own feature", "Your own stage"]

    log = run_blocks(root, found["Your own feature"])
    assert ran(log) == STAGES, log  # a fresh bake: the whole pipeline, bill_shape included
    assert "1 passed" in log, "the feature's own test ran"
    features = json.loads((root / "data/processed/features.json").read_text())
    assert features["derived"] == {"ratios": [], "columns": ["bill_shape"]}
    assert "bill_shape" in features["roles"]["numeric"]
    model = json.loads((root / "models/model.json").read_text())
    assert model["features"]["derived"]["columns"] == ["bill_shape"]
    # The raw row (no bill_shape) was answered: curl -f fails the block on any error.
    answer = json.loads(log[log.index('{"predictions"') :].splitlines()[0])
    assert answer["predictions"] and answer["warnings"] == []

    log = run_blocks(root, found["Your own stage"])
    assert "Running stage 'summarize'" in log and not ran(log), log
    summary = json.loads((root / "reports/summary.json").read_text())
    assert sum(summary["rows_per_batch"].values()) == summary["rows"] > 0
    assert log.rstrip().endswith("Data and pipelines are up to date."), "the page's dvc status"
    run(root, "python", f"src/{package}/tools/dvc_deps.py")  # exit 0: deps = the code it runs
    stage = yaml.safe_load((root / "dvc.yaml").read_text())["stages"]["summarize"]
    assert stage["deps"][0] == f"src/{package}/stages/summarize.py"
    assert f"src/{package}/tables/schema.py" in stage["deps"]
