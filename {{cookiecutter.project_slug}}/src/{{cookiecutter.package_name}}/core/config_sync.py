"""Compose conf/ into params.yaml exactly as `dvc exp run` does, checked on the way.

`dvc repro` reads params.yaml and never looks at conf/ (by DVC's design), so
params.yaml is committed and must always equal the composition of conf/. This
module writes or checks it. It runs as a script too, for the pre-commit hook:
`python src/<package>/core/config_sync.py --check` (Hydra, pydantic and PyYAML suffice).

conf/config.yaml's `task: ${validate:<task>}` calls the resolver registered here while
the composed config is resolved, before anything is written: it checks the whole config
with params.py, so a bad value or an unknown key is refused then, and gives back the task.
(`-S task=...` replaces the call, and with it this early check; every stage still checks
params.yaml when it loads it.) `dvc exp run` loads it
through hydra_plugins/ (DVC scans the project root for Hydra plugins), so a bad `-S`
override fails in one line before DVC writes params.yaml or runs a stage.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path

RESOLVER = "validate"
KEY = "task"


def project_module(name: str):
    """A module of this package, also when this file runs as a script (pre-commit)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    try:
        return importlib.import_module(f"{{ cookiecutter.package_name }}.core.{name}")
    finally:
        sys.path.pop(0)


def register_validation(refuse: Callable[[Exception], None], conf_dir: Path = Path("conf")) -> None:
    """Register ${validate:}: the composed config, checked by params.parse (each model
    against its class and its file in conf_dir/model); a ConfigError goes to `refuse`
    (raised inside a resolver, OmegaConf would wrap it)."""
    from omegaconf import OmegaConf

    def validate(task: str, *, _root_) -> str:
        try:
            params = project_module("params")
        except ImportError:
            # An environment without the project's packages (pydantic): every stage
            # checks params.yaml again when it loads it.
            return task
        raw = OmegaConf.to_container(_root_, resolve=False)
        raw[KEY] = task  # this key's own value is being resolved
        # Without scikit-learn (the post-gen hook's Python) no model class imports: select
        # and train check them then.
        models = Path(conf_dir) / "model" if importlib.util.find_spec("sklearn") else None
        try:
            params.parse(raw, "the composed config", models)
        except params.ConfigError as exc:
            refuse(exc)
        return task

    OmegaConf.register_new_resolver(RESOLVER, validate, replace=True)


def compose(conf_dir: Path, overrides: list[str] | None = None) -> str:
    """The YAML text DVC would write to params.yaml (same calls as dvc.utils.hydra); a
    config that params.py refuses raises its ConfigError."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from omegaconf import OmegaConf

    with initialize_config_dir(str(Path(conf_dir).resolve()), version_base=None):
        cfg = hydra_compose(config_name="config", overrides=overrides or [])
    refused: list[Exception] = []
    # After Hydra's plugin scan, which may have registered hydra_plugins/'s variant.
    register_validation(refused.append, conf_dir)
    OmegaConf.resolve(cfg)
    if refused:
        raise refused[0]
    return OmegaConf.to_yaml(cfg)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if params.yaml is stale")
    parser.add_argument("--root", type=Path, default=Path("."), help="project root")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. model=ridge")
    args = parser.parse_args(argv)
    params = args.root / "params.yaml"
    try:
        expected = compose(args.root / "conf", args.overrides)
    except project_module("errors").ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    current = params.read_text(encoding="utf-8") if params.exists() else ""
    if args.check:
        if current != expected:
            print(
                "params.yaml is out of sync with conf/: run `python -m "
                "{{ cookiecutter.package_name }} params` and `dvc repro`, then commit; to keep "
                "what a `dvc exp run -S` set, write it into conf/ first (docs/pipeline.md, "
                '"Everyday commands")',
                file=sys.stderr,
            )
            return 1
        return 0
    if current != expected:
        tmp = params.with_name(".params.yaml.tmp")
        tmp.write_text(expected, encoding="utf-8")
        tmp.replace(params)
        print(f"wrote {params}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
