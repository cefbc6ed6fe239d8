"""Annotate on a Dask cluster (compute.engine: dask): corrections applied per partition
of clean's outputs, the label judge's out-of-fold predictions made per partition, and
data/interim/annotated.parquet written as a folder of parts that reads back as the
local engine's table; reports/label_issues.csv and reports/annotate.json are the local
engine's too.

The partitions are the parts of cleaned.parquet, then those of unlabelled.parquet (a
file is one part), so the rows keep the local engine's order: corrected cleaned rows,
then the unlabelled rows a correction labelled. Each pass reads a part again and
applies the corrections again (annotate.corrected: row by row), so no worker keeps a
part between passes and no process holds the table:
1. survey: the corrected ids each part holds, its distinct targets: the corrections
   are checked here (annotate.checked_corrections);
2. summary: per part, labelled and unlabelled rows, labels changed; for
   classification, each labelled row's class as a small integer, the rows per class,
   the counts numbers_in_text needs and each categorical column's distinct values
   (up to the one-hot limit, all the judge's encoding choice needs);
3. the folds and each fold's fit sample, from the classes alone
   (label_quality.fold_plan, on codes that sort as the labels do: the same positions
   as the local engine's); only the sampled rows are gathered, the fold models are
   fitted here exactly as the local engine fits them;
4. each part's labelled rows are predicted by their fold's model and its issues
   returned;
5. with annotate.pseudo_label, its model is fitted on pseudo_label's sample (the same
   positions, gathered the same way) and each part's unlabelled rows are predicted
   on the workers: the sure ones are written as parts after the labelled ones.
This process holds a class code and a fold number per labelled row (plus the fold
plan's positions, 8 bytes a row), the judge's samples (at most cv_folds x
judge_max_rows rows) and the label issues. The local engine's dtypes come from
pd.concat of empty frames: pandas 3 takes every frame's dtype, empty or all-NA, so
that is the dtype of the whole.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from joblib import Parallel, delayed

from ..core import cluster, compute, io, paths
from ..core.errors import DataError
from ..core.params import AnnotateParams, EncodingParams, Params, load
from ..modeling.features import encoding_for
from ..quality import label_quality
from ..stages import annotate
from ..tables import parts, schema

if TYPE_CHECKING:
    from distributed import Future

log = logging.getLogger(__name__)


def read_part(path: Path, dtypes: pd.Series, columns: list[str] | None = None) -> pd.DataFrame:
    """A part, typed as the local engine's concatenation of the two tables."""
    frame = io.read_parquet(path, columns=columns)
    wanted = dtypes[frame.columns]
    return frame if frame.dtypes.equals(wanted) else frame.astype(wanted.to_dict())


def labelled_part(
    path: Path, dtypes: pd.Series, new: pd.Series, target: str
) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    """(the part's labelled rows after the corrections, its unlabelled rows, labels changed)."""
    frame, changed = annotate.corrected(read_part(path, dtypes), new, target)
    return *annotate.split_labelled(frame, target), changed


def labelled_rows(path: Path, dtypes: pd.Series, new: pd.Series, target: str) -> pd.DataFrame:
    return labelled_part(path, dtypes, new, target)[0]


def survey(path: Path, dtypes: pd.Series, ids: set, target: str, classification: bool) -> tuple:
    """Pass 1: (the corrected ids in the part, its distinct targets or None, its rows)."""
    frame = read_part(path, dtypes, [schema.ID, target])
    found = set(frame[schema.ID][frame[schema.ID].isin(ids)])
    known = frame[target].dropna().unique().tolist() if classification else None
    return found, known, len(frame)


@dataclass(frozen=True)
class Wanted:
    """What a classification summary collects beyond the counts: the tallies of the
    `text` columns, and the distinct categories of each of `categorical` (None past
    `most`)."""

    text: list[str]
    categorical: list[str]
    most: int


