"""Loaded model versions and the fast predict path.

A `ModelRuntime` is one model version loaded once per process. It checks a request's rows
against the signature *once* (names, types, integrality) and turns them into what the model
eats: for a scikit-learn model over numeric columns, one float64 matrix in training column
order, fed to the estimator directly (``RegisteredModel.raw``) — no pandas per request; a
batch of requests is one ``predict`` call. Other models get checked columns and go through
``RegisteredModel.predict``.
"""

from __future__ import annotations

import logging
import re
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from dsops.core.errors import DsopsError, UsageError
from dsops.serving.protocol import Table, datatype_of

log = logging.getLogger("dsops.serving")
MATRIX_TYPES = frozenset({"int", "float", "bool"})
_TRUE = {"true", "1", "yes", "t"}
_FALSE = {"false", "0", "no", "f", ""}
_SIGNATURE_DATATYPES = {"int": "INT64", "float": "FP64", "bool": "BOOL", "str": "BYTES", "datetime": "BYTES"}
# Classifiers whose predict is classes_[argmax(predict_proba)] (ties included): for them one
# predict_proba call gives both outputs — scikit-learn's input validation is most of a small
# predict's cost (~100 µs of a 1-row call), so this halves it. SVC is absent on purpose: its
# Platt-scaled probabilities may disagree with its predict.
ARGMAX_CLASSIFIERS = frozenset({
    "LogisticRegression", "LogisticRegressionCV", "RandomForestClassifier", "ExtraTreesClassifier",
    "DecisionTreeClassifier", "ExtraTreeClassifier", "GradientBoostingClassifier",
    "HistGradientBoostingClassifier", "GaussianNB", "CalibratedClassifierCV", "MLPClassifier",
})
_filter_installed = threading.Lock()
_filtered = False


def _ignore_feature_name_warning() -> None:
    """scikit-learn warns when an estimator fitted on a DataFrame gets an array. The gateway has checked
    the column names and order itself, so the warning is noise; filtering it once per process measured
    ~50 µs cheaper per call than ``warnings.catch_warnings`` around each predict, and a DataFrame per
    batch costs ~0.9 ms more than the array (pandas 3, 20 columns)."""
    global _filtered
    with _filter_installed:
        if not _filtered:
            warnings.filterwarnings("ignore", message=re.escape("X does not have valid feature names"),
                                    category=UserWarning)
            _filtered = True


@dataclass
class Prediction:
    """What a model said for one request's rows: labels or values, and class probabilities."""

    predictions: np.ndarray
    proba: np.ndarray | None = None
    classes: np.ndarray | None = None

    def outputs(self) -> dict[str, np.ndarray]:
        """The OIP output tensors by name."""
        out = {"predict": self.predictions}
        if self.proba is not None:
            out["predict_proba"] = self.proba
        return out

    def scores(self) -> np.ndarray | None:
        """One score a row for the log: P(positive class) for two classes, else the top probability."""
        if self.proba is None:
            return None
        return self.proba[:, 1] if self.proba.shape[1] == 2 else self.proba.max(axis=1)


