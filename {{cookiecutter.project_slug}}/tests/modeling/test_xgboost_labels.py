"""xgboost_labels: XGBoost's classifier on the target's own labels (text, or numbers other
than 0..n-1), answered in them; a classification bake's only."""

from __future__ import annotations

import numpy as np
import pytest
from xgboost import XGBClassifier

from {{ cookiecutter.package_name }}.modeling import models

from conftest import MODELS


def test_xgboost_takes_text_labels_and_answers_in_them():
    """XGBClassifier refuses labels other than 0..n-1; the project's subclass fits on the
    labels' sorted positions: the same trees, answered in the labels."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 3))
    labels = np.array(["Gentoo", "Adelie", "Chinstrap"])[np.digitize(X[:, 0], [-0.4, 0.4])]
    config = {**MODELS["xgboost"], "n_estimators": 5}
    model = models.build("classification", config, seed=0).fit(X, labels)
    positions = np.unique(labels, return_inverse=True)[1]
    plain = XGBClassifier(**model.get_params()).fit(X, positions)
    assert model.classes_.tolist() == ["Adelie", "Chinstrap", "Gentoo"]
    np.testing.assert_array_equal(model.predict_proba(X), plain.predict_proba(X))
    np.testing.assert_array_equal(model.predict(X), model.classes_[plain.predict(X)])
    with pytest.raises(ValueError, match="Invalid classes"):
        XGBClassifier(n_estimators=5).fit(X, labels)
