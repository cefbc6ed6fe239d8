"""How derived features are made, in one path for every caller: preprocess (both engines)
adds them to the data, export recomputes them on the test rows (the ONNX graph takes them
as inputs), and the server computes them from a request's raw columns before the model.

Two kinds: preprocess.ratios (numerator_per_denominator, built in) and the columns that
derived.derive (your code) returns. features.json records both under "derived" (only
when there are some, so a project without them writes the features.json it always did).
"""

from __future__ import annotations

import dataclasses
import logging

import pandas as pd

from ..core.errors import ConfigError, DataError
from ..tables import schema
from . import derived

log = logging.getLogger(__name__)

SOURCE = f"src/{__package__.split('.')[0]}/modeling/derived.py"


def ratios(df: pd.DataFrame, pairs: list) -> dict[str, pd.Series]:
    """numerator_per_denominator per pair; a zero denominator gives a missing value. Two
    float32 columns give a float32 ratio (schema.as_floats), any other pair float64."""
    out = {}
    for numerator, denominator in pairs:
        if numerator not in df.columns or denominator not in df.columns:
            log.warning(
                "preprocess.ratios: skipping %s/%s, not in the data", numerator, denominator
            )
            continue
        bottom = schema.as_floats(df[denominator], errors="coerce")
        top = schema.as_floats(df[numerator], errors="coerce")
        out[f"{numerator}_per_{denominator}"] = top / bottom.where(bottom != 0)
    return out


def columns(df: pd.DataFrame, pairs: list) -> pd.DataFrame:
    """The derived columns of `df`'s rows, on its index: the ratios, then derive()'s."""
    made = pd.DataFrame(ratios(df, pairs), index=df.index)
    clash = [c for c in made.columns if c in df.columns]
    if clash:  # assign would overwrite the data's own column without a word
        raise ConfigError(
            f"preprocess.ratios makes column(s) {', '.join(clash)}, which the data already has: "
            "rename the data's column, or leave that pair out of preprocess.ratios"
        )
    try:
        yours = derived.derive(df)
    except KeyError as exc:
        raise ConfigError(
            f"{SOURCE}: derive() reads column {exc}, which the rows lack: derive from feature "
            "columns only (a request to the server carries no others)"
        ) from None
    if not isinstance(yours, pd.DataFrame) or not yours.index.equals(df.index):
        raise ConfigError(
            f"{SOURCE}: derive() must return a DataFrame on its input's index (one row per "
            f"row), not {type(yours).__name__}: build it with pd.DataFrame(..., index=df.index)"
        )
    taken = [c for c in yours.columns if c in df.columns or c in made.columns]
    if taken:
        raise ConfigError(
            f"{SOURCE}: derive() returns column(s) {', '.join(map(str, taken))} that the data "
            "or preprocess.ratios already has: give derived columns new names"
        )
    return pd.concat([made, yours], axis=1) if len(yours.columns) else made


def add(df: pd.DataFrame, pairs: list) -> tuple[pd.DataFrame, list[str]]:
    """(`df` with its derived columns, their names); `df` itself when there are none (no
    copy of a table that may be gigabytes)."""
    made = columns(df, pairs)
    if not len(made.columns):
        return df, []
    return df.assign(**{str(c): made[c] for c in made.columns}), list(map(str, made.columns))


def record(pairs: list, names: list[str]) -> dict:
    """What features.json says of the derived columns `names`: nothing when there are none."""
    if not names:
        return {}
    return {"derived": {"ratios": [list(p) for p in pairs], "columns": list(names)}}


def recorded(features: dict) -> tuple[list, list[str]]:
    """(the ratios, the derived column names) that features.json (or model.json) recorded."""
    spec = features.get("derived") or {}
    return spec.get("ratios", []), spec.get("columns", [])


def inputs(roles: schema.Roles, names: list[str]) -> schema.Roles:
    """The roles of the columns a request carries: the features less the derived `names`."""
    return dataclasses.replace(
        roles,
        numeric=[c for c in roles.numeric if c not in names],
        categorical=[c for c in roles.categorical if c not in names],
    )


def refuse_changed(features: dict) -> None:
    """The derived columns that this code makes must be the ones the model was trained
    with (features.json or model.json: `features`): else derived.py changed since."""
    pairs, names = recorded(features)
    raw = inputs(schema.roles_from_dict(features["roles"]), names)
    empty = schema.model_frame(pd.DataFrame(columns=raw.features), raw)
    made = list(map(str, columns(empty, pairs).columns))
    if made != names:
        raise ConfigError(
            f"{SOURCE} now derives {made or 'no columns'}, but the model was trained with "
            f"{names or 'none'}: serve a model trained with this code (dvc repro), or this "
            "model from the commit that trained it"
        )


def refuse_different(
    stored: pd.DataFrame, raw: pd.DataFrame, pairs: list, roles: schema.Roles
) -> None:
    """The derived columns recomputed from `raw` (the test rows' raw features, typed as a
    request's) must equal those preprocess stored for them (`stored`, schema.model_frame's
    rows): else derive() reads other rows (as a mean does) or depends on how a column is
    typed, and the server would feed the model other values than training did."""
    made = columns(raw, pairs)
    if not len(made.columns):
        return
    again = schema.model_frame(stored.assign(**made), roles)
    for column in made.columns:
        if not again[column].reset_index(drop=True).equals(stored[column].reset_index(drop=True)):
            raise DataError(
                f"derived column {column!r}: recomputed from the test rows' raw features, it "
                f"differs from what preprocess stored, so derive() in {SOURCE} is not row-wise "
                "or reads more than feature values: compute each row from its own features"
            )
