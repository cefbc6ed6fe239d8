"""Annotate: apply versioned label corrections (data/annotations/relabel.csv) by row id."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from .. import io, paths, schema
from ..errors import DataError
from ..params import Task, load

log = logging.getLogger(__name__)

RELABEL_COLUMNS = ("id", "label")


def read_corrections(path: Path) -> pd.DataFrame:
    if not path.exists():
        raise DataError(f"{path} not found: create it with the header `id,label,note`")
    corrections = pd.read_csv(path, dtype="string", keep_default_na=False)
    missing = [c for c in RELABEL_COLUMNS if c not in corrections.columns]
    if missing:
        raise DataError(
            f"{path} lacks column(s) {', '.join(missing)}: the header is `id,label,note`"
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
    repeated = corrections["id"][corrections["id"].duplicated()].unique().tolist()
    if repeated:
        raise DataError(f"relabel file names ids more than once: {', '.join(repeated[:5])}")
    unknown_ids = sorted(set(corrections["id"]) - set(df[schema.ID]))
    if unknown_ids:
        raise DataError(
            f"relabel file names ids not in the cleaned data: {', '.join(unknown_ids[:5])}"
            " (see data/interim/cleaned.parquet for valid ids)"
        )
    labels = _as_target_type(corrections["label"], df[target], task)
    if task == "classification":
        known = set(df[target].dropna().unique().tolist())
        unknown_labels = sorted({str(v) for v in labels if v not in known})
        if unknown_labels:
            raise DataError(
                f"relabel file uses labels not in {target!r}: {', '.join(unknown_labels)} "
                f"(known: {', '.join(sorted(map(str, known)))})"
            )
    out = df.copy()
    new = pd.Series(labels.to_numpy(), index=corrections["id"].to_numpy())
    rows = out[schema.ID].isin(new.index)
    before = out.loc[rows, target]
    after = out.loc[rows, schema.ID].map(new).astype(out[target].dtype)
    out.loc[rows, target] = after
    changed = int((before.astype("string") != after.astype("string")).sum())
    return out, {"corrections": len(corrections), "labels_changed": changed}


def main() -> None:
    params = load()
    df = io.read_parquet(paths.CLEANED)
    corrections = read_corrections(Path(params.annotate.relabel_file))
    out, report = annotate(df, corrections, params.data.target, params.task)
    io.write_parquet(paths.ANNOTATED, out)
    io.write_json(paths.ANNOTATE_REPORT, report)
    log.info(
        "applied %d corrections, %d labels changed", report["corrections"], report["labels_changed"]
    )
