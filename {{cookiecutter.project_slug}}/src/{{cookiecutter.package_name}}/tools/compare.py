"""`python -m {{ cookiecutter.package_name }} compare`: experiments at a glance.

One row per experiment, the workspace and each branch head: its name, the model that was
trained, the headline metric and the figures that decide the loop's next turn (business
value, worst class, largest group gap, recent slice), then a column per setting that
differs between the rows (`model.C`), best headline first. It reads `dvc exp show --json`
once (every other option passes through to it: `-n 5`, `--rev`, `--all-commits`, `-A`, ...)
and takes the figures from reports/evaluate/headline.json, which evaluate writes
(evaluate.headline), and select's first from reports/select.json: DVC stays the one
experiment store.

Only runs scored alike are ranked together: on the same data (data.source and the hash
DVC recorded for it), task, metric and business settings. Runs that differ in any of these
are listed apart, each group with its reason. A model other than select's first is marked
`*` and named under the table. `--md` prints the same tables as GitHub markdown, for a CI
job summary.
"""

from __future__ import annotations

import json
import math
import os
import posixpath
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
GAP = "  "
# How far a name may be cut (with an ellipsis) before the table is split into panels:
# a name keeps this many characters, a "name figure" cell this many of its name.
NAME_KEEPS = 16
NAMED_KEEPS = 6
# Columns left out of a table when none of its rows has a figure in them.
DIAGNOSIS = frozenset({"worst class F1", "group gap", "recent"})
# The settings that make two headlines comparable, besides data (source and version).
LIKE_FOR_LIKE = ("task", "metric", "business")


@dataclass(frozen=True)
class Run:
    """One row of `dvc exp show --json`: what compare reads of it."""

    name: str
    figures: dict  # reports/evaluate/headline.json
    params: dict  # params.yaml, flattened to dotted keys (`model.C`)
    deps: dict  # dependency path -> the hash DVC recorded
    select_first: str | None  # reports/select.json's winner


@dataclass(frozen=True)
class Column:
    title: str
    numeric: bool
    # A name that may be cut with an ellipsis when the table is wider than the terminal
    # ("name"), or a "name figure" cell whose name may be cut ("named"); figures never are.
    shrinks: str = ""


@dataclass(frozen=True)
class Section:
    """Runs ranked together; `apart` says why they are not ranked with the first section."""

    runs: list[Run]
    metric: str | None
    apart: str = ""


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


def flat(node: object, prefix: str = "") -> dict[str, object]:
    """Nested settings as dotted keys; an empty mapping and a list are one value each."""
    if not isinstance(node, dict) or not node:
        return {prefix: node}
    found = {}
    for key, value in node.items():
        found.update(flat(value, f"{prefix}.{key}" if prefix else str(key)))
    return found


def _file_data(files: dict | None, path: str) -> dict:
    """The data DVC read from one metrics or params file (empty when it has none)."""
    for name, result in (files or {}).items():
        if name.replace(os.sep, "/") == path:
            return (result or {}).get("data") or {}
    return {}


def _run(entry: dict, name: str) -> Run:
    """One experiment's figures and settings (empty when it has none, e.g. a commit from
    before the pipeline ran, or an experiment still queued)."""
    data = entry.get("data") or {}
    metrics = data.get("metrics")
    params = _file_data(data.get("params"), paths.PARAMS.as_posix())
    deps = {
        posixpath.normpath(path.replace(os.sep, "/")): (dep or {}).get("hash")
        for path, dep in (data.get("deps") or {}).items()
    }
    return Run(
        name=name,
        figures=_file_data(metrics, paths.HEADLINE.as_posix()),
        params=flat(params) if params else {},
        deps=deps,
        select_first=_file_data(metrics, paths.SELECT_REPORT.as_posix()).get("winner"),
    )


def runs(shown: list[dict]) -> list[Run]:
    """The workspace, each baseline (branch name or short commit) and its experiments."""
    found = []
    for baseline in shown:
        rev = baseline.get("rev") or ""
        label = baseline.get("name") or ("workspace" if rev == "workspace" else rev[:7])
        found.append(_run(baseline, label))
        for experiment in baseline.get("experiments") or []:
            for entry in experiment.get("revs") or []:
                label = entry.get("name") or experiment.get("name") or entry.get("rev", "")[:7]
                found.append(_run(entry, label))
    return found


