"""XGBoost's classifier on the target's own labels (conf/model/xgboost.yaml's `_target_`).

XGBClassifier takes only the classes 0..n-1 (text labels such as penguin species are
refused); this subclass fits on each label's position among the sorted labels, as
scikit-learn's classifiers order `classes_`, and answers in the labels.
"""

from __future__ import annotations

import numpy as np
from xgboost import XGBClassifier


class XGBLabelClassifier(XGBClassifier):
    def fit(self, X, y, **kwargs) -> XGBLabelClassifier:
        labels, positions = np.unique(np.asarray(y), return_inverse=True)
        self.labels_ = None  # XGBClassifier.fit checks its positions against classes_
        super().fit(X, positions, **kwargs)
        self.labels_ = labels
        return self

    @property
    def classes_(self) -> np.ndarray:
        labels = getattr(self, "labels_", None)
        return np.arange(self.n_classes_) if labels is None else labels

    def predict(self, X, **kwargs) -> np.ndarray:
        return self.classes_[super().predict(X, **kwargs)]
