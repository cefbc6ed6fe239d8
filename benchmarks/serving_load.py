"""The model server under load from wrk (C, not the server's own Python): requests/s and
p50/p99 of 1-row and 100-row POST /predict, for 1 and 2 workers and the skops and ONNX
paths, each against the same runs of a bare FastAPI endpoint answering a constant (the
framework's floor here). Also counts non-2xx answers, socket errors, and the prediction log's
lines, with the rows the server counted lost (its shutdown line), against the requests
answered (read after SIGTERM). Prints a markdown table; not a test.

    .venv/bin/python benchmarks/serving_load.py [--task classification] [--seconds 10]
        [--connections 4] [--workers 1 2] [--paths skops onnx]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pandas as pd

HERE = Path(__file__).resolve().parent
TEMPLATE = HERE.parent
BIN = Path(sys.executable).parent
ENV = {**os.environ, "DVC_NO_ANALYTICS": "1", "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
PACKAGE = "bench"  # the package of a project named "Bench"
ROWS = (1, 100)
PATHS = ("skops", "onnx")
TASKS = ("classification", "regression")
WARMUP_SECONDS = 2


@dataclass
class Load:
    """One wrk run: answered requests by status, latency percentiles, socket errors."""

    seconds: float
    statuses: dict[int, int]
    p50_ms: float
    p99_ms: float
    socket_errors: int

    @property
    def answered(self) -> int:
        return sum(n for status, n in self.statuses.items() if 200 <= status < 300)

    @property
    def non_2xx(self) -> int:
        return sum(self.statuses.values()) - self.answered

    @property
    def server_errors(self) -> int:
        return sum(n for status, n in self.statuses.items() if status >= 500)

    @property
    def per_second(self) -> float:
        return self.answered / self.seconds


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wrk(url: str, body: Path, seconds: float, connections: int) -> Load:
    """The issue's method: one wrk thread, `connections` keep-alive connections, loopback."""
    done = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", "--latency",
         "-s", str(HERE / "wrk_post.lua"), f"{url}/predict", "--", str(body)],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    # wrk prints its own report first; wrk_post.lua's done() prints the last line, JSON.
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    return Load(
        seconds=figures["duration_us"] / 1e6,
        statuses={int(k): v for k, v in figures["statuses"].items()},
        p50_ms=figures["p50_us"] / 1000,
        p99_ms=figures["p99_us"] / 1000,
        socket_errors=sum(figures["socket_errors"].values()),
    )


