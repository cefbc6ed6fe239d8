"""Column roles and the data schema: inferred from the data, overridable in config.

Bookkeeping columns added by ingest (`id`, `batch`) are never features; the
target, the event-time column and `data.drop` are not either. The rest is
numeric when its dtype is numeric (booleans excepted) and categorical otherwise,
except a text column whose values are mostly numbers: it is refused (numbers_in_text),
because reading it either way silently would be a guess, and the wrong guess costs
accuracy without a word. Listing it in data.numeric or data.categorical decides.
Likewise ingest refuses a text column whose values are mostly dates, or numbers written
with commas, or all different (an id: misread_text): as a category every day, amount or
id is a value of its own, unseen in any later row. Naming it in data.time (the event
time), data.id_column, data.drop or data.categorical decides; numbers are written again
without commas.
Dtypes are asked with pandas' type predicates, not `dtype == object`, because
pandas 3 gives strings a dtype of their own.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..core.errors import DataError
from ..core.params import DataParams, Task

if TYPE_CHECKING:  # pandera costs 0.3-0.8 s to import: loaded where a schema is checked
    import pandera.pandas as pa

log = logging.getLogger(__name__)

ID = "id"
BATCH = "batch"
BOOKKEEPING = (ID, BATCH)
# The batch of rows that annotate labelled from a model's prediction; never test rows.
PSEUDO_LABELLED = "pseudo-labelled"
# The header of reports/label_issues.csv: annotate writes it, with no rows for regression,
# without loading the judge (quality/label_quality.py) and scikit-learn with it.
ISSUE_COLUMNS = ["id", "label", "suggested_label", "confidence", "label_probability"]


@dataclass(frozen=True)
class Roles:
    target: str
    numeric: list[str]
    categorical: list[str]
    time: str | None
    groups: list[str]

    @property
    def features(self) -> list[str]:
        return self.numeric + self.categorical

    def to_dict(self) -> dict:
        return asdict(self)


def present(df: pd.DataFrame, columns: list[str], what: str, where: str = "the data") -> list[str]:
    """Configured columns that exist; the missing ones are skipped with a warning."""
    missing = [c for c in columns if c not in df.columns]
    if missing:
        log.warning("skipping %s not in %s: %s", what, where, ", ".join(missing))
    return [c for c in columns if c in df.columns]


def non_features(columns: Iterable[str], roles: Roles, id_column: str | None) -> list[str]:
    """The data's columns that are no feature, in the data's order: the target, the event
    time, data.drop, any other column the roles leave out, and data.id_column (which
    ingest turned into `id`). A row sent to the served model may carry them, as the data
    does: the server ignores them (features.json records them as `non_features`)."""
    features = set(roles.features)
    found = [c for c in columns if c not in features and c not in BOOKKEEPING]
    if id_column and id_column not in found:
        found.insert(0, id_column)
    return found


def require_target(df: pd.DataFrame, target: str) -> None:
    if target not in df.columns:
        available = ", ".join(c for c in df.columns if c not in BOOKKEEPING)
        raise DataError(
            f"target column {target!r} is not in the data (columns: {available}): "
            "set data.target to one of them"
        )


def _check_target(df: pd.DataFrame, target: str, task: Task) -> None:
    """The target is in the data, and numbers for regression."""
    require_target(df, target)
    if task == "regression" and not pd.api.types.is_numeric_dtype(df[target]):
        raise DataError(
            f"target {target!r} has dtype {df[target].dtype}, but regression needs "
            "numbers: pick a numeric target or bake a classification project"
        )


def _reserved(data: DataParams, time: str | None) -> set:
    """The columns that are no feature: bookkeeping, target, id, time, data.drop."""
    reserved = {*BOOKKEEPING, data.target, *(data.drop or [])}
    if data.id_column:
        reserved.add(data.id_column)
    if time:
        reserved.add(time)
    return reserved


def _require_listed_columns(df: pd.DataFrame, data: DataParams) -> None:
    for listed in (data.numeric or [], data.categorical or []):
        unknown = [c for c in listed if c not in df.columns]
        if unknown:
            raise DataError(
                f"data.numeric/data.categorical name columns not in the data: {', '.join(unknown)}"
            )


def _numeric_columns(df: pd.DataFrame, candidates: list, data: DataParams) -> list:
    """data.numeric, or else the candidates with a numeric (not boolean) dtype that
    data.categorical does not list."""
    if data.numeric is not None:
        return list(data.numeric)
    return [
        c
        for c in candidates
        if c not in (data.categorical or [])
        and pd.api.types.is_numeric_dtype(df[c])
        and not pd.api.types.is_bool_dtype(df[c])
    ]


def infer_roles(
    df: pd.DataFrame,
    data: DataParams,
    task: Task,
    check_text: Callable[[pd.Series], None] | None = None,
) -> Roles:
    """The roles from df's dtypes and the config; each text column that is no listed
    feature goes through `check_text` (numbers_in_text: a whole-column check, which the
    dask engine, inferring from an empty frame, runs over the parts instead)."""
    check_text = check_text or numbers_in_text
    _check_target(df, data.target, task)
    time = data.time if data.time in df.columns else None
    if data.time and time is None:
        log.warning("skipping time column not in the data: %s", data.time)
    _require_listed_columns(df, data)
    candidates = [c for c in df.columns if c not in _reserved(data, time)]
    numeric = _numeric_columns(df, candidates, data)
    for column in candidates:
        if column not in numeric and column not in (data.categorical or []):
            check_text(df[column])
    if data.categorical is not None:
        categorical = list(data.categorical)
    else:
        categorical = [
            c
            for c in candidates
            if c not in numeric and not pd.api.types.is_datetime64_any_dtype(df[c])
        ]
    bad = [c for c in numeric if not pd.api.types.is_numeric_dtype(df[c])]
    if bad:
        raise DataError(
            f"columns set as numeric hold non-numbers: {', '.join(bad)}: "
            "fix the values or list them in data.categorical"
        )
    if not numeric and not categorical:
        raise DataError("no feature columns left after removing target, id, time and data.drop")
    return Roles(
        target=data.target,
        numeric=numeric,
        categorical=categorical,
        time=time,
        groups=present(df, list(data.groups), "group columns"),
    )


def numbers_in_text(column: pd.Series) -> None:
    """Refuse a text column whose values are mostly, but not all, numbers: a numeric
    column with a few markers for missing ("n/a?", "-") in it, most likely."""
    if is_text(column):
        refuse_numbers_in_text(column.name, [text_tally(column)])


def is_text(column: pd.Series) -> bool:
    return not (
        pd.api.types.is_numeric_dtype(column) or pd.api.types.is_datetime64_any_dtype(column)
    )


def text_tally(column: pd.Series) -> tuple[int, int, pd.Series]:
    """(values that are numbers, values, the 3 most frequent text values with their counts)
    of a column or of one part of it: tallies of the parts add up to the column's."""
    # Distinct values, weighted by their counts: linear in rows, one parse per value.
    counts = column.value_counts(dropna=True)
    is_number = pd.to_numeric(counts.index.astype(str), errors="coerce").notna()
    return int(counts[is_number].sum()), int(counts.sum()), counts[~is_number].head(3)


