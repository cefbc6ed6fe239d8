"""Time each turn of a baked project's docs/reality-loop.md, run exactly as written, and
print which stages each turn reran.

    .venv/bin/python benchmarks/walkthrough.py [--task classification|regression] [--turns N]

--turns runs the first N turns only (each turn builds on the one before); the whole doc is
tests/test_walkthrough.py's.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import template_package  # noqa: E402  (tests/ is not a package)

TEMPLATE = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
STAGES = template_package.STAGES


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--task", default="classification", choices=["classification", "regression"]
    )
    parser.add_argument("--turns", type=int, help="only the first N turns (default: all)")
    args = parser.parse_args()
    env = {**os.environ, "DVC_NO_ANALYTICS": "1", "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [str(BIN / "cookiecutter"), "--no-input", str(TEMPLATE), "-o", tmp,
             f"task={args.task}", "project_name=Loop Bench"],
            check=True, capture_output=True, env=env,
        )  # fmt: skip
        root = Path(tmp) / "loop-bench"
        env["PYTHONPATH"] = str(root / "src")
        doc = (root / "docs/reality-loop.md").read_text()
        print(f"task={args.task}, {os.cpu_count()} cores")
        for section in re.split(r"^## ", doc, flags=re.M)[1:][: args.turns]:
            title = section.splitlines()[0]
            started, log = time.perf_counter(), ""
            for block in re.findall(r"```bash\n(.*?)```", section, flags=re.S):
                done = subprocess.run(
                    ["bash", "-euo", "pipefail", "-c", block],
                    cwd=root,
                    env=env,
                    capture_output=True,
                    text=True,
                    check=True,
                )
                log += done.stdout
            reran = [s for s in STAGES if f"Running stage '{s}'" in log] or ["none"]
            print(f"{title[:60]:60s} {time.perf_counter() - started:6.1f} s  {' '.join(reran)}")


if __name__ == "__main__":
    main()
