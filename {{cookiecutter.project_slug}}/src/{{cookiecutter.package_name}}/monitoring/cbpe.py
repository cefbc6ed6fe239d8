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
3. Rows several models answered (a window across a swap): each model's rows (by
   model_md5) are drawn from its own calibration and the models' metrics pooled draw by
   draw, weighted by rows (exact for a metric that is a mean over rows, as accuracy,
   business_value and log loss are; for ROC AUC the rows-weighted mean of each model's).
   The estimate says which versions it covered (`versions`: rows each).

What it assumes: the calibration holds live, i.e. P(label | inputs) is what it was on the
test split. It follows covariate shift (the inputs move, the model's confidence moves
with them) but is blind to concept drift (the same inputs now mean other labels): the
model's probabilities do not change, so neither does the estimate. Regression is not
estimated: a regressor gives one number per row, no distribution to draw labels from.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.isotonic import IsotonicRegression

from ..core import io, paths
from ..core.errors import DataError
from ..decision import bootstrap
from ..decision.verdicts import Answers, Yardstick
from ..serving import registry
from ..tables import schema
from .live import version_of

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


Part = tuple[list[dict], Calibration]  # one model's records and its calibration


def scored_draws(parts: list[Part], yardstick: Yardstick, seed: int) -> np.ndarray:
    """Per draw (a row) and part (a column), the metric of one set of labels drawn from
    the part's calibrated probabilities, scored against its logged answers; nan where a
    draw could not be scored. One generator for all parts, part after part in a draw:
    one part alone draws what it drew before parts were pooled."""
    prepared, label = [], schema.category_label
    for records, calibration in parts:
        proba = logged_proba(records, calibration.classes)
        predicted = np.array([label(r["prediction"]) for r in records], dtype=object)
        names = np.array(calibration.classes, dtype=object)
        prepared.append((Answers(predicted, proba), calibration.apply(proba), names))
    rng = np.random.default_rng(seed)
    values = np.full((DRAWS, len(parts)), np.nan)
    for n in range(DRAWS):
        for k, (answers, calibrated, names) in enumerate(prepared):
            truth = names[draws(calibrated, rng)]
            classes = parts[k][1].classes
            value = bootstrap.Scoring(yardstick.metric, yardstick, truth, classes).score(answers)
            values[n, k] = np.nan if value is None else value
    return values


def estimate(parts: list[Part], yardstick: Yardstick, seed: int) -> dict:
    """The estimated headline metric of logged answers with probabilities, each model's
    rows (a part) drawn from its own calibration and the parts pooled draw by draw,
    weighted by rows: {estimate: true, metric, value, lower, upper, rows, draws,
    versions: {version: rows}}. A part no draw could score (too few rows for the
    metric) is left out; value None (and why) when nothing is left."""
    parts = [p for p in parts if p[0]]
    rows = sum(len(records) for records, _ in parts)
    result = {"estimate": True, "metric": yardstick.metric, "rows": rows, "value": None}
    if not parts:
        return {**result, "why": "no rows to estimate"}
    values = scored_draws(parts, yardstick, seed)
    unscored = {**result, "why": f"{yardstick.metric} could score no draw of labels"}
    kept = ~np.isnan(values).all(axis=0)
    if not kept.any():
        return unscored
    parts, values = [p for p, k in zip(parts, kept, strict=True) if k], values[:, kept]
    sizes = np.array([len(records) for records, _ in parts])
    pooled = values @ (sizes / sizes.sum())  # nan in a draw a part could not score
    pooled = pooled[~np.isnan(pooled)]
    if not len(pooled):
        return unscored
    lower, upper = np.quantile(pooled, [0.025, 0.975])
    figures = {"value": np.mean(pooled), "lower": lower, "upper": upper}
    versions = Counter(version_of(r) for records, _ in parts for r in records)
    return {
        **result,
        "rows": int(sizes.sum()),
        **{k: round(float(v), DECIMALS) for k, v in figures.items()},
        "draws": DRAWS,
        "versions": dict(versions),
    }


def _calibration(model, metadata: dict, test: pd.DataFrame) -> Calibration | None:
    """The calibration of `model` on its test split; None without probabilities."""
    if not hasattr(model, "predict_proba"):
        return None
    roles = schema.roles_from_dict(metadata["features"]["roles"])
    with np.errstate(all="ignore"):  # far-out numbers may overflow inside a model
        proba = model.predict_proba(schema.model_frame(test, roles))
    return calibrate(proba, test[roles.target].to_numpy(), list(model.classes_))


def from_export() -> tuple[str, Calibration | None]:
    """(the md5 of the workspace's exported model, its calibration on its test split)."""
    source = registry.from_workspace(Path("."), registry.artifact_name())
    model = registry.load(source, paths.MODEL_CONF)
    return source.md5, _calibration(model, source.metadata, io.read_parquet(paths.TEST))


def from_version(version: str) -> tuple[str, Calibration | None]:
    """(the md5 of a registered version's model, its calibration on that version's test
    split), both read from the DVC cache by its commit's dvc.lock, as serving reads a
    version: the rows a served version answered are estimated by its own calibration,
    whatever the workspace holds now. DataError when the cache lacks them."""
    root, artifact = Path("."), registry.artifact_name()
    commit = registry.version_commit(root, artifact, version)
    source = registry.from_version(root, artifact, version, None, commit)
    model = registry.load(source, paths.MODEL_CONF)
    lock = registry.committed_text(root, commit, "dvc.lock")
    test = registry.cache_path(root, registry.locked_md5(lock, paths.TEST))
    if not test.is_file():
        raise DataError(f"the test split of {version} is not in the DVC cache: `dvc fetch`")
    return source.md5, _calibration(model, source.metadata, io.read_parquet(test))


@dataclass(frozen=True)
class Estimator:
    """The estimate of any list of logged records: of those a calibrated model answered
    (by model_md5) with probabilities, each model's by its own calibration, pooled
    (estimate); the others are counted as not_estimated."""

    calibrations: dict[str, Calibration | None]
    yardstick: Yardstick
    seed: int

    def __call__(self, records: list[dict]) -> dict:
        if self.yardstick.task == "regression":
            return {"estimate": True, "value": None, "why": NOT_FOR_REGRESSION}
        usable = {md5 for md5, c in self.calibrations.items() if c is not None}
        if not usable:
            return {"estimate": True, "value": None, "why": "no model here to calibrate"}
        # Each model's rows (rows answered by two versions: a window across a swap) by
        # its own calibration, in the order the models first answered.
        mine: dict[str, list[dict]] = {}
        for record in records:
            if record.get("model_md5") in usable and record.get("probabilities"):
                mine.setdefault(record["model_md5"], []).append(record)
        parts = [(rows, self.calibrations[md5]) for md5, rows in mine.items()]
        result = estimate(parts, self.yardstick, self.seed)
        if result["rows"] < len(records):
            # No reference to calibrate an unknown model's probabilities on.
            result["not_estimated"] = len(records) - result["rows"]
        return result
