"""business_value: the expected value per prediction, as a scikit-learn scorer."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.dummy import DummyClassifier, DummyRegressor

from {{ cookiecutter.package_name }}.core.errors import ConfigError
from {{ cookiecutter.package_name }}.core.params import BusinessParams
from {{ cookiecutter.package_name }}.modeling import business, models

MATRIX = {"Adelie": {"Adelie": 2.0, "Gentoo": -5.0}, "Gentoo": {"Adelie": -1.0}}


def test_classification_value_uses_the_matrix_and_the_defaults():
    y_true = ["Adelie", "Adelie", "Gentoo", "Gentoo", "Chinstrap", "Chinstrap"]
    y_pred = ["Adelie", "Gentoo", "Adelie", "Gentoo", "Chinstrap", "Adelie"]
    value = business.classification_value(
        y_true, y_pred, matrix=MATRIX, correct_value=1.0, wrong_value=-0.5
    )
    # 2 - 5 - 1, then defaults: Gentoo right 1, Chinstrap right 1, Chinstrap wrong -0.5
    assert value == pytest.approx((2 - 5 - 1 + 1 + 1 - 0.5) / 6)


def test_an_empty_matrix_is_the_accuracy():
    value = business.classification_value(
        [0, 1, 1, 2], [0, 1, 2, 2], matrix={}, correct_value=1.0, wrong_value=0.0
    )
    assert value == 0.75


def test_numeric_classes_match_yaml_keys():
    value = business.classification_value(
        [0, 1], [1.0, 1.0], matrix={0: {1: -3.0}}, correct_value=1.0, wrong_value=0.0
    )
    assert value == -1.0


def test_unknown_class_names_are_an_error_that_names_them():
    params = BusinessParams(value_matrix={"Adelie": {"Emperor": 1.0}, "Kings": {}})
    with pytest.raises(ConfigError, match=r"not in the target: Emperor, Kings \(classes: Adelie"):
        business.check_matrix(params, ["Adelie", "Gentoo"])


def test_regression_value_is_minus_the_cost_of_the_mean_error():
    value = business.regression_value([1.0, 2.0], [2.0, 5.0], cost_per_unit_error=3.0)
    assert value == -6.0


def test_it_is_a_scorer_that_models_accepts_for_both_tasks():
    assert (
        models.check_metric("classification", "business_value", ["a", "b", "c"]) == "business_value"
    )
    assert models.check_metric("regression", "business_value") == "business_value"
    X = np.zeros((4, 1))
    y = np.array(["Adelie", "Adelie", "Adelie", "Gentoo"])
    model = DummyClassifier(strategy="most_frequent").fit(X, y)
    scorer = models.scorer(
        "classification",
        "business_value",
        BusinessParams(value_matrix=MATRIX, correct_value=1.0, wrong_value=0.0),
    )
    assert scorer(model, X, y) == pytest.approx((2 + 2 + 2 - 1) / 4)
    regressor = DummyRegressor().fit(X, [1.0, 3.0, 1.0, 3.0])
    cost = BusinessParams(cost_per_unit_error=2.0)
    assert models.scorer("regression", "business_value", cost)(regressor, X, [1.0] * 4) == -2.0


def test_select_ranks_by_business_value(
    toy, toy_roles, task, simple_model, make_params, configured
):
    """With the baked defaults (an empty matrix; a cost of 1 per unit) business_value
    cross-validates exactly as accuracy (classification) or -MAE (regression)."""
    from {{ cookiecutter.package_name }}.stages import preprocess, select

    transformer = preprocess.build_transformer(toy_roles, configured("preprocess"), task, None, 0)
    twin = "accuracy" if task == "classification" else "neg_mean_absolute_error"
    means = []
    for metric in ("business_value", twin):
        params = make_params(
            {
                "metric": metric,
                "select.candidates": {"linear": simple_model[task]},
                "select.cv_folds": 3,
            }
        )
        ranking = select.rank(
            toy(task),
            toy_roles,
            transformer,
            settings=select.Settings.of(params),
        )
        means.append(ranking["mean"].iloc[0])
    assert means[0] == pytest.approx(means[1])


def test_row_values_are_each_rows_value_and_average_to_business_value(configured):
    y_true = np.array(["Adelie", "Adelie", "Gentoo", "Chinstrap", "Gentoo"])
    y_pred = np.array(["Adelie", "Gentoo", "Adelie", "Adelie", "Gentoo"])
    params = BusinessParams(value_matrix=MATRIX, correct_value=1.0, wrong_value=-0.5)
    values = business.row_values("classification", params, y_true, y_pred)
    assert values.tolist() == [2.0, -5.0, -1.0, -0.5, 1.0]
    assert values.mean() == business.classification_value(
        y_true, y_pred, matrix=MATRIX, correct_value=1.0, wrong_value=-0.5
    )
    # Whole floats are their integer: 1.0 predicted for the class 1 is right.
    numeric = BusinessParams(value_matrix={0: {1: -3.0}}, correct_value=1.0, wrong_value=0.0)
    assert business.row_values("classification", numeric, [0, 1], [1.0, 1.0]).tolist() == [-3, 1]
    regression = BusinessParams(cost_per_unit_error=2.0)
    assert business.row_values("regression", regression, [1, 2], [2, 5]).tolist() == [-2, -6]
