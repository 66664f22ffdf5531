"""AuditService: read and verify the audit chain (appending is done by every mutation)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import select

from dsops.core.clock import as_utc
from dsops.store.audit import verify_chain
from dsops.store.models import AuditEvent
from dsops.workspace import Workspace


class AuditEventView(BaseModel):
    """One audit event as shown to users."""

    seq: int
    at: datetime
    actor: str
    action: str
    target: str
    details: dict[str, Any]
    hash: str


class VerifyReport(BaseModel):
    """Result of ``audit verify``."""

    ok: bool
    events: int
    problem: str | None = None
    seq: int | None = None


class AuditService:
    """Operations on the audit log."""

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws

    def verify(self) -> VerifyReport:
        """Recompute the chain from the first event."""
        with self.ws.store.read() as session:
            r = verify_chain(session)
        return VerifyReport(ok=r.ok, events=r.events, problem=r.problem, seq=r.seq)

    def list(self, *, limit: int = 50, action: str | None = None,
             target: str | None = None) -> list[AuditEventView]:
        """The newest events first, optionally filtered."""
        query = select(AuditEvent).order_by(AuditEvent.seq.desc()).limit(limit)
        if action:
            query = query.where(AuditEvent.action == action)
        if target:
            query = query.where(AuditEvent.target == target)
        with self.ws.store.read() as session:
            return [
                AuditEventView(seq=e.seq, at=as_utc(e.at), actor=e.actor, action=e.action,
                               target=e.target, details=e.details, hash=e.hash)
                for e in session.execute(query).scalars()
            ]

