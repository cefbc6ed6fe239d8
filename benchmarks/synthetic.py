"""Seeded synthetic tables shaped like real ones, for scale benchmarks.

    .venv/bin/python benchmarks/synthetic.py ROWS OUT [--shape S] [--batches K] [--seed S]

OUT is a folder of K Parquet batch files (a `data.source` folder). Each shape's target
depends on its features, about 2% of feature values are missing, and tables are built in
chunks of 1e6 rows, so 1e7 rows need a few hundred MB. SHAPES says each shape's task,
target, time and group columns; the shapes:

- `long` (the default): 12 numeric features (f00..f11), a high-cardinality categorical
  (`merchant`, 1,000 values, Zipf-like), two low-cardinality ones (`region` 5 values,
  `channel` 4), a group column (`gender`), an event time (`event_time`, two years), and an
  imbalanced 3-class target (`label`, about 70/20/10) with 2% of labels flipped.
- `wide`: 60 float32 features (x00..x59), two 50-value categoricals, `event_time`, and a
  regression target (`y`).
- `categorical`: 8 numeric and 18 categorical features (2 to 5,000 values), `event_time`,
  and a binary target (`converted`, 5% positives); `region` is the group column.
- `text`: product titles (40-120 characters, 3,000 distinct) and review snippets (1,500
  distinct), 6 numeric features, `store` (the group), `event_time`, and a 4-class target.
- `rare`: 10 numeric features, two categoricals, `gender`, `event_time`, and a 3-class
  target (`status`) whose `fraud` class is about 0.3% of rows.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

TARGET = "label"
CLASSES = np.array(["bronze", "silver", "gold"])
MERCHANTS = np.array([f"m{i:04d}" for i in range(1000)])
REGIONS = np.array(["north", "south", "east", "west", "central"])
CHANNELS = np.array(["web", "app", "store", "phone"])
GENDERS = np.array(["female", "male"])
START = np.datetime64("2024-01-01T00:00:00", "s")
TWO_YEARS = 2 * 365 * 24 * 3600
CHUNK = 1_000_000


def chunk(rows: int, rng: np.random.Generator, offset: int) -> pa.Table:
    numeric = rng.normal(size=(rows, 12))
    merchant = np.minimum(rng.zipf(1.3, rows) - 1, len(MERCHANTS) - 1)
    region = rng.integers(0, len(REGIONS), rows)
    channel = rng.integers(0, len(CHANNELS), rows)
    gender = rng.integers(0, 2, rows)
    # The merchant carries signal too: a high-cardinality column worth encoding well.
    merchant_effect = np.sin(merchant * 0.37) * 1.5
    score = (
        numeric[:, 0] * 1.2
        - numeric[:, 1] * 0.8
        + numeric[:, 2] * numeric[:, 3] * 0.5
        + merchant_effect
        + (region == 2) * 0.7
        + rng.normal(scale=0.8, size=rows)
    )
    label = np.digitize(score, np.quantile(score, [0.70, 0.90]))
    flip = rng.random(rows) < 0.02
    label[flip] = rng.integers(0, len(CLASSES), int(flip.sum()))
    columns = {
        f"f{i:02d}": pa.array(numeric[:, i], mask=rng.random(rows) < 0.02) for i in range(12)
    }
    columns["merchant"] = pa.array(MERCHANTS[merchant], mask=rng.random(rows) < 0.02)
    columns["region"] = pa.array(REGIONS[region], mask=rng.random(rows) < 0.02)
    columns["channel"] = pa.array(CHANNELS[channel])
    columns["gender"] = pa.array(GENDERS[gender])
    seconds = np.sort(rng.integers(0, TWO_YEARS, rows)) + offset
    columns["event_time"] = pa.array(START + seconds.astype("timedelta64[s]"))
    columns[TARGET] = pa.array(CLASSES[label])
    return pa.table(columns)


def masked(values: np.ndarray, rng: np.random.Generator, rate: float = 0.02) -> pa.Array:
    """`values` with about `rate` of them missing."""
    return pa.array(values, mask=rng.random(len(values)) < rate)


def event_time(rows: int, rng: np.random.Generator, offset: int) -> pa.Array:
    seconds = np.sort(rng.integers(0, TWO_YEARS, rows)) + offset
    return pa.array(START + seconds.astype("timedelta64[s]"))


def skewed(rows: int, values: int, rng: np.random.Generator) -> np.ndarray:
    """Codes 0..values-1, the low ones most frequent (as real categories are)."""
    return (values * rng.random(rows) ** 2).astype(np.int64)


def effect(codes: np.ndarray, key: float) -> np.ndarray:
    """A fixed effect per category: the same value means the same in every chunk and seed."""
    return np.sin(codes * key + key)


WIDE_A = np.array([f"a{i:02d}" for i in range(50)])
WIDE_B = np.array([f"b{i:02d}" for i in range(50)])


def wide_chunk(rows: int, rng: np.random.Generator, offset: int) -> pa.Table:
    numeric = rng.standard_normal(size=(rows, 60), dtype=np.float32)
    cat_a, cat_b = rng.integers(0, 50, rows), skewed(rows, 50, rng)
    weights = np.linspace(2.0, 0.2, 10, dtype=np.float32)
    y = (
        numeric[:, :10] @ weights
        + numeric[:, 10] * numeric[:, 11]
        + effect(cat_a, 0.9) * 1.5
        + effect(cat_b, 0.4)
        + rng.standard_normal(rows, dtype=np.float32)
    )
    columns = {f"x{i:02d}": masked(numeric[:, i], rng) for i in range(60)}
    columns["cat_a"] = masked(WIDE_A[cat_a], rng)
    columns["cat_b"] = masked(WIDE_B[cat_b], rng)
    columns["event_time"] = event_time(rows, rng, offset)
    columns["y"] = pa.array(y)
    return pa.table(columns)


# 18 categoricals of assorted cardinality; the 5-value one is `region`, the group column.
CARDINALITIES = [2, 3, 4, 5, 6, 8, 10, 12, 16, 20, 30, 50, 100, 200, 500, 1000, 2000, 5000]
CATEGORIES = {
    ("region" if n == 5 else f"c{j:02d}"): np.array([f"v{n}_{i}" for i in range(n)])
    for j, n in enumerate(CARDINALITIES)
}


def categorical_chunk(rows: int, rng: np.random.Generator, offset: int) -> pa.Table:
    numeric = rng.normal(size=(rows, 8))
    codes = {name: skewed(rows, len(values), rng) for name, values in CATEGORIES.items()}
    score = numeric[:, 0] - numeric[:, 1] * 0.7 + rng.normal(scale=0.8, size=rows)
    for j, name in enumerate(CATEGORIES):
        # A few categoricals carry most of the signal, as in real conversion data.
        score += effect(codes[name], 0.3 + j * 0.11) * (1.0 if j % 4 == 0 else 0.25)
    converted = score > np.quantile(score, 0.95)
    columns = {f"n{i}": masked(numeric[:, i], rng) for i in range(8)}
    for name, values in CATEGORIES.items():
        columns[name] = masked(values[codes[name]], rng)
    columns["event_time"] = event_time(rows, rng, offset)
    columns["converted"] = pa.array(np.where(converted, "yes", "no"))
    return pa.table(columns)


def phrases(count: int, words: list[str], rng: np.random.Generator) -> np.ndarray:
    """`count` distinct strings of 40-120 characters made of `words`."""
    made: dict[str, None] = {}
    while len(made) < count:
        length, text = int(rng.integers(40, 121)), ""
        while len(text) < length:
            text = f"{text} {words[int(rng.integers(len(words)))]}".strip()
        made[text[:120].rstrip()] = None
    return np.array(list(made))


def vocabulary() -> tuple[np.ndarray, np.ndarray]:
    """(titles, reviews): fixed, not drawn from the run's seed, so each keeps its effect."""
    rng = np.random.default_rng(20240101)
    syllables = ["ka", "lo", "mi", "ne", "ra", "tu", "vo", "zi", "pe", "su", "do", "fa"]
    words = ["".join(rng.choice(syllables, int(rng.integers(2, 5)))) for _ in range(400)]
    units = ["pack of 6", "500 ml", "2 kg", "XL", "stainless", "organic", "wireless"]
    return phrases(3000, words + units, rng), phrases(1500, words, rng)


