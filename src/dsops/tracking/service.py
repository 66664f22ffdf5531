"""TrackingService: runs, their params, metrics, artifacts and lineage edges."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, defer

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
from dsops.tracking.models import ArtifactInfo, Comparison, MetricPoint, RunInfo
from dsops.workspace import Workspace

STATUSES = ("running", "finished", "failed", "killed")
MetricRow = tuple[str, float, int, datetime]


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
        return self.get(run.id)

    def log_params(self, run_id: str, params: dict[str, object]) -> None:
        """Record parameters; a key logged twice with a different value is a Conflict."""
        with self.ws.store.transaction() as session:
            run = self._run(session, run_id)
            self._write_params(session, run.id, params)
            self.ws.audit(session, "run.params", f"run:{run.id}", {"keys": sorted(params)})

    def log_metrics(self, run_id: str, rows: list[MetricRow]) -> int:
        """Append metric values in one transaction and keep each key's latest value.

        Metric values are observations, not changes of state: they are not audited one
        by one (the run's start and end are).
        """
        if not rows:
            return 0
        for key, value, _, _ in rows:
            if not key or not isinstance(value, int | float) or not math.isfinite(value):
                raise UsageError(f"metric {key!r}: expected a finite number, got {value!r}")
        with self.ws.store.transaction() as session:
            run = self._run(session, run_id)
            _insert_metric_rows(session, run.id, rows)
            latest: dict[str, tuple[float, int]] = {}
            for k, v, s, _ in rows:
                if k not in latest or s >= latest[k][1]:
                    latest[k] = (float(v), s)
            existing = {m.key: m for m in session.execute(
                select(RunLatestMetric).where(RunLatestMetric.run_id == run.id,
                                              RunLatestMetric.key.in_(latest))).scalars()}
            for k, (v, s) in latest.items():
                row = existing.get(k)
                if row is None:
                    session.add(RunLatestMetric(run_id=run.id, key=k, value=v, step=s))
                elif s >= row.step:
                    row.value, row.step = v, s
        return len(rows)

    def log_artifact(self, run_id: str, path: Path, name: str | None = None) -> ArtifactInfo:
        """Store a file in the object store and attach it to the run."""
        path = Path(path)
        if not path.is_file():
            raise UsageError(f"artifact {path}: no such file")
        digest = self.ws.objects.put_file(path)
        artifact = RunArtifact(run_id="", path=name or path.name, digest=digest,
                               size=path.stat().st_size)
        with self.ws.store.transaction() as session:
            run = self._run(session, run_id)
            artifact.run_id = run.id
            session.merge(artifact)
            self.ws.audit(session, "run.artifact", f"run:{run.id}",
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
                error: str | None = None) -> RunInfo:
        """Close a run with its final status."""
        if status not in STATUSES[1:]:
            raise UsageError(f"a run ends as one of {', '.join(STATUSES[1:])}, not {status!r}")
        with self.ws.store.transaction() as session:
            run = self._run(session, run_id)
            run.status, run.ended_at = status, self.ws.now()
            run.exit_code, run.error = exit_code, error
            self.ws.audit(session, "run.end", f"run:{run.id}",
                          {"status": status, "exit_code": exit_code})
        return self.get(run_id)

    # --- reading --------------------------------------------------------------------

    def get(self, run_id: str) -> RunInfo:
        """One run with its params, latest metrics, artifacts and lineage."""
        with self.ws.store.read() as session:
            run = self._run(session, run_id)
            return self._infos(session, [run])[0]

    def list(self, *, filter: str | None = None, sort: str | None = None,
             limit: int = 100) -> list[RunInfo]:
        """Runs matching ``filter`` (see docs/tracking.md), newest first unless sorted."""
        query = select(Run).options(defer(Run.environment))  # the package list: for show
        if filter:
            from dsops.tracking.filter import compile_filter, parse_filter

            query = query.where(compile_filter(parse_filter(filter)))
        if sort:
            from dsops.tracking.filter import parse_sort

            query = query.order_by(*parse_sort(sort), Run.started_at.desc())
        else:
            query = query.order_by(Run.started_at.desc(), Run.id.desc())
        with self.ws.store.read() as session:
            runs = session.execute(query.limit(limit)).scalars().all()
            return self._infos(session, list(runs), environment=False)

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
            run = self._run(session, run_id)
            rows = session.execute(
                select(RunMetric.step, RunMetric.value, RunMetric.at)
                .where(RunMetric.run_id == run.id, RunMetric.key == key)
                .order_by(RunMetric.step, RunMetric.id)).all()
            if not rows:
                known = session.execute(select(RunLatestMetric.key).where(
                    RunLatestMetric.run_id == run.id)).scalars().all()
                raise NotFound("metric", key, known=known)
        return [MetricPoint(step=s, value=v, at=_utc(at)) for s, v, at in rows]

    # --- internals ------------------------------------------------------------------

    def _write_params(self, session: Session, run_id: str, params: dict[str, object]) -> None:
        current = dict(session.execute(select(RunParam.key, RunParam.value).where(
            RunParam.run_id == run_id, RunParam.key.in_([str(k) for k in params]))).all())
        for key, value in params.items():
            text = _param_text(value)
            if str(key) in current:
                if current[str(key)] != text:
                    from dsops.core.errors import Conflict

                    raise Conflict(f"param {key!r} of run {run_id} is already "
                                   f"{current[str(key)]!r}; a run's params cannot change")
                continue
            session.add(RunParam(run_id=run_id, key=str(key), value=text,
                                 number=_as_number(value)))

    def _run(self, session: Session, run_id: str) -> Run:
        run = session.get(Run, run_id)
        if run is not None:
            return run
        if len(run_id) >= 6:
            # A unique prefix, or suffix: UUIDv7s started close together share their
            # leading (time) digits, so listings show the distinguishing tail.
            pattern = run_id.replace("%", "").replace("_", "")
            for like in (pattern + "%", "%" + pattern):
                matches = session.execute(
                    select(Run).where(Run.id.like(like)).limit(2)).scalars().all()
                if len(matches) == 1:
                    return matches[0]
                if len(matches) > 1:
                    raise UsageError(f"run id {run_id!r} matches several runs: give more "
                                     "characters")
        raise NotFound("run", run_id, hint="list runs with 'dsops runs ls'")

    def _infos(self, session: Session, runs: list[Run], *, environment: bool = True
               ) -> list[RunInfo]:
        if not runs:
            return []
        ids = [r.id for r in runs]
        params: dict[str, dict[str, str]] = {i: {} for i in ids}
        for run_id, key, value in session.execute(
                select(RunParam.run_id, RunParam.key, RunParam.value)
                .where(RunParam.run_id.in_(ids))):
            params[run_id][key] = value
        metrics: dict[str, dict[str, float]] = {i: {} for i in ids}
        for run_id, key, value in session.execute(
                select(RunLatestMetric.run_id, RunLatestMetric.key, RunLatestMetric.value)
                .where(RunLatestMetric.run_id.in_(ids))):
            metrics[run_id][key] = value
        artifacts: dict[str, list[ArtifactInfo]] = {i: [] for i in ids}
        for a in session.execute(select(RunArtifact).where(RunArtifact.run_id.in_(ids))
                                 .order_by(RunArtifact.path)).scalars():
            artifacts[a.run_id].append(ArtifactInfo(path=a.path, digest=a.digest, size=a.size))
        targets = [f"run:{i}" for i in ids]
        inputs: dict[str, list[str]] = {i: [] for i in ids}
        outputs: dict[str, list[str]] = {i: [] for i in ids}
        for source, target in session.execute(
                select(LineageEdge.source, LineageEdge.target).where(
                    LineageEdge.target.in_(targets) | LineageEdge.source.in_(targets))):
            if target in targets:
                inputs[target[4:]].append(source)
            if source in targets:
                outputs[source[4:]].append(target)
        out = []
        for r in runs:
            started = _utc(r.started_at)
            ended = _utc(r.ended_at) if r.ended_at else None
            out.append(RunInfo(
                id=r.id, name=r.name, kind=r.kind, status=r.status, created_by=r.created_by,
                started_at=started, ended_at=ended,
                duration_s=(ended - started).total_seconds() if ended else None,
                exit_code=r.exit_code, command=r.command, git_commit=r.git_commit,
                git_dirty=r.git_dirty, environment=r.environment if environment else None,
                error=r.error,
                params=params[r.id], metrics=metrics[r.id], artifacts=artifacts[r.id],
                inputs=sorted(inputs[r.id]), outputs=sorted(outputs[r.id])))
        return out


def _insert_metric_rows(session: Session, run_id: str, rows: list[MetricRow]) -> None:
    """Append metric rows with one executemany of pre-rendered parameters.

    Measured at 10,000 rows on SQLite: the ORM bulk insert 0.20 s, a Core insert 0.11 s
    (0.095 s of it SQLAlchemy processing each row's parameters), this 0.03 s. Times are
    stored in UTC, in the text format SQLAlchemy's SQLite DateTime uses, so both paths
    read back the same.
    """
    conn = session.connection()
    sqlite = conn.dialect.name == "sqlite"
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    params = []
    for key, value, step, at in rows:
        if at.tzinfo:
            at = at.astimezone(UTC)
        # isoformat, not strftime (6 µs a call): "YYYY-MM-DD HH:MM:SS.ffffff" either way
        params.append((run_id, key, int(step), float(value),
                       at.replace(tzinfo=None).isoformat(" ", "microseconds") if sqlite else at))
    conn.exec_driver_sql(
        f"INSERT INTO run_metrics (run_id, key, step, value, at) "
        f"VALUES ({mark}, {mark}, {mark}, {mark}, {mark})", params)


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


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


__all__ = ["TrackingService"]
