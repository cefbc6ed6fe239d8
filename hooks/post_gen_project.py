"""Turn the rendered files into a working repository: git, DVC, data, first commit.

Runs inside the new project with the Python that runs cookiecutter, which has
DVC (and so Hydra) when installed as the README says. Each step says what it
does; a failing step stops with the step's name and the tool's own message.
"""

import importlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

# Rendered by cookiecutter: valid Python before and after (JSON inside a raw string).
ANSWERS = json.loads(r"""{{ cookiecutter | tojson }}""")
# tojson sorts a mapping's keys; a list keeps the context's order (cookiecutter.json's).
ORDER = json.loads(r"""{{ cookiecutter.keys() | list | tojson }}""")
# Context entries that describe one machine's run, not the project.
MACHINE_LOCAL = {"_output_dir", "_repo_dir", "_checkout", "_template", "_commit"}

# Files that only the other task uses: its charts' plot templates and its models (a
# conf/model/ file is a model; these estimators are of one task only, while
# random_forest.yaml and the like pick their class per task with Jinja).
OTHER_TASK_FILES = {
    "classification": [
        "plots/scatter_with_diagonal.json",
        "plots/scatter_with_zero.json",
        "conf/model/ridge.yaml",
    ],
    "regression": [
        "plots/lines_by_class.json",
        "plots/bars_by_class.json",
        "conf/model/logistic_regression.yaml",
        "src/{{ cookiecutter.package_name }}/modeling/xgboost_labels.py",
        "tests/modeling/test_xgboost_labels.py",
    ],
}
CI_FILES = {"github": [".github"], "gitlab": [".gitlab-ci.yml"], "none": []}
# What each yes/no feature adds; its `no` deletes these (Jinja takes out the lines that
# other files hold: imports, commands, dvc.yaml stages, dependencies).
FEATURE_FILES = {
    "serving": [
        "src/{{ cookiecutter.package_name }}/serving",
        "src/{{ cookiecutter.package_name }}/decision",
        "src/{{ cookiecutter.package_name }}/monitoring",
        "service.yaml",
        "docs/serving.md",
        "tests/serving",
        "tests/decision",
        "tests/monitoring",
        # The scheduled loop's workflow (ci: github only; CI_FILES takes it with .github).
        ".github/workflows/loop.yml",
    ],
    "onnx": [
        "src/{{ cookiecutter.package_name }}/export/onnx_convert.py",
        "src/{{ cookiecutter.package_name }}/export/onnx_target_encoder.py",
        "docs/onnx.md",
        "tests/export/test_onnx.py",
    ],
    "remote_sources": [
        "src/{{ cookiecutter.package_name }}/stages/fetch.py",
        "tests/stages/test_fetch.py",
    ],
    # The nbstripout hook and the README's section go by Jinja; the Jupyter pins by
    # pyproject.toml's Jinja and prune_locks.
    "notebooks": [
        "notebooks",
        "src/{{ cookiecutter.package_name }}/tools/outputs.py",
        "tests/tools/test_outputs.py",
    ],
}
ENV = {**os.environ, "DVC_NO_ANALYTICS": "1", "PYTHONUTF8": "1"}


class StepFailed(Exception):
    pass


def run(step: str, *command: str) -> str:
    try:
        done = subprocess.run(command, capture_output=True, text=True, env=ENV, check=False)
    except FileNotFoundError as exc:
        raise StepFailed(f"{step}: {exc.filename} is not installed") from None
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).strip().splitlines()
        raise StepFailed(f"{step}: {' '.join(command)} failed: {detail[-1] if detail else ''}")
    return done.stdout.strip()


def dvc(step: str, *args: str) -> str:
    return run(step, sys.executable, "-m", "dvc", *args)


def is_yes(value: object) -> bool:
    return str(value).strip().lower() in {"true", "yes", "y", "1"}


