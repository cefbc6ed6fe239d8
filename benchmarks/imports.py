"""What each stage spends importing: one bake, its built-in data through `dvc repro` once,
then every stage run again as its own process with `python -X importtime`, round by round
(each round runs each stage once, so load on the machine spreads over all of them). Prints
one table: per stage the median seconds of imports (every module's own import time summed)
and of wall time, the share of imports, and its heaviest top-level packages.

    .venv/bin/python benchmarks/imports.py [--task classification|regression] [--repeat 3]
        [--template PATH]

--template measures another copy of the template (a `git worktree` of an older commit:
before and after a change).
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
from collections import Counter
from pathlib import Path

from scale import ENV, STAGES, TEMPLATE, Run, bake, machine, progress, run, table

# `import time: <self us> | <cumulative us> | <indent><module>`, one line per module.
IMPORT_LINE = re.compile(r"^import time:\s+(\d+) \|\s+\d+ \|\s*(\S+)", re.MULTILINE)
HEADER = ("stage", "imports", "wall", "imports/wall", "heaviest imports")
RIGHT = (False, True, True, True, False)


def import_seconds(log: str) -> Counter[str]:
    """Seconds of each top-level package's modules (their own time, not their children's)."""
    spent: Counter[str] = Counter()
    for micros, module in IMPORT_LINE.findall(log):
        spent[module.split(".")[0]] += int(micros) / 1e6
    return spent


def stage_runs(project: Path, package: str, repeat: int, timeout: float) -> dict[str, list[Run]]:
    """Each stage `repeat` times, a round at a time, outside DVC, on the outputs of the
    repro before it (each stage rewrites the same bytes)."""
    # The stage preloader (REALITYLOOP_PRELOAD) would fork the stage from a process that
    # imported its libraries already: off, so the stage pays its own imports.
    env = {**ENV, "PYTHONPATH": "src", "REALITYLOOP_PRELOAD": "0"}
    command = (sys.executable, "-X", "importtime", "-m", package, "--quiet")
    runs: dict[str, list[Run]] = {stage: [] for stage in STAGES}
    for round_ in range(1, repeat + 1):
        progress(f"round {round_} of {repeat}")
        for stage in STAGES:
            done = run(project, *command, stage, timeout=timeout, env=env)
            if done.status != "ok":
                sys.exit(f"error: {stage} {done.status}: {done.failure()[1]}")
            runs[stage].append(done)
    return runs


def rows(runs: dict[str, list[Run]]) -> list[tuple[str, ...]]:
    """One row per stage (medians), then the pipeline's total."""
    out, total_imports, total_wall = [], 0.0, 0.0
    for stage, done in runs.items():
        spent = [import_seconds(r.log) for r in done]
        imports = statistics.median(sum(s.values()) for s in spent)
        wall = statistics.median(r.seconds for r in done)
        heaviest = sum(spent, Counter()).most_common(3)
        top = ", ".join(f"{name} {seconds / len(done):.2f}" for name, seconds in heaviest)
        out.append((stage, f"{imports:.2f} s", f"{wall:.2f} s", f"{imports / wall:.0%}", top))
        total_imports, total_wall = total_imports + imports, total_wall + wall
    share = f"{total_imports / total_wall:.0%}"
    return [*out, ("all stages", f"{total_imports:.2f} s", f"{total_wall:.2f} s", share, "")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--task", default="classification", choices=["classification", "regression"]
    )
    parser.add_argument("--repeat", type=int, default=3, help="runs of each stage (median)")
    parser.add_argument("--template", type=Path, default=TEMPLATE, help="the template to bake")
    parser.add_argument("--timeout", type=float, default=900, help="seconds per run")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        progress(f"bake ({args.task}) and a first dvc repro")
        _, project, package = bake(Path(tmp), f"task={args.task}", template=args.template)
        first = run(project, "dvc", "repro", timeout=args.timeout)
        if first.status != "ok":
            sys.exit(f"error: dvc repro {first.status}: {': '.join(first.failure())}")
        runs = stage_runs(project, package, args.repeat, args.timeout)
    print(machine())
    print(f"task={args.task}, median of {args.repeat} run(s) per stage; imports: -X importtime")
    print(table(rows(runs), HEADER, RIGHT), flush=True)


if __name__ == "__main__":
    main()
