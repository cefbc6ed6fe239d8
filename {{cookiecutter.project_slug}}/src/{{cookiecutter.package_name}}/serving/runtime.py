#% if cookiecutter.onnx == "yes"
"""What computes the server's predictions: onnxruntime on the ONNX graph that export wrote
and checked for parity with scikit-learn, else the skops pipeline itself.

Both take a request as columns (feature name -> one value per row, None = missing) and
give (predictions, class probabilities or None). The ONNX path builds its numpy inputs
straight from those columns, with no DataFrame per request, and answers a one-row request
in tens of microseconds where the scikit-learn pipeline takes milliseconds; export's
parity check bounds how far the two may differ (models/model.json: onnx.parity).
"""

#% else
"""What computes the server's predictions: the skops pipeline that export wrote (this project
was made without ONNX export, so `auto` means skops and `onnx` is refused).

It takes a request as columns (feature name -> one value per row, None = missing) and
gives (predictions, class probabilities or None).
"""

#% endif
from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd

from ..core.errors import ConfigError
from ..tables import schema

Choice = Literal["auto", "onnx", "skops"]


#% if cookiecutter.onnx == "yes"
class OnnxRuntime:
    name = "onnx"

    def __init__(self, onnx_bytes: bytes, roles: schema.Roles, classification: bool) -> None:
        import onnxruntime as rt

        options = rt.SessionOptions()
        # One request at a time per thread; workers, not threads, scale the server out.
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self._session = rt.InferenceSession(onnx_bytes, options, providers=["CPUExecutionProvider"])
        # skl2onnx renames inputs that are not identifiers but keeps their order: numeric
        # features, then categorical ones (onnx_convert.convert).
        names = [i.name for i in self._session.get_inputs()]
        self._numeric = list(zip(names, roles.numeric, strict=False))
        self._categorical = list(zip(names[len(roles.numeric) :], roles.categorical, strict=True))
        self._classification = classification

    def predict(self, columns: dict[str, list], rows: int) -> tuple[np.ndarray, np.ndarray | None]:
        feed = {}
        for name, column in self._numeric:
            # None becomes NaN, which the graph's imputer fills as scikit-learn's does.
            feed[name] = np.array(columns[column], dtype=np.float64).reshape(rows, 1)
        for name, column in self._categorical:
            # Missing categories are "" in the graph (onnx_convert.feeds).
            values = ["" if v is None else v for v in columns[column]]
            feed[name] = np.array(values, dtype=object).reshape(rows, 1)
        outputs = self._session.run(None, feed)
        # In the graph's own precision (float32 for trees, float64 for linear models): the
        # answer writes each number at it (responses.json_values).
        if self._classification:
            # Trees sum float32 votes: 1 may come out a rounding above (the schema says <= 1).
            return outputs[0], np.clip(outputs[1], 0.0, 1.0)
        return outputs[0].reshape(rows), None


#% endif
class SkopsRuntime:
    name = "skops"

    def __init__(self, model, roles: schema.Roles, classification: bool) -> None:
        self._model, self._roles = model, roles
        self._probabilities = classification and hasattr(model, "predict_proba")

    def predict(self, columns: dict[str, list], rows: int) -> tuple[np.ndarray, np.ndarray | None]:
        frame = schema.model_frame(pd.DataFrame(columns, columns=self._roles.features), self._roles)
        # Numbers far outside the training range can overflow inside the model.
        with np.errstate(all="ignore"):
            predicted = self._model.predict(frame)
            probabilities = self._model.predict_proba(frame) if self._probabilities else None
        return predicted, probabilities


def choose(
    choice: Choice,
    model,
    onnx_bytes: bytes | None,
    onnx_status: str,
    roles: schema.Roles,
    task: str,
) -> {% if cookiecutter.onnx == "yes" %}OnnxRuntime | {% endif %}SkopsRuntime:
#% if cookiecutter.onnx == "yes"
    """ONNX when export wrote a parity-checked graph (`auto` or `onnx`), else skops."""
    classification = task == "classification"
    ready = onnx_bytes is not None and onnx_status == "exported"
    if choice == "onnx" and not ready:
        raise ConfigError(
            f"serve.runtime is onnx, but this model has no parity-checked ONNX file (onnx "
            f"status: {onnx_status}; see models/onnx/): set serve.runtime to auto or skops"
        )
    if ready and choice != "skops":
        return OnnxRuntime(onnx_bytes, roles, classification)
#% else
    """skops: export writes no ONNX graph in this project (the arguments keep the server's
    call the same as in projects that do)."""
    classification = task == "classification"
    if choice == "onnx":
        raise ConfigError(
            "serve.runtime is onnx, but this project exports no ONNX graph (it was made with "
            "onnx=no): set serve.runtime to auto or skops"
        )
#% endif
    return SkopsRuntime(model, roles, classification)
