"""Runs out of the store as values: listings (``RunSummary``) and single runs (``RunInfo``).

Set-based and ORM-free: one query for the runs, then one each for their params and
latest metrics (``run_id IN (…)``), through SQLAlchemy Core rows into plain values.
Measured on 10,000 runs with 208 matches: loading ORM objects and validating pydantic
models took 15–17 ms; this takes about a third of that, most of it the filter itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Connection, select

from dsops.core.clock import as_utc
from dsops.store.models import LineageEdge, RunArtifact
from dsops.tracking.filter_sql import RUNS
from dsops.tracking.models import ArtifactInfo, RunInfo, RunSummary

# Every column but the package list (`environment`, ~200 entries): that is for `show`.
# Core columns, not ORM attributes (see filter_sql.RUNS).
SUMMARY_COLUMNS = tuple(RUNS.c[name] for name in (
    "id", "name", "kind", "status", "created_by", "started_at", "ended_at", "exit_code",
    "command", "git_commit", "git_dirty", "error"))
# Ids per `IN (…)`: under SQLite's historical limit of 999 parameters a statement.
_IDS_PER_QUERY = 900


def read_summaries(conn: Connection, where: ColumnElement[bool] | None,
                   order_by: Sequence[ColumnElement[Any]], limit: int) -> list[RunSummary]:
    """The runs matching ``where`` in ``order_by`` order, at most ``limit``, with their
    params and latest metrics."""
    query = select(*SUMMARY_COLUMNS)
    if where is not None:
        query = query.where(where)
    rows = conn.execute(query.order_by(*order_by).limit(limit)).all()
    return _summaries(conn, rows)


def read_run(conn: Connection, run_id: str) -> RunInfo:
    """One run (by its full id) with everything: environment, artifacts, lineage."""
    row = conn.execute(select(*SUMMARY_COLUMNS, RUNS.c.environment)
                       .where(RUNS.c.id == run_id)).one()
    (summary,) = _summaries(conn, [row])
    artifacts = [ArtifactInfo(path=path, digest=digest, size=size)
                 for path, digest, size in conn.execute(
                     select(RunArtifact.path, RunArtifact.digest, RunArtifact.size)
                     .where(RunArtifact.run_id == run_id).order_by(RunArtifact.path))]
    ref = f"run:{run_id}"
    inputs, outputs = [], []
    for source, target in conn.execute(
            select(LineageEdge.source, LineageEdge.target)
            .where((LineageEdge.target == ref) | (LineageEdge.source == ref))):
        if target == ref:
            inputs.append(source)
        if source == ref:
            outputs.append(target)
    fields = {name: getattr(summary, name) for name in RunSummary.__dataclass_fields__}
    return RunInfo(**fields, environment=row[-1], artifacts=artifacts,
                   inputs=sorted(inputs), outputs=sorted(outputs))


def _summaries(conn: Connection, rows: Sequence[Any]) -> list[RunSummary]:
    """``RunSummary`` values for rows of ``SUMMARY_COLUMNS`` (extra columns ignored)."""
    ids = [row[0] for row in rows]
    params = by_run(conn, "run_params", ids)
    metrics = by_run(conn, "run_latest_metrics", ids)
    out = []
    for row in rows:
        (run_id, name, kind, status, created_by, started, ended, exit_code, command,
         commit, dirty, error) = row[:12]
        started = as_utc(started)
        if ended is not None:
            ended = as_utc(ended)
        out.append(RunSummary(
            run_id, name, kind, status, created_by, started, ended,
            (ended - started).total_seconds() if ended is not None else None, exit_code,
            command, commit, dirty, error, params.get(run_id, {}), metrics.get(run_id, {})))
    return out


def by_run(conn: Connection, table: str, run_ids: list[str]) -> dict[str, dict[str, Any]]:
    """``{run_id: {key: value}}`` of ``run_params`` or ``run_latest_metrics``."""
    assert table in ("run_params", "run_latest_metrics")  # a name, never user input
    out: dict[str, dict[str, Any]] = {}
    if not run_ids:
        return out
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    cursor = conn.connection.cursor()
    try:
        for start in range(0, len(run_ids), _IDS_PER_QUERY):
            chunk = run_ids[start:start + _IDS_PER_QUERY]
            cursor.execute(f'SELECT run_id, "key", value FROM {table} '
                           f"WHERE run_id IN ({', '.join([mark] * len(chunk))})", chunk)
            for run_id, key, value in cursor.fetchall():
                values = out.get(run_id)
                if values is None:
                    values = out[run_id] = {}
                values[key] = value
    finally:
        cursor.close()
    return out



__all__ = ["SUMMARY_COLUMNS", "by_run", "read_run", "read_summaries"]
