"""Clean: drop repeated rows, noise and rows unrelated to the goal; keep unlabelled rows aside.

Every dropped row is counted under the reason it was dropped for, in order:
duplicate, too_many_missing, out_of_range, excluded. Rows that pass but have no
target are not dropped: they go to data/interim/unlabelled.parquet (counted as
`unlabelled`), where annotate can label them (relabel file or pseudo-labelling).

Columns that data.numeric declares numeric are read as numbers first: a value that is
not one ("n/a?", "-") becomes missing, and the report counts them per column under
`coerced_to_missing`. Data with nothing to learn from is refused here, the first stage
that knows the target: no labelled row left, or one target value in every labelled row.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from .. import io, paths, progress, row_hash, schema
from ..errors import DataError
from ..params import CleanParams, load

log = logging.getLogger(__name__)


def duplicated(df: pd.DataFrame, columns: list[str]) -> pd.Series:
    """`df.duplicated(subset=columns, keep="first")`, in time linear in the rows.

    pandas numbers each column's values, then combines the numbers column by column and
    renumbers them whenever their product overflows 64 bits: on many high-cardinality
    columns that is a dozen hash tables of every row (77 s for 17 columns of 1e7 rows).
    One 64-bit hash per row (ingest's row_hash; equal rows hash alike) instead finds the
    rows that can be repeats, and pandas decides on those rows alone, so a rare hash
    collision, or values that hash alike without being equal (1 and "1"), cannot mark a
    row as a duplicate.
    """
    hashes = row_hash.row_hashes(df[columns])
    candidates = np.flatnonzero(pd.Series(hashes).duplicated(keep=False).to_numpy())
    repeated = np.zeros(len(df), dtype=bool)
    if len(candidates):
        subset = df.iloc[candidates]
        repeated[candidates] = subset.duplicated(subset=columns, keep="first").to_numpy()
    return pd.Series(repeated, index=df.index)


def missing_share(df: pd.DataFrame, columns: list[str]) -> pd.Series:
    """The share of `columns` each row misses, a column at a time: no copy of the columns
    and no row-by-column boolean frame."""
    if not columns:
        return pd.Series(0.0, index=df.index)
    missing = np.zeros(len(df), dtype=np.int64)
    for column in columns:
        missing += df[column].isna().to_numpy()
    return pd.Series(missing / len(columns), index=df.index)


def as_numbers(df: pd.DataFrame, numeric: list[str]) -> dict[str, int]:
    """Declared numeric columns as float64, in place; {column: values made missing}."""
    coerced = {}
    for column in numeric:
        if column not in df.columns or pd.api.types.is_numeric_dtype(df[column]):
            continue
        values = pd.to_numeric(df[column], errors="coerce")
        bad = df[column].notna() & values.isna()
        if bad.any():
            examples = df.loc[bad, column].astype(str).unique()[:3].tolist()
            log.warning(
                "data.numeric column %s: %d value(s) that are not numbers read as missing "
                "(e.g. %s)",
                column,
                int(bad.sum()),
                ", ".join(map(repr, examples)),
            )
        coerced[column] = int(bad.sum())
        df[column] = values.astype("float64")
    return coerced


def require_something_to_learn(labelled: pd.Series, rows_in: int) -> None:
    """Refuse a target with no labelled row, or one value in every labelled row."""
    name = labelled.name
    if labelled.empty:
        raise DataError(
            f"target {name!r} is missing in every row that clean keeps ({rows_in} rows in): "
            "set data.target to the column you predict, or label rows in annotate.relabel_file"
        )
    values = labelled.unique()
    if len(values) == 1:
        raise DataError(
            f"target {name!r} has one value ({values[0]!r}) in all {len(labelled)} labelled "
            "rows, so there is nothing to learn: add rows with other values, or set data.target"
        )


def clean(
    df: pd.DataFrame, target: str, rules: CleanParams, numeric: list[str] | None = None
) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """(labelled rows, unlabelled rows, report); rows_in = rows_out + unlabelled + dropped."""
    schema.require_target(df, target)
    coerced = as_numbers(df, [c for c in numeric or [] if c != target])
    content = [c for c in df.columns if c not in schema.BOOKKEEPING]
    features = [c for c in content if c != target]
    masks: dict[str, pd.Series] = {}
    masks["duplicate"] = (
        duplicated(df, content) if rules.drop_duplicates else pd.Series(False, index=df.index)
    )
    masks["too_many_missing"] = missing_share(df, features) > rules.max_missing_fraction

    out_of_range = pd.Series(False, index=df.index)
    for column, (low, high) in rules.valid_ranges.items():
        if column not in df.columns:
            log.warning("clean.valid_ranges: skipping %s, not in the data", column)
            continue
        values = pd.to_numeric(df[column], errors="coerce")
        if low is not None:
            out_of_range |= values < low
        if high is not None:
            out_of_range |= values > high
    masks["out_of_range"] = out_of_range

    excluded = pd.Series(False, index=df.index)
    for column, values in rules.exclude.items():
        if column not in df.columns:
            log.warning("clean.exclude: skipping %s, not in the data", column)
            continue
        excluded |= df[column].isin(values)
    masks["excluded"] = excluded

    dropped: dict[str, int] = {}
    keep = pd.Series(True, index=df.index)
    for reason, mask in masks.items():
        hit = keep & mask.fillna(False).astype(bool)
        dropped[reason] = int(hit.sum())
        keep &= ~hit
    unlabelled = keep & df[target].isna()
    keep &= ~unlabelled
    require_something_to_learn(df.loc[keep, target], len(df))
    report = {
        "rows_in": len(df),
        "rows_out": int(keep.sum()),
        "unlabelled": int(unlabelled.sum()),
        "dropped": dropped,
        "coerced_to_missing": coerced,
    }
    return df[keep].reset_index(drop=True), df[unlabelled].reset_index(drop=True), report


def main() -> None:
    params = load()
    df, unlabelled, report = clean(
        io.read_parquet(paths.INGESTED), params.data.target, params.clean, params.data.numeric
    )
    io.write_parquet(paths.CLEANED, df)
    io.write_parquet(paths.UNLABELLED, unlabelled)
    io.write_json(paths.CLEAN_REPORT, report)
    log.info("%d unlabelled rows set aside; dropped %s", report["unlabelled"], report["dropped"])
    progress.note(rows_in=report["rows_in"], rows_out=report["rows_out"])
