"""The model card: what the model is, on which data, how well it does overall, per class and
per group (data.groups), and what it is for. Deterministic text: no dates, no git revision.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn import metrics as skm

from . import schema

MISSING = "(missing)"
# Groups smaller than this are listed, but their metrics are too noisy to compare.
SMALL_GROUP = 10


def per_class(y_true: np.ndarray, y_pred: np.ndarray, classes: list) -> dict[str, dict]:
    precision, recall, f1, support = skm.precision_recall_fscore_support(
        y_true, y_pred, labels=classes, zero_division=0
    )
    return {
        str(label): {
            "precision": round(float(p), 6),
            "recall": round(float(r), 6),
            "f1": round(float(f), 6),
            "support": int(s),
        }
        for label, p, r, f, s in zip(classes, precision, recall, f1, support, strict=True)
    }


def _scores(task: str, y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    if task == "classification":
        values = {
            "accuracy": skm.accuracy_score(y_true, y_pred),
            "f1_macro": skm.f1_score(y_true, y_pred, average="macro", zero_division=0),
        }
    else:
        values = {
            "rmse": skm.root_mean_squared_error(y_true, y_pred),
            "mae": skm.mean_absolute_error(y_true, y_pred),
        }
    return {k: round(float(v), 6) for k, v in values.items()}


def per_group(
    test: pd.DataFrame, y_pred: np.ndarray, roles: schema.Roles, task: str
) -> dict[str, dict[str, dict]]:
    """Metrics of the test rows of each value of each group column (missing as its own group)."""
    y_true = test[roles.target].to_numpy()
    out: dict[str, dict[str, dict]] = {}
    for column in roles.groups:
        if column not in test.columns:
            continue
        values = schema.category_text(test[column]).fillna(MISSING).astype(str).to_numpy()
        out[column] = {
            str(value): {"rows": int(mask.sum()), **_scores(task, y_true[mask], y_pred[mask])}
            for value in sorted(set(values))
            for mask in [values == value]
        }
    return out


def _table(rows: list[dict[str, Any]], columns: list[str]) -> list[str]:
    lines = ["| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]
    lines += ["| " + " | ".join(str(row[c]) for c in columns) + " |" for row in rows]
    return lines


def render(meta: dict, classes: dict[str, dict] | None, groups: dict[str, dict]) -> str:
    """Markdown of the card; `meta` is models/model.json's content."""
    features = meta["features"]
    roles = features["roles"]
    lines = [
        f"# Model card: {meta['model']} ({meta['task']})",
        "",
        "## Model",
        "",
        f"- Estimator: `{meta['model']}` behind the fitted preprocessor (imputation, "
        "scaling, one-hot encoding), scikit-learn "
        f"{meta['scikit_learn_version']}, seed {meta['seed']}.",
        f"- Target: `{roles['target']}`; headline metric `{meta['metric']}`.",
        "- Files: `models/model.skops` (skops, loaded with a reviewed list of types), "
        "`models/onnx/` (ONNX, see below), `models/model.json` (this card's data).",
        "",
        "Hyperparameters:",
        "",
        *_table(
            [{"name": k, "value": v} for k, v in sorted(meta["hyperparameters"].items())],
            ["name", "value"],
        ),
        "",
        "## Data version",
        "",
        *_table([{"file": k, "md5": v} for k, v in sorted(meta["data"].items())], ["file", "md5"]),
        "",
        "## Metrics (test split)",
        "",
        *_table(
            [{"metric": k, "value": v} for k, v in sorted(meta["metrics"].items())],
            ["metric", "value"],
        ),
        "",
    ]
    if classes:
        lines += ["### Per class", ""]
        lines += _table(
            [{"class": k, **v} for k, v in classes.items()],
            ["class", "precision", "recall", "f1", "support"],
        )
        lines.append("")
    lines += ["### Per group", ""]
    if not groups:
        lines += ["No group columns (`data.groups`) in the data.", ""]
    for column, values in groups.items():
        names = [k for k in next(iter(values.values())) if k != "rows"]
        lines += [f"By `{column}`:", ""]
        lines += _table([{column: k, **v} for k, v in values.items()], [column, "rows", *names])
        small = [k for k, v in values.items() if v["rows"] < SMALL_GROUP]
        if small:
            lines.append(
                f"\nFewer than {SMALL_GROUP} test rows in {', '.join(small)}: too few to compare."
            )
        lines.append("")
    onnx = meta.get("onnx", {})
    lines += ["## ONNX", ""]
    if onnx.get("status") == "exported":
        parity = onnx["parity"]
        lines.append(
            f"`models/onnx/model.onnx`: onnxruntime agrees with scikit-learn on the "
            f"{parity['rows']} test rows within {parity['max_abs_diff']:.3g} "
            f"(allowed {parity['allowed_abs_diff']:.3g})."
        )
    else:
        lines.append(f"Not exported: {onnx.get('reason', 'unknown')}.")
    ranges = ", ".join(
        f"`{c}` {v['min']}..{v['max']}" for c, v in sorted(features["numeric"].items())
    )
    known = "; ".join(f"`{c}`: {', '.join(v)}" for c, v in sorted(features["categorical"].items()))
    lines += [
        "",
        "## Intended use",
        "",
        f"Predicting `{roles['target']}` for rows like the training data, one row per "
        "record, with the same feature columns. A decision aid to be checked by people "
        "who know the domain, not an automatic decision-maker.",
        "",
        "## Limits",
        "",
        "- Trained on the training split of one tabular data set: metrics on other "
        "populations will differ; check the per-group table before relying on it for a group.",
        f"- Numeric ranges seen in training: {ranges or 'none'}. Values outside are extrapolation.",
        f"- Known categories: {known or 'none'}. An unseen category is encoded as all zeros "
        "(treated as none of the known ones); the server reports it as a warning.",
        "- Missing values are imputed as in training; many missing values make predictions "
        "less reliable.",
        "- Watch production inputs for drift (`python -m {{ cookiecutter.package_name }} "
        "monitor`) and retrain when they drift.",
        "",
    ]
    return "\n".join(lines)
