"""Command line of the project.

`python -m {{ cookiecutter.package_name }} <stage>` runs one pipeline stage, any module of stages/
(dvc.yaml does this); `... params` composes conf/ into params.yaml; `... run` runs
dvc.yaml's stages in its order, in-process;
#% if cookiecutter.remote_sources == "yes"
`... fetch [NAME ...]` snapshots the remote sources of data.fetch; `... add-batch PATH` adds a
batch file to the data.source folder and tracks it with DVC.
#% else
`... add-batch PATH` adds a batch file to the data.source folder and tracks it with DVC.
#% endif
#% if cookiecutter.serving == "yes"
`... serve` serves the model over HTTP; `... monitor` checks logged inputs for drift (and
with --act rolls prod back to the last version that held when service.yaml's alert: says);
`... feedback FILE` stores labels that arrive later for logged rows (by the answers' ids);
`... decide` judges a challenger against the model in prod and records the decision;
`... loop` takes one turn of the closed loop (retrains when the log calls for it);
#% endif
`... compare` lists the experiments, best headline metric first (options it does not know
go to `dvc exp show`). Stages log progress (progress.py); `--quiet` before the command, or
LOG_LEVEL=WARNING in the environment, keeps only warnings and errors.

A mistake on the command line is one `error: ...` line and exit status 2; an input the
command refuses, one `error: ...` line and exit status 1; Ctrl-C, one `interrupted: ...`
line and exit status 130 (what a shell reports for SIGINT). None prints a traceback.
"""

from __future__ import annotations

import os

# Native thread pools start at one thread, set before numpy/scikit-learn load them: code
# outside compute.py's contexts stays single-threaded (no oversubscription next to joblib,
# sums in a fixed order). Fitting, cross-validation and prediction raise the pools to
# compute.n_jobs inside those contexts.
for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

from .preload import client  # noqa: E402  (standard library only)

if __name__ == "__main__":
    # A stage that DVC runs goes to a child of the project's preload server (preload/):
    # the same command, without importing the libraries again. Returns if it runs here.
    client.delegate(__package__)

import argparse  # noqa: E402
import importlib  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402
from collections.abc import Callable  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402
from types import ModuleType  # noqa: E402
from typing import NoReturn  # noqa: E402

from .core import progress  # noqa: E402
from .core.errors import UserError  # noqa: E402
from .stages import names  # noqa: E402


#% if cookiecutter.serving == "yes"
def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 1")
    return int(text)


def _port(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port: give one from 1 to 65535")
    return int(text)


#% endif
def _no_options(parser: argparse.ArgumentParser) -> None:
    """A command that takes no options."""


# Stages with a twin in dask_engine/ (same name): compute.engine picks which one runs.
DASK_STAGES = frozenset(p.stem for p in (Path(__file__).parent / "dask_engine").glob("[!_]*.py"))


def stage_module(name: str, engine: str) -> ModuleType:
    """The module whose main() runs stage `name` on `engine`: dask_engine/<name>.py on dask
    when there is one, else stages/<name>.py. The one place an engine is chosen: a stage
    never imports an engine; an engine imports the stage's pure functions."""
    folder = "dask_engine" if engine == "dask" and name in DASK_STAGES else "stages"
    return importlib.import_module(f".{folder}.{name}", __package__)


def _run_stage(name: str, *args: object) -> None:
    """The stage's main() on the configured engine, logged as that stage (progress.py)."""
    with progress.stage(name):
        engine = "local"
        if name in DASK_STAGES:  # only these read compute.engine (dvc.yaml lists it there)
            from .core.params import load

            engine = load().compute.engine
        module = stage_module(name, engine)
        if not callable(getattr(module, "main", None)):
            raise UserError(f"{module.__file__} has no main(): add `def main() -> None:`")
        module.main(*args)


def stage(args: argparse.Namespace) -> int:
    _run_stage(args.command)
    return 0


def run_all(args: argparse.Namespace) -> int:
    """run dvc.yaml's stages in its order, in this process (dvc repro is the usual way)"""
    # Imported here, not at the top: a stage's dvc.yaml deps list what the stage runs.
    from .tools import dvc_deps

    for name in dvc_deps.pipeline():
        _run_stage(name)
    return 0


#% if cookiecutter.remote_sources == "yes"
def fetch_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("names", nargs="*", help="data.fetch entries (default: all)")


def fetch(args: argparse.Namespace) -> int:
    """snapshot data.fetch sources to data/fetched/"""
    _run_stage("fetch", args.names)
    return 0


#% endif
def add_batch_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", help="the new .csv or .parquet batch file")
    parser.add_argument("--name", help="batch name (default: the file's name without suffix)")
    parser.add_argument("--no-dvc", action="store_true", help="copy only; run `dvc add` yourself")


def add_batch(args: argparse.Namespace) -> int:
    """add a batch file to data.source, then dvc add"""
    from .tools import add_batch as adding

    adding.main(args.path, args.name, track=not args.no_dvc)
    return 0


def params_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--check", action="store_true", help="fail if params.yaml differs from conf/"
    )
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. model=random_forest")


