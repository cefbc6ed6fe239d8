"""params.yaml -> a typed, validated config. Unknown keys and bad values fail loudly.

Values live in conf/ (composed into params.yaml) and service.yaml, and only there: this
module says what is valid, never what a setting is when left out. So no field has a
default, a key missing from the config is an error naming it, and a test
(tests/core/test_params.py) fails when a default appears. The exceptions are keys that the
config leaves out on purpose, each defaulting to None, "not given": FetchParams' `table`
and `query` (an entry of data.fetch names one, and only for a database), and the business
settings of the other task (conf/config.yaml writes only the task's; Params checks those
are set). Code and tests that need a settings object take it from the composed config.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
#% if cookiecutter.remote_sources == "yes"
from pathlib import Path, PurePosixPath
from typing import Any, Literal, Self
from urllib.parse import urlsplit

#% else
from pathlib import Path
from typing import Any, Literal, Self

#% endif
import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from . import model_catalog, paths, scorers
from .errors import ConfigError

Task = Literal["classification", "regression"]
# The project's package (core's parent): what `python -m` runs.
PACKAGE = __package__.rpartition(".")[0]
# `model: {name: auto}` (conf/model/auto.yaml): train the model select ranks first, with
# its select.candidates hyperparameters, instead of a model named here.
AUTO = "auto"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


#% if cookiecutter.remote_sources == "yes"
# SQLAlchemy dialects a fetch URL may name (`dialect+driver://`); any other scheme is a file
# URL read through fsspec (http, https, s3, gs, azure, file, memory, ...).
DATABASE_DIALECTS = frozenset(
    {"sqlite", "postgresql", "postgres", "mysql", "mariadb", "mssql", "oracle", "duckdb"}
)


def is_database_url(url: str) -> bool:
    return url.split("://", 1)[0].split("+", 1)[0].lower() in DATABASE_DIALECTS


class FetchParams(_Strict):
    """One remote source: a file URL, or a database URL with a table or a query."""

    url: str
    table: str | None = None
    query: str | None = None

    @model_validator(mode="after")
    def _coherent(self) -> FetchParams:
        if "://" not in self.url:
            raise ValueError(
                f"url {self.url!r} is not a URL: a local file or folder goes in data.source"
            )
        try:
            password = urlsplit(self.url).password
        except ValueError:
            password = None
        if password and not password.startswith("$"):
            # params.yaml is committed: a secret written here would end up in git.
            raise ValueError(
                "url holds a password: write `$ENV_VAR` in its place and export ENV_VAR"
            )
        if is_database_url(self.url):
            if (self.table is None) == (self.query is None):
                raise ValueError(f"database url {self.url!r} needs exactly one of table or query")
        elif self.table is not None or self.query is not None:
            raise ValueError(f"url {self.url!r} is a file: table and query are for databases")
        return self


#% endif
class DataParams(_Strict):
    source: str
    target: str
    id_column: str | None
    time: str | None
    groups: list[str]
    numeric: list[str] | None
    categorical: list[str] | None
    # Values that mean "missing" besides an empty cell or a null (tables/batches.py).
    missing_values: list[str]
#% if cookiecutter.remote_sources == "yes"
    drop: list[str]
    # name -> remote source; the `fetch` stage snapshots each to paths.FETCHED/<name>.parquet.
    fetch: dict[str, FetchParams]

    @model_validator(mode="after")
    def _source_reads_the_snapshots(self) -> DataParams:
        bad = [name for name in self.fetch if not paths.FILE_STEM.match(name)]
        if bad:
            raise ValueError(
                f"fetch name {bad[0]!r} is not a file name: use letters, digits, '.', '_', '-'"
            )
        if self.fetch:
            folder = PurePosixPath(paths.FETCHED.as_posix())
            allowed = {folder} | {folder / f"{name}.parquet" for name in self.fetch}
            if PurePosixPath(self.source) not in allowed:
                raise ValueError(
                    f"source {self.source!r} does not read what data.fetch snapshots: set it to "
                    f"{folder} (every snapshot) or {folder}/<name>.parquet"
                )
        return self

#% else
    drop: list[str]

#% endif
    @field_validator("missing_values", mode="before")
    @classmethod
    def _numbers_as_text(cls, values: object) -> object:
        """YAML reads `[-999]` as a number; the rule compares a value as a file writes it."""
        if not isinstance(values, list):
            return values
        return [
            str(v) if isinstance(v, int | float) and not isinstance(v, bool) else v for v in values
        ]


class CleanParams(_Strict):
    drop_duplicates: bool
    max_missing_fraction: float = Field(ge=0.0, le=1.0)
    valid_ranges: dict[str, tuple[float | None, float | None]]
    exclude: dict[str, list[Any]]


class PseudoLabelParams(_Strict):
    enabled: bool
    min_confidence: float = Field(gt=0.0, le=1.0)


class AnnotateParams(_Strict):
    relabel_file: str
    issue_threshold: float = Field(gt=0.0, le=1.0)
    cv_folds: int = Field(ge=2, le=20)
    judge_max_rows: int = Field(ge=100)
    pseudo_label: PseudoLabelParams


class AugmentParams(_Strict):
    enabled: bool
    copies: int = Field(ge=1, le=20)
    noise_scale: float = Field(ge=0.0)


class EncodingParams(_Strict):
    onehot_max_categories: int = Field(ge=1)
    target_cv: int = Field(ge=2, le=20)


class PreprocessParams(_Strict):
    test_size: float = Field(gt=0.0, lt=1.0)
    impute_numeric: Literal["mean", "median"]
    impute_categorical: Literal["most_frequent", "constant"]
    scale: Literal["standard", "robust", "none"]
    encoding: EncodingParams
    ratios: list[tuple[str, str]]
    augment: AugmentParams
    # The transformer is fitted on a seeded, stratified sample of this many training rows
    # (all of them when fewer): the same rows under either engine (docs/dask-engine.md).
    fit_max_rows: int = Field(ge=100)


class SelectParams(_Strict):
    cv_folds: int = Field(ge=2, le=20)
    min_rows: int = Field(ge=100)
    max_rows: int = Field(ge=100)
    factor: int = Field(ge=2)
    # Reference seconds (modeling/fit_cost.py) the cross-validations may take; null: no
    # limit but the rows.
    time_budget: float | None = Field(gt=0)
    candidates: dict[str, dict[str, Any]]

    @model_validator(mode="after")
    def _rungs_grow(self) -> SelectParams:
        if self.max_rows < self.min_rows:
            raise ValueError(
                f"max_rows ({self.max_rows}) is below min_rows ({self.min_rows}): "
                "the largest rung cannot be smaller than the first"
            )
        return self

    @field_validator("candidates")
    @classmethod
    def _not_empty(cls, value: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        if not value:
            raise ValueError("needs at least one candidate model")
        auto = [key for key, config in value.items() if config.get("name") == AUTO]
        if auto:
            raise ValueError(
                f"{auto[0]} is {AUTO}, which is not a model but the choice of select's "
                f"winner: make each candidate a conf/model/ file of a model"
            )
        return value


class TrainParams(_Strict):
    # None: fit every training row; n: a seeded sample of n rows when there are more.
    max_rows: int | None = Field(ge=100)


class EvaluateParams(_Strict):
    recent_fraction: float = Field(gt=0.0, le=1.0)
    min_group_size: int = Field(ge=1)
    min_class_support: int = Field(ge=1)
    max_group_gap: float | None = Field(ge=0.0)
    on_gap_exceeded: Literal["warn", "fail"]
    importance_rows: int = Field(ge=1)
    importance_repeats: int = Field(ge=1)


class BusinessParams(_Strict):
    """Each task's settings; the other task's are left out (None), see TASK_BUSINESS."""

    # YAML reads a class named 0 as a number: keys are matched as text (see business.py).
    value_matrix: dict[str | int, dict[str | int, float]] | None = None
    correct_value: float | None = None
    wrong_value: float | None = None
    cost_per_unit_error: float | None = Field(None, ge=0.0)


# The business settings each task's business_value reads (business.py).
TASK_BUSINESS = {
    "classification": ("value_matrix", "correct_value", "wrong_value"),
    "regression": ("cost_per_unit_error",),
}


#% if cookiecutter.serving == "yes"
class ServeParams(_Strict):
    host: str
    port: int = Field(ge=1, le=65535)
    stage: str
    runtime: Literal["auto", "onnx", "skops"]
    workers: int = Field(ge=1)
    max_rows: int = Field(ge=1)
    # None: serving.request.body_limit sizes it from max_rows and the model's features.
    max_body_bytes: int | None = Field(ge=1024)
    api_key_env: str
    prediction_log: str
    log_max_bytes: int = Field(ge=1024)
    log_backups: int = Field(ge=0)
    log_flush_seconds: float = Field(gt=0.0)
    log_queue_rows: int = Field(ge=1)
    # The labels that arrive later (`feedback`, POST /feedback): id,label lines appended
    # beside the prediction log, joined to its rows when read (monitoring/labels.py).
    feedback_log: str
    # A server of a stage checks its GTO tags this often and swaps in the version now
    # assigned, between requests; null: it keeps the version it started with.
    reload_seconds: float | None = Field(gt=0.0)
    # A second model (an experiment's name or a git revision) scoring a share of the
    # requests off the response path; its answers go to shadow_log, never to the caller.
    shadow: str | None
    shadow_share: float = Field(ge=0.0, le=1.0)
    shadow_log: str


class MonitorParams(_Strict):
    psi_threshold: float = Field(gt=0.0)
    ks_alpha: float = Field(ge=0.0, le=1.0)
    bins: int = Field(ge=2, le=100)
    min_rows: int = Field(ge=1)


class _KOfN(_Strict):
    """k-of-n: a section acts (alert: rolls back, loop: retrains) when `breaches` of the
    last `windows` windows breached, so one noisy window never acts."""

    windows: int = Field(ge=1)
    breaches: int = Field(ge=1)

    @model_validator(mode="after")
    def _k_of_n(self) -> _KOfN:
        if self.breaches > self.windows:
            raise ValueError(
                f"breaches ({self.breaches}) is more than windows ({self.windows}): "
                "no run of windows could ever act"
            )
        return self


class AlertParams(_KOfN):
    """service.yaml's alert: when `monitor --act` (and `loop`) roll prod back to the last
    version that held (monitoring/alerts.py). Judged on windows of min_labelled_rows
    labelled rows each, of the version in prod, in the order they were predicted."""

    # The live headline metric (params.yaml metric; scikit-learn scorers: greater is
    # better) must stay at or above this.
    min_metric: float
    # Per data.groups column, the live gap (balanced accuracy; RMSE for regression)
    # between its best and worst group may be at most this.
    max_group_gap: float = Field(ge=0.0)
    # Prediction bias: predicted against observed class shares (regression: mean
    # prediction against mean label, over the label's standard deviation), per slice.
    max_bias: float = Field(ge=0.0)
    # A window holds this many labelled rows; fewer are no window and never act.
    min_labelled_rows: int = Field(ge=1)


class GateParams(_Strict):
    """service.yaml's gate: the policy `decide` judges a challenger by (decision/). Each
    change is the challenger's value minus the champion's, in the direction in which the
    metric is better (scikit-learn scorers: greater is better)."""

    # Headline metric: the lower end of the paired interval of the change must reach this;
    # negative allows a loss of up to that much.
    min_improvement: float
    # business_value: the same rule (negative: the margin it may fall by; positive: a gain
    # it must show).
    min_business_change: float
    # Per data.groups column: the challenger's gap may exceed the champion's by this much.
    max_gap_increase: float = Field(ge=0.0)
    # Classification: no class's recall or F1 may drop by more than this.
    max_class_drop: float = Field(ge=0.0)
    # The recent slice (data.time): the headline metric there may drop by at most this.
    max_recent_drop: float = Field(ge=0.0)
    # Fewer rows than this for a gate (test rows, a group, a class, the recent slice): HOLD.
    min_rows: int = Field(ge=1)
    bootstrap_samples: int = Field(ge=100)
    confidence: float = Field(gt=0.5, lt=1.0)
    seed: int
    # true: a PROMOTE puts the challenger in staging; only a version in staging goes to prod.
    require_staging: bool


class LoopParams(_KOfN):
    """service.yaml's loop: when `loop` retrains (decision/loop.py)."""

    # A window of the prediction log counts only with at least this many rows.
    min_rows: int = Field(ge=1)
    # A window breaches on drift when at least this many features drift (monitor's rules).
    min_drifted_features: int = Field(ge=1)
    # No retrain sooner than this after the last one.
    cooldown_hours: float = Field(ge=0.0)
    # The schedule: retrain when the last retrain is older than this; null: never for age.
    every_days: float | None = Field(gt=0.0)
    # A window also breaches when the live metric of its labelled rows is below this;
    # null: no floor.
    live_metric_floor: float | None


