"""Compose conf/ into params.yaml exactly as `dvc exp run` does.

`dvc repro` reads params.yaml and never looks at conf/ (by DVC's design), so
params.yaml is committed and must always equal the composition of conf/. This
module writes or checks it. It imports only Hydra so that the pre-commit hook
can run it in a small environment: `python src/<package>/config_sync.py --check`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def compose(conf_dir: Path, overrides: list[str] | None = None) -> str:
    """The YAML text DVC would write to params.yaml (same calls as dvc.utils.hydra)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from omegaconf import OmegaConf

    with initialize_config_dir(str(Path(conf_dir).resolve()), version_base=None):
        cfg = hydra_compose(config_name="config", overrides=overrides or [])
    OmegaConf.resolve(cfg)
    return OmegaConf.to_yaml(cfg)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if params.yaml is stale")
    parser.add_argument("--root", type=Path, default=Path("."), help="project root")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. model=ridge")
    args = parser.parse_args(argv)
    params = args.root / "params.yaml"
    expected = compose(args.root / "conf", args.overrides)
    current = params.read_text(encoding="utf-8") if params.exists() else ""
    if args.check:
        if current != expected:
            print(
                "params.yaml is out of sync with conf/: run "
                "`python src/{{ cookiecutter.package_name }}/config_sync.py` and commit it",
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
