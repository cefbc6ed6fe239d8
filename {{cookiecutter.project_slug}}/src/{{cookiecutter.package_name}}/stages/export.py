#% if cookiecutter.onnx == "yes"
"""Export: the trained pipeline as a skops file that provably round-trips, as ONNX that
provably agrees with it (onnx_convert.parity), plus metadata, a model card, and last the
manifest that says these files are one export (export/manifest.py)."""

#% else
"""Export: the trained pipeline as a skops file that provably round-trips, plus metadata, a
model card, and last the manifest that says these files are one export
(export/manifest.py)."""

#% endif
from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sklearn
from sklearn.pipeline import Pipeline

from .. import __version__
from ..core import io, model_catalog, paths
from ..core.errors import DataError
from ..core.params import AUTO, StageSettings, Task, TrainParams, load
#% if cookiecutter.onnx == "yes"
from ..export import manifest, model_card, onnx_convert
#% else
from ..export import manifest, model_card
#% endif
from ..modeling import derivation, models
from ..tables import row_budget, schema

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Settings(StageSettings):
    """What model.json records of the config, and train.max_rows (training_rows); main()
    also reads the model's settings (models.chosen_config)."""

    task: Task
    metric: str
    seed: int
    train: TrainParams


def check_round_trip(model: Pipeline, path: Path, rows: pd.DataFrame, config: dict) -> None:
    """The saved file must load with the reviewed types (io's and its model file's,
    `config`) and predict exactly as the model does."""
    loaded = models.load(path, config)
    if not np.array_equal(loaded.predict(rows), model.predict(rows)):
        raise DataError(f"{path} predicts differently after a save/load round trip")


#% if cookiecutter.onnx == "yes"
def onnx_model(
    model: Pipeline, rows: pd.DataFrame, roles: schema.Roles, config: dict
) -> tuple[bytes | None, dict]:
    """(the ONNX model, or None when skl2onnx cannot convert it faithfully, checked
    against `model` on `rows`; what model.json records of it). `config`: its model file,
    whose `_onnx_` facts export finds when they are left out."""
    facts = model_catalog.onnx_facts(config)
    try:
        onnx_bytes, parity, float32 = onnx_convert.convert_checked(model, rows, roles, facts)
    except onnx_convert.ConverterMissing as exc:
        reason = f"no faithful ONNX converter for this model ({exc})"
        log.warning("ONNX skipped: %s", reason)
        return None, {"status": "skipped", "reason": reason}
    if "float32" not in facts:
        log.info(
            "ONNX: the graph feeds the model %s (found by export; `%s: {float32: %s}` in "
            "conf/model/%s.yaml saves the search)",
            "float32" if float32 else "float64",
            model_catalog.ONNX,
            str(float32).lower(),
            config["name"],
        )
    return onnx_bytes, {"status": "exported", "opset": onnx_convert.OPSET, "parity": parity}


#% endif
def metadata(
    metrics: dict, features: dict, hashes: dict, *, config: dict[str, Any], settings: Settings
) -> dict:
    """What a reader of the model file needs: what it is (the model `config`), what it
    scored (`metrics`), on which data (`hashes`, `features`: features.json)."""
    return {
        "model": config["name"],
        "hyperparameters": model_catalog.hyperparameters(config),
        "task": settings.task,
        "metric": settings.metric,
        "seed": settings.seed,
        "metrics": metrics,
        "data": hashes,
        "features": features,
        "package_version": __version__,
        "scikit_learn_version": sklearn.__version__,
        "format": "skops",
    }


def select_ranking(selection: dict | None, model_setting: str) -> dict | None:
    """What model.json records of select's ranking (None without reports/select.json): its
    first, the metric, each candidate's cross-validated score, and how the trained model
    was chosen, so that the card says when select ranked another model first."""
    if selection is None:
        return None
    return {
        "first": selection["winner"],
        "metric": selection["metric"],
        "cv_scores": {name: c["mean"] for name, c in selection["candidates"].items()},
        "chosen_by": "select" if model_setting == AUTO else f"model={model_setting}",
    }


