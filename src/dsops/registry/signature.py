"""Model signatures: the input and output columns (or tensor) a model expects, inferred from training
data and enforced on prediction inputs.

Column types use a small vocabulary: ``int``, ``float``, ``bool``, ``str``, ``datetime``. Enforcement
rules (documented once, here):

- every signature column must be present; extra columns are allowed and dropped;
- columns come back in signature order, converted: an ``int`` column feeds a ``float`` input (cast to
  float64); a ``float`` column feeds an ``int`` input only when every value is integral (cast to int64);
  an ISO ``str`` column feeds a ``datetime`` input (parsed); anything else (a ``str`` where a number is
  expected, mixed types) is a ``UsageError`` naming the column;
- missing values are passed through (NaN for numbers, None for str/bool, NaT for datetimes): whether
  the model copes with them is the model's business, ``nullable`` records what training saw.
"""

from __future__ import annotations

import datetime as _dt
import difflib
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from dsops.core.errors import UsageError

COLUMN_TYPES = ("int", "float", "bool", "str", "datetime")
# Input type → the column types that may feed it. A float column feeds an int input only when its values
# are integral (checked by `enforce`); "null" is a column whose values are all missing.
_ACCEPTS = {
    "int": {"int", "float", "null"},
    "float": {"int", "float", "null"},
    "bool": {"bool", "null"},
    "str": {"str", "null"},
    "datetime": {"datetime", "str", "null"},
}
_KIND_TYPES = {"i": "int", "u": "int", "f": "float", "b": "bool", "U": "str", "S": "str", "M": "datetime"}


@dataclass(frozen=True)
class ColumnSpec:
    """One named column: its type in the signature vocabulary and whether training saw missing values."""

    name: str
    type: str
    nullable: bool = False


@dataclass(frozen=True)
class TensorSpec:
    """An unnamed array: its NumPy dtype name and shape, -1 for a dimension of any size."""

    dtype: str
    shape: tuple[int, ...]


Spec = tuple[ColumnSpec, ...] | TensorSpec