def summary(
    path: Path, dtypes: pd.Series, new: pd.Series, target: str, wanted: Wanted | None
) -> dict:
    """Pass 2. `wanted` None: regression, counts only. Else each labelled row's class
    (codes into `classes`, the part's sorted labels as text), rows per class in order of
    first appearance, (numbers, values) of each text column, and the distinct categories
    of each categorical column (see Wanted)."""
    labelled, unlabelled, changed = labelled_part(path, dtypes, new, target)
    out = {"labelled": len(labelled), "unlabelled": len(unlabelled), "changed": changed}
    if wanted is None:
        return out
    classes, codes = np.unique(
        schema.target_array(labelled[target].astype(str)), return_inverse=True
    )
    distinct = {}
    for column in wanted.categorical:
        values = schema.category_text(labelled[column]).dropna().unique()
        distinct[column] = None if len(values) > wanted.most else set(values.tolist())
    return out | {
        "classes": classes,
        "codes": codes.astype(np.min_scalar_type(max(len(classes) - 1, 0))),
        "per_class": labelled[target].value_counts(sort=False),
        "tallies": {c: schema.text_tally(labelled[c]) for c in wanted.text},
        "distinct": distinct,
    }


def rows_at(
    path: Path, dtypes: pd.Series, positions: np.ndarray, new: pd.Series, target: str
) -> pd.DataFrame:
    return labelled_rows(path, dtypes, new, target).iloc[positions]


@dataclass(frozen=True)
class FoldJudges:
    """The fitted fold models (one per fold, in order), the roles they read, the classes
    of their probability columns, and annotate.issue_threshold: sent to each worker once."""

    models: list
    roles: schema.Roles
    classes: np.ndarray
    threshold: float


def judged(
    path: Path, dtypes: pd.Series, folds: np.ndarray, new: pd.Series, judges: FoldJudges
) -> pd.DataFrame:
    """Pass 4: the part's label issues, each row predicted by the model of its fold."""
    roles, classes = judges.roles, judges.classes
    labelled = labelled_rows(path, dtypes, new, roles.target)
    X = schema.model_frame(labelled, roles)
    proba = np.empty((len(labelled), len(classes)))
    # One core per prediction, as the local engine's folds predict.
    with compute.cores(1):
        for fold, model in enumerate(judges.models):
            held_out = np.flatnonzero(folds == fold)
            proba[held_out] = label_quality.predict_proba(model, X.iloc[held_out], classes)
    labels = schema.target_array(labelled[roles.target].astype(str))
    ids = labelled[schema.ID]
    return label_quality.disagreements(ids, labels, proba, classes, judges.threshold)


def summed(counts: list[pd.Series]) -> pd.Series:
    """Value counts of the whole table from the parts' (first appearance order), sorted
    as value_counts sorts them."""
    together = pd.concat(counts).groupby(level=0, sort=False).sum()
    return together.sort_values(ascending=False, kind="stable")


class Job:
    """The stage's inputs as the workers need them, and the cluster."""

    def __init__(self, client, params: Params, sources: list[Path], dtypes: pd.Series):
        self.client, self.params, self.sources, self.dtypes = client, params, sources, dtypes
        self.target = params.data.target

    def map(self, func, *per_part, sources: list[Path] | None = None, **common) -> list:
        """func(source, dtypes, *per_part[n], **common) for each part, gathered in order."""
        futures = [
            self.client.submit(func, source, self.dtypes, *args, pure=False, **common)
            for source, *args in zip(sources or self.sources, *per_part, strict=True)
        ]
        return self.client.gather(futures)


def common_dtypes(tables: list[list[Path]]) -> pd.Series:
    """The dtypes of the local engine's pd.concat of the tables, from each table's first
    part's footer (clean writes both tables with the same dtypes)."""
    return pd.concat([parts.empty(t[0]) for t in tables], ignore_index=True).dtypes


