"""Bring a store's schema to this dsops's head revision, or refuse a newer one."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.engine import Engine

from dsops.core.errors import StoreError


def _alembic_config():  # type: ignore[no-untyped-def]
    from alembic.config import Config

    from dsops.store.db import MIGRATIONS

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def known_revisions() -> set[str]:
    """Every revision in this dsops's migration scripts."""
    from alembic.script import ScriptDirectory

    return {rev.revision for rev in ScriptDirectory.from_config(_alembic_config()).walk_revisions()}


def head_revision() -> str:
    """The head of the migration scripts (must equal ``db.HEAD_REVISION``)."""
    from alembic.script import ScriptDirectory

    heads = ScriptDirectory.from_config(_alembic_config()).get_heads()
    assert len(heads) == 1, f"migrations have several heads: {heads}"
    return heads[0]


def upgrade(engine: Engine, current: str | None) -> None:
    """Upgrade to head under a lock, so two processes opening a fresh store don't race."""
    from alembic import command

    from dsops.store.db import _current_revision

    if current is not None and current not in known_revisions():
        raise StoreError(
            f"this store has schema revision {current!r}, newer than this dsops understands",
            hint="upgrade dsops (pip install -U dsops) to use this store",
        )
    config = _alembic_config()
    # One transaction holds the lock (BEGIN IMMEDIATE on SQLite, an advisory lock on
    # PostgreSQL) for the whole upgrade; Alembic joins it instead of opening its own.
    with engine.connect() as conn, conn.begin():
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(7461001)"))
        current = _current_revision(conn)  # again, under the lock
        if current is not None and current not in known_revisions():
            raise StoreError(f"this store has schema revision {current!r}, newer than dsops")
        config.attributes["connection"] = conn
        command.upgrade(config, "head")
