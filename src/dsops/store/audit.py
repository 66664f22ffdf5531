"""The tamper-evident audit chain: every mutation appends an event in its own transaction.

Each event's hash covers its content and the previous event's hash; ``audit_head`` holds
the last sequence number and hash and is row-locked by every append, so concurrent writers
form one chain. Editing, deleting or reordering any event breaks ``verify``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from dsops.core.hashing import hash_bytes
from dsops.store.models import AuditEvent, AuditHead

GENESIS = "0" * 64


def _canonical_time(at: datetime) -> str:
    if at.tzinfo is None:  # SQLite returns naive datetimes; they were stored as UTC
        at = at.replace(tzinfo=UTC)
    return at.astimezone(UTC).isoformat(timespec="microseconds")


def event_hash(
    seq: int, at: datetime, actor: str, action: str, target: str, details: dict[str, Any],
    prev_hash: str,
) -> str:
    """The chain hash of one event (canonical JSON, BLAKE3)."""
    body = json.dumps(
        [seq, _canonical_time(at), actor, action, target, details, prev_hash],
        sort_keys=True, separators=(",", ":"), default=str,
    )
    return hash_bytes(body.encode())


def append_event(
    session: Session, *, at: datetime, actor: str, action: str, target: str,
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append one event to the chain inside the caller's transaction."""
    details = json.loads(json.dumps(details or {}, default=str))  # what the store will hold
    head = session.execute(
        select(AuditHead).where(AuditHead.id == 1).with_for_update()
    ).scalar_one()
    seq = head.seq + 1
    at = at.astimezone(UTC)
    digest = event_hash(seq, at, actor, action, target, details, head.hash)
    event = AuditEvent(seq=seq, at=at, actor=actor, action=action, target=target,
                       details=details, prev_hash=head.hash, hash=digest)
    session.add(event)
    head.seq, head.hash = seq, digest
    session.flush()
    return event


@dataclass(frozen=True)
class VerifyResult:
    """Outcome of recomputing the chain: ``ok`` or the first problem found."""

    ok: bool
    events: int
    problem: str | None = None
    seq: int | None = None


def verify_chain(session: Session, batch: int = 5000) -> VerifyResult:
    """Recompute every hash in sequence order; report the first broken or missing event."""
    prev_hash, expected_seq, count = GENESIS, 1, 0
    last_seq = 0
    while True:
        rows = session.execute(
            select(AuditEvent).where(AuditEvent.seq > last_seq)
            .order_by(AuditEvent.seq).limit(batch)
        ).scalars().all()
        if not rows:
            break
        for ev in rows:
            if ev.seq != expected_seq:
                return VerifyResult(False, count, f"event {expected_seq} is missing", expected_seq)
            if ev.prev_hash != prev_hash:
                return VerifyResult(False, count,
                                    f"event {ev.seq} does not follow event {ev.seq - 1}", ev.seq)
            recomputed = event_hash(ev.seq, ev.at, ev.actor, ev.action, ev.target,
                                    ev.details, ev.prev_hash)
            if recomputed != ev.hash:
                return VerifyResult(False, count,
                                    f"event {ev.seq} was altered after it was written", ev.seq)
            prev_hash, expected_seq, count = ev.hash, ev.seq + 1, count + 1
            last_seq = ev.seq
        session.expunge_all()
    head = session.get(AuditHead, 1)
    head_seq = head.seq if head else 0
    if head_seq != count or (head is not None and head.hash != prev_hash):
        return VerifyResult(False, count,
                            f"the chain ends at event {count} but {head_seq} were written: "
                            "events at the end were deleted", count + 1)
    return VerifyResult(True, count)
