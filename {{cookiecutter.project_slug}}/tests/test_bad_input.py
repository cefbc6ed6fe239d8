"""Bad input as a user meets it: every case runs the pipeline, in-process, on a damaged copy
of the shipped penguins or with a bad setting, and checks what the user sees.

A refused case must fail in the first stage that sees the problem, with one line (`error:
...`, no traceback) that names the file, column or rows and the fix, and leave that
stage's outputs unwritten. A handled case follows a documented rule: the pipeline runs to
the end, a warning says what happened, and a report counts it.

docs/bad-input.md is generated from these cases and the lines they really print, so the
table cannot drift from the code: a test fails when it is stale, and
`UPDATE_DOCS=1 pytest tests/test_bad_input.py` rewrites it.
"""

from __future__ import annotations

import contextlib
import gzip
import io as text_io
import json
import logging
import os
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pytest

from {{ cookiecutter.package_name }}.__main__ import main
from {{ cookiecutter.package_name }}.core import config_sync
from {{ cookiecutter.package_name }}.core.errors import ConfigError
from {{ cookiecutter.package_name }}.stages import STAGES
from {{ cookiecutter.package_name }}.tools import dvc_deps

PROJECT = Path(__file__).resolve().parents[1]
DOC = PROJECT / "docs" / "bad-input.md"
# Small candidates and 3 folds: the cases that reach select stay quick.
FAST = [
    "select.cv_folds=3",
    "select.candidates.random_forest.n_estimators=10",
    "select.candidates.hist_gradient_boosting.max_iter=20",
]
# The one bad file of every data case; data.source points at its folder.
SOURCE = Path("data", "bad")
COMPOSE = "composing conf/"  # refused before any stage: `dvc exp run` writes nothing
# A row the seeded split puts in the test set, per task (the unseen-category case fails
# loudly if the split ever changes).
TEST_ROW = {"classification": 15, "regression": 16}


def numeric_features(task: str) -> list[str]:
    """data.numeric listing every numeric feature (body mass is the regression target)."""
    listed = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm"]
    return [f"data.numeric=[{','.join(listed + ['body_mass_g'] * (task == 'classification'))}]"]


@dataclass(frozen=True)
class Case:
    id: str
    what: str  # what the user did, as the table says it
    stage: str | Callable[[str], str]  # where it is caught (per task when a callable)
    expect: str  # a regex the line must match
    write: Callable[[pd.DataFrame, str, str], None] | None = None  # (rows, target, task)
    overrides: list[str] | Callable[[str], list[str]] = field(default_factory=list)
    handled: bool = False  # True: a documented rule, not a refusal
    report: tuple[str, str, object] | None = None  # (report, dotted key, value) if handled
    task: str | None = None  # only for this task


def csv(rows: pd.DataFrame, encoding: str = "utf-8") -> None:
    (SOURCE / "penguins.csv").write_bytes(rows.to_csv(index=False).encode(encoding))


def as_is(rows: pd.DataFrame, target: str, task: str) -> None:
    csv(rows)


def text_in(column: str, count: int) -> Callable[[pd.DataFrame, str, str], None]:
    def write(rows: pd.DataFrame, target: str, task: str) -> None:
        rows[column] = rows[column].astype(object)
        rows.loc[: count - 1, column] = "n/a?"
        csv(rows)

    return write


def small_class(size: int) -> Callable[[pd.DataFrame, str, str], None]:
    def write(rows: pd.DataFrame, target: str, task: str) -> None:
        rows.loc[: size - 1, target] = "Rare"
        csv(rows)

    return write


def truncated_parquet(rows: pd.DataFrame, target: str, task: str) -> None:
    whole = SOURCE / "whole.parquet"
    rows.to_parquet(whole)
    (SOURCE / "penguins.parquet").write_bytes(whole.read_bytes()[:1000])
    whole.unlink()


def repeated_ids(rows: pd.DataFrame, target: str, task: str) -> None:
    rows.insert(0, "penguin_id", range(len(rows)))
    rows.loc[5, "penguin_id"] = 4
    csv(rows)