#% endif
# A scheduler address as distributed's Client takes it: an optional network transport,
# a host name or IP (IPv6 in brackets) and a port.
SCHEDULER_ADDRESS = re.compile(r"((tcp|tls|ws|wss|ucx)://)?(\[[0-9A-Fa-f:.]+\]|[\w.-]+):\d{1,5}")


class ComputeParams(_Strict):
    # -1: every core; n > 0: n cores. Reruns at one setting are byte-identical; histogram
    # gradient boosting's sums follow the thread count, so set a number, not -1, when
    # machines with different core counts must give the same model file.
    n_jobs: int
    # local: each stage in this process. dask: the data stages on a Dask cluster, a task
    # per partition, their outputs folders of Parquet parts equal to the local engine's
    # files; select's cross-validation folds on the cluster's workers (docs/dask-engine.md).
    engine: Literal["local", "dask"]
    # The dask engine's cluster: a scheduler address (tcp://host:8786), or null for a
    # LocalCluster of n_jobs worker processes on this machine, started for the stage.
    scheduler: str | None

    @field_validator("n_jobs")
    @classmethod
    def _not_zero(cls, value: int) -> int:
        if value == 0 or value < -1:
            raise ValueError("n_jobs is -1 (every core) or a number of cores >= 1")
        return value

    @field_validator("scheduler")
    @classmethod
    def _an_address(cls, value: str | None) -> str | None:
        # Checked at load: a typo fails before any stage runs, not when the first dask
        # stage tries to connect.
        if value is not None and not SCHEDULER_ADDRESS.fullmatch(value):
            raise ValueError(
                "scheduler is a Dask scheduler address, [tcp|tls|ws|wss|ucx://]host:port "
                "(e.g. tcp://10.0.0.5:8786), or null for a LocalCluster on this machine"
            )
        return value

    @property
    def cores(self) -> int:
        return (os.cpu_count() or 1) if self.n_jobs == -1 else self.n_jobs


