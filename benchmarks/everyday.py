"""Everyday speed on the built-in data (issue 24): the commands of a small change, each
against the one-process floor (`python -m <package> run`), with the stage preloader on
(the default) and off (REALITYLOOP_PRELOAD=0). One bake; rounds alternate which of on and
off goes first; each row is the median of the rounds, with each round's figure.

"cold": the first run after every preload server of the bake was stopped (its directory
.dvc/tmp/preload removed, then any process still running from the bake killed); "warm":
the server a previous run started is still up (REALITYLOOP_PRELOAD_IDLE is set long enough
that it outlives the runs between). The OS page cache stays warm either way.
Prints one table of commands and one of stages; progress goes to stderr. Exits 1 after
the tables when a run failed or timed out.

    .venv/bin/python benchmarks/everyday.py [--repeat 3] [--timeout 900]
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path

from scale import (
    ENV,
    RUNNING,
    STAGES,
    Run,
    bake,
    exit_if_failed,
    machine,
    progress,
    run,
    table,
)

# The preloader's contract: a server per project with its socket under this directory, on
# unless REALITYLOOP_PRELOAD=0, gone after REALITYLOOP_PRELOAD_IDLE idle seconds or once
# its socket is removed.
PRELOAD_DIR = Path(".dvc", "tmp", "preload")
# Longer than any run between two "on" runs, so that "warm" is warm.
IDLE_SECONDS = "1800"
# Set in every run's environment: a process that outlives its run (a preload server,
# however it detached) still carries it, so stop() finds what this benchmark started.
MARKER = "EVERYDAY_BENCH_PROJECT"
# How often a running command's output is read: the resolution of the stage wall times.
POLL = 0.05
# The targets: repro -f and an experiment within 1.5x of the floor; the no-op as
# fast as it was (1.0-1.5 s).
RATIO_TARGET = 1.5
NOOP_TARGET = 1.5


@dataclass(frozen=True)
class Measure:
    what: str  # floor | repro | exp | noop
    mode: str  # floor | on, cold | on, warm | off

    @property
    def label(self) -> str:
        command = LABELS[self.what]
        return command if self.what == "floor" else f"{command} ({self.mode})"


LABELS = {
    "floor": "python -m <package> run (the floor)",
    "repro": "dvc repro -f",
    "exp": "dvc exp run -S model.C=<new>",
    "noop": "no-op dvc repro",
}
# The rows, in print order.
MEASURES = [
    Measure("floor", "floor"),
    *(Measure("repro", mode) for mode in ("on, cold", "on, warm", "off")),
    *(Measure(what, mode) for what in ("exp", "noop") for mode in ("on, warm", "off")),
]
STOP = Measure("stop", "-")


@dataclass
class Stamped(Run):
    """A run whose output lines carry the second (since its start) they were read at."""

    stamps: list[tuple[float, str]] = field(default_factory=list)

    def stages_ran(self) -> list[str]:
        return [m[1] for _, line in self.stamps if (m := RUNNING.search(line))]

    def stage_walls(self) -> dict[str, float]:
        """Each stage DVC ran: from its `Running stage` line to the next one (the last: to
        the last line), so process start, imports and DVC's hashing and lock update count."""
        starts = [(t, m[1]) for t, line in self.stamps if (m := RUNNING.search(line))]
        ends = [t for t, _ in starts[1:]] + ([self.stamps[-1][0]] if starts else [])
        return {name: end - start for (start, name), end in zip(starts, ends, strict=True)}

    def inside(self) -> dict[str, float]:
        """Each stage's own time, as its progress `done ... seconds=` line gives it."""
        return {name: seconds for name, (seconds, _) in self.costs().items()}


def stamped(cwd: Path, *command: str, env: dict[str, str], timeout: float) -> Stamped:
    """scale.run, each output line stamped, read every POLL seconds."""
    stamps: list[tuple[float, str]] = []
    done = run(cwd, *command, timeout=timeout, env=env, poll=POLL, stamps=stamps)
    return Stamped(done.status, done.seconds, done.log, stamps)


def preload_pids(project: Path) -> list[int]:
    """This user's processes that carry the bake's MARKER or run inside the bake."""
    marker = f"{MARKER}={project}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if entry.stat().st_uid != os.getuid():
                continue
            environ = (entry / "environ").read_bytes().split(b"\0")
            cwd = Path(os.readlink(entry / "cwd"))
        except OSError:  # gone meanwhile, or a zombie
            continue
        if marker in environ or cwd == project or project in cwd.parents:
            found.append(int(entry.name))
    return found


