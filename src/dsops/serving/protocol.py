"""Wire formats of the gateway: Open Inference Protocol v2 and MLflow scoring payloads.

Pure codecs, no HTTP: request bytes become a `Table` (rows of named or positional columns,
before any model sees them), and predictions become response bytes. JSON goes straight to
NumPy; pandas is never involved. Errors are `ProtocolError` (400, or 415 for a content type
neither protocol speaks) with a message that names the offending key, input or column.

OIP v2: https://kserve.github.io/website/latest/modelserving/data_plane/v2_protocol/ — JSON
tensors (flat or nested ``data``) and Triton's binary tensor extension
(``Inference-Header-Content-Length``), which tritonclient uses by default.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dsops.core.errors import UsageError

MLFLOW_KEYS = ("dataframe_split", "dataframe_records", "instances", "inputs")
JSON_TYPES = ("application/json",)
CSV_TYPES = ("text/csv",)
BINARY_HEADER = "inference-header-content-length"

# OIP datatype ↔ NumPy dtype. BYTES holds strings (object arrays).
DATATYPES: dict[str, Any] = {
    "BOOL": np.bool_, "UINT8": np.uint8, "UINT16": np.uint16, "UINT32": np.uint32, "UINT64": np.uint64,
    "INT8": np.int8, "INT16": np.int16, "INT32": np.int32, "INT64": np.int64,
    "FP16": np.float16, "FP32": np.float32, "FP64": np.float64, "BYTES": np.object_,
}
_DTYPE_NAMES = {np.dtype(t).str: name for name, t in DATATYPES.items() if name != "BYTES"}
# Which inferred NumPy kinds a declared datatype accepts from JSON data: an INT tensor may not hold 1.5.
_ACCEPTED_KINDS = {"BOOL": "b", "BYTES": "OUS"}
_ACCEPTED_KINDS |= {name: "iub" for name in DATATYPES if name.startswith(("INT", "UINT"))}
_ACCEPTED_KINDS |= {name: "iubf" for name in DATATYPES if name.startswith("FP")}


class ProtocolError(UsageError):
    """A request the protocol cannot read: 400, or 415 for an unsupported content type."""

    code = "bad_request"

    def __init__(self, message: str, *, status: int = 400, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.http_status = status


@dataclass
class Table:
    """Decoded request rows, before they meet a model's signature.

    ``kind`` says how ``data`` holds them: ``rows`` (a list of row lists or a 2-D array, columns
    in ``names`` order, or positional when ``names`` is None), ``records`` (a list of dicts),
    ``columns`` (name → 1-D values) or ``tensor`` (one n-D array, named ``names[0]`` if given).
    ``text`` marks CSV values, where a number arrives as a string.
    """

    kind: str
    data: Any
    rows: int
    names: list[str] | None = None
    text: bool = False
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class InferRequest:
    """An OIP v2 inference request: the inputs as a `Table`, plus id, parameters and outputs asked for."""

    table: Table
    id: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    outputs: list[str] | None = None  # None: every default output
    binary_outputs: set[str] = field(default_factory=set)


# --- MLflow scoring ----------------------------------------------------------------------------------------

def media_type(content_type: str | None) -> str:
    """The media type of a Content-Type header, lower-cased, without parameters."""
    return (content_type or "").partition(";")[0].strip().lower()


def decode_mlflow(body: bytes, content_type: str | None) -> Table:
    """The rows of an MLflow ``/invocations`` request (JSON with exactly one of `MLFLOW_KEYS`, or CSV)."""
    kind = media_type(content_type)
    if kind in CSV_TYPES:
        return _decode_csv(body)
    if kind not in JSON_TYPES:
        shown = content_type or "none"
        raise ProtocolError(f"unsupported content type {shown!r}: send application/json or text/csv",
                            status=415)
    payload = _json(body)
    if not isinstance(payload, dict):
        raise ProtocolError(f"the JSON body must be an object with one of {', '.join(MLFLOW_KEYS)}, "
                            f"not {_json_kind(payload)}")
    given = [key for key in MLFLOW_KEYS if key in payload]
    if len(given) != 1:
        found = f"got {' and '.join(given)}" if given else f"got keys {sorted(payload)}"
        raise ProtocolError(f"the body must hold exactly one of {', '.join(MLFLOW_KEYS)}; {found}")
    unknown = sorted(set(payload) - {given[0], "params"})
    if unknown:
        raise ProtocolError(f"unknown key{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} beside "
                            f"{given[0]!r} (allowed: {given[0]}, params)")
    params = payload.get("params") or {}
    if not isinstance(params, dict):
        raise ProtocolError(f"'params' must be an object, not {_json_kind(params)}")
    key, value = given[0], payload[given[0]]
    if key == "dataframe_split":
        table = _dataframe_split(value)
    elif key == "dataframe_records":
        table = _records(value, key)
    else:
        table = _tf_serving(value, key)
    table.params = params
    return table


def _dataframe_split(value: Any) -> Table:
    if not isinstance(value, dict):
        raise ProtocolError(f"'dataframe_split' must be an object with 'columns' and 'data', "
                            f"not {_json_kind(value)}")
    data = value.get("data")
    if not isinstance(data, list):
        raise ProtocolError("'dataframe_split' needs 'data': a list of rows")
    columns = value.get("columns")
    if columns is not None:
        if not isinstance(columns, list) or not all(isinstance(c, str | int) for c in columns):
            raise ProtocolError("'dataframe_split.columns' must be a list of column names")
        columns = [str(c) for c in columns]
    for i, row in enumerate(data):
        if not isinstance(row, list):
            if columns is not None and len(columns) == 1:  # a one-column frame may give bare values
                data = [[v] for v in data]
                break
            raise ProtocolError(f"'dataframe_split.data[{i}]' must be a list (a row), not {_json_kind(row)}")
        if columns is not None and len(row) != len(columns):
            raise ProtocolError(f"'dataframe_split.data[{i}]' has {len(row)} values for "
                                f"{len(columns)} columns")
    return Table("rows", data, len(data), columns)


def _records(value: Any, key: str) -> Table:
    if not isinstance(value, list) or not all(isinstance(r, dict) for r in value):
        raise ProtocolError(f"{key!r} must be a list of objects (one per row), column name → value")
    return Table("records", value, len(value))


def _tf_serving(value: Any, key: str) -> Table:
    """TF-serving style ``instances`` / ``inputs``: records, columns, or a (nested) list of values."""
    if isinstance(value, dict):
        # A scalar is a single instance's value.
        columns = {str(n): c if isinstance(c, list) else [c] for n, c in value.items()}
        lengths = {len(c) for c in columns.values()}
        if len(lengths) > 1:
            raise ProtocolError(f"{key!r} columns have different lengths ({sorted(lengths)})")
        return Table("columns", columns, lengths.pop() if lengths else 0, list(columns))
    if not isinstance(value, list):
        raise ProtocolError(f"{key!r} must be a list or an object, not {_json_kind(value)}")
    if value and all(isinstance(r, dict) for r in value):
        return Table("records", value, len(value))
    if any(isinstance(r, dict) for r in value):
        raise ProtocolError(f"{key!r} mixes objects and values")
    if value and all(isinstance(r, list) for r in value):
        return Table("rows", value, len(value))
    return Table("tensor", value, len(value))


def _decode_csv(body: bytes) -> Table:
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ProtocolError(f"the CSV body is not UTF-8: {exc}") from None
    reader = csv.reader(io.StringIO(text))
    try:
        header = next(reader)
    except StopIteration:
        raise ProtocolError("the CSV body is empty: send a header row and data rows") from None
    except csv.Error as exc:
        raise ProtocolError(f"the CSV body cannot be read: {exc}") from None
    rows = []
    try:
        for line, row in enumerate(reader, start=2):
            if not row:
                continue
            if len(row) != len(header):
                raise ProtocolError(f"CSV line {line} has {len(row)} fields for {len(header)} columns")
            rows.append(row)
    except csv.Error as exc:
        raise ProtocolError(f"the CSV body cannot be read: {exc}") from None
    return Table("rows", rows, len(rows), [h.strip() for h in header], text=True)


def encode_mlflow(predictions: Any) -> bytes:
    """An MLflow scoring response: ``{"predictions": [...]}``."""
    return _dumps({"predictions": _jsonable(predictions)})


# --- Open Inference Protocol v2 ----------------------------------------------------------------------------

def decode_infer(body: bytes, header_length: str | None = None) -> InferRequest:
    """An OIP v2 ``/infer`` request; ``header_length`` is the binary extension's JSON length header."""
    binary = b""
    if header_length is not None:
        try:
            size = int(header_length)
        except ValueError:
            raise ProtocolError(f"Inference-Header-Content-Length must be a number, not {header_length!r}") \
                from None
        if not 0 <= size <= len(body):
            raise ProtocolError(f"Inference-Header-Content-Length {size} exceeds the body "
                                f"({len(body)} bytes)")
        body, binary = body[:size], body[size:]
    payload = _json(body)
    if not isinstance(payload, dict):
        raise ProtocolError(f"the inference request must be a JSON object, not {_json_kind(payload)}")
    inputs = payload.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise ProtocolError("the inference request needs 'inputs': a non-empty list of tensors")
    request_id = payload.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise ProtocolError("'id' must be a string")
    parameters = payload.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise ProtocolError("'parameters' must be an object")
    tensors: dict[str, np.ndarray] = {}
    offset = 0
    for i, spec in enumerate(inputs):
        name, array, offset = _decode_tensor(spec, i, binary, offset)
        if name in tensors:
            raise ProtocolError(f"input {name!r} is given twice")
        tensors[name] = array
    if offset != len(binary):
        raise ProtocolError(f"the binary part has {len(binary) - offset} bytes no input claims")
    outputs, binary_outputs = _requested_outputs(payload.get("outputs"), parameters)
    return InferRequest(_tensors_table(tensors), request_id, parameters, outputs, binary_outputs)


