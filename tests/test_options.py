"""The yes/no features (serving, onnx, remote_sources, notebooks): a `no` leaves no file,
import, command, dvc.yaml part, params key, hook, README section or locked package of the
feature behind, and the locks stay exactly what uv writes. test_bake.py's matrix bakes
four combinations (and runs the full checks there); this file bakes four others, so that
each feature is answered yes and no beside each of the others, and runs the pipeline and
tests of the bake without any of the features (test_pipeline.py does both for the default
bake, which has all of them)."""

from __future__ import annotations

import ast
import re
import shutil
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from conftest import TEMPLATE, bake, package_of, run


def hook_feature_files() -> dict[str, list[str]]:
    """What each feature adds: the hook's FEATURE_FILES, the one list of them (<pkg>: the
    package's folder in src/); the checks below look for each file, import and pin."""
    source = (TEMPLATE / "hooks" / "post_gen_project.py").read_text(encoding="utf-8")
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "FEATURE_FILES":
            files = ast.literal_eval(node.value)
            return {
                feature: [
                    name.replace("{{ cookiecutter.package_name }}", "<pkg>") for name in names
                ]
                for feature, names in files.items()
            }
    raise LookupError("hooks/post_gen_project.py defines no FEATURE_FILES")


FEATURE_FILES = hook_feature_files()
# Modules a feature's code imports: the project's own, then third-party ones.
FEATURE_MODULES = {
    "serving": {"serving", "monitor", "prediction_log", "fastapi", "uvicorn", "gto", "orjson"},
    "onnx": {"onnx_convert", "onnx_target_encoder", "onnx", "onnxruntime", "skl2onnx"},
    "remote_sources": {"fetch", "sqlalchemy", "fsspec"},
    "notebooks": {"outputs", "nbclient", "nbformat", "matplotlib"},
}
# Pins of pyproject.toml that a `no` takes out; the first ones in each list leave the locks
# too (nothing else needs them), the others stay as what dask, DVC or scikit-learn need.
FEATURE_PINS = {
    "serving": (["fastapi", "uvicorn"], ["gto", "orjson", "scipy", "httpx"]),
    "onnx": (["onnx", "onnxruntime", "skl2onnx"], []),
    "remote_sources": (["sqlalchemy"], ["fsspec"]),
    "notebooks": (["jupyterlab", "ipykernel", "nbclient", "nbstripout", "matplotlib"], []),
}
COMMANDS = {
    "serving": {"serve", "monitor", "loop"},
    "onnx": set(),
    "remote_sources": {"fetch"},
    "notebooks": set(),
}
# serving, onnx, remote_sources, notebooks: combinations test_bake.py's matrix does not bake
# (it has yyyy, nnnn, ynny, nyyy).
OTHERS = [
    ("yes", "yes", "no", "no"),
    ("yes", "no", "yes", "yes"),
    ("no", "yes", "no", "yes"),
    ("no", "no", "yes", "no"),
]
STATEMENT = re.compile(r"^[ \t]*#%", re.M)
LEFTOVER = re.compile(r"(?<!\$)\{\{|\{%|%\}")


