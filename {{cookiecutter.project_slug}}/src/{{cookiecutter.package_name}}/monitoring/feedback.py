"""`feedback FILE`: labels that arrive later, from a CSV or Parquet file of `id,label`
(each id one of a POST /predict answer's `ids`), stored for the logged rows they name
(serve.feedback_log, read through labels.py), all of them or none.

Checked before anything is written, each refusal one line naming the fix: the file's
kind, its two columns, rows, ids and labels (numbers for a regression; class names, text
or whole numbers, for a classification, compared as schema.category_label compares
them), and every id against the prediction log and its backups. A row without a label
is skipped and counted: a labelling tool's export holds the rows nobody labelled yet.
A repeated id takes its last label, as the store does.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd

from ..core.errors import DataError
from ..core.params import Params, ServeParams
from ..serving import prediction_log
from ..tables import batches, schema
from . import labels

COLUMNS = ("id", "label")


def read(file: Path, missing_values: list[str]) -> pd.DataFrame:
    """FILE's id and label columns, a cell missing as in the data (empty, or one of
    data.missing_values). Other columns are ignored, not refused: a labelling tool's
    export carries its own (who labelled, when), and reading only these two keeps the
    cost to what is used."""
    kind = batches.SUFFIXES.get(batches.suffix_of(file) or "")
    if kind is None or not file.is_file():
        what = "does not exist" if not file.exists() else "is no .csv or .parquet file"
        raise DataError(f"{file} {what}: give a CSV or Parquet file of id,label")
    try:
        if kind == ".csv":
            frame = pd.read_csv(
                file,
                usecols=lambda c: c in COLUMNS,
                dtype={"id": str},
                keep_default_na=False,
                na_values=["", *missing_values],
            )
        else:
            wanted = [c for c in COLUMNS if c in _parquet_names(file)]
            frame = batches.as_missing(pd.read_parquet(file, columns=wanted), missing_values)
    except pd.errors.EmptyDataError:
        raise DataError(f"{file} is empty: give it a header id,label and a row per label") from None
    except (ValueError, OSError, UnicodeDecodeError) as exc:
        problem = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"{file} cannot be read ({problem}): give a CSV or Parquet file") from None
    absent = [c for c in COLUMNS if c not in frame.columns]
    if absent:
        raise DataError(
            f"{file} has no {' and no '.join(absent)} column: give it the columns id,label "
            "(id: a POST /predict answer's `ids`; label: the truth for that row)"
        )
    if frame.empty:
        raise DataError(f"{file} has no rows: nothing to store")
    return frame


def _parquet_names(file: Path) -> list[str]:
    import pyarrow.parquet as pq

    return pq.read_schema(file).names


def pairs(frame: pd.DataFrame, task: str, file: Path) -> tuple[list[tuple[str, object]], int]:
    """(id, label) per row that has a label, the label as the store keeps it (a class as
    its text, a number as a float), and how many rows had none."""
    blank = (frame["id"].isna() | (frame["id"].astype(str).str.strip() == "")).to_numpy()
    if blank.any():
        row = int(np.flatnonzero(blank)[0]) + 1
        raise DataError(f"{file} row {row} has no id: every label needs its row's id")
    labelled = frame[frame["label"].notna()]
    if labelled.empty:
        raise DataError(f"{file}: no row has a label ({len(frame)} rows): nothing to store")
    values = _regression(labelled["label"], file) if task == "regression" else None
    if values is None:
        values = _classes(labelled["label"], file)
    return list(zip(labelled["id"].astype(str), values, strict=True)), len(frame) - len(labelled)


def _regression(column: pd.Series, file: Path) -> list[float]:
    """A regression's labels as floats; refused naming the first that is no finite number."""
    numbers = pd.to_numeric(column, errors="coerce")
    if pd.api.types.is_bool_dtype(column):
        numbers = pd.Series(np.nan, index=column.index)
    bad = ~np.isfinite(numbers.astype("float64").to_numpy())
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"{file} row {column.index[row] + 1}: label {_shown(column.iloc[row])} is no finite "
            "number: a regression's labels are numbers"
        )
    return numbers.astype("float64").tolist()


def _classes(column: pd.Series, file: Path) -> list[str]:
    """A classification's labels as class names (text; 1, 1.0 and "1" name one class);
    refused naming the first number that is no whole one."""
    if pd.api.types.is_float_dtype(column):
        bad = (column % 1 != 0).to_numpy()
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            value = _shown(column.iloc[row])
            raise DataError(
                f"{file} row {column.index[row] + 1}: label {value} is no class: a "
                "classification's labels are class names (text or whole numbers)"
            )
    return schema.category_text(column).tolist()


def store(
    found: list[tuple[str, object]], log_path: Path, feedback_path: Path, *, skip_unknown: bool
) -> dict:
    """Append the labels of logged rows to feedback_path; refused, nothing written, when
    an id is in no prediction log (unless skip_unknown). What was done, with the log's
    labelled coverage: the rows that carried a label or have one stored."""
    if not prediction_log.log_files(log_path):
        raise DataError(
            f"no prediction log at {log_path}: `serve` writes it; name another with --log"
        )
    records = prediction_log.read(log_path)
    logged = labels.logged_ids(records)
    kept, unknown = prediction_log.split_known(found, logged)
    given = len(kept) + len(unknown)
    if unknown and not skip_unknown:
        raise DataError(
            f"{prediction_log.unknown_line(unknown, given)}: nothing stored; check the ids "
            f"against the answers' `ids`, or pass --skip-unknown to store the {len(kept)} known"
        )
    if not kept:
        raise DataError(f"none of the {given} ids is in {log_path}: is it the log that answered?")
    before = labels.latest(feedback_path)
    when = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")
    labels.append(feedback_path, list(kept.items()), when)
    carried = labels.logged_ids(r for r in records if r.get("label") is not None)
    covered = (carried | set(before) | set(kept)) & logged
    return {
        "stored": len(kept),
        "replaced": sum(id_ in before for id_ in kept),
        "unknown": len(unknown),
        "labelled": len(covered),
        "logged": len(logged),
    }


def main(params: Params, serve: ServeParams, file: Path, log: Path | None, skip: bool) -> int:
    """Read, check and store FILE's labels; one line saying what was stored."""
    log_path, feedback_path = log or Path(serve.prediction_log), Path(serve.feedback_log)
    found, unlabelled = pairs(read(Path(file), params.data.missing_values), params.task, file)
    done = store(found, log_path, feedback_path, skip_unknown=skip)
    line = (
        f"stored {_count(done['stored'], 'label')} in {feedback_path} ({done['replaced']} "
        "replaced an earlier one"
    )
    if unlabelled:
        line += f"; {_count(unlabelled, 'row')} without a label skipped"
    if done["unknown"]:
        line += f"; {_count(done['unknown'], 'id')} in no prediction log skipped"
    share = 100 * done["labelled"] / done["logged"]
    line += f"); labelled: {done['labelled']:,} of {done['logged']:,} logged rows ({share:.1f}%)"
    print(line)
    return 0


def _shown(value: object) -> str:
    """A value as Python writes it (1.5, 'many'), not numpy's repr (np.float64(1.5))."""
    return repr(value.item() if isinstance(value, np.generic) else value)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"
