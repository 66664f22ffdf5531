"""Signatures: inference from tables and arrays, JSON round trips, and enforcement on inputs."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

from dsops.core.errors import UsageError
from dsops.registry.signature import ColumnSpec, Signature, TensorSpec, enforce, infer_signature


@pytest.fixture
def frame() -> pd.DataFrame:
    return pd.DataFrame({
        "age": [31, 45, 27],
        "income": [52000.0, None, 61000.5],
        "city": ["Lyon", "Porto", "Graz"],
        "member": [True, False, True],
        "joined": pd.to_datetime(["2020-01-05", "2021-03-01", "2019-11-30"]),
        "plan": pd.Categorical(["a", "b", "a"]),
    })


EXPECTED = (
    ColumnSpec("age", "int"),
    ColumnSpec("income", "float", nullable=True),
    ColumnSpec("city", "str"),
    ColumnSpec("member", "bool"),
    ColumnSpec("joined", "datetime"),
    ColumnSpec("plan", "str"),
)


def test_infer_from_pandas(frame):
    signature = infer_signature(frame, np.array([0, 1, 1]))
    assert signature.inputs == EXPECTED
    assert signature.outputs == TensorSpec("int64", (-1,))
    assert signature.input_names == ["age", "income", "city", "member", "joined", "plan"]


def test_infer_from_polars_and_pyarrow_match_pandas(frame):
    assert infer_signature(pl.from_pandas(frame)).inputs == EXPECTED
    assert infer_signature(pa.Table.from_pandas(frame, preserve_index=False)).inputs == EXPECTED


def test_infer_from_a_dict_of_lists():
    given = {"n": [1, 2], "x": [1, 2.5], "s": ["a", None], "d": [dt.date(2020, 1, 1)] * 2}
    signature = infer_signature(given)
    assert signature.inputs == (ColumnSpec("n", "int"), ColumnSpec("x", "float"),
                                ColumnSpec("s", "str", nullable=True), ColumnSpec("d", "datetime"))


def test_infer_from_arrays_gives_tensors():
    signature = infer_signature(np.zeros((5, 4)), np.zeros((5, 2), dtype=np.float32))
    assert signature.to_dict() == {
        "inputs": {"kind": "tensor", "dtype": "float64", "shape": [-1, 4]},
        "outputs": {"kind": "tensor", "dtype": "float32", "shape": [-1, 2]},
    }


def test_infer_outputs_from_a_series():
    signature = infer_signature({"a": [1.0]}, pd.Series([0.5], name="score"))
    assert signature.outputs == (ColumnSpec("score", "float"),)


def test_infer_refuses_mixed_and_unsupported_columns():
    with pytest.raises(UsageError, match=r"column 'x' has type mixed \(int, str\)"):
        infer_signature({"x": [1, "a"]})
    with pytest.raises(UsageError, match="column 'c' has type complex128"):
        infer_signature(pd.DataFrame({"c": [1j]}))
    with pytest.raises(UsageError, match="cannot infer a signature for inputs from str"):
        infer_signature("age")


def test_to_dict_is_json_and_round_trips(frame):
    signature = infer_signature(frame, pd.Series([1, 0, 1], name="churn"))
    data = json.loads(json.dumps(signature.to_dict()))
    assert Signature.from_dict(data) == signature
    assert data["inputs"]["columns"][1] == {"name": "income", "type": "float", "nullable": True}
    with pytest.raises(UsageError, match="malformed signature"):
        Signature.from_dict({"inputs": {"kind": "columns", "columns": [{"name": "a", "type": "decimal"}]}})


@pytest.fixture
def signature() -> Signature:
    return Signature((ColumnSpec("age", "int"), ColumnSpec("income", "float"), ColumnSpec("city", "str")))


def test_missing_column_is_named_with_the_expected_columns(signature):
    with pytest.raises(UsageError) as error:
        enforce(signature, {"age": [1], "city": ["x"]})
    assert error.value.message == "missing input column 'income' (expected columns: age, income, city)"


def test_missing_column_suggests_a_misspelt_one(signature):
    with pytest.raises(UsageError, match="is 'incme' a misspelling of 'income'"):
        enforce(signature, pd.DataFrame({"age": [1], "incme": [2.0], "city": ["x"]}))


def test_wrong_types_are_named(signature):
    with pytest.raises(UsageError) as error:
        enforce(signature, {"age": ["31"], "income": [1.0], "city": [3]})
    assert error.value.message == ("column 'age' has type str, expected int; "
                                   "column 'city' has type int, expected str")
    with pytest.raises(UsageError, match="column 'age' has type str, expected int"):
        enforce(signature, pd.DataFrame({"age": ["31"], "income": [1.0], "city": ["x"]}))
    with pytest.raises(UsageError, match=r"column 'income' has mixed types \(float, str\), expected float"):
        enforce(signature, {"age": [1, 2], "income": [1.5, "a"], "city": ["x", "y"]})


def test_columns_come_back_in_signature_order_without_extras(signature):
    given = pd.DataFrame({"city": ["x", "y"], "extra": [0, 0], "income": [1.5, 2.5], "age": [3, 4]})
    out = enforce(signature, given)
    assert list(out.columns) == ["age", "income", "city"]
    pd.testing.assert_frame_equal(out, given[["age", "income", "city"]])

    out = enforce(signature, {"city": ["x"], "extra": [0], "income": [1.5], "age": [3]})
    assert list(out) == ["age", "income", "city"]
    assert out["age"].dtype == np.int64 and out["city"].tolist() == ["x"]


def test_int_feeds_float_and_integral_float_feeds_int(signature):
    given = {"age": [30.0, 41.0], "income": [50000, 60000], "city": ["x", "y"]}
    out = enforce(signature, pd.DataFrame(given))
    assert out["age"].dtype == np.int64 and out["income"].dtype == np.float64
    out = signature.enforce(given)
    assert out["age"].dtype == np.int64 and out["income"].dtype == np.float64
    np.testing.assert_array_equal(out["age"], [30, 41])

    for given in ({"age": [30.5], "income": [1.0], "city": ["x"]},
                  pd.DataFrame({"age": [30.5], "income": [1.0], "city": ["x"]})):
        with pytest.raises(UsageError, match="column 'age' has non-integral values, expected int"):
            enforce(signature, given)


def test_missing_values_pass_through(signature):
    out = enforce(signature, {"age": [1, None], "income": [None, 2.0], "city": ["x", None]})
    np.testing.assert_array_equal(out["age"], [1.0, np.nan])
    np.testing.assert_array_equal(out["income"], [np.nan, 2.0])
    assert out["city"].tolist() == ["x", None]


def test_iso_strings_feed_datetime_columns():
    signature = Signature((ColumnSpec("joined", "datetime"),))
    out = enforce(signature, {"joined": ["2020-01-05", "2021-03-01T10:00:00"]})
    assert out["joined"].dtype.kind == "M"
    out = enforce(signature, pd.DataFrame({"joined": ["2020-01-05", "2021-03-01"]}))
    assert out["joined"].dtype.kind == "M"
    with pytest.raises(UsageError, match="column 'joined' cannot be read as datetime"):
        enforce(signature, {"joined": ["last tuesday"]})


def test_polars_input_gives_arrays(signature):
    out = enforce(signature, pl.DataFrame({"city": ["x"], "age": [3], "income": [1]}))
    assert list(out) == ["age", "income", "city"] and out["income"].dtype == np.float64


def test_check_columns_compares_declared_types(signature):
    signature.check_columns({"age": "int", "income": "int", "city": "str", "other": "bool"})
    with pytest.raises(UsageError, match="column 'income' has type str, expected float"):
        signature.check_columns({"age": "int", "income": "str", "city": "str"})
    with pytest.raises(UsageError, match="missing input column 'city'"):
        signature.check_columns({"age": "int", "income": "float"})


def test_a_column_signature_refuses_a_bare_array(signature):
    with pytest.raises(UsageError, match=r"the model takes named columns \(age, income, city\)"):
        enforce(signature, np.zeros((1, 3)))


def test_tensor_signatures_check_shape_and_dtype():
    signature = infer_signature(np.zeros((2, 3)))
    out = enforce(signature, [[1, 2, 3]])
    assert out.dtype == np.float64 and out.shape == (1, 3)
    with pytest.raises(UsageError, match=r"input has shape \[1, 2\], expected \[-1, 3\]"):
        enforce(signature, np.zeros((1, 2)))
    with pytest.raises(UsageError, match="input has dtype <U1, expected float64"):
        enforce(signature, np.array([["a", "b", "c"]]))