class Params(_Strict):
    task: Task
    metric: str
    seed: int
    compute: ComputeParams
    data: DataParams
    model: dict[str, Any]
    clean: CleanParams
    annotate: AnnotateParams
    preprocess: PreprocessParams
    select: SelectParams
    train: TrainParams
    evaluate: EvaluateParams
    business: BusinessParams

    @field_validator("model")
    @classmethod
    def _auto_takes_no_hyperparameters(cls, value: dict[str, Any]) -> dict[str, Any]:
        if "name" not in value:
            raise ValueError(f"needs a name: {AUTO} or a conf/model/ file's (-S model=<name>)")
        extra = sorted(set(value) - {"name"})
        if value["name"] == AUTO and extra:
            # auto trains select.candidates.<winner>; a hyperparameter here would be ignored.
            raise ValueError(
                f"{AUTO} trains select's winner with its select.candidates settings, so "
                f"{', '.join(extra)} would be ignored: name the model in the same command "
                f"(-S model=<name> -S model.{extra[0]}=...) or set "
                f"select.candidates.<name>.{extra[0]}"
            )
        return value

    @model_validator(mode="after")
    def _business_of_the_task(self) -> Params:
        own = TASK_BUSINESS[self.task]
        given = {
            key for key in BusinessParams.model_fields if getattr(self.business, key) is not None
        }
        missing, other = sorted(set(own) - given), sorted(given - set(own))
        if missing or other:
            problem = (
                f"{', '.join(missing)} must be set"
                if missing
                else f"{', '.join(other)} belongs to the other task"
            )
            raise ValueError(
                f"business: {problem}: a {self.task} business_value reads {', '.join(own)}"
            )
        return self


