"""Run docs/reality-loop.md of a baked project block by block, exactly as written, and
check what each turn of the loop claims: which stages reran, which metric moved and which
way, that reverting gives back the tagged model byte for byte, and that `git status`
prints what the doc says wherever it says so."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from conftest import STAGES, bake, docs_harness, git, locked_model_md5, md5, ran, run, status_lines

pytestmark = pytest.mark.slow


def turns(doc: str) -> list[tuple[str, list[str]]]:
    """(section title, its bash blocks) in document order."""
    sections = re.split(r"^## ", doc, flags=re.M)[1:]
    return [
        (section.splitlines()[0], re.findall(r"```bash\n(.*?)```", section, flags=re.S))
        for section in sections
    ]


def metrics(root: Path) -> dict:
    return json.loads((root / "reports/evaluate/metrics.json").read_text())


class Walkthrough:
    task: str

    def test_every_turn_does_what_the_doc_says(self, tmp_path):
        root = bake(tmp_path, project_name="Loop Walk", task=self.task)
        artifact = "loop-walk-model"
        seen: dict[str, dict] = {}
        harness = docs_harness(root)
        for title, blocks in turns((root / "docs/reality-loop.md").read_text()):
            assert blocks, f"section {title!r} has no commands"
            log = ""
            for block in blocks:
                for commands, printed in harness.status_steps(block):
                    log += run(root, "bash", "-euo", "pipefail", "-c", commands).stdout + "\n"
                    if printed is not None:
                        assert status_lines(root) == printed, f"{title}: after\n{commands}"
            self.check(title, log, root, artifact, seen)
            seen[title] = metrics(root)
        # The numbered turns, and the closed turn (the default bake serves).
        assert len(seen) == (9 if self.task == "classification" else 7)

    def check(self, title: str, log: str, root: Path, artifact: str, seen: dict) -> None:
        before = list(seen.values())[-1] if seen else None
        if title.startswith("1."):
            assert ran(log) == STAGES
        elif "collect more of it" in title:
            assert ran(log) == STAGES
            after = metrics(root)["per_class"]["Chinstrap"]["support"]
            assert after > before["per_class"]["Chinstrap"]["support"]
        elif "collect more recent data" in title:
            assert ran(log) == STAGES
            if self.task == "classification":
                # Eight Gentoo labelled Adelie: the model pays for the wrong labels...
                assert metrics(root)["neg_log_loss"] < before["neg_log_loss"]
                # ...and annotate lists them, most confident first.
                issues = (root / "reports/label_issues.csv").read_text().splitlines()[1:9]
                assert len(issues) == 8
                assert all(",Adelie,Gentoo," in line for line in issues), issues
        elif "relabel" in title:
            assert ran(log) == STAGES[2:]
            assert metrics(root)["neg_log_loss"] > before["neg_log_loss"]
            assert len((root / "data/annotations/relabel.csv").read_text().splitlines()) == 9
        elif title.endswith("Deploy"):
            tags = set(git(root, "tag").splitlines())
            assert {f"{artifact}@v1.0.0", f"{artifact}@v2.0.0", f"{artifact}#prod#1"} <= tags
        elif "revert" in title:
            tagged = locked_model_md5(git(root, "show", "iter-1:dvc.lock"))
            current = locked_model_md5(git(root, "show", "HEAD:dvc.lock"))
            assert current != tagged
            assert md5(root / "deployed/model.skops") == tagged
            assert f"{tagged}  models/model.skops" in log  # printed while at iter-1
            assert md5(root / "models/model.skops") == current
        elif "More data" in title:
            assert ran(log) == ["train", "evaluate", "export"]
            shown = [line.split()[:2] for line in log.splitlines()]
            # compare's row: select ranked another model first, which `*` marks.
            assert ["loop-forest", "random_forest*"] in shown, log
        elif "change the metric" in title:
            # clean checks the metric against the target's classes; its outputs do not
            # change, so the data stages after it stay cached.
            assert ran(log) == ["clean", "select", "train", "evaluate", "export"]
            assert "business_value" in metrics(root)
        elif title == "The closed turn":
            # Nothing served yet: an empty log, a window carried; a dry run writes nothing.
            assert "loop (dry run, nothing written): 0 rows; window carried: fewer" in log
            assert not (root / "decisions/loop.jsonl").exists()
        else:
            raise AssertionError(f"no check for section {title!r}")


class TestClassificationWalkthrough(Walkthrough):
    task = "classification"


class TestRegressionWalkthrough(Walkthrough):
    task = "regression"
