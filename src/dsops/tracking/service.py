"""TrackingService: runs, their params, metrics, artifacts and lineage edges."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from sqlalchemy import Connection, select, update
from sqlalchemy.orm import Session

from dsops.core.clock import as_utc as utc
from dsops.core.errors import NotFound, UsageError
from dsops.core.ids import new_id
from dsops.store.models import (
    LineageEdge,
    Run,
    RunArtifact,
    RunLatestMetric,
    RunMetric,
    RunParam,
)
from dsops.tracking.filter_sql import RUNS
from dsops.tracking.metric_writer import MetricColumns, MetricRow, write_metrics
from dsops.tracking.models import ArtifactInfo, Comparison, MetricPoint, RunInfo, RunSummary
from dsops.tracking.run_reader import listing_query, read_run, read_summaries
from dsops.tracking.run_values import refresh
from dsops.workspace import Workspace

STATUSES = ("running", "finished", "failed", "killed")


class TrackingService:
    """The operations on runs a user (or the pipeline runner, or the SDK) performs."""

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws

    # --- writing --------------------------------------------------------------------

    def start_run(self, name: str, *, kind: str = "manual", command: str | None = None,
                  params: dict[str, object] | None = None) -> RunInfo:
        """Open a run, recording the git state and the environment lock."""
        from dsops.tracking.environment import environment_lock, git_state

        if not name.strip():
            raise UsageError("a run needs a name")
        commit, dirty = git_state(self.ws.root)
        run = Run(id=new_id(), name=name.strip(), kind=kind, status="running",
                  created_by=self.ws.identity, started_at=self.ws.now(), command=command,
                  git_commit=commit, git_dirty=dirty, environment=environment_lock())
        with self.ws.store.transaction() as session:
            session.add(run)
            session.flush()
            if params:
                self._write_params(session, run.id, params)
            self.ws.audit(session, "run.start", f"run:{run.id}",
                          {"name": run.name, "kind": kind, "commit": commit})
            return read_run(session.connection(), run.id)

    def log_params(self, run_id: str, params: dict[str, object]) -> None:
        """Record parameters; a key logged twice with a different value is a Conflict."""
        with self.ws.store.transaction() as session:
            run_id = _resolve(session.connection(), run_id)
            self._write_params(session, run_id, params)
            self.ws.audit(session, "run.params", f"run:{run_id}", {"keys": sorted(params)})

    def log_metrics(self, run_id: str, rows: Sequence[MetricRow] | MetricColumns) -> int:
        """Append metric values ``(key, value, step, at)`` in one transaction and keep each
        key's latest value; ``at`` is a datetime (naive = UTC) or seconds since the epoch.

        Metric values are observations, not changes of state: they are not audited one
        by one (the run's start and end are).
        """
        if not len(rows):
            return 0
        with self.ws.store.transaction() as session:
            conn = session.connection()
            return write_metrics(conn, _resolve(conn, run_id), rows)

    def log_artifact(self, run_id: str, path: Path, name: str | None = None) -> ArtifactInfo:
        """Store a file in the object store and attach it to the run."""
        path = Path(path)
        if not path.is_file():
            raise UsageError(f"artifact {path}: no such file")
        digest = self.ws.objects.put_file(path)
        artifact = RunArtifact(run_id="", path=name or path.name, digest=digest,
                               size=path.stat().st_size)
        with self.ws.store.transaction() as session:
            artifact.run_id = _resolve(session.connection(), run_id)
            session.merge(artifact)
            self.ws.audit(session, "run.artifact", f"run:{artifact.run_id}",
                          {"path": artifact.path, "digest": digest})
        return ArtifactInfo(path=artifact.path, digest=digest, size=artifact.size)

    def add_lineage(self, sources: list[str], targets: list[str]) -> None:
        """Record that every source was used to produce every target."""
        now = self.ws.now()
        with self.ws.store.transaction() as session:
            for source in sources:
                for target in targets:
                    session.merge(LineageEdge(source=source, target=target, created_at=now))

    def end_run(self, run_id: str, status: str = "finished", *, exit_code: int | None = None,
                error: str | None = None,
                metrics: Sequence[MetricRow] | MetricColumns = ()) -> RunInfo:
        """Close a run with its final status, appending ``metrics`` (values still to
        write, as for ``log_metrics``) in the same transaction."""
        if status not in STATUSES[1:]:
            raise UsageError(f"a run ends as one of {', '.join(STATUSES[1:])}, not {status!r}")
        with self.ws.store.transaction() as session:
            conn = session.connection()
            run_id = _resolve(conn, run_id)
            write_metrics(conn, run_id, metrics)
            conn.execute(update(RUNS).where(RUNS.c.id == run_id).values(
                status=status, ended_at=self.ws.now(), exit_code=exit_code, error=error))
            self.ws.audit(session, "run.end", f"run:{run_id}",
                          {"status": status, "exit_code": exit_code})
            return read_run(conn, run_id)

    # --- reading --------------------------------------------------------------------

    def get(self, run_id: str) -> RunInfo:
        """One run with its params, latest metrics, artifacts and lineage."""
        with self.ws.store.read() as session:
            conn = session.connection()
            return read_run(conn, _resolve(conn, run_id))

    def list(self, *, filter: str | None = None, sort: str | None = None,
             limit: int = 100) -> list[RunSummary]:
        """Runs matching ``filter`` (see docs/tracking.md), newest first unless sorted, with
        their params and latest metrics (``get`` has the rest)."""
        if limit < 1:
            raise UsageError(f"limit must be at least 1 (got {limit})")
        query = listing_query(filter, sort)  # a malformed filter fails here
        store = self.ws.store
        with store.read_statement() as dbapi:
            return read_summaries(dbapi, store.engine.dialect, query, limit)

    def compare(self, run_ids: list[str]) -> Comparison:
        """Params and latest metrics of several runs side by side, differences marked."""
        if len(run_ids) < 2:
            raise UsageError("compare needs at least two runs")
        runs = [self.get(r) for r in run_ids]
        param_keys = sorted({k for r in runs for k in r.params})
        metric_keys = sorted({k for r in runs for k in r.metrics})
        params = {k: [r.params.get(k) for r in runs] for k in param_keys}
        metrics = {k: [r.metrics.get(k) for r in runs] for k in metric_keys}
        return Comparison(
            runs=[r.id for r in runs], params=params, metrics=metrics,
            differing_params=[k for k, v in params.items() if len(set(v)) > 1],
            differing_metrics=[k for k, v in metrics.items() if len(set(v)) > 1])

    def metric_history(self, run_id: str, key: str) -> list[MetricPoint]:
        """Every logged value of one metric, by step."""
        with self.ws.store.read() as session:
            conn = session.connection()
            run_id = _resolve(conn, run_id)
            rows = conn.execute(
                select(RunMetric.step, RunMetric.value, RunMetric.at)
                .where(RunMetric.run_id == run_id, RunMetric.key == key)
                .order_by(RunMetric.step, RunMetric.id)).all()
            if not rows:
                known = conn.execute(select(RunLatestMetric.key).where(
                    RunLatestMetric.run_id == run_id)).scalars().all()
                raise NotFound("metric", key, known=known)
        return [MetricPoint(step=s, value=v, at=utc(at)) for s, v, at in rows]

    # --- internals ------------------------------------------------------------------

    def _write_params(self, session: Session, run_id: str, params: dict[str, object]) -> None:
        current = dict(session.execute(select(RunParam.key, RunParam.value).where(
            RunParam.run_id == run_id, RunParam.key.in_([str(k) for k in params]))).all())
        new = []
        for key, value in params.items():
            text = _param_text(value)
            if str(key) in current:
                if current[str(key)] != text:
                    from dsops.core.errors import Conflict

                    raise Conflict(f"param {key!r} of run {run_id} is already "
                                   f"{current[str(key)]!r}; a run's params cannot change")
                continue
            new.append(RunParam(run_id=run_id, key=str(key), value=text,
                                number=_as_number(value)))
        if new:
            session.add_all(new)
            session.flush()
            refresh(session.connection(), run_id, "params")


def _resolve(conn: Connection, run_id: str) -> str:
    """The full id of the run ``run_id`` names: itself, or a unique prefix or suffix."""
    if conn.execute(select(RUNS.c.id).where(RUNS.c.id == run_id)).first() is not None:
        return run_id
    if len(run_id) >= 6:
        # A unique prefix, or suffix: UUIDv7s started close together share their
        # leading (time) digits, so listings show the distinguishing tail.
        pattern = run_id.replace("%", "").replace("_", "")
        for like in (pattern + "%", "%" + pattern):
            matches = conn.execute(select(RUNS.c.id).where(RUNS.c.id.like(like)).limit(2)).all()
            if len(matches) == 1:
                return str(matches[0][0])
            if len(matches) > 1:
                raise UsageError(f"run id {run_id!r} matches several runs: give more "
                                 "characters")
    raise NotFound("run", run_id, hint="list runs with 'dsops runs ls'")


def _param_text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _as_number(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value) if math.isfinite(value) else None
    try:
        number = float(str(value))
    except ValueError:
        return None
    return number if math.isfinite(number) else None


__all__ = ["TrackingService"]
