"""Clean on a Dask cluster (compute.engine: dask): a task per part of the snapshot, the
cleaned and unlabelled rows written as folders of parts that read back as the local
engine's tables (same rows, same order, same values and dtypes), and the same report.

Every drop reason but one is decided by a row alone, so each worker decides it for its
part. Duplicates need the whole table: a row is dropped when an equal row came before it,
in any part. As in the local engine (`clean.duplicated`), one 64-bit hash per row finds
the rows that can be repeats, and pandas decides on those rows alone:
1. each worker returns its part's row hashes (8 bytes a row, the only per-row array this
   process holds) and what the numeric coercion, the infinities and the missing markers
   found (clean.as_read, clean.markers_kept), and its text features' value counts
   (clean.look_alikes): infinities in the target are refused here;
2. here, the hashes seen more than once pick the candidate rows; workers return just
   those rows, and `DataFrame.duplicated` over them, in snapshot order, marks repeats;
3. each worker applies every mask to its part and writes its two parts; the counts come
   back and the report is checked before either folder replaces the old one.
A worker reads its part in each pass: disk reads, never a copy of the table in memory.
Coercion changes a worker's frame in place: pandas' copy-on-write keeps that from
reaching any other task's view of the part.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

import numpy as np
import pandas as pd

from ..core import cluster, paths
from ..core.params import CleanParams, Params, load
from ..stages import clean
from ..tables import parts, row_hash, schema


@dataclass(frozen=True)
class Columns:
    """The columns each pass reads: data.numeric's (coerced to numbers first), the
    content (clean.content_columns: hashed and compared for repeats), the features (their
    missing share) and the target."""

    numeric: list[str]
    content: list[str]
    features: list[str]
    target: str


def survey(frame: pd.DataFrame, columns: Columns) -> tuple:
    """Pass 1 on a worker: (row hashes of the content columns, what coercion found, the
    infinities, the missing markers kept, the missing values, per column, and the text
    features' value counts)."""
    coerced, infinite = clean.as_read(frame, columns.numeric, columns.target)
    markers = clean.markers_kept(frame, columns.content)
    missing = clean.missing_counts(frame, columns.content)
    texts = clean.text_counts(frame, columns.features)
    hashes = row_hash.row_hashes(frame[columns.content])
    return hashes, coerced, infinite, markers, missing, texts


def candidates(frame: pd.DataFrame, columns: Columns, rows) -> pd.DataFrame:
    """Pass 2 on a worker: the content of the rows at positions `rows` of the part."""
    clean.as_read(frame, columns.numeric, columns.target)
    return frame[columns.content].iloc[rows]


def sort_part(
    frame: pd.DataFrame, repeats: np.ndarray, *, columns: Columns, rules: CleanParams, classes: bool
) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """Pass 3 on a worker: the part's kept rows, unlabelled rows and counts; `repeats`
    are the positions of the part's duplicate rows; classes: see clean.sort_rows."""
    clean.as_read(frame, columns.numeric, columns.target)
    duplicate = np.zeros(len(frame), dtype=bool)
    duplicate[repeats] = True
    masks = {"duplicate": pd.Series(duplicate, index=frame.index)}
    masks.update(clean.row_masks(frame, columns.features, rules=rules))
    return clean.sort_rows(frame, columns.target, masks, classes)


def merge_coerced(found: list[dict]) -> dict[str, tuple[int, list]]:
    """The parts' findings per column (coercion, or missing markers kept) as one table's:
    counts summed, the first three distinct values in snapshot order."""
    merged: dict[str, tuple[int, list]] = {}
    for part in found:
        for column, (count, examples) in part.items():
            total, seen = merged.get(column, (0, []))
            merged[column] = (total + count, list(dict.fromkeys(seen + examples))[:3])
    return merged


def add_counts(found: list[dict[str, pd.Series | None]]) -> dict[str, pd.Series | None]:
    """The parts' value counts per column as one table's; None where a part had too many
    values to count (clean.text_counts), as the whole table has then."""
    columns = list(dict.fromkeys(c for part in found for c in part))
    tallies = {c: [part.get(c) for part in found] for c in columns}
    return {
        c: None if any(t is None for t in parts_of) else pd.concat(parts_of).groupby(level=0).sum()
        for c, parts_of in tallies.items()
    }


def sum_per_column(found: list[dict[str, int]], order: list[str]) -> dict[str, int]:
    """The parts' counts per column as one table's, in the table's column order."""
    totals = {column: sum(part.get(column, 0) for part in found) for column in order}
    return {column: count for column, count in totals.items() if count}


def merge_counts(counts: list[dict]) -> dict:
    """The parts' counts as one table's (see clean.sort_rows)."""
    targets = list(dict.fromkeys(t for c in counts for t in c["targets"]))[:2]
    classes = None
    if counts[0]["classes"] is not None:
        classes = list(dict.fromkeys(t for c in counts for t in c["classes"]))
    return {
        "rows_in": sum(c["rows_in"] for c in counts),
        "rows_out": sum(c["rows_out"] for c in counts),
        "unlabelled": sum(c["unlabelled"] for c in counts),
        "dropped": {r: sum(c["dropped"][r] for c in counts) for r in counts[0]["dropped"]},
        "targets": targets,
        "classes": classes,
    }


def repeats(frames: list, hashes: list[np.ndarray], columns: Columns) -> list:
    """Per part, the positions of the rows an equal row came before (in this part or an
    earlier one). Positions, not a mask: they go into the graph, and are few."""
    import dask

    bounds = np.cumsum([0] + [len(h) for h in hashes])
    maybe = np.flatnonzero(row_hash.repeated(np.concatenate(hashes)))
    spans = [maybe[(maybe >= lo) & (maybe < hi)] - lo for lo, hi in pairwise(bounds)]
    wanted = [
        dask.delayed(candidates)(frame, columns, rows)
        for frame, rows in zip(frames, spans, strict=True)
        if len(rows)
    ]
    found = np.zeros(bounds[-1], dtype=bool)
    if wanted:
        rows = pd.concat(dask.compute(*wanted), ignore_index=True)
        found[maybe] = rows.duplicated(keep="first").to_numpy()
    return [np.flatnonzero(found[lo:hi]) for lo, hi in pairwise(bounds)]


def run(params: Params) -> dict:
    """Clean paths.INGESTED on the cluster into the folders paths.CLEANED and
    paths.UNLABELLED; the report, as the local engine's."""
    import dask

    target, rules = params.data.target, params.clean
    with cluster.client(params.compute):
        table = parts.read(paths.INGESTED)
        meta = table._meta  # the empty frame with the parts' columns and dtypes
        schema.require_target(meta, target)
        clean.warn_unknown_columns(meta.columns, rules=rules)
        numeric = [c for c in params.data.numeric or [] if c != target]
        content, features = clean.content_columns(meta, target)
        columns = Columns(numeric=numeric, content=content, features=features, target=target)
        classes = clean.counts_classes(params.metric)
        frames = table.to_delayed()
        surveyed = dask.compute(*[dask.delayed(survey)(f, columns) for f in frames])
        hashes = [s[0] for s in surveyed]
        findings = {
            "coerced_to_missing": clean.warn_coerced(merge_coerced([s[1] for s in surveyed])),
            "non_finite_to_missing": clean.warn_non_finite(
                sum_per_column([s[2] for s in surveyed], list(meta.columns)), target
            ),
            "missing_markers_kept": clean.warn_markers(merge_coerced([s[3] for s in surveyed])),
            "missing_per_column": clean.note_missing(
                sum_per_column([s[4] for s in surveyed], content)
            ),
            "look_alike_values": clean.warn_look_alikes(
                clean.look_alikes(add_counts([s[5] for s in surveyed]))
            ),
        }
        if rules.drop_duplicates:
            duplicate = repeats(frames, hashes, columns)
        else:
            duplicate = [np.empty(0, dtype=np.int64)] * len(hashes)
        del surveyed, hashes
        sorted_parts = [
            dask.delayed(sort_part, nout=3)(f, d, columns=columns, rules=rules, classes=classes)
            for f, d in zip(frames, duplicate, strict=True)
        ]
        summary = {}

        def check(_rows: dict, counts: list[dict]) -> None:
            summary.update(clean.report(merge_counts(counts), findings, target, params.metric))

        parts.write_many(
            {
                paths.CLEANED: [p[0] for p in sorted_parts],
                paths.UNLABELLED: [p[1] for p in sorted_parts],
            },
            facts=[p[2] for p in sorted_parts],
            check=check,
        )
    clean.finish(summary)
    return summary


def main() -> None:
    run(load())
