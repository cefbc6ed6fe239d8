"""params.yaml -> a typed, validated config. Unknown keys and bad values fail loudly."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from . import paths
from .errors import ConfigError

Task = Literal["classification", "regression"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DataParams(_Strict):
    source: str
    target: str
    id_column: str | None = None
    time: str | None = None
    groups: list[str] = []
    numeric: list[str] | None = None
    categorical: list[str] | None = None
    drop: list[str] = []


class CleanParams(_Strict):
    drop_duplicates: bool = True
    max_missing_fraction: float = Field(0.5, ge=0.0, le=1.0)
    valid_ranges: dict[str, tuple[float | None, float | None]] = {}
    exclude: dict[str, list[Any]] = {}


class AnnotateParams(_Strict):
    relabel_file: str


class AugmentParams(_Strict):
    enabled: bool = False
    copies: int = Field(1, ge=1, le=20)
    noise_scale: float = Field(0.05, ge=0.0)


class PreprocessParams(_Strict):
    test_size: float = Field(0.2, gt=0.0, lt=1.0)
    impute_numeric: Literal["mean", "median"] = "median"
    impute_categorical: Literal["most_frequent", "constant"] = "most_frequent"
    scale: Literal["standard", "robust", "none"] = "standard"
    ratios: list[tuple[str, str]] = []
    augment: AugmentParams = AugmentParams()


class SelectParams(_Strict):
    cv_folds: int = Field(5, ge=2, le=20)
    candidates: dict[str, dict[str, Any]]

    @field_validator("candidates")
    @classmethod
    def _not_empty(cls, value: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        if not value:
            raise ValueError("needs at least one candidate model")
        return value


class TrainParams(_Strict):
    use_selected: bool = False


class ServeParams(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    stage: str = "prod"
    max_rows: int = Field(1000, ge=1)
    api_key_env: str = "MODEL_API_KEY"
    prediction_log: str = "logs/predictions.jsonl"
    log_max_bytes: int = Field(10_000_000, ge=1024)
    log_backups: int = Field(5, ge=0)


class MonitorParams(_Strict):
    psi_threshold: float = Field(0.2, gt=0.0)
    ks_alpha: float = Field(0.01, ge=0.0, le=1.0)
    bins: int = Field(10, ge=2, le=100)
    min_rows: int = Field(30, ge=1)


class Params(_Strict):
    task: Task
    metric: str
    seed: int
    data: DataParams
    model: dict[str, Any]
    clean: CleanParams
    annotate: AnnotateParams
    preprocess: PreprocessParams
    select: SelectParams
    train: TrainParams
    serve: ServeParams = ServeParams()
    monitor: MonitorParams = MonitorParams()


def _missing_keys(node: Any, prefix: str = "") -> list[str]:
    """Keys still set to Hydra's '???' (mandatory, no value given)."""
    if isinstance(node, dict):
        return [m for k, v in node.items() for m in _missing_keys(v, f"{prefix}{k}.")]
    return [prefix.rstrip(".")] if node == "???" else []


def parse(raw: dict[str, Any], source: str = "params.yaml") -> Params:
    missing = _missing_keys(raw)
    if missing:
        raise ConfigError(
            f"{source}: {', '.join(missing)} must be set (still '???'): "
            f"e.g. `dvc exp run -S {missing[0]}=...`"
        )
    try:
        return Params.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ConfigError(
            f"{source}: {where}: {first['msg']} (got {first.get('input')!r}); "
            "fix it in conf/ and rerun with `dvc exp run`"
        ) from None


def load(path: Path = paths.PARAMS) -> Params:
    if not Path(path).exists():
        raise ConfigError(
            f"{path} not found: run `python -m {__package__} params` to compose it from conf/"
        )
    with open(path, encoding="utf-8") as handle:
        return parse(yaml.safe_load(handle) or {}, str(path))
