"""Incidents: opened (or updated — never duplicated while open) when an alert rule fires,
acknowledged and resolved by people, or resolved by themselves after the rule stayed
healthy long enough. Time to restore = resolved_at - opened_at."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from dsops.core.clock import as_utc
from dsops.core.errors import Conflict, UsageError
from dsops.core.ids import new_id
from dsops.store.lookup import row_by_id
from dsops.store.models import Incident
from dsops.workspace import Workspace

OPEN = ("open", "acknowledged")
MONITOR_ACTOR = "dsops-monitor"


class IncidentInfo(BaseModel):
    """An incident as ``incidents ls/show`` prints it."""

    id: str
    monitor: str
    rule: str
    status: str
    severity: str
    env: str | None = None
    model: str | None = None
    version: int | None = None
    deployment_id: str | None = None
    opened_at: datetime
    last_fired_at: datetime
    healthy_since: datetime | None = None
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = None
    resolved_at: datetime | None = None
    resolved_by: str | None = None
    note: str | None = None
    evidence: dict[str, Any] = {}
    actions: list[dict[str, Any]] = []

    @property
    def time_to_restore_s(self) -> float | None:
        return None if self.resolved_at is None else (self.resolved_at - self.opened_at).total_seconds()


class IncidentService:
    """Open, update, acknowledge and resolve incidents."""

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws

    def fire(self, *, monitor: str, rule: str, severity: str, evidence: dict[str, Any],
             env: str | None = None, model: str | None = None, version: int | None = None,
             deployment_id: str | None = None, now: datetime | None = None) -> tuple[IncidentInfo, bool]:
        """The open incident of this monitor's rule, updated with new evidence, or a new one.
        Returns the incident and whether it was opened now."""
        now = now or self.ws.now()
        with self.ws.store.transaction() as session:
            row = self._open(session, monitor, rule)
            if row is not None:
                row.last_fired_at, row.healthy_since = now, None
                row.evidence = {**evidence, "fired": int(row.evidence.get("fired", 1)) + 1}
                return _info(row), False
            row = Incident(id=new_id(), monitor=monitor, rule=rule, status="open",
                           severity=severity, env=env, model=model, version=version,
                           deployment_id=deployment_id, opened_at=now, last_fired_at=now,
                           evidence={**evidence, "fired": 1}, actions=[])
            session.add(row)
            self.ws.audit(session, "incident.open", f"incident:{row.id}",
                          {"monitor": monitor, "rule": rule, "severity": severity,
                           "model": f"{model}@{version}" if model else None, "env": env})
            return _info(row), True

    def record_action(self, incident_id: str, action: str, *, ok: bool, detail: str,
                      now: datetime | None = None) -> None:
        """Note what an action did for an incident (rollback, retrain, webhook)."""
        now = now or self.ws.now()
        with self.ws.store.transaction() as session:
            row = self._row(session, incident_id)
            row.actions = [*row.actions, {"action": action, "ok": ok, "detail": detail,
                                          "at": now.isoformat()}]
            self.ws.audit(session, "incident.action", f"incident:{row.id}",
                          {"action": action, "ok": ok, "detail": detail})

    def healthy(self, *, monitor: str, rule: str, resolve_after_s: float,
                now: datetime | None = None) -> IncidentInfo | None:
        """The rule held: start the healthy clock of its open incident, and resolve it once
        it has been healthy for ``resolve_after_s``. Returns the incident if resolved now."""
        now = now or self.ws.now()
        with self.ws.store.transaction() as session:
            row = self._open(session, monitor, rule)
            if row is None:
                return None
            if row.healthy_since is None:
                row.healthy_since = now
            healthy_since = as_utc(row.healthy_since)
            if now - healthy_since < timedelta(seconds=resolve_after_s):
                return None
            self._resolve(session, row, now, MONITOR_ACTOR,
                          f"resolved automatically: healthy since {healthy_since:%Y-%m-%d %H:%M} UTC")
            return _info(row)

    def acknowledge(self, incident_id: str, *, note: str | None = None) -> IncidentInfo:
        """Someone is on it."""
        now = self.ws.now()
        with self.ws.store.transaction() as session:
            row = self._row(session, incident_id)
            if row.status != "open":
                raise Conflict(f"incident {row.id} is {row.status}: only an open incident can be "
                               "acknowledged")
            row.status, row.acknowledged_at, row.acknowledged_by = "acknowledged", now, self.ws.identity
            if note:
                row.note = note
            self.ws.audit(session, "incident.ack", f"incident:{row.id}", {"note": note})
            return _info(row)

    def resolve(self, incident_id: str, *, note: str | None = None) -> IncidentInfo:
        """Close an incident (the end of its time to restore)."""
        now = self.ws.now()
        with self.ws.store.transaction() as session:
            row = self._row(session, incident_id)
            if row.status == "resolved":
                raise Conflict(f"incident {row.id} is already resolved")
            self._resolve(session, row, now, self.ws.identity, note)
            return _info(row)

    def list(self, *, status: str | None = None, monitor: str | None = None,
             limit: int = 50) -> list[IncidentInfo]:
        """Incidents, newest first; ``status`` ``open`` includes acknowledged ones."""
        if status not in (None, "open", "acknowledged", "resolved", "all"):
            raise UsageError(f"unknown status {status!r}: use open, acknowledged, resolved or all")
        with self.ws.store.read() as session:
            query = select(Incident).order_by(Incident.id.desc()).limit(limit)
            if status == "open":
                query = query.where(Incident.status.in_(OPEN))
            elif status in ("acknowledged", "resolved"):
                query = query.where(Incident.status == status)
            if monitor:
                query = query.where(Incident.monitor == monitor)
            return [_info(row) for row in session.execute(query).scalars()]

    def get(self, incident_id: str) -> IncidentInfo:
        with self.ws.store.read() as session:
            return _info(self._row(session, incident_id))

    def _resolve(self, session: Session, row: Incident, now: datetime, actor: str,
                 note: str | None) -> None:
        row.status, row.resolved_at, row.resolved_by = "resolved", now, actor
        if note:
            row.note = note
        self.ws.audit(session, "incident.resolve", f"incident:{row.id}",
                      {"note": note, "by": actor,
                       "time_to_restore_s": (now - as_utc(row.opened_at)).total_seconds()})

    def _open(self, session: Session, monitor: str, rule: str) -> Incident | None:
        return session.execute(select(Incident).where(
            Incident.monitor == monitor, Incident.rule == rule, Incident.status.in_(OPEN))
            .order_by(Incident.id.desc()).limit(1)).scalar_one_or_none()

    def _row(self, session: Session, incident_id: str) -> Incident:
        return row_by_id(session, Incident, incident_id, kind="incident",
                         hint="list them with 'dsops incidents ls'")


def _info(row: Incident) -> IncidentInfo:
    def at(value: datetime | None) -> datetime | None:
        return None if value is None else as_utc(value)

    return IncidentInfo(
        id=row.id, monitor=row.monitor, rule=row.rule, status=row.status, severity=row.severity,
        env=row.env, model=row.model, version=row.version, deployment_id=row.deployment_id,
        opened_at=as_utc(row.opened_at), last_fired_at=as_utc(row.last_fired_at),
        healthy_since=at(row.healthy_since), acknowledged_at=at(row.acknowledged_at),
        acknowledged_by=row.acknowledged_by, resolved_at=at(row.resolved_at),
        resolved_by=row.resolved_by, note=row.note, evidence=dict(row.evidence),
        actions=list(row.actions))
