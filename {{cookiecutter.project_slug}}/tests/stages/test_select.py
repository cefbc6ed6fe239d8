"""select: cross-validated ranking of the candidate models, best first, reproducibly."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from {{ cookiecutter.package_name }}.core import io
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
    assert list(ranking.columns) == [
        "rank",
        "model",
        "mean",
        "std",
        "rows",
        "predicted_seconds",
        "cut_rung",
        "cut_rows",
        "cut_predicted_seconds",
        "cut_share_seconds",
    ]
    assert ranking["cut_rung"].isna().all(), "the default budget cuts nothing on small data"
    assert (ranking["rows"] == len(toy(task))).all(), "small data: every candidate, every row"
    assert ranking["rank"].tolist() == list(range(1, len(task_models) + 1))
    assert sorted(ranking["model"]) == sorted(task_models)
    assert ranking["mean"].is_monotonic_decreasing
    assert (ranking["std"] >= 0).all()
    pd.testing.assert_frame_equal(rank(), ranking)


def test_rank_logs_each_candidate_with_its_score_rows_and_predicted_and_measured_seconds(
    rank, caplog
):
    caplog.set_level("INFO")
    ranking = rank()
    logged = [r.getMessage() for r in caplog.records if r.getMessage().startswith("candidate ")]
    assert len(logged) == len(ranking)
    for name, mean, rows in ranking[["model", "mean", "rows"]].itertuples(index=False):
        (line,) = [m for m in logged if m.startswith(f"candidate {name} ")]
        pattern = rf"candidate {name} score=\S+ rows={rows} predicted=[\d.e-]+ seconds=[\d.]+"
        assert re.fullmatch(pattern, line)
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


def test_summary_names_the_winner_and_the_cuts_for_time():
    ranking = pd.DataFrame(
        {
            "rank": [1, 2, 3],
            "model": ["ridge", "forest", "knn"],
            "mean": [-1.23456789, -2.0, np.nan],
            "std": [0.1, 0.2, np.nan],
            "rows": [400, 200, 0],
            "predicted_seconds": [0.5, 3.25, 0.0],
            "cut_rung": pd.array([None, 1, 0], dtype="Int64"),
            "cut_rows": pd.array([None, 400, 200], dtype="Int64"),
            "cut_predicted_seconds": [np.nan, 12.5, 80.0],
            "cut_share_seconds": [np.nan, 4.0, 2.0],
        }
    )
    assert select.summary(ranking, "neg_mean_absolute_error", 60.0) == {
        "winner": "ridge",
        "metric": "neg_mean_absolute_error",
        "cv_score": -1.234568,
        "time_budget": 60.0,
        "cut_for_time": ["forest", "knn"],
        "candidates": {
            "ridge": {
                "mean": -1.234568,
                "std": 0.1,
                "rows": 400,
                "predicted_seconds": 0.5,
                "cut_for_time": None,
            },
            "forest": {
                "mean": -2.0,
                "std": 0.2,
                "rows": 200,
                "predicted_seconds": 3.25,
                "cut_for_time": {
                    "rung": 1,
                    "rows": 400,
                    "predicted_seconds": 12.5,
                    "share_seconds": 4.0,
                },
            },
            "knn": {
                "mean": None,
                "std": None,
                "rows": 0,
                "predicted_seconds": 0.0,
                "cut_for_time": {
                    "rung": 0,
                    "rows": 200,
                    "predicted_seconds": 80.0,
                    "share_seconds": 2.0,
                },
            },
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


@pytest.fixture
def priced(monkeypatch):
    """Predicted costs made plain: 1 reference second per 100 rows of the rung, ten times
    that for a forest, so a test can say which share each candidate gets."""

    def price(estimator, shape, *, folds, n_jobs):
        return shape.rows / 100 * (10 if "Forest" in type(estimator).__name__ else 1)

    monkeypatch.setattr(select.fit_cost, "cv_seconds", price)


@pytest.fixture
def fitted_on(monkeypatch) -> list[int]:
    """The rows of each cross-validation select runs, in order."""
    rows, real_score = [], select.cross_val_score

    def spy(pipeline, X, *args, **kwargs):
        rows.append(len(X))
        return real_score(pipeline, X, *args, **kwargs)

    monkeypatch.setattr(select, "cross_val_score", spy)
    return rows


def _linear_and_forest(task_models: dict, simple_model: dict, task: str) -> dict:
    forest = {**task_models["random_forest"], "n_estimators": 300, "max_features": None}
    return {"linear": simple_model[task], "forest": forest}


def test_a_tight_budget_scores_the_forest_on_less_and_reruns_cut_the_same(
    rank, toy, task, task_models, simple_model, monkeypatch, caplog
):
    """The real cost model: a budget of the linear model's cost plus half the forest's
    scores the linear model on every row and the forest on the largest sample that fits
    its share; a rerun, even with a clock that says everything took 1,000 times longer,
    makes the same cut and writes the same select.json."""
    pair, rows = _linear_and_forest(task_models, simple_model, task), toy(task, n=2000, seed=1)
    pair["forest"]["n_estimators"] = 30
    free = rank({"select.candidates": pair, "select.time_budget": None}, rows=rows)
    costs = free.set_index("model")["predicted_seconds"]
    linear, forest = costs["linear"], costs["forest"]
    assert free["cut_rung"].isna().all() and forest > 4 * linear
    tight = {"select.candidates": pair, "select.time_budget": linear + forest / 2}
    caplog.set_level("INFO")
    ranking = rank(tight, rows=rows)
    by_model = ranking.set_index("model")
    assert by_model.loc["linear", "rows"] == 2000 and pd.isna(by_model.loc["linear", "cut_rung"])
    cut = by_model.loc["forest"]
    assert (cut["cut_rung"], cut["cut_rows"]) == (0, 2000)
    assert cut["cut_predicted_seconds"] == pytest.approx(forest, abs=0.01)
    assert cut["cut_share_seconds"] == pytest.approx(forest / 2, abs=0.02)
    assert 2000 // select.FLOOR <= cut["rows"] < 2000
    assert cut["predicted_seconds"] <= cut["cut_share_seconds"] + 0.01
    assert ranking["model"].tolist() == ["linear", "forest"], "more rows rank first"
    (line,) = [r.getMessage() for r in caplog.records if "time cut" in r.getMessage()]
    scored = int(cut["rows"])
    assert re.fullmatch(
        rf"time cut forest rung=0 rows=2000 predicted=\S+ share=\S+ scored_rows={scored}", line
    )
    slow_clock = iter(np.arange(0.0, 1e9, 1000.0))
    monkeypatch.setattr(select.time, "perf_counter", lambda: next(slow_clock))
    again = rank(tight, rows=rows)
    pd.testing.assert_frame_equal(again, ranking)
    report = select.summary(ranking, "m", 1.0)
    assert io.json_text(select.summary(again, "m", 1.0)) == io.json_text(report)
    assert report["cut_for_time"] == ["forest"]


def test_a_budget_below_the_floor_leaves_a_winner_and_ranks_the_unscored_last(
    rank, toy, task, task_models, simple_model, priced, fitted_on
):
    """Linear: 4 s on 400 rows, forest 40 s, budget 0.5 s. The cheapest candidate is always
    scored, on the floor (a tenth of the rows) if nothing fits; the forest cannot reach
    the floor in what is left and ranks last, unscored."""
    pair, rows = _linear_and_forest(task_models, simple_model, task), toy(task, n=400, seed=1)
    ranking = rank({"select.candidates": pair, "select.time_budget": 0.5}, rows=rows)
    assert fitted_on == [40]
    assert ranking["model"].tolist() == ["linear", "forest"]
    linear, forest = ranking.to_dict("records")
    assert linear["rows"] == 40 and not np.isnan(linear["mean"])
    assert (linear["cut_rows"], linear["cut_predicted_seconds"], linear["cut_share_seconds"]) == (
        400,
        4.0,
        0.25,
    )
    assert forest["rows"] == 0 and np.isnan(forest["mean"])
    assert (forest["cut_rung"], forest["cut_predicted_seconds"], forest["cut_share_seconds"]) == (
        0,
        40.0,
        0.1,
    )
    report = select.summary(ranking, "m", 0.5)
    assert report["winner"] == "linear" and report["cut_for_time"] == ["forest", "linear"]
    assert report["candidates"]["forest"]["mean"] is None
    io.json_text(report)  # JSON without NaN: the report is written


def test_a_candidate_cut_for_time_does_not_go_on_to_the_next_rung(
    rank, toy, task, task_models, simple_model, priced, fitted_on
):
    """Rungs of 100 and 200 rows, budget 8 s: 4 s for the first rung, shared cheapest
    first (1, 1, then the forest's 10 s against a share of 2 s: 20 rows), the rest (5.8 s)
    for the second, which only the two linear models run."""
    weak = {**simple_model[task], **({"C": 0.0001} if task == "classification" else {"alpha": 1e6})}
    forest = _linear_and_forest(task_models, simple_model, task)["forest"]
    candidates = {"strong": simple_model[task], "weak": weak, "forest": forest}
    budget = {"select.min_rows": 100, "select.max_rows": 400, "select.time_budget": 8.0}
    ranking = rank({"select.candidates": candidates, **budget}, rows=toy(task, n=400, seed=1))
    assert fitted_on == [100, 100, 20, 200, 200]
    by_model = ranking.set_index("model")
    assert by_model["rows"].to_dict() == {"strong": 200, "weak": 200, "forest": 20}
    assert by_model.loc["forest", "cut_share_seconds"] == 2.0
    assert by_model["cut_rung"].isna().tolist() == [True, True, False]


def test_a_machine_slower_than_predicted_gets_one_line_saying_what_to_change(
    rank, priced, monkeypatch, caplog
):
    monkeypatch.setattr(select, "SLOW_SECONDS", 0.0)
    monkeypatch.setattr(select.fit_cost, "cv_seconds", lambda *a, **k: 1e-9)
    caplog.set_level("INFO")
    rank()
    (warning,) = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert "slower than the reference" in warning and "lower select.time_budget" in warning


def test_the_time_budget_is_a_positive_number_of_seconds_or_null(make_params):
    from {{ cookiecutter.package_name }}.core.errors import ConfigError as Refused

    assert make_params({"select.time_budget": None}).select.time_budget is None
    with pytest.raises(Refused, match="time_budget"):
        make_params({"select.time_budget": 0})