def _decode_tensor(spec: Any, i: int, binary: bytes, offset: int) -> tuple[str, np.ndarray, int]:
    if not isinstance(spec, dict):
        raise ProtocolError(f"inputs[{i}] must be an object with name, shape, datatype and data")
    name = spec.get("name")
    if not isinstance(name, str) or not name:
        raise ProtocolError(f"inputs[{i}] needs a 'name'")
    datatype = spec.get("datatype")
    if datatype not in DATATYPES:
        raise ProtocolError(f"input {name!r} has datatype {datatype!r}; use one of {', '.join(DATATYPES)}")
    shape = spec.get("shape")
    if not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0
                                              for d in shape):
        raise ProtocolError(f"input {name!r} needs 'shape': a list of non-negative integers")
    expected = math.prod(shape)
    params = spec.get("parameters") or {}
    size = params.get("binary_data_size") if isinstance(params, dict) else None
    if size is not None:
        if not isinstance(size, int) or size < 0 or offset + size > len(binary):
            raise ProtocolError(f"input {name!r}: binary_data_size {size!r} does not fit the binary part")
        array = _from_binary(binary[offset:offset + size], datatype, expected, name)
        return name, array.reshape(shape), offset + size
    if "data" not in spec:
        raise ProtocolError(f"input {name!r} has no 'data'")
    data = spec["data"]
    try:
        array = np.asarray(data if isinstance(data, list) else [data])
    except ValueError:
        raise ProtocolError(f"input {name!r}: 'data' is ragged (nested lists of different lengths)") from None
    if array.size != expected:
        raise ProtocolError(f"input {name!r} has {array.size} values; shape {shape} needs {expected}")
    if array.size and array.dtype.kind not in _ACCEPTED_KINDS[datatype]:
        raise ProtocolError(f"input {name!r} is declared {datatype} but its data holds {_kind_name(array)}")
    try:
        array = array.astype(DATATYPES[datatype], copy=False)
    except (ValueError, OverflowError) as exc:
        raise ProtocolError(f"input {name!r} cannot be read as {datatype}: {exc}") from None
    return name, array.reshape(shape), offset