class ModelRuntime:
    """One model version, loaded once: its state, input plan and batched predict."""

    def __init__(self, model: str, version: int) -> None:
        self.model = model
        self.version = version
        self.state = "loading"  # loading | ready | failed
        self.error: str | None = None
        self.loaded_at: float | None = None
        self.registered: Any = None
        self.flavor: str | None = None
        self.mode = "columns"  # matrix | columns | tensor
        self.columns: list[str] = []  # the order the model takes its columns in
        self.types: dict[str, str] = {}
        self._int_positions: list[int] = []
        self._positions: dict[tuple[str, ...], np.ndarray | None] = {}
        self._predict: Callable[[Any], Any] | None = None
        self._predict_proba: Callable[[Any], Any] | None = None
        self._labels_from_proba = False
        self.classes: np.ndarray | None = None

    @property
    def ref(self) -> str:
        """``model@version``."""
        return f"{self.model}@{self.version}"

    @property
    def ready(self) -> bool:
        """True when the version loaded and can predict."""
        return self.state == "ready"

    @property
    def has_proba(self) -> bool:
        """True when the model gives class probabilities (the ``predict_proba`` output)."""
        return self._predict_proba is not None

    # --- loading ----------------------------------------------------------------------------------------

    def load(self, loader: Callable[[str], Any]) -> None:
        """Load the version with ``loader(ref)``; a failure is kept as this runtime's state, never raised."""
        try:
            self.attach(loader(self.ref))
        except Exception as exc:
            self.state = "failed"
            self.error = exc.message if isinstance(exc, DsopsError) else f"{type(exc).__name__}: {exc}"

    def attach(self, registered: Any) -> None:
        """Plan the fast path for a loaded ``RegisteredModel``."""
        from dsops.registry.signature import TensorSpec

        self.registered = registered
        self.flavor = registered.flavor
        raw = registered.raw
        signature = registered.signature
        classes = getattr(raw, "classes_", None)
        self.classes = np.asarray(classes) if classes is not None else None
        if signature is not None and isinstance(signature.inputs, TensorSpec):
            self.mode = "tensor"
        else:
            specs = {c.name: c.type for c in signature.inputs} if signature is not None else {}
            trained = getattr(raw, "feature_names_in_", None) if self.flavor == "sklearn" else None
            self.columns = [str(n) for n in trained] if trained is not None else list(specs)
            self.types = {n: specs.get(n, "float") for n in self.columns}
            numeric = all(t in MATRIX_TYPES for t in self.types.values())
            covers = signature is None or set(self.columns) >= set(specs)
            if self.flavor == "sklearn" and numeric and covers and _matrix_agrees(registered, self.columns):
                self.mode = "matrix"
                self._int_positions = [i for i, n in enumerate(self.columns) if self.types[n] == "int"]
                self._predict = raw.predict
                if callable(getattr(raw, "predict_proba", None)):
                    self._predict_proba = raw.predict_proba
                self._labels_from_proba = self._predict_proba is not None and self.classes is not None \
                    and _final_step_name(raw) in ARGMAX_CLASSIFIERS
                if trained is not None:
                    _ignore_feature_name_warning()
        if self._predict is None:
            self._predict = registered.predict
            self._predict_proba = getattr(registered, "predict_proba", None)
        self.state = "ready"
        self.loaded_at = time.time()

    # --- requests → model inputs --------------------------------------------------------------------------

    def prepare(self, table: Table) -> Any:
        """The request rows as this model's input, checked: `UsageError` names a missing or mistyped
        column."""
        if table.rows == 0:
            raise UsageError("the request has no rows")
        if self.mode == "matrix":
            return self._matrix(table)
        if self.mode == "tensor":
            return self._tensor(table)
        return self._column_inputs(table)

    def _matrix(self, table: Table) -> np.ndarray:
        k = len(self.columns)
        if table.kind == "rows" and not table.text:
            array = _numeric(table.data)
            if array is not None and array.ndim == 2:
                if table.names is None:
                    self._require_width(array.shape[1])
                else:
                    positions = self._positions_for(table.names)
                    if positions is not None:
                        array = array[:, positions]
                return self._checked_ints(array)
        elif table.kind == "records":
            try:
                rows = [[record[name] for name in self.columns] for record in table.data]
            except KeyError:
                rows = None
            array = _numeric(rows) if rows is not None else None
            if array is not None and array.ndim == 2:
                return self._checked_ints(array)
        elif table.kind == "columns" and all(n in table.data for n in self.columns):
            parts = [_numeric(table.data[n]) for n in self.columns]
            if all(p is not None and p.ndim == 1 for p in parts):
                return self._checked_ints(np.column_stack(parts))  # type: ignore[arg-type]
        elif table.kind == "tensor" and not table.text:
            array = _numeric(table.data)
            if array is not None and array.ndim == 2 and (table.names is None or table.names[0]
                                                          not in self.types):
                self._require_width(array.shape[1])
                return self._checked_ints(array)
        # The general path: per-column checks with precise errors, values converted, then stacked.
        columns = self._column_inputs(table)
        return np.column_stack([np.asarray(columns[n], dtype=np.float64) for n in self.columns]) if k \
            else np.empty((table.rows, 0))

    def _require_width(self, width: int) -> None:
        if width != len(self.columns):
            raise UsageError(f"rows have {width} values; {self.ref} takes {len(self.columns)} columns "
                             f"({_shown(self.columns)})")

    def _positions_for(self, names: Sequence[str]) -> np.ndarray | None:
        """Where each model column sits among the request's columns (None: already in order)."""
        key = tuple(names)
        if key in self._positions:
            return self._positions[key]
        where = {name: i for i, name in enumerate(names)}
        missing = [n for n in self.columns if n not in where]
        if missing:
            from dsops.registry.signature import missing_columns_error

            raise missing_columns_error(missing, self.columns, names)
        order = [where[n] for n in self.columns]
        positions = None if order == list(range(len(names))) else np.asarray(order)
        if len(self._positions) < 64:  # clients send a handful of column layouts; bound the cache anyway
            self._positions[key] = positions
        return positions

    def _checked_ints(self, array: np.ndarray) -> np.ndarray:
        if array.dtype.kind == "f" and self._int_positions:
            block = array[:, self._int_positions]
            bad = ~np.isnan(block) & (np.mod(block, 1) != 0)
            if bad.any():
                name = self.columns[self._int_positions[int(np.argmax(bad.any(axis=0)))]]
                raise UsageError(f"column {name!r} has non-integral values, expected int")
        return array if array.dtype == np.float64 else array.astype(np.float64)

    def _column_inputs(self, table: Table) -> dict[str, Any]:
        """Named columns checked against the signature (converted, in order) — the general path."""
        columns = _columns_of(table, self.columns)
        if table.text:
            columns = {n: _from_text(v, self.types.get(n, "str"), n) for n, v in columns.items()}
        signature = self.registered.signature if self.registered is not None else None
        if signature is None:
            if self.columns:
                missing = [n for n in self.columns if n not in columns]
                if missing:
                    from dsops.registry.signature import missing_columns_error

                    raise missing_columns_error(missing, self.columns, list(columns))
                return {n: np.asarray(columns[n]) for n in self.columns}
            return {n: np.asarray(v) for n, v in columns.items()}
        from dsops.registry.signature import enforce

        return dict(enforce(signature, columns))

    def _tensor(self, table: Table) -> np.ndarray:
        from dsops.registry.signature import enforce

        if table.kind == "columns":
            raise UsageError(f"{self.ref} takes one array, not named columns "
                             f"({_shown(list(table.data))}); send one tensor or a list of rows")
        data = table.data
        if table.kind == "records":
            raise UsageError(f"{self.ref} takes one array, not records")
        try:
            array = np.asarray(data, dtype=float) if table.text else np.asarray(data)
        except ValueError as exc:
            raise UsageError(f"the input cannot be read as an array: {exc}") from None
        return np.asarray(enforce(self.registered.signature, array))

    # --- predicting -------------------------------------------------------------------------------------

    def predict_batch(self, inputs: Sequence[Any], sizes: Sequence[int]) -> list[Prediction]:
        """Predict several requests' inputs in one call and split the result back per request."""
        assert self._predict is not None, f"{self.ref} is not loaded"
        merged = inputs[0] if len(inputs) == 1 else _concat(inputs)
        if self._labels_from_proba:
            assert self._predict_proba is not None and self.classes is not None
            proba = np.asarray(self._predict_proba(merged))
            predictions = self.classes[np.argmax(proba, axis=1)]
        else:
            predictions = np.asarray(self._predict(merged))
            proba = np.asarray(self._predict_proba(merged)) if self._predict_proba is not None else None
        if len(inputs) == 1:
            return [Prediction(predictions, proba, self.classes)]
        results = []
        start = 0
        for size in sizes:
            end = start + size
            results.append(Prediction(predictions[start:end],
                                      None if proba is None else proba[start:end], self.classes))
            start = end
        return results

    def row_inputs(self, prepared: Any, row: int) -> dict[str, Any] | None:
        """One row of prepared inputs as column → value, for the prediction log (None for tensors)."""
        if isinstance(prepared, dict):
            return {name: _plain(values[row]) for name, values in prepared.items()}
        if self.mode == "matrix":
            return dict(zip(self.columns, prepared[row].tolist(), strict=True))
        return None

    # --- metadata -----------------------------------------------------------------------------------------

    def metadata(self) -> dict[str, Any]:
        """OIP model metadata: platform, inputs and outputs with datatypes and shapes."""
        signature = self.registered.signature if self.registered is not None else None
        if self.mode == "tensor" and signature is not None:
            spec = signature.inputs
            inputs = [{"name": "input", "datatype": datatype_of(np.empty(0, dtype=spec.dtype)),
                       "shape": list(spec.shape)}]
        else:
            inputs = [{"name": n, "datatype": _SIGNATURE_DATATYPES.get(self.types.get(n, "float"), "BYTES"),
                       "shape": [-1]} for n in self.columns]
        predict_type = datatype_of(self.classes) if self.classes is not None else "FP64"
        outputs: list[dict[str, Any]] = [{"name": "predict", "datatype": predict_type, "shape": [-1]}]
        if self._predict_proba is not None:
            width = len(self.classes) if self.classes is not None else -1
            outputs.append({"name": "predict_proba", "datatype": "FP64", "shape": [-1, width]})
        return {"platform": f"dsops_{self.flavor}" if self.flavor else "dsops", "inputs": inputs,
                "outputs": outputs}


