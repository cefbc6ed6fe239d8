"""Baking helpers shared by the template's tests.

Every test runs with a throwaway HOME (no git identity, no cookiecutter replay
files in the real home) and with the venv's tools first on PATH, as a user who
followed the README would.
"""

from __future__ import annotations

import hashlib
import html
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import template_package
import yaml
from cookiecutter.main import cookiecutter

TEMPLATE = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
STAGES = template_package.STAGES


def candidates(task: str) -> list[str]:
    """select's candidates in a bake of `task`, in order: the lines
    `- model@select.candidates.<name>: <name>` of conf/config.yaml as Jinja renders them."""
    from jinja2 import Environment, StrictUndefined

    text = (TEMPLATE / "{{cookiecutter.project_slug}}" / "conf" / "config.yaml").read_text()
    answers = {"task": task, "metric": "default", "package_name": "pkg"}
    environment = Environment(line_statement_prefix="#%", undefined=StrictUndefined)
    rendered = environment.from_string(text).render(cookiecutter=answers)
    return re.findall(r"^  - model@select\.candidates\.(\w+): \1$", rendered, re.M)


# The bake's models per task, in select's order (each a conf/model/ file); the first is
# the task's linear model.
MODELS = {task: candidates(task) for task in ("classification", "regression")}


# The modules whose scopes take longest (minutes each, measured with --durations),
# longest first. `--dist loadscope` hands scopes to the workers in collection order, so
# these start first and the suite ends on short scopes, with neither worker left idle
# while the other finishes a long one (alphabetically, the walkthroughs came last).
LONGEST_FIRST = (
    "test_pipeline.py",
    "test_walkthrough.py",
    "test_closed_loop.py",
    "test_own_data.py",
    "test_make_it_yours.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Reorder the modules (LONGEST_FIRST), keeping the order of tests within each."""
    rank = {name: n for n, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))


@pytest.fixture(scope="session", autouse=True)
def isolated_env(tmp_path_factory: pytest.TempPathFactory) -> None:
    home = tmp_path_factory.mktemp("home")
    (home / ".cookiecutterrc").write_text(
        f"replay_dir: {home / 'replay'}\ncookiecutters_dir: {home / 'cookiecutters'}\n"
    )
    os.environ.update(
        HOME=str(home),
        GIT_CONFIG_NOSYSTEM="1",
        DVC_NO_ANALYTICS="1",
        PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}",
        # Every bake that runs `dvc repro` starts a preload server of its own: each goes
        # a minute after its last stage, not the 15 a user's gets.
        REALITYLOOP_PRELOAD_IDLE="60",
    )
    os.environ.pop("GIT_CONFIG_GLOBAL", None)
    os.environ.pop("PYTHONPATH", None)


def bake(output_dir: Path, template: Path = TEMPLATE, **answers: str) -> Path:
    """Bake the template with default answers except `answers`; return the project folder."""
    output_dir.mkdir(parents=True, exist_ok=True)
    project = cookiecutter(
        str(template),
        no_input=True,
        extra_context=answers,
        output_dir=str(output_dir),
        config_file=str(Path(os.environ["HOME"]) / ".cookiecutterrc"),
    )
    return Path(project)


def package_of(project: Path) -> str:
    """The bake's package name, from its record of the answers (.cruft.json)."""
    answers = json.loads((project / ".cruft.json").read_text())["context"]["cookiecutter"]
    return answers["package_name"]


def run(cwd: Path, *command: str, check: bool = True, **env: str) -> subprocess.CompletedProcess:
    """Run a command in a baked project, its src/ importable as after `pip install -e .`."""
    environment = {**os.environ, "PYTHONPATH": str(cwd / "src"), **env}
    done = subprocess.run(command, cwd=cwd, env=environment, capture_output=True, text=True)
    if check and done.returncode != 0:
        raise AssertionError(
            f"{' '.join(command)} exited {done.returncode}\n"
            f"--- stdout\n{done.stdout[-4000:]}\n--- stderr\n{done.stderr[-4000:]}"
        )
    return done


def git(cwd: Path, *args: str) -> str:
    return run(cwd, "git", *args).stdout.strip()


def ran(log: str, stages: list[str] = STAGES) -> list[str]:
    """The stages a `dvc repro` / `dvc exp run` log says it ran, in pipeline order."""
    return [s for s in stages if f"Running stage '{s}'" in log]


def docs_harness(project: Path):
    """The bake's tests/test_docs.py as a module: its harness runs the docs as written
    (bash_blocks, status_steps)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("baked_test_docs", project / "tests/test_docs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def status_lines(project: Path) -> list[str]:
    """What `git status --short` prints, line by line."""
    return run(project, "git", "status", "--short").stdout.splitlines()


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def locked_model_md5(lock_text: str) -> str:
    """The md5 that a dvc.lock records for the exported model."""
    outs = yaml.safe_load(lock_text)["stages"]["export"]["outs"]
    return next(o["md5"] for o in outs if o["path"] == "models/model.skops")


# Appended to a `dvc plots show` page before Chromium renders it: once Vega has drawn,
# it lists each chart (a div of the page) with its title and the marks it drew, counting
# only data marks (the children of Vega's role-mark groups: a bar, a line, a point, a
# rule, a label), never axes, legends or titles, which a chart without data still has.
# Five seconds of virtual time: Chromium fast-forwards it once the page is idle.
COUNT_MARKS = """
<script>
setTimeout(function () {
    var charts = Array.from(document.querySelectorAll("body > div")).map(function (div) {
        // The chart's own title, not a facet's header (which Vega draws as a title too).
        var title = Array.from(div.querySelectorAll(".role-title-text text")).find(function (t) {
            return !t.closest("[class*=-header], [class*=-footer], [class*=column-title]");
        });
        var marks = Array.from(div.querySelectorAll("g.role-mark:not(.mark-group) > *"));
        var drawn = marks.filter(function (m) {
            return m.tagName === "line" || (m.getAttribute("d") || m.textContent || "").trim();
        });
        return {title: title ? title.textContent : null, marks: drawn.length};
    });
    var out = document.createElement("pre");
    out.id = "chart-marks";
    out.textContent = JSON.stringify(charts);
    document.body.appendChild(out);
}, 5000);
</script>
"""


def chart_marks(page: Path) -> list[dict]:
    """[{title, marks}] per chart of a `dvc plots show` page, rendered by headless Chromium
    (Debian's `chromium`; .ci/run installs it); the page's marks must be SVG (the offline
    template makes vega-embed draw SVG)."""
    chromium = shutil.which("chromium")
    if chromium is None:
        # CI must not pass by skipping the check it installed chromium for.
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed: .ci/run installs Debian's chromium")
        pytest.skip("chromium is not installed (.ci/run installs Debian's chromium)")
    probe = page.with_name("marks.html")
    text = page.read_text()
    end = text.rindex("</body>")  # the last one: the vendored scripts hold the string too
    probe.write_text(text[:end] + COUNT_MARKS + text[end:])
    done = subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu",
         f"--user-data-dir={page.parent / 'chromium-profile'}",
         "--virtual-time-budget=30000", "--dump-dom", probe.as_uri()],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    found = re.search(r'<pre id="chart-marks">(.*?)</pre>', done.stdout, re.S)
    assert found, f"chromium drew no page: {done.stderr[-2000:]}"
    return json.loads(html.unescape(found[1]))