def params(args: argparse.Namespace) -> int:
    """compose conf/ into params.yaml"""
    from .core import config_sync

    return config_sync.main((["--check"] if args.check else []) + args.overrides)


#% if cookiecutter.serving == "yes"
def serve_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", help="address to bind (default serve.host, loopback)")
    parser.add_argument("--port", type=_port, help="port (default serve.port)")
    parser.add_argument(
        "--workers", type=_positive, help="server processes (default serve.workers, 1)"
    )
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--stage", help="GTO stage whose model to serve (default serve.stage)")
    which.add_argument("--workspace", action="store_true", help="serve models/model.skops")
    parser.add_argument(
        "--runtime",
        choices=["auto", "onnx", "skops"],
        help="what computes predictions (default serve.runtime; auto = ONNX when exported)",
    )
    parser.add_argument(
        "--no-api-key",
        action="store_true",
        help="serve a host other machines reach without an API key (serve.api_key_env): "
        "anyone who reaches it may predict; a warning says so",
    )
    parser.add_argument(
        "--shadow",
        metavar="EXP|REV",
        help="an experiment's name or a git revision whose model scores serve.shadow_share "
        "of the requests off the response path, into serve.shadow_log (default serve.shadow)",
    )


def serve(args: argparse.Namespace) -> int:
    """serve the model over HTTP (service.yaml: serve)"""
    from .core.params import load_service
    from .serving.app import serve as serve_model

    settings = load_service().serve
    stage = None if args.workspace else (args.stage or settings.stage)
    given = {"host": args.host, "port": args.port, "workers": args.workers}
    given["runtime"], given["shadow"] = args.runtime, args.shadow
    settings = settings.model_copy(update={k: v for k, v in given.items() if v is not None})
    serve_model(
        Path.cwd(),
        settings,
        stage,
        no_api_key=args.no_api_key,
        stage_required=args.stage is not None,
    )
    return 0


def monitor_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--log", type=Path, help="prediction log (default serve.prediction_log)")
    parser.add_argument("--fail-on-drift", action="store_true", help="exit 3 on drift")
    parser.add_argument(
        "--to-batch", type=Path, metavar="CSV", help="write the logged rows as a raw data batch"
    )
    parser.add_argument(
        "--since", metavar="TIME", help="only rows from this time on (event time, else arrival)"
    )
    parser.add_argument(
        "--act",
        action="store_true",
        help="then judge prod by service.yaml's alert: and, on a breach, roll it back to the "
        "last version that held (committed record, gto assign); exit 0 when nothing was to "
        "do or prod was rolled back, 1 when it could not be (no earlier version)",
    )


def monitor(args: argparse.Namespace) -> int:
    """drift of logged inputs, the shadow against the champion (service.yaml: monitor);
    --act rolls prod back on an alert"""
    from .core.params import load, load_service
    from .monitoring import monitor as monitoring
    from .monitoring import shadow as shadowing

    params, service = load(), load_service()
    if args.act and args.to_batch:
        raise UserError("--to-batch writes a batch and stops: run --act on its own")
    # The log read once, for the drift, the live figures, the shadow and the alert.
    logged = monitoring.logged_rows(Path(args.log or service.serve.prediction_log), args.since)
    status = monitoring.main(params, service, logged, args.to_batch, args.fail_on_drift)
    if args.to_batch is None:  # and the shadow beside the champion, when one scored
        shadowing.write(params, service, logged)
    if args.act:
        from .decision import rollback

        rollback.main(Path.cwd(), params, service, logged.every)
    return status


def feedback_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", type=Path, help="a .csv or .parquet file with columns id,label")
    parser.add_argument("--log", type=Path, help="prediction log (default serve.prediction_log)")
    parser.add_argument(
        "--skip-unknown",
        action="store_true",
        help="store the labels of logged ids and count the others (default: refuse them all)",
    )


def feedback(args: argparse.Namespace) -> int:
    """store labels that arrive later for logged rows (service.yaml: serve.feedback_log)"""
    from .core.params import load, load_service
    from .monitoring import feedback as labelling

    settings = load_service().serve
    return labelling.main(load(), settings, args.file, args.log, args.skip_unknown)


def decide_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--challenger",
        metavar="EXP|STAGE|VERSION|REV",
        help="a `dvc exp` name, GTO stage or version, or git revision (default: the "
        "workspace's model)",
    )
    parser.add_argument(
        "--champion",
        metavar="STAGE|VERSION|REV",
        help="a GTO stage or version, or a git revision (default: the version in prod)",
    )
    parser.add_argument(
        "--apply",
        action="store_true",
        help="commit the decision; on PROMOTE register the challenger and assign prod",
    )
    parser.add_argument(
        "--replay",
        type=Path,
        metavar="FILE",
        help="recompute a decisions/*.json from its revisions and policy, and compare",
    )


