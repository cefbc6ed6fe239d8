"""params: params.yaml is conf/ composed; every conf option parses; bad config fails by name."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from {{ cookiecutter.package_name }}.__main__ import COMMANDS
from {{ cookiecutter.package_name }}.core import config_sync, params, paths
from {{ cookiecutter.package_name }}.core.errors import ConfigError
from {{ cookiecutter.package_name }}.modeling import models
from {{ cookiecutter.package_name }}.stages import STAGES

from conftest import SHIPPED_BUSINESS

CONF = Path(__file__).resolve().parents[2] / "conf"
PACKAGE = "{{ cookiecutter.package_name }}"


def options(group: str) -> list[Path]:
    return sorted((CONF / group).glob("*.yaml"))


def composed(overrides: list[str] | None = None) -> params.Params:
    return params.parse(yaml.safe_load(config_sync.compose(CONF, overrides)))


def test_params_yaml_is_conf_composed(project):
    expected = config_sync.compose(project / "conf")
    assert (project / "params.yaml").read_text(encoding="utf-8") == expected, (
        f"params.yaml is stale: run `python -m {PACKAGE} params`"
    )


def test_params_yaml_is_usable(project):
    loaded = params.load(project / "params.yaml")
    models.check_metric(loaded.task, loaded.metric)
    assert loaded.model == {"name": params.AUTO}, "the default trains select's winner"
    for config in loaded.select.candidates.values():
        models.build(loaded.task, config, loaded.seed)


@pytest.mark.parametrize(
    "path", [p for p in options("model") if p.stem != params.AUTO], ids=lambda p: p.stem
)
def test_every_model_option_composes(task, path):
    loaded = composed([f"model={path.stem}"])
    assert loaded.model["name"] == path.stem
    models.build(task, loaded.model, loaded.seed)


def test_auto_stands_alone(params_raw):
    """model=auto trains select.candidates.<winner>: a hyperparameter beside it would be
    silently ignored, and auto as a candidate is no model."""
    assert composed(["model=auto"]).model == {"name": params.AUTO}
    refused = (
        r"^the composed config: model: Value error, auto trains select's winner .*, so C "
        r"would be ignored: name the model in the same command \(-S model=<name> -S model.C="
    )
    with pytest.raises(ConfigError, match=refused):
        composed(["+model.C=0.5"])
    raw = copy.deepcopy(params_raw)
    first = next(iter(raw["select"]["candidates"]))
    raw["select"]["candidates"][first] = {"name": params.AUTO}
    with pytest.raises(ConfigError, match=f"select.candidates: Value error, {first} is auto"):
        params.parse(raw)
    del raw["model"]["name"]
    with pytest.raises(ConfigError, match="model: Value error, needs a name"):
        params.parse(raw)


@pytest.mark.parametrize("path", options("data"), ids=lambda p: p.stem)
def test_every_data_option_composes_or_names_what_to_fill_in(path):
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    unset = [f"data.{key}" for key, value in raw.items() if value == "???"]
    if not unset:
        assert composed([f"data={path.stem}"]).data.source == raw["source"]
        return
    with pytest.raises(ConfigError, match="still '\\?\\?\\?'") as failure:
        composed([f"data={path.stem}"])
    for key in unset:
        assert key in str(failure.value)


@pytest.mark.parametrize("path", options("experiment"), ids=lambda p: p.stem)
def test_every_experiment_composes(task, path):
    loaded = composed([f"+experiment={path.stem}"])
    assert loaded != composed(), "an experiment changes something"
    first = {"winner": next(iter(loaded.select.candidates))}
    models.build(task, models.chosen_config(loaded, first), loaded.seed)


@pytest.mark.parametrize("where", [(), ("clean",), ("preprocess", "augment")])
def test_an_unknown_key_is_named(params_raw, where):
    raw = copy.deepcopy(params_raw)
    node = raw
    for key in where:
        node = node[key]
    node["surprise"] = 1
    name = ".".join([*where, "surprise"])
    section = ".".join(where) or "the top level"
    with pytest.raises(ConfigError, match=f"params.yaml: {name} is not a setting: {section} has "):
        params.parse(raw)


def test_unset_values_are_named(params_raw):
    raw = copy.deepcopy(params_raw)
    raw["metric"] = "???"
    raw["data"]["target"] = "???"
    with pytest.raises(
        ConfigError, match="data.target, metric must be set \\(still '\\?\\?\\?'\\)"
    ):
        params.parse(raw, "conf")


@pytest.mark.parametrize(
    ("key", "value"),
    [
        (("preprocess", "test_size"), 1.5),
        (("preprocess", "scale"), "minmax"),
        (("select", "cv_folds"), 1),
        (("select", "candidates"), {}),
        (("task",), "clustering"),
    ],
)
def test_a_bad_value_is_named(params_raw, key, value):
    raw = copy.deepcopy(params_raw)
    node = raw
    for part in key[:-1]:
        node = node[part]
    node[key[-1]] = value
    with pytest.raises(ConfigError, match=f"params.yaml: {'.'.join(key)}: .*got"):
        params.parse(raw)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            ["model=random_forest", "+model.n_estimator=50"],
            r"model.n_estimator is not a parameter of RandomForest\w+: did you mean "
            r"n_estimators\? it takes bootstrap, ccp_alpha, ",
        ),
        (
            ["model=random_forest", "model.n_estimators=50", "+model.max_dept=3"],
            r"model.max_dept is not a parameter of RandomForest\w+: did you mean max_depth\?",
        ),
        (
            ["+select.candidates.hist_gradient_boosting.learnig_rate=0.2"],
            r"select.candidates.hist_gradient_boosting.learnig_rate is not a parameter of "
            r"HistGradientBoosting\w+: did you mean learning_rate\?",
        ),
        (["model=random_forest", "+model.colour=1"], r"model.colour is not a parameter of \w+: it"),
        (
            ["model=random_forest", "+model.random_state=3"],
            r"model.random_state is not set here: the top-level seed sets it \(-S seed=...\)",
        ),
        (
            ["model=random_forest", "model.name=svm"],
            r"model.name 'svm' is no file of \S+conf/model: a model file's name is its stem",
        ),
        (
            ["model=random_forest", "model._target_=sklearn.ensemble.RandomForest"],
            r"model._target_ 'sklearn.ensemble.RandomForest': sklearn.ensemble has no class "
            r"RandomForest \(did you mean sklearn.ensemble.RandomForest\w+\?\); fix _target_ "
            r"in conf/model/random_forest.yaml",
        ),
        (
            ["model=random_forest", "model._target_=sklearn.cluster.KMeans"],
            r"model._target_ 'sklearn.cluster.KMeans' is not a \w+ estimator; fix _target_ in",
        ),
        (
            ["+select.candidates.random_forest._skops_trusted=[a.B]"],
            r"select.candidates.random_forest._skops_trusted is not a model file key: did you "
            r"mean _skops_trusted_\?",
        ),
    ],
)
def test_a_model_setting_its_estimator_lacks_is_refused_while_composing(overrides, message):
    """Checked against the class `_target_` names (its signature, its task) before DVC
    writes params.yaml, added with + or not, in `model` and in each select candidate."""
    with pytest.raises(ConfigError, match=f"^the composed config: {message}"):
        composed(overrides)


def test_a_metric_no_target_of_the_task_takes_is_refused_while_composing(task):
    other = {"classification": "r2", "regression": "accuracy"}[task]
    with pytest.raises(ConfigError, match=f"metric '{other}' is not a scikit-learn scorer for"):
        composed([f"metric={other}"])
    if task == "classification":
        with pytest.raises(ConfigError, match="'f1_samples' .* needs a multilabel target"):
            composed(["metric=f1_samples"])


def test_load_says_how_to_make_params_yaml(tmp_path):
    with pytest.raises(ConfigError, match=f"not found: run `python -m {PACKAGE} params`"):
        params.load(tmp_path / "params.yaml")


def test_dvc_yaml_matches_the_code(project, params_raw):
    stages = yaml.safe_load((project / "dvc.yaml").read_text(encoding="utf-8"))["stages"]
#% if cookiecutter.remote_sources == "yes"
    fetch = stages.pop("fetch")
    assert fetch["foreach"] == "${data.fetch}"
    key = "${key}"  # DVC's foreach variable
    assert fetch["do"]["cmd"] == f"PYTHONPATH=src python -m {PACKAGE} fetch {key}"
    # persist: a fetch that fails leaves the last snapshot as dvc.lock records it.
    assert fetch["do"]["outs"] == [{f"{paths.FETCHED}/{key}.parquet": {"persist": True}}]
    assert "fetch" in COMMANDS
#% endif
    built_in = tuple(name for name in stages if name in STAGES)
    assert built_in == STAGES, "dvc.yaml holds the stages of stages.STAGES, in that order"
    assert set(stages) <= set(COMMANDS), "every stage is a command"
    declared = set()
    for name, stage in stages.items():
        assert stage["cmd"] == f"PYTHONPATH=src python -m {PACKAGE} {name}"
        assert f"src/{PACKAGE}/stages/{name}.py" in stage["deps"]
        for key in stage.get("params", []):
            node = params_raw
            for part in key.split("."):
                assert part in node, (
                    f"dvc.yaml stage {name} names params key {key}, not in params.yaml"
                )
                node = node[part]
        for group in ("deps", "outs", "metrics"):
            for entry in stage.get(group, []):
                declared.add(next(iter(entry)) if isinstance(entry, dict) else entry)
    written = [
        value
        for name, value in vars(paths).items()
        if isinstance(value, Path)
        and name
        not in {"PARAMS", "SERVICE", "REPORTS", "EVALUATE_DIR", "RAW", "FETCHED", "MODEL_CONF"}
    ]
    assert {str(p) for p in written} <= declared
    assert f"{paths.EVALUATE_DIR}/metrics.json" in declared


#% if cookiecutter.remote_sources == "yes"
def fetching(params_raw: dict, source: str, **entries: dict) -> dict:
    raw = copy.deepcopy(params_raw)
    raw["data"].update(source=source, fetch=entries)
    return raw


#% endif
def test_every_params_yaml_key_is_read_by_a_stage(project, params_raw):
    """`dvc exp show` makes a column of every params.yaml key: each must be a setting that
    some stage lists (a key dvc.yaml interpolates counts), not one only serve reads."""
    text = (project / "dvc.yaml").read_text(encoding="utf-8")
    listed = {
        key.split(".")[0]
        for stage in yaml.safe_load(text)["stages"].values()
        for key in stage.get("params", [])
    }
    unlisted = [key for key in params_raw if key not in listed and "${" + key + "." not in text]
    assert not unlisted, f"params.yaml keys no stage lists: {unlisted}"
{% if cookiecutter.serving == "yes" %}

def test_service_yaml_holds_serve_and_monitor_settings(project, tmp_path):
    shipped = params.load_service(project / paths.SERVICE)
    assert shipped.serve.port == 8000 and shipped.monitor.bins == 10
    with pytest.raises(ConfigError, match="absent.yaml not found: serve and monitor read"):
        params.load_service(tmp_path / "absent.yaml")
    left_out = tmp_path / "left_out.yaml"
    left_out.write_text("serve:\n  port: 8001\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"left_out.yaml: serve.host: Field required"):
        params.load_service(left_out)
    bad = tmp_path / "service.yaml"
    shipped_text = (project / paths.SERVICE).read_text(encoding="utf-8")
    bad.write_text(shipped_text.replace("port: 8000", "port: 0"), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"service.yaml: serve.port: Input should be greater"):
        params.load_service(bad)
{% endif %}{% if cookiecutter.remote_sources == "yes" %}

def test_fetch_entries_parse(params_raw):
    raw = fetching(
        params_raw,
        "data/fetched",
        web={"url": "https://example.com/a.csv"},
        shop={"url": "sqlite:///data/shop.db", "query": "SELECT * FROM orders"},
        pg={"url": "postgresql+psycopg://me:$PGPW@db/shop", "table": "orders"},
    )
    parsed = params.parse(raw).data.fetch
    assert parsed["shop"].query == "SELECT * FROM orders" and parsed["pg"].table == "orders"
    one = fetching(params_raw, "data/fetched/web.parquet", web={"url": "s3://b/a.parquet"})
    assert params.parse(one).data.source == "data/fetched/web.parquet"


@pytest.mark.parametrize(
    ("source", "entry", "message"),
    [
        ("data/raw", {"url": "https://e.com/a.csv"}, "does not read what data.fetch snapshots"),
        ("data/fetched", {"url": "data/a.csv"}, "is not a URL: a local file"),
        ("data/fetched", {"url": "sqlite:///x.db"}, "needs exactly one of table or query"),
        ("data/fetched", {"url": "sqlite:///x.db", "table": "t", "query": "q"}, "exactly one"),
        ("data/fetched", {"url": "https://e.com/a.csv", "table": "t"}, "table and query are for"),
        # pragma: allowlist nextline secret (a made-up password the check must refuse)
        ("data/fetched", {"url": "postgresql://me:hunter2@db/x", "table": "t"}, "holds a password"),
    ],
)
def test_bad_fetch_entries_are_named(params_raw, source, entry, message):
    with pytest.raises(ConfigError, match=f"params.yaml: data.*{message}") as err:
        params.parse(fetching(params_raw, source, web=entry))
    assert "hunter2" not in str(err.value)


def test_a_fetch_name_must_be_a_file_name(params_raw):
    with pytest.raises(ConfigError, match="fetch name 'a/b' is not a file name"):
        params.parse(fetching(params_raw, "data/fetched", **{"a/b": {"url": "https://e/a.csv"}}))
{% endif %}

# Keys the config leaves out on purpose, None when absent (params.py's docstring says why).
LEFT_OUT = {
#% if cookiecutter.remote_sources == "yes"
    ("FetchParams", "table"),
    ("FetchParams", "query"),
#% endif
    *(("BusinessParams", key) for keys in params.TASK_BUSINESS.values() for key in keys),
}


def settings_models(model: type = params.Params, seen: set | None = None) -> set[type]:
    """Every settings model reachable from `model`, through fields, unions and containers."""
    from typing import get_args

    seen = set() if seen is None else seen
    seen.add(model)
    for field in model.model_fields.values():
        stack = [field.annotation]
        while stack:
            kind = stack.pop()
            if isinstance(kind, type) and issubclass(kind, params.BaseModel):
                if kind not in seen:
                    settings_models(kind, seen)
            else:
                stack.extend(get_args(kind))
    return seen


def test_params_py_holds_no_defaults():
    """Values live in conf/ and service.yaml only: a default here would be a second home."""
#% if cookiecutter.serving == "yes"
    models = settings_models() | settings_models(params.ServiceParams)
    assert params.ServeParams in models
#% else
    models = settings_models()
#% endif
#% if cookiecutter.remote_sources == "yes"
    assert params.FetchParams in models
#% endif
    assert params.BusinessParams in models
    defaults = {
        (model.__name__, name): field.default
        for model in models
        for name, field in model.model_fields.items()
        if not field.is_required()
    }
    assert set(defaults) == LEFT_OUT, "set the value in conf/ or service.yaml, not params.py"
    assert set(defaults.values()) == {None}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("drop", "business: {own} must be set: a {task} business_value reads"),
        ("other", "business: {other} belongs to the other task"),
    ],
)
def test_business_holds_exactly_the_settings_of_the_task(params_raw, task, change, message):
    raw = copy.deepcopy(params_raw)
    own = params.TASK_BUSINESS[task]
    other_task = next(t for t in params.TASK_BUSINESS if t != task)
    other = params.TASK_BUSINESS[other_task]
    if change == "drop":
        del raw["business"][own[0]]
    else:
        raw["business"][other[0]] = SHIPPED_BUSINESS[other_task][other[0]]
    expected = message.format(own=own[0], other=other[0], task=task)
    with pytest.raises(ConfigError, match=f"^params.yaml: Value error, {expected}"):
        params.parse(raw)


def test_the_business_settings_tests_switch_to_are_the_shipped_ones(params_raw, task):
    """make_params({"task": ...}) takes the other task's business settings from conftest:
    each task's bake checks its own against conf/."""
    assert params_raw["business"] == SHIPPED_BUSINESS[task]