def refuse_numbers_in_text(name: str, tallies: list[tuple[int, int, pd.Series]]) -> None:
    numbers, total = sum(t[0] for t in tallies), sum(t[1] for t in tallies)
    if total > numbers > total / 2:
        text = pd.concat([t[2] for t in tallies]).groupby(level=0, sort=False).sum()
        examples = text.sort_values(ascending=False, kind="stable").index[:3]
        raise DataError(
            f"column {name!r} looks numeric but {total - numbers} of {total} values are "
            f"text (e.g. {', '.join(repr(v) for v in examples)}): list those values in "
            "data.missing_values if they mean missing, or the column in data.numeric to read "
            "any text as missing, or in data.categorical to keep it as text"
        )


# Text that reads as a date or a timestamp: ISO 8601 (2023-03-04, 2023-03-04T12:00:00Z),
# year/month/day with slashes, or day/month/year (month/day/year) with / or dots.
DATE_TEXT = re.compile(
    r"\d{4}-\d{1,2}-\d{1,2}([T ]\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?"
    r"|\d{4}/\d{1,2}/\d{1,2}|\d{1,2}[/.]\d{1,2}[/.](\d{2}|\d{4})"
)
# A number written with commas, as spreadsheets export them: thousands separators
# (6,123.45) or a decimal comma (12,5). Read as text, each value would be a category.
COMMA_NUMBER = re.compile(r"[-+]?\d{1,3}(,\d{3})+(\.\d+)?|[-+]?\d+,\d+")
# What a text column may really hold, with the fix, in the order they are tried.
MISREAD = (
    (
        "dates",
        DATE_TEXT,
        "name it in data.time (the event time) or data.drop (or data.categorical to keep it "
        "as text)",
    ),
    (
        "numbers written with commas",
        COMMA_NUMBER,
        "write them with a '.' decimal point and no thousands separator (e.g. 6123.45), or "
        "list it in data.categorical to keep it as text",
    ),
)
# A text column with a different value in each of its first ID_SAMPLE or more values
# identifies rows: as a category every value is seen once, and every new row is unseen.
IDS = "a different value in every row"
ID_SAMPLE = 50
ID_FIX = (
    "name it in data.id_column (it identifies rows) or data.drop (or data.categorical to keep "
    "it as a feature)"
)
# misread_text reads at most this many non-null values of a column per batch, the first
# ones among its first 10x as many rows: its cost is bounded whatever the batch's size.
SAMPLE = 1000