def checked(job: Job, corrections: pd.DataFrame) -> tuple[Future, int]:
    """(the new label per corrected id, on every worker; rows in) after the local
    engine's checks."""
    classification = job.params.task == "classification"
    # Sent to each worker once, not with every task.
    [ids] = job.client.scatter([set(corrections["id"])], broadcast=True)
    surveyed = job.map(survey, ids=ids, target=job.target, classification=classification)
    found = set().union(*(s[0] for s in surveyed))
    known = set().union(*(s[1] for s in surveyed)) if classification else None
    empty = pd.Series([], dtype=job.dtypes[job.target], name=job.target)
    new = annotate.checked_corrections(corrections, found, empty, known, job.params.task)
    [shared] = job.client.scatter([new], broadcast=True)
    return shared, sum(s[2] for s in surveyed)


def roles_of(job: Job, new: Future) -> tuple[schema.Roles, list[dict]]:
    """The judge's roles, as infer_roles finds them on the labelled table, and the
    summaries (pass 2) of every part."""
    meta = empty(job.dtypes)
    data = annotate.judged_data(job.params.data, meta.columns)
    deferred: list[str] = []

    def defer(column: pd.Series) -> None:
        """numbers_in_text needs the whole column: its tallies come with the summaries."""
        if schema.is_text(column):
            deferred.append(column.name)

    failure = None
    try:
        roles = schema.infer_roles(meta, data, job.params.task, defer)
    except DataError as exc:  # raised after the text checks, as the local engine does
        failure, roles = exc, None
    categorical = roles.categorical if roles else []
    most = job.params.preprocess.encoding.onehot_max_categories
    wanted = Wanted(deferred, categorical, most)
    summaries = job.map(summary, new=new, target=job.target, wanted=wanted)
    for column in deferred:
        schema.refuse_numbers_in_text(column, [s["tallies"][column] for s in summaries])
    if failure is not None:
        raise failure
    return roles, summaries


class Labels:
    """The labelled table's classes, from the summaries: a code per row (sorting as the
    labels' text sorts), each part's span of rows, and the judge's encodings."""

    def __init__(self, summaries: list[dict], roles: schema.Roles, dtype, rules: EncodingParams):
        self.roles, self.dtype = roles, dtype
        self.classes = np.unique(np.concatenate([s["classes"] for s in summaries]))
        code_type = np.min_scalar_type(max(len(self.classes) - 1, 0))
        self.codes = np.concatenate(
            [
                # Popped: the codes are held once, here.
                np.searchsorted(self.classes, s["classes"]).astype(code_type)[s.pop("codes")]
                for s in summaries
            ]
        )
        self.bounds = np.cumsum([0] + [s["labelled"] for s in summaries])
        self.encodings = encodings(summaries, roles.categorical, rules)
        # First appearance over the whole table, as labelled[target].unique() gives them.
        in_order = pd.concat([s["per_class"] for s in summaries]).groupby(level=0, sort=False)
        self.by_text = label_quality.by_text(in_order.sum().index)

    def spans(self) -> list[tuple[int, int]]:
        return list(zip(self.bounds[:-1], self.bounds[1:], strict=True))

    def judge(self, job: Job, new: Future, rows: np.ndarray):
        """(the unfitted judge, features, text labels) of the labelled rows at `rows`."""
        sample = pd.concat(gather_rows(job, new, rows, self.bounds), ignore_index=True)
        X = schema.model_frame(sample, self.roles)
        y = schema.target_array(sample[self.roles.target].astype(str))
        model = label_quality.judge(
            X, self.roles, job.params.preprocess, job.params.seed, self.encodings
        )
        return model, X, y


