"""The prediction log's and feedback's columns, segment keys, and how Python values become
typed Arrow columns (inputs typed from their values, widened rather than ever failing)."""

from __future__ import annotations

import json
import numbers
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import quote, unquote

import pyarrow as pa
import pyarrow.compute as pc

PREDICTIONS = "predictions"
FEEDBACK = "feedback"
INPUT_PREFIX = "in_"
ROLES = frozenset({"stable", "candidate", "shadow"})
STATUSES = frozenset({"ok", "error"})

TIME = pa.timestamp("us", tz="UTC")
# `time`, not `at`: AT is a reserved word in DuckDB 2, so `WHERE at > …` would not parse.
PREDICTION_SCHEMA = pa.schema([
    ("request_id", pa.string()),
    ("row", pa.int32()),  # position of the row in a multi-row request (0 for one row)
    ("time", TIME),
    ("env", pa.string()),
    ("deployment", pa.string()),
    ("model", pa.string()),
    ("version", pa.int64()),
    ("role", pa.string()),
    ("status", pa.string()),
    ("error", pa.string()),
    ("latency_ms", pa.float64()),
    ("prediction", pa.float64()),
    ("prediction_label", pa.string()),
    ("score", pa.float64()),
    ("sampled", pa.bool_()),
])
FEEDBACK_SCHEMA = pa.schema([
    ("request_id", pa.string()),
    ("row", pa.int32()),
    ("time", TIME),
    ("label", pa.string()),
    ("label_value", pa.float64()),
])
INPUT_TYPES = (pa.float64(), pa.int64(), pa.string(), pa.bool_())


def prediction_prefix(model: str | None = None, version: int | None = None) -> str:
    """The folder (under ``logs/``) holding a model's, or a model version's, segments."""
    prefix = f"{PREDICTIONS}/"
    if model is not None:
        prefix += f"model={quote(model, safe='')}/"
        if version is not None:
            prefix += f"version={version}/"
    return prefix


def prediction_key(model: str, version: int, day: date, segment_id: str) -> str:
    """``predictions/model=NAME/version=N/date=YYYY-MM-DD/<id>.parquet`` (hive layout)."""
    return f"{prediction_prefix(model, version)}date={day.isoformat()}/{segment_id}.parquet"


def feedback_key(day: date, segment_id: str) -> str:
    """``feedback/date=YYYY-MM-DD/<id>.parquet``."""
    return f"{FEEDBACK}/date={day.isoformat()}/{segment_id}.parquet"


def key_partitions(key: str) -> dict[str, str]:
    """The ``name=value`` folders of a segment key, decoded."""
    return {name: unquote(value) for name, sep, value in
            (part.partition("=") for part in key.split("/")[:-1]) if sep}


# Compaction (see predlog_compact.py) merges a folder's segments into one file named
# ``compact-<id>.parquet`` whose footer lists the segments it replaces; they are deleted a
# while later. Until then a reader that lists the folder sees both and must read each row
# once: `live_keys` decides which files that is.
COMPACT_PREFIX = "compact-"
COVERS_KEY = b"dsops.covers"  # footer metadata: the names of the segments replaced, one a line


def is_compact(key: str) -> bool:
    """True for a compacted file's key."""
    return key.rpartition("/")[2].startswith(COMPACT_PREFIX)


def chosen_compacts(covers: Mapping[str, frozenset[str]]) -> list[str]:
    """Of one folder's compacted files (key: the names they replace), those to read: the
    largest first, skipping any that shares a segment with one already chosen (two
    compactions that ran at once). A skipped file's other segments are still on disk,
    since a segment is deleted only once a chosen file replaces it."""
    chosen: list[str] = []
    taken: set[str] = set()
    for key in sorted(covers, key=lambda k: (-len(covers[k]), k)):
        if taken.isdisjoint(covers[key]):
            chosen.append(key)
            taken |= covers[key]
    return chosen


def live_keys(keys: Sequence[str], covers: Mapping[str, frozenset[str]]
              ) -> tuple[list[str], set[str]]:
    """``(keys to read, keys replaced)``: every row once. ``covers`` holds the names each
    compacted file among ``keys`` replaces (a file missing from it is not read)."""
    folders: dict[str, dict[str, frozenset[str]]] = {}
    for key in keys:
        if is_compact(key) and key in covers:
            folders.setdefault(key.rpartition("/")[0], {})[key] = covers[key]
    replaced: set[str] = set()
    chosen: set[str] = set()
    for folder, compacts in folders.items():
        for key in chosen_compacts(compacts):
            chosen.add(key)
            replaced.update(f"{folder}/{name}" for name in compacts[key])
    live = [k for k in keys if (k in chosen if is_compact(k) else k not in replaced)]
    return live, replaced


