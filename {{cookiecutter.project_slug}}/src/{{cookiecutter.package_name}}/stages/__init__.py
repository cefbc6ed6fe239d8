"""One module per pipeline phase: pure functions that do the work, taking and returning
tables, models and the params they need, and a main() that reads, calls them and writes.

Every module here is a stage: `python -m <package> <name>` runs stages/<name>.py's
main() (`names()` finds them; there is no list to extend). STAGES is the built-in
pipeline in the order it runs: tests check that dvc.yaml holds these stages in this
order (fetch, once per data.fetch source, comes first); your own stages are blocks
appended to dvc.yaml (docs/make-it-yours.md), whose deps order `dvc repro`.
"""

from __future__ import annotations

from pathlib import Path

STAGES = ("ingest", "clean", "annotate", "preprocess", "select", "train", "evaluate", "export")


def names() -> list[str]:
    """Every stage module of this folder: the built-in ones in pipeline order, then the
    others by name."""
    found = {path.stem for path in Path(__file__).parent.glob("[!_]*.py")}
    return [s for s in STAGES if s in found] + sorted(found - set(STAGES))
