"""Reading and writing at the edges of the pipeline.

Every write goes to a temporary file in the target folder and is renamed into
place, so an interrupted stage never leaves a half-written output behind, and a
write that fails (full disk, quota, read-only or locked folder) leaves the
previous file as it was and says so in one line naming the file.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import glob
import hashlib
import io
import json
import os
import secrets
import shutil
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .errors import DataError, StorageError, first_line

# Types that skops does not trust by default and that this project's files are made of,
# besides the models' own (each conf/model/<name>.yaml's _skops_trusted_). Reviewed by
# hand: a file asking for anything else is refused (load_model).
TRUSTED_TYPES = frozenset(
    {
        "numpy.dtype",
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


# Errors about where a file goes, not what is in it: what each means, and the fix.
_MOVE = "or move the project or its DVC cache (`dvc cache dir PATH`) to a disk with room"
_WRITABLE = "make {folder} writable by this user (chown or chmod)"
_STORAGE_ERRORS = {
    errno.ENOSPC: ("no space left on device", f"free space on that disk, {_MOVE}"),
    errno.EDQUOT: ("disk quota exceeded", f"free space within your quota, {_MOVE}"),
    errno.EFBIG: (
        "file too large",
        "raise the file size limit (`ulimit -f`), or move the project to a file system "
        "without a per-file limit (FAT32 stops at 4 GB)",
    ),
    errno.EROFS: ("read-only file system", "remount it read-write, or work in a writable copy"),
    errno.EACCES: ("permission denied", _WRITABLE),
    errno.EPERM: ("operation not permitted", _WRITABLE),
}
# The errors above for which the size needed and the space free help the reader.
_SPACE_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}


def _size(n: float) -> str:
    """512 B, 64 KB, 3.2 MB, 1.5 GB."""
    for unit in ("B", "KB"):
        if n < 1024:
            return f"{n:.0f} {unit}"
        n /= 1024
    return f"{n:.1f} MB" if n < 1024 else f"{n / 1024:.1f} GB"


def _storage_error(
    exc: OSError, path: Path, needs: int | None = None, written: int = 0
) -> StorageError | None:
    """The one-line StorageError for `exc`, met writing `path`; None if `exc` is another
    kind of OSError. `needs` is the file's size when known, `written` how much of it was
    written before the failure."""
    if exc.errno not in _STORAGE_ERRORS:
        return None
    what, fix = _STORAGE_ERRORS[exc.errno]
    folder = Path(path).parent
    detail = ""
    if exc.errno in _SPACE_ERRORS:
        existing = next(p for p in (folder, *folder.parents) if p.exists())
        need = _size(needs) if needs is not None else f"more than {_size(written)}"
        free = f"{_size(shutil.disk_usage(existing).free)} free in {existing}"
        detail = f" (needs {need}, {free})" if needs is not None or written else f" ({free})"
    return StorageError(f"{what} writing {path}{detail}: {fix.format(folder=folder)}")


@contextlib.contextmanager
def _storage_errors(path: Path) -> Iterator[None]:
    """For writes that cannot go through _atomic_write (a library writing files itself):
    a full disk, quota, read-only or locked folder becomes one line naming `path`."""
    try:
        yield
    except OSError as exc:
        error = _storage_error(exc, path)
        if error is None:
            raise
        raise error from exc


def _atomic_write(path: Path, write: Callable[[Path], None], needs: int | None = None) -> None:
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _remove_stale_temps(path)
        # Named before it exists (mkstemp names it only after creating it): a Ctrl-C that
        # lands between creating the file and naming it would leave it behind.
        tmp = path.parent / f".{path.name}.{secrets.token_hex(8)}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            # Held until the rename: tells _remove_stale_temps this writer is alive.
            with contextlib.suppress(OSError):
                fcntl.flock(fd, fcntl.LOCK_EX)
            write(tmp)
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)
        finally:
            os.close(fd)
    except BaseException as exc:
        # FileExistsError: the name is another writer's (64 random bits: never, in practice).
        ours = tmp is not None and not isinstance(exc, FileExistsError)
        written = tmp.stat().st_size if ours and tmp.exists() else 0
        if ours:
            tmp.unlink(missing_ok=True)
        error = _storage_error(exc, path, needs, written) if isinstance(exc, OSError) else None
        if error is None:
            raise
        raise error from exc


@contextlib.contextmanager
def atomic_dir(path: Path) -> Iterator[Path]:
    """A folder filled in a temporary sibling and swapped in whole, for a library that
    writes its files itself (dvclive). The old folder stays until the new one is complete;
    between the two renames `path` is briefly absent, never partial."""
    path = Path(path)
    with _storage_errors(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"))
        try:
            os.chmod(tmp, 0o755)  # mkdtemp's 0o700 would hide the reports from other users
            yield tmp
            old = tmp.with_name(f"{tmp.name[: -len('.tmp')]}.old.tmp")
            if path.exists():
                os.replace(path, old)
            os.replace(tmp, path)
            if old.is_dir():
                shutil.rmtree(old, ignore_errors=True)
            else:  # a file the local engine wrote where the folder now goes
                old.unlink(missing_ok=True)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


def _remove_stale_temps(path: Path) -> None:
    """Delete the temporary files of earlier writes of `path` that were killed before their
    rename (SIGKILL, the OOM killer, a power cut): each can be as large as the file was to
    be. A live writer holds a lock on its temporary file and the kernel drops it when the
    writer dies, so only abandoned ones are taken."""
    for stale in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        try:
            fd = os.open(stale, os.O_RDONLY)
        except OSError:  # removed meanwhile
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            stale.unlink()
        except OSError:  # a live writer's, or a folder, or no locks on this file system
            pass
        finally:
            os.close(fd)


def write_bytes(path: Path, data: bytes) -> None:
    _atomic_write(path, lambda tmp: tmp.write_bytes(data), needs=len(data))


def write_text(path: Path, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def json_text(obj: Any, sort_keys: bool = True) -> str:
    """Sorted keys (unless the order is the message) and a trailing newline: stable diffs
    and byte-identical reruns."""
    return json.dumps(obj, indent=2, sort_keys=sort_keys, allow_nan=False) + "\n"


def write_json(path: Path, obj: Any) -> None:
    write_text(path, json_text(obj))


def write_live_dir(
    path: Path, summary: dict, files: dict[str, str], confusion: tuple | None = None
) -> None:
    """Replace folder `path` whole with dvclive's metrics.json of `summary` (and its
    confusion matrix plot of (y_true, y_pred)), plus `files` (name under `path` -> text).
    dvclive writes in place, so it fills a temporary folder, and clears its plots/ first:
    the other files go in after it."""
    from dvclive import Live  # here, not at the top: only evaluate writes with it

    with atomic_dir(path) as tmp:
        with Live(str(tmp), dvcyaml=False, save_dvc_exp=False, report=None) as live:
            for name, value in summary.items():
                live.summary[name] = value
            if confusion is not None:
                live.log_sklearn_plot("confusion_matrix", *confusion)
        for name, text in files.items():
            write_text(tmp / name, text)


def remove_folder(path: Path) -> None:
    """Remove a folder at `path` (a dask engine's Parquet parts) before a file goes there."""
    if Path(path).is_dir():
        shutil.rmtree(path)


def write_parquet(path: Path, df: pd.DataFrame) -> None:
    # Called with the table built: a dask engine's folder at path goes only now.
    remove_folder(path)
    _atomic_write(path, lambda tmp: df.to_parquet(tmp, index=False, engine="pyarrow"))


def write_csv(path: Path, df: pd.DataFrame) -> None:
    write_text(path, df.to_csv(index=False, lineterminator="\n"))


def read_parquet(path: Path, columns: list[str] | None = None) -> pd.DataFrame:
    """The table at path, or only `columns` of it: Parquet stores each column apart, so
    the others are never read or decoded."""
    if not Path(path).exists():
        raise DataError(f"{path} does not exist: run `dvc repro` to build it")
    import pyarrow as pa

    try:
        return pd.read_parquet(path, columns=columns, **PARQUET_READ)
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataError(damaged(path, exc)) from None


def damaged(path: Path, exc: Exception) -> str:
    """A pipeline file that exists but cannot be read: cut short, or not what it claims."""
    return (
        f"{path} is damaged ({first_line(exc)}): restore it with `dvc checkout {path}`, or "
        "rebuild it with `dvc repro --force` on the stage that writes it"
    )


def parquet_columns(path: Path, wanted: set) -> list[str]:
    """The columns of the Parquet file (or the dask engine's folder of parts) at path that
    are in `wanted`, in file order."""
    import pyarrow.dataset as ds

    if not Path(path).exists():
        raise DataError(f"{path} does not exist: run `dvc repro` to build it")
    # A dataset: a file, or the dask engine's folder of parts (pq.read_schema takes a file).
    return [name for name in ds.dataset(path, format="parquet").schema.names if name in wanted]


def read_json(path: Path) -> Any:
    if not Path(path).exists():
        raise DataError(f"{path} does not exist: run `dvc repro` to build it")
    return json.loads(Path(path).read_text(encoding="utf-8"))


def file_md5(path: Path) -> str:
    """MD5 of a file's bytes; of a folder (the dask engine's Parquet parts), of each file's
    name and bytes in name order, so a rerun writing the same parts gives the same hash."""
    digest = hashlib.md5()
    files = sorted(p for p in Path(path).rglob("*") if p.is_file()) if Path(path).is_dir() else []
    for part in files or [Path(path)]:
        if files:
            digest.update(part.relative_to(path).as_posix().encode() + b"\0")
        with open(part, "rb") as handle:
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


def _refuse_untrusted(what: Path, untrusted: list[str], model_types: frozenset[str], fix: str):
    """DataError naming the types of `what` outside TRUSTED_TYPES and `model_types`."""
    refused = sorted(set(untrusted) - TRUSTED_TYPES - model_types)
    if refused:
        raise DataError(
            f"{what} holds types outside the reviewed list: {', '.join(refused)}; review "
            f"them and {fix} only if you trust them"
        )


def save_model(
    path: Path,
    model: Any,
    model_types: frozenset[str] | None = None,
    fix: str = "add them to TRUSTED_TYPES in io.py",
) -> None:
    """Save with skops (no pickle), byte-identical for an identical model. With
    `model_types`, a model that load_model would refuse is refused before it is written."""
    import skops.io as sio  # here, not at the top: data stages need no scikit-learn

    data = sio.dumps(model)
    if model_types is not None:
        _refuse_untrusted(path, sio.get_untrusted_types(data=data), model_types, fix)
    write_bytes(path, _canonical_skops(data))


def load_model(
    path: Path,
    model_types: frozenset[str] = frozenset(),
    fix: str = "add them to TRUSTED_TYPES in io.py",
) -> Any:
    """Load a skops file, trusting only the reviewed TRUSTED_TYPES and `model_types`, the
    types the model file of the model it holds lists (models.load passes them)."""
    if not Path(path).exists():
        raise DataError(f"{path} does not exist: run `dvc repro` to build it")
    import skops.io as sio

    untrusted = sio.get_untrusted_types(file=path)
    _refuse_untrusted(path, untrusted, model_types, fix)
    return sio.load(path, trusted=list(untrusted))