def package_module(step: str, name: str):
    """A module of the new project's package that runs without its dependencies (Python
    alone, or Hydra for config_sync), imported from its folder: `name` is its dotted path
    in the package ("core.config_sync")."""
    folder, _, module = name.rpartition(".")
    sys.path.insert(0, str(Path("src", ANSWERS["package_name"], *folder.split(".")).resolve()))
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise StepFailed(f"{step}: {exc}") from None
    finally:
        sys.path.pop(0)


def prune_options() -> None:
    """Delete what the answers did not ask for; Jinja alone cannot skip whole files."""
    doomed = list(OTHER_TASK_FILES[ANSWERS["task"]])
    for ci, files in CI_FILES.items():
        if ci != ANSWERS["ci"]:
            doomed += files
    if not is_yes(ANSWERS["use_pre_commit"]):
        doomed.append(".pre-commit-config.yaml")
    for feature, files in FEATURE_FILES.items():
        if not is_yes(ANSWERS[feature]):
            doomed += files
    for name in doomed:
        path = Path(name)
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(requirement: str) -> str:
    return normalized(re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement.strip()).group())


def root_edges(root: dict) -> list[dict]:
    return root.get("dependencies", []) + [
        e for entries in root.get("optional-dependencies", {}).values() for e in entries
    ]


def prune_locks() -> None:
    """uv.lock and requirements.lock as `uv lock` and its export would write them for the
    rendered pyproject.toml. They ship locked for the default answers (every feature);
    a `no` takes dependencies out of pyproject.toml, so the packages that nothing left
    needs leave both locks, and the rest stays byte for byte: `uv lock --check` and
    `uv sync --locked` accept the project, with the versions the template is tested on
    (tests/test_options.py compares both files with what uv writes)."""
    project = tomllib.loads(Path("pyproject.toml").read_text(encoding="utf-8"))["project"]
    wanted = {requirement_name(r) for r in project["dependencies"]}
    extras = {
        e: {requirement_name(r) for r in rs} for e, rs in project["optional-dependencies"].items()
    }
    head, *blocks = Path("uv.lock").read_text(encoding="utf-8").split("\n[[package]]\n")
    packages = [tomllib.loads(f"[[package]]\n{block}")["package"][0] for block in blocks]
    root = next(p for p in packages if p.get("source") == {"editable": "."})
    declared = wanted.union(*extras.values())
    if {normalized(e["name"]) for e in root_edges(root)} == declared:
        return  # every feature: the locks as shipped
    direct = [e for e in root.get("dependencies", []) if normalized(e["name"]) in wanted]
    direct += [
        e
        for extra, entries in root.get("optional-dependencies", {}).items()
        for e in entries
        if normalized(e["name"]) in extras.get(extra, set())
    ]
    by_name = {normalized(p["name"]): p for p in packages}
    kept, used_extras, followed = reachable(normalized(root["name"]), direct, by_name)
    gone = set(by_name) - kept
    out = [
        lock_block(package, block, package is root, declared, used_extras)
        for package, block in zip(packages, blocks, strict=True)
        if normalized(package["name"]) not in gone
    ]
    Path("uv.lock").write_text("\n[[package]]\n".join([head, *out]), encoding="utf-8")
    prune_requirements(Path("requirements.lock"), gone, export_markers(followed))


def reachable(root: str, direct: list[dict], by_name: dict) -> tuple[set, set, list[dict]]:
    """(the packages `direct` needs, root included; the (package, extra) pairs asked for;
    every edge followed), over the lock's graph, where an edge may ask for extras."""
    kept, used_extras, todo, followed = {root}, set(), list(direct), []
    while todo:
        edge = todo.pop()
        followed.append(edge)
        name = normalized(edge["name"])
        target = by_name[name]
        for extra in edge.get("extra", []):
            if (name, extra) not in used_extras:
                used_extras.add((name, extra))
                todo += target.get("optional-dependencies", {}).get(extra, [])
        if name not in kept:
            kept.add(name)
            todo += target.get("dependencies", [])
    return kept, used_extras, followed