def unparseable_times(rows: pd.DataFrame, target: str, task: str) -> None:
    rows["year"] = rows["year"].astype(object)
    rows.loc[:9, "year"] = "someday"
    csv(rows)


def dates_as_text(rows: pd.DataFrame, target: str, task: str) -> None:
    days = pd.Timestamp("2023-01-01") + pd.to_timedelta(rows.index % 365, unit="D")
    csv(rows.assign(signup_date=days.strftime("%Y-%m-%d")))


def thousands_separators(rows: pd.DataFrame, target: str, task: str) -> None:
    csv(rows.assign(flipper_length_mm=[f"{v * 1000:,.1f}" for v in rows["flipper_length_mm"]]))


def semicolons(rows: pd.DataFrame, target: str, task: str) -> None:
    (SOURCE / "penguins.csv").write_text(rows.to_csv(index=False, sep=";"), encoding="utf-8")


def customer_ids(rows: pd.DataFrame, target: str, task: str) -> None:
    rows.insert(0, "customer_id", [f"C{i:05d}" for i in range(len(rows))])
    csv(rows)


def look_alike_classes(rows: pd.DataFrame, target: str, task: str) -> None:
    rows.loc[rows.index % 10 == 0, target] = rows[target].str.lower() + " "
    csv(rows)


def renamed(column: str, old: str, new: str) -> Callable[[pd.DataFrame, str, str], None]:
    def write(rows: pd.DataFrame, target: str, task: str) -> None:
        csv(rows.replace({column: {old: new}}))

    return write


def text_values(column: str, values: list[str]) -> Callable[[pd.DataFrame, str, str], None]:
    """`values` written over the first rows of `column`, as the file's text."""

    def write(rows: pd.DataFrame, target: str, task: str) -> None:
        rows[column] = rows[column].astype(object)
        rows.loc[: len(values) - 1, column] = values
        csv(rows)

    return write


def look_alike_island(rows: pd.DataFrame, target: str, task: str) -> None:
    rows.loc[:4, "island"] = "dream "
    rows.loc[5:7, "island"] = "DREAM"
    csv(rows)


def unseen_island(rows: pd.DataFrame, target: str, task: str) -> None:
    rows.loc[TEST_ROW[task], "island"] = "Atlantis"
    csv(rows)


