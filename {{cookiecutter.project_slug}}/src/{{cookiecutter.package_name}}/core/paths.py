"""Every file the pipeline reads or writes, named once. dvc.yaml lists the same paths."""

import re
from pathlib import Path

# The name of a batch (add-batch) or of a fetched snapshot (data.fetch): the stem of a file
# in a data folder, the same on every OS and never a path.
FILE_STEM = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")

PARAMS = Path("params.yaml")
# The model files (core/model_catalog.py): serving reads the reviewed skops types there.
MODEL_CONF = Path("conf/model")
#% if cookiecutter.serving == "yes"
# Settings of `serve` and `monitor`: no stage reads them, so they stay out of params.yaml
# (params.ServiceParams says why).
SERVICE = Path("service.yaml")

#% endif
#% if cookiecutter.remote_sources == "yes"
# Default folder of batch files (data.source), and where `fetch` snapshots remote sources.
RAW = Path("data/raw")
FETCHED = Path("data/fetched")

#% else
# Default folder of batch files (data.source).
RAW = Path("data/raw")

#% endif
INGESTED = Path("data/interim/ingested.parquet")
CLEANED = Path("data/interim/cleaned.parquet")
UNLABELLED = Path("data/interim/unlabelled.parquet")
ANNOTATED = Path("data/interim/annotated.parquet")

TRAIN = Path("data/processed/train.parquet")
TEST = Path("data/processed/test.parquet")
PREPROCESSOR = Path("data/processed/preprocessor.skops")
FEATURES = Path("data/processed/features.json")

TRAINED_MODEL = Path("models/trained.skops")
MODEL = Path("models/model.skops")
MODEL_METADATA = Path("models/model.json")
MODEL_CARD = Path("models/model_card.md")
# Written last by export: the size and md5 of each file above (and of models/onnx/'s), so
# that a reader can tell one export from a mixture (export/manifest.py).
MODEL_MANIFEST = Path("models/manifest.json")
#% if cookiecutter.onnx == "yes"
# model.onnx, or SKIPPED.md when the model has no ONNX converter.
ONNX_DIR = Path("models/onnx")

#% endif
REPORTS = Path("reports")
CLEAN_REPORT = REPORTS / "clean.json"
ANNOTATE_REPORT = REPORTS / "annotate.json"
LABEL_ISSUES = REPORTS / "label_issues.csv"
PREPROCESS_REPORT = REPORTS / "preprocess.json"
SELECT_REPORT = REPORTS / "select.json"
SELECT_RANKING = REPORTS / "select_ranking.csv"
EVALUATE_DIR = REPORTS / "evaluate"
HEADLINE = EVALUATE_DIR / "headline.json"
# dvclive's summary: the full diagnosis (per class, per group, recent; quality/diagnosis.py).
EVALUATE_METRICS = EVALUATE_DIR / "metrics.json"
