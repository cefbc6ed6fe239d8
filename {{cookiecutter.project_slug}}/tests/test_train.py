"""train: the fitted preprocess transformer, then the configured model fitted on its output."""

from __future__ import annotations

import numpy as np
import pytest

from {{ cookiecutter.package_name }} import models, schema
from {{ cookiecutter.package_name }}.errors import ConfigError
from {{ cookiecutter.package_name }}.params import PreprocessParams
from {{ cookiecutter.package_name }}.stages import preprocess, train

TASKS = ["classification", "regression"]


@pytest.mark.parametrize("task", TASKS)
def test_train_builds_a_pipeline_that_takes_raw_rows(fitted, toy_roles, simple_model, task):
    pipeline, train_rows, test_rows = fitted(task)
    assert [name for name, _ in pipeline.steps] == ["preprocess", "model"]
    assert isinstance(
        pipeline.named_steps["model"], models.REGISTRY[task][simple_model[task]["name"]]
    )
    predictions = pipeline.predict(schema.model_frame(test_rows, toy_roles))
    assert len(predictions) == len(test_rows)
    if task == "classification":
        assert list(pipeline.classes_) == ["high", "low", "mid"]
        assert (predictions == test_rows["target"].to_numpy()).mean() > 0.6
    else:
        assert np.corrcoef(predictions, test_rows["target"])[0, 1] > 0.9


@pytest.mark.parametrize("task", TASKS)
def test_train_keeps_the_fitted_transformer_and_the_seed(toy, toy_roles, make_params, task):
    train_rows, _, transformer, _ = preprocess.preprocess(
        toy(task), toy_roles, PreprocessParams(), 0, task
    )
    params = make_params({"task": task, "seed": 123})
    config = {"name": "random_forest", "n_estimators": 5}
    pipeline = train.train(train_rows, toy_roles, transformer, config, params)
    assert pipeline.named_steps["preprocess"] is transformer
    assert pipeline.named_steps["model"].random_state == 123
    assert pipeline.named_steps["model"].n_estimators == 5


def test_train_refuses_a_model_of_the_other_task(toy, toy_roles, make_params):
    train_rows, _, transformer, _ = preprocess.preprocess(
        toy("regression"), toy_roles, PreprocessParams(), 0, "regression"
    )
    with pytest.raises(ConfigError, match="model 'logistic_regression' is not a regression model"):
        train.train(
            train_rows,
            toy_roles,
            transformer,
            {"name": "logistic_regression"},
            make_params({"task": "regression"}),
        )
