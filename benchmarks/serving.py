"""Latency and throughput of a baked project's model server on loopback: p50/p99 of 1-row and
100-row POST /predict (of the features alone, and of rows as the raw data holds them, the
target and year too), then requests per second under a bounded load (a few concurrent
clients for a fixed time). Also prints the ONNX parity of each model family. Then, in one
run under wrk against the bare FastAPI floor (floor_app.py), the server with no shadow and
with an experiment in the shadow (serve.shadow_share as shipped, and 1.0): requests/s and
p50/p99 of the answer for 1-row and 100-row requests. Not a test.

    .venv/bin/python benchmarks/serving.py [--task classification] [--seconds 20] [--clients 4]
        [--requests 200] [--models a,b] [--wrk-seconds 10]

The models are the bake's own select candidates (its params.yaml), so a model added to the
catalog is measured without an edit here; --models picks some of them.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import pandas as pd
import serving_load
import yaml

HERE = Path(__file__).resolve().parent
TEMPLATE = HERE.parent
BIN = Path(sys.executable).parent
ENV = {**os.environ, "DVC_NO_ANALYTICS": "1", "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
TASKS = ("classification", "regression")


def sh(cwd: Path, *command: str) -> str:
    env = {**ENV, "PYTHONPATH": str(cwd / "src")}
    done = subprocess.run(command, cwd=cwd, env=env, check=True, capture_output=True, text=True)
    return done.stdout


def candidates(project: Path, picked: str | None) -> list[str]:
    """The bake's select candidates in its order, or those of them named in `picked`."""
    catalog = list(yaml.safe_load((project / "params.yaml").read_text())["select"]["candidates"])
    names = [n.strip() for n in picked.split(",")] if picked else catalog
    unknown = [n for n in names if n not in catalog]
    if unknown:
        sys.exit(f"error: --models {','.join(unknown)} not in this bake: {', '.join(catalog)}")
    return names


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def records(frame: pd.DataFrame) -> list[dict]:
    """A table's rows as JSON objects, missing values as null."""
    return frame.astype(object).where(frame.notna(), None).to_dict(orient="records")


def latencies(client: httpx.Client, body: dict, n: int) -> list[float]:
    times = []
    for _ in range(n):
        started = time.perf_counter()
        answer = client.post("/predict", json=body)
        times.append(time.perf_counter() - started)
        answer.raise_for_status()
    return times


