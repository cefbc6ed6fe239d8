"""Ingest: read every batch file under data.source into one snapshot with a stable row id,
the batch it came from, and its event time parsed when data.time names a column.

A text column that the config gives no role and whose values are mostly dates, or numbers
written with commas, is refused (schema.misread_text, on the first values of each batch);
so is a batch read as one column because a `;`, tab or `|` separates its values.
Batches are read, checked, hashed and time-parsed one at a time, and only the prepared
batch is kept until they are stacked: a folder of batches peaks at about two copies of
the snapshot (the prepared batches, then their concatenation), whatever the batch count.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ..core import io, paths, progress
from ..core.errors import DataError
from ..core.params import DataParams, load
from ..tables import batches, headers, row_hash, schema

log = logging.getLogger(__name__)


def read_batch(path: Path, missing_values: list[str]) -> pd.DataFrame:
    """One batch file as a table, `missing_values` (data.missing_values) read as missing
    (batches.READERS); a file that is empty, cut short, not UTF-8, without rows or with a
    header that headers.names refuses is refused naming the file, before any row is hashed
    or written."""
    if path.stat().st_size == 0:
        raise DataError(f"{path} is empty (0 bytes): export it again, or move it out of the folder")
    headers.names(path)
    try:
        frame = batches.reader(path)(path, missing_values=missing_values)
    except UnicodeDecodeError as exc:
        raise DataError(headers.not_utf8(path, exc)) from None
    except Exception as exc:  # the reader's own message says what is wrong with the file
        raise DataError(headers.unreadable(path, exc)) from None
    if frame.empty:
        raise DataError(
            f"{path} has a header but no rows: export its rows again, or move it out of the folder"
        )
    if any(level is not None for level in frame.index.names):
        frame = frame.reset_index()  # a Parquet file's named index is a column of the data
    frame.attrs = {}  # a snapshot's content hash describes that file, not the ingested data
    return frame


# The four hex digits of every 16-bit number, as four ASCII bytes in one uint32: a hash is
# four lookups, not sixteen.
_HEX = np.frombuffer(b"".join(f"{n:04x}".encode() for n in range(1 << 16)), dtype=np.uint32)
# Lookups a chunk at a time: numpy copies a whole index array to 64-bit integers first.
_CHUNK = 1 << 20


def hex_text(hashes: np.ndarray) -> pa.Array:
    """Each hash as 16 lowercase hex digits, looked up from its big-endian 16-bit words."""
    words = hashes.astype(">u8").view(">u2")
    digits = np.empty(len(words), dtype=np.uint32)
    for start in range(0, len(words), _CHUNK):
        digits[start : start + _CHUNK] = _HEX[words[start : start + _CHUNK]]
    offsets = np.arange(0, 16 * len(hashes) + 1, 16, dtype=np.int64)
    return pa.LargeStringArray.from_buffers(
        len(hashes), pa.py_buffer(offsets), pa.py_buffer(digits)
    )


def occurrence(hashes: np.ndarray) -> np.ndarray:
    """1 for the first row with its hash, 2 for the second, ...; only repeats are grouped."""
    nth = np.ones(len(hashes), dtype=np.int64)
    repeated = np.flatnonzero(row_hash.repeated(hashes))
    if len(repeated):
        keys = hashes[repeated]
        nth[repeated] = pd.Series(keys).groupby(keys, sort=False).cumcount().to_numpy() + 1
    return nth


def ids_from_hashes(hashes: np.ndarray, index: pd.Index | None = None) -> pd.Series:
    """Hex ids of row hashes; repeated rows get -2, -3, ... in order of appearance."""
    return numbered_ids(hashes, occurrence(hashes), index)


def numbered_ids(hashes: np.ndarray, nth: np.ndarray, index: pd.Index | None = None) -> pd.Series:
    """Hex ids of row hashes, `-nth` appended where nth > 1: the dask engine numbers the
    repeats over the whole table, then each worker writes its batch's ids."""
    text = hex_text(hashes)
    later = nth > 1
    if later.any():
        suffix = pa.array(nth[later]).cast(pa.large_string())
        dash = pa.scalar("-", pa.large_string())
        numbered = pc.binary_join_element_wise(text.filter(pa.array(later)), suffix, dash)
        text = pc.replace_with_mask(text, pa.array(later), numbered)
    return pd.Series(pd.array(text, dtype="string"), index=index)


