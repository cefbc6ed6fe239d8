"""`decide`: the verdict and its gates printed, the decision written, --apply as a commit
and GTO tags, --replay byte for byte, and bad input as one line, status 1, nothing written."""

from __future__ import annotations

import json
import subprocess
import sys

import yaml
from gto import api

from {{ cookiecutter.package_name }}.__main__ import main
from {{ cookiecutter.package_name }}.decision.verdicts import EXIT_STATUS

ARTIFACT = "toy-model"  # conftest's


def run(root, *command: str) -> str:
    return subprocess.run(command, cwd=root, capture_output=True, text=True, check=True).stdout


def decisions(root) -> list[str]:
    folder = root / "decisions"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_apply_commits_the_decision_registers_the_challenger_and_moves_prod(repo, capsys):
    root, commits = repo
    assert main(["decide", "--apply"]) == EXIT_STATUS["PROMOTE"]
    out = capsys.readouterr().out
    assert out.startswith(f"PROMOTE: workspace (HEAD {commits['challenger'][:7]}) against prod")
    assert "  pass  headline: value" in out
    head = run(root, "git", "rev-parse", "HEAD").strip()
    assert run(root, "git", "rev-parse", "HEAD~1").strip() == commits["challenger"]
    subject = run(root, "git", "log", "-1", "--format=%s")
    assert subject.startswith("decide: PROMOTE workspace (HEAD") and "headline pass" in subject
    files = run(root, "git", "show", "--name-only", "--format=", "HEAD").split()
    assert files == [f"decisions/{name}" for name in decisions(root)] and len(files) == 2
    tagged = run(root, "git", "rev-parse", f"{ARTIFACT}@v0.0.2" + "^{commit}").strip()
    assert tagged == head
    assert api.show(str(root))[ARTIFACT]["stage"]["prod"] == "v0.0.2"
    assert run(root, "git", "status", "--porcelain") == ""
    record = json.loads((root / "decisions" / files[0].split("/")[1]).read_text())
    assert record["champion"]["version"] == "v0.0.1" and record["verdict"] == "PROMOTE"


def test_a_reject_is_committed_and_prod_stays(repo, capsys):
    root, _ = repo
    service = yaml.safe_load((root / "service.yaml").read_text())
    service["gate"]["min_improvement"] = 100.0  # no model improves its metric by that
    (root / "service.yaml").write_text(yaml.safe_dump(service))
    run(root, "git", "commit", "-qam", "a policy no challenger meets")
    tags = run(root, "git", "tag")
    assert main(["decide", "--apply"]) == EXIT_STATUS["REJECT"]
    assert "  fail  headline" in capsys.readouterr().out
    assert run(root, "git", "log", "-1", "--format=%s").startswith("decide: REJECT")
    assert run(root, "git", "tag") == tags
    assert api.show(str(root))[ARTIFACT]["stage"]["prod"] == "v0.0.1"


def test_replay_gives_the_same_bytes_and_names_the_first_difference(repo, capsys):
    root, _ = repo
    status = main(["decide"])
    written = root / "decisions" / decisions(root)[0]
    assert main(["decide", "--replay", str(written)]) == status
    assert "the same decision, byte for byte" in capsys.readouterr().out
    record = json.loads(written.read_text())
    record["rows"]["scored"] += 1
    written.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    assert main(["decide", "--replay", str(written)]) == 1
    assert '"scored"' in capsys.readouterr().out.split("replay differs")[1]


def test_without_prod_only_the_absolute_gates_apply(repo, capsys):
    root, _ = repo
    run(root, "git", "tag", "-d", f"{ARTIFACT}#prod#1")
    assert main(["decide"]) == EXIT_STATUS["PROMOTE"]
    out = capsys.readouterr().out
    assert "against no model in prod (absolute gates only)" in out
    assert "n/a  headline" in out


def test_the_first_promotion_registers_v0_0_1_when_nothing_is_registered(repo, capsys):
    root, _ = repo
    run(root, "git", "tag", "-d", f"{ARTIFACT}#prod#1", f"{ARTIFACT}@v0.0.1")
    assert main(["decide", "--apply"]) == EXIT_STATUS["PROMOTE"]
    assert api.show(str(root))[ARTIFACT]["stage"]["prod"] == "v0.0.1"
    head = run(root, "git", "rev-parse", "HEAD").strip()
    assert run(root, "git", "rev-parse", f"{ARTIFACT}@v0.0.1" + "^{commit}").strip() == head


def test_with_require_staging_a_promotion_stops_at_staging_then_goes_to_prod(repo, capsys):
    root, _ = repo
    service = yaml.safe_load((root / "service.yaml").read_text())
    service["gate"]["require_staging"] = True
    (root / "service.yaml").write_text(yaml.safe_dump(service))
    run(root, "git", "commit", "-qam", "staging before prod")
    assert main(["decide", "--apply"]) == EXIT_STATUS["PROMOTE"]
    stages = api.show(str(root))[ARTIFACT]["stage"]
    assert stages["staging"] == "v0.0.2" and stages["prod"] == "v0.0.1"
    assert main(["decide", "--challenger", "staging", "--apply"]) == EXIT_STATUS["PROMOTE"]
    assert api.show(str(root))[ARTIFACT]["stage"]["prod"] == "v0.0.2"