def training_rows(target: str, *, settings: Settings) -> dict:
    """How many training rows the model was fitted on, of how many: train's sample, chosen
    again (from the `target` column alone, as train chose it) when train.max_rows cut it."""
    budget = row_budget.train_budget(settings.train, task=settings.task, seed=settings.seed)
    chosen, available = row_budget.positions(paths.TRAIN, target, budget)
    return {"fitted": available if chosen is None else len(chosen), "available": available}


def data_hashes() -> dict[str, str]:
    """The md5 of each table the model came from, as DVC would hash them."""
    tables = (
        ("ingested_md5", paths.INGESTED),
        ("train_md5", paths.TRAIN),
        ("test_md5", paths.TEST),
    )
    return {name: io.file_md5(path) for name, path in tables}


def write_model(model: Pipeline, rows: pd.DataFrame, config: dict) -> None:
    """models/model.skops, written only once a save/load round trip of it predicts `rows`
    exactly as `model` does."""
    paths.MODEL.parent.mkdir(parents=True, exist_ok=True)
    # Named like io's temporary files, so that git and DVC ignore it if a kill leaves it.
    with tempfile.TemporaryDirectory(
        dir=paths.MODEL.parent, prefix=".export.", suffix=".tmp"
    ) as tmp:
        candidate = Path(tmp) / paths.MODEL.name
        models.save(candidate, model, config)
        check_round_trip(model, candidate, rows, config)
        io.write_bytes(paths.MODEL, candidate.read_bytes())


def check_derived(features: dict, rows: pd.DataFrame, roles: schema.Roles) -> None:
    """The derived columns of the test rows, computed again from their raw features as the
    server computes them from a request, must be the ones the model was tested on: so the
    ONNX graph, which takes them as inputs, and the skops pipeline are fed as in training."""
    pairs, names = derivation.recorded(features)
    raw = derivation.inputs(roles, names)
    derivation.refuse_changed(features)
    derivation.refuse_different(rows, rows[raw.features], pairs, roles)


#% if cookiecutter.onnx == "yes"
def write_onnx(onnx_bytes: bytes | None, reason: str | None) -> None:
    """models/onnx/ anew: model.onnx, or SKIPPED.md saying why there is none."""
    io.remove_folder(paths.ONNX_DIR)
    if onnx_bytes is None:
        io.write_text(paths.ONNX_DIR / "SKIPPED.md", f"# No ONNX model\n\n{reason}.\n")
    else:
        io.write_bytes(paths.ONNX_DIR / "model.onnx", onnx_bytes)


#% endif
def main() -> None:
    params = load()
    features = io.read_json(paths.FEATURES)
    roles = schema.roles_from_dict(features["roles"])
    selection = models.read_selection()
    config = models.chosen_config(params, selection)
    model = models.load(paths.TRAINED_MODEL, config)
    rows = schema.model_frame(io.read_parquet(paths.TEST, columns=roles.features), roles)
    check_derived(features, rows, roles)
    write_model(model, rows, config)
    metrics = io.read_json(paths.EVALUATE_METRICS)
    settings = Settings.of(params)
    meta = metadata(metrics, features, data_hashes(), config=config, settings=settings)
    meta["training_rows"] = training_rows(roles.target, settings=settings)
    meta["select"] = select_ranking(selection, params.model["name"])
#% if cookiecutter.onnx == "yes"
    onnx_bytes, meta["onnx"] = onnx_model(model, rows, roles, config)
    write_onnx(onnx_bytes, meta["onnx"].get("reason"))
#% endif
    io.write_json(paths.MODEL_METADATA, meta)
    io.write_text(paths.MODEL_CARD, model_card.render(meta))
    # Last: until it is written, the files above are not vouched for, and no reader of
    # the model (serve, monitor) takes a set that an interruption left mixed.
    io.write_json(paths.MODEL_MANIFEST, manifest.record())
    log.info(
#% if cookiecutter.onnx == "yes"
        "exported %s to %s (round trip checked on %d rows), ONNX %s",
#% else
        "exported %s to %s (round trip checked on %d rows)",
#% endif
        config["name"],
        paths.MODEL,
        len(rows),
#% if cookiecutter.onnx == "yes"
        meta["onnx"]["status"],
#% endif
    )