@dataclasses.dataclass(frozen=True)
class StageSettings:
    """Base of a stage's settings: a frozen dataclass whose fields are named after the
    config keys the stage's functions read (a section, or task, metric, seed), so they
    pass as one keyword-only object, never as a tuple whose order is the interface."""

    @classmethod
    def of(cls, source: Params | StageSettings) -> Self:
        """The fields read from `source`, the config or a wider stage's settings: each one
        the attribute of its name, so only the keys the fields name are read."""
        return cls(**{f.name: getattr(source, f.name) for f in dataclasses.fields(cls)})


#% if cookiecutter.serving == "yes"
class ServiceParams(_Strict):
    """service.yaml: the settings of `serve` and `monitor`, which run beside the pipeline,
    not in it. They live outside conf/ and params.yaml because `dvc exp show` makes a
    column of every params.yaml key (stages' `params:` lists narrow only `--param-deps`),
    and settings no stage reads would be columns that never tell experiments apart."""

    serve: ServeParams
    monitor: MonitorParams
    alert: AlertParams
    gate: GateParams
    loop: LoopParams


#% endif
def _missing_keys(node: Any, prefix: str = "") -> list[str]:
    """Keys still set to Hydra's '???' (mandatory, no value given)."""
    if isinstance(node, dict):
        return [m for k, v in node.items() for m in _missing_keys(v, f"{prefix}{k}.")]
    return [prefix.rstrip(".")] if node == "???" else []


