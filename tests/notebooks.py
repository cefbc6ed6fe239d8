"""Run a baked project's notebooks as Jupyter would: nbclient, with the project's Python as
the kernel (the bake's environment, its src/ importable), from the notebook's folder. A
cell that raises fails the run. Parameters are injected papermill's way: a cell tagged
`injected-parameters` after the one tagged `parameters`."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

from conftest import run

# Runs in the project's Python: nbclient starts the kernel of that Python (ipykernel's
# `python3` is the interpreter running it).
EXECUTE = """
import json, sys
import nbformat
from nbclient import NotebookClient

notebook, parameters, executed = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
nb = nbformat.read(notebook, as_version=4)
if parameters:
    at = next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", []))
    cell = nbformat.v4.new_code_cell("\\n".join(f"{k} = {v!r}" for k, v in parameters.items()))
    cell.metadata["tags"] = ["injected-parameters"]
    nb.cells.insert(at + 1, cell)
client = NotebookClient(
    nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": sys.argv[4]}}
)
client.execute()
nbformat.write(nb, executed)
"""


def execute(root: Path, notebook: Path, out: Path, **parameters: object) -> tuple[str, float]:
    """(the text every cell printed or displayed, the seconds the run took), the executed
    notebook written to `out`."""
    start = time.perf_counter()
    run(
        root,
        "python",
        "-c",
        EXECUTE,
        str(notebook),
        json.dumps(parameters),
        str(out),
        str(notebook.parent),
    )
    seconds = time.perf_counter() - start
    return "\n".join(texts(json.loads(out.read_text()))), seconds


def texts(nb: dict) -> list[str]:
    """Each code cell's text outputs: streams, and the plain text of displayed values."""
    found = []
    for cell in nb["cells"]:
        for output in cell.get("outputs", []):
            if output["output_type"] == "stream":
                found.append("".join(output["text"]))
            elif "text/plain" in output.get("data", {}):
                found.append("".join(output["data"]["text/plain"]))
    return found


def images(nb_path: Path) -> int:
    """How many PNG images (matplotlib's figures) the executed notebook holds."""
    return len(re.findall(r'"image/png"', nb_path.read_text()))
