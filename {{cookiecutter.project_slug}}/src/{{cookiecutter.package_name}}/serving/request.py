"""The request schema, built at startup from the served model's features (features.json,
recorded in models/model.json): one field per feature, each required, null = missing.

Numbers must be JSON numbers (finite; not strings, not booleans); categories are strings
(or integers, which name the same category as their text, as in training). Extra fields
are refused, as are an empty `instances` list and more than `max_rows` rows.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, Strict, create_model


def _category(value: Any) -> Any:
    """An integer names the same category as its text (schema.category_text)."""
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


# Strict: "3.5" is not a number and true is neither; ints are numbers.
Number = Annotated[float, Strict(), Field(allow_inf_nan=False)]
Category = Annotated[str, Strict(), BeforeValidator(_category)]


def row_model(features: dict) -> type[BaseModel]:
    """A pydantic model of one row: numeric and categorical features, in training order."""
    roles = features["roles"]
    fields: dict[str, Any] = {}
    for column in roles["numeric"]:
        fields[column] = (Number | None, Field(..., description=_numeric_help(features, column)))
    for column in roles["categorical"]:
        known = ", ".join(features["categorical"].get(column, []))
        fields[column] = (Category | None, Field(..., description=f"one of: {known}"))
    return create_model("Instance", __config__=ConfigDict(extra="forbid", frozen=True), **fields)


def _numeric_help(features: dict, column: str) -> str:
    seen = features["numeric"].get(column, {})
    return f"number; training range {seen.get('min')}..{seen.get('max')}"


def request_model(features: dict, max_rows: int) -> type[BaseModel]:
    """The V1 inference protocol body: {"instances": [row, ...]}."""
    instance = row_model(features)
    return create_model(
        "PredictRequest",
        __config__=ConfigDict(extra="forbid"),
        instances=(list[instance], Field(..., min_length=1, max_length=max_rows)),
    )


def unseen_categories(rows: list[dict], features: dict) -> list[str]:
    """Warnings for categories never seen in training (they encode as all zeros)."""
    warnings = []
    for index, row in enumerate(rows):
        for column, known in features["categorical"].items():
            value = row.get(column)
            if value is not None and str(value) not in known:
                warnings.append(
                    f"instances[{index}].{column}: {value!r} was not seen in training; "
                    "encoded as all zeros (none of the known categories)"
                )
    return warnings
