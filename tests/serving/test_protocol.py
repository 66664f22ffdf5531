"""The gateway's wire formats: MLflow scoring payloads and OIP v2 tensors (JSON and binary), decoded
to tables and encoded back, with the 400/415 errors a client sees for each malformed request."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dsops.serving.protocol import (
    ProtocolError,
    datatype_of,
    decode_infer,
    decode_mlflow,
    encode_infer,
    encode_mlflow,
)

JSON = "application/json"


def _mlflow(payload: object, content_type: str = JSON) -> object:
    return decode_mlflow(json.dumps(payload).encode(), content_type)


# --- MLflow ------------------------------------------------------------------------------------------------

def test_the_four_mlflow_json_shapes_and_csv() -> None:
    split = _mlflow({"dataframe_split": {"columns": ["a", "b"], "data": [[1, 2], [3, 4]]}})
    assert (split.kind, split.names, split.rows, split.data) == ("rows", ["a", "b"], 2, [[1, 2], [3, 4]])
    records = _mlflow({"dataframe_records": [{"a": 1, "b": 2}, {"a": 3, "b": 4}]})
    assert (records.kind, records.rows) == ("records", 2)
    instances = _mlflow({"instances": [{"a": "s1", "b": 1}, {"a": "s2", "b": 2}]})
    assert (instances.kind, instances.rows) == ("records", 2)
    inputs = _mlflow({"inputs": {"a": ["s1", "s2", "s3"], "b": [1, 2, 3]}, "params": {"top_k": 2}})
    assert (inputs.kind, inputs.rows, inputs.names, inputs.params) == ("columns", 3, ["a", "b"], {"top_k": 2})
    tensor = _mlflow({"inputs": [[1, 2], [3, 4], [5, 6]]})
    assert (tensor.kind, tensor.rows) == ("rows", 3)
    csv = decode_mlflow(b"a,b\n1,2\n3,\n", "text/csv; charset=utf-8")
    assert (csv.kind, csv.names, csv.data, csv.text) == ("rows", ["a", "b"], [["1", "2"], ["3", ""]], True)


@pytest.mark.parametrize(("body", "content_type", "status", "message"), [
    (b"{}", "text/plain", 415, "unsupported content type 'text/plain'"),
    (b"{}", None, 415, "unsupported content type 'none'"),
    (b'{"dataframe_split": ', JSON, 400, "invalid JSON"),
    (b'[1, 2]', JSON, 400, "must be an object"),
    (b'{"dataframe_split": {"columns": ["a"], "data": [[1]]}, "instances": [[1]]}', JSON, 400,
     "exactly one of dataframe_split, dataframe_records, instances, inputs; "
     "got dataframe_split and instances"),
    (b'{"data": [[1]]}', JSON, 400, "exactly one of"),
    (b'{"inputs": [[1]], "extra": 1}', JSON, 400, "unknown key extra"),
    (b'{"dataframe_split": {"columns": ["a", "b"], "data": [[1]]}}', JSON, 400,
     "data[0]' has 1 values for 2"),
    (b'{"dataframe_records": [1, 2]}', JSON, 400, "must be a list of objects"),
    (b'{"inputs": {"a": [1, 2], "b": [1]}}', JSON, 400, "different lengths"),
    (b'{"inputs": [[1]], "params": [1]}', JSON, 400, "'params' must be an object"),
    (b"", "text/csv", 400, "the CSV body is empty"),
    (b"a,b\n1,2,3\n", "text/csv", 400, "CSV line 2 has 3 fields for 2 columns"),
])
def test_bad_mlflow_payloads(body: bytes, content_type: str | None, status: int, message: str) -> None:
    with pytest.raises(ProtocolError, match=None) as caught:
        decode_mlflow(body, content_type)
    assert caught.value.http_status == status
    assert message in caught.value.message


def test_mlflow_response() -> None:
    assert json.loads(encode_mlflow(np.array([0, 1]))) == {"predictions": [0, 1]}
    assert json.loads(encode_mlflow(np.array(["yes", "no"], dtype=object))) == {"predictions": ["yes", "no"]}


# --- OIP v2 ------------------------------------------------------------------------------------------------

def _infer(payload: object) -> object:
    return decode_infer(json.dumps(payload).encode())


def test_named_tensors_become_columns_and_one_2d_tensor_stays_an_array() -> None:
    request = _infer({"id": "r1", "parameters": {"p": 1}, "outputs": [{"name": "predict_proba"}], "inputs": [
        {"name": "a", "shape": [2], "datatype": "FP32", "data": [1.5, 2.5]},
        {"name": "b", "shape": [2, 1], "datatype": "INT64", "data": [[1], [2]]},
        {"name": "c", "shape": [2], "datatype": "BYTES", "data": ["x", "y"]},
    ]})
    assert (request.id, request.parameters, request.outputs) == ("r1", {"p": 1}, ["predict_proba"])
    table = request.table
    assert (table.kind, table.rows, table.names) == ("columns", 2, ["a", "b", "c"])
    assert table.data["a"].dtype == np.float32 and table.data["b"].tolist() == [1, 2]
    assert table.data["c"].tolist() == ["x", "y"]
    flat = _infer({"inputs": [{"name": "x", "shape": [2, 3], "datatype": "FP64",
                               "data": [1, 2, 3, 4, 5, 6]}]})
    nested = _infer({"inputs": [{"name": "x", "shape": [2, 3], "datatype": "FP64",
                                 "data": [[1, 2, 3], [4, 5, 6]]}]})
    assert flat.table.kind == nested.table.kind == "tensor"
    np.testing.assert_array_equal(flat.table.data, nested.table.data)
    assert flat.table.data.shape == (2, 3) and flat.table.rows == 2


@pytest.mark.parametrize(("tensor", "message"), [
    ({"name": "a", "shape": [3], "datatype": "FP64", "data": [1, 2]},
     "input 'a' has 2 values; shape [3] needs 3"),
    ({"name": "a", "shape": [2], "datatype": "INT64", "data": [1.5, 2]},
     "declared INT64 but its data holds floats"),
    ({"name": "a", "shape": [1], "datatype": "FP64", "data": ["x"]},
     "declared FP64 but its data holds strings"),
    ({"name": "a", "shape": [1], "datatype": "FLOAT", "data": [1]}, "datatype 'FLOAT'; use one of BOOL"),
    ({"name": "a", "shape": "2", "datatype": "FP64", "data": [1, 2]}, "needs 'shape'"),
    ({"shape": [1], "datatype": "FP64", "data": [1]}, "inputs[0] needs a 'name'"),
    ({"name": "a", "shape": [2], "datatype": "FP64", "data": [[1], [2, 3]]}, "ragged"),
    ({"name": "a", "shape": [1], "datatype": "FP64"}, "has no 'data'"),
])
def test_bad_tensors(tensor: dict[str, object], message: str) -> None:
    with pytest.raises(ProtocolError) as caught:
        _infer({"inputs": [tensor]})
    assert caught.value.http_status == 400
    assert message in caught.value.message


def test_bad_infer_requests() -> None:
    with pytest.raises(ProtocolError, match="needs 'inputs'"):
        _infer({"inputs": []})
    with pytest.raises(ProtocolError, match="different numbers of rows"):
        _infer({"inputs": [{"name": "a", "shape": [2], "datatype": "FP64", "data": [1, 2]},
                           {"name": "b", "shape": [1], "datatype": "FP64", "data": [1]}]})
    with pytest.raises(ProtocolError, match=r"input 'b' has shape \[2, 2\]"):
        _infer({"inputs": [{"name": "a", "shape": [2], "datatype": "FP64", "data": [1, 2]},
                           {"name": "b", "shape": [2, 2], "datatype": "FP64", "data": [1, 2, 3, 4]}]})
    with pytest.raises(ProtocolError, match="given twice"):
        _infer({"inputs": [{"name": "a", "shape": [1], "datatype": "FP64", "data": [1]}] * 2})
    with pytest.raises(ProtocolError, match="invalid JSON"):
        decode_infer(b"{nope")


def test_binary_tensor_extension_round_trips() -> None:
    """tritonclient's default: JSON header, then raw little-endian tensors (BYTES length-prefixed)."""
    values = np.array([[1.0, 2.0], [3.0, 4.0]], dtype=np.float32)
    words = [b"ab", b"c"]
    raw_words = b"".join(len(w).to_bytes(4, "little") + w for w in words)
    header = json.dumps({"inputs": [
        {"name": "x", "shape": [2, 2], "datatype": "FP32", "parameters": {"binary_data_size": 16}},
    ]}).encode()
    request = decode_infer(header + values.tobytes(), str(len(header)))
    np.testing.assert_array_equal(request.table.data, values)
    header = json.dumps({"inputs": [
        {"name": "w", "shape": [2], "datatype": "BYTES", "parameters": {"binary_data_size": len(raw_words)}},
    ], "outputs": [{"name": "predict", "parameters": {"binary_data": True}}]}).encode()
    request = decode_infer(header + raw_words, str(len(header)))
    assert request.table.data["w"].tolist() == ["ab", "c"] and request.binary_outputs == {"predict"}
    with pytest.raises(ProtocolError, match="exceeds the body"):
        decode_infer(header, str(len(header) + 1))

    body, length = encode_infer("m", "1", "r", {"predict": np.array([1.5, 2.5])}, {"predict"})
    assert length is not None
    head = json.loads(body[:length])
    assert head["outputs"][0]["parameters"] == {"binary_data_size": 16}
    np.testing.assert_array_equal(np.frombuffer(body[length:], dtype="<f8"), [1.5, 2.5])


def test_infer_response_and_datatypes() -> None:
    body, length = encode_infer("m", "2", "r1", {"predict": np.array([0, 1]),
                                                 "predict_proba": np.array([[0.9, 0.1], [0.2, 0.8]])})
    assert length is None
    assert json.loads(body) == {"model_name": "m", "model_version": "2", "id": "r1", "outputs": [
        {"name": "predict", "datatype": "INT64", "shape": [2], "data": [0, 1]},
        {"name": "predict_proba", "datatype": "FP64", "shape": [2, 2], "data": [0.9, 0.1, 0.2, 0.8]}]}
    assert [datatype_of(np.array([], dtype=t)) for t in ("bool", "uint8", "int32", "float16", "float32")] == \
        ["BOOL", "UINT8", "INT32", "FP16", "FP32"]
    assert datatype_of(np.array(["a"])) == datatype_of(np.array([None], dtype=object)) == "BYTES"