def setting(run: Run) -> dict[str, object]:
    """What a headline depends on besides the model: the data (its source and the version
    DVC hashed), the task, the metric it is scored by and the business settings."""
    source = run.params.get("data.source")
    version = run.deps.get(posixpath.normpath(source)) if isinstance(source, str) else None
    chosen = {k: v for k, v in run.params.items() if k.split(".")[0] in LIKE_FOR_LIKE}
    if "headline_metric" in run.figures:
        chosen["metric"] = run.figures["headline_metric"]
    return {"data": [source, version], **chosen} if run.params or run.figures else {}


def why_apart(own: dict, reference: dict) -> str:
    """Why runs of setting `own` are not ranked with those of `reference`."""
    reasons = []
    data, reference_data = own.get("data") or [None, None], reference.get("data") or [None, None]
    if data != reference_data:
        same_source = data[0] == reference_data[0]
        reasons.append(f"different data: {'another version of ' * same_source}{data[0]}")
    if own.get("task") != reference.get("task"):
        reasons.append(f"task {own.get('task')}")
    if own.get("metric") != reference.get("metric"):
        reasons.append(f"scored by {own.get('metric')}")
    changed = {
        ".".join(key.split(".")[:2])
        for key in own.keys() | reference.keys()
        if key.startswith("business.") and own.get(key) != reference.get(key)
    }
    return "; ".join(reasons + [f"{key} differs" for key in sorted(changed)])


def sections(found: list[Run]) -> list[Section]:
    """Runs grouped by setting(): first the group most runs with figures share (of those
    tied, the one DVC lists first: the workspace's, usually), then the others in DVC's
    order. A run without settings (a commit from before the pipeline) joins the first
    group: it has nothing to rank."""
    keys = [json.dumps(setting(run), sort_keys=True, default=str) for run in found]
    scored = [key for key, run in zip(keys, found, strict=True) if run.figures] or keys
    first = max(scored, key=scored.count) if scored else "{}"
    groups: dict[str, list[Run]] = {first: []}
    for key, run in zip(keys, found, strict=True):
        groups.setdefault(first if key == "{}" else key, []).append(run)
    reference = json.loads(first)
    return [
        Section(members, json.loads(key).get("metric"), why_apart(json.loads(key), reference))
        for key, members in groups.items()
    ]


def ranked(found: list[Run]) -> list[Run]:
    """Best headline first. Headlines are scikit-learn scorer values (evaluate.headline):
    greater is better, also for losses (neg_log_loss, neg_root_mean_squared_error). Rows
    without a headline follow; ties keep DVC's order."""

    def key(run: Run) -> tuple[int, float]:
        value = run.figures.get("headline")
        if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
            return (1, 0.0)
        return (0, -value)

    return sorted(found, key=key)


def recent_key(found: list[Run]) -> str | None:
    """headline.json's recent_<diagnosis.GAP_METRIC> key, if any row has one."""
    return next((k for r in found for k in r.figures if k.startswith("recent_")), None)


def differing(found: list[Run]) -> list[str]:
    """Settings that tell these runs apart: keys that two runs holding them set differently,
    in params.yaml's order (a key only some runs hold, like `model.C` beside a forest,
    counts only where it differs among those)."""
    keys = list(dict.fromkeys(k for run in found for k in run.params))
    shown = []
    for key in filter(_a_setting, keys):
        values = {json.dumps(run.params[key], default=str) for run in found if key in run.params}
        if len(values) > 1:
            shown.append(key)
    return shown


def _a_setting(key: str) -> bool:
    """Not a model file's class or export facts (`model._target_`, `model._onnx_.float32`):
    they follow from its name, already a column."""
    return not any(len(part) > 2 and part[0] == part[-1] == "_" for part in key.split("."))