def stop(project: Path, grace: float = 5.0) -> list[str]:
    """Stop every preload server of the bake: remove its socket's directory (the server
    exits by itself), then kill by id what still runs after `grace` seconds; their
    command lines."""
    shutil.rmtree(project / PRELOAD_DIR, ignore_errors=True)
    deadline = time.monotonic() + grace
    while (pids := preload_pids(project)) and time.monotonic() < deadline:
        time.sleep(0.1)
    killed = []
    for pid in pids:
        with contextlib.suppress(OSError):  # it may exit meanwhile
            command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
            os.kill(pid, signal.SIGKILL)
            killed.append(command.decode(errors="replace").strip()[:80])
    return killed


def schedule(round_: int) -> list[Measure]:
    """One round's steps, STOP before each cold run; odd rounds run off before on, so that
    neither always finds the machine as the other left it."""
    floor, cold, warm, repro_off, exp_on, exp_off, noop_on, noop_off = MEASURES
    pairs = [([STOP, cold, warm], [repro_off]), ([exp_on], [exp_off]), ([noop_on], [noop_off])]
    steps = [floor]
    for on, off in pairs:
        steps += off + on if round_ % 2 else on + off
    return steps


class Bench:
    """The runs of one bake, by measure; what the preloader did between them."""

    def __init__(self, project: Path, package: str, timeout: float) -> None:
        self.project, self.package, self.timeout = project, package, timeout
        self.runs: dict[Measure, list[Stamped]] = {m: [] for m in MEASURES}
        self.killed: list[str] = []  # what still ran seconds after its socket went
        self.server_seen = False
        # A new C for every experiment: a value seen before is restored from DVC's run cache.
        self.values = (f"{0.3 + 0.1 * k:g}" for k in itertools.count())

    def env(self, mode: str) -> dict[str, str]:
        env = {**ENV, MARKER: str(self.project), "REALITYLOOP_PRELOAD_IDLE": IDLE_SECONDS}
        env.pop("REALITYLOOP_PRELOAD", None)  # on: the default, as a user runs it
        if not mode.startswith("on"):
            env["REALITYLOOP_PRELOAD"] = "0"
        if mode == "floor":
            env["PYTHONPATH"] = str(self.project / "src")
        return env

    def command(self, what: str) -> tuple[str, ...]:
        if what == "floor":
            return (sys.executable, "-m", self.package, "run")
        if what == "exp":
            c = next(self.values)
            return ("dvc", "exp", "run", "-S", "model=logistic_regression", "-S", f"model.C={c}")
        return ("dvc", "repro", "-f") if what == "repro" else ("dvc", "repro")

    def step(self, measure: Measure) -> Stamped | None:
        if measure == STOP:
            self.killed += stop(self.project)
            return None
        progress(measure.label)
        run = stamped(self.project, *self.command(measure.what), env=self.env(measure.mode),
                      timeout=self.timeout)  # fmt: skip
        self.server_seen |= (self.project / PRELOAD_DIR).exists()
        self.runs[measure].append(run)
        return run

    def warm_up(self) -> None:
        """The first repro and a first experiment, off and not measured: outputs, a commit
        to run experiments on, and the model picked, so that each measured one changes C only."""
        self.unmeasured("noop")
        subprocess.run(["git", "add", "-A"], cwd=self.project, check=True)
        subprocess.run(["git", "commit", "-qm", "first repro"], cwd=self.project, check=True)
        self.unmeasured("exp")

    def unmeasured(self, what: str) -> None:
        progress(f"warm-up: {' '.join(self.command(what)[:3])}, off")
        run = stamped(self.project, *self.command(what), env=self.env("off"),
                      timeout=self.timeout)  # fmt: skip
        if run.status != "ok":
            raise RuntimeError(f"warm-up {what} {run.status}: {': '.join(run.failure())}")


def target(measure: Measure, median: float, floor: float | None) -> str:
    """The issue's target for the row, and whether the median met it."""
    if measure.what == "noop":
        return f"<= {NOOP_TARGET} s: {'met' if median <= NOOP_TARGET else 'missed'}"
    if measure.what == "floor" or not floor:
        return ""
    met = median / floor <= RATIO_TARGET
    return f"<= {RATIO_TARGET}x: {'met' if met else 'missed'}"


def summary_row(measure: Measure, runs: list[Stamped], floor: float | None) -> tuple[str, ...]:
    """(command and mode, median wall, each run's, ratio to the floor, target, note); a
    failed run puts its status in the median's place and its error in the note."""
    each = ", ".join(f"{r.seconds:.1f}" for r in runs)
    failed = next((r for r in runs if r.status != "ok"), None)
    if failed or not runs:
        status = failed.status if failed else "failed"
        note = ": ".join(failed.failure()) if failed else "not run"
        return (measure.label, f"{status} at {failed.seconds:.1f} s" if failed else status,
                each, "-", "-", note)  # fmt: skip
    median = statistics.median(r.seconds for r in runs)
    ratio = f"{median / floor:.2f}x" if floor else "-"
    counts = sorted({len(r.stages_ran()) for r in runs})
    ran = "/".join(map(str, counts))
    note = f"{len(STAGES)} stages, one process" if measure.what == "floor" else f"stages run: {ran}"
    return (measure.label, f"{median:.1f} s", each, ratio, target(measure, median, floor), note)


