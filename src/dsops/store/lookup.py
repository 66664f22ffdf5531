"""Finding a row by the id a person typed: the whole id, or a unique part of it."""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from dsops.core.errors import NotFound

MIN_PART = 6  # shorter parts of a UUIDv7 match too many rows to be useful
T = TypeVar("T")


def row_by_id(session: Session, model: type[T], text: str, *, kind: str,
              hint: str | None = None) -> T:
    """The row whose ``id`` is ``text``, or the only one it starts or ends with (ids are
    long; people copy the start or the end). Otherwise a NotFound naming ``kind``."""
    row = session.get(model, text)
    if row is None and len(text) >= MIN_PART:
        column: Any = model.id  # type: ignore[attr-defined]
        rows = session.execute(select(model).where(column.like(text + "%") | column.like("%" + text))
                               .limit(2)).scalars().all()
        row = rows[0] if len(rows) == 1 else None
    if row is None:
        raise NotFound(kind, text, hint=hint)
    return row
