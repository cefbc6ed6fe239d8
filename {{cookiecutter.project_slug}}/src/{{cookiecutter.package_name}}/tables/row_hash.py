"""One 64-bit hash per row, a column at a time: ingest's row ids and clean's duplicate check.

pandas' deterministic hashes (SipHash with a fixed key for text, a fixed bit mixer for
numbers), over a form of each value that does not depend on the dtype a reader inferred.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def _hash_text(values: np.ndarray) -> np.ndarray:
    return pd.util.hash_array(np.asarray(values, dtype=object), categorize=False)


# Missing values hash as the empty text whatever the column's dtype: a CSV cannot tell an
# empty string from a missing value, and an empty column may be read as floats, text or
# nulls, so the same row keeps its id whichever file and reader it came through.
_MISSING = _hash_text(np.array([""]))[0]


def value_hashes(column: pd.Series) -> np.ndarray:
    """One uint64 per value, of a form that does not depend on the dtype a reader inferred.

    Numbers (not booleans) hash as float64, so 3 and 3.0 agree; date-times as their UTC
    instant to the microsecond (a naive time is read as UTC, as for data.time); booleans
    and everything else as text, each distinct value hashed once.
    """
    if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
        # + 0.0 turns -0.0 into 0.0: equal numbers, equal hashes.
        values = column.to_numpy(dtype="float64", na_value=np.nan) + 0.0
        hashed, missing = pd.util.hash_array(values), np.isnan(values)
    elif pd.api.types.is_datetime64_any_dtype(column):
        if column.dt.tz is not None:
            column = column.dt.tz_convert(None)  # to UTC, then naive
        # Microseconds: any unit converts without overflow (nanoseconds end in 2262).
        values = column.dt.as_unit("us").to_numpy()
        hashed, missing = pd.util.hash_array(values.view("int64")), np.isnat(values)
    else:
        codes, uniques = pd.factorize(column)
        text = pd.Series(uniques, dtype=object).astype("string").to_numpy(dtype=object)
        hashed = _hash_text(text).take(codes) if len(text) else np.zeros(len(codes), np.uint64)
        missing = codes < 0
    hashed[missing] = _MISSING
    return hashed


def row_hashes(df: pd.DataFrame) -> np.ndarray:
    """One uint64 per row from its columns' names and values; column order does not matter."""
    hashes = np.zeros(len(df), dtype=np.uint64)
    for name in sorted(df.columns):
        hashes ^= value_hashes(df[name]) ^ _hash_text(np.array([str(name)]))[0]
        # Mixed after every column, so that each value stays tied to its column's name.
        hashes = pd.util.hash_array(hashes)
    return hashes


_BUCKET_BITS = 4


def repeated(hashes: np.ndarray) -> np.ndarray:
    """True where a hash occurs more than once (`duplicated(keep=False)`).

    A bucket of hashes at a time (by their top bits), so the hash table pandas builds
    holds a sixteenth of the rows: 1e8 hashes take 0.8 GB, the table would take 2.8 GB
    more at once (measured: 28 bytes a row whole, 1.4 bucketed, and twice as fast).
    """
    hashes = np.asarray(hashes, dtype=np.uint64)
    found = np.zeros(len(hashes), dtype=bool)
    bucket = (hashes >> np.uint64(64 - _BUCKET_BITS)).astype(np.uint8)
    for number in range(1 << _BUCKET_BITS):
        rows = np.flatnonzero(bucket == number)
        found[rows] = pd.Series(hashes[rows]).duplicated(keep=False).to_numpy()
    return found