def lock_block(package: dict, block: str, is_root: bool, declared: set, used_extras: set) -> str:
    """A kept package's uv.lock block: the root's lists without the removed dependencies,
    another package's without the extras only removed packages asked for."""
    name = normalized(package["name"])
    if is_root:
        return "".join(
            line
            for line in block.splitlines(keepends=True)
            if not (m := re.match(r'\s*\{ name = "([^"]+)"', line))
            or normalized(m.group(1)) in declared
        )
    for extra in package.get("optional-dependencies", {}):
        if (name, extra) not in used_extras:
            # An extra only a removed package asked for: uv records the used ones.
            block = re.sub(rf"(?ms)^{re.escape(extra)} = \[\n.*?^\]\n", "", block)
    return block


def prune_requirements(path: Path, gone: set, markers: dict[str, str | None]) -> None:
    """requirements.lock without the removed packages; a package now needed only under
    a marker gets it, as `uv export` writes it."""
    lines = []
    for line in path.read_text(encoding="utf-8").splitlines(keepends=True):
        if line.startswith("#") or not line.strip():
            lines.append(line)
            continue
        name = requirement_name(line)
        if name in gone:
            continue
        if ";" not in line and markers.get(name):
            # Needed unconditionally only through what went: now only where its users are.
            line = f"{line.rstrip()} ; {markers[name]}\n"
        lines.append(line)
    path.write_text("".join(lines), encoding="utf-8")


def export_markers(edges: list[dict]) -> dict[str, str | None]:
    """The environment marker of each kept package as requirements.lock writes it: None when
    some package needs it without a marker, else the marker that covers its every remaining
    need (covering(); none covers them all: the line stays as the lock had it)."""
    needs: dict[str, set[str | None]] = {}
    for edge in edges:
        needs.setdefault(normalized(edge["name"]), set()).add(edge.get("marker"))
    return {name: None if None in seen else covering(seen) for name, seen in needs.items()}


def covering(markers: set[str]) -> str | None:
    """The one of `markers` whose `or` terms include every other's, as uv writes their
    union: needs under `a` and under `a or b` give `a or b` (tzdata: pandas needs it on
    emscripten or win32, kombu on win32). None when no marker covers all."""

    def terms(marker: str) -> set[str]:
        # `and` binds tighter than `or`: without parentheses, `or` splits the top level.
        return {marker} if "(" in marker else set(marker.split(" or "))

    every = set().union(*map(terms, markers))
    return next((m for m in sorted(markers) if terms(m) == every), None)


def compose_params() -> None:
    """params.yaml = conf/ composed, by the same module the project's own check uses."""
    config_sync = package_module("compose params.yaml", "core.config_sync")
    sys.path.insert(0, str(Path("src", ANSWERS["package_name"]).resolve()))
    try:
        config_sync.main([])
    except Exception as exc:
        raise StepFailed(f"compose params.yaml: {exc}") from None
    finally:
        sys.path.pop(0)


def init_git() -> None:
    run("git init", "git", "init", "--quiet", "--initial-branch=main")
    for key, answer in (("user.name", "author_name"), ("user.email", "author_email")):
        has = subprocess.run(["git", "config", key], capture_output=True, text=True, env=ENV)
        if has.returncode != 0 or not has.stdout.strip():
            # No identity configured: the author's lets this and later commits work.
            run("git identity", "git", "config", key, ANSWERS[answer])


def init_dvc() -> None:
    if importlib.util.find_spec("dvc") is None:
        raise StepFailed(
            f"dvc init: DVC is not installed for {sys.executable}: "
            "`pip install dvc==3.67.1` next to cookiecutter (or use `make demo`)"
        )
    dvc("dvc init", "init", "--quiet")
    dvc("dvc config", "config", "core.autostage", "true")
    dvc("dvc config", "config", "hydra.enabled", "true")
    # Vega inlined: `dvc plots show` renders offline (the default page loads it from a CDN).
    # DVC resolves this path from .dvc/.
    dvc("dvc config", "config", "plots.html_template", "../plots/offline_template.html")
    # A relative folder is stored relative to .dvc/, so project and storage can move together.
    dvc("dvc remote", "remote", "add", "--default", "storage", ANSWERS["dvc_remote_url"])
    dvc("dvc add", "add", "--quiet", "data/raw")


