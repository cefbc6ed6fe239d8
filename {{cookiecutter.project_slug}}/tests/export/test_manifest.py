"""models/manifest.json: export's files recorded last, and every way a set can fail to be
the one recorded (missing manifest, missing file, extra file, other bytes, a damaged
manifest) refused in one line naming the file and the fix."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from {{ cookiecutter.package_name }}.core import io, paths
from {{ cookiecutter.package_name }}.core.errors import DataError
from {{ cookiecutter.package_name }}.export import manifest


@pytest.fixture
def exported(tmp_path: Path) -> Path:
    """A folder holding export's files and their manifest."""
    io.write_bytes(tmp_path / paths.MODEL, b"model bytes")
    io.write_json(tmp_path / paths.MODEL_METADATA, {"model": "m"})
    io.write_text(tmp_path / paths.MODEL_CARD, "# card\n")
#% if cookiecutter.onnx == "yes"
    io.write_bytes(tmp_path / paths.ONNX_DIR / "model.onnx", b"graph")
#% endif
    io.write_json(tmp_path / paths.MODEL_MANIFEST, manifest.record(tmp_path))
    return tmp_path


def test_the_manifest_records_each_file_as_dvc_hashes_it(exported):
    recorded = json.loads((exported / paths.MODEL_MANIFEST).read_text())["files"]
    expected = [paths.MODEL_METADATA, paths.MODEL, paths.MODEL_CARD]
#% if cookiecutter.onnx == "yes"
    expected.append(paths.ONNX_DIR / "model.onnx")
#% endif
    assert sorted(recorded) == sorted(p.as_posix() for p in expected)
    assert recorded["models/model.skops"] == {
        "bytes": len(b"model bytes"),
        "md5": io.file_md5(exported / paths.MODEL),
    }
    files = manifest.check_workspace(exported)
    assert files["models/model.skops"] == b"model bytes"
    assert files[manifest.MANIFEST] == (exported / paths.MODEL_MANIFEST).read_bytes()


def test_a_temporary_file_of_a_killed_write_is_no_part_of_the_set(exported):
    (exported / "models" / ".model.json.abc123.tmp").write_text("half")
#% if cookiecutter.onnx == "yes"
    (exported / paths.ONNX_DIR / ".model.onnx.abc123.tmp").write_text("half")
#% endif
    manifest.check_workspace(exported)


def test_a_new_model_beside_the_old_set_is_refused_naming_it_and_the_fix(exported):
    io.write_bytes(exported / paths.MODEL, b"another model")
    with pytest.raises(DataError) as refused:
        manifest.check_workspace(exported)
    line = str(refused.value)
    assert line.startswith("models/model.skops is not the file models/manifest.json records")
    assert "`dvc repro export`" in line and "dvc checkout --force export" in line
    assert "\n" not in line


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda root: (root / paths.MODEL_MANIFEST).unlink(), "models/manifest.json is missing"),
        (lambda root: (root / paths.MODEL_CARD).unlink(), "models/model_card.md is missing, but"),
        (
            lambda root: (root / paths.MODEL_CARD).write_text("# edited\n"),
            "models/model_card.md is not the file models/manifest.json records",
        ),
        (
            lambda root: (root / paths.MODEL_MANIFEST).write_text(
                '{"files": {"/etc/passwd": {"bytes": 1, "md5": "0"}}}'
            ),
            "models/manifest.json is damaged",
        ),
        (lambda root: (root / paths.MODEL_MANIFEST).write_text("{"), "is damaged"),
#% if cookiecutter.onnx == "yes"
        (
            lambda root: (root / paths.ONNX_DIR / "SKIPPED.md").write_text("x"),
            "models/onnx/SKIPPED.md is not in models/manifest.json",
        ),
#% endif
    ],
)
def test_every_other_mismatch_is_refused_in_one_line(exported, damage, message):
    damage(exported)
    with pytest.raises(DataError, match=message) as refused:
        manifest.check_workspace(exported)
    assert "\n" not in str(refused.value)
