"""How the pipeline scales: bake, the built-in data under DVC and in one process (the floor),
then `dvc exp run` end to end on synthetic tables of growing size (benchmarks/synthetic.py),
with each stage's wall time and peak RSS as its progress `done` line gives them.
Prints one table; progress goes to stderr. A failed or timed-out size is a row, not a crash
(the script then exits 1 after the table).

    .venv/bin/python benchmarks/scale.py [--sizes 1e5,1e6,1e7] [--data-dir DIR]
        [--timeout 3600] [--skip-builtin]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from synthetic import write as write_synthetic

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import template_package  # noqa: E402  (tests/ is not a package)

TEMPLATE = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
ENV = {**os.environ, "DVC_NO_ANALYTICS": "1", "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
# progress.py's line at a stage's end: `<time> <stage> done ... seconds=S peak_rss_mb=M`.
COST = re.compile(r"(\w+) +done\b.* seconds=([\d.]+) peak_rss_mb=(\d+)")
RUNNING = re.compile(r"Running stage '([^']+)'")
ERROR = re.compile(r"^(error: |[\w.]*(Error|Exception)\b)")
HEADER = ("what", "wall", "peak RSS", "note")
STAGES = template_package.STAGES


@dataclass
class Run:
    status: str  # ok | failed | timeout
    seconds: float
    log: str

    def costs(self) -> dict[str, tuple[float, int]]:
        return {m[1]: (float(m[2]), int(m[3])) for m in COST.finditer(self.log)}

    def failure(self) -> tuple[str, str]:
        """(the first stage that did not finish, its last error line)."""
        stage = next((s for s in STAGES if s not in self.costs()), "-")
        if self.status == "timeout":
            return stage, "still running when killed at --timeout"
        lines = [line.strip() for line in self.log.splitlines() if line.strip()] or ["no output"]
        errors = [line for line in lines if ERROR.match(line)] or [
            line for line in lines if "ERROR" in line
        ]
        return stage, (errors or lines)[-1][:100]


def progress(message: str) -> None:
    """A line on stderr, labelled with the running script (other benchmarks import this)."""
    label = Path(sys.argv[0]).stem
    print(f"[{label} {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def run(
    cwd: Path,
    *command: str,
    timeout: float = 3600,
    env: dict | None = None,
    poll: float = 0.5,
    stamps: list | None = None,
) -> Run:
    """Run `command` in its own process group, echo stage lines as progress, kill it all on
    timeout. Output goes to a file (read with pread, so the child's offset is untouched;
    a file, not a pipe: a server a stage forked may hold it open for its life), read every
    `poll` seconds; with `stamps`, each line is appended with the second it was read at."""
    started = time.perf_counter()
    with tempfile.TemporaryFile() as out:
        proc = subprocess.Popen(command, cwd=cwd, env=env or ENV, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
        seen, status = 0, None
        try:
            while status is None:
                # Wakes at the exit, not at the next half second: timings of a few
                # seconds (a push, a pull) would otherwise be whole half seconds.
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=poll)
                seconds = time.perf_counter() - started
                if proc.poll() is not None:
                    status = "ok" if proc.returncode == 0 else "failed"
                elif seconds > timeout:
                    status = "timeout"
                new = os.pread(out.fileno(), 1 << 24, seen)
                new = new[: new.rfind(b"\n") + 1]
                seen += len(new)
                for line in new.decode(errors="replace").splitlines():
                    if stamps is not None:
                        stamps.append((seconds, line))
                    if COST.search(line) or RUNNING.search(line):
                        progress(f"  {line.strip()}")
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        log = os.pread(out.fileno(), os.fstat(out.fileno()).st_size, 0).decode(errors="replace")
    return Run(status, time.perf_counter() - started, log)


def bake(out: Path, *answers: str, template: Path = TEMPLATE) -> tuple[Run, Path, str]:
    """Bake `template` with the default answers, but for `answers` ("key=value"), into
    `out`: (the run, project dir, package name)."""
    baked = run(out, str(BIN / "cookiecutter"), "--no-input", str(template), "-o", ".", *answers)
    if baked.status != "ok":
        raise RuntimeError(f"bake failed: {baked.failure()[1]}")
    project = next(out.glob("*/dvc.yaml")).parent
    return baked, project, next((project / "src").iterdir()).name


def row(what: str, result: Run, note: str | None = None) -> tuple[str, ...]:
    """(what, wall, the largest stage peak RSS seen, note: a failure's stage and error)."""
    peaks = [mb for _, mb in result.costs().values()]
    wall = f"{result.seconds:.1f} s"
    if result.status != "ok":
        wall, note = f"{result.status} at {wall}", note or ": ".join(result.failure())
    return (what, wall, f"{max(peaks)} MB" if peaks else "-", note or "")


def builtin(rows: list[tuple[str, ...]], timeout: float) -> None:
    """Append the bake and built-in-data rows (each as soon as it is measured)."""
    with tempfile.TemporaryDirectory() as tmp:
        progress("bake (default answers)")
        baked, project, _ = bake(Path(tmp))
        rows.append(row("bake", baked))
        progress("built-in: first dvc repro")
        first = run(project, "dvc", "repro", timeout=timeout)
        rows.append(row("built-in: first dvc repro", first))
        progress("built-in: no-op dvc repro")
        rows.append(row("built-in: no-op dvc repro", run(project, "dvc", "repro")))
        run(project, "git", "add", "-A")
        run(project, "git", "commit", "-qm", "first repro")
        progress("built-in: dvc exp run (hyperparameter)")
        exp = run(project, "dvc", "exp", "run", "-S", "model=logistic_regression",
                  "-S", "model.C=0.5", timeout=timeout)  # fmt: skip
        rows.append(row("built-in: dvc exp run (hyperparameter)", exp))
    with tempfile.TemporaryDirectory() as tmp:
        _, project, package = bake(Path(tmp))
        what = f"built-in: one-process floor (python -m {package} run)"
        progress(what)
        env = {**ENV, "PYTHONPATH": str(project / "src")}
        floor = run(project, sys.executable, "-m", package, "run", timeout=timeout, env=env)
        rows.append(row(what, floor))
    if first.status == floor.status == "ok":
        rows.append(("ratio first repro / floor", f"{first.seconds / floor.seconds:.2f}x", "", ""))


def synthetic_data(
    rows: int, folder: Path, batches: int | None = None, shape: str = "long"
) -> Path:
    """The synthetic table of `shape` as a folder of batches (by default one per 250,000
    rows, 1 to 10); an existing complete folder is reused."""
    default = max(1, min(10, rows // 250_000))
    batches = batches or default
    name = f"synthetic-{rows}" if shape == "long" else f"synthetic-{shape}-{rows}"
    target = folder / (name if batches == default else f"{name}-{batches}")
    if not target.is_dir():
        progress(f"generating {rows:,} {shape} rows in {batches} batch(es) under {target}")
        partial = folder / f"{target.name}.partial"
        shutil.rmtree(partial, ignore_errors=True)  # an interrupted run's batches
        write_synthetic(rows, partial, batches=batches, shape=shape)
        partial.rename(target)
    return target


def scale(rows: list[tuple[str, ...]], label: str, data_dir: Path | None, timeout: float) -> None:
    """Append one size's rows: end to end, then each stage that reported its cost."""
    size = int(float(label))
    with tempfile.TemporaryDirectory() as tmp:
        data = synthetic_data(size, data_dir or Path(tmp))
        (Path(tmp) / "bake").mkdir()
        _, project, _ = bake(Path(tmp) / "bake")
        progress(f"{label}: dvc exp run end to end ({size:,} rows, timeout {timeout:.0f} s)")
        # logistic_regression named, not select's winner (model=auto): the figures in the
        # bake's docs/large-data.md are this model's, so that reruns stay comparable.
        result = run(project, "dvc", "exp", "run", "-S", f"data.source={data}",
                     "-S", "data.target=label", "-S", "data.time=event_time",
                     "-S", "data.groups=[gender]", "-S", "model=logistic_regression",
                     timeout=timeout)  # fmt: skip
    stage, error = result.failure()
    failed = f"{stage} {result.status}" if result.status != "ok" else None
    rows.append(row(f"{label}: end to end", result, failed))
    for name, (seconds, mb) in result.costs().items():
        rows.append((f"{label}: {name}", f"{seconds:.1f} s", f"{mb} MB", ""))
    if result.status != "ok":
        rows.append((f"{label}: {stage}", result.status, "-", error))


def machine() -> str:
    kib = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text())[1])
    cpu = re.search(r"model name\s*:\s*(.+)", Path("/proc/cpuinfo").read_text())
    cpu_name = f", {cpu[1].strip()}" if cpu else ""
    memory = f"{kib / 2**20:.1f} GiB RAM{cpu_name}, Python {platform.python_version()}"
    return f"machine: {os.cpu_count()} cores, {memory}"


def exit_if_failed(rows: list[tuple[str, ...]]) -> None:
    """Exit 1 when a run failed or timed out (its row says so in the wall column), so that
    `make bench-smoke` catches a benchmark that no longer runs."""
    failed = [r[0] for r in rows if r[1].startswith(("failed", "timeout"))]
    if failed:
        sys.exit(f"error: {len(failed)} run(s) did not finish: {', '.join(failed)}")


def table(
    rows: list[tuple[str, ...]],
    header: tuple[str, ...] = HEADER,
    right: tuple[bool, ...] = (False, True, True, False),
) -> str:
    """Markdown rows, aligned; the columns flagged in `right` (wall, peak RSS) right-aligned."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    columns = list(zip(widths, right, strict=True))

    def line(cells: tuple[str, ...]) -> str:
        padded = [c.rjust(w) if r else c.ljust(w) for c, (w, r) in zip(cells, columns, strict=True)]
        return "| " + " | ".join(padded) + " |"

    rule = "| " + " | ".join("-" * (w - r) + ":" * r for w, r in columns) + " |"
    return "\n".join([line(header), rule, *map(line, rows)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1e5,1e6,1e7", help="rows per synthetic run")
    parser.add_argument("--data-dir", type=Path, help="keep generated tables here for reruns")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds per run")
    parser.add_argument("--skip-builtin", action="store_true", help="only the synthetic sizes")
    args = parser.parse_args()
    progress(machine())
    if args.data_dir:
        args.data_dir = args.data_dir.resolve()
        args.data_dir.mkdir(parents=True, exist_ok=True)
    sections = [] if args.skip_builtin else [("built-in", builtin, ())]
    sections += [(s.strip(), scale, (s.strip(), args.data_dir)) for s in args.sizes.split(",")]
    rows: list[tuple[str, ...]] = []
    for name, section, section_args in sections:
        try:
            section(rows, *section_args, args.timeout)
        except Exception as exc:  # a broken bake or generator is a row too, not a crash
            progress(f"{name}: {exc!r}")
            rows.append((name, "failed", "-", repr(exc)[:120]))
    print(machine())
    print(table(rows), flush=True)
    exit_if_failed(rows)


if __name__ == "__main__":
    main()
