"""The live metric without labels: a confidence-based performance estimate (CBPE, after
NannyML), from the probabilities the server logged.

1. Calibration: the exported model's probabilities on its test split (rows with truth
   that it never trained on) are mapped to the observed frequencies, one isotonic
   regression per class (one class against the rest), each row then normalised to sum 1.
2. Estimate: if the calibrated probabilities are right, each live row's label is a draw
   from them. DRAWS sets of labels are drawn (numpy's Generator, seeded) and each is
   scored with the project's scorer against the logged answers, as the realised metric
   would be (bootstrap.Scoring): the mean is the estimate, the middle 95% of the draws
   its interval. Any classification metric works this way, business_value included; the
   cost is DRAWS scorings of the rows, linear in rows.

What it assumes: the calibration holds live, i.e. P(label | inputs) is what it was on the
test split. It follows covariate shift (the inputs move, the model's confidence moves
with them) but is blind to concept drift (the same inputs now mean other labels): the
model's probabilities do not change, so neither does the estimate. Regression is not
estimated: a regressor gives one number per row, no distribution to draw labels from.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.isotonic import IsotonicRegression

from ..core import io, paths
from ..decision import bootstrap
from ..decision.verdicts import Answers, Yardstick
from ..serving import registry
from ..tables import schema

DRAWS = 200
DECIMALS = 6
NOT_FOR_REGRESSION = (
    "not estimated for regression: a regressor logs one number per row, no distribution "
    "of labels to draw from"
)


@dataclass(frozen=True)
class Calibration:
    """Per class (as text, in the model's order) an isotonic map from the model's
    probability to the observed frequency of that class."""

    classes: list[str]
    maps: list[IsotonicRegression]

    def apply(self, proba: np.ndarray) -> np.ndarray:
        """Calibrated probabilities, each row normalised; a row every map sends to 0 keeps
        the model's own."""
        out = np.column_stack([m.predict(proba[:, k]) for k, m in enumerate(self.maps)])
        total = out.sum(axis=1, keepdims=True)
        return np.where(total > 0, out / np.where(total > 0, total, 1.0), proba)


def calibrate(proba: np.ndarray, truth: np.ndarray, classes: list) -> Calibration:
    """The calibration of a model's probabilities (columns in `classes`' order) on rows
    whose labels are `truth`."""
    names = [schema.category_label(c) for c in classes]
    observed = np.array([schema.category_label(t) for t in truth], dtype=object)
    maps = []
    for k, name in enumerate(names):
        iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
        maps.append(iso.fit(proba[:, k], (observed == name).astype(float)))
    return Calibration(names, maps)


def logged_proba(records: list[dict], classes: list[str]) -> np.ndarray:
    """The logged probabilities, one column per class of `classes` (text), 0 where a
    record lacks one."""
    rows = [{schema.category_label(c): v for c, v in r["probabilities"].items()} for r in records]
    return np.array([[row.get(c, 0.0) for c in classes] for row in rows], dtype=float)


def draws(calibrated: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One set of labels (class positions) drawn from each row's probabilities."""
    cumulative = np.cumsum(calibrated, axis=1)
    u = rng.random(len(calibrated)) * cumulative[:, -1]
    return np.minimum((u[:, None] >= cumulative).sum(axis=1), calibrated.shape[1] - 1)


def estimate(
    records: list[dict], calibration: Calibration, yardstick: Yardstick, seed: int
) -> dict:
    """The estimated headline metric of `records` (logged answers with probabilities):
    {estimate: true, metric, value, lower, upper, rows, draws}; value None (and why) when
    no draw could be scored."""
    classes = calibration.classes
    result = {"estimate": True, "metric": yardstick.metric, "rows": len(records), "value": None}
    if not records:
        return {**result, "why": "no rows to estimate"}
    proba = logged_proba(records, classes)
    predicted = np.array([schema.category_label(r["prediction"]) for r in records], dtype=object)
    answers, calibrated = Answers(predicted, proba), calibration.apply(proba)
    rng = np.random.default_rng(seed)
    names = np.array(classes, dtype=object)
    values = []
    for _ in range(DRAWS):
        truth = names[draws(calibrated, rng)]
        value = bootstrap.Scoring(yardstick.metric, yardstick, truth, classes).score(answers)
        if value is not None:
            values.append(value)
    if not values:
        return {**result, "why": f"{yardstick.metric} could score no draw of labels"}
    lower, upper = np.quantile(values, [0.025, 0.975])
    figures = {"value": np.mean(values), "lower": lower, "upper": upper}
    return {**result, **{k: round(float(v), DECIMALS) for k, v in figures.items()}, "draws": DRAWS}


def from_export() -> tuple[str, Calibration | None]:
    """(the md5 of the workspace's exported model, its calibration on its test split):
    the logged rows that model answered (their model_md5) can be estimated; None for a
    model without probabilities."""
    source = registry.from_workspace(Path("."), registry.artifact_name())
    model = registry.load(source, paths.MODEL_CONF)
    if not hasattr(model, "predict_proba"):
        return source.md5, None
    roles = schema.roles_from_dict(source.metadata["features"]["roles"])
    test = io.read_parquet(paths.TEST)
    with np.errstate(all="ignore"):  # far-out numbers may overflow inside a model
        proba = model.predict_proba(schema.model_frame(test, roles))
    return source.md5, calibrate(proba, test[roles.target].to_numpy(), list(model.classes_))


@dataclass(frozen=True)
class Estimator:
    """The estimate of any list of logged records: of those the calibrated model answered
    (model_md5) with probabilities; the others are counted, not estimated."""

    md5: str | None
    calibration: Calibration | None
    yardstick: Yardstick
    seed: int

    def __call__(self, records: list[dict]) -> dict:
        if self.yardstick.task == "regression":
            return {"estimate": True, "value": None, "why": NOT_FOR_REGRESSION}
        if self.calibration is None:
            return {"estimate": True, "value": None, "why": "the model gives no probabilities"}
        mine = [r for r in records if r.get("model_md5") == self.md5 and r.get("probabilities")]
        result = estimate(mine, self.calibration, self.yardstick, self.seed)
        if len(mine) < len(records):
            # No reference to calibrate another model's probabilities on.
            result["not_estimated"] = len(records) - len(mine)
        return result
