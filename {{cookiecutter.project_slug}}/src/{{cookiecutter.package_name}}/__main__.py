"""Command line of the project.

`python -m {{ cookiecutter.package_name }} <stage>` runs one pipeline stage (dvc.yaml does this);
`... params` composes conf/ into params.yaml; `... run` runs every stage in order, in-process;
#% if cookiecutter.remote_sources == "yes"
`... fetch [NAME ...]` snapshots the remote sources of data.fetch; `... add-batch PATH` adds a
batch file to the data.source folder and tracks it with DVC.
#% else
`... add-batch PATH` adds a batch file to the data.source folder and tracks it with DVC.
#% endif
#% if cookiecutter.serving == "yes"
`... serve` serves the model over HTTP; `... monitor` checks logged inputs for drift;
#% endif
`... compare` lists the experiments, best headline metric first (options it does not know
go to `dvc exp show`). Stages log progress (progress.py); `--quiet` before the command, or
LOG_LEVEL=WARNING in the environment, keeps only warnings and errors.
"""

from __future__ import annotations

import os

# Native thread pools start at one thread, set before numpy/scikit-learn load them: code
# outside compute.py's contexts stays single-threaded (no oversubscription next to joblib,
# sums in a fixed order). Fitting, cross-validation and prediction raise the pools to
# compute.n_jobs inside those contexts.
for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import argparse  # noqa: E402
import importlib  # noqa: E402
#% if cookiecutter.serving == "yes"
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

#% else
import sys  # noqa: E402

#% endif
from . import progress  # noqa: E402
from .errors import UserError  # noqa: E402

STAGES = ("ingest", "clean", "annotate", "preprocess", "select", "train", "evaluate", "export")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m {{ cookiecutter.package_name }}",
        description=__doc__,
    )
    parser.add_argument(
        "-q", "--quiet", action="store_true", help="warnings and errors only (or LOG_LEVEL)"
    )
    commands = parser.add_subparsers(dest="command", required=True)
    for stage in STAGES:
        commands.add_parser(stage, help=f"run the {stage} stage")
#% if cookiecutter.remote_sources == "yes"
    fetch = commands.add_parser("fetch", help="snapshot data.fetch sources to data/fetched/")
    fetch.add_argument("names", nargs="*", help="data.fetch entries (default: all)")
#% endif
    add = commands.add_parser("add-batch", help="add a batch file to data.source, then dvc add")
    add.add_argument("path", help="the new .csv or .parquet batch file")
    add.add_argument("--name", help="batch name (default: the file's name without suffix)")
    add.add_argument("--no-dvc", action="store_true", help="copy only; run `dvc add` yourself")
    commands.add_parser(
        "run", help="run all stages in order, in this process (dvc repro is the usual way)"
    )
    sync = commands.add_parser("params", help="compose conf/ into params.yaml")
    sync.add_argument("--check", action="store_true", help="fail if params.yaml differs from conf/")
    sync.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. model=random_forest")
#% if cookiecutter.serving == "yes"
    serve = commands.add_parser("serve", help="serve the model over HTTP (service.yaml: serve)")
    serve.add_argument("--host", help="address to bind (default serve.host, loopback)")
    serve.add_argument("--port", type=int, help="port (default serve.port)")
    serve.add_argument(
        "--workers", type=_positive, help="server processes (default serve.workers, 1)"
    )
    which = serve.add_mutually_exclusive_group()
    which.add_argument("--stage", help="GTO stage whose model to serve (default serve.stage)")
    which.add_argument("--workspace", action="store_true", help="serve models/model.skops")
    serve.add_argument(
        "--runtime",
        choices=["auto", "onnx", "skops"],
        help="what computes predictions (default serve.runtime; auto = ONNX when exported)",
    )
    monitor = commands.add_parser("monitor", help="drift of logged inputs (service.yaml: monitor)")
    monitor.add_argument("--log", type=Path, help="prediction log (default serve.prediction_log)")
    monitor.add_argument("--fail-on-drift", action="store_true", help="exit 3 on drift")
    monitor.add_argument(
        "--to-batch", type=Path, metavar="CSV", help="write the logged rows as a raw data batch"
    )
#% endif
    compare = commands.add_parser(
        "compare",
        help="experiments at a glance, best first; other options go to `dvc exp show`",
    )
    compare.add_argument("--md", action="store_true", help="GitHub markdown (CI job summary)")
    args, passed = parser.parse_known_args(argv)
    if passed and args.command != "compare":
        parser.error(f"unrecognized arguments: {' '.join(passed)}")

    try:
        progress.configure(args.command, progress.level(args.quiet, os.environ))
        if args.command == "compare":
            from . import compare as compare_command

            return compare_command.main(passed, markdown=args.md)
        if args.command == "params":
            from . import config_sync

            return config_sync.main((["--check"] if args.check else []) + args.overrides)
        if args.command == "add-batch":
            from . import add_batch

            add_batch.main(args.path, args.name, track=not args.no_dvc)
            return 0
#% if cookiecutter.remote_sources == "yes"
        if args.command in ("fetch", "run"):
            from .stages import fetch as fetch_stage

            with progress.stage("fetch"):
                fetch_stage.main(args.names if args.command == "fetch" else None)
            if args.command == "fetch":
                return 0
#% endif
#% if cookiecutter.serving == "yes"
        if args.command in ("serve", "monitor"):
            return _operate(args)
#% endif
        for stage in STAGES if args.command == "run" else (args.command,):
            with progress.stage(stage):
                importlib.import_module(f".stages.{stage}", __package__).main()
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


#% if cookiecutter.serving == "yes"
def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 1")
    return int(text)


def _operate(args: argparse.Namespace) -> int:
    """serve and monitor: imported here, so that pipeline stages never load FastAPI."""
    from .params import load, load_service

    service = load_service()
    if args.command == "monitor":
        from . import monitor

        return monitor.main(load(), service, args.log, args.to_batch, args.fail_on_drift)
    from .serving.app import serve

    settings = service.serve
    stage = None if args.workspace else (args.stage or settings.stage)
    if args.runtime:
        settings = settings.model_copy(update={"runtime": args.runtime})
    serve(
        Path.cwd(),
        settings,
        stage,
        args.host or settings.host,
        args.port or settings.port,
        args.workers or settings.workers,
    )
    return 0


#% endif
if __name__ == "__main__":
    sys.exit(main())
