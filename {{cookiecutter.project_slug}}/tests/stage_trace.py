"""Run stages and record what each used; tests/tools/test_dvc_deps.py drives it.

`python tests/stage_trace.py` reads lines `OUT<tab>COMMAND[<tab>ARG]` on stdin. For each,
a forked child runs `python -m {{ cookiecutter.package_name }} COMMAND [ARG]` and writes OUT,
JSON with "modules" (the files under src/{{ cookiecutter.package_name }}/ that were loaded) and
"params" (the dotted params keys read), and OUT.log (its output); this process then
prints the child's exit code. It has loaded the third-party libraries the package imports
but no project module, so each stage starts from the same state, as in its own `dvc
repro` process, without paying for those imports again. Keys are recorded through a view
of what `params.load()` returns: stage code runs unchanged.
"""

from __future__ import annotations

import ast
import importlib
import json
import os
import sys
import traceback
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "{{ cookiecutter.package_name }}"
# As __main__.py does before numpy loads: native thread pools start at one thread.
for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

from pydantic import BaseModel  # noqa: E402


class Traced:
    """A params model as the stage sees it, adding the dotted path of every value read to
    `reads`: a leaf is its own path; a dict-valued key (model, select.candidates) is
    the key; anything that sees a whole section (model_dump, iteration) is the section."""

    __slots__ = ("_model", "_prefix", "_reads")

    def __init__(self, model: BaseModel, prefix: str, reads: set[str]) -> None:
        object.__setattr__(self, "_model", model)
        object.__setattr__(self, "_prefix", prefix)
        object.__setattr__(self, "_reads", reads)

    @property
    def __class__(self):  # isinstance(view, CleanParams) holds as for the model itself
        return type(self._model)

    def __getattr__(self, name: str):
        model, kind = self._model, type(self._model)
        if name in kind.model_fields:
            value = getattr(model, name)
            if isinstance(value, BaseModel):
                return Traced(value, f"{self._prefix}{name}.", self._reads)
            self._reads.add(self._prefix + name)
            return value
        attribute = getattr(kind, name, None)
        if isinstance(attribute, property):
            return attribute.fget(self)  # compute.cores: its reads go through this view
        if name == "model_copy":
            return lambda **kw: Traced(model.model_copy(**kw), self._prefix, self._reads)
        self._reads.add(self._prefix.rstrip(".") or "<all params>")
        return getattr(model, name)

    def __setattr__(self, name: str, value) -> None:
        raise TypeError(f"params are frozen: cannot set {name}")

    def __iter__(self):
        self._reads.add(self._prefix.rstrip(".") or "<all params>")
        return iter(self._model)


def trace(out: Path, argv: list[str]) -> int:
    from {{ cookiecutter.package_name }}.core import params

    reads: set[str] = set()
    load = params.load
    params.load = lambda *args, **kw: Traced(load(*args, **kw), "", reads)
    # Stage modules bind `load` when main() imports them, after the line above.
    from {{ cookiecutter.package_name }}.__main__ import main

    code = main(argv)
    files = {getattr(m, "__file__", None) for m in list(sys.modules.values())}
    loaded = [Path(f).resolve() for f in files if f]
    modules = sorted(
        str(p.relative_to(PACKAGE.parents[1])) for p in loaded if p.is_relative_to(PACKAGE)
    )
    out.write_text(json.dumps({"modules": modules, "params": sorted(reads)}), encoding="utf-8")
    return code


def third_party_imports() -> list[str]:
    """Every absolute import in the package that is not the package itself."""
    names = set()
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and not node.level:
                names.add(node.module)
    return sorted(n for n in names if n.split(".")[0] != PACKAGE.name)


def serve() -> None:
    for name in third_party_imports():
        importlib.import_module(name)
    for line in sys.stdin:
        out, *argv = line.rstrip("\n").split("\t")
        pid = os.fork()
        if pid == 0:
            log = os.open(f"{out}.log", os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
            os.dup2(log, 1)  # stdout carries the exit codes to the test: nothing else
            os.dup2(log, 2)
            try:
                code = trace(Path(out), argv)
            except BaseException:
                traceback.print_exc()
                code = 1
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
        _, status = os.waitpid(pid, 0)
        print(os.waitstatus_to_exitcode(status), flush=True)


if __name__ == "__main__":
    serve()
