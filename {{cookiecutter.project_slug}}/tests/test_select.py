"""select: cross-validated ranking of the candidate models, best first, reproducibly."""

from __future__ import annotations

import pandas as pd
import pytest

from {{ cookiecutter.package_name }}.errors import ConfigError
from {{ cookiecutter.package_name }}.params import AugmentParams, PreprocessParams
from {{ cookiecutter.package_name }}.stages import preprocess, select


@pytest.fixture
def setup(toy, toy_roles, task, task_models, make_params):
    """rank()'s inputs for this project's task, with small candidates and 3 folds."""

    def make(changes: dict | None = None, rows: pd.DataFrame | None = None):
        params = make_params(
            {"select.candidates": task_models, "select.cv_folds": 3, **(changes or {})}
        )
        transformer = preprocess.build_transformer(toy_roles, PreprocessParams())
        return (toy(task) if rows is None else rows), toy_roles, transformer, params

    return make


def test_rank_lists_every_candidate_best_first_reproducibly(setup, task_models):
    ranking = select.rank(*setup())
    assert list(ranking.columns) == ["rank", "model", "mean", "std"]
    assert ranking["rank"].tolist() == list(range(1, len(task_models) + 1))
    assert sorted(ranking["model"]) == sorted(task_models)
    assert ranking["mean"].is_monotonic_decreasing
    assert (ranking["std"] >= 0).all()
    pd.testing.assert_frame_equal(select.rank(*setup()), ranking)


def test_rank_breaks_ties_by_name(setup, simple_model, task):
    twins = {"twin_b": simple_model[task], "twin_a": simple_model[task]}
    ranking = select.rank(*setup({"select.candidates": twins}))
    assert ranking["model"].tolist() == ["twin_a", "twin_b"]
    assert ranking["mean"].iloc[0] == ranking["mean"].iloc[1]


def test_rank_handles_augmented_rows(setup, simple_model, toy, toy_roles, task):
    rows = preprocess.augment(toy(task), toy_roles.numeric, AugmentParams(enabled=True), 0)
    only = {"select.candidates": {"linear": simple_model[task]}}
    ranking = select.rank(*setup(only, rows=rows))
    assert ranking["model"].tolist() == ["linear"]
    assert ranking["mean"].notna().all()


def test_rank_checks_the_metric_first(setup, task):
    wrong = "r2" if task == "classification" else "accuracy"
    with pytest.raises(
        ConfigError, match=f"metric '{wrong}' is not a scikit-learn scorer for {task}"
    ):
        select.rank(*setup({"metric": wrong}))


def test_summary_names_the_winner():
    ranking = pd.DataFrame(
        {
            "rank": [1, 2],
            "model": ["ridge", "forest"],
            "mean": [-1.23456789, -2.0],
            "std": [0.1, 0.2],
        }
    )
    assert select.summary(ranking, "neg_mean_absolute_error") == {
        "winner": "ridge",
        "metric": "neg_mean_absolute_error",
        "cv_score": -1.234568,
        "candidates": {
            "ridge": {"mean": -1.234568, "std": 0.1},
            "forest": {"mean": -2.0, "std": 0.2},
        },
    }