def test_what_the_cache_lacks_is_fetched_from_the_dvc_remote(repo, capsys, tmp_path, monkeypatch):
    """A fresh clone after `dvc pull` (CI's) holds HEAD's outputs only: the champion's
    model and splits come from the default remote when decide needs them."""
    root, _ = repo
    dvc = (sys.executable, "-m", "dvc")
    run(root, *dvc, "remote", "add", "-d", "--local", "store", str(tmp_path / "store"))
    run(root, *dvc, "push", "-q", "--all-commits")
    clone = tmp_path / "clone"
    run(tmp_path, "git", "clone", "-q", str(root), str(clone))
    run(clone, *dvc, "remote", "add", "-d", "--local", "store", str(tmp_path / "store"))
    run(clone, *dvc, "pull", "-q")
    monkeypatch.chdir(clone)
    assert main(["decide"]) == EXIT_STATUS["PROMOTE"]
    assert "against prod (v0.0.1)" in capsys.readouterr().out


def refused(capsys, argv, message, root) -> None:
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1
    assert decisions(root) == []
    assert run(root, "git", "status", "--porcelain") == ""


def test_bad_input_is_one_line_status_1_and_nothing_written(repo, capsys, tmp_path):
    root, _ = repo
    refused(capsys, ["decide", "--challenger", "no-such-exp"], "no experiment, GTO stage", root)
    refused(capsys, ["decide", "--champion", "staging"], "no version of", root)
    damaged = tmp_path / "damaged.json"
    damaged.write_text('{"verdict": "PROMOTE"')
    refused(capsys, ["decide", "--replay", str(damaged)], "is damaged", root)
    refused(capsys, ["decide", "--replay", str(damaged), "--apply"], "give it alone", root)
    run(root, "git", "tag", "-d", f"{ARTIFACT}#prod#1")
    refused(capsys, ["decide", "--champion", "prod"], "no version of toy-model is in stage", root)


def test_apply_refuses_a_dirty_workspace_before_writing(repo, capsys):
    root, _ = repo
    params = root / "params.yaml"
    params.write_text(params.read_text() + "\n")
    assert main(["decide", "--apply"]) == 1
    assert "workspace's export, splits or params.yaml differ from HEAD" in capsys.readouterr().err
    assert decisions(root) == []
    run(root, "git", "checkout", "--", "params.yaml")
    (root / "service.yaml").write_text((root / "service.yaml").read_text() + "\n")
    assert main(["decide", "--apply"]) == 1
    assert "tracked files have uncommitted changes" in capsys.readouterr().err
    assert decisions(root) == [] and "#prod#2" not in run(root, "git", "tag")


def test_apply_takes_a_workspace_a_plain_dvc_exp_run_left_and_nothing_else(repo, capsys):
    """`dvc exp run` leaves its results in the workspace, uncommitted: they are the
    challenger experiment's own files, so --apply goes ahead; any other change, in the
    workspace or staged, is still refused before anything is written."""
    root, commits = repo
    run(root, sys.executable, "-m", "dvc", "exp", "run", "-q", "-n", "tuned", "-S", "seed=7")
    assert run(root, "git", "status", "--porcelain") == " M params.yaml\n"
    service = root / "service.yaml"
    service.write_text(service.read_text() + "\n")
    assert main(["decide", "--challenger", "tuned", "--apply"]) == 1
    assert "uncommitted changes (service.yaml ...)" in capsys.readouterr().err
    run(root, "git", "checkout", "--", "service.yaml")
    (root / "dvc.yaml").write_text((root / "dvc.yaml").read_text() + "\n")
    run(root, "git", "add", "dvc.yaml")
    (root / "dvc.yaml").write_text((root / "dvc.yaml").read_text()[:-1])
    assert main(["decide", "--challenger", "tuned", "--apply"]) == 1
    assert "uncommitted changes (dvc.yaml ...)" in capsys.readouterr().err
    assert decisions(root) == []
    assert run(root, "git", "rev-parse", "HEAD").strip() == commits["challenger"]
    run(root, "git", "reset", "-q", "--", "dvc.yaml")
    assert main(["decide", "--challenger", "tuned", "--apply"]) == EXIT_STATUS["PROMOTE"]
    assert "PROMOTE: experiment tuned" in capsys.readouterr().out
    committed = run(root, "git", "show", "--name-only", "--format=", "HEAD").split()
    assert committed == [f"decisions/{name}" for name in decisions(root)] + ["params.yaml"]
    assert "seed: 7" in run(root, "git", "show", "HEAD:params.yaml")
    assert run(root, "git", "status", "--porcelain") == ""
