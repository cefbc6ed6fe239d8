"""select and train on a row budget: the sample is read, never the whole training split,
from one file or a folder of parts alike (parts.take, row_budget)."""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from {{ cookiecutter.package_name }}.core import io, paths
from {{ cookiecutter.package_name }}.core.errors import DataError
from {{ cookiecutter.package_name }}.export import model_card
from {{ cookiecutter.package_name }}.modeling import models
from {{ cookiecutter.package_name }}.stages import export, preprocess, select, train
from {{ cookiecutter.package_name }}.tables import parts

from conftest import MODELS


def mixed(n: int, seed: int, categories: list[str]) -> pd.DataFrame:
    """Text with missing values, a categorical, floats with NaN and integers."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "text": rng.choice(["a", "bb", None], size=n),
            "kind": pd.Categorical(rng.choice(categories, size=n), categories=categories),
            "value": np.where(rng.random(n) < 0.2, np.nan, rng.normal(size=n)),
            "count": rng.integers(-50, 50, size=n),
        }
    )


def write_table(path, frames: list[pd.DataFrame], row_group_size: int) -> None:
    """One file (a single frame) or a folder of parts (several), small row groups."""
    if len(frames) == 1:
        frames[0].to_parquet(path, index=False, row_group_size=row_group_size)
        return
    path.mkdir()
    for number, frame in enumerate(frames):
        frame.to_parquet(path / parts.part_name(number), index=False, row_group_size=row_group_size)


# Parts of unequal sizes, each with its own categories: io.read_parquet's categories are
# the union over the parts, and a part no chosen row falls in must still give its own.
LAYOUTS = {
    "file": [(120, ["x", "y", "z"])],
    "parts": [(57, ["x", "y"]), (9, ["q"]), (84, ["y", "w", "z"])],
}


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_take_gives_the_rows_read_parquet_gives(tmp_path, layout):
    frames = [mixed(n, k, cats) for k, (n, cats) in enumerate(LAYOUTS[layout])]
    path = tmp_path / "table.parquet"
    write_table(path, frames, row_group_size=10)
    whole = io.read_parquet(path)
    rng = np.random.default_rng(3)
    chosen = [
        np.sort(rng.choice(len(whole), size=25, replace=False)),
        np.array([0, len(whole) - 1]),
        np.arange(len(whole)),
        np.array([], dtype=np.int64),
        np.array([70, 71, 72]),  # the parts layout: none in its first two parts
    ]
    for positions in chosen:
        for columns in (None, ["value", "kind", "count"]):
            expected = io.read_parquet(path, columns=columns).iloc[positions]
            got = parts.take(path, positions, columns)
            pd.testing.assert_frame_equal(got, expected.reset_index(drop=True), check_exact=True)
    assert len(whole) == sum(n for n, _ in LAYOUTS[layout])
    with pytest.raises(ValueError, match="past the"):
        parts.take(path, np.array([len(whole)]))
    with pytest.raises(ValueError, match="sorted"):
        parts.take(path, np.array([5, 2]))


def test_a_damaged_part_is_named_with_how_to_restore_it(tmp_path):
    path = tmp_path / "table.parquet"
    write_table(path, [mixed(30, 0, ["x"]), mixed(30, 1, ["y"])], row_group_size=10)
    part = path / parts.part_name(1)
    part.write_bytes(part.read_bytes()[:100])
    with pytest.raises(DataError, match=f"{path} is damaged .*`dvc checkout {path}`"):
        parts.take(path, np.array([1, 40]))


@pytest.mark.parametrize("layout", ["file", "parts"])
def test_take_reads_only_the_row_groups_that_hold_a_chosen_row(tmp_path, monkeypatch, layout):
    """The memory is the rows taken and one row group, whatever the table's size."""
    numbers = pd.DataFrame({"value": np.arange(3000, dtype=np.float64), "text": "t"})
    frames = [numbers] if layout == "file" else [numbers[:1000], numbers[1000:1300], numbers[1300:]]
    path = tmp_path / "table.parquet"
    write_table(path, frames, row_group_size=100)
    read = []
    real = pq.ParquetFile.read_row_group

    def spy(self, group, *args, **kwargs):
        table = real(self, group, *args, **kwargs)
        read.append(table.num_rows)
        return table

    monkeypatch.setattr(pq.ParquetFile, "read_row_group", spy)
    positions = np.array([5, 50, 2222, 2299])
    got = parts.take(path, positions, ["value"])
    assert got["value"].tolist() == [5.0, 50.0, 2222.0, 2299.0]
    assert read == [100, 100], "two row groups of 100 rows hold the four rows: 200 of 3000 read"


@pytest.fixture
def stage_inputs(tmp_path, monkeypatch, toy, toy_roles, task, configured):
    """preprocess's outputs for 400 toy rows in a project under tmp_path: the training
    split written as one file ("file") or as a folder of three unequal parts ("parts")."""
    monkeypatch.chdir(tmp_path)
    train_rows, _, transformer, _ = preprocess.preprocess(
        toy(task, n=400, seed=4), toy_roles, rules=configured("preprocess"), seed=0, task=task
    )
    train_rows = train_rows.reset_index(drop=True)
    io.write_json(paths.FEATURES, {"roles": dataclasses.asdict(toy_roles)})
    io.save_model(paths.PREPROCESSOR, transformer)

    def layout(kind: str) -> pd.DataFrame:
        io.remove_folder(paths.TRAIN)
        paths.TRAIN.unlink(missing_ok=True)
        pieces = [train_rows]
        if kind == "parts":
            pieces = [train_rows[:150], train_rows[150:170], train_rows[170:]]
        write_table(paths.TRAIN, pieces, row_group_size=32)
        return train_rows

    return layout


