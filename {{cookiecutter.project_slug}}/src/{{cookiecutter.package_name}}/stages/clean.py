"""Clean: drop repeated rows, noise and rows unrelated to the goal; keep unlabelled rows aside.

Every dropped row is counted under the reason it was dropped for, in order:
duplicate, too_many_missing, out_of_range, excluded. Rows that pass but have no
target are not dropped: they go to data/interim/unlabelled.parquet (counted as
`unlabelled`), where annotate can label them (relabel file or pseudo-labelling).

Columns that data.numeric declares numeric are read as numbers first: a value that is
not one ("n/a?", "-") becomes missing, and the report counts them per column under
`coerced_to_missing`. An infinite number (inf, -inf) in a feature becomes missing too,
counted under `non_finite_to_missing`; in the target it is refused. Text that often marks
a missing value (NA, None, null, ...) but that data.missing_values does not list stays a
value: a warning names it, counted under `missing_markers_kept`. Every column's missing
values, whatever made them so, are counted under `missing_per_column`. Values of a text
feature that differ only in case or surrounding spaces ('PRO', 'pro ') stay separate
categories, as written: a warning names them, counted under `look_alike_values`. Data with
nothing
to learn from is refused here, the first stage that knows the target: no labelled row
left, or one target value in every labelled row; and so is a `metric` that the labelled
target's classes cannot take (a binary-only scorer such as roc_auc on three classes,
scorers.py), before any model is fitted.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from ..core import io, paths, progress, scorers
from ..core.errors import ConfigError, DataError
from ..core.params import CleanParams, load
from ..tables import row_hash, schema

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
    candidates = np.flatnonzero(row_hash.repeated(hashes))
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


def as_numbers(df: pd.DataFrame, numeric: list[str]) -> dict[str, tuple[int, list]]:
    """Declared numeric columns as float64, in place; per column converted, the count of
    values made missing and the first three distinct ones, for `warn_coerced`."""
    coerced = {}
    for column in numeric:
        if column not in df.columns or pd.api.types.is_numeric_dtype(df[column]):
            continue
        values = pd.to_numeric(df[column], errors="coerce")
        bad = df[column].notna() & values.isna()
        examples = df.loc[bad, column].astype(str).unique()[:3].tolist()
        coerced[column] = (int(bad.sum()), examples)
        df[column] = values.astype("float64")
    return coerced


def warn_coerced(coerced: dict[str, tuple[int, list]]) -> dict[str, int]:
    """A warning per column where values were not numbers; the report's counts."""
    for column, (count, examples) in coerced.items():
        if count:
            log.warning(
                "data.numeric column %s: %d value(s) that are not numbers read as missing "
                "(e.g. %s)",
                column,
                count,
                ", ".join(map(repr, examples)),
            )
    return {column: count for column, (count, _) in coerced.items()}


# Text that often marks a missing value (most of pandas' default NA strings). Only an empty
# cell and data.missing_values are missing (tables/batches.py), so these stay values, a
# class named NA included: clean says so, and the report counts them.
MISSING_MARKERS = ("NA", "N/A", "n/a", "NaN", "nan", "None", "null", "NULL", "<NA>", "#N/A")


def markers_kept(df: pd.DataFrame, columns: list[str]) -> dict[str, tuple[int, list]]:
    """Per text column holding MISSING_MARKERS, their count and first three distinct ones."""
    found = {}
    for column in columns:
        if not schema.is_text(df[column]):
            continue
        hit = df[column].isin(MISSING_MARKERS).to_numpy(dtype=bool)
        if hit.any():
            found[column] = (int(hit.sum()), df[column][hit].astype(str).unique()[:3].tolist())
    return found


def warn_markers(found: dict[str, tuple[int, list]]) -> dict[str, int]:
    """A warning per column holding values that often mean missing; the report's counts."""
    for column, (count, examples) in found.items():
        log.warning(
            "column %s: %d value(s) %s read as values, not as missing: list them in "
            "data.missing_values if they mean missing (docs/data-sources.md: Missing values)",
            column,
            count,
            ", ".join(map(repr, examples)),
        )
    return {column: count for column, (count, _) in found.items()}


def non_finite(df: pd.DataFrame, target: str) -> dict[str, int]:
    """Per float column, its inf and -inf values (CSV's inf, Infinity, 1e999; Parquet's
    infinities); in place, those of every column but the target become missing: no
    model or imputer takes them, and none could mean a measured value."""
    found = {}
    for column in df.columns:
        if not pd.api.types.is_float_dtype(df[column]):
            continue
        bad = np.isinf(df[column].to_numpy(dtype="float64", na_value=np.nan))
        if bad.any():
            found[column] = int(bad.sum())
            if column != target:
                df[column] = df[column].mask(bad)
    return found


