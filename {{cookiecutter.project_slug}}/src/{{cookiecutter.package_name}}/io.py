"""Reading and writing at the edges of the pipeline.

Every write goes to a temporary file in the target folder and is renamed into
place, so an interrupted stage never leaves a half-written output behind.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .errors import DataError

# Types that skops does not trust by default and that this project's models are
# made of. Reviewed by hand: a model file asking for anything else is refused.
TRUSTED_TYPES = frozenset(
    {
        "numpy.dtype",
        "sklearn.tree._tree.Tree",
        "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
        "sklearn._loss.link.IdentityLink",
        "sklearn._loss.link.LogitLink",
        "sklearn._loss.link.MultinomialLogit",
        "sklearn._loss.loss.HalfBinomialLoss",
        "sklearn._loss.loss.HalfMultinomialLoss",
        "sklearn._loss.loss.HalfSquaredError",
        # The seeded folds a target encoder cross-fits with (features.build_transformer).
        "sklearn.model_selection._split.KFold",
        "sklearn.model_selection._split.StratifiedKFold",
    }
)

# pyarrow, without pre_buffer: buffering coalesces reads for object stores, but on a local
# disk it holds whole row groups of every column at once (a 1e7-row table read 1.2 GB
# larger and slower with it).
PARQUET_READ = {"engine": "pyarrow", "pre_buffer": False}

# Zip entries carry this timestamp instead of "now", so equal models give equal bytes.
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


def _atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_bytes(path: Path, data: bytes) -> None:
    _atomic_write(path, lambda tmp: tmp.write_bytes(data))


def write_text(path: Path, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def write_json(path: Path, obj: Any) -> None:
    """Sorted keys and a trailing newline: stable diffs and byte-identical reruns."""
    write_text(path, json.dumps(obj, indent=2, sort_keys=True, allow_nan=False) + "\n")


def write_parquet(path: Path, df: pd.DataFrame) -> None:
    _atomic_write(path, lambda tmp: df.to_parquet(tmp, index=False, engine="pyarrow"))


def write_csv(path: Path, df: pd.DataFrame) -> None:
    write_text(path, df.to_csv(index=False, lineterminator="\n"))


def read_parquet(path: Path, columns: list[str] | None = None) -> pd.DataFrame:
    """The table at path, or only `columns` of it: Parquet stores each column apart, so
    the others are never read or decoded."""
    if not Path(path).exists():
        raise DataError(f"{path} does not exist: run `dvc repro` to build it")
    return pd.read_parquet(path, columns=columns, **PARQUET_READ)


def parquet_columns(path: Path, wanted: set) -> list[str]:
    """The columns of the Parquet file at path that are in `wanted`, in file order."""
    import pyarrow.parquet as pq

    if not Path(path).exists():
        raise DataError(f"{path} does not exist: run `dvc repro` to build it")
    return [name for name in pq.read_schema(path).names if name in wanted]


def read_json(path: Path) -> Any:
    if not Path(path).exists():
        raise DataError(f"{path} does not exist: run `dvc repro` to build it")
    return json.loads(Path(path).read_text(encoding="utf-8"))


def file_md5(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _canonical_skops(raw: bytes) -> bytes:
    """Rewrite a skops archive so that it depends only on the model.

    skops names array members and memo ids after Python object ids and stamps
    zip entries with the current time; both change from run to run. Ids are
    renumbered in order of first appearance (shared references stay shared).
    """
    source = zipfile.ZipFile(io.BytesIO(raw))
    schema = json.loads(source.read("schema.json"))
    ids: dict[Any, int] = {}
    files: dict[str, str] = {}

    def renumber(node: Any) -> Any:
        if isinstance(node, dict):
            out = {}
            for key, value in node.items():
                if key == "__id__":
                    out[key] = ids.setdefault(value, len(ids) + 1)
                elif key == "file" and isinstance(value, str) and value in source.namelist():
                    out[key] = files.setdefault(value, f"{len(files) + 1}{Path(value).suffix}")
                else:
                    out[key] = renumber(value)
            return out
        if isinstance(node, list):
            return [renumber(item) for item in node]
        return node

    entries = {"schema.json": json.dumps(renumber(schema), indent=2).encode("utf-8")}
    for old, new in files.items():
        entries[new] = _zero_padding(source.read(old)) if old.endswith(".npy") else source.read(old)
    if set(source.namelist()) - set(files) - {"schema.json"}:
        raise RuntimeError("unexpected members in a skops archive; update _canonical_skops")

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as target:
        for name in sorted(entries):
            info = zipfile.ZipInfo(name, date_time=_ZIP_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3
            info.external_attr = 0o644 << 16
            target.writestr(info, entries[name], compresslevel=6)
    return buffer.getvalue()


def _zero_padding(npy: bytes) -> bytes:
    """Rewrite a structured array with zeroed padding bytes.

    scikit-learn's tree node arrays are structs with alignment padding that holds
    whatever was in memory; copying field by field into zeros makes it deterministic.
    """
    array = np.load(io.BytesIO(npy), allow_pickle=False)
    if array.dtype.names is None:
        return npy
    clean = np.zeros(array.shape, dtype=array.dtype)
    for field in array.dtype.names:
        clean[field] = array[field]
    buffer = io.BytesIO()
    np.save(buffer, clean, allow_pickle=False)
    return buffer.getvalue()


def save_model(path: Path, model: Any) -> None:
    """Save with skops (no pickle), byte-identical for an identical model."""
    import skops.io as sio  # here, not at the top: data stages need no scikit-learn

    write_bytes(path, _canonical_skops(sio.dumps(model)))


def load_model(path: Path) -> Any:
    """Load a skops file, trusting only the reviewed TRUSTED_TYPES."""
    if not Path(path).exists():
        raise DataError(f"{path} does not exist: run `dvc repro` to build it")
    import skops.io as sio

    untrusted = sio.get_untrusted_types(file=path)
    refused = sorted(set(untrusted) - TRUSTED_TYPES)
    if refused:
        raise DataError(
            f"{path} asks to load types outside the reviewed list: {', '.join(refused)}; "
            "review them and add to TRUSTED_TYPES in io.py only if you trust the file"
        )
    return sio.load(path, trusted=list(untrusted))