def utc_date(when: datetime) -> date:
    """The UTC calendar day of ``when`` (naive times are taken as UTC)."""
    if when.tzinfo is None or when.tzinfo is UTC:
        return when.date()
    return when.astimezone(UTC).date()


def split_value(value: object) -> tuple[float | None, str | None]:
    """``(number, text)`` of a prediction or a label: numbers (and booleans) go to the
    first, class labels and anything else to the second."""
    kind = type(value)
    if kind is float or kind is int or kind is bool:
        return float(value), None  # type: ignore[arg-type]
    if kind is str:
        return None, value  # type: ignore[return-value]
    if value is None:
        return None, None
    if isinstance(value, numbers.Real):  # NumPy scalars
        return float(value), None
    if isinstance(value, str):
        return None, value
    item = getattr(value, "item", None)  # a one-element NumPy array
    if item is not None and getattr(value, "size", 0) == 1:
        return split_value(item())
    return None, as_text(value)


def value_columns(values: Sequence[Any]) -> tuple[pa.Array, pa.Array]:
    """``(float64 numbers, string labels)`` columns of predictions, as ``split_value``
    would make them row by row (the usual all-numbers or all-labels case in C++)."""
    try:
        array = pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, OverflowError):
        array = None
    if array is not None:
        kind, n = array.type, len(values)
        if pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind):
            return pc.cast(array, pa.float64()), pa.nulls(n, pa.string())
        if pa.types.is_string(kind) or pa.types.is_large_string(kind):
            return pa.nulls(n, pa.float64()), pc.cast(array, pa.string())
        if pa.types.is_null(kind):
            return pa.nulls(n, pa.float64()), pa.nulls(n, pa.string())
    numbers_, labels = zip(*(split_value(v) for v in values), strict=True)
    return pa.array(numbers_, pa.float64()), pa.array(labels, pa.string())


def as_text(value: object) -> str:
    """A value that has no column type of its own, as text (JSON for containers)."""
    if isinstance(value, str):
        return value
    tolist = getattr(value, "tolist", None)
    if tolist is not None:
        value = tolist()
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value, default=str, separators=(",", ":"))
    return str(value)


def input_columns(inputs: Sequence[Mapping[Any, Any] | None],
                  known: dict[str, pa.DataType]) -> dict[str, pa.Array]:
    """One ``in_<name>`` column per input (None: the row's inputs were not kept), typed
    float64, int64, string or bool, consistent with the types the (model, version) already
    has in ``known`` (updated): int64 and float64 meet as float64, anything else that
    disagrees as string, and a column missing from these rows is all nulls. Never fails
    on odd values: what has no column type is stored as text (JSON for containers)."""
    keys: dict[str, Any] = {name: name for name in known}
    arrays: dict[str, pa.Array] = {}
    try:
        struct = pa.array(inputs)  # one pass over the dicts in C++
        if not pa.types.is_struct(struct.type):
            raise TypeError(struct.type)
        arrays = {f.name: a for f, a in zip(struct.type, struct.flatten(), strict=True)}
        keys.update((name, name) for name in arrays)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, TypeError,
            OverflowError):  # mixed types in a column, keys that are not strings …
        for values in inputs:
            if values is not None:
                keys.update((str(key), key) for key in values if str(key) not in keys)
    columns: dict[str, pa.Array] = {}
    for name, key in keys.items():
        array = arrays.get(name)
        if array is None:
            array = _infer([None if v is None else v.get(key) for v in inputs])
        else:
            array = _normalized(array)
        kind = known.get(name)
        if pa.types.is_null(array.type):
            array = pa.nulls(len(inputs), kind or pa.string())
        elif kind is not None and array.type != kind:
            array = pc.cast(array, widened(kind, array.type))
        known[name] = array.type
        columns[INPUT_PREFIX + name] = array
    return columns


def widened(a: pa.DataType, b: pa.DataType) -> pa.DataType:
    """The type two input columns' types meet at."""
    if a == b:
        return a
    if {a, b} == {pa.int64(), pa.float64()}:
        return pa.float64()
    return pa.string()


def _infer(values: Sequence[Any]) -> pa.Array:
    try:
        return _normalized(pa.array(values))
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, OverflowError):
        return _text(values)


def _normalized(array: pa.Array) -> pa.Array:
    kind = array.type
    if pa.types.is_null(kind) or kind in INPUT_TYPES:
        return array
    if pa.types.is_integer(kind):
        try:
            return pc.cast(array, pa.int64())
        except pa.ArrowInvalid:  # uint64 beyond int64
            return pc.cast(array, pa.string())
    if pa.types.is_floating(kind):
        return pc.cast(array, pa.float64())
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return pc.cast(array, pa.string())
    return _text(array.to_pylist())


def _text(values: Sequence[Any]) -> pa.Array:
    return pa.array([None if v is None else as_text(v) for v in values], pa.string())
