"""The prediction log: one JSON line per predicted row (inputs, output, model version),
in a size-bounded file rotated by the standard library (file, file.1, ... file.N)."""

from __future__ import annotations

import json
import logging
import logging.handlers
from pathlib import Path


class PredictionLog:
    def __init__(self, path: Path, max_bytes: int, backups: int) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # A logger of its own, not propagated: these lines are data, not diagnostics.
        self._logger = logging.getLogger(f"{__name__}.{self.path.resolve()}")
        self._logger.propagate = False
        self._logger.setLevel(logging.INFO)
        for handler in list(self._logger.handlers):
            self._logger.removeHandler(handler)
            handler.close()
        handler = logging.handlers.RotatingFileHandler(
            self.path, maxBytes=max_bytes, backupCount=backups, encoding="utf-8"
        )
        handler.setFormatter(logging.Formatter("%(message)s"))
        self._logger.addHandler(handler)

    def write(self, records: list[dict]) -> None:
        for record in records:
            self._logger.info(json.dumps(record, sort_keys=True, allow_nan=False))

    def close(self) -> None:
        for handler in list(self._logger.handlers):
            self._logger.removeHandler(handler)
            handler.close()


def log_files(path: Path) -> list[Path]:
    """The log and its rotated backups, oldest first."""
    path = Path(path)
    backups = sorted(
        (p for p in path.parent.glob(f"{path.name}.*") if p.suffix[1:].isdigit()),
        key=lambda p: int(p.suffix[1:]),
        reverse=True,
    )
    return backups + ([path] if path.exists() else [])


def read(path: Path) -> list[dict]:
    """Every record of the log and its backups, oldest first; a torn last line is skipped."""
    records = []
    for file in log_files(path):
        for line in file.read_text(encoding="utf-8").splitlines():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return records
