"""train: preprocess's transformer and the configured model, fitted on every training row."""

from __future__ import annotations

import re

import numpy as np
import pytest

from {{ cookiecutter.package_name }}.core import model_catalog
from {{ cookiecutter.package_name }}.core.errors import ConfigError
from {{ cookiecutter.package_name }}.stages import preprocess, train
from {{ cookiecutter.package_name }}.tables import schema

TASKS = ["classification", "regression"]


@pytest.mark.parametrize("task", TASKS)
def test_train_builds_a_pipeline_that_takes_raw_rows(fitted, toy_roles, simple_model, task):
    pipeline, train_rows, test_rows = fitted(task)
    assert [name for name, _ in pipeline.steps] == ["preprocess", "model"]
    assert isinstance(
        pipeline.named_steps["model"], model_catalog.estimator_class(simple_model[task])
    )
    predictions = pipeline.predict(schema.model_frame(test_rows, toy_roles))
    assert len(predictions) == len(test_rows)
    if task == "classification":
        assert list(pipeline.classes_) == ["high", "low", "mid"]
        assert (predictions == test_rows["target"].to_numpy()).mean() > 0.6
    else:
        assert np.corrcoef(predictions, test_rows["target"])[0, 1] > 0.9


def test_train_keeps_the_fitted_transformer_and_the_seed(
    toy, toy_roles, make_params, task, task_models, configured
):
    train_rows, _, transformer, _ = preprocess.preprocess(
        toy(task), toy_roles, rules=configured("preprocess"), seed=0, task=task
    )
    params = make_params({"task": task, "seed": 123})
    config = {**task_models["random_forest"], "n_estimators": 5}
    pipeline = train.train(
        train_rows, toy_roles, transformer, config=config, settings=train.Settings.of(params)
    )
    # Refitted on the same rows (a target encoder must cross-fit), so equal to preprocess's.
    X = schema.model_frame(train_rows, toy_roles)
    assert np.array_equal(pipeline.named_steps["preprocess"].transform(X), transformer.transform(X))
    assert pipeline.named_steps["model"].random_state == 123
    assert pipeline.named_steps["model"].n_estimators == 5


def test_train_logs_the_fit_with_rows_and_seconds(toy, toy_roles, make_params, caplog, configured):
    task = "regression"
    train_rows, _, transformer, _ = preprocess.preprocess(
        toy(task), toy_roles, rules=configured("preprocess"), seed=0, task=task
    )
    caplog.set_level("INFO")
    params = make_params({"task": task})
    ridge = {"_target_": "sklearn.linear_model.Ridge", "name": "ridge"}
    train.train(
        train_rows, toy_roles, transformer, config=ridge, settings=train.Settings.of(params)
    )
    (line,) = [r.getMessage() for r in caplog.records if r.getMessage().startswith("fit ")]
    assert re.fullmatch(rf"fit ridge rows={len(train_rows)} seconds=[\d.]+", line)


def test_train_refuses_a_model_of_the_other_task(
    toy, toy_roles, make_params, simple_model, configured
):
    train_rows, _, transformer, _ = preprocess.preprocess(
        toy("regression"), toy_roles, rules=configured("preprocess"), seed=0, task="regression"
    )
    params = make_params({"task": "regression"})
    with pytest.raises(
        ConfigError,
        match="model logistic_regression._target_ 'sklearn.linear_model.LogisticRegression' is "
        "not a regression estimator",
    ):
        train.train(
            train_rows,
            toy_roles,
            transformer,
            config=simple_model["classification"],
            settings=train.Settings.of(params),
        )


@pytest.mark.parametrize("config", ["random_forest", "hist_gradient_boosting", "linear"])
def test_reruns_at_one_n_jobs_setting_give_identical_model_files(
    toy, toy_roles, make_params, simple_model, task, task_models, config, tmp_path, configured
):
    """compute.n_jobs spreads fitting over cores; it must not make reruns differ. Forests and
    linear models are the same at any setting; histogram gradient boosting sums over
    threads, so its last bits follow the setting (docs/pipeline.md: Reproducibility)."""
    from {{ cookiecutter.package_name }}.core import io

    chosen = {
        "random_forest": {**task_models["random_forest"], "n_estimators": 8},
        "hist_gradient_boosting": {**task_models["hist_gradient_boosting"], "max_iter": 15},
        "linear": simple_model[task],
    }[config]
    rows = toy(task, n=400, seed=5)
    train_rows, _, transformer, _ = preprocess.preprocess(
        rows, toy_roles, rules=configured("preprocess"), seed=0, task=task
    )
    digests = {}
    for n_jobs, attempt in [(1, "a"), (2, "a"), (2, "b")]:
        params = make_params({"task": task, "compute.n_jobs": n_jobs})
        pipeline = train.train(
            train_rows, toy_roles, transformer, config=chosen, settings=train.Settings.of(params)
        )
        io.save_model(tmp_path / f"{n_jobs}{attempt}.skops", pipeline)
        digests[n_jobs, attempt] = io.file_md5(tmp_path / f"{n_jobs}{attempt}.skops")
    assert digests[2, "a"] == digests[2, "b"], "a rerun at n_jobs=2 changed the model file"
    if config != "hist_gradient_boosting":  # its OpenMP sums follow the thread count
        assert digests[1, "a"] == digests[2, "a"], "n_jobs changed the model file"


def test_train_fits_every_row_whatever_the_budgets(
    toy, toy_roles, make_params, task, task_models, configured
):
    """Budgets are for choosing and judging: select.max_rows never shrinks training."""
    rows = toy(task, n=300, seed=2)
    train_rows, _, transformer, _ = preprocess.preprocess(
        rows, toy_roles, rules=configured("preprocess"), seed=0, task=task
    )
    params = make_params({"task": task, "select.min_rows": 100, "select.max_rows": 100})
    config = {**task_models["random_forest"], "n_estimators": 3, "max_samples": 1000}
    pipeline = train.train(
        train_rows, toy_roles, transformer, config=config, settings=train.Settings.of(params)
    )
    forest = pipeline.named_steps["model"]
    assert forest.max_samples is None, "a cap above the row count means every row"
    assert (
        forest.n_features_in_
        == transformer.transform(schema.model_frame(train_rows.head(2), toy_roles)).shape[1]
    )
    assert forest.estimators_[0].tree_.weighted_n_node_samples[0] == len(train_rows)
