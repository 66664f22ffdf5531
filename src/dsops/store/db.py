"""Open the metadata store: engine set-up per backend, migrations on open, transactions."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event, inspect, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from dsops.core.errors import StoreError

# The newest migration this dsops knows; tests/store checks it is the Alembic head.
HEAD_REVISION = "0009"
MIGRATIONS = Path(__file__).parent / "migrations"


def normalise_url(url: str) -> str:
    """Accept ``postgresql://`` / ``postgres://`` and use psycopg 3 for them."""
    for prefix in ("postgresql://", "postgres://", "postgresql+psycopg2://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def redact(url: str) -> str:
    """The URL with any password hidden, for messages and logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a parseable URL: show nothing of it
        return "<store url>"


class Store:
    """A connection pool to the metadata database, migrated to this dsops's schema."""

    def __init__(self, url: str) -> None:
        self.url = normalise_url(url)
        self.is_sqlite = self.url.startswith("sqlite")
        self.engine = _create_engine(self.url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._readers = sessionmaker(
            self.engine.execution_options(dsops_read_only=True), expire_on_commit=False
        )
        try:
            self._migrate()
        except BaseException:
            self.engine.dispose()  # a store we refuse must not keep connections open
            raise

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """One unit of work: committed on success, rolled back on any exception.

        Write transactions are serialised: on SQLite by BEGIN IMMEDIATE (writers queue on
        the database lock instead of failing to upgrade a read lock halfway through), on
        PostgreSQL by locking the audit head row that every mutation updates anyway.
        """
        try:
            with self._sessions.begin() as session:
                if not self.is_sqlite:
                    # Writers queue on the audit head row, as SQLite's BEGIN IMMEDIATE
                    # makes them queue on the file: reads of the current state after this
                    # point (next version number, existing rows) cannot race another writer.
                    session.execute(text("SELECT seq FROM audit_head WHERE id = 1 FOR UPDATE"))
                yield session
        except OperationalError as exc:
            raise StoreError(f"metadata store {redact(self.url)}: {_reason(exc)}") from exc

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A session for reads only (no write lock taken on SQLite)."""
        try:
            with self._readers() as session:
                yield session
        except OperationalError as exc:
            raise StoreError(f"metadata store {redact(self.url)}: {_reason(exc)}") from exc

    @contextmanager
    def read_statement(self) -> Iterator[Any]:
        """The driver's connection, for reads of one statement each on its cursor (run
        listings): no session and no ``BEGIN``, as one statement reads one consistent
        state. A tenth of the instructions of ``read()`` (0.06 M against 0.55 M)."""
        driver_errors = self.engine.dialect.loaded_dbapi.OperationalError
        try:
            conn = self.engine.raw_connection()
        except OperationalError as exc:
            raise StoreError(f"metadata store {redact(self.url)}: {_reason(exc)}") from exc
        try:
            yield conn
        except driver_errors as exc:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise StoreError(f"metadata store {redact(self.url)}: {reason}") from exc
        finally:
            conn.close()  # back to the pool, which rolls back what the driver began

    def revision(self) -> str | None:
        """The schema revision recorded in the database (None for an empty one)."""
        with self.engine.execution_options(dsops_read_only=True).connect() as conn, conn.begin():
            return _current_revision(conn)

    def close(self) -> None:
        self.engine.dispose()

    def _migrate(self) -> None:
        try:
            current = self.revision()
        except OperationalError as exc:
            raise StoreError(
                f"cannot open metadata store {redact(self.url)}: {_reason(exc)}",
                hint="check DSOPS_STORE_URL / 'store:' in dsops.yaml and that the server is up",
            ) from None
        if current == HEAD_REVISION:
            return
        from dsops.store.migrate import upgrade

        upgrade(self.engine, current)


def _reason(exc: DBAPIError) -> str:
    return str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)


def _current_revision(conn: Any) -> str | None:
    """Read the revision on a connection that is already in a transaction."""
    if not inspect(conn).has_table("alembic_version"):
        return None
    row = conn.execute(text("SELECT version_num FROM alembic_version")).first()
    return row[0] if row else None


def _create_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        parsed = make_url(url)
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 60})

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            # Let SQLAlchemy's begin event emit BEGIN itself (pysqlite's own is deferred).
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=60000")
            # Run searches read the filter indexes and the runs' rows (~80 MB at 10,000
            # runs, mostly package lists): SQLite's default 2 MiB page cache a connection
            # re-read them from the OS on each search. 64 MiB, allocated only as pages are
            # read: `TrackingService.list` 6.3-7.3 -> 5.5-6.0 ms at 10,000 runs.
            cur.execute("PRAGMA cache_size=-65536")
            cur.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Any) -> None:
            read_only = conn.get_execution_options().get("dsops_read_only", False)
            conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

        return engine
    try:
        return create_engine(url, pool_pre_ping=True, connect_args={"connect_timeout": 10})
    except Exception as exc:  # bad URL, unknown dialect
        raise StoreError(f"invalid store URL {redact(url)}: {exc}") from None
