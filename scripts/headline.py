"""Print a baked project's headline metrics after `make demo`: the model, the `metric`, and
the overall test metrics (per-class and per-group ones stay in `dvc metrics show`).

    python scripts/headline.py PROJECT_DIR
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import yaml


def main(project: Path) -> None:
    params = yaml.safe_load((project / "params.yaml").read_text())
    metrics = json.loads((project / "reports/evaluate/metrics.json").read_text())
    select = json.loads((project / "reports/select.json").read_text())
    print(f"model: {params['model']['name']} (select's cross-validated winner: {select['winner']})")
    print(f"headline {params['metric']} on the test split: {metrics[params['metric']]}")
    for name, value in sorted(metrics.items()):
        if not isinstance(value, dict) and name != params["metric"]:
            print(f"  {name}: {value}")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