def imported(path: Path) -> set[str]:
    """Every module name part a Python file imports (`a.b` gives a and b), relative or not."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {part for alias in node.names for part in alias.name.split(".")}
        elif isinstance(node, ast.ImportFrom):
            names |= set((node.module or "").split(".")) - {""}
            names |= {alias.name for alias in node.names}
    return names


def requirement_names(requirements: list[str]) -> set[str]:
    return {re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", r).group().lower() for r in requirements}


def locked_names(project: Path) -> set[str]:
    lock = tomllib.loads((project / "uv.lock").read_text(encoding="utf-8"))
    return {p["name"] for p in lock["package"] if p["source"] != {"editable": "."}}


def check_pruned(project: Path, answers: dict) -> None:
    """Nothing of a `no` feature left; everything of a `yes` one there."""
    package = package_of(project)
    files = [p for p in project.rglob("*") if p.is_file() and ".git" not in p.parts]
    python = [p for p in files if p.suffix == ".py"]
    pyproject = tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))
    pins = requirement_names(
        pyproject["project"]["dependencies"]
        + [r for rs in pyproject["project"]["optional-dependencies"].values() for r in rs]
    )
    locked = locked_names(project)
    required = (project / "requirements.lock").read_text(encoding="utf-8")
    help_text = run(project, "python", "-m", package, "--help").stdout
    commands = set(re.search(r"\{([\w,-]+)\}", help_text).group(1).split(","))
    stages = yaml.safe_load((project / "dvc.yaml").read_text(encoding="utf-8"))["stages"]
    params = yaml.safe_load((project / "params.yaml").read_text(encoding="utf-8"))
    for feature, names in FEATURE_FILES.items():
        wanted = answers[feature] == "yes"
        for name in names:
            # A feature's GitHub workflow exists only in a bake that has GitHub's CI.
            github = answers.get("ci", "github") == "github"  # cookiecutter.json's default
            kept = wanted and (github or not name.startswith(".github/"))
            assert (project / name.replace("<pkg>", package)).exists() == kept, name
        users = [
            f"{p.relative_to(project)}: {sorted(imported(p) & FEATURE_MODULES[feature])}"
            for p in python
            if imported(p) & FEATURE_MODULES[feature]
        ]
        assert wanted or users == [], f"{feature}=no, still imported: {users}"
        gone, kept = FEATURE_PINS[feature]
        assert (set(gone + kept) <= pins) == wanted, f"{feature}: pins {sorted(pins)}"
        for name in gone:
            assert (name in locked) == wanted, f"{feature}: {name} in uv.lock"
            assert (f"\n{name}==" in required) == wanted, f"{feature}: {name} in requirements"
        assert (COMMANDS[feature] <= commands) == wanted or not COMMANDS[feature], commands
    assert ("fetch" in stages) == (answers["remote_sources"] == "yes")
    assert ("fetch" in params["data"]) == (answers["remote_sources"] == "yes")
    outs = [str(o) for spec in stages.values() for o in spec.get("outs", [])]
    assert any("models/onnx" in o for o in outs) == (answers["onnx"] == "yes")
    notebooks = answers["notebooks"] == "yes"
    assert ("\n## Notebooks\n" in (project / "README.md").read_text()) == notebooks
    hooks = project / ".pre-commit-config.yaml"
    assert not hooks.exists() or ("id: nbstripout" in hooks.read_text()) == notebooks
    for name, spec in stages.items():
        spec = spec.get("do", spec)
        missing = [d for d in spec["deps"] if d.startswith("src/") and not (project / d).exists()]
        assert missing == [], f"stage {name} depends on pruned code: {missing}"
    text_files = [p for p in files if p.suffix in {".py", ".yaml", ".yml", ".toml", ".md"}]
    leftover = [
        str(p.relative_to(project))
        for p in text_files
        if STATEMENT.search(t := p.read_text(encoding="utf-8")) or LEFTOVER.search(t)
    ]
    assert leftover == []
    run(project, "ruff", "check", ".")
    run(project, "ruff", "format", "--check", ".")


def locks_as_uv_writes_them(project: Path, work: Path) -> bool:
    """uv.lock and requirements.lock are byte for byte what `uv lock` and the export in
    requirements.lock's header write for pyproject.toml (the shipped lock as preferences)."""
    work.mkdir(parents=True)
    for name in ("pyproject.toml", "uv.lock", "requirements.lock"):
        shutil.copyfile(project / name, work / name)
    python = ("--python", sys.executable)
    run(work, "uv", "lock", "--locked", *python, UV_PYTHON_DOWNLOADS="never")
    run(work, "uv", "lock", *python, UV_PYTHON_DOWNLOADS="never")
    command = (work / "requirements.lock").read_text().splitlines()[1].split()[1:]
    run(work, *command)
    return all(
        (work / name).read_bytes() == (project / name).read_bytes()
        for name in ("uv.lock", "requirements.lock")
    )


@pytest.mark.parametrize(
    ("serving", "onnx", "remote_sources", "notebooks"), OTHERS, ids=["-".join(o) for o in OTHERS]
)
def test_every_other_combination_bakes_clean(tmp_path, serving, onnx, remote_sources, notebooks):
    answers = {
        "serving": serving,
        "onnx": onnx,
        "remote_sources": remote_sources,
        "notebooks": notebooks,
    }
    project = bake(tmp_path / "bake", **answers)
    check_pruned(project, answers)
    assert locks_as_uv_writes_them(project, tmp_path / "relocked")
    # The default bake's lock is the template's (all yes): a `no` only takes packages out.
    assert locked_names(project) < locked_names(TEMPLATE / "{{cookiecutter.project_slug}}")


@pytest.mark.parametrize("feature", list(FEATURE_FILES))
def test_a_feature_answer_other_than_yes_or_no_is_refused(tmp_path, feature):
    from test_hooks import cli_bake

    done = cli_bake(tmp_path, {feature: "maybe"})
    assert done.returncode != 0
    assert "maybe" in done.stderr and "yes" in done.stderr
    assert list(tmp_path.iterdir()) == []


# The bake's tests that the answers change: params and conf/ (fetch and service sections),
# dvc.yaml against the code (every stage traced), the CLI, export (no ONNX), ingest (its
# URL message) and the package's layout (fewer modules, still no circle). The others run
# the same code in every bake; test_pipeline.py runs them all in the default bake.
CHANGED_TESTS = [
    "core/test_params.py",
    "tools/test_dvc_deps.py",
    "test_cli.py",
    "stages/test_export.py",
    "stages/test_ingest.py",
    "test_layout.py",
]


@pytest.mark.slow
def test_the_bake_without_features_runs_its_tests_and_pipeline(tmp_path):
    project = bake(tmp_path, serving="no", onnx="no", remote_sources="no", notebooks="no")
    tests = [f"tests/{name}" for name in CHANGED_TESTS]
    run(project, "python", "-m", "pytest", "-q", "-p", "no:cacheprovider", *tests)
    run(project, "dvc", "repro")
    assert (project / "models/model.skops").exists()
    assert not (project / "models/onnx").exists()
    assert "up to date" in run(project, "dvc", "status").stdout
