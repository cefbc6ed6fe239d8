"""The package's shape (docs/architecture.md): imports run one way, without circles; no
folder grows past ten modules; a stage imports no other stage and no engine, so the
engine is chosen in one place, __main__.py; stage and engine functions take at most five
parameters, a stage's settings keyword-only. Imports are read from the source as
tools/dvc_deps.py reads them (every import, function-level ones too)."""

from __future__ import annotations

import ast
from pathlib import Path

from pydantic import BaseModel

from {{ cookiecutter.package_name }}.core import params
from {{ cookiecutter.package_name }}.tools import dvc_deps

PACKAGE = dvc_deps.PACKAGE
MAX_MODULES = 10
MAX_PARAMETERS = 5


def import_graph(package: Path = PACKAGE) -> dict[Path, set[Path]]:
    """Each module of the package -> the package's modules it imports."""
    return {
        path: dvc_deps.project_imports(path, package) - {path}
        for path in sorted(package.rglob("*.py"))
    }


def circles(graph: dict) -> list[list]:
    """The strongly connected components of more than one node (Tarjan's algorithm):
    each is a set of modules that import each other, directly or through the others."""
    index: dict = {}
    low: dict = {}
    stack: list = []
    found: list[list] = []

    def visit(node) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for child in sorted(graph.get(node, ())):
            if child not in index:
                visit(child)
                low[node] = min(low[node], low[child])
            elif child in stack:
                low[node] = min(low[node], index[child])
        if low[node] == index[node]:
            component = []
            while not component or component[-1] != node:
                component.append(stack.pop())
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def named(paths) -> list[str]:
    return sorted(str(p.relative_to(PACKAGE)) for p in paths)


def test_the_circle_finder_finds_circles_and_only_those():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a", "e"}, "e": {"d"}, "f": {"a"}}
    assert sorted(circles(graph)) == [["a", "b", "c"], ["d", "e"]]
    assert circles({"a": {"b"}, "b": set(), "c": {"a", "b"}}) == []


def test_the_package_has_no_import_circles():
    graph = import_graph()
    assert len(graph) > 40, "the graph holds every module"
    assert [named(c) for c in circles(graph)] == []


def test_no_folder_holds_more_than_ten_modules():
    """Ten modules at most per folder (its __init__.py not counted): a newcomer scans a
    folder at a glance, and a folder that grows past that splits by role."""
    folders = {p.parent for p in PACKAGE.rglob("*.py")}
    sizes = {
        str(folder.relative_to(PACKAGE.parent)): len(
            [p for p in folder.glob("*.py") if p.name != "__init__.py"]
        )
        for folder in folders
    }
    assert {f: n for f, n in sizes.items() if n > MAX_MODULES} == {}
    assert max(sizes.values()) > 1


def test_a_stage_imports_no_other_stage_and_no_engine():
    """A stage module imports shared modules and libraries; dask_engine/ imports stages'
    pure functions, never the reverse."""
    stages, engine = PACKAGE / "stages", PACKAGE / "dask_engine"
    found = []
    for path in sorted(stages.glob("[!_]*.py")):
        reached = dvc_deps.project_imports(path, PACKAGE)
        found += [
            f"{named([path])[0]} imports {target}"
            for target in named(reached)
            if target.startswith(("stages/", "dask_engine/")) and target != "stages/__init__.py"
        ]
    assert found == []
    twins = sorted(engine.glob("[!_]*.py"))
    assert twins, "the dask engine has modules"
    for twin in twins:
        assert stages / twin.name in dvc_deps.project_imports(twin, PACKAGE), twin.name


def settings_types() -> set[str]:
    """The names of the settings objects: the config's sections (the pydantic models of
    core/params.py, Params itself) and the StageSettings dataclasses (a stage's Settings,
    label_quality's JudgeSettings: the package's classes based on StageSettings)."""
    found = {
        name
        for name, value in vars(params).items()
        if isinstance(value, type) and issubclass(value, BaseModel | params.StageSettings)
    }
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef) and any(
                "StageSettings" in ast.unparse(base) for base in node.bases
            ):
                found.add(node.name)
    return found


