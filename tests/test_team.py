"""A team's experiments, as the baked docs/versions.md's "Team workflow" says: two clones share a
git remote and a DVC remote; an experiment run in one is pushed with `dvc exp push`,
pulled in the other with `dvc exp pull`, listed there by `dvc exp show -A` and
`compare -A`, and `dvc exp apply` brings back its model and metrics byte for byte
without rerunning anything."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import bake, git, md5, package_of, ran, run

pytestmark = pytest.mark.slow

EXPERIMENT = "forest"
# The experiment's results a teammate must get back byte for byte.
RESULTS = ["reports/evaluate/metrics.json", "reports/evaluate/headline.json", "models/model.skops"]


def results(root: Path) -> dict[str, str]:
    return {name: md5(root / name) for name in RESULTS}


def test_experiment_pushed_by_one_clone_is_pulled_compared_and_applied_by_another(tmp_path):
    alice = bake(tmp_path / "alice", project_name="Team Loop")
    package = package_of(alice)

    # The shared remotes: a bare git repository and one DVC storage folder both reach.
    origin, storage = tmp_path / "origin.git", tmp_path / "dvc-storage"
    run(tmp_path, "git", "init", "--quiet", "--bare", "--initial-branch=main", str(origin))
    run(alice, "dvc", "remote", "modify", "storage", "url", str(storage))
    # `dvc config`, not `dvc remote list`: that one wraps a long path at the terminal width.
    assert run(alice, "dvc", "config", "core.remote").stdout.strip() == "storage"
    assert run(alice, "dvc", "config", "remote.storage.url").stdout.strip() == str(storage)
    git(alice, "remote", "add", "origin", str(origin))

    # Alice: the baseline, committed and shared.
    run(alice, "dvc", "repro")
    git(alice, "add", "-A")
    git(alice, "commit", "-qm", "Baseline")
    git(alice, "push", "-qu", "origin", "main")
    run(alice, "dvc", "push")
    baseline = results(alice)

    # Bob: a clone with its own identity, the baseline's data and model from the remote.
    bob = tmp_path / "bob" / "team-loop"
    run(tmp_path, "git", "clone", "-q", str(origin), str(bob))
    git(bob, "config", "user.name", "Bob")
    git(bob, "config", "user.email", "bob@example.com")
    run(bob, "dvc", "pull")
    assert results(bob) == baseline

    # Alice: an experiment, pushed (its git ref to origin, its outputs to the DVC remote).
    done = run(alice, "dvc", "exp", "run", "-n", EXPERIMENT, "-S", "model=random_forest")
    assert ran(done.stdout) == ["train", "evaluate", "export"]
    alices = results(alice)
    assert alices["models/model.skops"] != baseline["models/model.skops"]
    alice_headline = json.loads((alice / "reports/evaluate/headline.json").read_text())
    run(alice, "dvc", "exp", "push", "origin", EXPERIMENT)

    # Bob: finds it on origin, pulls it and sees it next to his workspace, with Alice's figures.
    shared = run(bob, "dvc", "exp", "list", "origin", "--name-only").stdout.split()
    assert shared == [EXPERIMENT]
    run(bob, "dvc", "exp", "pull", "origin", EXPERIMENT)
    shown = json.loads(run(bob, "dvc", "exp", "show", "-A", "--json").stdout)
    experiments = {
        exp["name"]: exp
        for rev in shown
        for ex in rev.get("experiments") or []
        for exp in ex["revs"]
    }
    assert EXPERIMENT in experiments, list(experiments)
    data = experiments[EXPERIMENT]["data"]
    assert data["params"]["params.yaml"]["data"]["model"]["name"] == "random_forest"
    assert data["metrics"]["reports/evaluate/headline.json"]["data"] == alice_headline
    table = run(bob, "python", "-m", package, "compare", "-A").stdout
    row = next(line for line in table.splitlines() if EXPERIMENT in line)
    assert "random_forest" in row, table

    # Bob applies it: the outputs come from the DVC remote, nothing reruns, same bytes.
    run(bob, "dvc", "exp", "apply", EXPERIMENT)
    run(bob, "dvc", "checkout")
    assert results(bob) == alices
    assert "up to date" in run(bob, "dvc", "status").stdout
    assert ran(run(bob, "dvc", "repro").stdout) == []
    assert results(bob) == alices

    # Promote: commit it on a branch and share it; Alice gets the same commit's results.
    git(bob, "switch", "-qc", "promote-forest")
    git(bob, "add", "-A")
    git(bob, "commit", "-qm", f"Promote {EXPERIMENT}")
    git(bob, "push", "-q", "origin", "promote-forest")
    git(alice, "fetch", "-q", "origin")
    # `dvc exp branch` promotes in one step: the same params and hashes as Bob's commit.
    run(alice, "dvc", "exp", "branch", EXPERIMENT, "forest-branch")
    for name in ("dvc.lock", "params.yaml"):
        promoted = git(alice, "show", f"origin/promote-forest:{name}")
        assert git(alice, "show", f"forest-branch:{name}") == promoted, name
    git(alice, "switch", "-q", "--discard-changes", "promote-forest")  # the experiment is saved
    run(alice, "dvc", "checkout")
    assert results(alice) == alices
    assert "up to date" in run(alice, "dvc", "status").stdout
