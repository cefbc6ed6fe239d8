"""Run docs/make-it-yours.md of a baked project section by section, exactly as written,
and check what each section claims: the derived feature reaches features.json, the model
and a raw row's prediction; the new stage runs, writes its output and its deps are its
code; the pipeline is up to date after."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from conftest import STAGES, bake, package_of, ran, run

pytestmark = pytest.mark.slow


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
    assert list(found) == ["Your own feature", "Your own stage"]

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
