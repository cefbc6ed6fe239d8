"""The model card: what the model is, on which data, how well it does overall, per class and
per group (data.groups), and what it is for. Deterministic text: no dates, no git revision.
"""

from __future__ import annotations

from typing import Any

# Groups smaller than this are listed, but their metrics are too noisy to compare.
SMALL_GROUP = 10


def _table(rows: list[dict[str, Any]], columns: list[str]) -> list[str]:
    lines = ["| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]
    lines += ["| " + " | ".join(str(row[c]) for c in columns) + " |" for row in rows]
    return lines


def _fitted_on(rows: dict, task: str) -> str:
    if rows["fitted"] == rows["available"]:
        return f"- Fitted on every one of the {rows['available']} training rows."
    kind = "stratified " if task == "classification" else ""
    return (
        f"- Fitted on a seeded {kind}sample of {rows['fitted']} of the {rows['available']} "
        "training rows (`train.max_rows`)."
    )


def _chosen(model: str, select: dict | None) -> list[str]:
    """How the model was chosen; loudly when select ranked another model first."""
    if not select:
        return []
    first, metric, scores = select["first"], select["metric"], select["cv_scores"]
    ranked = f"cross-validated `{metric}` {scores[first]}"
    if select["chosen_by"] == "select":
        return [f"- Chosen by `select` (`model=auto`): first of {len(scores)} by {ranked}."]
    if model == first:
        return [f"- Chosen with `{select['chosen_by']}`; `select` ranked it first too ({ranked})."]
    own = scores.get(model)
    this = "not cross-validated" if own is None else f"{own}"
    return [
        f"- **Not select's first**: `select` ranked `{first}` first ({ranked}; this model "
        f"{this}). This one was chosen with `{select['chosen_by']}`; the default, "
        "`model=auto`, trains select's first."
    ]


def render(meta: dict) -> str:
    """Markdown of the card; `meta` is models/model.json's content, whose `metrics` are
    evaluate's (overall, per_class, groups): the card shows the numbers evaluate logged."""
    metrics = meta["metrics"]
    lines = _model_section(meta) + _metrics_section(metrics)
    if metrics.get("per_class"):
        lines += _per_class_section(metrics["per_class"])
    lines += _per_group_section(metrics.get("groups", {}))
#% if cookiecutter.onnx == "yes"
    lines += _onnx_section(meta.get("onnx", {}))
#% endif
    lines += _use_and_limits_section(meta["features"])
    return "\n".join(lines)


def _model_section(meta: dict) -> list[str]:
    """What the model is, what it was fitted on, its files, hyperparameters and data."""
    roles = meta["features"]["roles"]
    return [
        f"# Model card: {meta['model']} ({meta['task']})",
        "",
        "## Model",
        "",
        f"- Estimator: `{meta['model']}` behind the fitted preprocessor (imputation, "
        "scaling, one-hot encoding), scikit-learn "
        f"{meta['scikit_learn_version']}, seed {meta['seed']}.",
        f"- Target: `{roles['target']}`; headline metric `{meta['metric']}`.",
        _fitted_on(meta["training_rows"], meta["task"]),
        *_chosen(meta["model"], meta.get("select")),
#% if cookiecutter.onnx == "yes"
        "- Files: `models/model.skops` (skops, loaded with a reviewed list of types), "
        "`models/onnx/` (ONNX, see below), `models/model.json` (this card's data); "
        "`models/manifest.json` records each one's md5, this card's too.",
#% else
        "- Files: `models/model.skops` (skops, loaded with a reviewed list of types), "
        "`models/model.json` (this card's data); `models/manifest.json` records each "
        "one's md5, this card's too.",
#% endif
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
    ]


def _metrics_section(metrics: dict) -> list[str]:
    """The overall test-split metrics (the per-class and per-group ones follow)."""
    overall = {k: v for k, v in metrics.items() if not isinstance(v, dict)}
    return [
        "## Metrics (test split)",
        "",
        *_table(
            [{"metric": k, "value": v} for k, v in sorted(overall.items())],
            ["metric", "value"],
        ),
        "",
    ]


def _per_class_section(classes: dict) -> list[str]:
    return [
        "### Per class",
        "",
        *_table(
            [{"class": k, **v} for k, v in classes.items()],
            ["class", "precision", "recall", "f1", "support"],
        ),
        "",
    ]


def _per_group_section(entries: dict) -> list[str]:
    """A table per data.groups column, its largest gap, and the groups too small to compare."""
    groups = {
        column: {value: stats for value, stats in entry.items() if isinstance(stats, dict)}
        for column, entry in entries.items()
    }
    gaps = {column: entry["gap"] for column, entry in entries.items() if "gap" in entry}
    lines = ["### Per group", ""]
    if not groups:
        lines += ["No group columns (`data.groups`) in the data.", ""]
    for column, values in groups.items():
        names = [k for k in next(iter(values.values())) if k != "rows"]
        lines += [f"By `{column}`:", ""]
        lines += _table([{column: k, **v} for k, v in values.items()], [column, "rows", *names])
        if column in gaps:
            lines.append(f"\nLargest gap between `{column}` values: {gaps[column]}.")
        small = [k for k, v in values.items() if v["rows"] < SMALL_GROUP]
        if small:
            lines.append(
                f"\nFewer than {SMALL_GROUP} test rows in {', '.join(small)}: too few to compare."
            )
        lines.append("")
    return lines


#% if cookiecutter.onnx == "yes"
def _onnx_section(onnx: dict) -> list[str]:
    """Whether the ONNX model was exported, and how closely it agrees with scikit-learn."""
    if onnx.get("status") != "exported":
        return ["## ONNX", "", f"Not exported: {onnx.get('reason', 'unknown')}."]
    parity = onnx["parity"]
    return [
        "## ONNX",
        "",
        f"`models/onnx/model.onnx`: onnxruntime agrees with scikit-learn on the "
        f"{parity['rows']} test rows within {parity['max_abs_diff']:.3g} "
        f"(allowed {parity['allowed_abs_diff']:.3g}).",
    ]


#% endif
def _use_and_limits_section(features: dict) -> list[str]:
    """What the model is for, and the ranges and categories it has seen."""
    roles = features["roles"]
    ranges = ", ".join(
        f"`{c}` {v['min']}..{v['max']}" for c, v in sorted(features["numeric"].items())
    )
    known = "; ".join(f"`{c}`: {', '.join(v)}" for c, v in sorted(features["categorical"].items()))
    return [
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
#% if cookiecutter.serving == "yes"
        "(treated as none of the known ones); the server reports it as a warning.",
#% else
        "(treated as none of the known ones).",
#% endif
        "- Missing values are imputed as in training; many missing values make predictions "
        "less reliable.",
#% if cookiecutter.serving == "yes"
        "- Watch production inputs for drift (`python -m {{ cookiecutter.package_name }} "
        "monitor`) and retrain when they drift.",
#% endif
        "",
    ]
