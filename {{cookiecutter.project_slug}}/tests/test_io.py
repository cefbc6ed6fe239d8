"""io: atomic writes, stable JSON, and skops model files that are byte-identical and safe."""

from __future__ import annotations

import copy
import json
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import skops.io as sio

from {{ cookiecutter.package_name }} import io, schema
from {{ cookiecutter.package_name }}.errors import DataError

MODEL_NAMES = sorted(
    p.stem for p in (Path(__file__).resolve().parents[1] / "conf" / "model").glob("*.yaml")
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


@pytest.mark.parametrize("read", [io.read_parquet, io.read_json, io.load_model])
def test_reading_a_missing_file_says_how_to_build_it(tmp_path, read):
    with pytest.raises(DataError, match="absent does not exist: run `dvc repro`"):
        read(tmp_path / "absent")


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

    loaded = io.load_model(tmp_path / "a.skops")
    rows = schema.model_frame(test, toy_roles)
    assert np.array_equal(loaded.predict(rows), first.predict(rows))
    if task == "classification":
        assert np.array_equal(loaded.predict_proba(rows), first.predict_proba(rows))


def test_save_model_ignores_padding_bytes(fitted, task, tmp_path):
    forest, _, _ = fitted(task, {"name": "random_forest", "n_estimators": 2})
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
