"""Each stage loads the libraries its work needs, and no others, when it starts.

Every `dvc repro` runs a stage in a new Python process, so whatever its module imports at
the top is paid on every run, used or not: scikit-learn and scipy take 1-2 s, skops
(which imports every scikit-learn module) and dvclive's dvc about 1 s each. A library
that one function needs is imported in that function (core/io.py's skops,
tables/schema.py's pandera, annotate's judge). Here a fresh interpreter imports each
stage's module as `python -m {{ cookiecutter.package_name }} <stage>` does, and a top-level
import of a library in a stage's NOT_LOADED row fails the test, naming the stage and the
library. `make bench` in the template prints each stage's import seconds.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from {{ cookiecutter.package_name }}.stages import STAGES, names

PACKAGE = "{{ cookiecutter.package_name }}"
# Imported only inside the functions that use them, whichever stage runs them: why.
IN_FUNCTIONS = {
    "skops": "used in core/io.py's save_model and load_model",
    "pytest": "loaded by skops (scikit-learn's test helpers), in core/io.py's model functions",
    "pandera": "used in tables/schema.py's validate",
    "dask": "used in tables/parts.py's functions and by the dask engine",
    "distributed": "used in core/cluster.py's functions",
    "skl2onnx": "used in export/onnx_convert.py's functions",
    "onnx": "used in export/onnx_convert.py's functions",
    "onnxruntime": "used in export/onnx_convert.py's check",
    "fastapi": "used by the serve command",
    "uvicorn": "used by the serve command",
    "hydra": "used by core/config_sync.py, the params command",
    "fsspec": "used in stages/fetch.py's functions",
    "sqlalchemy": "used in stages/fetch.py's functions",
    "lightgbm": "imported by its model's _target_ (core/model_catalog.py), when chosen",
    "xgboost": "imported by its model's _target_ (core/model_catalog.py), when chosen",
    "onnxmltools": "used in export/onnx_convert.py's functions, for those two models",
}
# The data stages fit nothing (annotate's label judge imports scikit-learn when it runs,
# for classification only).
NO_FITTING = {
    "sklearn": "used by the stages that fit or score a model, and annotate's judge",
    "scipy": "loaded by scikit-learn",
    "joblib": "loaded by scikit-learn; core/compute.py's contexts for the stages that fit",
}
# evaluate's: its diagnosis, and the metrics and plots it writes with dvclive.
NO_GROUP_METRICS = {
    "fairlearn": "used by evaluate's diagnosis (quality/diagnosis.py)",
    "dvclive": "used by evaluate, which logs metrics and plots",
    "dvc": "loaded by dvclive (evaluate)",
}
NOT_LOADED = {
    "fetch": IN_FUNCTIONS | NO_FITTING | NO_GROUP_METRICS,
    "ingest": IN_FUNCTIONS | NO_FITTING | NO_GROUP_METRICS,
    "clean": IN_FUNCTIONS | NO_FITTING | NO_GROUP_METRICS,
    "annotate": IN_FUNCTIONS | NO_FITTING | NO_GROUP_METRICS,
    "preprocess": IN_FUNCTIONS | NO_GROUP_METRICS,
    "select": IN_FUNCTIONS | NO_GROUP_METRICS,
    "train": IN_FUNCTIONS | NO_GROUP_METRICS,
    "evaluate": IN_FUNCTIONS,
    "export": IN_FUNCTIONS | NO_GROUP_METRICS,
}
# The local engine's module of the stage, imported as __main__.py's stage_module does;
# then the top-level names of every module loaded.
PROBE = (
    "import sys\n"
    f"from {PACKAGE}.__main__ import stage_module\n"
    "stage_module(sys.argv[1], 'local')\n"
    "print(' '.join(sorted({name.split('.')[0] for name in sys.modules})))\n"
)
BUILT_IN = [name for name in NOT_LOADED if name in names()]


@pytest.fixture(scope="module")
def loaded(project) -> dict[str, subprocess.CompletedProcess]:
    """Each built-in stage's probe, all started at once (each is a new interpreter)."""
    env = {**os.environ, "PYTHONPATH": "src"}  # as dvc.yaml runs the stages
    started = {
        name: subprocess.Popen(
            [sys.executable, "-c", PROBE, name],
            cwd=project,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in BUILT_IN
    }
    done = {name: p.communicate(timeout=300) for name, p in started.items()}
    return {
        name: subprocess.CompletedProcess(p.args, p.returncode, *done[name])
        for name, p in started.items()
    }


def test_every_built_in_stage_has_a_row():
    assert set(STAGES) <= set(NOT_LOADED), "add the stage's row to NOT_LOADED"


@pytest.mark.parametrize("stage", BUILT_IN)
def test_a_stage_imports_no_library_its_work_does_not_need(loaded, stage):
    probe = loaded[stage]
    assert probe.returncode == 0, probe.stderr
    modules = set(probe.stdout.split())
    assert "pandas" in modules, "every stage reads tables: the probe sees top-level imports"
    found = modules & set(NOT_LOADED[stage])
    assert not found, "\n".join(
        f"stages/{stage}.py loads {name} when it is imported ({NOT_LOADED[stage][name]}): "
        "import it inside the function that needs it, with a comment saying why"
        for name in sorted(found)
    )
