"""`python -m {{ cookiecutter.package_name }} compare`: experiments at a glance.

One row per experiment, the workspace and each branch head: its name, the model that was
trained, the headline metric and the figures that decide the loop's next turn (business
value, worst class, largest group gap, recent slice), best headline first. It reads
`dvc exp show --json` once (every other option passes through to it: `-n 5`, `--rev`,
`--all-commits`, `-A`, ...) and takes the figures from reports/evaluate/headline.json, which
evaluate writes (evaluate.headline): DVC stays the one experiment store.
`--md` prints the same table as GitHub markdown, for a CI job summary.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import textwrap
from dataclasses import dataclass

from ..core import paths
from ..core.errors import UserError

# Options of `dvc exp show` that change its output format, which compare parses itself.
FORMAT_OPTIONS = ("--json", "--csv", "--md", "--pcp")
MISSING = "-"
HEADLINE_COLUMN = 2


@dataclass(frozen=True)
class Column:
    title: str
    numeric: bool
    # Cut (with an ellipsis) when the table is wider than the terminal: class and group
    # names may be long; the experiment's name, model and headline are never cut.
    shrinks: bool = False


def exp_show(options: list[str]) -> list[dict]:
    """`dvc exp show --json` with the caller's options: one subprocess, DVC's own rows."""
    bad = [o for o in options if o.split("=", 1)[0] in FORMAT_OPTIONS]
    if bad:
        raise UserError(
            f"compare prints its own table, so {bad[0]} does not apply: "
            f"run `dvc exp show {bad[0]}` for DVC's"
        )
    try:
        done = subprocess.run(
            [sys.executable, "-m", "dvc", "exp", "show", "--json", *options],
            capture_output=True,
            text=True,
            check=False,
            env={**os.environ, "DVC_NO_ANALYTICS": "1"},
        )
    except OSError as exc:
        raise UserError(f"could not run dvc: {exc}") from None
    if done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines()
        raise UserError(f"dvc exp show failed: {lines[-1] if lines else done.returncode}")
    return json.loads(done.stdout or "[]")


def _row(entry: dict, name: str) -> dict:
    """One experiment's name and headline figures (empty when it has none, e.g. a commit
    from before the pipeline ran, or an experiment still queued)."""
    metrics = (entry.get("data") or {}).get("metrics") or {}
    for path, result in metrics.items():
        if path.replace(os.sep, "/") == paths.HEADLINE.as_posix():
            return {"name": name, **((result or {}).get("data") or {})}
    return {"name": name}


def rows(shown: list[dict]) -> list[dict]:
    """The workspace, each baseline (branch name or short commit) and its experiments."""
    found = []
    for baseline in shown:
        rev = baseline.get("rev") or ""
        label = baseline.get("name") or ("workspace" if rev == "workspace" else rev[:7])
        found.append(_row(baseline, label))
        for experiment in baseline.get("experiments") or []:
            for entry in experiment.get("revs") or []:
                label = entry.get("name") or experiment.get("name") or entry.get("rev", "")[:7]
                found.append(_row(entry, label))
    return found


def headline_metric(found: list[dict]) -> str | None:
    """The metric most rows were scored by (the workspace's when tied)."""
    names = [r["headline_metric"] for r in found if "headline_metric" in r]
    return max(names, key=names.count) if names else None


def ranked(found: list[dict], metric: str | None) -> list[dict]:
    """Best headline first. Headlines are scikit-learn scorer values (evaluate.headline):
    greater is better, also for losses (neg_log_loss, neg_root_mean_squared_error). Rows
    scored by another metric follow, then rows without a headline; ties keep DVC's order."""

    def key(row: dict) -> tuple[int, float]:
        value = row.get("headline")
        if not isinstance(value, int | float) or math.isnan(value):
            return (2, 0.0)
        return (0 if row.get("headline_metric") == metric else 1, -value)

    return sorted(found, key=key)


def recent_key(found: list[dict]) -> str | None:
    """headline.json's recent_<diagnosis.GAP_METRIC> key, if any row has one."""
    return next((k for r in found for k in r if k.startswith("recent_")), None)


def _number(value: object, digits: int = 4) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return MISSING
    return f"{value:.{digits}g}"


def _named(name: object, value: object) -> str:
    return MISSING if name is None else f"{name} {_number(value)}"


def table(found: list[dict], metric: str | None) -> tuple[list[Column], list[list[str]]]:
    """Columns and cells; the worst-class column only when some row has one (classification).
    The recent column is the metric of the group gap on the most recent test rows."""
    recent = recent_key(found)
    columns = [
        Column("Experiment", False),
        Column("Model", False),
        Column(metric or "headline", True),
        Column("business", True),
        Column("worst class (F1)", False, shrinks=True),
        Column("group gap", False, shrinks=True),
        Column("recent", True),
    ]
    has_classes = any("worst_class" in r for r in found)
    cells = []
    for row in found:
        # Six significant digits: as precise as evaluate rounds it (six decimals) near 0..1.
        value = _number(row.get("headline"), 6)
        if row.get("headline_metric") not in (None, metric):
            value = f"{value} ({row['headline_metric']})"
        cells.append(
            [
                str(row["name"]),
                str(row.get("model", MISSING)),
                value,
                _number(row.get("business")),
                _named(row.get("worst_class"), row.get("worst_class_f1")),
                _named(row.get("gap_column"), row.get("group_gap")),
                _number(row.get(recent)) if recent else MISSING,
            ]
        )
    if not has_classes:
        columns.pop(4)
        cells = [c[:4] + c[5:] for c in cells]
    return columns, cells


def _fit(columns: list[Column], cells: list[list[str]], width: int) -> list[int]:
    """Column widths that fit `width`: a long metric name in the title gives way to the
    values (the caption has it whole), then the shrinkable columns (to 8 at least)."""
    values = [max([6] + [len(row[i]) for row in cells]) for i in range(len(columns))]
    widths = [max(len(c.title), values[i]) for i, c in enumerate(columns)]
    for may_narrow in (
        lambda i: i == HEADLINE_COLUMN and widths[i] > values[i],
        lambda i: columns[i].shrinks and widths[i] > 8,
    ):
        while sum(widths) + 2 * (len(widths) - 1) > width:
            narrower = [i for i in range(len(columns)) if may_narrow(i)]
            if not narrower:
                break
            widths[max(narrower, key=widths.__getitem__)] -= 1
    return widths


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def render_text(columns: list[Column], cells: list[list[str]], width: int) -> str:
    widths = _fit(columns, cells, width)

    def line(values: list[str]) -> str:
        parts = []
        for value, column, size in zip(values, columns, widths, strict=True):
            value = _cut(value, size)
            parts.append(value.rjust(size) if column.numeric else value.ljust(size))
        return "  ".join(parts).rstrip()

    rule = "  ".join("-" * size for size in widths)
    return "\n".join([line([c.title for c in columns]), rule, *map(line, cells)]) + "\n"


def caption(metric: str | None, recent: str | None, sorted_here: bool) -> str:
    if metric is None:
        return "No experiment has reports/evaluate/headline.json yet: run the pipeline.\n"
    order = "best first" if sorted_here else "in the order asked of dvc exp show"
    text = f"Headline metric: {metric} on the test split (greater is better), {order}."
    if recent:
        text += f" recent: {recent.removeprefix('recent_')} on the most recent test rows."
    return text + "\n"


def render_markdown(columns: list[Column], cells: list[list[str]]) -> str:
    def line(values: list[str]) -> str:
        return "| " + " | ".join(v.replace("|", "\\|") for v in values) + " |"

    rule = "|" + "|".join("---:" if c.numeric else "---" for c in columns) + "|"
    return "\n".join([line([c.title for c in columns]), rule, *map(line, cells)]) + "\n"


def main(options: list[str], markdown: bool = False) -> int:
    found = rows(exp_show(options))
    metric = headline_metric(found)
    # --sort-by asks DVC for its order; otherwise the best headline comes first.
    sort_here = not any(o.split("=", 1)[0] == "--sort-by" for o in options)
    if sort_here:
        found = ranked(found, metric)
    columns, cells = table(found, metric)
    text = caption(metric, recent_key(found), sort_here)
    if markdown:
        sys.stdout.write(text + "\n" + render_markdown(columns, cells))
    else:
        width = shutil.get_terminal_size().columns
        sys.stdout.write(textwrap.fill(text, width) + "\n" + render_text(columns, cells, width))
    return 0
