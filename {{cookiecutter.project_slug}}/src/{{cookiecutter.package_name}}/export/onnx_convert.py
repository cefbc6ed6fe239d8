"""The fitted pipeline as an ONNX graph (skl2onnx), and its parity with scikit-learn.

Inputs: one [n, 1] tensor per feature, named after the column; numbers as double,
categories as strings, a missing category as the empty string (string tensors have no
NaN). The preprocessing runs in double precision, as scikit-learn's does. The model then
sees float32 when its file says `_onnx_: {float32: true}` (tree models: scikit-learn's
forests cast their input so, and onnxruntime's tree operators compute so), else double;
left out, convert_checked tries double, then float32. Outputs: `label` and `probabilities`
(classes in `model.classes_` order) for a classifier, `variable` for a regressor.

Parity: on the given rows, max |onnx - scikit-learn| over probabilities (classifiers) or
predictions (regressors) must be at most TOLERANCE * max(1, max |scikit-learn|), and
classifiers must predict the same labels; otherwise export fails, unless the model file
says `_onnx_: {parity_may_fail: true}` or leaves it out: ONNX is then skipped, saying why.
"""

from __future__ import annotations

import copy
import warnings
from contextlib import contextmanager
from typing import Any
from unittest import mock

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from ..core.errors import DataError, first_line
from ..tables import schema
from . import onnx_target_encoder

# Float32 trees sum leaf values in float32 and the preprocessing constants are rounded in
# the Imputer of onnxruntime; 1e-5 of the output's scale bounds both with margin.
TOLERANCE = 1e-5
OPSET = {"": 18, "ai.onnx.ml": 3}
FEATURES = "features"
# onnxmltools' converters (module:function), by the library an estimator's class comes from.
LIBRARY_CONVERTERS = {
    "lightgbm": "onnxmltools.convert.lightgbm.operator_converters.LightGbm:convert_lightgbm",
    "xgboost": "onnxmltools.convert.xgboost.operator_converters.XGBoost:convert_xgboost",
}


class ConverterMissing(Exception):
    """No faithful ONNX converter for this estimator: ONNX is skipped, the stage goes on."""


def _numeric_imputer_converter(scope, operator, container) -> None:
    """SimpleImputer on numbers as IsNaN + Where, which onnxruntime runs in double too
    (its Imputer operator is float-only); text columns keep skl2onnx's own converter."""
    from onnx import numpy_helper
    from skl2onnx.common.data_types import DoubleTensorType, StringTensorType
    from skl2onnx.operator_converters.imputer_op import convert_sklearn_imputer

    if isinstance(operator.inputs[0].type, StringTensorType):
        convert_sklearn_imputer(scope, operator, container)
        return
    imputer = operator.raw_operator
    if not (isinstance(imputer.missing_values, float) and np.isnan(imputer.missing_values)):
        raise ConverterMissing(f"SimpleImputer(missing_values={imputer.missing_values!r})")
    if len(operator.inputs) != 1:
        raise ConverterMissing("SimpleImputer with several numeric inputs")
    double = isinstance(operator.inputs[0].type, DoubleTensorType)
    dtype = np.float64 if double else np.float32
    fill = scope.get_unique_variable_name("fill")
    container.add_initializer(
        fill, *_tensor_args(numpy_helper.from_array(imputer.statistics_.astype(dtype)))
    )
    missing = scope.get_unique_variable_name("missing")
    container.add_node("IsNaN", [operator.inputs[0].full_name], [missing])
    container.add_node(
        "Where", [missing, fill, operator.inputs[0].full_name], [operator.outputs[0].full_name]
    )


def _tensor_args(tensor) -> tuple[int, list[int], list]:
    from onnx import numpy_helper

    values = numpy_helper.to_array(tensor)
    return tensor.data_type, list(values.shape), values.ravel().tolist()


@contextmanager
def _hist_gradient_boosting_fix():
    """skl2onnx 1.20 writes `missing_go_to_left` of leaves as a Python bool among numpy
    ints, which ONNX refuses ("Expected an int, got a boolean"); cast the list to ints."""
    from skl2onnx.operator_converters import random_forest

    original = random_forest.add_tree_to_attribute_pairs_hist_gradient_boosting

    def fixed(attr_pairs, *args, **kwargs):
        original(attr_pairs, *args, **kwargs)
        key = "nodes_missing_value_tracks_true"
        attr_pairs[key] = [int(v) for v in attr_pairs[key]]

    with mock.patch.object(
        random_forest, "add_tree_to_attribute_pairs_hist_gradient_boosting", fixed
    ):
        yield


def _onnx_ready_preprocessor(model: Pipeline):
    """A copy of the fitted preprocessor whose text imputers treat "" as missing."""
    from sklearn.impute import SimpleImputer

    transformer = copy.deepcopy(model.steps[0][1])
    for _, step, _ in transformer.transformers_:
        steps = getattr(step, "named_steps", {}).values()
        for part in steps:
            if isinstance(part, SimpleImputer) and part.statistics_.dtype.kind in "OUS":
                part.missing_values = ""
    return transformer