def parameter_count(function: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    """Every parameter but self and cls; *args and **kwargs count one each."""
    a = function.args
    named = [p.arg for p in a.posonlyargs + a.args + a.kwonlyargs]
    return len([n for n in named if n not in ("self", "cls")]) + bool(a.vararg) + bool(a.kwarg)


def is_settings(parameter: ast.arg, kinds: set[str]) -> bool:
    """Whether the parameter's annotation names a settings object (`X`, `mod.X`, `X | None`)."""
    if parameter.annotation is None:
        return False
    names = {n.id for n in ast.walk(parameter.annotation) if isinstance(n, ast.Name)}
    names |= {n.attr for n in ast.walk(parameter.annotation) if isinstance(n, ast.Attribute)}
    return bool(names & kinds)


def signature_problems(source: str, kinds: set[str], public_rule: bool) -> list[str]:
    """What breaks the signature rules in a module's source:
    - no function (nested ones and methods included) takes more than MAX_PARAMETERS;
    - with public_rule (a stage module), no public module-level function takes a settings
      object positionally after a data argument. Data arguments are the positional
      parameters that are not settings objects; settings may lead (`fetch(source)`, the
      object a function checks), but once data comes, settings follow after `*`."""
    tree = ast.parse(source)
    problems = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            count = parameter_count(node)
            if count > MAX_PARAMETERS:
                problems.append(f"{node.name} takes {count} parameters")
    if not public_rule:
        return problems
    for node in tree.body:
        if not isinstance(node, ast.FunctionDef) or node.name.startswith("_"):
            continue
        seen_data = False
        for parameter in node.args.posonlyargs + node.args.args:
            if not is_settings(parameter, kinds):
                seen_data = True
            elif seen_data:
                problems.append(
                    f"{node.name} takes settings {parameter.arg} positionally after data"
                )
    return problems


def test_the_signature_rules_catch_what_they_name():
    kinds = {"CleanParams", "Settings"}
    good = (
        "def clean(df, *, rules: CleanParams): ...\n"
        "def check(rules: CleanParams, columns): ...\n"
        "def _private(df, rules: CleanParams): ...\n"
        "def five(a, b, c, *, d, e): ...\n"
    )
    assert signature_problems(good, kinds, public_rule=True) == []
    bad = (
        "def rank(train, roles, settings: Settings | None): ...\n"
        "def clean(df, target, rules: m.CleanParams): ...\n"
        "def wide(a, b, c, *, d, e, f): ...\n"
        "class Job:\n    def run(self, a, b, c, d, *rest, **more): ...\n"
    )
    assert signature_problems(bad, kinds, public_rule=True) == [
        "wide takes 6 parameters",
        "run takes 6 parameters",
        "rank takes settings settings positionally after data",
        "clean takes settings rules positionally after data",
    ]
    assert signature_problems(bad, kinds, public_rule=False) == [
        "wide takes 6 parameters",
        "run takes 6 parameters",
    ]


def test_stage_and_engine_functions_take_few_parameters_and_settings_by_keyword():
    """At most five parameters in stages/ and dask_engine/, and a stage's public functions
    take their settings (a config section or the stage's Settings) keyword-only: no
    tuple or row of positionals whose order is the interface."""
    kinds = settings_types()
    assert {"Params", "SelectParams", "Settings", "JudgeSettings"} <= kinds
    found = []
    for folder in ("stages", "dask_engine"):
        for path in sorted((PACKAGE / folder).glob("[!_]*.py")):
            problems = signature_problems(path.read_text(), kinds, folder == "stages")
            found += [f"{named([path])[0]}: {p}" for p in problems]
    assert found == []