def stage_rows(runs: dict[Measure, list[Stamped]]) -> list[tuple[str, ...]]:
    """Per stage, medians: the floor's own time, and in each `dvc repro -f` mode its own
    time / its wall time inside DVC; last, the time outside any stage. Of the runs that
    finished: a killed one's last stage and its total are cut short."""
    floor, *repro = ([r for r in runs[m] if r.status == "ok"] for m in MEASURES[:4])

    def cell(values: list[float]) -> str:
        return f"{statistics.median(values):.2f}" if values else "-"

    rows = []
    for stage in STAGES:
        inside = [cell([r.inside()[stage] for r in floor if stage in r.inside()])]
        for mode in repro:
            own = cell([r.inside()[stage] for r in mode if stage in r.inside()])
            wall = cell([r.stage_walls()[stage] for r in mode if stage in r.stage_walls()])
            inside.append(f"{own} / {wall}")
        rows.append((stage, *inside))
    outside = [cell([r.seconds - sum(r.inside().values()) for r in floor])]
    outside += [cell([r.seconds - sum(r.stage_walls().values()) for r in mode]) for mode in repro]
    return [*rows, ("outside any stage", *outside)]


def versions() -> str:
    names = ("dvc", "pandas", "scikit-learn")
    return ", ".join(f"{name} {version(name)}" for name in names)


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def busy(load_before: str) -> str | None:
    """A warning when other work ran too: a 1-minute load past the cores, before or after."""
    peak = max(float(load_before.split()[0]), os.getloadavg()[0])
    cores = os.cpu_count() or 1
    if peak <= cores:
        return None
    return (f"warning: load {peak:.1f} on {cores} cores: other work shared the machine, so "
            "figures vary run to run; compare on and off within a round")  # fmt: skip


def measure(out: Path, repeat: int, timeout: float) -> Bench:
    """Bake into `out`, warm up, then `repeat` rounds; every preload server stopped after."""
    progress("bake (default answers)")
    _, project, package = bake(out)
    bench = Bench(project.resolve(), package, timeout)
    try:
        bench.warm_up()
        for round_ in range(repeat):
            progress(f"round {round_ + 1} of {repeat}")
            for step in schedule(round_):
                bench.step(step)
    finally:
        bench.killed += stop(bench.project)
    return bench


HEADER = ("command (preloader)", "median", "each run", "x floor", "target", "note")
STAGE_HEADER = ("stage", "floor", "repro -f on, cold", "on, warm", "off")


def report(bench: Bench, load_before: str) -> list[tuple[str, ...]]:
    """Print both tables and what the preloader left; the command rows."""
    floor_runs = bench.runs[MEASURES[0]]
    ok = floor_runs and all(r.status == "ok" for r in floor_runs)
    floor = statistics.median(r.seconds for r in floor_runs) if ok else None
    rows = [summary_row(m, bench.runs[m], floor) for m in MEASURES]
    print(f"{machine()}; {versions()}")
    print(f"load average (1, 5, 15 min): {load_before} before, {load()} after")
    if warning := busy(load_before):
        print(warning)
    print(table(rows, HEADER, (False, True, True, True, False, False)))
    print("\nPer stage, median seconds: the floor's own time; in `dvc repro -f`, the stage's")
    print("own time (its `done seconds=`) / its wall time in DVC (process start, imports, DVC's")
    print("hashing and lock update). Outside any stage: the rest of the command's wall time.")
    print(table(stage_rows(bench.runs), STAGE_HEADER, (False, True, True, True, True)))
    if not bench.server_seen:
        print(f"preloader: no server appeared under {PRELOAD_DIR}: on and off measured the same")
    # Its socket removed, a server must be gone within the grace: else "Nothing lingers" fails.
    lingered = f"{len(bench.killed)} process(es) of the bake ran on 5 s later, killed by id:"
    print(f"after removing {PRELOAD_DIR}: {lingered if bench.killed else 'nothing left running'}")
    for command in bench.killed:
        print(f"  {command}")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="rounds (the median is of these)")
    parser.add_argument("--timeout", type=float, default=900, help="seconds per command")
    args = parser.parse_args()
    load_before = load()
    progress(machine())
    with tempfile.TemporaryDirectory() as tmp:
        try:
            bench = measure(Path(tmp), args.repeat, args.timeout)
        except Exception as exc:  # a broken bake or warm-up is a line, not a traceback
            print(f"{machine()}; {versions()}")
            sys.exit(f"error: everyday speed not measured: {exc}")
    exit_if_failed(report(bench, load_before))


if __name__ == "__main__":
    main()
