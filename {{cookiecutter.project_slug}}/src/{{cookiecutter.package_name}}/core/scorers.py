"""The scorers `metric` may name, per task, and the targets each one can score.

Plain Python, no scikit-learn at import: params.py refuses a scorer of the other task
while `dvc exp run` composes conf/ (before anything runs), and clean refuses one that the
target's classes cannot take, the first stage that knows them. The names are
scikit-learn's (sklearn.metrics.get_scorer_names(), clustering scorers left out) plus
this project's business_value (business.py); tests/test_models.py checks them against
scikit-learn, and the template's pre-gen hook keeps a copy that its tests check.
"""

from __future__ import annotations

from collections.abc import Collection

BUSINESS = "business_value"

_CLASSIFICATION = frozenset({
    BUSINESS, "accuracy", "balanced_accuracy", "average_precision", "d2_brier_score",
    "d2_log_loss_score", "f1", "f1_macro", "f1_micro", "f1_samples", "f1_weighted", "jaccard",
    "jaccard_macro", "jaccard_micro", "jaccard_samples", "jaccard_weighted", "matthews_corrcoef",
    "neg_brier_score", "neg_log_loss", "precision", "precision_macro", "precision_micro",
    "precision_samples", "precision_weighted", "recall", "recall_macro", "recall_micro",
    "recall_samples", "recall_weighted", "roc_auc", "roc_auc_ovo", "roc_auc_ovo_weighted",
    "roc_auc_ovr", "roc_auc_ovr_weighted", "top_k_accuracy",
})  # fmt: skip
_REGRESSION = frozenset({
    BUSINESS, "d2_absolute_error_score", "explained_variance", "neg_max_error",
    "neg_mean_absolute_error", "neg_mean_absolute_percentage_error", "neg_mean_gamma_deviance",
    "neg_mean_poisson_deviance", "neg_mean_squared_error", "neg_mean_squared_log_error",
    "neg_median_absolute_error", "neg_root_mean_squared_error",
    "neg_root_mean_squared_log_error", "r2",
})  # fmt: skip
METRICS = {"classification": _CLASSIFICATION, "regression": _REGRESSION}
# Scorers of one positive class, for binary targets only (scikit-learn's scoring table:
# "for binary targets"; on more classes they raise): each with its multiclass variants.
BINARY_ONLY = {
    "f1": ("f1_macro", "f1_weighted", "f1_micro"),
    "precision": ("precision_macro", "precision_weighted", "precision_micro"),
    "recall": ("recall_macro", "recall_weighted", "recall_micro"),
    "jaccard": ("jaccard_macro", "jaccard_weighted", "jaccard_micro"),
    "roc_auc": ("roc_auc_ovr", "roc_auc_ovr_weighted", "roc_auc_ovo", "roc_auc_ovo_weighted"),
}
# Averaged over the labels of each row: multilabel targets only, and every model here
# predicts one class per row, so they never score. Each with the averages that do.
MULTILABEL_ONLY = {
    f"{name}_samples": (f"{name}_macro", f"{name}_weighted", f"{name}_micro")
    for name in ("f1", "precision", "recall", "jaccard")
}
# On a binary target these score the class labelled 1 as the positive one (scikit-learn's
# pos_label=1), so 1 must be a class; the Brier scores want the classes 0/1 or -1/1.
POSITIVE_CLASS = frozenset({*BINARY_ONLY, "average_precision"} - {"roc_auc"})
BRIER = frozenset({"neg_brier_score", "d2_brier_score"})


def task_problem(task: str, metric: str) -> str | None:
    """Why `metric` cannot score any `task` target here, or None."""
    if metric in MULTILABEL_ONLY:
        return (
            f"metric {metric!r} averages over the labels of each row, which needs a multilabel "
            f"target, and models here predict one class per row: use "
            f"{', '.join(MULTILABEL_ONLY[metric])}"
        )
    if metric not in METRICS[task]:
        other = "regression" if task == "classification" else "classification"
        hint = f" (it is a {other} scorer)" if metric in METRICS[other] else ""
        return (
            f"metric {metric!r} is not a scikit-learn scorer for {task}{hint}: use one of "
            f"{', '.join(sorted(METRICS[task] - MULTILABEL_ONLY.keys()))}"
        )
    return None


def depends_on_classes(metric: str) -> bool:
    """Whether `metric` can refuse a classification target for its classes."""
    return metric in BINARY_ONLY or metric in POSITIVE_CLASS or metric in BRIER


def classes_problem(metric: str, classes: Collection, target: str = "the target") -> str | None:
    """Why `metric` cannot score a target with these distinct `classes`, or None."""
    count = len(classes)
    if count > 2 and metric in BINARY_ONLY:
        return (
            f"metric {metric!r} needs a binary target but {target} has {count} classes: "
            f"use {', '.join(BINARY_ONLY[metric])} (or another multiclass scorer, such as "
            "balanced_accuracy or neg_log_loss)"
        )
    if count != 2:
        return None
    shown = ", ".join(sorted(map(repr, classes)))
    if metric in BRIER and not (set(classes) <= {0, 1} or set(classes) <= {-1, 1}):
        return (
            f"metric {metric!r} scores the class 1 against 0 (or -1) but {target} has the "
            f"classes {shown}: relabel them 0/1, or use neg_log_loss or balanced_accuracy"
        )
    if metric in POSITIVE_CLASS and 1 not in set(classes):
        instead = f"{metric}_macro" if metric in BINARY_ONLY else "roc_auc"
        return (
            f"metric {metric!r} scores the class 1 as the positive one but {target} has the "
            f"classes {shown}: relabel the positive class 1, or use {instead}"
        )
    return None