def not_first(run: Run) -> bool:
    """The run trained another model than the one select ranked first."""
    model = run.figures.get("model")
    return bool(model and run.select_first and model != run.select_first)


def _number(value: object, digits: int = 4) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return MISSING
    return f"{value:.{digits}g}"


def _named(name: object, value: object) -> str:
    return MISSING if name is None else f"{name} {_number(value)}"


def _setting_text(value: object) -> str:
    """A setting as params.yaml spells it: null, true, 0.1, [a, b]."""
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(", ", ": "), default=str)


def _cells(run: Run, recent: str | None, keys: list[str]) -> list[str]:
    """One row: six significant digits for the headline (as precise as evaluate rounds it,
    six decimals, near 0..1), four for the other figures; settings as params.yaml has them."""
    figures = run.figures
    return [
        run.name,
        str(figures.get("model", MISSING)) + ("*" if not_first(run) else ""),
        _number(figures.get("headline"), 6),
        _number(figures.get("business")),
        _named(figures.get("worst_class"), figures.get("worst_class_f1")),
        _named(figures.get("gap_column"), figures.get("group_gap")),
        _number(figures.get(recent)) if recent else MISSING,
        *[_setting_text(run.params[k]) if k in run.params else MISSING for k in keys],
    ]


def table(section: Section) -> tuple[list[Column], list[list[str]]]:
    """Columns and cells. The recent column is the metric of the group gap on the most
    recent test rows. A diagnosis column that no row has a figure in is left out (worst
    class: classification only; group gap: data.groups; recent: data.time)."""
    found = section.runs
    keys = differing(found)
    columns = [
        Column("Experiment", False, "name"),
        Column("Model", False),
        # The caption names the metric whole: the title may give way to the values.
        Column(section.metric or "headline", True, "title"),
        Column("business", True),
        Column("worst class F1", False, "named"),
        Column("group gap", False, "named"),
        Column("recent", True),
    ]
    for key in keys:
        values = [r.params[key] for r in found if key in r.params]
        numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
        columns.append(Column(key, numbers))
    cells = [_cells(r, recent_key(found), keys) for r in found]
    keep = [
        i
        for i, column in enumerate(columns)
        if column.title not in DIAGNOSIS or any(row[i] != MISSING for row in cells)
    ]
    return [columns[i] for i in keep], [[row[i] for i in keep] for row in cells]


def _least(column: Column, values: list[str]) -> int:
    """The narrowest a column gets: figures and settings whole, a name cut to NAME_KEEPS
    characters, a "name figure" cell's name to NAMED_KEEPS, a metric title to its values."""
    natural = max([len(column.title), *map(len, values)])
    if column.shrinks == "name":
        return min(natural, max(NAME_KEEPS, len(column.title)))
    if column.shrinks == "named":
        cut = [min(len(v), NAMED_KEEPS + 2 + len(v.rsplit(" ", 1)[-1])) for v in values]
        return max([len(column.title), *cut])
    if column.shrinks == "title":
        return max([6, *map(len, values)])
    return natural


def _shrunk(chosen: list[int], natural: list[int], least: list[int], width: int) -> list[int]:
    """Widths of the `chosen` columns, the widest cuttable one narrowed first, until they
    fit `width` or none can give more."""
    widths = {i: natural[i] for i in chosen}
    while sum(widths.values()) + len(GAP) * (len(chosen) - 1) > width:
        cuttable = [i for i in chosen if widths[i] > least[i]]
        if not cuttable:
            break
        widths[max(cuttable, key=widths.__getitem__)] -= 1
    return [widths[i] for i in chosen]


