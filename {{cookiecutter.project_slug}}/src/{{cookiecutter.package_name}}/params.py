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


class PseudoLabelParams(_Strict):
    enabled: bool = False
    min_confidence: float = Field(0.95, gt=0.0, le=1.0)


class AnnotateParams(_Strict):
    relabel_file: str
    issue_threshold: float = Field(0.8, gt=0.0, le=1.0)
    cv_folds: int = Field(5, ge=2, le=20)
    pseudo_label: PseudoLabelParams = PseudoLabelParams()


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


class EvaluateParams(_Strict):
    recent_fraction: float = Field(0.25, gt=0.0, le=1.0)
    min_group_size: int = Field(10, ge=1)
    min_class_support: int = Field(10, ge=1)
    max_group_gap: float | None = Field(None, ge=0.0)
    on_gap_exceeded: Literal["warn", "fail"] = "warn"


class BusinessParams(_Strict):
    # YAML reads a class named 0 as a number: keys are matched as text (see business.py).
    value_matrix: dict[str | int, dict[str | int, float]] = {}
    correct_value: float = 1.0
    wrong_value: float = 0.0
    cost_per_unit_error: float = Field(1.0, ge=0.0)


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
    evaluate: EvaluateParams = EvaluateParams()
    business: BusinessParams = BusinessParams()


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