@dataclass(frozen=True)
class Signature:
    """What a model takes and returns; stored with each model version as ``to_dict()``."""

    inputs: Spec
    outputs: Spec | None = None

    @property
    def input_names(self) -> list[str]:
        """The input column names in order (empty for a tensor signature)."""
        return [] if isinstance(self.inputs, TensorSpec) else [c.name for c in self.inputs]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable form, read back by `from_dict`."""
        return {"inputs": _spec_to_dict(self.inputs),
                "outputs": None if self.outputs is None else _spec_to_dict(self.outputs)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Signature:
        """The signature `to_dict` wrote; `UsageError` when malformed."""
        try:
            outputs = data.get("outputs")
            return cls(_spec_from_dict(data["inputs"]), None if outputs is None else _spec_from_dict(outputs))
        except (KeyError, TypeError, ValueError) as exc:
            raise UsageError(f"malformed signature {dict(data)!r}: {exc}") from exc

    def check_columns(self, columns: Mapping[str, str]) -> None:
        """Check column names → types against the inputs: every input present, each type compatible."""
        if isinstance(self.inputs, TensorSpec):
            raise UsageError(f"the model takes an array of shape {list(self.inputs.shape)}, not columns")
        _check(self.inputs, columns)

    def enforce(self, X: Any) -> Any:
        """`enforce(self, X)`: the inputs of X the model takes, checked, converted and in order."""
        return enforce(self, X)


def infer_signature(inputs: Any, outputs: Any | None = None) -> Signature:
    """The signature of a model trained on `inputs` (and predicting `outputs`, when given).

    Tables (pandas, polars, pyarrow, dict of column → values) give column specs; arrays give a tensor spec.
    """
    output_spec = None if outputs is None else _infer_spec(outputs, "outputs")
    return Signature(_infer_spec(inputs, "inputs"), output_spec)


def enforce(signature: Signature, X: Any) -> Any:
    """The inputs of X the model takes, checked against `signature`, converted and in signature order.

    A pandas DataFrame gives a DataFrame with exactly the signature columns; a dict of column → values
    (or a polars DataFrame / pyarrow Table) gives a dict of column → NumPy array; a tensor signature gives
    an array. Raises `UsageError` naming the missing or mistyped columns.
    """
    if isinstance(signature.inputs, TensorSpec):
        return _enforce_tensor(signature.inputs, X)
    specs = signature.inputs
    library = _library(X)
    if library == "pandas" and hasattr(X, "columns"):
        return _enforce_pandas(specs, X)
    if library in ("polars", "pyarrow") and hasattr(X, "schema"):
        available = list(X.columns if library == "polars" else X.column_names)
        wanted = {c.name for c in specs}
        return _enforce_mapping(specs, {n: X[n].to_numpy() for n in available if n in wanted}, available)
    if isinstance(X, Mapping):
        return _enforce_mapping(specs, X, X.keys())
    names = ", ".join(c.name for c in specs)
    raise UsageError(f"the model takes named columns ({names}); got {_type_name(X)}",
                     hint="pass a DataFrame or a dict of column → values")


# --- inference -------------------------------------------------------------------------------------------

def _infer_spec(data: Any, what: str) -> Spec:
    library = _library(data)
    if library == "pandas" and hasattr(data, "columns"):
        return tuple(_pandas_column(str(name), data[name]) for name in data.columns)
    if library == "pandas" and hasattr(data, "dtype"):
        return (_pandas_column(_series_name(data.name), data),)
    if library == "polars" and hasattr(data, "schema"):
        return tuple(_polars_column(name, data[name]) for name in data.columns)
    if library == "polars" and hasattr(data, "dtype"):
        return (_polars_column(_series_name(data.name), data),)
    if library == "pyarrow" and hasattr(data, "schema"):
        return tuple(_arrow_column(name, data.column(name)) for name in data.column_names)
    if isinstance(data, Mapping):
        return tuple(_values_column(str(name), values) for name, values in data.items())
    if isinstance(data, np.ndarray | list | tuple):
        array = np.asarray(data)
        if array.ndim == 0:
            raise UsageError(f"cannot infer a signature for {what} from a scalar")
        return TensorSpec(str(array.dtype), (-1, *array.shape[1:]))
    raise UsageError(f"cannot infer a signature for {what} from {_type_name(data)}",
                     hint="pass a pandas or polars DataFrame, a pyarrow Table, an array or a dict of lists")


def _pandas_column(name: str, series: Any) -> ColumnSpec:
    given = _pandas_type(series)
    if given == "null":
        given = "float"  # an all-missing column: pandas' own reading of it
    _require_known(name, given)
    return ColumnSpec(name, given, bool(series.isna().any()))


def _polars_column(name: str, series: Any) -> ColumnSpec:
    import polars as pl

    dtype = series.dtype
    base = dtype.base_type()
    if dtype.is_integer():
        given = "int"
    elif dtype.is_float():
        given = "float"
    elif base == pl.Boolean:
        given = "bool"
    elif base in (pl.String, pl.Categorical, pl.Enum):
        given = "str"
    elif base in (pl.Datetime, pl.Date):
        given = "datetime"
    else:
        given = str(dtype)
    _require_known(name, given)
    return ColumnSpec(name, given, series.null_count() > 0)


def _arrow_column(name: str, column: Any) -> ColumnSpec:
    import pyarrow as pa

    dtype = column.type
    if pa.types.is_dictionary(dtype):
        dtype = dtype.value_type
    if pa.types.is_integer(dtype):
        given = "int"
    elif pa.types.is_floating(dtype):
        given = "float"
    elif pa.types.is_boolean(dtype):
        given = "bool"
    elif pa.types.is_string(dtype) or pa.types.is_large_string(dtype) or pa.types.is_string_view(dtype):
        given = "str"
    elif pa.types.is_timestamp(dtype) or pa.types.is_date(dtype):
        given = "datetime"
    else:
        given = str(dtype)
    _require_known(name, given)
    return ColumnSpec(name, given, column.null_count > 0)


def _values_column(name: str, values: Any) -> ColumnSpec:
    given, nulls = _values_type(values)
    if given == "null":
        given = "float"
    _require_known(name, given)
    return ColumnSpec(name, given, nulls)


def _require_known(name: str, given: str) -> None:
    if given not in COLUMN_TYPES:
        raise UsageError(f"column {name!r} has type {given}: a signature supports {', '.join(COLUMN_TYPES)}")


def _series_name(name: Any) -> str:
    return name if isinstance(name, str) and name else "prediction"


# --- column typing ---------------------------------------------------------------------------------------

def _pandas_type(series: Any) -> str:
    """The vocabulary type of a pandas Series, from its dtype; object columns are typed by their values."""
    dtype = series.dtype
    if type(dtype).__name__ == "CategoricalDtype":
        return _pandas_type(dtype.categories.to_series())
    if type(dtype).__name__ == "StringDtype":
        return "str"
    if dtype.kind in _KIND_TYPES:
        return _KIND_TYPES[dtype.kind]
    if dtype.kind == "O":
        return _values_type(series.to_numpy())[0]
    return str(dtype)


def _values_type(values: Any) -> tuple[str, bool]:
    """(type, has missing values) of an array or sequence; type "null" when every value is missing."""
    if isinstance(values, np.ndarray) and values.dtype.kind != "O":
        given = _KIND_TYPES.get(values.dtype.kind, str(values.dtype))
        nulls = bool(np.isnan(values).any()) if given == "float" else False
        if given == "datetime":
            nulls = bool(np.isnat(values).any())
        return given, nulls
    if not isinstance(values, np.ndarray | Sequence) or isinstance(values, str | bytes):
        raise UsageError(f"column values must be a list or an array, not {_type_name(values)}")
    return _scalars_type(values)


def _scalars_type(values: Iterable[Any]) -> tuple[str, bool]:
    kinds: dict[str, list[type]] = {}
    nulls = False
    for kind in set(map(type, values)):
        name = _scalar_type(kind)
        if name == "null":
            nulls = True
        else:
            kinds.setdefault(name, []).append(kind)
    if "float" in kinds and len(kinds) > 1 and all(v != v for v in values if type(v) in kinds["float"]):
        del kinds["float"]  # NaN marks a missing value in an object column of another type
        nulls = True
    elif "float" in kinds and set(kinds) <= {"int", "float"} and not nulls:
        nulls = any(map(math.isnan, values))
    names = set(kinds)
    if not names:
        return "null", nulls
    if names == {"int", "float"}:
        return "float", nulls
    if len(names) == 1:
        return names.pop(), nulls
    return "mixed (" + ", ".join(sorted(names)) + ")", nulls


def _scalar_type(kind: type) -> str:
    if kind is type(None) or kind.__name__ in ("NaTType", "NAType"):
        return "null"
    if kind is bool or issubclass(kind, np.bool_):
        return "bool"
    if issubclass(kind, int | np.integer):
        return "int"
    if issubclass(kind, float | np.floating):
        return "float"
    if issubclass(kind, str):
        return "str"
    if issubclass(kind, _dt.date | np.datetime64):
        return "datetime"
    return kind.__name__


# --- checking and enforcing -------------------------------------------------------------------------------

def _check(specs: Sequence[ColumnSpec], given: Mapping[str, str], available: Iterable[str] = ()) -> None:
    """Raise for missing columns (suggesting near names from `available`) and for incompatible types."""
    expected = [c.name for c in specs]
    missing = [name for name in expected if name not in given]
    if missing:
        raise missing_columns_error(missing, expected, available)
    problems = [_type_problem(c.name, given[c.name], c.type)
                for c in specs if given[c.name] not in _ACCEPTS[c.type]]
    if problems:
        raise UsageError("; ".join(problems))


def missing_columns_error(
    missing: Sequence[str], expected: Sequence[str], given: Iterable[str]
) -> UsageError:
    """The error for absent input columns, pointing at a given column that looks misspelt."""
    plural = "s" if len(missing) > 1 else ""
    shown = ", ".join(expected[:12]) + (", …" if len(expected) > 12 else "")
    listed = ", ".join(repr(m) for m in missing)
    message = f"missing input column{plural} {listed} (expected columns: {shown})"
    known = set(expected)
    extra = [str(g) for g in given if g not in known]
    for name in missing:
        close = difflib.get_close_matches(name, extra, n=1, cutoff=0.6)
        if close:
            return UsageError(f"{message}; is {close[0]!r} a misspelling of {name!r}?")
    return UsageError(message)


def _type_problem(name: str, given: str, expected: str) -> str:
    if given.startswith("mixed"):
        return f"column {name!r} has {given.replace('mixed', 'mixed types')}, expected {expected}"
    return f"column {name!r} has type {given}, expected {expected}"


def _enforce_mapping(
    specs: Sequence[ColumnSpec], X: Mapping[str, Any], available: Iterable[str]
) -> dict[str, np.ndarray]:
    typed = {c.name: _values_type(X[c.name]) for c in specs if c.name in X}
    _check(specs, {name: kind for name, (kind, _) in typed.items()}, available)
    out: dict[str, np.ndarray] = {}
    problems: list[str] = []
    for spec in specs:
        kind, nulls = typed[spec.name]
        try:
            out[spec.name] = _convert(X[spec.name], kind, nulls, spec.type)
        except ValueError as exc:
            problems.append(f"column {spec.name!r} {exc}")
    if problems:
        raise UsageError("; ".join(problems))
    return out


def _convert(values: Any, given: str, nulls: bool, expected: str) -> np.ndarray:
    """`values` (of type `given`) as the array an `expected` input takes; ValueError says what is wrong."""
    if isinstance(values, np.ndarray) and values.dtype.kind not in "Of" and given == expected:
        return values
    try:
        if expected == "float":
            return np.asarray(values, dtype=np.float64)  # None → NaN
        if expected == "int":
            if given == "int" and not nulls:
                return values if isinstance(values, np.ndarray) and values.dtype.kind in "iu" \
                    else np.asarray(values, dtype=np.int64)
            array = np.asarray(values, dtype=np.float64)  # missing ints become NaN, as pandas reads them
            present = array[~np.isnan(array)]
            if not np.all(present % 1 == 0):
                raise ValueError("has non-integral values, expected int")
            return array if nulls or present.size < array.size else array.astype(np.int64)
        if expected == "datetime":
            return np.asarray(values, dtype="datetime64[ns]")
        if expected == "bool" and not nulls:
            return np.asarray(values, dtype=bool)
        return np.asarray(values, dtype=object)
    except (TypeError, OverflowError) as exc:
        raise ValueError(f"cannot be read as {expected}: {exc}") from exc
    except ValueError as exc:
        if str(exc).startswith("has non-integral"):
            raise
        raise ValueError(f"cannot be read as {expected}: {exc}") from exc


def _enforce_pandas(specs: Sequence[ColumnSpec], X: Any) -> Any:
    given = {c.name: _pandas_type(X[c.name]) for c in specs if c.name in X.columns}
    _check(specs, given, X.columns)
    out = X[[c.name for c in specs]].copy(deep=False)
    problems: list[str] = []
    for spec in specs:
        column, kind = out[spec.name], given[spec.name]
        if spec.type == "float" and kind == "int":
            out[spec.name] = column.astype("float64")
        elif spec.type == "int" and kind == "float":
            values = column.to_numpy(dtype=np.float64, na_value=np.nan)
            if not np.all(values[~np.isnan(values)] % 1 == 0):
                problems.append(f"column {spec.name!r} has non-integral values, expected int")
            elif not np.isnan(values).any():
                out[spec.name] = column.astype("int64")
        elif spec.type == "datetime" and kind == "str":
            import pandas as pd

            try:
                out[spec.name] = pd.to_datetime(column)
            except (ValueError, TypeError) as exc:
                problems.append(f"column {spec.name!r} cannot be read as datetime: {exc}")
    if problems:
        raise UsageError("; ".join(problems))
    return out


def _enforce_tensor(spec: TensorSpec, X: Any) -> np.ndarray:
    if _library(X) in ("pandas", "polars") and hasattr(X, "columns"):
        X = X.to_numpy()
    elif isinstance(X, Mapping):
        raise UsageError(f"the model takes an array of shape {list(spec.shape)}, not named columns")
    array = np.asarray(X)
    expected = np.dtype(spec.dtype)
    fixed = [(i, d) for i, d in enumerate(spec.shape) if d != -1]
    if array.ndim != len(spec.shape) or any(array.shape[i] != d for i, d in fixed):
        raise UsageError(f"input has shape {list(array.shape)}, expected {list(spec.shape)} (-1: any size)")
    if array.dtype == expected:
        return array
    if array.dtype.kind in "OUS" or not np.can_cast(array.dtype, expected, casting="same_kind"):
        raise UsageError(f"input has dtype {array.dtype}, expected {expected}")
    return array.astype(expected)


# --- (de)serialisation and small helpers -------------------------------------------------------------------

def _spec_to_dict(spec: Spec) -> dict[str, Any]:
    if isinstance(spec, TensorSpec):
        return {"kind": "tensor", "dtype": spec.dtype, "shape": list(spec.shape)}
    return {"kind": "columns",
            "columns": [{"name": c.name, "type": c.type, "nullable": c.nullable} for c in spec]}


def _spec_from_dict(data: Mapping[str, Any]) -> Spec:
    if data["kind"] == "tensor":
        return TensorSpec(str(data["dtype"]), tuple(int(d) for d in data["shape"]))
    if data["kind"] != "columns":
        raise ValueError(f"unknown kind {data['kind']!r}")
    specs = tuple(ColumnSpec(str(c["name"]), str(c["type"]), bool(c.get("nullable", False)))
                  for c in data["columns"])
    for spec in specs:
        if spec.type not in COLUMN_TYPES:
            raise ValueError(f"column {spec.name!r} has unknown type {spec.type!r}")
    return specs


def _library(obj: Any) -> str:
    return type(obj).__module__.partition(".")[0]


def _type_name(obj: Any) -> str:
    kind = type(obj)
    return kind.__qualname__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"