def decide(args: argparse.Namespace) -> int:
    """judge a challenger by service.yaml's gate: (exit 0 PROMOTE, 3 HOLD, 4 REJECT)"""
    from .decision import decide as deciding

    if args.replay is None:
        return deciding.run(Path.cwd(), args.challenger, args.champion, apply=args.apply)
    if args.challenger or args.champion or args.apply:
        raise UserError(
            "--replay recomputes a decision from the revisions and policy it records: give it alone"
        )
    return deciding.replay(Path.cwd(), args.replay)


def loop_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--log", type=Path, help="prediction log (default serve.prediction_log)")
    parser.add_argument(
        "--now", metavar="TIME", help="the turn's time, ISO 8601 (tests and replays; default now)"
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="assess the window, say what it would do, write nothing",
    )


def loop(args: argparse.Namespace) -> int:
    """one turn of the closed loop: retrain when the log calls for it (service.yaml: loop)"""
    from .core.params import load, load_service
    from .decision import loop as closing

    return closing.main(load(), load_service(), args.log, now=args.now, dry_run=args.dry_run)


#% endif
def compare_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--md", action="store_true", help="GitHub markdown (CI job summary)")


def compare(args: argparse.Namespace) -> int:
    """experiments at a glance, best first; other options go to `dvc exp show`"""
    from .tools import compare as comparing

    return comparing.main(args.passed, markdown=args.md)


@dataclass(frozen=True)
class Command:
    run: Callable[[argparse.Namespace], int]
    options: Callable[[argparse.ArgumentParser], None] = _no_options
    # Options it does not know go on to another tool (args.passed), not refused.
    passes_on: bool = False
    # `--help`'s line: the first line of run's docstring unless given.
    help: str | None = None
    # What Ctrl-C left, after `interrupted: <command> stopped; `.
    interrupted: str = "outputs it had not finished were not written"


#% if cookiecutter.serving == "yes"
# uvicorn finishes the requests in flight and runs the app's shutdown (the prediction log
# written), then raises the SIGINT it caught again.
SERVER_STOPPED = "the server shut down as on SIGTERM, requests in flight answered"
# decide writes its files atomically, and --apply undoes its commit and tags when cut short.
DECIDE_STOPPED = "no decision was half written or half applied"
# decision/loop.py undoes a turn that stops before decide has judged its challenger.
TURN_UNDONE = "git is back where the turn found it, unless decide had already judged"
#% endif
# The one table of commands, one entry per line, in `--help`'s order: what runs each, and
# its options. A command imports its modules when it runs, so that pipeline stages never
# load FastAPI, and a stage's dvc.yaml deps list only what that stage runs.
COMMANDS: dict[str, Command] = {
    **{name: Command(stage, help=f"run the {name} stage") for name in names()},
#% if cookiecutter.remote_sources == "yes"
    "fetch": Command(fetch, fetch_options),
#% endif
    "add-batch": Command(add_batch, add_batch_options),
    "run": Command(run_all),
    "params": Command(params, params_options),
#% if cookiecutter.serving == "yes"
    "serve": Command(serve, serve_options, interrupted=SERVER_STOPPED),
    "monitor": Command(monitor, monitor_options),
    "feedback": Command(feedback, feedback_options),
    "decide": Command(decide, decide_options, interrupted=DECIDE_STOPPED),
    "loop": Command(loop, loop_options, interrupted=TURN_UNDONE),
#% endif
    "compare": Command(compare, compare_options, passes_on=True),
}


class _Parser(argparse.ArgumentParser):
    """argparse, its errors one line (not the usage text too), exit status 2 as ever."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {self.prog}: {message}; see --help\n")


def parser() -> argparse.ArgumentParser:
    """The command line: global options, then one subcommand per COMMANDS entry."""
    top = _Parser(
        prog="python -m {{ cookiecutter.package_name }}",
        description=__doc__,
    )
    top.add_argument(
        "-q", "--quiet", action="store_true", help="warnings and errors only (or LOG_LEVEL)"
    )
    commands = top.add_subparsers(dest="command", required=True)
    for name, command in COMMANDS.items():
        summary = command.help or (command.run.__doc__ or "").strip().splitlines()[0]
        command.options(commands.add_parser(name, help=summary))
    return top


def main(argv: list[str] | None = None) -> int:
    cli = parser()
    args, passed = cli.parse_known_args(argv)
    command = COMMANDS[args.command]
    if passed and not command.passes_on:
        cli.error(f"unrecognized arguments: {' '.join(passed)}")
    args.passed = passed
    try:
        progress.configure(args.command, progress.level(args.quiet, os.environ))
        return command.run(args)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        # Every write is atomic (core/io.py): what the command had not finished is absent,
        # not half written.
        print(f"interrupted: {args.command} stopped; {command.interrupted}", file=sys.stderr)
        return INTERRUPTED


INTERRUPTED = 128 + signal.SIGINT  # 130, the status a shell gives a SIGINT


if __name__ == "__main__":
    status = main()
    if status == INTERRUPTED:  # a second Ctrl-C while Python exits stays quiet too
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    sys.exit(status)
