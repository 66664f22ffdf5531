"""The metadata store: SQLAlchemy 2 models, Alembic migrations, SQLite or PostgreSQL."""

from dsops.store.db import Store

__all__ = ["Store"]