def _from_binary(chunk: bytes, datatype: str, expected: int, name: str) -> np.ndarray:
    if datatype != "BYTES":
        dtype = np.dtype(DATATYPES[datatype]).newbyteorder("<")
        if len(chunk) != expected * dtype.itemsize:
            raise ProtocolError(f"input {name!r}: {len(chunk)} bytes of {datatype} for {expected} values")
        return np.frombuffer(chunk, dtype=dtype).astype(dtype.newbyteorder("="), copy=False)
    values: list[str] = []
    at = 0
    while at < len(chunk):  # each element: a 4-byte little-endian length, then its bytes
        length = int.from_bytes(chunk[at:at + 4], "little")
        values.append(chunk[at + 4:at + 4 + length].decode("utf-8", errors="replace"))
        at += 4 + length
    if len(values) != expected:
        raise ProtocolError(f"input {name!r}: {len(values)} BYTES elements for {expected} values")
    return np.array(values, dtype=object)


def _tensors_table(tensors: dict[str, np.ndarray]) -> Table:
    """Tensors of shape [n] or [n, 1] are columns; a lone tensor of another shape is one array."""
    if len(tensors) == 1:
        (name, array), = tensors.items()
        if array.ndim != 1 and not (array.ndim == 2 and array.shape[1] == 1):
            return Table("tensor", array, array.shape[0] if array.ndim else 1, [name])
    columns: dict[str, np.ndarray] = {}
    for name, array in tensors.items():
        if array.ndim == 2 and array.shape[1] == 1:
            array = array[:, 0]
        elif array.ndim != 1:
            raise ProtocolError(f"input {name!r} has shape {list(array.shape)}: a column input takes "
                                "[n] or [n, 1] (or send one 2-D tensor of every column)")
        columns[name] = array
    lengths = {len(a) for a in columns.values()}
    if len(lengths) > 1:
        shown = ", ".join(f"{n}: {len(a)}" for n, a in columns.items())
        raise ProtocolError(f"inputs have different numbers of rows ({shown})")
    return Table("columns", columns, lengths.pop(), list(columns))