def panels(
    columns: list[Column], cells: list[list[str]], width: int
) -> list[tuple[list[int], list[int]]]:
    """(column indices, widths) of each panel. One panel when the table fits `width` with
    names cut a little; else panels of the columns in order, each led by the experiment's
    name, so that no figure is cut and no line is wider than `width` (unless a single
    column is)."""
    values = [[row[i] for row in cells] for i in range(len(columns))]
    natural = [max([len(c.title), *map(len, v)]) for c, v in zip(columns, values, strict=True)]
    least = [_least(c, v) for c, v in zip(columns, values, strict=True)]
    every = list(range(len(columns)))
    widths = _shrunk(every, natural, least, width)
    if sum(widths) + len(GAP) * (len(every) - 1) <= width:
        return [(every, widths)]
    groups, current = [], [0]
    for i in every[1:]:
        if len(current) > 1 and sum(natural[j] + len(GAP) for j in [*current, i]) > width + 2:
            groups.append(current)
            current = [0]
        current.append(i)
    groups.append(current)
    return [(group, _shrunk(group, natural, least, width)) for group in groups]


def _cut(text: str, width: int, shrinks: str) -> str:
    """`text` in `width` characters: a name cut with an ellipsis; a "name figure" cell keeps
    its figure whole."""
    if len(text) <= width:
        return text
    if shrinks == "named" and " " in text:
        name, figure = text.rsplit(" ", 1)
        return name[: width - len(figure) - 2] + "… " + figure
    return text[: width - 1] + "…"


def render_text(columns: list[Column], cells: list[list[str]], width: int) -> str:
    blocks = []
    for chosen, widths in panels(columns, cells, width):

        def line(values: list[str], chosen=chosen, widths=widths) -> str:
            parts = []
            for i, size in zip(chosen, widths, strict=True):
                value = _cut(values[i], size, columns[i].shrinks)
                parts.append(value.rjust(size) if columns[i].numeric else value.ljust(size))
            return GAP.join(parts).rstrip()

        rule = GAP.join("-" * size for size in widths)
        blocks.append("\n".join([line([c.title for c in columns]), rule, *map(line, cells)]))
    return "\n\n".join(blocks) + "\n"


def render_markdown(columns: list[Column], cells: list[list[str]]) -> str:
    def line(values: list[str]) -> str:
        return "| " + " | ".join(v.replace("|", "\\|") for v in values) + " |"

    rule = "|" + "|".join("---:" if c.numeric else "---" for c in columns) + "|"
    return "\n".join([line([c.title for c in columns]), rule, *map(line, cells)]) + "\n"


def caption(section: Section, recent: str | None, sorted_here: bool) -> str:
    if section.metric is None:
        return "No experiment has reports/evaluate/headline.json yet: run the pipeline."
    order = "best first" if sorted_here else "in the order asked of dvc exp show"
    scored = f"{section.metric} on the test split (greater is better), {order}."
    text = (
        f"Listed apart, not ranked with the runs above ({section.apart}): {scored}"
        if section.apart
        else f"Headline metric: {scored}"
    )
    if recent:
        text += f" recent: {recent.removeprefix('recent_')} on the most recent test rows."
    return text


def notes(found: list[Run]) -> str:
    """Under the table: the runs that trained another model than select's first."""
    others = [f"{r.name} (select's first: {r.select_first})" for r in found if not_first(r)]
    return f"* not the model select ranked first: {', '.join(others)}." if others else ""


def report(section: Section, sorted_here: bool, markdown: bool, width: int) -> str:
    """One section: its caption, its table and its notes."""
    columns, cells = table(section)
    text = caption(section, recent_key(section.runs), sorted_here)
    footnote = notes(section.runs)
    if markdown:
        table_text = render_markdown(columns, cells)
        return f"{text}\n\n{table_text}" + (f"\n{footnote}\n" if footnote else "")
    wrapped = [textwrap.fill(t, width) for t in (text, footnote) if t]
    body = render_text(columns, cells, width)
    return wrapped[0] + "\n" + body + "".join(w + "\n" for w in wrapped[1:])


def main(options: list[str], markdown: bool = False) -> int:
    # --sort-by asks DVC for its order; otherwise the best headline comes first.
    sort_here = not any(o.split("=", 1)[0] == "--sort-by" for o in options)
    width = shutil.get_terminal_size().columns
    reports = []
    for section in sections(runs(exp_show(options))):
        if sort_here:
            section = Section(ranked(section.runs), section.metric, section.apart)
        reports.append(report(section, sort_here, markdown, width))
    sys.stdout.write("\n".join(reports))
    return 0