def as_read(
    df: pd.DataFrame, numeric: list[str], target: str
) -> tuple[dict[str, tuple[int, list]], dict[str, int]]:
    """Every pass's view of the rows, in place: data.numeric's columns as numbers
    (as_numbers), then infinities made missing (non_finite); what each found."""
    return as_numbers(df, numeric), non_finite(df, target)


def warn_non_finite(found: dict[str, int], target: str) -> dict[str, int]:
    """Refuse infinities in the target; warn of those made missing; the report's counts."""
    if target in found:
        raise DataError(
            f"target {target!r} has {found[target]} infinite value(s) (inf or -inf): a target "
            "must be a finite number; fix those rows, or remove them from the data"
        )
    for column, count in found.items():
        log.warning("column %s: %d infinite value(s) (inf or -inf) read as missing", column, count)
    return found


# look_alikes reads the text columns with at most this many distinct values: categories.
# An id or free text has more, and its counts would cost memory a table's size.
MAX_CATEGORIES = 10_000


def text_counts(df: pd.DataFrame, columns: list[str]) -> dict[str, pd.Series | None]:
    """Per text column, its values' counts, or None past MAX_CATEGORIES: the input of
    look_alikes, which the parts of a table give as theirs (counts add up)."""
    counts = {c: df[c].value_counts() for c in columns if schema.is_text(df[c])}
    return {c: tally if len(tally) <= MAX_CATEGORIES else None for c, tally in counts.items()}


def look_alikes(counts: dict[str, pd.Series | None]) -> dict[str, tuple[int, list]]:
    """Per column holding values that differ only in case or surrounding spaces, the rows
    holding them and the spellings of the first such value (most rows first); columns
    past MAX_CATEGORIES are not categories and are left out."""
    found = {}
    for column, tally in counts.items():
        if tally is None or len(tally) > MAX_CATEGORIES:
            continue
        tally = tally.sort_index(kind="stable").sort_values(ascending=False, kind="stable")
        keys = tally.index.to_series().astype(str).str.strip().str.casefold()
        alike = keys.duplicated(keep=False).to_numpy()
        if alike.any():
            first = keys[alike].iloc[0]
            spellings = tally.index[(keys == first).to_numpy()].astype(str).tolist()
            found[column] = (int(tally[alike].sum()), spellings[:3])
    return found


def warn_look_alikes(found: dict[str, tuple[int, list]]) -> dict[str, int]:
    """A warning per column of look_alikes; the report's counts."""
    for column, (rows, spellings) in found.items():
        log.warning(
            "column %s: values that differ only in case or spaces (%s; %d rows in all) are "
            "separate categories: write each one way in the data if they are one",
            column,
            ", ".join(map(repr, spellings)),
            rows,
        )
    return {column: rows for column, (rows, _) in found.items()}


def missing_counts(df: pd.DataFrame, columns: list[str]) -> dict[str, int]:
    """Per column with any, its missing values as clean reads them: empty cells, nulls,
    data.missing_values, and what as_read made missing. The report's account of them."""
    counts = {column: int(df[column].isna().sum()) for column in columns}
    return {column: count for column, count in counts.items() if count}


def note_missing(counts: dict[str, int]) -> dict[str, int]:
    """One info line of missing_counts (the user's own rule, no warning); the counts."""
    if counts:
        log.info(
            "missing values per column (an empty cell, a null, a value data.missing_values "
            "lists, or one read as missing above): %s",
            ", ".join(f"{column} {count}" for column, count in counts.items()),
        )
    return counts


def warn_unknown_columns(columns: pd.Index, *, rules: CleanParams) -> None:
    for setting, named in (("valid_ranges", rules.valid_ranges), ("exclude", rules.exclude)):
        for column in named:
            if column not in columns:
                log.warning("clean.%s: skipping %s, not in the data", setting, column)


def require_something_to_learn(name: str, values: list, labelled: int, rows_in: int) -> None:
    """Refuse a target with no labelled row, or one value in every labelled row; `values`
    are the target's first two distinct labelled values (more are not needed)."""
    if not labelled:
        raise DataError(
            f"target {name!r} is missing in every row that clean keeps ({rows_in} rows in): "
            "set data.target to the column you predict, or label rows in annotate.relabel_file"
        )
    if len(values) == 1:
        raise DataError(
            f"target {name!r} has one value ({values[0]!r}) in all {labelled} labelled "
            "rows, so there is nothing to learn: add rows with other values, or set data.target"
        )


def row_masks(df: pd.DataFrame, features: list[str], *, rules: CleanParams) -> dict[str, pd.Series]:
    """The drop reasons decided by each row alone, in the order they are counted."""
    out_of_range = pd.Series(False, index=df.index)
    for column, (low, high) in rules.valid_ranges.items():
        if column in df.columns:
            values = pd.to_numeric(df[column], errors="coerce")
            if low is not None:
                out_of_range |= values < low
            if high is not None:
                out_of_range |= values > high
    excluded = pd.Series(False, index=df.index)
    for column, values in rules.exclude.items():
        if column in df.columns:
            excluded |= df[column].isin(values)
    return {
        "too_many_missing": missing_share(df, features) > rules.max_missing_fraction,
        "out_of_range": out_of_range,
        "excluded": excluded,
    }


