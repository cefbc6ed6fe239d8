"""Refuse answers that would bake a broken project, before anything is written.

Runs with the Python that runs cookiecutter; standard library only. Each check
gives one line that names the answer and how to fix it. The same checks run
earlier, while cookiecutter reads the answers (local_extensions.py imports this
file): there a refusal is one line, whereas a failing hook makes cookiecutter
log a traceback. Here they still catch answers that skip that step (a replay file).
"""

import json
import keyword
import re
import sys
from pathlib import PurePosixPath

SLUG = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
PACKAGE = re.compile(r"^[a-z][a-z0-9_]*$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# Names the baked package would shadow: the standard library and what it imports.
TAKEN = set(sys.stdlib_module_names) | {
    "dvc", "dvclive", "hydra", "omegaconf", "numpy", "pandas", "pandera", "pyarrow",
    "pydantic", "yaml", "sklearn", "skops", "pytest", "ruff", "tests", "src",
    "sqlalchemy", "fsspec", "gto",
}  # fmt: skip
CHOICES = {
    "python_version": ("3.11", "3.12", "3.13"),
    "task": ("classification", "regression"),
    "license": ("MIT", "Apache-2.0", "BSD-3-Clause", "Proprietary"),
    "ci": ("github", "gitlab", "none"),
    "use_pre_commit": ("yes", "no"),
    "serving": ("yes", "no"),
    "onnx": ("yes", "no"),
    "remote_sources": ("yes", "no"),
    "notebooks": ("yes", "no"),
}
# scikit-learn scorer names per task (sklearn.metrics.get_scorer_names(), clustering
# scorers left out), plus the project's own business_value scorer (both tasks);
# tests/test_hooks.py checks this list against scikit-learn.
METRICS = {
    "classification": (
        "business_value", "accuracy", "balanced_accuracy", "average_precision", "d2_brier_score",
        "d2_log_loss_score", "f1", "f1_macro", "f1_micro", "f1_samples", "f1_weighted",
        "jaccard", "jaccard_macro", "jaccard_micro", "jaccard_samples", "jaccard_weighted",
        "matthews_corrcoef", "neg_brier_score", "neg_log_loss", "precision",
        "precision_macro", "precision_micro", "precision_samples", "precision_weighted",
        "recall", "recall_macro", "recall_micro", "recall_samples", "recall_weighted",
        "roc_auc", "roc_auc_ovo", "roc_auc_ovo_weighted", "roc_auc_ovr",
        "roc_auc_ovr_weighted", "top_k_accuracy",
    ),
    "regression": (
        "business_value", "d2_absolute_error_score", "explained_variance", "neg_max_error",
        "neg_mean_absolute_error", "neg_mean_absolute_percentage_error",
        "neg_mean_gamma_deviance", "neg_mean_poisson_deviance", "neg_mean_squared_error",
        "neg_mean_squared_log_error", "neg_median_absolute_error",
        "neg_root_mean_squared_error", "neg_root_mean_squared_log_error", "r2",
    ),
}  # fmt: skip
# Scorers the built-in penguins (species: 3 classes) cannot take, each with those it can; the
# bake's scorers.py holds the same (tests/test_hooks.py checks).
BINARY_ONLY = {
    "f1": ("f1_macro", "f1_weighted", "f1_micro"),
    "precision": ("precision_macro", "precision_weighted", "precision_micro"),
    "recall": ("recall_macro", "recall_weighted", "recall_micro"),
    "jaccard": ("jaccard_macro", "jaccard_weighted", "jaccard_micro"),
    "roc_auc": ("roc_auc_ovr", "roc_auc_ovr_weighted", "roc_auc_ovo", "roc_auc_ovo_weighted"),
}
MULTILABEL_ONLY = {
    f"{name}_samples": (f"{name}_macro", f"{name}_weighted", f"{name}_micro")
    for name in ("f1", "precision", "recall", "jaccard")
}
REMOTE_SCHEMES = ("s3", "gs", "azure", "ssh", "http", "https", "webdav", "webdavs", "hdfs", "oss")


def problems(answers: dict) -> list[str]:
    found = []
    if not answers["project_name"].strip():
        found.append("project_name is empty: give the project a name")
    slug = answers["project_slug"]
    if not SLUG.match(slug):
        found.append(
            f"project_slug {slug!r} is not a valid slug: use lowercase letters, digits and "
            "single dashes, starting with a letter (e.g. churn-model)"
        )
    # The package name derives from the slug by default: a bad slug's line is enough.
    elif problem := package_problem(answers["package_name"]):
        found.append(problem)
    for key, allowed in CHOICES.items():
        if answers[key] not in allowed:
            found.append(f"{key} {answers[key]!r} is not one of: {', '.join(allowed)}")
    if not EMAIL.match(answers["author_email"]):
        found.append(f"author_email {answers['author_email']!r} is not an email address")
    if not answers["author_name"].strip():
        found.append("author_name is empty: it is used as the git identity and in the license")
    found.extend(metric_problems(answers["metric"], answers["task"]))
    found.extend(remote_problems(answers["dvc_remote_url"]))
    return found


def package_problem(package: str) -> str | None:
    if not PACKAGE.match(package) or not package.isidentifier():
        return (
            f"package_name {package!r} is not an importable name: use lowercase letters, "
            "digits and underscores, starting with a letter (e.g. churn_model)"
        )
    if keyword.iskeyword(package) or keyword.issoftkeyword(package):
        return f"package_name {package!r} is a Python keyword: pick another name"
    if package in TAKEN:
        return f"package_name {package!r} would shadow the module of the same name: pick another"
    return None


def metric_problems(metric: str, task: str) -> list[str]:
    """A metric of the other task, or one the built-in data's target cannot take."""
    if metric == "default" or task not in METRICS:
        return []
    if metric not in METRICS[task]:
        other = "regression" if task == "classification" else "classification"
        hint = f" (it is a {other} metric)" if metric in METRICS[other] else ""
        valid = [m for m in METRICS[task] if m not in MULTILABEL_ONLY]
        return [
            f"metric {metric!r} is not a {task} scorer{hint}: use 'default' or one of "
            f"{', '.join(valid)}"
        ]
    if metric in BINARY_ONLY:
        return [
            f"metric {metric!r} needs a binary target and the built-in penguins' species has 3 "
            f"classes: use 'default' or {', '.join(BINARY_ONLY[metric])} (with binary data of "
            "your own, set it in conf/config.yaml later)"
        ]
    if metric in MULTILABEL_ONLY:
        return [
            f"metric {metric!r} needs a multilabel target (several labels per row), which no "
            f"model here predicts: use 'default' or {', '.join(MULTILABEL_ONLY[metric])}"
        ]
    return []


def remote_problems(url: str) -> list[str]:
    if not url.strip():
        return ["dvc_remote_url is empty: give a folder outside the project or a cloud URL"]
    scheme = url.split("://", 1)[0] if "://" in url else None
    if scheme is not None:
        if scheme not in REMOTE_SCHEMES:
            return [f"dvc_remote_url scheme {scheme!r} is unknown: use {', '.join(REMOTE_SCHEMES)}"]
        return []
    path = PurePosixPath(url)
    if not path.is_absolute() and (not path.parts or path.parts[0] != ".."):
        return [
            f"dvc_remote_url {url!r} is inside the project: DVC storage must live outside it "
            "(e.g. ../storage or an absolute path)"
        ]
    return []


def main() -> int:
    # Rendered by cookiecutter: valid Python before and after (JSON inside a raw string);
    # read here, not at import, so local_extensions.py can import the checks unrendered.
    answers = json.loads(r"""{{ cookiecutter | tojson }}""")
    found = problems(answers)
    for message in found:
        print(f"ERROR: {message}", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