def load(url: str, body: dict, seconds: float, clients: int) -> tuple[int, int]:
    """(requests answered 200, errors) by `clients` threads posting for `seconds`."""
    done, errors, lock = [0], [0], threading.Lock()
    stop = time.perf_counter() + seconds

    def worker() -> None:
        with httpx.Client(base_url=url, timeout=30) as client:
            while time.perf_counter() < stop:
                ok = client.post("/predict", json=body).status_code == 200
                with lock:
                    done[0] += ok
                    errors[0] += not ok

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return done[0], errors[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="classification", choices=TASKS)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--requests", type=int, default=200, help="per latency figure")
    parser.add_argument("--models", help="comma-separated; default: every select candidate")
    parser.add_argument("--wrk-seconds", type=float, default=10.0, help="per shadow-table run")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        sh(Path(tmp), str(BIN / "cookiecutter"), "--no-input", str(TEMPLATE), "-o", ".",
           f"task={args.task}", "project_name=Bench")  # fmt: skip
        project = Path(tmp) / "bench"
        sh(project, "dvc", "repro")
        parity = {}
        for model in candidates(project, args.models):
            sh(project, "dvc", "exp", "run", "-S", f"model={model}")
            onnx = json.loads((project / "models/model.json").read_text())["onnx"]
            parity[model] = onnx.get("parity", {}).get("max_abs_diff", onnx["status"])
        print(f"ONNX parity, max |onnxruntime - scikit-learn| on the test split ({args.task}):")
        for model, diff in parity.items():
            print(f"  {model:24s} {diff:.3g}" if isinstance(diff, float) else f"  {model}: {diff}")

        sh(project, sys.executable, "-m", "bench", "params")
        sh(project, "dvc", "repro")
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        url = f"http://127.0.0.1:{port}"
        server = subprocess.Popen(
            [sys.executable, "-m", "bench", "serve", "--workspace", "--port", str(port)],
            cwd=project, env={**ENV, "PYTHONPATH": str(project / "src")},
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            with httpx.Client(base_url=url, timeout=30) as client:
                for _ in range(300):
                    try:
                        client.get("/health")
                        break
                    except httpx.TransportError:
                        time.sleep(0.1)
                features = client.get("/metadata").json()["features"]
                columns = features["numeric"] + list(features["categorical"])
                rows = records(pd.read_parquet(project / "data/processed/test.parquet")[columns])
                raw = sorted((project / "data/raw").glob("*.csv"))
                whole = records(pd.concat([pd.read_csv(p) for p in raw], ignore_index=True))
                bodies = {
                    "1 row": {"instances": rows[:1]},
                    "100 rows": {"instances": (rows * 2)[:100]},
                    "1 data row": {"instances": whole[:1]},
                    "100 data rows": {"instances": whole[:100]},
                }
                latencies(client, bodies["1 row"], 20)  # warm-up
                print(f"\nlatency over {args.requests} sequential requests (ms):")
                for name, body in bodies.items():
                    times = [t * 1000 for t in latencies(client, body, args.requests)]
                    print(
                        f"  {name:13s} p50 {statistics.median(times):6.2f}  "
                        f"p99 {percentile(times, 99):6.2f}"
                    )
            for name, body in bodies.items():
                ok, errors = load(url, body, args.seconds, args.clients)
                print(
                    f"throughput, {name}, {args.clients} clients, {args.seconds:.0f} s: "
                    f"{ok / args.seconds:.1f} requests/s ({errors} errors)"
                )
        finally:
            server.terminate()
            server.wait(timeout=30)
        shadow_table(project, args.wrk_seconds)


# wrk's keep-alive connections in the shadow table (serving_load.py's default).
CONNECTIONS = 4


def set_share(project: Path, share: float) -> None:
    """serve.shadow_share in the bake's service.yaml (serve reads it there, not in conf/)."""
    service = project / "service.yaml"
    setting = re.compile(r"^  shadow_share: [\d.]+$", re.MULTILINE)
    if not setting.search(service.read_text()):
        sys.exit(f"error: {service} has no serve.shadow_share line: update set_share()")
    service.write_text(setting.sub(f"  shadow_share: {share}", service.read_text()))


def shadowed_run(project: Path, share: float | None, body: Path, seconds: float):
    """One wrk run of the workspace's server, with the experiment bench-shadow in the shadow
    at `share` (None: no shadow): (the run, the shadow log's lines)."""
    shutil.rmtree(project / "logs", ignore_errors=True)
    command = [sys.executable, "-m", "bench", "serve", "--workspace"]
    if share is not None:
        set_share(project, share)
        command += ["--shadow", "bench-shadow"]
    env = {**ENV, "PYTHONPATH": str(project / "src")}
    server = serving_load.Server(command, project, env)
    measured = serving_load.measure(server, body, seconds, CONNECTIONS)[1]
    lines = sum(f.read_bytes().count(b"\n") for f in (project / "logs").glob("shadow.jsonl*"))
    return measured, lines


def shadow_table(project: Path, seconds: float) -> None:
    """Shadow off and on against the bare floor, under wrk, in one run (rows of 1 and 100)."""
    if shutil.which("wrk") is None:
        print("\nshadow table: skipped, wrk not found (`apt-get install wrk`; make bench does)")
        return
    served = json.loads((project / "models/model.json").read_text())["model"]
    other = next(m for m in candidates(project, None) if m != served)
    sh(project, "dvc", "exp", "run", "--temp", "-n", "bench-shadow", "-S", f"model={other}")
    shipped = yaml.safe_load((project / "service.yaml").read_text())["serve"]["shadow_share"]
    body = serving_load.bodies(project, project.parent)
    print(
        f"\nPOST /predict under wrk (1 thread, {CONNECTIONS} connections, {seconds:g} s), served "
        f"{served}, in the shadow {other}; floor: a bare FastAPI endpoint.\n\n"
        "| shadow | rows | req/s | p50 ms | p99 ms | req/s vs floor | p99 vs off | "
        "shadow rows logged |\n|" + " --- |" * 8
    )
    for rows in serving_load.ROWS:
        floor_server = serving_load.Server([sys.executable, "floor_app.py"], HERE, ENV)
        floor = serving_load.measure(floor_server, body[rows], seconds, CONNECTIONS)[1]
        print(f"| floor | {rows} | {serving_load.figures(floor)} | 1.00 | | |")
        off = None
        for label, share in (("off", None), (f"on, {shipped:g}", shipped), ("on, 1.0", 1.0)):
            measured, lines = shadowed_run(project, share, body[rows], seconds)
            off = off or measured
            print(
                f"| {label} | {rows} | {serving_load.figures(measured)} | "
                f"{measured.per_second / floor.per_second:.2f} | "
                f"{measured.p99_ms / off.p99_ms:.2f} | "
                f"{lines if share else '-'} |"
            )
        set_share(project, shipped)


if __name__ == "__main__":
    main()
