"""Time what a user waits for: bake, first `dvc repro`, a no-op repro, one experiment,
`dvc exp show`, and going back to a tagged version. Prints one line per step.

    .venv/bin/python benchmarks/pipeline.py [--task classification|regression] [--repeat N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TEMPLATE = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def timed(cwd: Path, *command: str) -> float:
    env = {**os.environ, "DVC_NO_ANALYTICS": "1", "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    started = time.perf_counter()
    subprocess.run(command, cwd=cwd, env=env, check=True, capture_output=True)
    return time.perf_counter() - started


def one_round(task: str) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        figures = {"bake (cookiecutter + hooks)": timed(
            out, str(BIN / "cookiecutter"), "--no-input", str(TEMPLATE), "-o", ".",
            f"task={task}", "project_name=Bench",
        )}  # fmt: skip
        project = out / "bench"
        figures["first dvc repro (8 stages)"] = timed(project, "dvc", "repro")
        figures["no-op dvc repro"] = timed(project, "dvc", "repro")
        timed(project, "git", "add", "-A")
        timed(project, "git", "commit", "-qm", "run")
        timed(project, "git", "tag", "v1")
        figures["dvc exp run -S model=random_forest"] = timed(
            project, "dvc", "exp", "run", "-S", "model=random_forest"
        )
        figures["dvc exp show"] = timed(project, "dvc", "exp", "show", "--csv")
        timed(project, "git", "stash", "-q")
        figures["git checkout v1 && dvc checkout"] = timed(
            project, "sh", "-c", "git checkout -q v1 && dvc checkout"
        )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--task", default="classification", choices=["classification", "regression"]
    )
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    rounds = [one_round(args.task) for _ in range(args.repeat)]
    print(f"task={args.task}, {args.repeat} rounds, {os.cpu_count()} cores: median (min-max) s")
    for step in rounds[0]:
        values = [r[step] for r in rounds]
        print(f"{step:40s} {statistics.median(values):6.2f} ({min(values):.2f}-{max(values):.2f})")


if __name__ == "__main__":
    main()
