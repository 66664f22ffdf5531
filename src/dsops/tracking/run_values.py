"""Each run's params and latest metrics as one row of two JSON objects (``run_values``).

Filters and sorts read the per-key tables (``run_params``, ``run_latest_metrics``)
through their indexes. A listing needs every key of each run it lists, and reading those
as one row a key cost more than the search itself; so the writers rewrite a run's row
here whenever they change its per-key rows (``refresh``, same transaction), and listings
read one row a run (``read_values``) and parse it all in one call (``parse_objects``).
"""

from __future__ import annotations

import json
from typing import Any, Literal

from sqlalchemy import Connection

_SOURCES = {"params": "run_params", "metrics": "run_latest_metrics"}
# Ids per `IN (…)`: under SQLite's historical limit of 999 parameters a statement.
_IDS_PER_QUERY = 900
EMPTY = ("{}", "{}")


def as_json(values: dict[str, Any]) -> str:
    """The stored form: keys sorted, no spaces; floats as Python writes them, which read
    back to the same float."""
    return json.dumps(values, sort_keys=True, separators=(",", ":"))


def refresh(conn: Connection, run_id: str, column: Literal["params", "metrics"]) -> None:
    """Rewrite the run's ``column`` from its per-key rows, in the caller's transaction
    (after writing those rows)."""
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    cursor = conn.connection.cursor()
    try:
        cursor.execute(f'SELECT "key", value FROM {_SOURCES[column]} WHERE run_id = {mark}',
                       (run_id,))
        text = as_json(dict(cursor.fetchall()))
        cursor.execute(
            f"INSERT INTO run_values (run_id, params, metrics) VALUES ({mark}, {mark}, {mark}) "
            f"ON CONFLICT (run_id) DO UPDATE SET {column} = excluded.{column}",
            (run_id, text, "{}") if column == "params" else (run_id, "{}", text))
    finally:
        cursor.close()


def read_values(conn: Connection, run_ids: list[str]) -> dict[str, tuple[str, str]]:
    """``{run_id: (params JSON, metrics JSON)}`` of the runs that have a row."""
    out: dict[str, tuple[str, str]] = {}
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    cursor = conn.connection.cursor()
    try:
        for start in range(0, len(run_ids), _IDS_PER_QUERY):
            chunk = run_ids[start:start + _IDS_PER_QUERY]
            cursor.execute("SELECT run_id, params, metrics FROM run_values "
                           f"WHERE run_id IN ({', '.join([mark] * len(chunk))})", chunk)
            for run_id, params, metrics in cursor.fetchall():
                out[run_id] = (params, metrics)
    finally:
        cursor.close()
    return out


def parse_objects(texts: list[str]) -> list[dict[str, Any]]:
    """Stored JSON objects, parsed in one call: ``json.loads`` costs about a microsecond a
    call before it reads anything, a third of the parse of a run's params."""
    parsed: list[dict[str, Any]] = json.loads(f"[{','.join(texts)}]")
    return parsed


__all__ = ["EMPTY", "as_json", "parse_objects", "read_values", "refresh"]