def convert(model: Pipeline, roles: schema.Roles, float32: bool) -> bytes:
    """Serialized ONNX of the pipeline, its model fed float32 or double; equal pipelines
    give equal bytes.

    Raises ConverterMissing when skl2onnx cannot convert the estimator.
    """
    import onnx

    _register_converters()
    _register_library_converter(model.steps[-1][1])
    # The preprocessor's output columns: the estimator's input.
    width = len(model.steps[0][1].get_feature_names_out())
    front, back = _convert_halves(model, roles, width, float32)
    merged = _merge(front, back, width, float32)
    onnx.checker.check_model(merged)
    return merged.SerializeToString()


def _register_converters() -> None:
    """This project's converters: a numeric SimpleImputer's, and TargetEncoder's."""
    from skl2onnx import update_registered_converter
    from skl2onnx.shape_calculators.imputer import calculate_sklearn_imputer_output_shapes
    from sklearn.impute import SimpleImputer
    from sklearn.preprocessing import TargetEncoder

    update_registered_converter(
        SimpleImputer,
        "SklearnSimpleImputer",
        calculate_sklearn_imputer_output_shapes,
        _numeric_imputer_converter,
    )
    update_registered_converter(
        TargetEncoder,
        "SklearnTargetEncoder",
        onnx_target_encoder.output_shapes,
        onnx_target_encoder.convert,
    )


def _register_library_converter(estimator) -> None:
    """onnxmltools' converter of a LightGBM or XGBoost estimator (skl2onnx has none) for its
    exact class, which is how skl2onnx finds converters (so XGBLabelClassifier's too)."""
    from importlib import import_module

    from skl2onnx import update_registered_converter
    from skl2onnx.common.shape_calculator import (
        calculate_linear_classifier_output_shapes,
        calculate_linear_regressor_output_shapes,
    )

    kind = type(estimator)
    libraries = {c.__module__.split(".")[0] for c in kind.__mro__} & set(LIBRARY_CONVERTERS)
    if not libraries:
        return
    module, _, function = LIBRARY_CONVERTERS[libraries.pop()].partition(":")
    converter = getattr(import_module(module), function)
    if hasattr(estimator, "classes_"):
        options = {"nocl": [True, False], "zipmap": [True, False, "columns"]}
        shapes = calculate_linear_classifier_output_shapes
    else:
        options, shapes = None, calculate_linear_regressor_output_shapes
    alias = f"{kind.__module__}.{kind.__name__}"
    update_registered_converter(kind, alias, shapes, converter, options=options)


def _convert_halves(model: Pipeline, roles: schema.Roles, width: int, float32: bool) -> tuple:
    """(the preprocessor's ONNX graph: one input per column, the estimator's: FEATURES),
    converted apart, as skl2onnx cannot convert a ColumnTransformer's pipeline whole."""
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType, StringTensorType
    from skl2onnx.common.exceptions import MissingShapeCalculator

    estimator = model.steps[-1][1]
    inputs = [(c, DoubleTensorType([None, 1])) for c in roles.numeric]
    inputs += [(c, StringTensorType([None, 1])) for c in roles.categorical]
    tensor = FloatTensorType if float32 else DoubleTensorType
    options = {id(estimator): {"zipmap": False}} if hasattr(estimator, "classes_") else None
    with warnings.catch_warnings(), _hist_gradient_boosting_fix():
        warnings.simplefilter("ignore")
        try:
            front = convert_sklearn(
                _onnx_ready_preprocessor(model),
                initial_types=inputs,
                target_opset=OPSET,
                name="preprocess",
            )
            back = convert_sklearn(
                estimator,
                initial_types=[(FEATURES, tensor([None, width]))],
                target_opset=OPSET,
                options=options,
                name="model",
            )
        except (MissingShapeCalculator, RuntimeError, ValueError, TypeError) as exc:
            raise ConverterMissing(f"{type(estimator).__name__}: {exc}") from exc
    return front, back


def _merge(front, back, width: int, as_float: bool):
    """One graph: the preprocessor's output (cast to float32 for an estimator that computes
    in it) fed to the estimator, with fixed names."""
    import onnx
    from onnx import compose, helper

    for part in (front, back):
        # Each half imports the lowest opsets it needs; merging needs one set.
        del part.opset_import[:]
        part.opset_import.extend(helper.make_opsetid(d, v) for d, v in OPSET.items())
    front = compose.add_prefix(front, "pre_", rename_inputs=False)
    produced = front.graph.output[0].name
    if as_float:
        front.graph.node.append(
            helper.make_node("Cast", [produced], [f"{produced}_f32"], to=onnx.TensorProto.FLOAT)
        )
        del front.graph.output[:]
        front.graph.output.append(
            helper.make_tensor_value_info(f"{produced}_f32", onnx.TensorProto.FLOAT, [None, width])
        )
        produced = f"{produced}_f32"
    back = compose.add_prefix(back, "model_", rename_outputs=False)
    return compose.merge_models(
        front,
        back,
        io_map=[(produced, f"model_{FEATURES}")],
        # Fixed names: skl2onnx would name the graph with a random uuid.
        name="pipeline",
        doc_string="scikit-learn pipeline: preprocess, then model",
        producer_name="skl2onnx",
    )


