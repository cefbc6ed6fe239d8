"""The local engine against the dask engine on the data stages: bake, a synthetic table
(benchmarks/synthetic.py) of --rows rows in --batches Parquet files as data.source, then
ingest, clean, annotate and preprocess (those the bake has), each as
`python -m <package> <stage>` (no DVC: it would cache a copy of every output), first with
compute.engine=local, then with compute.engine=dask on a LocalCluster of 2 worker
processes (compute.n_jobs=2 for both). Prints one table: per stage and engine the wall
time, the stage process's peak RSS (its progress `done` line), each worker's peak RSS
(its `dask workers` line) and whether the dask engine's outputs equal the local engine's
(Parquet read back with the bake's io.read_parquet and pd.testing.assert_frame_equal,
JSON parsed, other files byte for byte). A stage without a dask path (no
`<package>/dask_engine/<stage>.py`) runs on the local engine in the dask run too, and says so.

    .venv/bin/python benchmarks/dask_engine.py [--rows 1e7] [--batches 10]
        [--data-dir DIR] [--timeout 3600]

Above LOCAL_MAX_ROWS the local engine does not run (one process would hold the table):
only the stages with a dask path run, and each output is deleted as soon as no later
stage reads it, so disk holds the data and about two stages' outputs. Progress on stderr.
"""

from __future__ import annotations

import argparse
import importlib
import json
import re
import shutil
import sys
import tempfile
from pathlib import Path

import pandas as pd
import yaml
from scale import ENV, Run, bake, machine, progress, run, synthetic_data, table

STAGES = ("ingest", "clean", "annotate", "preprocess")
LOCAL_MAX_ROWS = 20_000_000
# cluster.py's line when a stage's client closes: `<time> <stage> dask workers workers=N
# peak_rss_mb=A,B`.
WORKERS = re.compile(r"dask workers workers=\d+ peak_rss_mb=([\d,]+)")
HEADER = ("stage", "engine", "wall", "peak RSS", "workers' peak RSS", "outputs / note")
RIGHT = (False, False, True, True, True, False)
SYNTHETIC = ("data.target=label", "data.time=event_time", "data.groups=[gender]")


class Project:
    """A baked project run stage by stage, with its data stages' outputs from dvc.yaml."""

    def __init__(self, root: Path, package: str, timeout: float) -> None:
        self.root, self.package, self.timeout = root, package, timeout
        self.env = {**ENV, "PYTHONPATH": str(root / "src")}
        declared = yaml.safe_load((root / "dvc.yaml").read_text())["stages"]
        self.stages = [s for s in STAGES if s in declared]
        self.outs = {s: [self._path(o) for o in declared[s].get("outs", [])] for s in self.stages}
        self.deps = {s: [self._path(d) for d in declared[s].get("deps", [])] for s in self.stages}

    @staticmethod
    def _path(entry: str | dict) -> str:
        return entry if isinstance(entry, str) else next(iter(entry))

    def has_dask_path(self, stage: str) -> bool:
        return (self.root / "src" / self.package / "dask_engine" / f"{stage}.py").is_file()

    def configure(self, data: Path, engine: str) -> None:
        """params.yaml composed from conf/ with the synthetic table and `engine`."""
        done = run(self.root, sys.executable, "-m", self.package, "params",
                   f"data.source={data}", *SYNTHETIC, "compute.n_jobs=2",
                   f"compute.engine={engine}", env=self.env)  # fmt: skip
        if done.status != "ok":
            raise RuntimeError(f"params: {done.failure()[1]}")

    def run(self, stage: str) -> Run:
        return run(self.root, sys.executable, "-m", self.package, stage,
                   timeout=self.timeout, env=self.env)  # fmt: skip

    def unread(self, stage: str, later: list[str]) -> list[str]:
        """`stage`'s outputs that none of the `later` stages reads."""
        read = {d for s in later for d in self.deps[s]}
        return [o for o in self.outs[stage] if o not in read]


def remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def cells(result: Run, stage: str, engine: str, note: str) -> tuple[str, ...]:
    """One table row from a stage's run and its progress lines."""
    cost = result.costs().get(stage)
    workers = WORKERS.search(result.log)
    wall = f"{result.seconds:.1f} s"
    if result.status != "ok":
        wall, note = f"{result.status} at {wall}", result.failure()[1]
    return (
        stage,
        engine,
        wall,
        f"{cost[1]} MB" if cost else "-",
        f"{workers[1].replace(',', ', ')} MB" if workers else "-",
        note,
    )


