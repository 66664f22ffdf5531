"""Each run's params and latest metrics in one row (``run_values``), for listings.

Filters and sorts read the per-key tables (``run_params``, ``run_latest_metrics``)
through their indexes. A listing needs every key of each run it lists, and reading those
as one row a key cost more than the search itself; so the writers rewrite a run's row
here whenever they change its per-key rows (``refresh``, same transaction), and listings
read one row a run and decode them all at once (``read_values``).

The stored form: params as a JSON object; metric names as a JSON array and their values
as float64s (little-endian) in a blob, in the same order. Parsing floats from text is
most of the cost of JSON here (17-digit values take the slow, exact path): 208 runs × 5
metrics decode in 2.0 M instructions this way, 4.6 M as JSON objects.
"""

from __future__ import annotations

import json
import sys
from array import array
from typing import Any, Literal

from sqlalchemy import Connection

# Ids per `IN (…)`: under SQLite's historical limit of 999 parameters a statement.
_IDS_PER_QUERY = 900
_BIG_ENDIAN = sys.byteorder == "big"
_EMPTY_ROW: dict[str, Any] = {"params": "{}", "metric_names": "[]", "metric_values": b""}
_EMPTY = ("", *_EMPTY_ROW.values())  # a run without a row


def encode(params: dict[str, str] | None = None,
           metrics: dict[str, float] | None = None) -> dict[str, Any]:
    """The stored columns of a run's params, or latest metrics, or both (names sorted)."""
    row: dict[str, Any] = {}
    if params is not None:
        row["params"] = json.dumps(params, sort_keys=True, separators=(",", ":"))
    if metrics is not None:
        names = sorted(metrics)
        values = array("d", [metrics[name] for name in names])
        if _BIG_ENDIAN:
            values.byteswap()
        row["metric_names"] = json.dumps(names, separators=(",", ":"))
        row["metric_values"] = values.tobytes()
    return row


def refresh(conn: Connection, run_id: str, kind: Literal["params", "metrics"]) -> None:
    """Rewrite the run's params or metrics from its per-key rows, in the caller's
    transaction (after writing those rows)."""
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    cursor = conn.connection.cursor()
    try:
        table = "run_params" if kind == "params" else "run_latest_metrics"
        cursor.execute(f'SELECT "key", value FROM {table} WHERE run_id = {mark}', (run_id,))
        by_key = dict(cursor.fetchall())
        new = encode(params=by_key) if kind == "params" else encode(metrics=by_key)
        row = {**_EMPTY_ROW, **new}  # a first write creates the row, the rest empty
        cursor.execute(
            f"INSERT INTO run_values (run_id, {', '.join(row)}) VALUES ({mark}, {mark}, {mark}, {mark}) "
            f"ON CONFLICT (run_id) DO UPDATE SET {', '.join(f'{c} = excluded.{c}' for c in new)}",
            (run_id, *row.values()))
    finally:
        cursor.close()


def read_values(conn: Connection, run_ids: list[str]
                ) -> tuple[list[dict[str, str]], list[dict[str, float]]]:
    """The params and the latest metrics of each run, in the order of ``run_ids``."""
    stored: dict[str, tuple[str, str, str, bytes]] = {}
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    cursor = conn.connection.cursor()
    try:
        for start in range(0, len(run_ids), _IDS_PER_QUERY):
            chunk = run_ids[start:start + _IDS_PER_QUERY]
            cursor.execute("SELECT run_id, params, metric_names, metric_values FROM run_values "
                           f"WHERE run_id IN ({', '.join([mark] * len(chunk))})", chunk)
            for row in cursor.fetchall():
                stored[row[0]] = row
    finally:
        cursor.close()
    return _decode([stored.get(run_id, _EMPTY) for run_id in run_ids])


def _decode(rows: list[tuple[str, str, str, bytes]]
           ) -> tuple[list[dict[str, str]], list[dict[str, float]]]:
    """The params and the metrics of stored rows ``(run_id, params, metric names, metric
    values)``, in their order.

    The params in one ``json.loads`` call (a call costs about a microsecond before it
    reads anything), each distinct list of metric names once (a listing's runs mostly
    log the same metrics), the values in one array.
    """
    if not rows:
        return [], []
    params: list[dict[str, str]] = json.loads(f"[{','.join([row[1] for row in rows])}]")
    values = array("d")
    values.frombytes(b"".join([row[3] for row in rows]))
    if _BIG_ENDIAN:
        values.byteswap()
    floats = iter(values.tolist())
    names_of: dict[str, list[str]] = {}
    metrics = []
    for row in rows:
        names = names_of.get(row[2])
        if names is None:
            names = names_of[row[2]] = json.loads(row[2])
        # Not strict: zip() takes from `floats` as many values as the run has names.
        metrics.append(dict(zip(names, floats, strict=False)))
    return params, metrics


__all__ = ["encode", "read_values", "refresh"]