def feeds(rows: pd.DataFrame, roles: schema.Roles) -> dict[str, np.ndarray]:
    """Model-frame rows (schema.model_frame) as the graph's inputs."""
    out: dict[str, np.ndarray] = {c: rows[[c]].to_numpy(dtype=np.float64) for c in roles.numeric}
    for column in roles.categorical:
        out[column] = rows[[column]].astype(object).fillna("").to_numpy(dtype=object)
    return out


def run(onnx_bytes: bytes, rows: pd.DataFrame, roles: schema.Roles) -> dict[str, np.ndarray]:
    """The graph's outputs by name, computed by onnxruntime on one thread."""
    import onnxruntime as rt

    options = rt.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    try:
        session = rt.InferenceSession(onnx_bytes, options, providers=["CPUExecutionProvider"])
    # onnxruntime's errors (Fail, InvalidGraph, ...) share no base class below Exception. A
    # graph it refuses to load (seen: a float64 tree ensemble) has no faithful converter.
    except Exception as exc:  # noqa: BLE001
        raise ConverterMissing(f"onnxruntime cannot load the graph ({first_line(exc)})") from exc
    # skl2onnx renames inputs that are not identifiers (`a/b` becomes `a_b`) but keeps
    # their order, which is the order of feeds().
    inputs = [i.name for i in session.get_inputs()]
    feed = dict(zip(inputs, feeds(rows, roles).values(), strict=True))
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(None, feed), strict=True))


def parity(
    model: Pipeline, onnx_bytes: bytes, rows: pd.DataFrame, roles: schema.Roles
) -> dict[str, Any]:
    """Compare onnxruntime with scikit-learn on `rows`; DataError past the tolerance."""
    outputs = run(onnx_bytes, rows, roles)
    if "probabilities" in outputs:
        reference = model.predict_proba(rows)
        got = outputs["probabilities"]
        labels_differ = int((outputs["label"] != model.predict(rows).astype(str)).sum())
        if model.classes_.dtype.kind not in "OUS":
            labels_differ = int((outputs["label"] != model.predict(rows)).sum())
    else:
        reference = model.predict(rows)
        got = outputs["variable"].reshape(reference.shape)
        labels_differ = 0
    diff = float(np.max(np.abs(got.astype(np.float64) - reference))) if len(rows) else 0.0
    allowed = TOLERANCE * max(1.0, float(np.max(np.abs(reference))) if len(rows) else 1.0)
    result = {
        "rows": len(rows),
        "max_abs_diff": diff,
        "allowed_abs_diff": allowed,
        "tolerance": TOLERANCE,
        "labels_differ": labels_differ,
    }
    if diff > allowed or labels_differ:
        raise DataError(
            f"ONNX model disagrees with scikit-learn on the test rows (max abs diff {diff:.3g}, "
            f"allowed {allowed:.3g}; {labels_differ} label(s) differ): report the model and "
            "the skl2onnx version, or remove the model from the candidates"
        )
    return result


def convert_checked(
    model: Pipeline, rows: pd.DataFrame, roles: schema.Roles, facts: dict[str, bool]
) -> tuple[bytes, dict, bool]:
    """(ONNX bytes, parity() on `rows`, whether the model is fed float32), by the model
    file's `_onnx_` facts: `float32` picks the graph, left out both are tried, double
    first. ConverterMissing when skl2onnx has no converter, or when no graph agrees and
    `parity_may_fail` is not false; DataError when it is false and the graph disagrees."""
    tried = [facts["float32"]] if "float32" in facts else [False, True]
    failures = []
    for float32 in tried:
        kind = "float32" if float32 else "float64"
        try:
            onnx_bytes = convert(model, roles, float32)
            return onnx_bytes, parity(model, onnx_bytes, rows, roles), float32
        except ConverterMissing as exc:
            failures.append(f"{kind}: {exc}")
        except DataError as exc:
            if facts.get("parity_may_fail") is False:
                raise
            # scikit-learn's histogram gradient boosting compares float64 values with
            # float64 thresholds, onnxruntime's tree operators float32: a value between
            # the two roundings takes the other branch (seen: 79 g on one of 69 penguins).
            failures.append(f"{kind}: {exc}")
    raise ConverterMissing("; ".join(failures))
