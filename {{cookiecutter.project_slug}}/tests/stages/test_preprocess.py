"""preprocess: the seeded split, augmentation and the feature transformer."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from {{ cookiecutter.package_name }}.core import io, paths
from {{ cookiecutter.package_name }}.core.errors import DataError
from {{ cookiecutter.package_name }}.core.params import AugmentParams
from {{ cookiecutter.package_name }}.stages import preprocess
from {{ cookiecutter.package_name }}.tables import schema

from conftest import plain_data

TASKS = ["classification", "regression"]


# split


def test_split_is_stratified_disjoint_and_complete(toy):
    df = toy("classification")
    train, test = preprocess.split(df, "target", 0.25, 0, "classification")
    assert len(test) == 15
    assert sorted(train["id"].tolist() + test["id"].tolist()) == sorted(df["id"])
    expected = df["target"].value_counts(normalize=True)
    shares = test["target"].value_counts(normalize=True).reindex(expected.index)
    assert (shares - expected).abs().max() < 0.07
    assert list(train.index) == list(range(len(train)))
    assert train["id"].is_monotonic_increasing, "rows keep their original order"


@pytest.mark.parametrize("task", TASKS)
def test_split_depends_on_the_seed_only(toy, task):
    df = toy(task)
    first, _ = preprocess.split(df, "target", 0.2, 7, task)
    again, _ = preprocess.split(df.copy(), "target", 0.2, 7, task)
    other, _ = preprocess.split(df, "target", 0.2, 8, task)
    assert first["id"].tolist() == again["id"].tolist()
    assert first["id"].tolist() != other["id"].tolist()


def test_split_names_a_class_too_rare_to_stratify(toy):
    df = toy("classification")
    df.loc[0, "target"] = "unicorn"
    with pytest.raises(DataError, match="class\\(es\\) unicorn have fewer than 2 rows"):
        preprocess.split(df, "target", 0.2, 0, "classification")


def test_split_explains_an_impossible_size(toy):
    df = toy("regression").head(1)
    with pytest.raises(DataError, match="cannot split 1 rows with test_size=0.1"):
        preprocess.split(df, "target", 0.1, 0, "regression")


# augment


def test_augment_adds_noisy_copies_with_aug_ids(toy):
    df = toy("regression")
    rules = AugmentParams(enabled=True, copies=2, noise_scale=0.1)
    out = preprocess.augment(df, ["x1", "x2"], rules=rules, seed=0)
    assert len(out) == 3 * len(df)
    pd.testing.assert_frame_equal(out.head(len(df)), df)
    for k in (1, 2):
        copy = out.iloc[k * len(df) : (k + 1) * len(df)].reset_index(drop=True)
        assert copy["id"].tolist() == [f"{i}-aug{k}" for i in df["id"]]
        assert (copy["batch"] == "augmented").all()
        assert copy["color"].equals(df["color"]) and copy["target"].equals(df["target"])
        jitter = (copy["x1"] - df["x1"]).abs()
        assert 0 < jitter.max() < 1.0
        assert copy["x2"].isna().equals(df["x2"].isna()), "missing stays missing"
    assert schema.base_ids(out["id"]).tolist() == df["id"].tolist() * 3
    again = preprocess.augment(df, ["x1", "x2"], rules=rules, seed=0)
    pd.testing.assert_frame_equal(out, again)


def test_augment_disabled_or_without_numbers_is_a_no_op(toy, configured):
    df = toy("regression")
    assert (
        preprocess.augment(
            df, ["x1"], rules=configured("preprocess.augment", enabled=False), seed=0
        )
        is df
    )
    assert (
        preprocess.augment(df, [], rules=configured("preprocess.augment", enabled=True), seed=0)
        is df
    )


# build_transformer


def test_build_transformer_imputes_scales_and_encodes(toy, toy_roles, configured):
    df = schema.model_frame(toy("classification"), toy_roles)
    transformer = preprocess.build_transformer(
        toy_roles, configured("preprocess"), "classification", None, 0
    )
    transformer.fit(df)
    names = list(transformer.get_feature_names_out())
    assert names[:2] == ["numeric__x1", "numeric__x2"]
    assert set(names[2:]) == {
        "categorical__color_blue",
        "categorical__color_green",
        "categorical__color_red",
    }
    out = transformer.transform(df)
    assert not np.isnan(out).any()
    assert np.allclose(out[:, 0].mean(), 0.0) and np.allclose(out[:, 0].std(), 1.0)
    unseen = df.head(1).assign(color="purple")
    assert transformer.transform(unseen)[0, 2:].tolist() == [0.0, 0.0, 0.0]


def test_build_transformer_options(toy, toy_roles, configured):
    df = schema.model_frame(toy("regression"), toy_roles)
    raw = preprocess.build_transformer(
        toy_roles,
        configured("preprocess", scale="none", impute_numeric="mean"),
        "regression",
        None,
        0,
    )
    out = raw.fit(df).transform(df)
    assert np.allclose(out[:, 0], df["x1"])
    assert np.isclose(out[3, 1], df["x2"].mean())
    numeric_only = schema.Roles("target", ["x1"], [], None, [])
    only = preprocess.build_transformer(
        numeric_only, configured("preprocess"), "regression", None, 0
    )
    only.fit(df)
    assert list(only.get_feature_names_out()) == ["numeric__x1"]


def many_shops(task: str, n: int = 400) -> pd.DataFrame:
    """Toy rows plus `shop`, a column of 40 values that carries the signal."""
    rows = _toy_rows(task, n)
    rng = np.random.default_rng(1)
    rows["shop"] = [f"s{v:02d}" for v in rng.integers(0, 40, n)]
    return rows


def _toy_rows(task: str, n: int) -> pd.DataFrame:
    from conftest import _toy

    return _toy(task, n=n, seed=4)


@pytest.mark.parametrize("task", TASKS)
def test_high_cardinality_columns_are_target_encoded(toy_roles, task, configured):
    roles = schema.Roles("target", ["x1", "x2"], ["color", "shop"], None, [])
    rows = many_shops(task)
    rules = configured("preprocess")
    train, _, transformer, report = preprocess.preprocess(
        rows, roles, rules=rules, seed=0, task=task
    )
    assert report["encodings"] == {
        "color": {"encoding": "onehot", "distinct": 3},
        "shop": {"encoding": "target", "distinct": 40},
    }
    assert report["target_encoded"] == 1
    width = 2 + 3 + (3 if task == "classification" else 1)  # numeric, one-hot, per class
    assert report["features_out"] == width, "40 shops never become 40 columns"
    out = transformer.transform(schema.model_frame(train, roles))
    assert out.shape == (len(train), width) and isinstance(out, np.ndarray)
    wider = configured(
        "preprocess", encoding=configured("preprocess.encoding", onehot_max_categories=50)
    )
    report = preprocess.preprocess(rows, roles, rules=wider, seed=0, task=task)[3]
    assert report["encodings"]["shop"]["encoding"] == "onehot"
    assert report["features_out"] == 2 + 3 + 40


def test_target_encoding_cross_fits_the_training_rows(toy_roles, configured):
    """Fitting encodes each training row from other folds (no label leaks into its own
    feature); transforming later rows uses every training row."""
    roles = schema.Roles("target", ["x1", "x2"], ["color", "shop"], None, [])
    rows = schema.model_frame(many_shops("regression"), roles)
    y = many_shops("regression")["target"]
    encodings = {"shop": {"encoding": "target", "distinct": 40}}
    transformer = preprocess.build_transformer(
        roles, configured("preprocess"), "regression", encodings, 0
    )
    crossed = transformer.fit_transform(rows, y)[:, -1]
    direct = transformer.transform(rows)[:, -1]
    assert not np.allclose(crossed, direct)
    again = preprocess.build_transformer(
        roles, configured("preprocess"), "regression", encodings, 0
    )
    assert np.array_equal(again.fit_transform(rows, y)[:, -1], crossed), "seeded folds"


# preprocess


@pytest.mark.parametrize("task", TASKS)
def test_preprocess_splits_fits_on_train_and_reports(toy, toy_roles, task, configured):
    df = toy(task)
    rules = configured(
        "preprocess",
        test_size=0.25,
        augment=configured("preprocess.augment", enabled=True, copies=1),
    )
    train, test, transformer, report = preprocess.preprocess(
        df, toy_roles, rules=rules, seed=3, task=task
    )
    assert report == {
        "train_rows": 90,
        "test_rows": 15,
        "features_in": 3,
        "features_out": 5,
        "target_encoded": 0,
        "encodings": {"color": {"encoding": "onehot", "distinct": 3}},
    }
    assert len(train) == 90 and len(test) == 15
    assert not set(schema.base_ids(train["id"])) & set(test["id"])
    real_train = train[~train["id"].str.contains("-aug")]
    assert np.isclose(
        transformer.named_transformers_["numeric"]["scale"].mean_[0], real_train["x1"].mean()
    )


def test_describe_features_lists_roles_ranges_and_classes(toy, toy_roles):
    df = toy("classification")
    encodings = {"color": {"encoding": "onehot", "distinct": 3}}
    described = preprocess.describe_features(df, toy_roles, "classification", encodings)
    assert described["encodings"] == encodings
    assert described["roles"]["numeric"] == ["x1", "x2"]
    assert described["numeric"]["x1"] == {"min": df["x1"].min(), "max": df["x1"].max()}
    assert described["categorical"]["color"] == ["blue", "green", "red"]
    assert described["classes"] == ["high", "low", "mid"]
    regression = preprocess.describe_features(toy("regression"), toy_roles, "regression", {})
    assert "classes" not in regression
    assert described["non_features"] == ["target"]


def test_the_non_features_are_the_data_columns_the_model_does_not_take(toy, toy_roles):
    """Target, time, data.drop, a column the roles leave out, and data.id_column (which
    ingest turned into `id`), in the data's order; never ingest's own columns."""
    df = toy("classification").assign(when="2024-01-01", note=1.0, stamp=pd.Timestamp(0))
    roles = schema.Roles(
        target="target", numeric=["x1", "x2"], categorical=["color"], time="when", groups=[]
    )
    described = preprocess.describe_features(df, roles, "classification", id_column="key")
    assert described["non_features"] == ["key", "target", "when", "note", "stamp"]


def test_pseudo_labelled_rows_train_but_never_grade(toy, toy_roles, task, configured):
    rows = toy(task)
    rows.loc[rows.index[-10:], "batch"] = schema.PSEUDO_LABELLED
    pseudo_ids = set(rows["id"].tail(10))
    train, test, _, report = preprocess.preprocess(
        rows, toy_roles, rules=configured("preprocess"), seed=0, task=task
    )
    assert pseudo_ids <= set(train["id"])
    assert not pseudo_ids & set(test["id"])
    assert report["train_rows"] + report["test_rows"] == len(rows)


# memory: a wide float32 table (issue 21)


def wide_table(rows: int, width: int) -> pd.DataFrame:
    """An annotated table of `width` float32 features with missing values, two text
    features of 50 values (target-encoded) and a float32 target."""
    rng = np.random.default_rng(0)
    numbers = rng.normal(size=(rows, width)).astype(np.float32)
    target = (numbers[:, 0] * 2 + rng.normal(size=rows)).astype(np.float32)
    numbers[rng.random((rows, width)) < 0.01] = np.nan
    df = pd.DataFrame(numbers, columns=[f"x{i:02d}" for i in range(width)])
    for name in ("shop", "zone"):
        df[name] = pd.Series(rng.integers(0, 50, rows)).map(lambda v, n=name: f"{n}{v}")
    df["y"] = target
    df.insert(0, "id", [f"r{i}" for i in range(rows)])
    df.insert(1, "batch", "b0")
    return df


def test_preprocess_keeps_a_wide_float32_table_float32_in_a_few_times_its_size(
    tmp_path, monkeypatch, make_params
):
    """train/test Parquet keep float32 columns float32, and preprocess allocates a small
    multiple of the numbers' size: no float64 widening, no copy of the whole table made
    only to be dropped. (tracemalloc sees numpy's buffers, not Arrow's: the bound is on
    the pandas and scikit-learn copies, where the widening and the copies were.)"""
    monkeypatch.chdir(tmp_path)
    df = wide_table(20_000, 60)
    io.write_parquet(paths.ANNOTATED, df)
    params = make_params({"task": "regression", "data": plain_data(target="y")})
    monkeypatch.setattr(preprocess, "load", lambda: params)
    numbers = df.select_dtypes("float32").memory_usage(index=False).sum()
    del df
    preprocess.main()  # once untraced: imports and caches are no cost of the table
    tracemalloc.start()
    try:
        preprocess.main()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    for path in (paths.TRAIN, paths.TEST):
        types = {f.name: str(f.type) for f in pq.read_schema(path)}
        assert {types[f"x{i:02d}"] for i in range(60)} | {types["y"]} == {"float"}
    # 13 times before issue 21 (float64 copies of the whole table), under 6 since.
    assert peak < 8 * numbers, f"peak {peak / numbers:.1f} times the table's numbers"