def _settings(loc: tuple) -> list[str]:
    """The keys the section at `loc` accepts; none when it is free-form (model{% if cookiecutter.remote_sources == "yes" %}, fetch{% endif %})."""
    model: type[BaseModel] = Params
    for key in loc:
        field = model.model_fields.get(str(key))
        if field is None or not (
            isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel)
        ):
            return []
        model = field.annotation
    return sorted(model.model_fields)


def model_problem(
    task: Task, where: str, config: dict[str, Any], models_dir: Path | None = None
) -> str | None:
    """Why the conf/model/ mapping at `where` (model, select.candidates.<name>) cannot
    build its estimator, or None. Its shape always; with `models_dir` (conf/ being
    composed) also its file's name and its class's own signature (model_catalog), so a
    misspelt hyperparameter is refused before DVC writes params.yaml. Values are the
    estimator's to check (models.build)."""
    problem = model_catalog.shape_problem(where, config)
    if problem or models_dir is None:
        return problem
    if where == "model" and not (Path(models_dir) / f"{config.get('name')}.yaml").exists():
        return (
            f"model.name {config.get('name')!r} is no file of {models_dir}: a model file's "
            "name is its stem (conf/model/<name>.yaml holds `name: <name>`)"
        )
    return model_catalog.class_problem(task, where, config, cached=True)


def choice_problem(params: Params, models_dir: Path | None = None) -> str | None:
    """Why the metric or a model of a well-formed config cannot run, or None."""
    problem = scorers.task_problem(params.task, params.metric)
    if problem:
        return problem
    # auto names no model (its field check refuses keys beside it): select's candidates do.
    configs = {} if params.model.get("name") == AUTO else {"model": params.model}
    configs.update({f"select.candidates.{n}": c for n, c in params.select.candidates.items()})
    problems = (model_problem(params.task, w, c, models_dir) for w, c in configs.items())
    return next(filter(None, problems), None)


def parse(
    raw: dict[str, Any], source: str = "params.yaml", models_dir: Path | None = None
) -> Params:
    """raw checked: every key and value, and each model's shape; with `models_dir` (the
    conf/model/ folder, given while conf/ is composed) each model's class too."""
    missing = _missing_keys(raw)
    if missing:
        raise ConfigError(
            f"{source}: {', '.join(missing)} must be set (still '???'): "
            f"e.g. `dvc exp run -S {missing[0]}=...`"
        )
    parsed = _validated(raw, source)
    problem = choice_problem(parsed, models_dir)
    if problem:
        raise ConfigError(f"{source}: {problem}; fix it in conf/ or the -S override")
    return parsed


def _validated(raw: dict[str, Any], source: str) -> Params:
    """raw as Params; the first thing pydantic refuses as one ConfigError line."""
    try:
        return Params.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        allowed = _settings(first["loc"][:-1])
        if first["type"] == "extra_forbidden" and allowed:
            section = ".".join(map(str, first["loc"][:-1])) or "the top level"
            close = difflib.get_close_matches(str(first["loc"][-1]), allowed, n=1)
            hint = f"did you mean {close[0]}? " if close else ""
            raise ConfigError(
                f"{source}: {where} is not a setting: {hint}{section} has "
                f"{', '.join(allowed)}; fix it in conf/ or the -S override"
            ) from None
        value = first.get("input")
        # Not a whole section: the message names what is wrong, and the section could hold
        # a URL with credentials.
        got = "" if isinstance(value, dict) and value else f" (got {value!r})"
        where = f"{where}: " if where else ""  # a check of the whole config names its keys
        raise ConfigError(
            f"{source}: {where}{first['msg']}{got}; fix it in conf/ and rerun with `dvc exp run`"
        ) from None


#% if cookiecutter.serving == "yes"
def load_service(path: Path = paths.SERVICE) -> ServiceParams:
    """service.yaml checked: it holds every setting of serve and monitor."""
    if not Path(path).exists():
        raise ConfigError(
            f"{path} not found: serve and monitor read their settings from it; restore it "
            f"from git (`git checkout -- {path}`)"
        )
    with open(path, encoding="utf-8") as handle:
        raw = yaml.safe_load(handle) or {}
    try:
        return ServiceParams.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"{path}: {where}: {first['msg']}; fix it in {path}") from None


#% endif
def load(path: Path = paths.PARAMS) -> Params:
    if not Path(path).exists():
        raise ConfigError(
            f"{path} not found: run `python -m {PACKAGE} params` to compose it from conf/"
        )
    with open(path, encoding="utf-8") as handle:
        return parse(yaml.safe_load(handle) or {}, str(path))