# --- helpers ---------------------------------------------------------------------------------------------

def _final_step_name(estimator: Any) -> str:
    """The class name of an estimator, or of a pipeline's last step."""
    steps = getattr(estimator, "steps", None)
    if isinstance(steps, list) and steps:
        return _final_step_name(steps[-1][1])
    return type(estimator).__name__


def _matrix_agrees(registered: Any, columns: list[str]) -> bool:
    """Whether the estimator given a bare matrix answers as it does given the DataFrame (a pipeline that
    selects columns by name does not): checked once, on two rows of zeros, when the version loads."""
    import pandas as pd

    sample = np.zeros((2, len(columns)))
    raw = registered.raw
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pairs = [(registered.predict(pd.DataFrame(sample, columns=columns)), raw.predict(sample))]
            if callable(getattr(raw, "predict_proba", None)):
                pairs.append((registered.predict_proba(pd.DataFrame(sample, columns=columns)),
                              raw.predict_proba(sample)))
    except Exception:
        return False
    for expected, got in pairs:
        expected, got = np.asarray(expected), np.asarray(got)
        if expected.shape != got.shape:
            return False
        if expected.dtype.kind in "fc" and not np.allclose(expected, got, equal_nan=True):
            return False
        if expected.dtype.kind not in "fc" and not np.array_equal(expected, got):
            return False
    return True


