"""Checks every config `dvc exp run` composes, before DVC writes params.yaml.

DVC asks Hydra to scan the project root for plugins before it composes conf/ (its
`hydra.plugins_path`, the root by default), and Hydra imports every module in this
folder. Importing this one registers the `${validate:}` resolver that conf/config.yaml's
`task` key calls: a bad `-S` override (an unknown key, a value out of range, a `???`
left unset) is then refused in one line, exit 1, with params.yaml, dvc.lock and every
output left as they were. It defines no Hydra plugin class: the import is all it does.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
try:
    from {{ cookiecutter.package_name }}.core import config_sync
finally:
    sys.path.pop(0)


def refuse(error: Exception) -> None:
    # Raised, any exception would reach the user wrapped by OmegaConf and DVC ("unexpected
    # error", its key path, a support link); exiting here leaves them the one line.
    print(f"error: {error}", file=sys.stderr)
    raise SystemExit(1)


config_sync.register_validation(refuse, Path(__file__).resolve().parents[1] / "conf")
