"""The project code each dvc.yaml stage runs, and a check that its deps list exactly that.

A stage runs `python -m {{ cookiecutter.package_name }} <command>`: __main__.py and what it imports at
module level, then stages/<command>.py, or dask_engine/<command>.py when compute.engine
picks that twin (__main__.py chooses; both are listed, as a params change can switch),
and every project module those import, at any depth (imports inside functions too: they
run when the stage calls them; modeling/models.py imports the classes that conf/model/
files name), and the __init__.py of every package on the way (Python
runs them first). A module missing from a
stage's deps lets DVC call a stale output up to date after that module changes; an extra
one reruns the stage for nothing. Stages whose cmd does not run the package are left out.

`python src/{{ cookiecutter.package_name }}/tools/dvc_deps.py` (the pre-commit hook) prints one line
per problem, naming the stage and the module, and exits 1; with `--fix` it first rewrites
each stage's project-code deps in dvc.yaml to what the stage runs (comments, data deps
and the rest of the file unchanged). It imports only the standard library and PyYAML, so
the hook's environment stays small.
"""

from __future__ import annotations

import ast
import os
import re
import sys
from pathlib import Path

import yaml

PACKAGE = Path(__file__).resolve().parents[1]
PROJECT = PACKAGE.parents[1]
# How the pre-commit hook runs this file, from the project's root.
HOOK = f"src/{PACKAGE.name}/tools/dvc_deps.py"


def _module_file(parts: tuple[str, ...], package: Path) -> Path | None:
    """The file of dotted module `parts` (the package's name first), if it is the package's."""
    if not parts or parts[0] != package.name:
        return None
    base = package.parent.joinpath(*parts)
    if base.with_suffix(".py").is_file():
        return base.with_suffix(".py")
    if (base / "__init__.py").is_file():
        return base / "__init__.py"
    return None


def project_imports(path: Path, package: Path, module_level_only: bool = False) -> set[Path]:
    """The files of the package that module `path` imports, relatively or by full name."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    here = path.parent.relative_to(package.parent).parts
    found = set()
    for node in tree.body if module_level_only else ast.walk(tree):
        targets: list[tuple[str, ...]] = []
        if isinstance(node, ast.Import):
            targets = [tuple(alias.name.split(".")) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = here[: len(here) - node.level + 1] if node.level else ()
            module = base + tuple(node.module.split(".") if node.module else ())
            # `from .x import name`: name is a module of x, or a name that x defines.
            targets = [
                module + (alias.name,) if _module_file(module + (alias.name,), package) else module
                for alias in node.names
            ]
        found |= {f for f in (_module_file(t, package) for t in targets) if f is not None}
    if path == package / "modeling" / "models.py":
        found |= model_targets(package)
    return found


def model_targets(package: Path) -> set[Path]:
    """The package's modules that conf/model/*.yaml name as `_target_`: modeling/models.py
    builds and loads those estimators, importing their classes when it runs."""
    found = set()
    for path in (package.parents[1] / "conf" / "model").glob("*.yaml"):
        target = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("_target_")
        if isinstance(target, str):
            found.add(_module_file(tuple(target.split("."))[:-1], package))
    return found - {None}


def _with_packages(path: Path, package: Path) -> set[Path]:
    """`path` and the __init__.py of each package that holds it, up to `package`."""
    inits = (parent / "__init__.py" for parent in path.parents if parent.is_relative_to(package))
    return {path} | {init for init in inits if init.is_file()}


def closure(start: set[Path], package: Path) -> set[Path]:
    """Every package file that runs once the modules in `start` are imported."""
    seen: set[Path] = set()
    todo = [f for path in start for f in _with_packages(path, package)]
    while todo:
        path = todo.pop()
        if path not in seen:
            seen.add(path)
            imported = project_imports(path, package)
            todo.extend(f for p in imported for f in _with_packages(p, package))
    return seen


def command(spec: dict, package: Path) -> str | None:
#% if cookiecutter.remote_sources == "yes"
    """The command a stage gives `python -m <package>` (`fetch` for `... fetch ${key}`)."""
#% else
    """The command a stage gives `python -m <package>` (`train` for `... train`)."""
#% endif
    cmd = spec.get("cmd", "")
    text = " ".join(cmd) if isinstance(cmd, list) else str(cmd)
    found = re.search(rf"-m\s+{re.escape(package.name)}\s+([\w-]+)", text)
    return found.group(1) if found else None


def runs(name: str, package: Path = PACKAGE) -> set[str]:
    """The files (relative to the project) that `python -m <package> name` runs."""
    entry = package / "__main__.py"
    twin = package / "dask_engine" / f"{name}.py"
    start = {package / "stages" / f"{name}.py"} | ({twin} if twin.is_file() else set())
    start |= project_imports(entry, package, module_level_only=True)
    files = closure(start, package) | {entry}
    return {str(p.relative_to(package.parents[1])) for p in files}


def stages(project: Path = PROJECT) -> dict[str, dict]:
    """dvc.yaml's stages, a foreach stage as its `do:` body."""
    found = yaml.safe_load((project / "dvc.yaml").read_text(encoding="utf-8"))["stages"]
    return {name: spec.get("do", spec) for name, spec in found.items()}