def halves(rows: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    return rows.iloc[: len(rows) // 2], rows.iloc[len(rows) // 2 :]


def mixed_kinds(rows: pd.DataFrame, target: str, task: str) -> None:
    first, second = halves(rows)
    first.to_csv(SOURCE / "part1.csv", index=False)
    second.to_csv(SOURCE / "part2.csv.gz", index=False)


def with_entry(name: str, content: bytes) -> Callable[[pd.DataFrame, str, str], None]:
    def write(rows: pd.DataFrame, target: str, task: str) -> None:
        csv(rows)
        (SOURCE / name).write_bytes(content)

    return write


def header_as(names: dict[str, str]) -> Callable[[pd.DataFrame, str, str], None]:
    """The rows with some header names written as `names` says (pandas would rename a
    repeat, so the file is written as text)."""

    def write(rows: pd.DataFrame, target: str, task: str) -> None:
        text = rows.to_csv(index=False)
        header, rest = text.split("\n", 1)
        header = ",".join(names.get(n, n) for n in header.split(","))
        (SOURCE / "penguins.csv").write_text(f"{header}\n{rest}", encoding="utf-8")

    return write


def nested_column(rows: pd.DataFrame, target: str, task: str) -> None:
    tags = [["ringed"] if n % 2 else [] for n in range(len(rows))]
    rows.assign(tags=tags).to_parquet(SOURCE / "penguins.parquet", index=False)


def retyped_batch(rows: pd.DataFrame, target: str, task: str) -> None:
    first, second = halves(rows)
    first.to_csv(SOURCE / "penguins.csv", index=False)
    units = second.assign(bill_length_mm=second["bill_length_mm"].astype(str) + " mm")
    units.to_csv(SOURCE / "penguins_late.csv", index=False)


CASES = [
    Case(
        "empty-file",
        "a batch file of 0 bytes",
        "ingest",
        r"data/bad/penguins.csv is empty \(0 bytes\): export it again",
        lambda rows, target, task: (SOURCE / "penguins.csv").write_bytes(b""),
    ),
    Case(
        "header-only",
        "a CSV with a header and no rows",
        "ingest",
        r"data/bad/penguins.csv has a header but no rows: export its rows again",
        lambda rows, target, task: csv(rows.head(0)),
    ),
    Case(
        "mixed-compression",
        "a folder of `part1.csv` and `part2.csv.gz`",
        "ingest",
        r"data.source data/bad: 2 batch file\(s\) \(1 .csv, 1 .csv.gz\)",
        mixed_kinds,
        handled=True,
        report=("reports/clean.json", "rows_in", 224),
    ),
    Case(
        "unsupported-file",
        "a `notes.txt` among the batches",
        "ingest",
        r"cannot read notes.txt in data/bad: a batch is a .csv \(plain, .gz, .bz2, .xz or .zip\)"
        r" or .parquet file; convert it to one, or move it out of the folder",
        with_entry("notes.txt", b"collected by hand"),
    ),
    Case(
        "one-batch-twice",
        "`penguins.csv` and `penguins.csv.gz` in one folder",
        "ingest",
        r"penguins.csv and penguins.csv.gz in data/bad are both batch 'penguins': keep one",
        with_entry("penguins.csv.gz", gzip.compress(b"species\nAdelie\n")),
    ),
    Case(
        "corrupt-gzip",
        "a `.csv.gz` that is not gzip data",
        "ingest",
        r"cannot read data/bad/penguins.csv.gz: Not a gzipped file .*: write the file again",
        lambda rows, target, task: (SOURCE / "penguins.csv.gz").write_bytes(b"species,island\n"),
    ),
    Case(
        "repeated-header",
        "a header naming `bill_length_mm` twice",
        "ingest",
        r"data/bad/penguins.csv repeats column name\(s\) 'bill_length_mm' in its header: give "
        r"every column a name of its own",
        header_as({"bill_depth_mm": "bill_length_mm"}),
    ),
    Case(
        "colliding-header",
        "columns `bill_length_mm` and `Bill_Length_mm ` (case and a space apart)",
        "ingest",
        r"data/bad/penguins.csv has columns 'bill_length_mm' and 'Bill_Length_mm ', which differ "
        r"only in case or spaces",
        header_as({"bill_depth_mm": "Bill_Length_mm "}),
    ),
    Case(
        "saved-index",
        "a CSV saved with its row index (a first column without a name)",
        "ingest",
        r"data/bad/penguins.csv: column 1 of the header has no name: name it, or drop the column "
        r"\(a saved row index\?",
        lambda rows, target, task: rows.to_csv(SOURCE / "penguins.csv"),
    ),
    Case(
        "nested-column",
        "a Parquet list column (`tags`)",
        "ingest",
        r"data/bad/penguins.parquet has nested column\(s\) 'tags' \(list<.*>\): a batch holds "
        r"one value per cell",
        nested_column,
    ),
    Case(
        "retyped-batch",
        "a later batch writing `bill_length_mm` as text (`39.1 mm`)",
        "ingest",
        r"column 'bill_length_mm' holds text in batch 'penguins_late' but number in batch "
        r"'penguins': make it one type in every batch",
        retyped_batch,
    ),
    Case(
        "zero-byte-parquet",
        "a Parquet file of 0 bytes",
        "ingest",
        r"data/bad/penguins.parquet is empty \(0 bytes\)",
        lambda rows, target, task: (SOURCE / "penguins.parquet").write_bytes(b""),
    ),
    Case(
        "truncated-parquet",
        "a Parquet file cut short",
        "ingest",
        r"cannot read data/bad/penguins.parquet: .*magic bytes.*: write the file again",
        truncated_parquet,
    ),
    Case(
        "non-utf8",
        "a CSV saved as Latin-1",
        "ingest",
        r"data/bad/penguins.csv is not UTF-8 text \(byte 0xe9 .*\): save it as UTF-8",
        lambda rows, target, task: csv(rows.replace({"island": {"Dream": "Dréam"}}), "latin-1"),
    ),
    Case(
        "repeated-ids",
        "data.id_column names a column with a repeated id",
        "ingest",
        r"id column 'penguin_id' repeats 1 id\(s\) \(e.g. 4\): make ids unique .* or set "
        r"data.id_column to null",
        repeated_ids,
        ["data.id_column=penguin_id"],
    ),
    Case(
        "unparseable-time",
        "data.time names a column with values that are not dates",
        "ingest",
        r"time column 'year' has 10 value\(s\) that are not dates or times \(e.g. 'someday'\)",
        unparseable_times,
    ),
    Case(
        "dates-as-text",
        "a text column of dates (`signup_date`) that no role names",
        "ingest",
        r"column 'signup_date' holds dates \(224 of the first 224 values of batch 'penguins', "
        r"e.g. '2023-01-01'\), which would be read as categories: name it in data.time",
        dates_as_text,
    ),
    Case(
        "numbers-with-commas",
        "a numeric column written with thousands separators (`181,000.0`)",
        "ingest",
        r"column 'flipper_length_mm' holds numbers written with commas \(\d+ of the first \d+ "
        r"values of batch 'penguins', e.g. '[\d,.]+'\), which would be read as categories: "
        r"write them with a '.' decimal point",
        thousands_separators,
    ),
    Case(
        "semicolon-separated",
        "a CSV separated by `;` (a European spreadsheet's export)",
        "ingest",
        r"batch 'penguins' reads as one column named '.*': its values are separated by "
        r"semicolons \(';'\), not commas: save it as comma-separated CSV",
        semicolons,
    ),
    Case(
        "id-as-category",
        "an id column (`customer_id`, text) that no role names",
        "ingest",
        r"column 'customer_id' holds a different value in every row \(224 of the first 224 "
        r"values of batch 'penguins', e.g. 'C00000'\), which would be read as categories: "
        r"name it in data.id_column",
        customer_ids,
    ),
    Case(
        "missing-target",
        "the target column is not in the data",
        "clean",
        r"target column '(species|body_mass_g)' is not in the data \(columns: .*\): set "
        r"data.target to one of them",
        lambda rows, target, task: csv(rows.drop(columns=[target])),
    ),
    Case(
        "all-null-target",
        "the target is empty in every row",
        "clean",
        r"target '\w+' is missing in every row that clean keeps \(224 rows in\): set "
        r"data.target .* or label rows in annotate.relabel_file",
        lambda rows, target, task: csv(rows.assign(**{target: None})),
    ),
    Case(
        "single-class",
        "the target has one value in every row (a single class)",
        "clean",
        r"target '\w+' has one value \(.*\) in all \d+ labelled rows, so there is nothing to "
        r"learn",
        lambda rows, target, task: csv(rows.assign(**{target: rows[target].iloc[0]})),
    ),
    Case(
        "look-alike-classes",
        "one class in ten written in lower case with a trailing space (`adelie `)",
        "annotate",
        r"target 'species' has classes that differ only in case or spaces: '\w+', '\w+ ' "
        r"\(\d+ rows\) \(2 other group\(s\) too\): write each class one way in the data",
        look_alike_classes,
        task="classification",
    ),
    Case(
        "class-smaller-than-annotate-folds",
        "a class with fewer rows than annotate.cv_folds",
        "annotate",
        r"class 'Rare' of 'species' has 3 row\(s\), fewer than annotate.cv_folds=5 needs: "
        r"collect more rows of it, set annotate.cv_folds to 3 or less, or leave it out",
        small_class(3),
        task="classification",
    ),
    Case(
        "class-smaller-than-select-folds",
        "select.cv_folds larger than the smallest class",
        "select",
        r"class 'Rare' of 'species' has 6 row\(s\), fewer than select.cv_folds=10 needs",
        small_class(8),
        ["select.cv_folds=10"],
        task="classification",
    ),
    Case(
        "binary-only-metric",
        "`metric: roc_auc` (binary targets only) with three classes",
        "clean",
        r"metric 'roc_auc' needs a binary target but target 'species' has 3 classes: use "
        r"roc_auc_ovr, roc_auc_ovr_weighted, roc_auc_ovo, roc_auc_ovo_weighted",
        overrides=["metric=roc_auc"],
        task="classification",
    ),
    Case(
        "text-in-inferred-numeric",
        "40 values 'n/a?' in a numeric column, roles inferred",
        # The first stage that infers feature roles: annotate's judge, or preprocess.
        lambda task: "annotate" if task == "classification" else "preprocess",
        r"column 'bill_length_mm' looks numeric but \d+ of \d+ values are text \(e.g. 'n/a\?'\)"
        r": list those values in data.missing_values if they mean missing, or the column in "
        r"data.numeric",
        text_in("bill_length_mm", 40),
    ),
    Case(
        "text-in-declared-numeric",
        "the same, with the column listed in data.numeric",
        "clean",
        r"data.numeric column bill_length_mm: 40 value\(s\) that are not numbers read as "
        r"missing \(e.g. 'n/a\?'\)",
        text_in("bill_length_mm", 40),
        numeric_features,
        handled=True,
        report=("reports/clean.json", "coerced_to_missing.bill_length_mm", 40),
    ),
    Case(
        "class-named-na",
        "a class named `NA`, with data.missing_values empty (NA is a value)",
        "clean",
        r"column species: 44 value\(s\) 'NA' read as values, not as missing: list them in "
        r"data.missing_values if they mean missing",
        renamed("species", "Chinstrap", "NA"),
        ["data.missing_values=[]"],
        handled=True,
        report=("reports/clean.json", "missing_markers_kept.species", 44),
        task="classification",
    ),
    Case(
        "category-named-none",
        "a category named `None` (island), with data.missing_values empty",
        "clean",
        r"column island: \d+ value\(s\) 'None' read as values, not as missing",
        renamed("island", "Dream", "None"),
        ["data.missing_values=[]"],
        handled=True,
        report=("reports/clean.json", "missing_markers_kept.island", 80),
    ),
    Case(
        "na-text-in-numeric",
        "40 values `NA` in a numeric column, with data.missing_values empty",
        lambda task: "annotate" if task == "classification" else "preprocess",
        r"column 'bill_length_mm' looks numeric but \d+ of \d+ values are text \(e.g. 'NA'\): "
        r"list those values in data.missing_values if they mean missing",
        text_values("bill_length_mm", ["NA"] * 40),
        ["data.missing_values=[]"],
    ),
    Case(
        "na-text-listed",
        "the same, with `NA` in data.missing_values (as shipped)",
        "clean",
        r"missing values per column \(.*\): bill_length_mm 40, ",
        text_values("bill_length_mm", ["NA"] * 40),
        handled=True,
        report=("reports/clean.json", "missing_per_column.bill_length_mm", 40),
    ),
    Case(
        "infinity-in-feature",
        "`inf`, `-inf`, `Infinity`, `1e999` in a numeric feature",
        "clean",
        r"column bill_length_mm: 4 infinite value\(s\) \(inf or -inf\) read as missing",
        text_values("bill_length_mm", ["inf", "-inf", "Infinity", "1e999"]),
        handled=True,
        report=("reports/clean.json", "non_finite_to_missing.bill_length_mm", 4),
    ),
    Case(
        "infinity-in-target",
        "`inf` in a numeric target",
        "clean",
        r"target 'body_mass_g' has 3 infinite value\(s\) \(inf or -inf\): a target must be a "
        r"finite number",
        text_values("body_mass_g", ["inf", "-inf", "inf"]),
        task="regression",
    ),
    Case(
        "look-alike-categories",
        "an island written `Dream`, `dream ` and `DREAM`",
        "clean",
        r"column island: values that differ only in case or spaces \('Dream', 'dream ', "
        r"'DREAM'; 88 rows in all\) are separate categories",
        look_alike_island,
        handled=True,
        report=("reports/clean.json", "look_alike_values.island", 88),
    ),
    Case(
        "unseen-category",
        "a test row with a category training never saw",
        "evaluate",
        r"island: 1 test row\(s\) with categories unseen in training \(e.g. 'Atlantis'\)",
        unseen_island,
        handled=True,
        report=("reports/evaluate/metrics.json", "unseen_categories.island", 1),
    ),
    Case(
        "unset-data-config",
        "`-S data=custom` with its `???` left unset",
        COMPOSE,
        r"data.target must be set \(still '\?\?\?'\): e.g. `dvc exp run -S data.target=...`",
        overrides=["data=custom"],
    ),
    Case(
        "zero-test-size",
        "`-S preprocess.test_size=0`",
        COMPOSE,
        r"preprocess.test_size: Input should be greater than 0 \(got 0\)",
        overrides=["preprocess.test_size=0"],
    ),
    Case(
        "negative-test-size",
        "`-S preprocess.test_size=-0.2`",
        COMPOSE,
        r"preprocess.test_size: Input should be greater than 0 \(got -0.2\)",
        overrides=["preprocess.test_size=-0.2"],
    ),
    Case(
        "unknown-key",
        "`-S +train.max_row=5000` (a typo)",
        COMPOSE,
        r"train.max_row is not a setting: did you mean max_rows\? train has max_rows;",
        overrides=["+train.max_row=5000"],
    ),
    Case(
        "misspelt-hyperparameter",
        "`-S model=random_forest -S +model.n_estimator=50` (a typo)",
        COMPOSE,
        r"model.n_estimator is not a parameter of RandomForest\w+: did you mean n_estimators\?",
        overrides=["model=random_forest", "+model.n_estimator=50"],
    ),
    Case(
        "unknown-section",
        "`-S +trian.max_rows=5000` (a typo)",
        COMPOSE,
        r"trian is not a setting: did you mean train\? the top level has ",
        overrides=["+trian.max_rows=5000"],
    ),
    Case(
        "auto-with-hyperparameter",
        "`-S +model.max_iter=50` with `model` left at auto (select's winner)",
        COMPOSE,
        r"model: Value error, auto trains select's winner with its select.candidates "
        r"settings, so max_iter would be ignored: name the model in the same command",
        overrides=["+model.max_iter=50"],
    ),
]


def stage_of(case: Case, task: str) -> str:
    return case.stage(task) if callable(case.stage) else case.stage


@dataclass
class Seen:
    code: int
    line: str  # the error line, or the matching warning for a handled case
    stage: str  # where it stopped (COMPOSE, a stage name, or "end" when it ran through)
    stderr: str
    reports: dict = field(default_factory=dict)
    written: list[str] = field(default_factory=list)  # outputs of the stage that stopped


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def run_case(case: Case, work: Path, raw: pd.DataFrame, target: str, task: str) -> Seen:
    shutil.copytree(PROJECT / "conf", work / "conf")
    shutil.copytree(PROJECT / "data" / "annotations", work / "data" / "annotations")
    (work / SOURCE).mkdir(parents=True)
    with contextlib.chdir(work):
        (case.write or as_is)(raw.copy(), target, task)
        overrides = case.overrides(task) if callable(case.overrides) else case.overrides
        try:
            text = config_sync.compose(Path("conf"), [f"data.source={SOURCE}", *FAST, *overrides])
        except ConfigError as exc:
            return Seen(1, f"error: {exc}", COMPOSE, "")
        Path("params.yaml").write_text(text, encoding="utf-8")
        handler, root = Records(), logging.getLogger()
        level = root.level
        root.addHandler(handler)
        root.setLevel(logging.INFO)
        stderr = text_io.StringIO()
        try:
            with contextlib.redirect_stderr(stderr):
                code = main(["run"])
        finally:
            root.removeHandler(handler)
            root.setLevel(level)
        done = [
            r.stage
            for r in handler.records
            if r.getMessage().startswith("done ") and getattr(r, "stage", None) in STAGES
        ]
        stopped = "end" if len(done) == len(STAGES) else STAGES[len(done)]
        # A handled case's line: its warning, or the line that states the rule it follows.
        warnings = [r.getMessage() for r in handler.records if r.levelno == logging.WARNING]
        warnings += [r.getMessage() for r in handler.records if r.levelno == logging.INFO]
        errors = [line for line in stderr.getvalue().splitlines() if line.startswith("error: ")]
        line = (
            next((w for w in warnings if re.search(case.expect, w)), "")
            if case.handled
            else (errors[0] if errors else "")
        )
        reports = {}
        if case.report and Path(case.report[0]).exists():
            reports = json.loads(Path(case.report[0]).read_text(encoding="utf-8"))
        written = []
        if stopped in STAGES:
            written = [out for out in outputs_of(stopped) if Path(out).exists()]
        return Seen(code, line, stopped, stderr.getvalue(), reports, written)


def outputs_of(stage: str) -> list[str]:
    spec = dvc_deps.stages(PROJECT)[stage]
    return [
        next(iter(e)) if isinstance(e, dict) else e
        for e in spec.get("outs", []) + spec.get("metrics", [])
    ]


@pytest.fixture(scope="module")
def seen(task, params_raw, tmp_path_factory) -> dict[str, Seen]:
    """Every case of this project's task, run once (the table needs them all)."""
    raw_files = sorted((PROJECT / "data" / "raw").glob("*.csv"))
    if not raw_files:
        pytest.skip("data/raw/ has no batch in the workspace: run `dvc pull`")
    raw = pd.concat([pd.read_csv(p) for p in raw_files], ignore_index=True)
    target = params_raw["data"]["target"]
    results = {}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DVC_NO_ANALYTICS", "1")
        for case in CASES:
            if case.task in (None, task):
                work = tmp_path_factory.mktemp(case.id)
                results[case.id] = run_case(case, work, raw, target, task)
    return results


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_each_case_is_refused_in_one_line_or_handled_by_its_rule(case, seen, task):
    if case.id not in seen:
        pytest.skip(f"a {case.task} case")
    got = seen[case.id]
    assert re.search(case.expect, got.line), f"expected /{case.expect}/, saw: {got.line!r}"
    if case.handled:
        assert got.code == 0 and got.stage == "end", got.stderr
        path, key, value = case.report
        found = got.reports
        for part in key.split("."):
            found = found.get(part, {})
        assert found == value, f"{path}: {key} is {found!r}, not {value!r}"
        return
    assert got.code == 1
    assert got.stage == stage_of(case, task), f"stopped in {got.stage}, not {stage_of(case, task)}"
    assert "Traceback" not in got.stderr and got.stderr.count("error: ") <= 1
    assert not got.written, f"the failed stage wrote {got.written}"


def table(seen: dict[str, Seen], task: str) -> str:
    rows = [
        "# Bad input: what you see",
        "",
        "Generated by `UPDATE_DOCS=1 pytest tests/test_bad_input.py` from the cases that test",
        f"runs on the shipped penguins ({task}); the test fails when this file is stale.",
        "**Refused**: the stage stops with this one line and writes none of its outputs;",
        "fix what it names and rerun. **Handled**: a documented rule applies, the pipeline",
        "runs on, and a report counts it. A bad `dvc exp run -S` value is refused while",
        "conf/ is composed, before DVC writes params.yaml or runs anything. A value is",
        "missing when its cell is empty, when it is a null, or when data.missing_values lists",
        "it; `NA`, `None` and `null` are values otherwise (see",
        "[Missing values](data-sources.md#missing-values)).",
        "",
        "| Case | Caught in | Outcome | What you see |",
        "|---|---|---|---|",
    ]
    for case in CASES:
        if case.id not in seen:
            continue
        got = seen[case.id]
        outcome = f"handled: `{case.report[0]}` → `{case.report[1]}`" if case.handled else "refused"
        line = got.line.replace("|", "\\|")
        # Double backticks: a message may quote a command in single ones.
        rows.append(f"| {case.what} | {stage_of(case, task)} | {outcome} | `` {line} `` |")
    return "\n".join(rows) + "\n"


def test_the_bad_input_table_in_docs_is_current(seen, task):
    expected = table(seen, task)
    if os.environ.get("UPDATE_DOCS"):
        DOC.write_text(expected, encoding="utf-8")
    current = DOC.read_text(encoding="utf-8") if DOC.exists() else ""
    assert current == expected, (
        "docs/bad-input.md is stale: UPDATE_DOCS=1 pytest tests/test_bad_input.py"
    )
