"""Annotate: apply versioned label corrections (data/annotations/relabel.csv) by row id,
list the labels that look wrong (reports/label_issues.csv) and, if configured,
pseudo-label the unlabelled rows that clean set aside.

The corrections may also name unlabelled rows: labelling them by hand moves them in.
Issues are found after the corrections, so a fixed row leaves the list.
On the dask engine (compute.engine: dask) dask_engine/annotate.py does the same per
partition of clean's outputs, through the functions here and in label_quality.py.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ..core import io, paths, progress
from ..core.errors import ConfigError, DataError
from ..core.params import (
    AnnotateParams,
    ComputeParams,
    DataParams,
    PreprocessParams,
    StageSettings,
    Task,
    load,
)
from ..tables import schema

log = logging.getLogger(__name__)

RELABEL_COLUMNS = ("id", "label")


@dataclass(frozen=True)
class Settings(StageSettings):
    """What review() reads from the config: the judge's settings (label_quality), and
    data's column lists, whose columns it judges."""

    annotate: AnnotateParams
    data: DataParams
    preprocess: PreprocessParams
    task: Task
    seed: int
    compute: ComputeParams


def read_corrections(path: Path, missing_values: list[str]) -> pd.DataFrame:
    """The corrections as text, under the data's missing-value rule (tables/batches.py):
    an empty cell or one of `missing_values` is missing, so a label NA is the class NA
    unless data.missing_values lists NA. A correction without an id or a label is refused:
    it could only be a half-written line."""
    if not path.exists():
        raise DataError(f"{path} not found: create it with the header `id,label,note`")
    corrections = pd.read_csv(
        path, dtype="string", keep_default_na=False, na_values=["", *missing_values]
    )
    missing = [c for c in RELABEL_COLUMNS if c not in corrections.columns]
    if missing:
        raise DataError(
            f"{path} lacks column(s) {', '.join(missing)}: the header is `id,label,note`"
        )
    for column in RELABEL_COLUMNS:
        empty = corrections[column].isna()
        if empty.any():
            line = int(empty.to_numpy().argmax()) + 2  # the header is line 1
            article = "an" if column == "id" else "a"
            raise DataError(
                f"{path} has {int(empty.sum())} correction(s) without {article} {column} "
                f"(first on line {line}; empty, or in data.missing_values): write the "
                f"{column}, or delete the line"
            )
    return corrections


def _as_target_type(labels: pd.Series, target: pd.Series, task: Task) -> pd.Series:
    """Corrections are read as text; give them the target column's type."""
    if task == "regression" or pd.api.types.is_numeric_dtype(target):
        converted = pd.to_numeric(labels, errors="coerce")
        bad = labels[converted.isna()].tolist()
        if bad:
            raise DataError(f"relabel file: labels {bad[:5]} are not numbers like the target")
        return converted.astype(target.dtype) if task == "classification" else converted
    return labels.astype(target.dtype)


def annotate(
    df: pd.DataFrame, corrections: pd.DataFrame, target: str, task: Task
) -> tuple[pd.DataFrame, dict]:
    """Set the target of each corrected id; unknown ids or labels are errors, not skips."""
    known = set(df[target].dropna().unique().tolist()) if task == "classification" else None
    new = checked_corrections(corrections, set(df[schema.ID]), df[target].iloc[:0], known, task)
    out, changed = corrected(df, new, target)
    return out, {"corrections": len(corrections), "labels_changed": changed}


def checked_corrections(
    corrections: pd.DataFrame, found: set, target: pd.Series, known: set | None, task: Task
) -> pd.Series:
    """The new label of each corrected id (indexed by id), typed as `target` (only its
    dtype is read). `found`: the corrected ids the data holds; `known`: the target's
    distinct values (classification). Both engines check through here."""
    repeated = corrections["id"][corrections["id"].duplicated()].unique().tolist()
    if repeated:
        raise DataError(f"relabel file names ids more than once: {', '.join(repeated[:5])}")
    unknown_ids = sorted(set(corrections["id"]) - found)
    if unknown_ids:
        raise DataError(
            f"relabel file names ids not in the cleaned data: {', '.join(unknown_ids[:5])}"
            " (valid ids: data/interim/cleaned.parquet, unlabelled.parquet, "
            "reports/label_issues.csv)"
        )
    labels = _as_target_type(corrections["label"], target, task)
    if task == "classification":
        unknown_labels = sorted({str(v) for v in labels if v not in known})
        if unknown_labels:
            raise DataError(
                f"relabel file uses labels not in {target.name!r}: {', '.join(unknown_labels)} "
                f"(known: {', '.join(sorted(map(str, known)))})"
            )
    return pd.Series(labels.to_numpy(), index=corrections["id"].to_numpy())