def compare(io, local: Path, dask: Path) -> str:
    """'equal', or what differs between the local engine's output and the dask engine's."""
    if not dask.exists():
        return "missing"
    if not local.exists():
        return "no local engine output to compare"
    if local.suffix == ".parquet":
        try:
            pd.testing.assert_frame_equal(io.read_parquet(dask), io.read_parquet(local))
        except AssertionError as exc:
            return str(exc).strip().splitlines()[0][:80]
        return "equal"
    if local.suffix == ".json":
        left, right = json.loads(local.read_text()), json.loads(dask.read_text())
        if left == right:
            return "equal"
        if not (isinstance(left, dict) and isinstance(right, dict)):
            return "differs"
        keys = sorted(k for k in left.keys() | right.keys() if left.get(k) != right.get(k))
        return f"keys {', '.join(keys)} differ"
    return "equal" if local.read_bytes() == dask.read_bytes() else "bytes differ"


def outputs_verdict(io, project: Project, stage: str, aside: Path) -> str:
    """'equal' when every output of `stage` equals the local engine's kept under `aside`,
    else each output that differs and how."""
    differences = []
    for out in project.outs[stage]:
        verdict = compare(io, aside / out, project.root / out)
        if verdict != "equal":
            differences.append(f"{out}: {verdict}")
    return "; ".join(differences) or "equal"


def measure(rows: int, data: Path, workdir: Path, timeout: float) -> list[tuple[str, ...]]:
    """Bake, then run the data stages on each engine; the table's rows."""
    (workdir / "bake").mkdir()
    _, root, package = bake(workdir / "bake")
    project = Project(root, package, timeout)
    aside = workdir / "local-engine"
    table_rows: list[tuple[str, ...]] = []
    local = rows <= LOCAL_MAX_ROWS
    if local:
        project.configure(data, "local")
        for stage in project.stages:
            progress(f"{stage} on the local engine")
            result = project.run(stage)
            table_rows.append(cells(result, stage, "local", ""))
            if result.status != "ok":
                break
        for out in {o for s in project.stages for o in project.outs[s]}:
            if (root / out).exists():
                (aside / out).parent.mkdir(parents=True, exist_ok=True)
                shutil.move(root / out, aside / out)
    else:
        table_rows.append(("all", "local", "-", "-", "-",
                           f"not run above {LOCAL_MAX_ROWS:,} rows: one process "
                           "would hold the table"))  # fmt: skip
    sys.path.insert(0, str(root / "src"))  # the bake's io reads what its stages wrote
    io = importlib.import_module(f"{package}.core.io")
    project.configure(data, "dask")
    for i, stage in enumerate(project.stages):
        dask_path = project.has_dask_path(stage)
        if not (dask_path or local):
            table_rows.append((stage, "dask", "-", "-", "-", "not run: no dask path"))
            break
        progress(f"{stage} on the dask engine" + ("" if dask_path else " (no dask path: local)"))
        result = project.run(stage)
        note = "" if dask_path else "no dask path: ran on the local engine; "
        if local and result.status == "ok":
            note += f"outputs {outputs_verdict(io, project, stage, aside)}"
        table_rows.append(cells(result, stage, "dask", note.rstrip("; ")))
        if result.status != "ok":
            break
        for earlier in project.stages[: i + 1]:  # disk: what no later stage reads goes
            for out in project.unread(earlier, project.stages[i + 1 :]):
                remove(aside / out)
                if not local:
                    remove(root / out)
    # Stage by stage, each local row before its dask row (a stable sort); "all" first.
    return sorted(table_rows, key=lambda r: STAGES.index(r[0]) if r[0] in STAGES else -1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="1e7", help="rows of the synthetic table")
    parser.add_argument("--batches", type=int, default=10, help="Parquet batch files")
    parser.add_argument("--data-dir", type=Path, help="keep generated tables here for reruns")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds per stage")
    args = parser.parse_args()
    rows = int(float(args.rows))
    progress(machine())
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = args.data_dir.resolve() if args.data_dir else Path(tmp)
        data_dir.mkdir(parents=True, exist_ok=True)
        data = synthetic_data(rows, data_dir, args.batches)
        table_rows = measure(rows, data, Path(tmp), args.timeout)
    print(machine())
    print(f"{rows:,} rows in {args.batches} Parquet batches; dask: LocalCluster of 2 workers")
    print(table(table_rows, HEADER, RIGHT), flush=True)


if __name__ == "__main__":
    main()
