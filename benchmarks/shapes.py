"""Every table shape (benchmarks/synthetic.py's SHAPES) through `dvc exp run` end to end
with the default model (model=auto: select picks), against the budgets: 5 minutes end to
end and 3 GB (3,072 MB, as progress lines count) per stage. One bake per task; prints one
table of each shape's wall time and each stage's time and peak RSS, from its progress
`done` lines. A failed or timed-out shape is a row, not a crash (the script exits 1 after
the table); a shape over budget is marked OVER. Progress goes to stderr.

    .venv/bin/python benchmarks/shapes.py [--shapes long,wide,...] [--rows 1e6]
        [--timeout 900] [--data-dir DIR] [--template PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import tempfile
from pathlib import Path

from scale import (
    TEMPLATE,
    Run,
    bake,
    exit_if_failed,
    machine,
    progress,
    run,
    synthetic_data,
    table,
)
from synthetic import SHAPES

BUDGET_SECONDS = 300
BUDGET_MB = 3072
# progress.py's line when a stage ran on Dask: each worker's peak, which the stage's own
# `done` line (the scheduler's process) does not count.
WORKERS = re.compile(r"(\w+) +dask workers\b.* peak_rss_mb=([\d,]+)")
HEADER = ("what", "wall", "peak RSS", "budget", "note")
RIGHT = (False, True, True, False, False)


def overrides(shape: str, data: Path) -> list[str]:
    """The `-S` options that point the default data settings at this shape's table."""
    spec = SHAPES[shape]
    options = [f"data.source={data}", f"data.target={spec.target}"]
    options += [f"data.groups=[{','.join(spec.groups)}]"]
    options += [f"data.time={spec.time}"] if spec.time else []
    return [arg for option in options for arg in ("-S", option)]


def verdict(over: bool) -> str:
    return "OVER" if over else "ok"


def shape_rows(shape: str, result: Run, winner: str) -> list[tuple[str, ...]]:
    """The end-to-end row (with select's winner), then one row per stage that finished."""
    costs = result.costs()
    peak = max((mb for _, mb in costs.values()), default=0)
    workers = {m[1]: max(map(int, m[2].split(","))) for m in WORKERS.finditer(result.log)}
    wall, note = f"{result.seconds:.1f} s", f"winner {winner}"
    if result.status != "ok":
        stage, error = result.failure()
        wall, note = f"{result.status} at {wall}", f"{stage}: {error}"
    over = result.status != "ok" or result.seconds > BUDGET_SECONDS or peak > BUDGET_MB
    rows = [(f"{shape}: end to end", wall, f"{peak} MB" if costs else "-", verdict(over), note)]
    for stage, (seconds, mb) in costs.items():
        worker = workers.get(stage, 0)
        note = f"Dask workers up to {worker} MB each" if worker else ""
        over = max(mb, worker) > BUDGET_MB
        rows.append((f"{shape}: {stage}", f"{seconds:.1f} s", f"{mb} MB", verdict(over), note))
    return rows


def measure(shape: str, project: Path, data: Path, timeout: float) -> list[tuple[str, ...]]:
    progress(f"{shape}: dvc exp run end to end (timeout {timeout:.0f} s)")
    report = project / "reports" / "select.json"
    report.unlink(missing_ok=True)  # the previous shape's winner is not this one's
    command = ["dvc", "exp", "run", *overrides(shape, data)]
    result = run(project, *command, timeout=timeout)
    winner = json.loads(report.read_text())["winner"] if report.is_file() else "-"
    return shape_rows(shape, result, winner)


def task_rows(task: str, shapes: list[str], args: argparse.Namespace) -> list[tuple[str, ...]]:
    """Bake once for `task`, then run each of its shapes in that project."""
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "bake").mkdir()
        _, project, _ = bake(Path(tmp) / "bake", f"task={task}", template=args.template)
        for shape in shapes:
            try:
                data = synthetic_data(args.rows, args.data_dir or Path(tmp), shape=shape)
                rows += measure(shape, project, data, args.timeout)
            except Exception as exc:  # a broken generator is a row too, not a crash
                progress(f"{shape}: {exc!r}")
                rows.append((f"{shape}: end to end", "failed", "-", "OVER", repr(exc)[:120]))
    return rows


def load() -> str:
    return "load average (1, 5, 15 min): " + ", ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", default=",".join(SHAPES), help="which shapes, comma-separated")
    parser.add_argument("--rows", type=float, default=1e6, help="rows per shape")
    parser.add_argument("--timeout", type=float, default=900, help="seconds per shape")
    parser.add_argument("--data-dir", type=Path, help="keep generated tables here for reruns")
    parser.add_argument("--template", type=Path, default=TEMPLATE, help="template to bake")
    args = parser.parse_args()
    shapes = [s.strip() for s in args.shapes.split(",")]
    unknown = sorted(set(shapes) - set(SHAPES))
    if unknown:
        parser.error(f"unknown shape(s) {', '.join(unknown)}: pick from {', '.join(SHAPES)}")
    args.rows, args.template = int(args.rows), args.template.resolve()
    if args.data_dir:
        args.data_dir = args.data_dir.resolve()
        args.data_dir.mkdir(parents=True, exist_ok=True)
    progress(f"{machine()}; {load()}")
    started = load()
    rows: list[tuple[str, ...]] = []
    for task in dict.fromkeys(SHAPES[s].task for s in shapes):
        try:
            rows += task_rows(task, [s for s in shapes if SHAPES[s].task == task], args)
        except RuntimeError as exc:  # the bake failed: say so, and go on with the other task
            progress(f"{task}: {exc}")
            rows.append((f"bake task={task}", "failed", "-", "OVER", str(exc)[:120]))
    print(f"{machine()}; template {args.template}; {args.rows:,} rows per shape")
    print(f"{started} at the start, {load()} at the end")
    print(table(rows, HEADER, RIGHT), flush=True)
    exit_if_failed(rows)


if __name__ == "__main__":
    main()