def corrected(df: pd.DataFrame, new: pd.Series, target: str) -> tuple[pd.DataFrame, int]:
    """(df with the corrections `new` applied, labels changed): row by row, so any slice
    of the table can be corrected on its own."""
    rows = df[schema.ID].isin(new.index)
    if not rows.any():  # the usual case: no copy of the whole table to change nothing
        return df, 0
    out = df.copy()
    before = out.loc[rows, target]
    after = out.loc[rows, schema.ID].map(new).astype(out[target].dtype)
    out.loc[rows, target] = after
    # A label given to an unlabelled row is a change too (NaN never equals it).
    same = before.astype("string").eq(after.astype("string")).fillna(False).astype(bool)
    return out, int((~same).sum())


def split_labelled(df: pd.DataFrame, target: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(rows with a label, rows without), each in the order of `df`."""
    has_label = df[target].notna()
    if has_label.all():  # no masked copy of the whole table
        return df.reset_index(drop=True), df.iloc[:0].reset_index(drop=True)
    return df[has_label].reset_index(drop=True), df[~has_label].reset_index(drop=True)


def refuse_pseudo_labels(*, task: Task, rules: AnnotateParams) -> None:
    if task != "classification" and rules.pseudo_label.enabled:
        raise ConfigError(
            "annotate.pseudo_label needs class probabilities, so classification only: "
            "set annotate.pseudo_label.enabled=false"
        )


def judged_data(data: DataParams, columns: pd.Index) -> DataParams:
    """data.numeric/categorical may name derived features (modeling/derivation.py), which
    preprocess makes after this stage: the judge takes the ones in `columns` only."""
    return data.model_copy(
        update={
            kind: [c for c in listed if c in columns]
            for kind in ("numeric", "categorical")
            if (listed := getattr(data, kind)) is not None
        }
    )


NO_REVIEW = {"label_issues": 0, "pseudo_labelled": 0}


def unreviewed(
    labelled: pd.DataFrame, *, task: Task, rules: AnnotateParams
) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """review's answer for regression: no label issues (the judges need class
    probabilities), no pseudo-labels (refused when enabled)."""
    refuse_pseudo_labels(task=task, rules=rules)
    return pd.DataFrame(columns=schema.ISSUE_COLUMNS), labelled, dict(NO_REVIEW)


def review(
    labelled: pd.DataFrame, unlabelled: pd.DataFrame, *, settings: Settings
) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """(label issues, labelled rows plus any pseudo-labelled ones, report)."""
    # Here, not at the top: only the classification judge needs scikit-learn (1-2 s).
    from ..core import compute
    from ..quality import label_quality

    task, rules = settings.task, settings.annotate
    if task != "classification":
        return unreviewed(labelled, task=task, rules=rules)
    refuse_pseudo_labels(task=task, rules=rules)
    roles = schema.infer_roles(labelled, judged_data(settings.data, labelled.columns), task)
    schema.require_rows_per_class(labelled[roles.target], rules.cv_folds, "annotate.cv_folds")
    judge = label_quality.JudgeSettings.of(settings)
    issues = label_quality.find_issues(labelled, roles, settings=judge)
    report = {"label_issues": len(issues), "pseudo_labelled": 0}
    if rules.pseudo_label.enabled:
        with compute.cores(settings.compute.cores):
            pseudo = label_quality.pseudo_label(labelled, unlabelled, roles, settings=judge)
        report["pseudo_labelled"] = len(pseudo)
        labelled = pd.concat([labelled, pseudo], ignore_index=True)
    return issues, labelled, report


def finish(issues: pd.DataFrame, report: dict, rows_in: int, rows_out: int) -> None:
    """Both engines' last step, once the annotated table is written."""
    io.write_csv(paths.LABEL_ISSUES, issues)
    io.write_json(paths.ANNOTATE_REPORT, report)
    log.info(
        "applied %d corrections, %d labels changed; %d label issues in %s",
        report["corrections"],
        report["labels_changed"],
        report["label_issues"],
        paths.LABEL_ISSUES,
    )
    progress.note(rows_in=rows_in, rows_out=rows_out)


def main() -> None:
    params = load()
    target = params.data.target
    rows = pd.concat(
        [io.read_parquet(paths.CLEANED), io.read_parquet(paths.UNLABELLED)], ignore_index=True
    )
    corrections = read_corrections(Path(params.annotate.relabel_file), params.data.missing_values)
    out, report = annotate(rows, corrections, target, params.task)
    labelled, unlabelled = split_labelled(out, target)
    if params.task == "classification":  # only the judges read seed and compute
        issues, labelled, found = review(labelled, unlabelled, settings=Settings.of(params))
    else:
        issues, labelled, found = unreviewed(labelled, task=params.task, rules=params.annotate)
    report.update(found, unlabelled=len(unlabelled))
    io.write_parquet(paths.ANNOTATED, labelled)
    finish(issues, report, len(rows), len(labelled))
