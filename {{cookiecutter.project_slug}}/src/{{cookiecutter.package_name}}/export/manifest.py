"""models/manifest.json: which files make one exported model.

export writes its files, then last this manifest: each file's path, size and md5 (the
hash dvc.lock shows for it). A reader checks the set it is about to use against it, on
the very bytes it will use: `serve` (the workspace's files, or a GTO version's from git
and the DVC cache), `monitor`, and any later gate that promotes a model (a `decide`
command would call check_workspace). An export cut short after writing models/model.skops
leaves the old manifest (or none: `dvc repro` deletes a stage's outputs before running
it), so the mixture is refused in one line instead of served. Hashing needs no scikit-learn: a
check costs one md5 pass over the bytes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path, PurePosixPath

from ..core import io, paths
from ..core.errors import DataError

MANIFEST = paths.MODEL_MANIFEST.as_posix()
MODEL = paths.MODEL.as_posix()
METADATA = paths.MODEL_METADATA.as_posix()
# What to do when the workspace's files are not one export.
FIX = (
    "run `dvc repro export` to export again, or `git checkout -- models && dvc checkout "
    "--force export` to get back the committed set"
)


def exported(root: Path) -> list[str]:
    """export's files present in `root`, the manifest aside: paths as dvc.yaml names them."""
    names = [paths.MODEL, paths.MODEL_METADATA, paths.MODEL_CARD]
#% if cookiecutter.onnx == "yes"
    folder = root / paths.ONNX_DIR
    # Not the temporary file of a write that was killed (io's `.<name>.*.tmp`, ignored by
    # git and DVC too): it is no part of any export.
    names += [
        p.relative_to(root)
        for p in sorted(folder.rglob("*"))
        if not (p.name.startswith(".") and p.name.endswith(".tmp"))
    ]
#% endif
    return sorted(n.as_posix() for n in names if (root / n).is_file())


def entry(data: bytes) -> dict:
    return {"bytes": len(data), "md5": hashlib.md5(data).hexdigest()}


def record(root: Path = Path(".")) -> dict:
    """The manifest of export's files in `root` as they are on disk (export's last write):
    each read in chunks by io.file_md5, as a model file may be hundreds of megabytes."""
    files = {}
    for name in exported(root):
        path = root / name
        files[name] = {"bytes": path.stat().st_size, "md5": io.file_md5(path)}
    return {"files": files}


def _is_entry(name: object, value: object) -> bool:
    parts = PurePosixPath(str(name)).parts
    return (
        parts[:1] == ("models",)
        and ".." not in parts
        and isinstance(value, dict)
        and isinstance(value.get("md5"), str)
        and isinstance(value.get("bytes"), int)
    )


def parse(text: bytes, where: str) -> dict[str, dict]:
    """The files a manifest records (path -> its bytes and md5); `where` names it in the
    refusal when it is not a manifest as export writes it."""
    try:
        files = json.loads(text)["files"]
        valid = isinstance(files, dict) and all(_is_entry(k, v) for k, v in files.items())
    except (ValueError, TypeError, KeyError):
        valid = False
    if not valid:
        raise DataError(f"{where} is damaged (not a manifest as export writes it): {FIX}")
    return files


def mismatch(
    recorded: Mapping[str, dict], found: Mapping[str, bytes | None]
) -> tuple[str, str] | None:
    """(the first file, by path, that breaks the set, and how), `found` (path -> its bytes,
    None when absent; the manifest's own bytes aside) against what the manifest
    `recorded`: missing, not recorded, or other bytes. None when every file matches."""
    for name in sorted((set(recorded) | set(found)) - {MANIFEST}):
        data, want = found.get(name), recorded.get(name)
        if want is None:
            if data is not None:
                return name, f"{name} is not in {MANIFEST}"
            continue
        if data is None:
            return name, f"{name} is missing, but {MANIFEST} lists it"
        got = entry(data)  # one md5 pass over a file that may be hundreds of megabytes
        if got != {"bytes": want["bytes"], "md5": want["md5"]}:
            shown = f"md5 {got['md5']}, not {want['md5']}"
            return name, f"{name} is not the file {MANIFEST} records ({shown})"
    return None


def check_workspace(root: Path = Path(".")) -> dict[str, bytes]:
    """export's files in `root`, read once and checked against its manifest: path -> bytes,
    the manifest's own included. A reader uses these bytes, not the files again, so that
    nothing written meanwhile slips in unchecked."""
    if not (root / MANIFEST).is_file():
        raise DataError(
            f"{MANIFEST} is missing, so nothing says the files in models/ are one export "
            f"(an export cut short?): {FIX}"
        )
    text = (root / MANIFEST).read_bytes()
    recorded = parse(text, MANIFEST)
    names = set(recorded) | set(exported(root))
    found = {n: (root / n).read_bytes() if (root / n).is_file() else None for n in names}
    wrong = mismatch(recorded, found)
    if wrong:
        raise DataError(f"{wrong[1]}: models/ is not one export; {FIX}")
    return {MANIFEST: text} | {n: data for n, data in found.items() if data is not None}
