"""Runs out of the store as values: listings (``RunSummary``) and single runs (``RunInfo``).

Set-based and ORM-free: one query for the runs with their params and latest metrics
(joined from ``run_values``, one row a run). A listing's statement is built and compiled
once per filter and sort text and runs on the DBAPI cursor, so a repeated search pays
only for the SQL and for making the values.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Select, select
from sqlalchemy.engine import Dialect

from dsops.core.clock import as_utc
from dsops.store.models import LineageEdge, RunArtifact
from dsops.tracking.filter import parse_filter, parse_sort
from dsops.tracking.filter_sql import RUNS, compile_filter, compile_sort
from dsops.tracking.models import ArtifactInfo, RunInfo, RunSummary
from dsops.tracking.run_values import VALUES, decode

# Every column but the package list (`environment`, ~200 entries): that is for `show`.
# Core columns, not ORM attributes (see filter_sql.RUNS).
SUMMARY_COLUMNS = tuple(RUNS.c[name] for name in (
    "id", "name", "kind", "status", "created_by", "started_at", "ended_at", "exit_code",
    "command", "git_commit", "git_dirty", "error"))
# Then the run's row of `run_values` (NULLs for a run without one).
_LISTED = (*SUMMARY_COLUMNS, VALUES.c.params, VALUES.c.metric_names, VALUES.c.metric_values)
_FROM = RUNS.outerjoin(VALUES, VALUES.c.run_id == RUNS.c.id)
NEWEST_FIRST = (RUNS.c.started_at.desc(), RUNS.c.id.desc())
_fromisoformat = datetime.fromisoformat


@functools.lru_cache(maxsize=64)
def listing_query(filter: str | None, sort: str | None) -> Select[Any]:
    """The statement listing runs that match ``filter`` (newest first unless sorted); a
    malformed filter or sort raises ``UsageError``."""
    query = select(*_LISTED).select_from(_FROM)
    if filter:
        query = query.where(compile_filter(parse_filter(filter)))
    order = [*compile_sort(parse_sort(sort)), *NEWEST_FIRST] if sort else NEWEST_FIRST
    return query.order_by(*order)


def read_summaries(dbapi: Any, dialect: Dialect, query: Select[Any], limit: int
                   ) -> list[RunSummary]:
    """The first ``limit`` runs ``query`` (from ``listing_query``) selects, with their
    params and latest metrics, read on the driver's connection ``dbapi``."""
    sql, parameters = _dbapi_statement(query, dialect, limit)
    cursor = dbapi.cursor()
    try:
        cursor.execute(sql, parameters)
        rows = cursor.fetchmany(limit)
    finally:
        cursor.close()
    return _summaries(rows)


def read_run(conn: Connection, run_id: str) -> RunInfo:
    """One run (by its full id) with everything: environment, artifacts, lineage."""
    row = conn.execute(select(*_LISTED, RUNS.c.environment).select_from(_FROM)
                       .where(RUNS.c.id == run_id)).one()
    (summary,) = _summaries([row])
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


@functools.lru_cache(maxsize=64)
def _dbapi_statement(query: Select[Any], dialect: Dialect, limit: int
                     ) -> tuple[str, tuple[Any, ...] | dict[str, Any]]:
    """``query`` as the driver's SQL text and parameters, for the DBAPI cursor, to read
    its first ``limit`` rows.

    SQLAlchemy would build a cache key for the statement and process the parameters and
    result rows on every execution; a search repeats the same statement. Times are the
    only parameters a driver would take differently: they get the column type's processing
    (SQLite stores them as text).

    No ``LIMIT`` on SQLite: the caller takes ``limit`` rows and closes the cursor. SQLite
    answers ``ORDER BY … LIMIT`` with a top-N b-tree, some 10,000 instructions a row, where
    its sorter, read only as far as needed, costs less at every size measured (208 matches,
    limit 10,000: 11.6 → 9.9 M instructions; 2,000 matches, limit 100: 51 → 31 M; no
    filter, limit 100: 3.2 → 2.8 M). PostgreSQL's top-N sort is cheap, and its driver would
    fetch every row of an unlimited query.
    """
    if dialect.name != "sqlite":
        query = query.limit(limit)
    compiled = query.compile(dialect=dialect, compile_kwargs={"render_postcompile": True})
    to_text = RUNS.c.started_at.type.dialect_impl(dialect).bind_processor(dialect)
    values = {name: to_text(value) if to_text and isinstance(value, datetime) else value
              for name, value in compiled.construct_params().items()}
    if compiled.positiontup is not None:
        return compiled.string, tuple(values[name] for name in compiled.positiontup)
    return compiled.string, values


def _summaries(rows: Sequence[Any]) -> list[RunSummary]:
    """``RunSummary`` values for rows of ``_LISTED`` (extra columns ignored), as
    SQLAlchemy returns them or as the driver does (times as text on SQLite)."""
    params, metrics = decode([row[12:15] for row in rows])
    out = []
    for row, run_params, run_metrics in zip(rows, params, metrics, strict=True):
        (run_id, name, kind, status, created_by, started, ended, exit_code, command,
         commit, dirty, error) = row[:12]
        # SQLite's driver returns the text SQLAlchemy's DateTime wrote (UTC, no offset).
        started = (_fromisoformat(started + "+00:00") if type(started) is str
                   else as_utc(started))
        if ended is not None:
            ended = _fromisoformat(ended + "+00:00") if type(ended) is str else as_utc(ended)
        out.append(RunSummary(
            run_id, name, kind, status, created_by, started, ended,
            (ended - started).total_seconds() if ended is not None else None, exit_code,
            command, commit, None if dirty is None else bool(dirty), error,
            run_params, run_metrics))
    return out


__all__ = ["SUMMARY_COLUMNS", "listing_query", "read_run", "read_summaries"]