def git_in(folder: Path, *args: str) -> str | None:
    """git's answer in `folder`, or None where git says no (not a repository)."""
    done = subprocess.run(["git", *args], cwd=folder, capture_output=True, text=True, env=ENV)
    return done.stdout.strip() if done.returncode == 0 else None


def located(template: str) -> Path | None:
    """The template's folder. Cookiecutter passes it as it was given, and this hook runs in
    the new project: a relative path is resolved from the shell's folder ($PWD)."""
    path = Path(template).expanduser()
    if not path.is_absolute():
        path = Path(os.environ.get("PWD", "/nonexistent"), path)
    return path.resolve() if (path / "cookiecutter.json").is_file() else None


def template_source(top: Path) -> str:
    """Where the template came from, in a form `git clone` (and so cruft) accepts: the
    repository's folder for a local template, else the URL cookiecutter was given."""
    from cookiecutter.config import BUILTIN_ABBREVIATIONS
    from cookiecutter.repository import expand_abbreviations

    given = ANSWERS["_template"]
    if located(given):
        return str(top)
    return expand_abbreviations(given, BUILTIN_ABBREVIATIONS).removeprefix("git+")


def record_template() -> None:
    """.cruft.json: the template, its commit and the answers, so `cruft check`, `cruft diff`
    and `cruft update` work on this project. It is the file `cruft create` writes, byte for
    byte, so a bake by `cruft create` (its context has `_commit`) is clean after cruft
    writes it again. Not written when the template is not a git checkout: there is no
    commit to update from, and inventing one would make `cruft check` lie.
    """
    directory = None
    if "_commit" in ANSWERS:
        source, commit = ANSWERS["_template"], ANSWERS["_commit"]
    else:
        template_dir = located(ANSWERS["_repo_dir"])
        top = git_in(template_dir, "rev-parse", "--show-toplevel") if template_dir else None
        commit = git_in(template_dir, "rev-parse", "HEAD") if top else None
        if not top or not commit:
            print(
                f"NOTE: no .cruft.json: the template ({ANSWERS['_repo_dir']}) is not a git "
                "checkout, so this project cannot be updated from it (bake from a git clone "
                "or URL, or run `cruft link <template-git-url>` in the project).",
                file=sys.stderr,
            )
            return
        if git_in(template_dir, "status", "--porcelain", "--", "."):
            print(
                f"WARNING: the template at {template_dir} has uncommitted changes; "
                f".cruft.json records its last commit {commit[:12]}, which does not have them.",
                file=sys.stderr,
            )
        top_dir = Path(top).resolve()
        source = template_source(top_dir)
        if top_dir != template_dir:  # a template in a subfolder of its repository
            directory = str(template_dir.relative_to(top_dir))
    # cruft records the rendered private answers (`__answers_checked`), not the questions.
    answers = {k: ANSWERS[k] for k in ORDER if k not in MACHINE_LOCAL and k != "__prompts__"}
    state = {
        "template": source,
        "commit": commit,
        "checkout": ANSWERS.get("_checkout"),
        "context": {"cookiecutter": answers | {"_template": source, "_commit": commit}},
        "directory": directory,
    }
    # cruft's own layout (its json_dumps), so its rewrites change only what changed.
    text = json.dumps(state, ensure_ascii=False, indent=2, separators=(",", ": ")) + "\n"
    Path(".cruft.json").write_text(text, encoding="utf-8")


def first_commit() -> None:
    run("git add", "git", "add", "--all")
    message = f"Bake {ANSWERS['project_name']} from realityloop {ANSWERS['_template_version']}"
    run("git commit", "git", "commit", "--quiet", "--no-verify", "-m", message)


def main() -> int:
    try:
        prune_options()
        prune_locks()
        compose_params()
        init_git()
        init_dvc()
        record_template()
        first_commit()
    except StepFailed as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 1
    print(f"Baked {Path.cwd()}: next, `cd {Path.cwd().name}` and follow its README.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