def run_select(make_params, monkeypatch, task_models, **budget) -> pd.DataFrame:
    params = make_params({"select.candidates": task_models, "select.cv_folds": 3, **budget})
    monkeypatch.setattr(select, "load", lambda: params)
    select.main()
    return pd.read_csv(paths.SELECT_RANKING)


def test_select_within_its_budget_ranks_every_row_as_before(
    stage_inputs, make_params, monkeypatch, task_models, toy_roles
):
    rows = stage_inputs("file")
    budget = {"select.min_rows": 100, "select.max_rows": len(rows)}
    ranking = run_select(make_params, monkeypatch, task_models, **budget)
    params = make_params({"select.candidates": task_models, "select.cv_folds": 3, **budget})
    before = select.rank(
        rows,
        toy_roles,
        io.load_model(paths.PREPROCESSOR),
        settings=select.Settings.of(params),
    )
    # A CSV has no integer type with missing values: cut_* columns that no cut filled come
    # back as floats, equal in value.
    pd.testing.assert_frame_equal(ranking, before.round(6), check_exact=True, check_dtype=False)


def test_select_past_its_budget_ranks_a_sample_alike_from_a_file_or_parts(
    stage_inputs, make_params, monkeypatch, task_models, caplog
):
    caplog.set_level("INFO")
    rows = stage_inputs("file")
    budget = {"select.min_rows": 100, "select.max_rows": 200}
    from_file = run_select(make_params, monkeypatch, task_models, **budget)
    stage_inputs("parts")
    from_parts = run_select(make_params, monkeypatch, task_models, **budget)
    pd.testing.assert_frame_equal(from_parts, from_file, check_exact=True)
    assert from_file["rows"].max() == 200
    sampled = [r.getMessage() for r in caplog.records if r.getMessage().startswith("sample ")]
    assert len(sampled) == 2 and sampled[0] == sampled[1]
    read = re.fullmatch(rf"sample rows=(\d+) of={len(rows)} budget=select.max_rows", sampled[0])
    # max_rows, and at most a few more to give each class rows for every fold.
    assert read and 200 <= int(read[1]) <= 200 + 3 * 3


def run_train(make_params, monkeypatch, max_rows: int | None):
    forest = {**MODELS["random_forest"], "n_estimators": 3}
    params = make_params({"train.max_rows": max_rows, "model": forest})
    monkeypatch.setattr(train, "load", lambda: params)
    train.main()
    return params, paths.TRAINED_MODEL.read_bytes()


def test_train_fits_a_seeded_sample_of_max_rows(
    stage_inputs, make_params, monkeypatch, caplog, task
):
    caplog.set_level("INFO")
    rows = stage_inputs("file")
    params, first = run_train(make_params, monkeypatch, 150)
    forest = models.load(paths.TRAINED_MODEL, MODELS["random_forest"]).named_steps["model"]
    # Bootstrap weights of a tree's root sum to the rows the forest was fitted on.
    assert forest.estimators_[0].tree_.weighted_n_node_samples[0] == 150
    assert run_train(make_params, monkeypatch, 150)[1] == first, "a rerun changed the model"
    stage_inputs("parts")
    assert run_train(make_params, monkeypatch, 150)[1] == first, "parts gave another model"
    lines = [r.getMessage() for r in caplog.records]
    assert lines.count(f"sample rows=150 of={len(rows)} budget=train.max_rows") == 3
    assert any(re.fullmatch(r"fit random_forest rows=150 seconds=[\d.]+", m) for m in lines)
    # The model card says so; export chooses the same sample again to count it.
    counted = export.training_rows("target", settings=export.Settings.of(params))
    assert counted == {"fitted": 150, "available": len(rows)}
    assert f"sample of 150 of the {len(rows)} training rows" in model_card._fitted_on(counted, task)


def test_train_without_max_rows_fits_every_row_as_before(
    stage_inputs, make_params, monkeypatch, toy_roles, caplog
):
    caplog.set_level("INFO")
    rows = stage_inputs("parts")
    params, unbounded = run_train(make_params, monkeypatch, None)
    assert run_train(make_params, monkeypatch, len(rows))[1] == unbounded
    before = train.train(
        io.read_parquet(paths.TRAIN, columns=["target", *toy_roles.features]),
        toy_roles,
        io.load_model(paths.PREPROCESSOR),
        config=dict(params.model),
        settings=train.Settings.of(params),
    )
    io.save_model(paths.TRAINED_MODEL, before)
    assert paths.TRAINED_MODEL.read_bytes() == unbounded
    assert not [r for r in caplog.records if r.getMessage().startswith("sample ")]
    counted = export.training_rows("target", settings=export.Settings.of(params))
    assert counted == {"fitted": len(rows), "available": len(rows)}