class Server:
    """A server process on a free loopback port; stopped with SIGTERM like a service manager."""

    def __init__(self, command: list[str], cwd: Path, env: dict[str, str]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [*command, "--port", str(self.port)], cwd=cwd, env=env,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip

    def wait_ready(self, timeout: float = 120) -> None:
        stop = time.monotonic() + timeout
        while time.monotonic() < stop:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited {self.process.returncode}: {self.stderr()}")
            try:
                # Not /predict (it would add to the log) and not /health (the floor has none).
                httpx.get(f"{self.url}/openapi.json", timeout=5).raise_for_status()
                return
            except httpx.TransportError:
                time.sleep(0.1)
        raise RuntimeError(f"server not answering after {timeout:.0f} s")

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            return -9

    def stderr(self) -> str:
        return self.process.stderr.read()[-2000:] if self.process.stderr else ""


def measure(server: Server, body: Path, seconds: float, connections: int) -> tuple[Load, Load]:
    """(warm-up, measured): the warm-up opens every connection, so each worker has answered."""
    server.wait_ready()
    try:
        warmup = wrk(server.url, body, WARMUP_SECONDS, connections)
        return warmup, wrk(server.url, body, seconds, connections)
    finally:
        code = server.stop()
        if code not in (0, -signal.SIGTERM):
            print(f"  (server exited {code} on SIGTERM: {server.stderr().strip()[-300:]})")


def serve_options(project: Path) -> tuple[bool, str | None]:
    """(has --workers, the option choosing skops or ONNX or None), from `serve --help`."""
    help_text = sh(project, sys.executable, "-m", PACKAGE, "serve", "--help")
    for option, choices in re.findall(r"(--[\w-]+)[ =]\{([^}]*)\}", help_text):
        if {"onnx", "skops"} <= set(choices.split(",")):
            return "--workers" in help_text, option
    return "--workers" in help_text, "--runtime" if "--runtime" in help_text else None


def sh(cwd: Path, *command: str) -> str:
    env = {**ENV, "PYTHONPATH": str(cwd / "src")}
    return subprocess.run(
        command, cwd=cwd, env=env, check=True, capture_output=True, text=True
    ).stdout


def keep_every_line(project: Path) -> None:
    """Rotation stays on (it is part of the cost), with backups enough to keep every line.
    serve's settings live in service.yaml, not in conf/ (`params` composes conf/ only)."""
    service = project / "service.yaml"
    setting = re.compile(r"^  log_backups: \d+$", re.MULTILINE)
    text = service.read_text()
    if not setting.search(text):
        sys.exit(f"error: {service} has no serve.log_backups line: update keep_every_line()")
    service.write_text(setting.sub("  log_backups: 100000", text))


def rows_lost(stderr: str) -> int:
    """The rows the server's workers counted lost (one shutdown line each, when any)."""
    return sum(int(n) for n in re.findall(r"(\d+) rows not logged since the start", stderr))


def log_lines(project: Path) -> int:
    """Lines of the prediction log and every rotated backup."""
    logs = project / "logs"
    return sum(f.read_bytes().count(b"\n") for f in logs.glob("predictions.jsonl*"))


def log_verdict(lines: int, answered: int, rows: int, connections: int) -> str:
    """Which unit the log counts; wrk stops with up to `connections` requests in flight,
    which the server answers and logs after wrk stopped counting."""
    for unit, per in (("= requests", 1), ("= rows", rows)):
        if answered * per <= lines <= (answered + connections) * per:
            return f"{lines} {unit}"
    return f"{lines} MISMATCH ({answered} answered)"


def bodies(project: Path, directory: Path) -> dict[int, Path]:
    """POST bodies of 1 and 100 valid rows of the test split, as files for wrk."""
    features = json.loads((project / "models/model.json").read_text())["features"]
    columns = features["roles"]["numeric"] + list(features["categorical"])
    rows = pd.read_parquet(project / "data/processed/test.parquet")[columns]
    rows = rows.astype(object).where(rows.notna(), None).to_dict(orient="records")
    paths = {}
    for n in ROWS:
        paths[n] = directory / f"body-{n}.json"
        paths[n].write_text(json.dumps({"instances": (rows * (n // len(rows) + 1))[:n]}))
    return paths


def figures(load: Load) -> str:
    return f"{load.per_second:,.0f} | {load.p50_ms:.2f} | {load.p99_ms:.2f}"


def floor_runs(body: dict[int, Path], args: argparse.Namespace) -> dict[tuple[int, int], Load]:
    """The bare endpoint (floor_app.py) under the same wrk runs, by (workers, rows)."""
    runs = {}
    for workers in args.workers:
        for rows in ROWS:
            command = [sys.executable, "floor_app.py", "--workers", str(workers)]
            server = Server(command, HERE, ENV)
            runs[workers, rows] = measure(server, body[rows], args.seconds, args.connections)[1]
    return runs


def server_row(project: Path, command: list[str], rows: int, body: Path, floor: Load,
               args: argparse.Namespace) -> str:  # fmt: skip
    """The table cells after path, rows and workers for one run of the model server."""
    shutil.rmtree(project / "logs", ignore_errors=True)
    env = {**ENV, "PYTHONPATH": str(project / "src")}
    server = Server(command, project, env)
    warmup, load = measure(server, body, args.seconds, args.connections)
    lost = rows_lost(server.stderr())
    lines = log_lines(project)
    # Every answered row is a line of the log or counted lost by the server.
    verdict = log_verdict(lines + lost, warmup.answered + load.answered, rows, 2 * args.connections)
    if lost:
        verdict += f" ({lines} lines, {lost} counted lost)"
    return (
        f"{figures(load)} | {figures(floor)} | {load.per_second / floor.per_second:.2f} | "
        f"{load.non_2xx} ({load.server_errors}) | {load.socket_errors} | {verdict} |"
    )


HEADER = (
    "| path | rows | workers | req/s | p50 ms | p99 ms | floor req/s | floor p50 | floor p99 "
    "| req/s vs floor | non-2xx (5xx) | socket errors | log lines |\n|" + " --- |" * 13
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="classification", choices=TASKS)
    parser.add_argument("--seconds", type=float, default=10.0, help="per wrk run")
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--paths", nargs="+", default=list(PATHS), choices=PATHS)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("error: wrk not found; install it with `apt-get install wrk` (make bench does)")

    with tempfile.TemporaryDirectory() as tmp:
        sh(Path(tmp), str(BIN / "cookiecutter"), "--no-input", str(TEMPLATE), "-o", ".",
           f"task={args.task}", "project_name=Bench")  # fmt: skip
        project = Path(tmp) / "bench"
        sh(project, sys.executable, "-m", PACKAGE, "run")
        keep_every_line(project)
        body = bodies(project, Path(tmp))
        has_workers, runtime = serve_options(project)
        floor = floor_runs(body, args)

        print(
            f"\nPOST /predict under wrk (1 thread, {args.connections} connections, "
            f"{args.seconds:g} s, loopback), {args.task}; floor: a bare FastAPI endpoint "
            f"answering a constant to the same body.\n\n{HEADER}"
        )
        for path in args.paths:
            for workers in args.workers:
                for rows in ROWS:
                    cells = f"| {path} | {rows} | {workers} |"
                    missing = (
                        "--workers" if workers > 1 and not has_workers
                        else "runtime option" if path != "skops" and not runtime
                        else None
                    )  # fmt: skip
                    if missing:
                        na = f"n/a: server has no {missing} | | | {figures(floor[workers, rows])}"
                        print(f"{cells} {na} |" + " |" * 4)
                        continue
                    command = [sys.executable, "-m", PACKAGE, "serve", "--workspace"]
                    command += ["--workers", str(workers)] if workers > 1 else []
                    command += [runtime, path] if runtime else []
                    row = server_row(project, command, rows, body[rows], floor[workers, rows], args)
                    print(f"{cells} {row}")
        if not runtime:
            print("\nThe server has no runtime option: the skops rows are its default path.")


if __name__ == "__main__":
    main()