TITLES, REVIEWS = vocabulary()
STORES = np.array(["online", "downtown", "mall", "airport"])
DEPARTMENTS = np.array(["grocery", "home", "electronics", "apparel"])


def text_chunk(rows: int, rng: np.random.Generator, offset: int) -> pa.Table:
    numeric = rng.normal(size=(rows, 6))
    title, review = skewed(rows, len(TITLES), rng), skewed(rows, len(REVIEWS), rng)
    store = rng.integers(0, len(STORES), rows)
    score = (
        effect(title, 0.713) * 1.5
        + effect(review, 0.291) * 0.5
        + numeric[:, 0] * 0.8
        + (store == 0) * 0.5
        + rng.normal(scale=0.6, size=rows)
    )
    department = np.digitize(score, np.quantile(score, [0.4, 0.7, 0.9]))
    columns = {f"n{i}": masked(numeric[:, i], rng) for i in range(6)}
    columns["title"] = masked(TITLES[title], rng)
    columns["review"] = masked(REVIEWS[review], rng, rate=0.1)
    columns["store"] = pa.array(STORES[store])
    columns["event_time"] = event_time(rows, rng, offset)
    columns["department"] = pa.array(DEPARTMENTS[department])
    return pa.table(columns)


DEVICES = np.array(["ios", "android", "desktop", "tablet", "tv", "other"])
COUNTRIES = np.array([f"country{i:02d}" for i in range(30)])
STATUSES = np.array(["ok", "review", "fraud"])