def judge_issues(job: Job, new: Future, labels: Labels) -> pd.DataFrame:
    """label_quality.find_issues on the partitioned labelled table."""
    rules, cores = job.params.annotate, job.params.compute.cores
    planned = label_quality.fold_plan(
        labels.codes, rules.cv_folds, job.params.seed, rules.judge_max_rows
    )
    if planned is None:
        return pd.DataFrame(columns=schema.ISSUE_COLUMNS)
    _, plan = planned
    fold_of = np.empty(len(labels.codes), dtype=np.int8)
    for fold, (_, held_out) in enumerate(plan):
        fold_of[held_out] = fold
    sampled = np.unique(np.concatenate([fit for fit, _ in plan]))
    model, X, y = labels.judge(job, new, sampled)
    with compute.folds(cores):
        models = Parallel(n_jobs=cores)(
            delayed(label_quality.fit_judge)(model, X, y, np.searchsorted(sampled, fit))
            for fit, _ in plan
        )
    del X, y
    judges = FoldJudges(models, labels.roles, labels.classes, rules.issue_threshold)
    [shared] = job.client.scatter([judges], broadcast=True)
    fold_parts = job.client.scatter([fold_of[start:end] for start, end in labels.spans()])
    found = job.map(judged, fold_parts, new=new, judges=shared)
    return label_quality.ranked(pd.concat(found, ignore_index=True))


def pseudo_judge(job: Job, new: Future, labels: Labels):
    """label_quality.pseudo_label's model, fitted on the same sample of labelled rows."""
    rules = job.params.annotate
    rows = compute.sample(
        np.arange(len(labels.codes)), labels.codes, rules.judge_max_rows, job.params.seed
    )
    model, X, y = labels.judge(job, new, rows)
    with compute.cores(job.params.compute.cores):
        return model.fit(X, y)


def pseudo_rows(
    path: Path, dtypes: pd.Series, new: pd.Series, labeller: label_quality.Labeller
) -> pd.DataFrame:
    """A part's unlabelled rows that the labeller is sure of, labelled."""
    unlabelled = labelled_part(path, dtypes, new, labeller.roles.target)[1]
    with compute.cores(1):
        return labeller.sure_rows(unlabelled)


def empty(dtypes: pd.Series) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series([], dtype=t) for c, t in dtypes.items()})


def typed(frame: pd.DataFrame, dtypes: pd.Series) -> pd.DataFrame:
    """A part of the annotated table in the dtypes pd.concat gives the whole."""
    return frame if frame.dtypes.equals(dtypes) else frame.astype(dtypes.to_dict())


def encodings(summaries: list[dict], categorical: list[str], rules: EncodingParams) -> dict:
    """choose_encodings' answer for the whole labelled table, from the parts' distinct
    categories (a part past the one-hot limit settles it)."""
    chosen = {}
    for column in categorical:
        seen = [s["distinct"][column] for s in summaries]
        many = any(values is None for values in seen)
        distinct = rules.onehot_max_categories + 1 if many else len(set().union(*seen))
        chosen[column] = encoding_for(distinct, rules)
    return chosen


def gather_rows(job: Job, new: Future, positions: np.ndarray, bounds: np.ndarray) -> list:
    """The labelled rows at `positions` (sorted, over the whole labelled table), read
    from the parts that hold them."""
    cuts = np.searchsorted(positions, bounds)
    wanted = [
        (source, positions[cuts[n] : cuts[n + 1]] - bounds[n])
        for n, source in enumerate(job.sources)
        if cuts[n + 1] > cuts[n]
    ]
    return job.map(
        rows_at,
        [w[1] for w in wanted],
        sources=[w[0] for w in wanted],
        new=new,
        target=job.target,
    )


def source_parts() -> tuple[list[list[Path]], list[Path]]:
    """(the parts of cleaned.parquet and of unlabelled.parquet, all of them in that order)."""
    tables = [parts.files(paths.CLEANED), parts.files(paths.UNLABELLED)]
    for path, table in zip((paths.CLEANED, paths.UNLABELLED), tables, strict=True):
        if not table:
            raise DataError(f"{path} holds no Parquet parts: rebuild it with `dvc repro clean`")
    return tables, tables[0] + tables[1]