def misread_text(frame: pd.DataFrame, data: DataParams) -> list[tuple[str, str, int, int, str]]:
    """(column, what it holds, matches, values read, first match) per text column of a
    batch that the config gives no role and whose first SAMPLE non-null values are mostly
    one of MISREAD's kinds (dates, numbers with commas), or all different (IDS)."""
    decided = {data.target, data.time, data.id_column, *data.drop, *(data.categorical or [])}
    found = []
    for column in frame.columns:
        if column in decided or not is_text(frame[column]):
            continue
        values = frame[column].iloc[: 10 * SAMPLE].dropna().head(SAMPLE).astype(str)
        for kind, pattern, _ in MISREAD:
            hits = values.str.fullmatch(pattern).to_numpy(dtype=bool)
            if hits.sum() > len(values) / 2:
                found.append((column, kind, int(hits.sum()), len(values), values[hits].iloc[0]))
                break
        else:
            if len(values) >= ID_SAMPLE and values.is_unique:
                found.append((column, IDS, len(values), len(values), values.iloc[0]))
    return found


def refuse_misread_text(found: list[tuple[str, str, int, int, str]], batch: str) -> None:
    """Refuse the first column misread_text found in `batch`."""
    if found:
        column, kind, hits, total, first = found[0]
        fix = next((fix for name, _, fix in MISREAD if name == kind), ID_FIX)
        raise DataError(
            f"column {column!r} holds {kind} ({hits} of the first {total} values of batch "
            f"{batch!r}, e.g. {first!r}), which would be read as categories: {fix}"
        )


# A header that is one column whose name holds one of these: the file is separated by it.
SEPARATORS = {";": "semicolon", "\t": "tab", "|": "pipe"}


def refuse_other_separator(columns: list, batch: str) -> None:
    """Refuse a batch read as one column because its values are separated by something
    other than commas (a European spreadsheet's `;`): every later check would be about a
    column that does not exist."""
    if len(columns) != 1:
        return
    name = str(columns[0])
    for mark, word in SEPARATORS.items():
        if mark in name:
            raise DataError(
                f"batch {batch!r} reads as one column named {name[:60]!r}: its values are "
                f"separated by {word}s ({mark!r}), not commas: save it as comma-separated "
                "CSV (or as Parquet)"
            )


def require_rows_per_class(target: pd.Series, folds: int, setting: str) -> None:
    """Refuse a class with fewer rows than `folds` stratified folds need (one per fold):
    scikit-learn would only warn, and score folds that never saw the class."""
    require_class_counts(target.value_counts(), target.name, folds, setting)


def require_class_counts(counts: pd.Series, target: str, folds: int, setting: str) -> None:
    """require_rows_per_class on the target's value counts (most rows first); classes
    that differ only in case or spaces are refused first."""
    refuse_look_alike_classes(counts, target)
    small = counts[counts < folds]
    if small.empty:
        return
    name, rows = small.index[0], int(small.iloc[0])
    lower = f", set {setting} to {rows} or less" if rows >= 2 else ""
    others = f" ({len(small) - 1} other class(es) too)" if len(small) > 1 else ""
    raise DataError(
        f"class {name!r} of {target!r} has {rows} row(s), fewer than {setting}={folds} "
        f"needs{others}: collect more rows of it{lower}, or leave it out by listing it "
        f"under clean.exclude.{target}"
    )


def snapshot_schema(check_unique: bool = True) -> pa.DataFrameSchema:
    """What ingest guarantees: a unique, non-null string id and a batch name per row.

    check_unique=False leaves out the uniqueness check, for a caller that has made sure of
    it already: it hashes every id again (3 s for 1e7 rows).
    """
    import pandera.pandas as pa

    return pa.DataFrameSchema(
        {
            ID: pa.Column(str, nullable=False, unique=check_unique),
            BATCH: pa.Column(str, nullable=False),
        },
        strict=False,
    )


def model_input_schema(roles: Roles) -> pa.DataFrameSchema:
    """What preprocess hands to the model stages: a labelled row with numeric features."""
    import pandera.pandas as pa

    # Numbers are checked, not converted: model_frame picks their width, and a float64
    # copy of float32 columns here would double the table (issue 21).
    numbers = pa.Check(_numbers, error="holds values that are not numbers")
    columns = {roles.target: pa.Column(nullable=False)}
    columns.update({c: pa.Column(nullable=True, checks=numbers) for c in roles.numeric})
    columns.update({c: pa.Column(nullable=True) for c in roles.categorical})
    return pa.DataFrameSchema(columns, strict=False)


