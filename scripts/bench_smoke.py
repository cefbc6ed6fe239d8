"""Every benchmark once with tiny settings (`make bench-smoke`, run by .ci/run): each must
exit 0 and print a figure on stdout, so a benchmark that stopped running fails CI instead of
waiting for the next `make bench`. Prints each script's wall time; exits 1 naming those that
failed. A script whose system tool is missing (sshd, wrk) is skipped with one line.

    .venv/bin/python scripts/bench_smoke.py [--only scale.py,shapes.py] [--timeout 900]
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
# Not benchmarks but their parts, run by the scripts below; tests/test_benchmarks.py checks
# that every other benchmarks/*.py script has a line in SMOKE.
HELPERS = {
    "floor_app.py": "the bare FastAPI endpoint serving_load.py starts",
    "synthetic.py": "the table generator scale.py, shapes.py and dask_engine.py call",
}
# Tiny settings: each script's whole path (bake, pipeline, server, remote) on little work.
SMOKE = {
    # One round (no median): every command of the table on and off, cold and warm.
    "everyday.py": ["--repeat", "1", "--timeout", "600"],
    "scale.py": ["--sizes", "2000", "--skip-builtin", "--timeout", "600"],
    # wide: the regression bake (scale.py ran the classification one) and the widest table.
    "shapes.py": ["--rows", "3000", "--shapes", "wide", "--timeout", "600"],
    "pipeline.py": ["--repeat", "1"],
    "imports.py": ["--repeat", "1"],
    "serving.py": [
        "--seconds",
        "1",
        "--requests",
        "5",
        "--models",
        "logistic_regression",
        "--wrk-seconds",
        "1",
    ],
    "walkthrough.py": ["--turns", "1"],
    "dask_engine.py": ["--rows", "20000", "--batches", "2", "--timeout", "600"],
    "ssh_remote.py": ["--size-mb", "4", "--files", "2", "--timeout", "300"],
    "serving_load.py": ["--seconds", "1", "--workers", "1", "--paths", "skops"],
}
# The system tool a script needs (`make bench-smoke` installs them when run as root).
NEEDS = {"ssh_remote.py": "/usr/sbin/sshd", "serving_load.py": "wrk"}
# A figure: a decimal number on a line that is not the machine description.
FIGURE = re.compile(r"^(?!machine:).*\d\.\d", re.MULTILINE)


def missing_tool(script: str) -> str | None:
    tool = NEEDS.get(script)
    found = tool and (Path(tool).exists() if tool.startswith("/") else shutil.which(tool))
    return None if not tool or found else tool


def smoke(script: str, timeout: float) -> str | None:
    """Run `script` with its SMOKE settings; None when it passed, else why it failed."""
    command = [sys.executable, str(BENCHMARKS / script), *SMOKE[script]]
    print(f"== {' '.join(command[1:])}", flush=True)
    try:
        done = subprocess.run(command, stdout=subprocess.PIPE, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return f"still running after {timeout:.0f} s"
    print(done.stdout, end="", flush=True)
    if done.returncode:
        return f"exit {done.returncode}"
    return None if FIGURE.search(done.stdout) else "printed no figures"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="comma-separated scripts (default: all in SMOKE)")
    parser.add_argument("--timeout", type=float, default=900, help="seconds per script")
    args = parser.parse_args()
    scripts = args.only.split(",") if args.only else list(SMOKE)
    unknown = [s for s in scripts if s not in SMOKE]
    if unknown:
        sys.exit(f"error: no smoke settings for {', '.join(unknown)}: pick from {', '.join(SMOKE)}")
    failed, times = [], []
    for script in scripts:
        tool = missing_tool(script)
        if tool:
            print(
                f"== {script}: skipped, {tool} is missing (apt-get install it; make does as root)"
            )
            continue
        started = time.perf_counter()
        why = smoke(script, args.timeout)
        times.append(f"{script} {time.perf_counter() - started:.1f} s")
        if why:
            print(f"bench-smoke: {script} failed: {why}", file=sys.stderr, flush=True)
            failed.append(script)
    print(f"bench-smoke wall times: {', '.join(times)}")
    if failed:
        sys.exit(f"error: bench-smoke: {', '.join(failed)} failed (output above)")


if __name__ == "__main__":
    main()
