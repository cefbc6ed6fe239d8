"""ONNX for scikit-learn's TargetEncoder, multiclass included.

skl2onnx 1.20 converts a target encoder for binary and continuous targets only; a
multiclass target (three penguin species, three customer tiers) makes it refuse the whole
pipeline. The encoding is a lookup table per (column, class): one ai.onnx.ml LabelEncoder
each, unseen values getting that class's target mean, exactly as `transform` does. Output
columns follow scikit-learn's order: per input column, one per class (one in all for
binary and continuous targets). Export's parity check proves the graph agrees.
"""

from __future__ import annotations

import numpy as np


def output_shapes(operator) -> None:
    """One float column per (input column, class): per input column for binary/continuous."""
    from skl2onnx.common.data_types import FloatTensorType

    encoder = operator.raw_operator
    rows = operator.inputs[0].get_first_dimension()
    operator.outputs[0].type = FloatTensorType([rows, len(encoder.encodings_)])


def _columns(scope, operator, container) -> list[str]:
    """The name of a [n, 1] tensor per encoded column, split out of the inputs."""
    names = []
    for tensor in operator.inputs:
        width = tensor.get_second_dimension()
        if width == 1:
            names.append(tensor.onnx_name)
            continue
        for position in range(width):
            index = scope.get_unique_variable_name("index")
            container.add_initializer(index, 7, [1], [position])  # 7: TensorProto.INT64
            column = scope.get_unique_variable_name("column")
            container.add_node(
                "ArrayFeatureExtractor",
                [tensor.onnx_name, index],
                column,
                op_domain="ai.onnx.ml",
                name=scope.get_unique_operator_name("ArrayFeatureExtractor"),
            )
            names.append(column)
    return names


def convert(scope, operator, container) -> None:
    """A LabelEncoder per (column, class), concatenated in scikit-learn's column order."""
    from skl2onnx.common._apply_operation import apply_concat, apply_reshape

    encoder = operator.raw_operator
    means = np.atleast_1d(encoder.target_mean_)
    per_column = len(means)
    outputs = []
    for i, column in enumerate(_columns(scope, operator, container)):
        keys = np.array([str(c).encode("utf-8") for c in encoder.categories_[i]])
        for j in range(per_column):
            encoded = scope.get_unique_variable_name("encoded")
            container.add_node(
                "LabelEncoder",
                column,
                encoded,
                op_domain="ai.onnx.ml",
                op_version=2,
                name=scope.get_unique_operator_name("LabelEncoder"),
                keys_strings=keys,
                values_floats=np.asarray(encoder.encodings_[i * per_column + j], np.float32),
                default_float=float(means[j]),
            )
            outputs.append(scope.get_unique_variable_name("encoded_column"))
            apply_reshape(scope, encoded, outputs[-1], container, desired_shape=(-1, 1))
    apply_concat(scope, outputs, operator.outputs[0].full_name, container, axis=1)
