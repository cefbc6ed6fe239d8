"""io: atomic writes, stable JSON, and skops model files that are byte-identical and safe."""

from __future__ import annotations

import copy
import errno
import fcntl
import json
import os
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import skops.io as sio

from {{ cookiecutter.package_name }}.core import io
from {{ cookiecutter.package_name }}.core.errors import DataError, StorageError
from {{ cookiecutter.package_name }}.modeling import models
from {{ cookiecutter.package_name }}.tables import schema

# Every model of conf/model/; auto is the choice of select's winner, not a model.
MODEL_NAMES = sorted(
    p.stem
    for p in (Path(__file__).resolve().parents[2] / "conf" / "model").glob("*.yaml")
    if p.stem != "auto"
)


class Untrusted:
    """Not on io.TRUSTED_TYPES: a file asking for it must not load."""

    def __init__(self) -> None:
        self.payload = [1, 2, 3]


def test_write_json_is_sorted_indented_and_ends_with_a_newline(tmp_path):
    path = tmp_path / "deep" / "report.json"
    io.write_json(path, {"b": 1, "a": {"d": 2.5, "c": [1, 2]}})
    text = path.read_text()
    assert text.endswith("}\n")
    assert text.index('"a"') < text.index('"b"') and text.index('"c"') < text.index('"d"')
    assert json.loads(text) == {"a": {"c": [1, 2], "d": 2.5}, "b": 1}
    with pytest.raises(ValueError):
        io.write_json(path, {"x": float("nan")})


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "table.parquet"
    io.write_parquet(path, pd.DataFrame({"a": [1, 2]}))
    before = path.read_bytes()
    with pytest.raises(Exception):  # noqa: B017 - whatever pyarrow raises for an object column
        io.write_parquet(path, pd.DataFrame({"a": [object()]}))
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["table.parquet"]


def fill_then_fail(code: int):
    """A to_parquet that writes part of the file, then meets `code` as a full disk would."""

    def to_parquet(self, path, **kwargs):
        Path(path).write_bytes(b"PAR1" + bytes(5000))
        raise OSError(code, os.strerror(code))

    return to_parquet


@pytest.mark.parametrize(
    ("code", "message"),
    [
        (errno.ENOSPC, "no space left on device writing {path} (needs more than 5 KB, "),
        (errno.EDQUOT, "disk quota exceeded writing {path} (needs more than 5 KB, "),
        (errno.EFBIG, "file too large writing {path} (needs more than 5 KB, "),
        (errno.EROFS, "read-only file system writing {path}: remount it read-write"),
        (errno.EACCES, "permission denied writing {path}: make {folder} writable by this user"),
    ],
)
def test_a_write_that_runs_out_of_space_keeps_the_old_file_and_names_the_path(
    tmp_path, monkeypatch, code, message
):
    path = tmp_path / "processed" / "train.parquet"
    io.write_parquet(path, pd.DataFrame({"a": [1, 2]}))
    before = path.read_bytes()
    monkeypatch.setattr(pd.DataFrame, "to_parquet", fill_then_fail(code))
    with pytest.raises(StorageError) as raised:
        io.write_parquet(path, pd.DataFrame({"a": [3]}))
    text = str(raised.value)
    assert text.startswith(message.format(path=path, folder=path.parent)), text
    assert "\n" not in text
    if code == errno.ENOSPC:
        assert (
            f"free in {path.parent}): free space on that disk, or move the project or its "
            "DVC cache (`dvc cache dir PATH`) to a disk with room" in text
        )
    assert isinstance(raised.value.__cause__, OSError)
    assert path.read_bytes() == before
    assert [p.name for p in path.parent.iterdir()] == ["train.parquet"]


def test_a_full_disk_with_a_known_size_says_how_much_is_needed(tmp_path, monkeypatch):
    def full(self, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Path, "write_bytes", full)
    with pytest.raises(StorageError, match=r"writing .*model.onnx \(needs 1.5 MB, .* free in "):
        io.write_bytes(tmp_path / "model.onnx", bytes(3 << 19))
    assert list(tmp_path.iterdir()) == []


def test_other_os_errors_are_not_reworded(tmp_path, monkeypatch):
    monkeypatch.setattr(pd.DataFrame, "to_parquet", fill_then_fail(errno.EIO))
    with pytest.raises(OSError) as raised:
        io.write_parquet(tmp_path / "t.parquet", pd.DataFrame({"a": [1]}))
    assert raised.value.errno == errno.EIO and not isinstance(raised.value, StorageError)
    assert list(tmp_path.iterdir()) == []


def test_a_write_removes_temporaries_of_killed_writes_of_that_file_only(tmp_path):
    """A SIGKILLed writer leaves its temporary file behind (and its lock goes with it);
    the next write of the same file removes it, a live writer's and other files' stay."""
    path = tmp_path / "train.parquet"
    killed = tmp_path / ".train.parquet.k1ll3d.tmp"
    killed.write_bytes(b"PAR1 half a table")
    live = tmp_path / ".train.parquet.l1v3.tmp"
    other = tmp_path / ".test.parquet.k1ll3d.tmp"
    for stale in (live, other):
        stale.write_bytes(b"")
    with open(live, "rb") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        io.write_parquet(path, pd.DataFrame({"a": [1]}))
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == [".test.parquet.k1ll3d.tmp", ".train.parquet.l1v3.tmp", "train.parquet"]