def review_parts(
    job: Job, new: Future, summaries: list[dict], roles: schema.Roles, rules: AnnotateParams
) -> tuple[pd.DataFrame, dict, list, pd.Series]:
    """Classification's review on the cluster: (the label issues, their report, the frames
    of the pseudo-labelled rows, the annotated table's dtypes)."""
    import dask

    per_class = summed([s["per_class"] for s in summaries])
    schema.require_class_counts(per_class, job.target, rules.cv_folds, "annotate.cv_folds")
    labels = Labels(summaries, roles, job.dtypes[job.target], job.params.preprocess.encoding)
    issues = judge_issues(job, new, labels)
    found = {"label_issues": len(issues), "pseudo_labelled": 0}
    unlabelled = [s["unlabelled"] for s in summaries]
    if not (rules.pseudo_label.enabled and sum(unlabelled)):
        return issues, found, [], job.dtypes
    sure = rules.pseudo_label.min_confidence
    model = pseudo_judge(job, new, labels)
    labeller = label_quality.Labeller(model, roles, sure, labels.by_text, labels.dtype)
    # The dtypes of the local engine's pd.concat([labelled, pseudo-labelled]).
    pseudo = labeller.sure_rows(empty(job.dtypes))
    [shared] = job.client.scatter([labeller], broadcast=True)
    frames = [
        dask.delayed(pseudo_rows)(job.sources[n], job.dtypes, new, shared)
        for n, rows in enumerate(unlabelled)
        if rows
    ]
    return issues, found, frames, pd.concat([empty(job.dtypes), pseudo]).dtypes


def write_parts(frames: list, dtypes: pd.Series, expected: list[int]) -> tuple[int, list[int]]:
    """(rows written, rows per part) of annotated.parquet from `frames`, each typed as
    `dtypes`; the first parts must hold `expected` rows (the labelled rows)."""
    import dask

    written: list[int] = []

    def check(rows: list[int]) -> None:
        if rows[: len(expected)] != expected:
            raise RuntimeError(f"annotate wrote {rows} rows per part, not {expected}")
        written.extend(rows)

    frames = [dask.delayed(typed)(frame, dtypes) for frame in frames]
    return parts.write(frames, paths.ANNOTATED, check), written


def run(params: Params) -> None:
    """Annotate on the cluster: data/interim/annotated.parquet as a folder of parts."""
    import dask

    annotate.refuse_pseudo_labels(task=params.task, rules=params.annotate)
    rules = params.annotate
    tables, sources = source_parts()
    corrections = annotate.read_corrections(Path(rules.relabel_file), params.data.missing_values)
    classification = params.task == "classification"
    with cluster.client(params.compute) as client:
        job = Job(client, params, sources, common_dtypes(tables))
        new, rows_in = checked(job, corrections)
        if classification:
            roles, summaries = roles_of(job, new)
        else:
            summaries = job.map(summary, new=new, target=job.target, wanted=None)
        changed = sum(s["changed"] for s in summaries)
        report = {"corrections": len(corrections), "labels_changed": changed}
        # Parts with labelled rows only (most of unlabelled.parquet's have none); one
        # part at least, so an empty table still has its columns.
        kept = [n for n, s in enumerate(summaries) if s["labelled"]] or [0]
        frames = [
            dask.delayed(labelled_rows)(sources[n], job.dtypes, new, job.target) for n in kept
        ]
        if classification:
            issues, found, pseudo, dtypes = review_parts(job, new, summaries, roles, rules)
        else:
            issues = pd.DataFrame(columns=schema.ISSUE_COLUMNS)
            found, pseudo, dtypes = dict(annotate.NO_REVIEW), [], job.dtypes
        report.update(found, unlabelled=sum(s["unlabelled"] for s in summaries))
        expected = [summaries[n]["labelled"] for n in kept]
        rows_out, written = write_parts(frames + pseudo, dtypes, expected)
    if classification and rules.pseudo_label.enabled:
        report["pseudo_labelled"] = sum(written[len(kept) :])
    annotate.finish(issues, report, rows_in, rows_out)


def main() -> None:
    run(load())
