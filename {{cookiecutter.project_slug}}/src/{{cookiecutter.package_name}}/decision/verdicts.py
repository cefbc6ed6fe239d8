"""What `decide` judges and what it concludes: the contract between its parts.

evidence.py scores both models on the same rows (Rows, Answers); gates.py turns those
into Gates and a Judgement; record.py writes the judgement down; promote.py acts on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from ..core.params import BusinessParams, Task

Verdict = Literal["PROMOTE", "HOLD", "REJECT"]
# pass: met; fail: broken (REJECT); hold: cannot be judged, too few rows or an interval
# that straddles the threshold (HOLD); n/a: does not apply (no champion, no data.time).
Outcome = Literal["pass", "fail", "hold", "n/a"]
# decide's exit status per verdict, so CI can act on it (docs/serving.md).
EXIT_STATUS: dict[str, int] = {"PROMOTE": 0, "HOLD": 3, "REJECT": 4}


@dataclass(frozen=True)
class Answers:
    """One model's answers on the shared rows."""

    predicted: np.ndarray
    # Classification: one column per class, in Rows.classes' order; None: no probabilities.
    proba: np.ndarray | None = None


@dataclass(frozen=True)
class Rows:
    """The rows both models are scored on: the challenger's test split, less any row the
    champion trained on."""

    truth: np.ndarray
    # The data.groups columns the rows have, one line per row, values as text.
    groups: pd.DataFrame
    # Which rows are the recent slice (evaluate.recent_fraction by data.time); None
    # without data.time.
    recent: np.ndarray | None
    # Classification: the classes in proba's column order (the challenger's classes_).
    classes: list | None


@dataclass(frozen=True)
class Yardstick:
    """How both models are scored: the challenger's settings (its params.yaml)."""

    task: Task
    metric: str
    business: BusinessParams


@dataclass(frozen=True)
class Gate:
    """One line of the verdict: what was measured against what, and the outcome."""

    name: str
    value: float | None
    threshold: float | None
    outcome: Outcome
    detail: str


@dataclass(frozen=True)
class Judgement:
    """Every metric and interval measured (JSON-ready), the gates, the verdict."""

    measures: dict
    gates: list[Gate]
    verdict: Verdict
