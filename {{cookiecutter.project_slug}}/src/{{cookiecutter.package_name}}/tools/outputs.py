"""The pipeline's outputs as the notebooks read them: the workspace's files, or those of a
git revision (`rev`: a commit, tag or branch) through dvc.api, which finds a file in git
or, for an output DVC caches, in the DVC cache or remote. Every path is core/paths.py's,
so a notebook names what it reads (paths.LABEL_ISSUES), never where it lies, and the same
notebook shows any revision.
"""

from __future__ import annotations

import contextlib
import functools
import io as bytes_io
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import pandas as pd
import yaml

from ..core import io, paths
from ..core.errors import DataError, first_line
from ..core.params import Params, parse
from ..modeling import models
from ..quality import diagnosis
from ..tables import schema


def project_root(start: Path | None = None) -> Path:
    """The project holding `start` (the current folder): the nearest folder with dvc.yaml.
    Jupyter starts a notebook's kernel in the notebook's folder; paths are the project's."""
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "dvc.yaml").is_file():
            return folder
    raise DataError(f"no dvc.yaml in {here} or above: open the notebook inside the project")


def enter_project(start: Path | None = None) -> Path:
    """Make the project folder the current one (paths.py's paths are relative to it)."""
    root = project_root(start)
    os.chdir(root)
    return root


@contextlib.contextmanager
def opened(path: Path, rev: str | None = None) -> Iterator[BinaryIO]:
    """`path` opened for reading bytes: the workspace's file, or revision `rev`'s."""
    with contextlib.ExitStack() as stack:
        if rev is None:
            if not Path(path).exists():
                raise DataError(f"{path} does not exist: run `dvc repro` to build it")
            handle = stack.enter_context(open(path, "rb"))
        else:
            from dvc.exceptions import DvcException
            from scmrepo.exceptions import SCMError

            try:
                handle = stack.enter_context(revision(rev).open(Path(path).as_posix(), "rb"))
            except (DvcException, SCMError, FileNotFoundError) as exc:
                raise DataError(
                    f"{path} at revision {rev!r} cannot be read ({first_line(exc)}): check the "
                    "revision (`git log --oneline`), and `dvc pull` if DVC's cache lacks it"
                ) from None
        yield handle


def revision(rev: str):
    """DVC's file system of the project at `rev`: its git files, and its DVC outputs from
    the cache. One per commit (a notebook reads several files of one revision: building it
    is most of a read's second), looked up again each call, as a branch moves."""
    from dvc.scm import SCM

    return _revision(str(Path.cwd()), SCM(".").resolve_rev(rev))


@functools.lru_cache(maxsize=4)
def _revision(root: str, commit: str):
    from dvc.api import DVCFileSystem

    return DVCFileSystem(root, rev=commit)


def read_bytes(path: Path, rev: str | None = None) -> bytes:
    with opened(path, rev) as handle:
        return handle.read()


def read_json(path: Path, rev: str | None = None) -> Any:
    return io.read_json(path) if rev is None else json.loads(read_bytes(path, rev))


def read_csv(path: Path, rev: str | None = None) -> pd.DataFrame:
    return pd.read_csv(bytes_io.BytesIO(read_bytes(path, rev)))


def read_parquet(path: Path, rev: str | None = None, columns: list[str] | None = None):
    """A table; the workspace's is read by columns, a revision's whole from its bytes."""
    if rev is None:
        return io.read_parquet(path, columns=columns)
    return pd.read_parquet(bytes_io.BytesIO(read_bytes(path, rev)), columns=columns)


def params(rev: str | None = None) -> Params:
    """params.yaml of the workspace or of `rev`, checked as the stages check it."""
    raw = yaml.safe_load(read_bytes(paths.PARAMS, rev)) or {}
    return parse(raw, f"{paths.PARAMS} at {rev}" if rev else str(paths.PARAMS))


def trained_model(rev: str | None = None) -> tuple[Any, dict[str, Any]]:
    """(the model train fitted, its conf/model/ mapping), trusting only what that
    revision's model file lists, as evaluate loads it."""
    config = models.chosen_config(params(rev), read_json(paths.SELECT_REPORT, rev))
    if rev is None:
        return models.load(paths.TRAINED_MODEL, config), config
    with tempfile.TemporaryDirectory() as folder:
        copy = Path(folder, paths.TRAINED_MODEL.name)
        copy.write_bytes(read_bytes(paths.TRAINED_MODEL, rev))
        return models.load(copy, config), config


def predictions(rev: str | None = None) -> pd.DataFrame:
    """The test split with the trained model's `predicted` value per row and `recent`: whether
    the row is in evaluate's recent slice (data.time's latest evaluate.recent_fraction)."""
    settings = params(rev)
    model, _ = trained_model(rev)
    roles = schema.roles_from_dict(read_json(paths.FEATURES, rev)["roles"])
    test = read_parquet(paths.TEST, rev)
    predicted = model.predict(schema.model_frame(test, roles))
    recent = np.zeros(len(test), dtype=bool)
    time = settings.data.time
    if time and time in test.columns:
        recent, _ = diagnosis.recent_mask(test[time], settings.evaluate.recent_fraction)
    return test.assign(predicted=predicted, recent=recent)