def _numbers(column: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column)


def validate(
    df: pd.DataFrame, schema: pa.DataFrameSchema, what: str, inplace: bool = False
) -> pd.DataFrame:
    """df checked against schema; inplace=True spares pandera's copy of the whole table
    (and lets a coercing schema change df), for callers that own df."""
    import pandera.pandas as pa

    try:
        return schema.validate(df, lazy=False, inplace=inplace)
    except pa.errors.SchemaError as exc:
        first = str(exc).splitlines()[0]
        raise DataError(f"{what} failed its schema check: {first}") from None


def model_frame(df: pd.DataFrame, roles: Roles) -> pd.DataFrame:
    """The feature columns typed as the model expects: floats (as_floats), and text with
    NaN for missing, one Python string per distinct value (shared_text).

    Training, evaluation and serving all pass rows through here, so a category
    written as 1 in one file and "1" in another is the same category.
    """
    missing = [c for c in roles.features if c not in df.columns]
    if missing:
        raise DataError(f"rows lack feature column(s) {', '.join(missing)}")
    out = pd.DataFrame(index=df.index)
    for column in roles.numeric:
        out[column] = as_floats(df[column])
    for column in roles.categorical:
        out[column] = shared_text(category_text(df[column]))
    return out


def shared_text(text: pd.Series) -> pd.Series:
    """`text` as an object column whose equal values are one Python string. scikit-learn
    reads text as objects: a string column gives each cell its own (about 60 bytes: 1.7 GB
    for 18 columns of 800,000 rows), this one 8 bytes a cell, a pointer to the shared one."""
    codes, values = pd.factorize(text)
    # A missing value's code is -1: the last entry, NaN (all of an all-missing column).
    shared = np.append(np.asarray(values, dtype=object), np.nan).take(codes)
    return pd.Series(shared, index=text.index, dtype=object, name=text.name)


def as_floats(column: pd.Series, errors: str = "raise") -> pd.Series:
    """Numbers as floats: float32 stays float32, the rest becomes float64. A float32 column
    widened would take twice its memory and gain no digits (a forest fits float32 anyway);
    a column already float is returned as it is, not copied."""
    if column.dtype in (np.float32, np.float64):
        return column  # pd.to_numeric would copy it
    return pd.to_numeric(column, errors=errors).astype("float64")


def category_label(value: object) -> str:
    """One category (or class) as text: a whole float is its integer, so 1, 1.0 and "1" are
    the same category, and the YAML key 1 names the label 1.0. category_text is this rule
    for a column."""
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    return str(value)


def category_text(column: pd.Series) -> pd.Series:
    """Categories as text (category_label), missing kept missing."""
    if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
        # Whole numbers (the usual numeric category) vectorised, the rest value by value.
        values = column.astype("float64")
        text = pd.Series(np.nan, index=column.index, dtype=object)
        small = (values % 1 == 0) & (values.abs() < 2**53)
        text[small] = values[small].astype("int64").astype(str)
        rest = values.notna() & ~small
        text[rest] = [category_label(v) for v in values[rest]]
        return text.astype(str)
    return column.astype(str)


def target_array(column: pd.Series) -> np.ndarray:
    """The target as a numpy array, text as fixed-width unicode: every classifier fit and
    metric finds the classes with np.unique, which sorts these ~10x faster than Python
    strings (seconds per call at a million rows)."""
    if pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column):
        return column.to_numpy()
    return column.to_numpy(dtype=str)


def roles_from_dict(raw: dict) -> Roles:
    return Roles(**raw)


def base_ids(ids: pd.Series) -> pd.Series:
    """The original row of each (possibly augmented) row: augmentation appends -augN."""
    return ids.astype(str).str.replace(r"-aug\d+$", "", regex=True)


def refuse_look_alike_classes(counts: pd.Series, target: str) -> None:
    """Refuse classes that differ only in case or surrounding spaces ('Yes', 'yes ',
    'yes'): a typing habit, not a class of its own, which the model would learn as one
    and every per-class metric would split."""
    if not len(counts) or not is_text(counts.index.to_series()):
        return
    keys = counts.index.to_series().astype(str).str.strip().str.casefold()
    repeated = keys[keys.duplicated(keep=False)]
    if repeated.empty:
        return
    first = repeated.iloc[0]
    names = list(repeated[repeated == first].index)
    rows = int(counts[names].sum())
    others = repeated.nunique() - 1
    more = f" ({others} other group(s) too)" if others else ""
    raise DataError(
        f"target {target!r} has classes that differ only in case or spaces: "
        f"{', '.join(repr(n) for n in names)} ({rows} rows){more}: write each class one way "
        f"in the data, or leave a spelling out by listing it under clean.exclude.{target}"
    )