def rare_chunk(rows: int, rng: np.random.Generator, offset: int) -> pa.Table:
    numeric = rng.normal(size=(rows, 10))
    device, country = rng.integers(0, len(DEVICES), rows), skewed(rows, len(COUNTRIES), rng)
    gender = rng.integers(0, 2, rows)
    noise = rng.normal(scale=0.5, size=(rows, 2))
    fraud = numeric[:, 0] * 1.5 + numeric[:, 1] * numeric[:, 2] + effect(country, 0.8) + noise[:, 0]
    review = numeric[:, 3] - numeric[:, 4] * 0.5 + (device == 5) * 0.8 + noise[:, 1]
    status = (review > np.quantile(review, 0.8)).astype(np.int64)
    status[fraud > np.quantile(fraud, 0.997)] = 2
    columns = {f"n{i}": masked(numeric[:, i], rng) for i in range(10)}
    columns["device"] = masked(DEVICES[device], rng)
    columns["country"] = masked(COUNTRIES[country], rng)
    columns["gender"] = pa.array(GENDERS[gender])
    columns["event_time"] = event_time(rows, rng, offset)
    columns["status"] = pa.array(STATUSES[status])
    return pa.table(columns)


@dataclass(frozen=True)
class Shape:
    """A table's generator and what the pipeline needs to be told about it."""

    chunk: Callable[[int, np.random.Generator, int], pa.Table]
    task: str
    target: str
    time: str | None
    groups: tuple[str, ...]


SHAPES = {
    "long": Shape(chunk, "classification", TARGET, "event_time", ("gender",)),
    "wide": Shape(wide_chunk, "regression", "y", "event_time", ()),
    "categorical": Shape(
        categorical_chunk, "classification", "converted", "event_time", ("region",)
    ),
    "text": Shape(text_chunk, "classification", "department", "event_time", ("store",)),
    "rare": Shape(rare_chunk, "classification", "status", "event_time", ("gender",)),
}


def write(rows: int, out: Path, batches: int = 1, seed: int = 0, shape: str = "long") -> list[Path]:
    """Write `rows` rows of `shape` as `batches` Parquet files under `out`; returns the files."""
    make = SHAPES[shape].chunk
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    per_batch = -(-rows // batches)
    files = []
    for b in range(batches):
        path = out / f"batch_{b:03d}.parquet"
        left = min(per_batch, rows - b * per_batch)
        with pq.ParquetWriter(path, make(1, rng, 0).schema) as writer:
            done = 0
            while done < left:
                size = min(CHUNK, left - done)
                writer.write_table(make(size, rng, b * TWO_YEARS // batches))
                done += size
        files.append(path)
    return files


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rows", type=float, help="number of rows (1e6 works)")
    parser.add_argument("out", type=Path, help="folder to write batch files into")
    parser.add_argument("--shape", default="long", choices=sorted(SHAPES))
    parser.add_argument("--batches", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    for path in write(int(args.rows), args.out, args.batches, args.seed, args.shape):
        print(path)


if __name__ == "__main__":
    main()