def content_ids(df: pd.DataFrame) -> pd.Series:
    """A hash of each row's values; repeated rows get -2, -3, ... in order of appearance."""
    return ids_from_hashes(row_hash.row_hashes(df), df.index)


def january_first(years: pd.Series) -> pd.Series:
    """Whole years as January 1st of that year, UTC; missing stays missing."""
    values = years.to_numpy(dtype="float64", na_value=np.nan)
    missing = np.isnan(values)
    since_1970 = np.where(missing, 1970, values).astype(np.int64) - 1970
    stamps = since_1970.astype("datetime64[Y]").astype("datetime64[us]")
    stamps[missing] = np.datetime64("NaT")
    return pd.Series(stamps, index=years.index, name=years.name).dt.tz_localize("UTC")


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
        return january_first(column)
    text = column.astype("string")
    parsed = pd.to_datetime(text, format="ISO8601", utc=True, errors="coerce")
    bad = text.notna() & parsed.isna()
    if bad.any():
        raise DataError(
            f"time column {name!r} has {int(bad.sum())} value(s) that are not dates or times "
            f"(e.g. {text[bad].iloc[0]!r}): use ISO 8601 text (2024-05-31 or 2024-05-31T12:00:00Z) "
            "or years, or set data.time to null"
        )
    return parsed


def check_batch(
    name: str, frame: pd.DataFrame, first: str, columns: list, *, data: DataParams
) -> None:
    """A batch has the first batch's columns, in any order, and none of ingest's own."""
    if set(frame.columns) != set(columns):
        near = headers.near_misses(frame.columns, columns)
        alike = {n for pair in near for n in pair}
        diff = [str(c) for c in sorted(set(frame.columns) ^ set(columns)) if c not in alike]
        diff += [f"{here!r} here, {there!r} there" for here, there in near]
        raise DataError(
            f"batch {name!r} has different columns from {first!r} ({', '.join(diff)}): "
            "every batch needs the same columns, named alike"
        )
    clash = headers.reserved(frame.columns, data.id_column)
    if clash:
        raise DataError(
            f"batch {name!r} has reserved column(s) {', '.join(clash)}: rename them, "
            "or set data.id_column to your id column"
        )
    if data.id_column and data.id_column not in frame.columns:
        raise DataError(
            f"data.id_column {data.id_column!r} is not in the data: set it to a column or null"
        )


def given_ids(ids: pd.Series, column: str) -> pd.Series:
    """data.id_column's values as text, refused when one is empty or repeated."""
    if ids.isna().any():
        raise DataError(
            f"id column {column!r} has {int(ids.isna().sum())} empty value(s): give every row "
            "an id, or set data.id_column to null to identify rows by their content"
        )
    ids = ids.astype("string")
    repeated = ids[ids.duplicated()].unique().tolist()
    if repeated:
        raise DataError(
            f"id column {column!r} repeats {len(repeated)} id(s) (e.g. "
            f"{', '.join(map(str, repeated[:5]))}): make ids unique across batches, or set "
            "data.id_column to null to identify rows by their content"
        )
    return ids


def batch_names(names: list[str], sizes: list[int]) -> pd.api.extensions.ExtensionArray:
    """Each row's batch name, repeated by Arrow's take rather than one Python str per row."""
    return pd.array(names, dtype="string").take(np.repeat(np.arange(len(names)), sizes))


