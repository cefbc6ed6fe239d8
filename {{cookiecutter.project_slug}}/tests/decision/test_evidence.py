"""evidence.py: sides resolved to commits, files read at a commit from git and DVC's cache
(a file or a folder of parts), the champion's training rows left out, probabilities
aligned to the challenger's classes, the prior/mean baseline."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from {{ cookiecutter.package_name }}.core import io, paths
from {{ cookiecutter.package_name }}.core.errors import DataError
from {{ cookiecutter.package_name }}.decision import evidence
from {{ cookiecutter.package_name }}.tables import schema

ARTIFACT = "toy-model"  # conftest's


def run(root, *command: str) -> str:
    return subprocess.run(command, cwd=root, capture_output=True, text=True, check=True).stdout


def test_the_workspace_is_its_head_commit_until_it_differs(repo):
    root, commits = repo
    side = evidence.resolve_challenger(root, ARTIFACT, None)
    assert (side.revision, side.label) == (
        commits["challenger"],
        f"workspace (HEAD {commits['challenger'][:7]})",
    )
    (root / "params.yaml").write_text((root / "params.yaml").read_text() + "\n")
    side = evidence.resolve_challenger(root, ARTIFACT, None)
    assert (side.revision, side.label) == (None, "workspace (uncommitted)")


def test_the_champion_is_prod_or_a_revision(repo):
    root, commits = repo
    prod = evidence.resolve_champion(root, ARTIFACT, None)
    assert (prod.revision, prod.version, prod.stage) == (commits["champion"], "v0.0.1", "prod")
    by_version = evidence.resolve_champion(root, ARTIFACT, "v0.0.1")
    assert by_version.revision == commits["champion"] and by_version.version == "v0.0.1"
    head = evidence.resolve_champion(root, ARTIFACT, "HEAD")
    assert (head.revision, head.version) == (commits["challenger"], None)


def test_both_sides_are_scored_on_the_challengers_test_rows(repo, task):
    root, _ = repo
    found = evidence.gather(
        root,
        evidence.resolve_challenger(root, ARTIFACT, None),
        evidence.resolve_champion(root, ARTIFACT, None),
    )
    test = pd.read_parquet(root / paths.TEST)
    assert (found.scored, found.excluded) == (len(test), 0)
    assert list(found.rows.truth) == list(schema.target_array(test["target"]))
    assert list(found.rows.groups.columns) == ["color"] and found.rows.recent is None
    assert set(found.answers) == {"challenger", "champion", "baseline"}
    for answers in found.answers.values():
        assert len(answers.predicted) == len(test)
    assert found.challenger.facts["test_md5"] == io.file_md5(root / paths.TEST)
    assert found.champion.facts["version"] == "v0.0.1"
    if task == "classification":
        assert found.answers["champion"].proba.shape == (len(test), len(found.rows.classes))
        train = pd.read_parquet(root / paths.TRAIN)["target"]
        prior = train.value_counts(normalize=True)[[str(c) for c in found.rows.classes]]
        assert np.allclose(found.answers["baseline"].proba[0], prior.to_numpy())
    else:
        train = pd.read_parquet(root / paths.TRAIN)["target"]
        assert np.allclose(found.answers["baseline"].predicted, train.mean())


def test_rows_the_champion_trained_on_are_left_out(
    repo, repo_tools, conf, toy_roles, task, simple_model
):
    from {{ cookiecutter.package_name }}.stages import preprocess, train

    root, commits = repo
    test = pd.read_parquet(root / paths.TEST)
    # A champion trained on its own split plus ten of the challenger's test rows (one of
    # them as an augmented copy, which counts as its original row).
    seen = test.iloc[:10].copy()
    seen.loc[seen.index[0], "id"] = f"{seen['id'].iloc[0]}-aug1"
    rows = pd.concat([pd.read_parquet(root / paths.TRAIN), seen], ignore_index=True)
    _, _, transformer, _ = preprocess.preprocess(
        rows, toy_roles, rules=conf.preprocess, seed=0, task=task
    )
    config = simple_model[task]
    model = train.train(
        rows, toy_roles, transformer, config=config, settings=train.Settings.of(conf)
    )
    split = (rows, pd.read_parquet(root / paths.TEST), toy_roles)
    repo_tools.export(root, model, config, split, task)
    other = repo_tools.commit(root, "a champion that saw ten test rows")
    found = evidence.gather(
        root,
        evidence.resolve_challenger(root, ARTIFACT, commits["challenger"]),
        evidence.resolve_champion(root, ARTIFACT, other),
    )
    assert (found.scored, found.excluded) == (len(test) - 10, 10)
    assert len(found.answers["champion"].predicted) == len(test) - 10


def test_a_table_is_read_at_a_commit_from_the_cache_file_or_folder(repo):
    root, commits = repo
    test = pd.read_parquet(root / paths.TEST)
    at = evidence.Snapshot(root, commits["champion"])
    pd.testing.assert_frame_equal(at.read(paths.TEST, {"id", "x1"}), test[["id", "x1"]])
    # The dask engine's shape: a folder of parts, cached as a .dir listing.
    (root / paths.TEST).unlink()
    for number, part in enumerate((test.iloc[:7], test.iloc[7:])):
        io.write_parquet(root / paths.TEST / f"part-{number:06d}.parquet", part)
    subprocess.run(
        [sys.executable, "-m", "dvc", "commit", "-q", "-f", "export"], cwd=root, check=True
    )
    run(root, "git", "commit", "-qam", "test split as parts")
    at = evidence.Snapshot(root, run(root, "git", "rev-parse", "HEAD").strip())
    assert at.table_files(paths.TEST)[0].parent.parent.name == "md5"
    pd.testing.assert_frame_equal(at.read(paths.TEST, {"id", "x1"}), test[["id", "x1"]])
    assert evidence.Snapshot(root, None).same_output(paths.TEST, at.lock())


def test_a_file_missing_from_the_cache_is_one_line_naming_the_fix(repo):
    root, commits = repo
    at = evidence.Snapshot(root, commits["champion"])
    at.table_files(paths.TEST)[0].unlink()
    with pytest.raises(
        DataError, match=r"test.parquet of commit \w+ is not in the DVC cache: run `dvc pull`"
    ):
        at.read(paths.TEST, {"id"})


def test_probabilities_are_aligned_to_the_challengers_classes():
    proba = np.array([[0.2, 0.8], [0.5, 0.5]])
    assert np.array_equal(evidence.aligned(proba, ["b", "a"], ["a", "b"]), proba[:, ::-1])
    # A class the challenger does not know gives its share to the others.
    three = np.array([[0.5, 0.25, 0.25], [1.0, 0.0, 0.0]])
    got = evidence.aligned(three, ["x", "a", "b"], ["a", "b"])
    assert np.allclose(got, [[0.5, 0.5], [0.5, 0.5]])
    assert np.array_equal(evidence.aligned(proba, [1.0, 2.0], ["1", "2"]), proba)


def test_a_column_the_champion_needs_and_cannot_derive_is_refused(repo):
    root, _ = repo
    champion = evidence.resolve_champion(root, ARTIFACT, None)
    side = evidence.load_side(root, ARTIFACT, champion)
    roles = dict(side.source.metadata["features"]["roles"])
    roles["numeric"] = [*roles["numeric"], "x3"]
    metadata = {**side.source.metadata, "features": {"roles": roles}}
    source = evidence.registry.ModelSource(
        ARTIFACT, "v0.0.1", "prod", champion.revision, b"", metadata
    )
    strange = evidence.Side(champion, source, side.model, side.facts)
    with pytest.raises(
        DataError, match="prod .v0.0.1. model reads x3, which the challenger's test split lacks"
    ):
        evidence._answers(strange, pd.read_parquet(root / paths.TEST), None)
