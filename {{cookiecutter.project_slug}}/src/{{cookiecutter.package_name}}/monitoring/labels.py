"""Labels that arrive later: id,label pairs appended to serve.feedback_log, one JSON line
each ({"id", "label", "time"}), and joined to the prediction log's rows by id when read.

The prediction log itself is never rewritten: a label is a line of its own, so nothing
logged is lost and a wrong label is corrected by sending it again (a repeated id takes
its last label, in the file's order). A label sent here wins over one the request
carried (the log's own `label`): it is the later word.

Writers (the `feedback` command, each server worker's POST /feedback) append whole
batches under an exclusive lock on `<file>.lock`, so two writers' lines never
interleave; a write that fails part way is cut back to the file's last whole line.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from ..serving import prediction_log


def append(path: Path, pairs: list[tuple[str, object]], time: str) -> None:
    """Append (id, label) pairs, received at `time` (ISO 8601, UTC), as one write. The
    writing lives beside the prediction log's (serving/), where the servers reach it."""
    prediction_log.append_labels(path, pairs, time)


def latest(path: Path) -> dict[str, dict]:
    """Each id's last label and when it arrived: {id: {"label", "time"}}; none without a
    file. A line that is no whole label (torn by a crash) is skipped."""
    path = Path(path)
    if not path.exists():
        return {}
    found: dict[str, dict] = {}
    for line in path.read_bytes().splitlines():
        entry = prediction_log.label_entry(line)
        if entry is not None:
            found[entry["id"]] = {"label": entry["label"], "time": entry.get("time")}
    return found


def joined(records: list[dict], labels: dict[str, dict]) -> list[dict]:
    """The records, each whose id has a later label carrying it as `label` with its
    arrival as `label_time` (copies; the others as they are)."""
    out = []
    for record in records:
        given = labels.get(prediction_log.row_id(record))
        if given is not None:
            record = {**record, "label": given["label"], "label_time": given["time"]}
        out.append(record)
    return out


def logged_ids(records: Iterable[dict]) -> set[str]:
    """The ids of logged records (prediction_log.row_id: an old record without one gets
    the id it would have)."""
    return {prediction_log.row_id(r) for r in records}
