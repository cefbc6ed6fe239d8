"""A seeded synthetic table shaped like a real one, for scale benchmarks.

    .venv/bin/python benchmarks/synthetic.py ROWS OUT [--batches K] [--seed S]

OUT is a folder of K Parquet batch files (a `data.source` folder). Columns: 12 numeric
features (f00..f11), a high-cardinality categorical (`merchant`, 1,000 values, Zipf-like),
two low-cardinality ones (`region` 5 values, `channel` 4), a group column (`gender`),
an event time (`event_time`, two years), and an imbalanced 3-class target (`label`,
about 70/20/10) that depends on the features, with 2% of labels flipped and 2% of
feature values missing. Built in chunks, so 1e7 rows need a few hundred MB.
"""

from __future__ import annotations

import argparse
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


def write(rows: int, out: Path, batches: int = 1, seed: int = 0) -> list[Path]:
    """Write `rows` rows as `batches` Parquet files under `out`; returns the files."""
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    per_batch = -(-rows // batches)
    files = []
    for b in range(batches):
        path = out / f"batch_{b:03d}.parquet"
        left = min(per_batch, rows - b * per_batch)
        with pq.ParquetWriter(path, chunk(1, rng, 0).schema) as writer:
            done = 0
            while done < left:
                size = min(CHUNK, left - done)
                writer.write_table(chunk(size, rng, b * TWO_YEARS // batches))
                done += size
        files.append(path)
    return files


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rows", type=float, help="number of rows (1e6 works)")
    parser.add_argument("out", type=Path, help="folder to write batch files into")
    parser.add_argument("--batches", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    for path in write(int(args.rows), args.out, args.batches, args.seed):
        print(path)


if __name__ == "__main__":
    main()