def test_atomic_dir_swaps_a_complete_folder_or_keeps_the_old_one(tmp_path):
    out = tmp_path / "evaluate"
    (out / "plots").mkdir(parents=True)
    (out / "metrics.json").write_text("old")
    full = f"^no space left on device writing {out} \\("
    with pytest.raises(StorageError, match=full), io.atomic_dir(out) as tmp:
        (tmp / "metrics.json").write_text("half")
        raise OSError(errno.ENOSPC, "No space left on device")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["evaluate"]
    assert (out / "metrics.json").read_text() == "old" and (out / "plots").is_dir()
    with io.atomic_dir(out) as tmp:
        (tmp / "metrics.json").write_text("new")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["evaluate"]
    assert [p.name for p in out.iterdir()] == ["metrics.json"]
    assert (out / "metrics.json").read_text() == "new"


def test_csv_and_parquet_round_trip(tmp_path):
    df = pd.DataFrame({"a": [1.5, None], "b": ["x", None]})
    io.write_parquet(tmp_path / "t.parquet", df)
    pd.testing.assert_frame_equal(io.read_parquet(tmp_path / "t.parquet"), df)
    io.write_csv(tmp_path / "t.csv", df)
    assert (tmp_path / "t.csv").read_bytes() == b"a,b\n1.5,x\n,\n"


def test_read_parquet_reads_only_the_columns_asked_for(tmp_path):
    df = pd.DataFrame({"a": [1.5, None], "b": ["x", None], "c": [1, 2]})
    io.write_parquet(tmp_path / "t.parquet", df)
    read = io.read_parquet(tmp_path / "t.parquet", ["c", "a"])
    pd.testing.assert_frame_equal(read, df[["c", "a"]])


def test_parquet_columns_lists_a_file_or_a_folder_of_parts(tmp_path):
    """evaluate asks which of its columns the test split has: a dask engine's folder too."""
    df = pd.DataFrame({"a": [1.5, None], "b": ["x", None], "c": [1, 2]})
    io.write_parquet(tmp_path / "t.parquet", df)
    (tmp_path / "parts").mkdir()
    df.to_parquet(tmp_path / "parts" / "part-000000.parquet", index=False)
    df.to_parquet(tmp_path / "parts" / "part-000001.parquet", index=False)
    for path in (tmp_path / "t.parquet", tmp_path / "parts"):
        assert io.parquet_columns(path, {"c", "a", "z"}) == ["a", "c"]


@pytest.mark.parametrize("read", [io.read_parquet, io.read_json, io.load_model])
def test_reading_a_missing_file_says_how_to_build_it(tmp_path, read):
    with pytest.raises(DataError, match="absent does not exist: run `dvc repro`"):
        read(tmp_path / "absent")


@pytest.mark.parametrize("size", [0, 100], ids=["empty", "cut-short"])
def test_a_damaged_pipeline_file_is_named_with_how_to_restore_it(tmp_path, size):
    path = tmp_path / "t.parquet"
    io.write_parquet(path, pd.DataFrame({"a": range(1000)}))
    path.write_bytes(path.read_bytes()[:size])
    with pytest.raises(DataError, match=f"{path} is damaged .*`dvc checkout {path}`"):
        io.read_parquet(path)


def test_file_md5(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"abc")
    assert io.file_md5(path) == "900150983cd24fb0d6963f7d28e17f72"


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_save_model_is_byte_identical_and_round_trips(
    fitted, toy_roles, task, task_models, tmp_path, name
):
    first, _, test = fitted(task, task_models[name])
    second, _, _ = fitted(task, task_models[name])  # an independent fit with the same seed
    io.save_model(tmp_path / "a.skops", first)
    io.save_model(tmp_path / "b.skops", first)
    io.save_model(tmp_path / "c.skops", second)
    saved = (tmp_path / "a.skops").read_bytes()
    assert saved == (tmp_path / "b.skops").read_bytes() == (tmp_path / "c.skops").read_bytes()
    with zipfile.ZipFile(tmp_path / "a.skops") as archive:
        assert {info.date_time for info in archive.infolist()} == {(1980, 1, 1, 0, 0, 0)}

    loaded = models.load(tmp_path / "a.skops", task_models[name])
    rows = schema.model_frame(test, toy_roles)
    assert np.array_equal(loaded.predict(rows), first.predict(rows))
    if task == "classification":
        assert np.array_equal(loaded.predict_proba(rows), first.predict_proba(rows))


def test_save_model_ignores_padding_bytes(fitted, task, task_models, tmp_path):
    forest, _, _ = fitted(task, {**task_models["random_forest"], "n_estimators": 2})
    twin = copy.deepcopy(forest)
    for tree in twin.named_steps["model"].estimators_:
        state = tree.tree_.__getstate__()
        nodes = state["nodes"].copy()
        used = np.zeros(nodes.dtype.itemsize, dtype=bool)
        for dtype, offset, *_ in nodes.dtype.fields.values():
            used[offset : offset + dtype.itemsize] = True
        assert not used.all(), "tree nodes have padding bytes"
        nodes.view(np.uint8).reshape(len(nodes), -1)[:, ~used] = 0xAB
        tree.tree_.__setstate__({**state, "nodes": nodes})
    io.save_model(tmp_path / "forest.skops", forest)
    io.save_model(tmp_path / "twin.skops", twin)
    assert (tmp_path / "forest.skops").read_bytes() == (tmp_path / "twin.skops").read_bytes()


def test_load_model_refuses_untrusted_types(tmp_path):
    path = tmp_path / "evil.skops"
    sio.dump(Untrusted(), path)
    with pytest.raises(DataError, match="outside the reviewed list: .*Untrusted"):
        io.load_model(path)