def _numeric(data: Any) -> np.ndarray | None:
    """``data`` as a numeric array, or None when it holds anything else (strings, nulls, ragged rows)."""
    if data is None:
        return None
    try:
        array = np.asarray(data)
    except ValueError:
        return None
    return array if array.dtype.kind in "fiub" else None


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _concat(inputs: Sequence[Any]) -> Any:
    if isinstance(inputs[0], dict):
        return {name: np.concatenate([np.asarray(part[name]) for part in inputs]) for name in inputs[0]}
    return np.concatenate(inputs)


def _columns_of(table: Table, expected: Sequence[str]) -> dict[str, Any]:
    """Column name → values of any table kind; positional rows take the ``expected`` names."""
    if table.kind == "columns":
        return dict(table.data)
    if table.kind == "records":
        names: list[str] = []
        seen: set[str] = set()
        for record in table.data:
            for name in record:
                if name not in seen:
                    seen.add(name)
                    names.append(name)
        return {n: [record.get(n) for record in table.data] for n in names}
    rows = table.data
    if table.kind == "tensor":
        try:
            array = np.asarray(rows, dtype=object)
        except ValueError:
            raise UsageError("the input rows are ragged (different lengths)") from None
        if array.ndim == 1:
            if len(expected) == 1:
                return {expected[0]: list(rows)}
            if not expected:
                return {table.names[0] if table.names else "0": list(rows)}
            raise UsageError(f"got a list of {len(rows)} values; the model takes rows of "
                             f"{len(expected)} columns ({_shown(list(expected))})")
        rows = array.tolist()
    names = table.names
    if names is None:
        width = len(rows[0]) if rows else 0
        if expected and width != len(expected):
            raise UsageError(f"rows have {width} values; the model takes {len(expected)} columns "
                             f"({_shown(list(expected))})")
        names = list(expected) if expected else [str(i) for i in range(width)]
    if len(set(names)) != len(names):
        raise UsageError(f"duplicate column names in {_shown(names)}")
    return {name: [row[i] for row in rows] for i, name in enumerate(names)}


def _from_text(values: Sequence[Any], kind: str, name: str) -> Any:
    """CSV strings as the column's type: empty → missing."""
    if kind in ("float", "int"):
        try:
            return np.array([float(v) if v != "" else np.nan for v in values], dtype=np.float64)
        except (TypeError, ValueError):
            raise UsageError(f"column {name!r} has type str, expected {kind}") from None
    if kind == "bool":
        out = []
        for v in values:
            text = str(v).strip().lower()
            if text not in _TRUE and text not in _FALSE:
                raise UsageError(f"column {name!r} has value {v!r}, expected bool (true/false)")
            out.append(text in _TRUE)
        return out
    return [None if v == "" else v for v in values]


def _shown(names: Sequence[str], limit: int = 12) -> str:
    return ", ".join(names[:limit]) + (", …" if len(names) > limit else "")
