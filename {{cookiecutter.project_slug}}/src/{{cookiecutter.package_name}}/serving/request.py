"""The request schema, built at startup from the served model's features (features.json,
recorded in models/model.json): one field per feature, each required, null = missing;
derived features (modeling/derivation.py) are no field: `with_derived` computes them
from the row's other features, as preprocess did.

Numbers must be JSON numbers (not strings, not booleans), finite (JSON's NaN and
Infinity tokens, and 1e999, are refused naming the field) and within `number_bound`;
categories are strings (or integers, which name the same category as their text, as in
training) of valid Unicode; a category is missing when null or one of the data's
missing_values (docs/data-sources.md: Missing values), any other text is a category. A
row may also carry the data's columns that are no feature (features.json's
`non_features`: the target, data.time, data.id_column, data.drop), as rows come in the
data: they are optional and ignored, except that the event time (data.time) is checked
and logged, and the target, when a row carries it, is logged as the row's `label`. Any
other field is refused, as are an empty
`instances` list and more than `max_rows` rows; `body_limit` sizes the largest body such
a request needs.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Annotated, Any

import pandas as pd
from fastapi.exceptions import RequestValidationError
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    Strict,
    StrictBool,
    StrictInt,
    StrictStr,
    WithJsonSchema,
    create_model,
)

from ..modeling import derivation
from ..tables import schema

# How far a number may be from zero, as a multiple of the feature's largest training
# magnitude (at least 1). Past it, a value is a units or encoding mistake, and a standard-
# scaled value could overflow float32 (scikit-learn's trees) or a linear model's float64
# sums; within it, every schema-valid row gets a finite answer.
REACH = 1e12


def number_bound(seen: dict) -> float:
    """The largest |value| a numeric feature accepts, from its training min and max."""
    return REACH * max(abs(seen.get("min") or 0.0), abs(seen.get("max") or 0.0), 1.0)


def _number(bound: float) -> Any:
    """A JSON number (strict: "3.5" is not one and true is neither; ints are) within
    ±bound, checked by pydantic-core itself: no Python call per value."""
    return Annotated[float, Strict(), Field(allow_inf_nan=False, ge=-bound, le=bound)]


# A string or an integer (not a boolean), checked by pydantic-core; `columns` turns the
# integers into text and refuses text that is not valid Unicode, a column at a time.
Category = StrictStr | StrictInt
# The event time as the data holds it, as the schema declares it: a year (a whole JSON
# number) or an RFC 3339 date or date-time. `event_times` checks it (only when given).
EventTime = Annotated[
    Any,
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "number", "minimum": 1000, "maximum": 9999, "multipleOf": 1},
                {"type": "string", "format": "date"},
                {"type": "string", "format": "date-time"},
                {"type": "null"},
            ]
        }
    ),
]


def non_features(features: dict) -> list[str]:
    """The data's columns that a row may carry and the model ignores (features.json);
    for a model exported before features.json recorded them, its target and time."""
    roles = features["roles"]
    return features.get("non_features", [c for c in (roles["target"], roles["time"]) if c])


def input_roles(features: dict) -> dict:
    """The roles of the columns a request carries: the features less the derived ones."""
    _, derived = derivation.recorded(features)
    return derivation.inputs(schema.roles_from_dict(features["roles"]), derived).to_dict()


def with_derived(columns: dict[str, list], features: dict) -> dict[str, list]:
    """A request's columns (`columns`) and its derived ones, in the model's feature order,
    each value typed as in training (schema.model_frame), None = missing."""
    pairs, derived = derivation.recorded(features)
    if not derived:
        return columns
    roles = schema.roles_from_dict(features["roles"])
    inputs = derivation.inputs(roles, derived)
    raw = schema.model_frame(pd.DataFrame(columns, columns=inputs.features), inputs)
    made = derivation.columns(raw, pairs)
    typed = schema.model_frame(raw.assign(**made), roles)
    values = {c: typed[c].astype(object).where(typed[c].notna(), None).tolist() for c in derived}
    return {c: columns[c] if c in columns else values[c] for c in roles.features}


def out_of_range(error: dict) -> str | None:
    """The one-line message for a number past its bound (pydantic's le/ge error)."""
    if error.get("type") not in ("less_than_equal", "greater_than_equal"):
        return None
    bound = abs(float(next(iter(error.get("ctx", {}).values()), 0.0)))
    return (
        f"beyond ±{bound:g} ({REACH:g} times the largest training value): check the number's units"
    )


# body_limit's budget per value beyond its text: a number's longest repr is 24 characters,
# the rest is room for a client's indentation and spacing.
VALUE_BYTES = 64
ENVELOPE_BYTES = 1024


def row_model(features: dict) -> type[BaseModel]:
    """A pydantic model of one row: numeric and categorical features but the derived ones,
    in training order."""
    roles = input_roles(features)
    fields: dict[str, Any] = {}
    for column in roles["numeric"]:
        seen = features["numeric"].get(column, {})
        number = _number(number_bound(seen))
        described = f"number; training range {seen.get('min')}..{seen.get('max')}"
        fields[column] = (number | None, Field(..., description=described))
    for column in roles["categorical"]:
        known = ", ".join(features["categorical"].get(column, []))
        fields[column] = (Category | None, Field(..., description=f"one of: {known}"))
    for column in non_features(features):
        if column == roles["time"]:
            said = "the event time (data.time), a year or a date: logged, not a feature"
            fields[column] = (EventTime, Field(None, description=said))
        elif column == roles["target"]:
            said = "the target, when known: logged as the row's label, not a feature"
            fields[column] = (Any, Field(None, description=said))
        else:
            said = "a column of the data that is no feature: accepted and ignored"
            fields[column] = (Any, Field(None, description=said))
    return create_model(
        "Instance",
        __config__=ConfigDict(extra="forbid", frozen=True),
        __doc__="A row as the data holds it: every feature (null = missing); the data's "
        "other columns optional and ignored; no other field.",
        **fields,
    )


def missing_values(features: dict) -> frozenset[str]:
    """The data's missing values besides null (data.missing_values, recorded in
    features.json; none for a model exported before it recorded them)."""
    return frozenset(features.get("missing_values", []))


def columns(instances: list[BaseModel], roles: dict, missing: frozenset[str]) -> dict[str, list]:
    """Validated rows as columns (feature -> one value per row, None = missing); an integer
    category becomes its text, the category it names in training (schema.category_label).
    A category is missing when null or in `missing` (missing_values), as in training: so
    "NA" is the category NA unless the data's rule lists it."""
    out = {c: [getattr(row, c) for row in instances] for c in roles["numeric"]}
    for column in roles["categorical"]:
        values = [getattr(row, column) for row in instances]
        values = [None if v is None else schema.category_label(v) for v in values]
        values = [None if v in missing else v for v in values]
        _require_unicode(values, column)
        out[column] = values
    return out


def event_times(instances: list[BaseModel], column: str | None) -> list[str | None] | None:
    """Each row's event time (the data.time column) as ISO 8601 text, read as ingest reads
    the column: a year is January 1st of it, a time without a zone is UTC (one with a zone
    keeps it: the log holds the time as given); None when no row gives one (then nothing
    is read per row but the column)."""
    if column is None:
        return None
    values = [getattr(row, column) for row in instances]
    if all(v is None for v in values):
        return None
    return [None if v is None else _iso_text(v, row, column) for row, v in enumerate(values)]


def _iso_text(value: Any, row: int, column: str) -> str:
    """One event time as ISO 8601 text; a 422 naming the field when it is none."""
    try:
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise TypeError(value)
        if not isinstance(value, str):
            if value % 1 or not 1000 <= value <= 9999:
                raise ValueError(value)
            return f"{int(value):04d}-01-01T00:00:00+00:00"
        when = dt.datetime.fromisoformat(value)
    except (TypeError, ValueError):
        raise RequestValidationError(
            [
                {
                    "type": "value_error",
                    "loc": ("body", "instances", row, column),
                    "msg": "Value error, not a year or a date: send a year (2024) or ISO 8601 "
                    "text (2024-05-31 or 2024-05-31T12:00:00Z)",
                }
            ]
        ) from None
    return (when if when.tzinfo else when.replace(tzinfo=dt.UTC)).isoformat()


def unknown_columns(errors: list[dict]) -> str | None:
    """One line naming every unknown column of the row of the first error, when that is
    one (pydantic reports each extra field on its own)."""
    first = errors[0]
    loc = first["loc"]
    if first.get("type") != "extra_forbidden" or len(loc) != 4 or loc[1] != "instances":
        return None
    names = [
        repr(e["loc"][3])
        for e in errors
        if e.get("type") == "extra_forbidden" and tuple(e["loc"][:3]) == tuple(loc[:3])
    ]
    several = len(names) > 1
    return (
        f"instances[{loc[2]}]: unknown column{'s' if several else ''} {', '.join(names)}: "
        f"neither a feature of the model nor a column of its data; remove "
        f"{'them' if several else 'it'} (GET /metadata lists both)"
    )


def _require_unicode(values: list, column: str, where: str = "instances") -> None:
    """JSON's \\ud800 escapes decode to lone surrogates, which no UTF-8 file or answer can
    hold (the prediction log, Parquet): one encode per column finds them."""
    try:
        "".join(v for v in values if v is not None).encode("utf-8")
    except UnicodeEncodeError as exc:
        row = next(i for i, v in enumerate(values) if v is not None and _invalid(v))
        raise RequestValidationError(
            [
                {
                    "type": "value_error",
                    "loc": ("body", where, row, column),
                    "msg": f"Value error, not valid Unicode text ({exc.reason}): send UTF-8 text",
                }
            ]
        ) from None


def _invalid(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def request_model(features: dict, max_rows: int) -> type[BaseModel]:
    """The V1 inference protocol body: {"instances": [row, ...]}."""
    instance = row_model(features)
    return create_model(
        "PredictRequest",
        __config__=ConfigDict(extra="forbid"),
        instances=(list[instance], Field(..., min_length=1, max_length=max_rows)),
    )


# A row's id is its request's id (32 hex digits), a dash and the row number: 100
# characters hold any, and an error line quoting one stays short.
RowId = Annotated[StrictStr, Field(min_length=1, max_length=100)]


def feedback_model(task: str, max_rows: int) -> type[BaseModel]:
    """POST /feedback's body: {"labels": [{"id", "label"}, ...], "skip_unknown": false}, at
    most max_rows labels (a label is far smaller than a row, so the body limit holds
    them). A label is a class, text or an integer (classification), or a finite number."""
    number = Annotated[float, Strict(), Field(allow_inf_nan=False)]
    item = create_model(
        "Label",
        __config__=ConfigDict(extra="forbid"),
        id=(RowId, Field(..., description="one of a POST /predict answer's `ids`")),
        label=(Category if task == "classification" else number, ...),
    )
    return create_model(
        "FeedbackRequest",
        __config__=ConfigDict(extra="forbid"),
        labels=(list[item], Field(..., min_length=1, max_length=max_rows)),
        skip_unknown=(
            StrictBool,
            Field(False, description="store the known ids' labels and count the others"),
        ),
    )


def label_pairs(labels: list[BaseModel], task: str) -> list[tuple[str, object]]:
    """(id, label) per item, a class as its text (schema.category_label: 1 and "1" name
    one class); a 422 naming the first label that is not valid Unicode text."""
    if task != "classification":
        return [(item.id, item.label) for item in labels]
    texts = [schema.category_label(item.label) for item in labels]
    _require_unicode(texts, "label", "labels")  # an id is stored only when a logged row's
    return list(zip([item.id for item in labels], texts, strict=True))


def body_limit(features: dict, max_rows: int) -> int:
    """Bytes that a request of `max_rows` rows may take: per value (features and the data's
    other columns, as rows come in the data) its name and the longest known category or
    class as JSON text (escaped, as Python's json.dumps writes them) and VALUE_BYTES more.
    A compact request of typical values takes a fifth to a third of it."""
    roles = input_roles(features)
    known = {**features["categorical"], roles["target"]: features.get("classes", [])}
    row = 2  # the row's braces
    for column in roles["numeric"] + roles["categorical"] + non_features(features):
        longest = max(map(_json_bytes, known.get(column, [])), default=0)
        row += _json_bytes(column) + 2 + VALUE_BYTES + longest
    return ENVELOPE_BYTES + max_rows * (row + 2)


def _json_bytes(text: str) -> int:
    return len(json.dumps(text))


def unseen_categories(
    columns: dict[str, list], known: dict[str, frozenset]
) -> list[tuple[int, str]]:
    """(row, warning) for each category never seen in training, in row order; `known`
    holds each categorical column's training categories, as a set."""
    found = []
    for column, categories in known.items():
        for index, value in enumerate(columns.get(column, ())):
            if value is not None and value not in categories:
                found.append((index, column, value))
    found.sort(key=lambda f: f[0])
    return [
        (
            index,
            f"instances[{index}].{column}: {value!r} was not seen in training; "
            "encoded as all zeros (none of the known categories)",
        )
        for index, column, value in found
    ]