def sort_rows(
    df: pd.DataFrame, target: str, masks: dict[str, pd.Series], classes: bool = False
) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """(kept rows, unlabelled rows, counts): each row is counted under the first reason
    that drops it; of the rest, those without a target are unlabelled. classes=True
    counts every distinct labelled target too (a classification metric's check)."""
    dropped: dict[str, int] = {}
    keep = pd.Series(True, index=df.index)
    for reason, mask in masks.items():
        hit = keep & mask.fillna(False).astype(bool)
        dropped[reason] = int(hit.sum())
        keep &= ~hit
    unlabelled = keep & df[target].isna()
    keep &= ~unlabelled
    distinct = df.loc[keep, target].drop_duplicates()
    counts = {
        "rows_in": len(df),
        "rows_out": int(keep.sum()),
        "unlabelled": int(unlabelled.sum()),
        "dropped": dropped,
        # The first two distinct labelled targets: enough to tell "nothing to learn".
        # As Python values: the message shows 3750.0, not np.float64(3750.0).
        "targets": python_values(distinct[:2]),
        "classes": python_values(distinct) if classes else None,
    }
    return df[keep].reset_index(drop=True), df[unlabelled].reset_index(drop=True), counts


def python_values(values: pd.Series) -> list:
    """As Python values: a message shows 3750.0, not np.float64(3750.0)."""
    return [getattr(v, "item", lambda v=v: v)() for v in values]


def content_columns(df: pd.DataFrame, target: str) -> tuple[list[str], list[str]]:
    """(every column but ingest's bookkeeping, those of them that are features)."""
    content = [c for c in df.columns if c not in schema.BOOKKEEPING]
    return content, [c for c in content if c != target]


def clean(
    df: pd.DataFrame,
    *,
    target: str,
    rules: CleanParams,
    numeric: list[str] | None = None,
    metric: str | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """(labelled rows, unlabelled rows, report); rows_in = rows_out + unlabelled + dropped.
    `metric` is refused when the labelled target's classes cannot take it."""
    schema.require_target(df, target)
    warn_unknown_columns(df.columns, rules=rules)
    coerced, infinite = as_read(df, [c for c in numeric or [] if c != target], target)
    findings = {
        "coerced_to_missing": warn_coerced(coerced),
        "non_finite_to_missing": warn_non_finite(infinite, target),
    }
    content, features = content_columns(df, target)
    findings["missing_markers_kept"] = warn_markers(markers_kept(df, content))
    findings["missing_per_column"] = note_missing(missing_counts(df, content))
    findings["look_alike_values"] = warn_look_alikes(look_alikes(text_counts(df, features)))
    duplicate = (
        duplicated(df, content) if rules.drop_duplicates else pd.Series(False, index=df.index)
    )
    masks = {"duplicate": duplicate, **row_masks(df, features, rules=rules)}
    kept, unlabelled, counts = sort_rows(df, target, masks, counts_classes(metric))
    return kept, unlabelled, report(counts, findings, target, metric)


def counts_classes(metric: str | None) -> bool:
    """Whether clean collects the target's classes: only a metric that depends on them
    needs them (a regression target may have as many values as rows)."""
    return metric is not None and scorers.depends_on_classes(metric)


def report(counts: dict, findings: dict[str, dict], target: str, metric: str | None = None) -> dict:
    """The stage's report from the row counts and the per-column counts of values read as
    missing or kept (`findings`); refuses data with nothing to learn, and a metric its
    classes cannot take."""
    require_something_to_learn(target, counts["targets"], counts["rows_out"], counts["rows_in"])
    if counts.get("classes") is not None:
        problem = scorers.classes_problem(metric, counts["classes"], f"target {target!r}")
        if problem:
            raise ConfigError(f"{problem}; set it with `dvc exp run -S metric=...`")
    return {
        "rows_in": counts["rows_in"],
        "rows_out": counts["rows_out"],
        "unlabelled": counts["unlabelled"],
        "dropped": counts["dropped"],
        **findings,
    }


def main() -> None:
    params = load()
    df, unlabelled, summary = clean(
        io.read_parquet(paths.INGESTED),
        target=params.data.target,
        rules=params.clean,
        numeric=params.data.numeric,
        metric=params.metric,
    )
    io.write_parquet(paths.CLEANED, df)
    io.write_parquet(paths.UNLABELLED, unlabelled)
    finish(summary)


def finish(summary: dict) -> None:
    """Either engine's last step: the report, once the tables are in place."""
    io.write_json(paths.CLEAN_REPORT, summary)
    log.info("%d unlabelled rows set aside; dropped %s", summary["unlabelled"], summary["dropped"])
    progress.note(rows_in=summary["rows_in"], rows_out=summary["rows_out"])
