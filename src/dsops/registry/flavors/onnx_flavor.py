"""The onnx flavor: a serialized ONNX model, run with ONNX Runtime."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from dsops.core.errors import UsageError
from dsops.registry.flavors._common import Saved, _in_library
from dsops.registry.flavors.loaded import LoadedClassifier, LoadedModel, _matrix
from dsops.registry.signature import missing_columns_error

_ONNX_DTYPES = {"tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(int64)": np.int64,
                "tensor(int32)": np.int32, "tensor(bool)": np.bool_, "tensor(string)": np.object_}


def _is_onnx(model: Any) -> bool:
    return isinstance(model, bytes | bytearray | memoryview) or any(
        c.__name__ == "ModelProto" and _in_library(c, "onnx") for c in type(model).__mro__)


def _save_onnx(model: Any, directory: Path, code_ref: str | None) -> Saved:
    import onnxruntime

    data = bytes(model) if isinstance(model, bytes | bytearray | memoryview) else model.SerializeToString()
    session = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])  # checks the bytes
    (directory / "model.onnx").write_bytes(data)
    return ["model.onnx"], {
        "format": "onnx", "file": "model.onnx",
        "inputs": [{"name": i.name, "type": i.type, "shape": i.shape} for i in session.get_inputs()],
        "outputs": [{"name": o.name, "type": o.type, "shape": o.shape} for o in session.get_outputs()],
        "library_versions": {"onnxruntime": onnxruntime.__version__},
    }, None


def _load_onnx(path: Path, meta: Mapping[str, Any], trusted: bool) -> LoadedModel:
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    inputs, outputs = session.get_inputs(), session.get_outputs()
    names = meta.get("feature_names")

    def feed(X: Any) -> dict[str, Any]:
        if len(inputs) == 1:
            dtype = _ONNX_DTYPES.get(inputs[0].type, np.float32)
            return {inputs[0].name: np.asarray(_matrix(X, names), dtype=dtype)}
        if not (isinstance(X, Mapping) or hasattr(X, "columns")):
            raise UsageError(f"the model takes named inputs ({', '.join(i.name for i in inputs)}): "
                             "pass a DataFrame or a dict of column → values")
        missing = [i.name for i in inputs if i.name not in X]
        if missing:
            raise missing_columns_error(missing, [i.name for i in inputs], list(X.keys()))
        fed = {}
        for i in inputs:
            column = np.asarray(X[i.name], dtype=_ONNX_DTYPES.get(i.type, np.float32))
            fed[i.name] = column.reshape(-1, 1) if column.ndim == 1 and len(i.shape) == 2 else column
        return fed

    def predict(X: Any) -> Any:
        return session.run([outputs[0].name], feed(X))[0]

    proba = next((o.name for o in outputs[1:]
                  if "prob" in o.name.lower() or o.type.startswith("seq(map")), None)
    if proba is None:
        return LoadedModel("onnx", session, predict, names)

    def predict_proba(X: Any) -> np.ndarray:
        result = session.run([proba], feed(X))[0]
        if isinstance(result, list):  # skl2onnx's ZipMap: one {class: probability} dict a row
            keys = list(result[0]) if result else []
            table = np.array([[row[k] for k in keys] for row in result], dtype=np.float32)
            return table.reshape(-1, len(keys))
        return np.asarray(result)

    return LoadedClassifier("onnx", session, predict, predict_proba, names)
