"""A batch file's columns, checked before its rows are read, and the kind of values each
column holds, which every batch must agree on.

pandas renames a repeated header name (`mass`, `mass.1`) and names a blank one
`Unnamed: 0`, so a feature would quietly carry another column's values; a nested Parquet
column (list, struct, map) has no one value per cell. So the names come from the file
itself (a CSV's first record, a Parquet schema) and are refused, by name, when one is
blank, repeated, equal to another but for case and spaces, or nested. ingest (both
engines) and add-batch run the same checks: a batch that add-batch accepts is one that
ingest reads.
"""

from __future__ import annotations

import bz2
import csv
import gzip
import io as text_io
import lzma
import zipfile
from collections.abc import Iterable
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ..core.errors import DataError, first_line
from . import batches, schema

# Openers of a CSV's text by its compression: the codecs pandas reads with the standard
# library alone.
_OPENERS = {".csv.gz": gzip.open, ".csv.bz2": bz2.open, ".csv.xz": lzma.open}
_BROKEN = (OSError, EOFError, lzma.LZMAError, zipfile.BadZipFile, csv.Error, pa.ArrowInvalid)


def unreadable(path: Path, exc: BaseException) -> str:
    """The line for a file its reader rejects (cut short, not the format its name says)."""
    return (
        f"cannot read {path}: {first_line(exc)}: write the file again, or `dvc pull` it if "
        "DVC tracks it"
    )


def not_utf8(path: Path, exc: UnicodeDecodeError) -> str:
    return (
        f"{path} is not UTF-8 text (byte {exc.object[exc.start]:#04x} near byte {exc.start}): "
        f"save it as UTF-8, e.g. `iconv -f latin1 -t utf-8 {path.name} > fixed.csv`"
    )


def _zip_text(path: Path) -> text_io.TextIOBase:
    """The one member of a .csv.zip, as text (pandas reads a zip of exactly one file)."""
    archive = zipfile.ZipFile(path)
    members = archive.namelist()
    if len(members) != 1:
        archive.close()
        raise DataError(
            f"{path} holds {len(members)} files ({', '.join(members[:3])}): a .csv.zip batch "
            "holds one CSV; zip each batch on its own"
        )
    return text_io.TextIOWrapper(archive.open(members[0]), encoding="utf-8-sig", newline="")


def _open_csv(path: Path, suffix: str) -> text_io.TextIOBase:
    if suffix == ".csv.zip":
        return _zip_text(path)
    opener = _OPENERS.get(suffix, open)
    return opener(path, "rt", encoding="utf-8-sig", newline="")


def csv_names(path: Path, suffix: str) -> list[str] | None:
    """A CSV's first record as written (blank lines before it skipped, as pandas does);
    None when the file holds no line at all."""
    with _open_csv(path, suffix) as text:
        return next((row for row in csv.reader(text) if row), None)


def parquet_schema(path: Path) -> pa.Schema:
    return pq.read_schema(path)


def parquet_names(found: pa.Schema) -> list[str]:
    """The schema's column names but pandas' unnamed index (`__index_level_0__`)."""
    return [name for name in found.names if not name.startswith("__index_level_")]


def names(path: Path) -> list[str]:
    """The column names `path` writes, checked (check_names, refuse_nested), without reading
    its rows; a file without even a header is refused by name."""
    suffix = batches.suffix_of(path)
    try:
        if suffix == ".parquet":
            found = parquet_schema(path)
            refuse_nested(path, found)
            columns = parquet_names(found)
        else:
            columns = csv_names(path, suffix)
    except UnicodeDecodeError as exc:
        raise DataError(not_utf8(path, exc)) from None
    except _BROKEN as exc:
        raise DataError(unreadable(path, exc)) from None
    if not columns:
        raise DataError(
            f"{path} is empty (no header, no rows): export it again, or move it out of the folder"
        )
    check_names(path, columns)
    return columns


def normal(name: str) -> str:
    """A name as a reader compares it: case and surrounding spaces do not count."""
    return str(name).strip().casefold()


def check_names(path: Path, columns: list[str]) -> None:
    """Refuse a blank name, a repeated one, and two that differ only in case or spaces."""
    blank = [number for number, name in enumerate(columns, 1) if not str(name).strip()]
    if blank:
        raise DataError(
            f"{path}: column {blank[0]} of the header has no name: name it, or drop the column "
            "(a saved row index? write the file without it, e.g. index=False)"
        )
    repeated = sorted({name for name in columns if columns.count(name) > 1})
    if repeated:
        raise DataError(
            f"{path} repeats column name(s) {', '.join(map(repr, repeated))} in its header: "
            "give every column a name of its own"
        )
    first: dict[str, str] = {}
    for name in columns:
        if normal(name) in first:
            raise DataError(
                f"{path} has columns {first[normal(name)]!r} and {name!r}, which differ only in "
                "case or spaces: rename or drop one of them"
            )
        first[normal(name)] = name


def refuse_nested(path: Path, found: pa.Schema) -> None:
    """Refuse list, struct, map and union columns, from the schema alone."""
    nested = [field for field in found if pa.types.is_nested(field.type)]
    if nested:
        shown = ", ".join(f"{field.name!r} ({field.type})" for field in nested[:3])
        raise DataError(
            f"{path} has nested column(s) {shown}: a batch holds one value per cell; flatten "
            "them into columns of their own (e.g. pandas.json_normalize), or drop them"
        )


def reserved(columns: Iterable[str], id_column: str | None) -> list[str]:
    """Columns named as ingest's own (`id`, `batch`), case and spaces aside; data.id_column
    may be one (ingest turns it into `id`)."""
    own = {normal(name) for name in schema.BOOKKEEPING}
    return [c for c in columns if normal(c) in own and c != id_column]


def near_misses(have: Iterable[str], want: Iterable[str]) -> list[tuple[str, str]]:
    """(name here, name there) of columns whose names differ only in case or spaces."""
    theirs = {normal(name): name for name in want}
    return [(n, theirs[normal(n)]) for n in have if normal(n) in theirs and theirs[normal(n)] != n]


def kind(column: pd.Series) -> str:
    """What a column holds, in the words of a refusal: number, true/false, date-time or text."""
    if pd.api.types.is_bool_dtype(column):
        return "true/false"
    if pd.api.types.is_numeric_dtype(column):
        return "number"
    if pd.api.types.is_datetime64_any_dtype(column):
        return "date-time"
    return "text"


def kinds(frame: pd.DataFrame) -> dict[str, str]:
    """Each column's kind; a column with no value in this batch has none (it fits any)."""
    return {c: kind(frame[c]) for c in frame.columns if frame[c].first_valid_index() is not None}


def agree(batch: str, found: dict[str, str], seen: dict[str, tuple[str, str]]) -> None:
    """Refuse a column whose kind in `batch` differs from an earlier batch's; `seen` (column
    -> (kind, first batch with it)) learns this batch's columns."""
    for column, what in found.items():
        known, where = seen.setdefault(column, (what, batch))
        if known != what:
            raise DataError(
                f"column {column!r} holds {what} in batch {batch!r} but {known} in batch "
                f"{where!r}: make it one type in every batch (a stray word in a number column "
                "makes it text), or convert it in one of them"
            )
