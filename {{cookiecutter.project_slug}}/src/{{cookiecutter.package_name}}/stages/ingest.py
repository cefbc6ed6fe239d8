"""Ingest: read every batch file under data.source into one snapshot with a stable row id,
the batch it came from, and its event time parsed when data.time names a column."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import pandas as pd

from .. import io, paths, schema
from ..errors import DataError
from ..params import DataParams, load

log = logging.getLogger(__name__)

READERS = {".csv": pd.read_csv, ".parquet": pd.read_parquet}


def batch_files(source: Path) -> list[Path]:
    """The batch files of a source: the file itself, or a folder's files sorted by name."""
    if "://" in str(source):
        raise DataError(
            f"data.source {str(source)!r} is a URL; ingest reads local files and folders: "
            "list the URL under data.fetch and set data.source to data/fetched (README: Data "
            "sources)"
        )
    if source.is_file():
        files = [source]
    elif source.is_dir():
        files = sorted(p for p in source.iterdir() if p.suffix.lower() in READERS)
    else:
        raise DataError(f"data.source {str(source)!r} does not exist: point it at a file or folder")
    if not files:
        raise DataError(
            f"data.source {str(source)!r} holds no .csv or .parquet file: add one batch per file"
        )
    unknown = [p.name for p in files if p.suffix.lower() not in READERS]
    if unknown:
        raise DataError(f"cannot read {', '.join(unknown)}: use .csv or .parquet")
    return files


def read_batch(path: Path) -> pd.DataFrame:
    try:
        frame = READERS[path.suffix.lower()](path)
    except Exception as exc:  # the reader's own message says what is wrong with the file
        raise DataError(f"cannot read {path}: {exc}") from None
    frame.attrs = {}  # a snapshot's content hash describes that file, not the ingested data
    return frame


def _canonical(column: pd.Series) -> pd.Series:
    """Text form of a column that does not depend on the dtype a reader inferred."""
    if pd.api.types.is_bool_dtype(column):
        return column.astype("string").fillna("")
    if pd.api.types.is_numeric_dtype(column):
        return column.astype("float64").map(lambda v: "" if pd.isna(v) else repr(float(v)))
    return column.astype("string").fillna("")


def content_ids(df: pd.DataFrame) -> pd.Series:
    """A hash of each row's values; repeated rows get -2, -3, ... in order of appearance."""
    text = pd.Series("", index=df.index, dtype="string")
    for name in sorted(df.columns):
        text = text + name + "=" + _canonical(df[name]) + "\x1f"
    digests = text.map(lambda row: hashlib.sha256(row.encode("utf-8")).hexdigest()[:16])
    occurrence = digests.groupby(digests).cumcount()
    suffix = occurrence.map(lambda n: "" if n == 0 else f"-{n + 1}")
    return (digests + suffix).astype("string")


def event_time(column: pd.Series) -> pd.Series:
    """Years (integers) or timestamps as UTC datetimes; an unparseable value is an error.

    A year becomes January 1st of that year. Text without a time zone is read as UTC.
    """
    name = column.name
    if pd.api.types.is_datetime64_any_dtype(column):
        parsed = column if column.dt.tz is not None else column.dt.tz_localize("UTC")
        return parsed.dt.tz_convert("UTC")
    if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
        values = column.dropna()
        years = values.between(1000, 9999) & (values % 1 == 0)
        if not years.all():
            raise DataError(
                f"time column {name!r} holds numbers that are not years (e.g. "
                f"{values[~years].iloc[0]}): store dates as text such as 2024-05-31, "
                "or set data.time to null"
            )
        text = column.map(lambda v: None if pd.isna(v) else f"{int(v):04d}-01-01")
        return pd.to_datetime(text, format="%Y-%m-%d", utc=True)
    text = column.astype("string")
    parsed = pd.to_datetime(text, format="ISO8601", utc=True, errors="coerce")
    bad = text.notna() & parsed.isna()
    if bad.any():
        raise DataError(
            f"time column {name!r} has values that are not dates or times (e.g. "
            f"{text[bad].iloc[0]!r}): use ISO 8601 text (2024-05-31 or 2024-05-31T12:00:00Z) "
            "or years, or set data.time to null"
        )
    return parsed


def snapshot(batches: list[tuple[str, pd.DataFrame]], data: DataParams) -> pd.DataFrame:
    """Concatenate batches, then add `id` and `batch` as the first columns."""
    if not batches:
        raise DataError("no batches to ingest")
    first_name, first = batches[0]
    for name, frame in batches[1:]:
        if set(frame.columns) != set(first.columns):
            diff = sorted(set(frame.columns) ^ set(first.columns))
            raise DataError(
                f"batch {name!r} has different columns from {first_name!r} ({', '.join(diff)}): "
                "every batch needs the same columns"
            )
    if data.id_column == schema.BATCH:
        raise DataError(
            f"data.id_column cannot be {schema.BATCH!r}: ingest writes each row's batch file "
            "name there; rename your column"
        )
    for name, frame in batches:
        clash = [c for c in schema.BOOKKEEPING if c in frame.columns and c != data.id_column]
        if clash:
            raise DataError(
                f"batch {name!r} has reserved column(s) {', '.join(clash)}: rename them, "
                "or set data.id_column to your id column"
            )
    df = pd.concat(
        [frame[first.columns].assign(**{schema.BATCH: name}) for name, frame in batches],
        ignore_index=True,
    )
    df[schema.BATCH] = df[schema.BATCH].astype("string")
    if data.id_column:
        if data.id_column not in df.columns:
            raise DataError(
                f"data.id_column {data.id_column!r} is not in the data: set it to a column or null"
            )
        ids = df[data.id_column]
        if ids.isna().any():
            raise DataError(
                f"id column {data.id_column!r} has {int(ids.isna().sum())} empty values"
            )
        ids = ids.astype("string")
        repeated = ids[ids.duplicated()].unique().tolist()
        if repeated:
            raise DataError(
                f"id column {data.id_column!r} repeats ids ({', '.join(map(str, repeated[:5]))}): "
                "ids must be unique across batches"
            )
        if data.id_column != schema.ID:
            df = df.drop(columns=[data.id_column])
        df[schema.ID] = ids.to_numpy()
    else:
        df[schema.ID] = content_ids(df.drop(columns=[schema.BATCH]))
    # After the ids: they hash the values as the batch files hold them.
    # A missing time column is skipped, loudly, as schema.infer_roles does.
    if data.time and data.time in df.columns:
        df[data.time] = event_time(df[data.time])
    elif data.time:
        log.warning("skipping time column not in the data: %s", data.time)
    ordered = [schema.ID, schema.BATCH] + [c for c in df.columns if c not in schema.BOOKKEEPING]
    return schema.validate(df[ordered], schema.snapshot_schema(), "the ingested snapshot")


def main() -> None:
    params = load()
    files = batch_files(Path(params.data.source))
    batches = [(path.stem, read_batch(path)) for path in files]
    df = snapshot(batches, params.data)
    io.write_parquet(paths.INGESTED, df)
    log.info("ingested %d rows from %d batch file(s)", len(df), len(files))
