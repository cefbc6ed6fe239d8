"""Seeded streams of new data for the closed-loop scenarios (tests/test_closed_loop.py):
plain CSV batches that a bake's `add-batch` accepts into its batch folder (data.source).

- penguins(): rows resampled from the shipped penguins, with a covariate shift (rows
  drawn by a weight, so P(x) moves and P(species | x) stays).
- synthetic(): a churn table (numeric x1..x3, a `segment` group, a `day` time, a binary
  `outcome`) whose label bends outside the region the first batches cover: a model
  fitted on the old region is wrong beyond doubt on the new one, and one retrained on it
  is right. STREAM_DATA is the conf/data/ file that reads it.

Same arguments, same bytes: every draw comes from the seed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

MEASURES = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"]
# The outcome missing which costs most: the value matrix of scenario d is on it.
RARE, COMMON = "churn", "stay"
SEGMENTS = ["retail", "wholesale"]

# conf/data/stream.yaml of a bake that reads synthetic() batches from data/stream/.
STREAM_DATA = """\
source: data/stream
target: outcome
id_column: null
time: day
groups: [segment]
numeric: null
categorical: null
# Fairness through unawareness: the group is measured, never a feature.
drop: [segment]
missing_values: []
# The bake's default answers include remote sources (the fetch stage); none here.
fetch: {}
"""


def shipped_penguins(project: Path) -> pd.DataFrame:
    """Every penguin a bake ships (data/raw and data/extra), complete rows only."""
    files = sorted((project / "data/raw").glob("*.csv")) + sorted(
        (project / "data/extra").glob("*.csv")
    )
    frame = pd.concat([pd.read_csv(f, keep_default_na=False, na_values=["NA"]) for f in files])
    return frame.dropna().reset_index(drop=True)


def penguins(
    project: Path,
    rows: int,
    *,
    seed: int,
    year: int,
    heavier: float = 0.0,
) -> pd.DataFrame:
    """`rows` penguins resampled from the shipped ones, as a batch of `year`.

    heavier: the covariate shift; a row is drawn with weight exp(heavier * z), z its
    body mass in standard units, so heavier > 0 favours heavy penguins. Every measure
    gets a little seeded jitter (no row repeats a shipped one, so its hash id is new).
    """
    rng = np.random.default_rng(seed)
    source = shipped_penguins(project)
    mass = source["body_mass_g"]
    weight = np.exp(heavier * (mass - mass.mean()) / mass.std())
    picked = rng.choice(len(source), size=rows, replace=True, p=weight / weight.sum())
    batch = source.iloc[picked].reset_index(drop=True)
    for column in MEASURES:
        jitter = rng.normal(0.0, 0.01 * batch[column].std(), rows)
        batch[column] = (batch[column] + jitter).round(2)
    batch["year"] = year
    return batch


def churns(x1: np.ndarray, x2: np.ndarray, x3: np.ndarray, blur: np.ndarray) -> np.ndarray:
    """Who churns: over the old region (x3 up to 1) those whose x2 passes x1 + 0.6;
    beyond it, those whose x3 passes 2.5, whatever x1 and x2. Carried over, the old rule
    is no better than a coin there."""
    return np.where(x3 <= 1.0, x2 - x1 + blur > 0.6, x3 + blur > 2.5)


def synthetic(
    rows: int,
    *,
    seed: int,
    region: str = "old",
    first_day: str = "2026-01-01",
    days: int = 30,
    noisy_segment: str | None = None,
    blur: float = 0.5,
) -> pd.DataFrame:
    """`rows` customers of the churn stream, their days spread from `first_day`.

    x1 uniform in [-1.5, 1.5], x2 standard normal; x3 uniform in [-1, 1] in the "old"
    region, in [1, 3] in the "new" one (the covariate drift). outcome is churn as
    churns() says, with normal noise of sd `blur` (about a quarter of the rows).
    noisy_segment: that segment's outcomes are a fair coin's (planted label noise).
    """
    rng = np.random.default_rng(seed)
    low = -1.0 if region == "old" else 1.0
    x1 = rng.uniform(-1.5, 1.5, rows)
    x2 = rng.normal(0.0, 1.0, rows)
    x3 = rng.uniform(low, low + 2.0, rows)
    segment = rng.choice(SEGMENTS, size=rows, p=[0.7, 0.3])
    churn = churns(x1, x2, x3, rng.normal(0.0, blur, rows))
    if noisy_segment is not None:
        coin = rng.random(rows) < 0.5
        churn = np.where(segment == noisy_segment, coin, churn)
    offsets = np.sort(rng.integers(0, days, rows))
    day = pd.Timestamp(first_day) + pd.to_timedelta(offsets, unit="D")
    return pd.DataFrame(
        {
            "x1": x1.round(4),
            "x2": x2.round(4),
            "x3": x3.round(4),
            "segment": segment,
            "day": day.strftime("%Y-%m-%d"),
            "outcome": np.where(churn, RARE, COMMON),
        }
    )


def write(batch: pd.DataFrame, path: Path) -> Path:
    """The batch as a CSV file (a missing value as an empty cell); returns the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    batch.to_csv(path, index=False)
    return path