def pipeline(project: Path = PROJECT, package: Path = PACKAGE) -> list[str]:
    """The stage modules dvc.yaml runs, in its order, each once (a foreach stage runs
    once for all its entries)."""
    found = (command(spec, package) for spec in stages(project).values())
    return list(dict.fromkeys(name for name in found if name is not None))


def declared(spec: dict) -> set[str]:
    return {d for d in spec.get("deps", []) if d.startswith("src/")}


def problems(name: str, spec: dict, package: Path = PACKAGE) -> list[str]:
    """One line per module that stage `name` runs but does not list, or lists but never runs."""
    run_as = command(spec, package)
    if run_as is None:
        return []
    if not (package / "stages" / f"{run_as}.py").is_file():
        return [f"dvc.yaml: stage {name} runs `{run_as}`, which has no stages/{run_as}.py"]
    used, listed = runs(run_as, package), declared(spec)
    return [
        f"dvc.yaml: stage {name} imports {m}, which its deps do not list: add it"
        for m in sorted(used - listed)
    ] + [
        f"dvc.yaml: stage {name} lists {m} in its deps but never imports it: remove it"
        for m in sorted(listed - used)
    ]


def wanted(name: str, spec: dict, package: Path = PACKAGE) -> list[str] | None:
    """The code deps stage `name` should list: its stages/ module, then the rest sorted;
    None when the stage does not run a module of stages/."""
    run_as = command(spec, package)
    if run_as is None or not (package / "stages" / f"{run_as}.py").is_file():
        return None
    first = str((package / "stages" / f"{run_as}.py").relative_to(package.parents[1]))
    return [first] + sorted(runs(run_as, package) - {first})


# A stage's name under `stages:`, a `deps:` key, and a project-code item of a deps list.
STAGE_LINE = re.compile(r"^  ([\w-]+):\s*(#.*)?$")
DEPS_LINE = re.compile(r"^(\s+)deps:\s*$")
CODE_LINE = re.compile(r"^(\s+)- src/\S+\.py\s*$")


def _in_list(line: str, indent: str) -> bool:
    """Whether `line` still belongs to the list under a `deps:` key indented by `indent`."""
    item = line.lstrip()
    return item.startswith("#") or (item.startswith("- ") and len(line) - len(item) >= len(indent))


def with_code_deps(text: str, code: dict[str, list[str]]) -> str:
    """dvc.yaml's text with the project-code deps of each stage in `code` replaced by its
    list, where the first of them stood (after `deps:` when there was none; a stage with
    no `deps:` gets one under its name). Comments, data deps and every other line stay as
    they were."""
    out: list[str] = []
    stage, deps, written = None, None, set()  # deps: (index after `deps:`, its indent)
    starts: dict[str, int] = {}  # each stage's index after its name's line

    def close() -> None:
        if deps and stage in code and stage not in written:
            out[deps[0] : deps[0]] = [f"{deps[1]}  - {path}\n" for path in code[stage]]
            written.add(stage)

    for line in text.splitlines(keepends=True):
        if deps and not _in_list(line, deps[1]):
            close()
            deps = None
        if deps and stage in code and (found := CODE_LINE.match(line)):
            if stage not in written:
                out += [f"{found.group(1)}- {path}\n" for path in code[stage]]
                written.add(stage)
            continue
        if found := STAGE_LINE.match(line):
            stage = found.group(1)
            starts[stage] = len(out) + 1
        elif found := DEPS_LINE.match(line):
            deps = (len(out) + 1, found.group(1))
        out.append(line)
    close()
    # Last first, so that each insertion leaves the earlier indices in place.
    for name in sorted(set(code).intersection(starts) - written, key=starts.get, reverse=True):
        out[starts[name] : starts[name]] = ["    deps:\n"] + [f"      - {p}\n" for p in code[name]]
    return "".join(out)


def fix(project: Path = PROJECT, package: Path = PACKAGE) -> list[str]:
    """Rewrite dvc.yaml's code deps to what each stage runs; one line per stage changed."""
    code = {}
    raw = yaml.safe_load((project / "dvc.yaml").read_text(encoding="utf-8"))["stages"]
    for name, spec in stages(project).items():
        # A foreach stage's deps go under its `do:`: with none there yet, it is left to you.
        if "foreach" in raw[name] and "deps" not in spec:
            continue
        if (listed := wanted(name, spec, package)) is not None:
            code[name] = listed
    path = project / "dvc.yaml"
    text = path.read_text(encoding="utf-8")
    changed = [n for n, spec in stages(project).items() if n in code and problems(n, spec, package)]
    if changed:
        # Written whole or not at all: a half-written dvc.yaml would break every DVC command.
        temporary = path.with_name(f".{path.name}.fixing")
        temporary.write_text(with_code_deps(text, code), encoding="utf-8")
        os.replace(temporary, path)
    return [f"dvc.yaml: stage {name}'s code deps rewritten" for name in changed]


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args not in ([], ["--fix"]):
        print(f"usage: python {HOOK} [--fix]", file=sys.stderr)
        return 2
    if args:
        for line in fix():
            print(line)
    found = [line for name, spec in stages().items() for line in problems(name, spec)]
    for line in found:
        print(line, file=sys.stderr)
    if found and not args:
        print(f"`python {HOOK} --fix` rewrites each stage's code deps", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