def _requested_outputs(outputs: Any, parameters: Mapping[str, Any]) -> tuple[list[str] | None, set[str]]:
    binary_all = bool(parameters.get("binary_data_output"))
    if outputs is None:
        return None, {"*"} if binary_all else set()
    if not isinstance(outputs, list) or not all(isinstance(o, dict) and isinstance(o.get("name"), str)
                                                for o in outputs):
        raise ProtocolError("'outputs' must be a list of objects with a 'name'")
    names = [o["name"] for o in outputs]
    binary = {o["name"] for o in outputs
              if (o.get("parameters") or {}).get("binary_data", binary_all)}
    return names, binary


def encode_infer(model: str, version: str, request_id: str, outputs: Mapping[str, np.ndarray],
                 binary: set[str] | None = None) -> tuple[bytes, int | None]:
    """An OIP v2 inference response and, when outputs go binary, the JSON header's length."""
    binary = binary or set()
    tensors = []
    chunks: list[bytes] = []
    for name, array in outputs.items():
        datatype = datatype_of(array)
        tensor: dict[str, Any] = {"name": name, "datatype": datatype, "shape": list(array.shape)}
        if name in binary or "*" in binary:
            chunk = _to_binary(array, datatype)
            tensor["parameters"] = {"binary_data_size": len(chunk)}
            chunks.append(chunk)
        else:
            tensor["data"] = _jsonable(array.ravel())
        tensors.append(tensor)
    head = _dumps({"model_name": model, "model_version": version, "id": request_id, "outputs": tensors})
    if not chunks:
        return head, None
    return head + b"".join(chunks), len(head)


def _to_binary(array: np.ndarray, datatype: str) -> bytes:
    if datatype != "BYTES":
        return np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).tobytes()
    parts = []
    for value in array.ravel():
        data = value if isinstance(value, bytes) else str(value).encode()
        parts.append(len(data).to_bytes(4, "little") + data)
    return b"".join(parts)


def datatype_of(array: np.ndarray) -> str:
    """The OIP datatype of a NumPy array (BYTES for strings and objects)."""
    return _DTYPE_NAMES.get(array.dtype.newbyteorder("=").str, "BYTES") if array.dtype.kind in "biuf" \
        else "BYTES"


def error_body(message: str, code: str = "bad_request") -> bytes:
    """The error body both protocols use: ``{"error": message, "code": code}``."""
    return _dumps({"error": message, "code": code})


# --- helpers ------------------------------------------------------------------------------------------------

def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ProtocolError(f"invalid JSON: {exc}") from None


def _dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def _jsonable(values: Any) -> Any:
    """Predictions as JSON values (lists of Python scalars)."""
    if isinstance(values, np.ndarray):
        if values.dtype.kind == "M":
            return values.astype(str).tolist()
        if values.dtype.kind == "O":
            return [_scalar(v) for v in values.tolist()] if values.ndim == 1 else \
                [_jsonable(np.asarray(row)) for row in values]
        return values.tolist()
    if isinstance(values, Sequence) and not isinstance(values, str | bytes):
        return [_jsonable(v) for v in values]
    return _scalar(values)


def _scalar(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return value


def _json_kind(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean",
            type(None): "null"}.get(type(value), "a number")


def _kind_name(array: np.ndarray) -> str:
    return {"b": "booleans", "i": "integers", "u": "integers", "f": "floats", "U": "strings",
            "S": "strings"}.get(array.dtype.kind, "mixed values")
