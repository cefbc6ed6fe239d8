"""Declared = used: each stage's deps in dvc.yaml list exactly the project modules it runs.

A stage runs `python -m {{ cookiecutter.package_name }} <stage>`: __main__.py and what it imports at
module level, then stages/<stage>.py and every project module that one imports, at any depth
(imports inside functions too: they run when the stage calls them). A module missing from
the deps would let DVC call a stale output up to date after that module changes; an extra
one would rerun the stage for nothing.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml

PROJECT = Path(__file__).resolve().parents[1]
PACKAGE = PROJECT / "src" / "{{ cookiecutter.package_name }}"
PIPELINE = yaml.safe_load((PROJECT / "dvc.yaml").read_text(encoding="utf-8"))["stages"]


def project_imports(path: Path, module_level_only: bool = False) -> set[Path]:
    """The project files a module imports (relative imports: the package has no others)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = set()
    for node in tree.body if module_level_only else ast.walk(tree):
        if not (isinstance(node, ast.ImportFrom) and node.level):
            continue
        base = path.parent
        for _ in range(node.level - 1):
            base = base.parent
        module = base.joinpath(*node.module.split(".")) if node.module else base
        for alias in node.names:
            candidates = [module / alias.name, module]
            for candidate in candidates:
                if candidate.with_suffix(".py").is_file():
                    found.add(candidate.with_suffix(".py"))
                    break
                if (candidate / "__init__.py").is_file() and candidate == module:
                    # `from .. import name` where name is not a module: the package's
                    # __init__.py (for example __version__) is what runs.
                    found.add(candidate / "__init__.py")
                    break
    return found


def closure(start: set[Path]) -> set[Path]:
    seen: set[Path] = set()
    todo = list(start)
    while todo:
        path = todo.pop()
        if path not in seen:
            seen.add(path)
            todo.extend(project_imports(path))
    return seen


def runs(stage: str) -> set[str]:
    entry = PACKAGE / "__main__.py"
    start = {PACKAGE / "stages" / f"{stage}.py"} | project_imports(entry, module_level_only=True)
    return {str(p.relative_to(PROJECT)) for p in closure(start) | {entry}}


def declared(stage: str) -> set[str]:
    spec = PIPELINE[stage].get("do", PIPELINE[stage])
    return {d for d in spec.get("deps", []) if d.startswith("src/")}


@pytest.mark.parametrize("stage", sorted(PIPELINE))
def test_deps_list_exactly_the_code_a_stage_runs(stage):
    used, listed = runs(stage), declared(stage)
    assert not used - listed, f"stage {stage}: add to its deps in dvc.yaml: {sorted(used - listed)}"
    assert not listed - used, f"stage {stage}: deps it never runs: {sorted(listed - used)}"


def test_the_analysis_follows_imports_inside_functions(tmp_path):
    """A function-level import runs when the function is called, so it counts; the
    entry point's function-level imports (serve, params, add-batch) are other commands'."""
    package = tmp_path / "pkg"
    (package / "stages").mkdir(parents=True)
    (package / "__init__.py").write_text("__version__ = '1'\n")
    (package / "stages" / "__init__.py").write_text("")
    (package / "late.py").write_text("")
    (package / "stages" / "one.py").write_text(
        "from .. import __version__\n\n\ndef main():\n    from .. import late\n"
    )
    found = closure({package / "stages" / "one.py"})
    assert found == {package / "stages" / "one.py", package / "late.py", package / "__init__.py"}
    assert "src/{{ cookiecutter.package_name }}/serving/app.py" not in runs("train")
    assert "src/{{ cookiecutter.package_name }}/config_sync.py" not in runs("train")
