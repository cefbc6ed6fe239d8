"""The template's package read where it stands, for the template's tests and benchmarks:
its Jinja-free modules loaded from their files, so that facts such as the list of stages
have one home (the package) and are not copied here."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

TEMPLATE = Path(__file__).resolve().parents[1]
PACKAGE = TEMPLATE / "{{cookiecutter.project_slug}}" / "src" / "{{cookiecutter.package_name}}"


def module(relative: str):
    """The package's module at `relative` (e.g. "stages/__init__"),
    loaded from its file; it must hold no Jinja and import nothing of the package."""
    name = "template_" + relative.replace("/", "_")
    spec = importlib.util.spec_from_file_location(name, PACKAGE / f"{relative}.py")
    loaded = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = loaded  # dataclasses look their class's module up
    spec.loader.exec_module(loaded)
    return loaded


# The pipeline's stages in the order they run (stages.STAGES).
STAGES = list(module("stages/__init__").STAGES)