def prepare(
    batches: Iterable[tuple[str, pd.DataFrame]], *, data: DataParams
) -> tuple[list[pd.DataFrame], list[str], list[np.ndarray]]:
    """(batches in the first one's column order, their names, their row hashes).

    Each batch is checked, hashed and time-parsed as `batches` yields it, so a generator
    that reads files lets every raw batch go before the next one is read.
    """
    prepared: list[pd.DataFrame] = []
    names: list[str] = []
    hashes: list[np.ndarray] = []
    columns: list = []
    kinds: dict[str, tuple[str, str]] = {}
    for name, frame in batches:
        if not prepared:
            columns = list(frame.columns)
            if data.time and data.time not in columns:
                # Skipped, loudly, as schema.infer_roles does.
                log.warning("skipping time column not in the data: %s", data.time)
        schema.refuse_other_separator(list(frame.columns), name)
        check_batch(name, frame, names[0] if names else name, columns, data=data)
        schema.refuse_misread_text(schema.misread_text(frame, data), name)
        frame = frame[columns]
        if not data.id_column:
            # Before parsing times: ids hash the values as the file holds them.
            hashes.append(row_hash.row_hashes(frame))
        if data.time in columns:
            frame[data.time] = event_time(frame[data.time])
        headers.agree(name, headers.kinds(frame), kinds)
        prepared.append(frame)
        names.append(name)
    if not prepared:
        raise DataError("no batches to ingest")
    return prepared, names, hashes


def check_id_column(data: DataParams) -> None:
    if data.id_column == schema.BATCH:
        raise DataError(
            f"data.id_column cannot be {schema.BATCH!r}: ingest writes each row's batch file "
            "name there; rename your column"
        )


def snapshot(batches: Iterable[tuple[str, pd.DataFrame]], *, data: DataParams) -> pd.DataFrame:
    """Stack batches, then add `id` and `batch` as the first columns."""
    check_id_column(data)
    prepared, names, hashes = prepare(batches, data=data)
    sizes = [len(frame) for frame in prepared]
    df = pd.concat(prepared, ignore_index=True)
    prepared.clear()  # the rows now live in df only
    # pyarrow's allocator keeps the batches' freed pages for reuse; numpy, which holds the
    # ids and df, cannot use them: give them back (1 GB less at the peak for 1e7 rows).
    pa.default_memory_pool().release_unused()
    if data.id_column:
        ids = given_ids(df.pop(data.id_column), data.id_column)
    else:
        ids = ids_from_hashes(np.concatenate(hashes))
    df.insert(0, schema.ID, ids.array)
    df.insert(1, schema.BATCH, batch_names(names, sizes))
    # Ids are unique already: given ones were checked, content ids are a hash and its
    # occurrence number. In place: df is ours, and pandera would copy the whole table.
    checks = schema.snapshot_schema(check_unique=False)
    return schema.validate(df, checks, "the ingested snapshot", inplace=True)


def main() -> None:
    params = load()
    files = batches.files(Path(params.data.source))
    # A generator: each file is read when snapshot is ready for it, not all up front.
    df = snapshot(read_batches(files, params.data.missing_values), data=params.data)
    io.write_parquet(paths.INGESTED, df)
    progress.note(files=len(files), rows_out=len(df))


def read_batches(
    files: list[Path], missing_values: list[str]
) -> Iterator[tuple[str, pd.DataFrame]]:
    """(name, rows) of each batch file, read in turn; a progress line for each file of a
    short list, else for every progress.every(len(files))-th one and the last."""
    step = progress.every(len(files))
    for number, path in enumerate(files, 1):
        started = time.perf_counter()
        rows = read_batch(path, missing_values)
        if number % step == 0 or number == len(files):
            progress.report(
                f"batch {number}/{len(files)} {path}",
                rows=len(rows),
                seconds=round(time.perf_counter() - started, 2),
            )
        yield batches.name(path), rows
