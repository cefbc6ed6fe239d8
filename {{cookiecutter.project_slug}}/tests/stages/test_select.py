"""select: cross-validated ranking of the candidate models, best first, reproducibly."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from {{ cookiecutter.package_name }}.core.errors import ConfigError
from {{ cookiecutter.package_name }}.stages import preprocess, select


@pytest.fixture
def rank(toy, toy_roles, task, task_models, make_params, configured):
    """select.rank() for this project's task, with small candidates and 3 folds."""

    def make(changes: dict | None = None, rows: pd.DataFrame | None = None):
        params = make_params(
            {"select.candidates": task_models, "select.cv_folds": 3, **(changes or {})}
        )
        transformer = preprocess.build_transformer(
            toy_roles, configured("preprocess"), task, None, 0
        )
        rows = toy(task) if rows is None else rows
        return select.rank(rows, toy_roles, transformer, settings=select.Settings.of(params))

    return make


def test_rank_lists_every_candidate_best_first_reproducibly(rank, task_models, toy, task):
    ranking = rank()
    assert list(ranking.columns) == ["rank", "model", "mean", "std", "rows"]
    assert (ranking["rows"] == len(toy(task))).all(), "small data: every candidate, every row"
    assert ranking["rank"].tolist() == list(range(1, len(task_models) + 1))
    assert sorted(ranking["model"]) == sorted(task_models)
    assert ranking["mean"].is_monotonic_decreasing
    assert (ranking["std"] >= 0).all()
    pd.testing.assert_frame_equal(rank(), ranking)


def test_rank_logs_each_candidate_with_its_score_rows_and_seconds(rank, caplog):
    caplog.set_level("INFO")
    ranking = rank()
    logged = [r.getMessage() for r in caplog.records if r.getMessage().startswith("candidate ")]
    assert len(logged) == len(ranking)
    for name, mean, rows in ranking[["model", "mean", "rows"]].itertuples(index=False):
        (line,) = [m for m in logged if m.startswith(f"candidate {name} ")]
        assert re.fullmatch(rf"candidate {name} score=\S+ rows={rows} seconds=[\d.]+", line)
        assert float(line.split("score=")[1].split()[0]) == pytest.approx(mean, rel=1e-3)


def test_rank_breaks_ties_by_name(rank, simple_model, task):
    twins = {"twin_b": simple_model[task], "twin_a": simple_model[task]}
    ranking = rank({"select.candidates": twins})
    assert ranking["model"].tolist() == ["twin_a", "twin_b"]
    assert ranking["mean"].iloc[0] == ranking["mean"].iloc[1]


def test_rank_handles_augmented_rows(rank, simple_model, toy, toy_roles, task, configured):
    rows = preprocess.augment(
        toy(task), toy_roles.numeric, rules=configured("preprocess.augment", enabled=True), seed=0
    )
    only = {"select.candidates": {"linear": simple_model[task]}}
    ranking = rank(only, rows=rows)
    assert ranking["model"].tolist() == ["linear"]
    assert ranking["mean"].notna().all()


def test_rank_checks_the_metric_first(rank, task):
    wrong = "r2" if task == "classification" else "accuracy"
    with pytest.raises(
        ConfigError, match=f"metric '{wrong}' is not a scikit-learn scorer for {task}"
    ):
        rank({"metric": wrong})


def test_summary_names_the_winner():
    ranking = pd.DataFrame(
        {
            "rank": [1, 2],
            "model": ["ridge", "forest"],
            "mean": [-1.23456789, -2.0],
            "std": [0.1, 0.2],
            "rows": [400, 200],
        }
    )
    assert select.summary(ranking, "neg_mean_absolute_error") == {
        "winner": "ridge",
        "metric": "neg_mean_absolute_error",
        "cv_score": -1.234568,
        "candidates": {
            "ridge": {"mean": -1.234568, "std": 0.1, "rows": 400},
            "forest": {"mean": -2.0, "std": 0.2, "rows": 200},
        },
    }


def test_successive_halving_gives_the_best_more_rows(rank, simple_model, toy, task, monkeypatch):
    """Every candidate on min_rows, the better half on factor x as many, up to max_rows."""
    fitted_on = []
    real_score = select.cross_val_score

    def spy(pipeline, X, *args, **kwargs):
        fitted_on.append(len(X))
        return real_score(pipeline, X, *args, **kwargs)

    monkeypatch.setattr(select, "cross_val_score", spy)
    weak = {**simple_model[task], **({"C": 0.0001} if task == "classification" else {"alpha": 1e6})}
    candidates = {"strong": simple_model[task], "weak": weak, "weaker": {**weak, **_weaker(task)}}
    rows = toy(task, n=400, seed=1)
    budget = {"select.min_rows": 100, "select.max_rows": 300, "select.factor": 2}
    ranking = rank({"select.candidates": candidates, **budget}, rows=rows)
    assert fitted_on == [100, 100, 100, 200, 200], "3 on 100 rows, the best 2 on 200, then stop"
    assert ranking["model"].iloc[0] == "strong"
    assert ranking.set_index("model")["rows"].to_dict()["weaker"] == 100
    assert ranking["rows"].is_monotonic_decreasing, "survivors rank above the dropped"
    pd.testing.assert_frame_equal(
        rank({"select.candidates": candidates, **budget}, rows=rows), ranking
    )


def _weaker(task: str) -> dict:
    return {"C": 0.00001} if task == "classification" else {"alpha": 1e8}


def test_halving_samples_keep_class_shares(toy):
    from {{ cookiecutter.package_name }}.core import compute

    y = np.array(["a"] * 900 + ["b"] * 100)
    rows = compute.sample(np.arange(1000), y, 200, seed=0)
    assert len(rows) == 200 and (np.diff(rows) > 0).all()
    assert (y[rows] == "b").sum() == 20
    assert np.array_equal(compute.sample(np.arange(1000), y, 200, seed=0), rows)
    assert np.array_equal(compute.sample(np.arange(50), y, 200, seed=0), np.arange(50))


def test_halving_samples_keep_enough_rows_of_a_rare_class_for_the_folds():
    from {{ cookiecutter.package_name }}.core import compute

    y = np.array(["a"] * 990 + ["rare"] * 10)
    plain = compute.sample(np.arange(1000), y, 100, seed=0)
    assert (y[plain] == "rare").sum() == 1
    rows = compute.sample(np.arange(1000), y, 100, seed=0, per_class=5)
    assert (y[rows] == "rare").sum() == 5 and len(rows) == 104
    assert set(plain) <= set(rows) and len(set(rows)) == len(rows)


def test_a_class_smaller_than_the_folds_is_refused_naming_it(rank, task, toy):
    from {{ cookiecutter.package_name }}.core.errors import DataError

    if task != "classification":
        pytest.skip("classes are a classification matter")
    rows = toy(task)
    rows.loc[:1, "target"] = "tiny"
    message = "class 'tiny' of 'target' has 2 row.*select.cv_folds=5 .*cv_folds to 2 or less"
    with pytest.raises(DataError, match=message):
        rank({"select.cv_folds": 5}, rows=rows)


def test_min_rows_above_max_rows_is_refused(make_params):
    from {{ cookiecutter.package_name }}.core.errors import ConfigError as Refused

    with pytest.raises(Refused, match="max_rows .* is below min_rows"):
        make_params({"select.min_rows": 500, "select.max_rows": 100})
