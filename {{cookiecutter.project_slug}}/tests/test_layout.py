"""The package's shape (docs/architecture.md): imports run one way, without circles; no
folder grows past ten modules; a stage imports no other stage and no engine, so the
engine is chosen in one place, __main__.py. Imports are read from the source as
tools/dvc_deps.py reads them (every import, function-level ones too)."""

from __future__ import annotations

from pathlib import Path

from {{ cookiecutter.package_name }}.tools import dvc_deps

PACKAGE = dvc_deps.PACKAGE
MAX_MODULES = 10


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
