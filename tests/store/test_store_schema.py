"""The metadata store: backends, migrations on open, refusal of newer schemas."""

from __future__ import annotations

import socket
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text

from dsops.core.errors import StoreError
from dsops.store import Store
from dsops.store.db import HEAD_REVISION, normalise_url
from dsops.store.migrate import head_revision
from dsops.store.models import Base

TABLES = {"alembic_version", *(t.name for t in Base.metadata.sorted_tables)}


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    opened = Store(store_url)
    yield opened
    opened.close()


def table_names(url: str) -> set[str]:
    engine = create_engine(normalise_url(url))
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_head_revision_matches_the_migration_scripts() -> None:
    assert head_revision() == HEAD_REVISION


def test_fresh_store_is_migrated_to_head(store: Store, store_url: str) -> None:
    assert store.revision() == HEAD_REVISION
    assert table_names(store_url) >= TABLES


def test_schema_matches_the_models(store: Store) -> None:
    with store.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(context, Base.metadata)
    assert diff == []


def test_fresh_sqlite_store_uses_wal(tmp_path: Path) -> None:
    path = tmp_path / "state" / "dsops.db"
    Store(f"sqlite:///{path}").close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


@pytest.mark.parametrize("store_url", ["postgresql"], indirect=True)
def test_postgresql_tables_land_in_the_schema_of_the_url(store: Store, store_url: str) -> None:
    schema = store_url.rsplit("%3D", 1)[1]
    with store.engine.connect() as conn:
        assert conn.execute(text("SELECT current_schema()")).scalar() == schema
        in_schema = set(conn.execute(
            text("SELECT table_name FROM information_schema.tables WHERE table_schema = :s"),
            {"s": schema},
        ).scalars())
    assert in_schema == TABLES


def test_empty_database_is_upgraded_on_open(store_url: str) -> None:
    # An old store is one at an earlier revision; with one migration so far, the oldest
    # possible store is an empty database.
    assert table_names(store_url) == set()
    store = Store(store_url)
    try:
        assert store.revision() == HEAD_REVISION
        with store.read() as session:
            assert session.execute(text("SELECT seq FROM audit_head")).scalar_one() == 0
    finally:
        store.close()
    reopened = Store(store_url)  # opening an up-to-date store changes nothing
    assert reopened.revision() == HEAD_REVISION
    reopened.close()


def test_newer_store_is_refused_and_left_unchanged(store: Store, store_url: str) -> None:
    with store.transaction() as session:
        session.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    store.close()
    before = table_names(store_url)

    with pytest.raises(StoreError) as info:
        Store(store_url)
    message = str(info.value)
    assert "'9999'" in message and "newer" in message and "upgrade dsops" in message

    assert table_names(store_url) == before
    engine = create_engine(normalise_url(store_url))
    with engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == "9999"
    engine.dispose()


def test_unreachable_postgresql_is_a_quick_store_error() -> None:
    port = closed_port()
    started = time.monotonic()
    with pytest.raises(StoreError) as info:
        Store(f"postgresql://postgres:s3cret@127.0.0.1:{port}/test")
    assert time.monotonic() - started < 5
    message = str(info.value)
    assert f"cannot open metadata store postgresql+psycopg://postgres:***@127.0.0.1:{port}/test" \
        in message
    assert "s3cret" not in message
    assert "DSOPS_STORE_URL" in message
    assert info.value.exit_code == 3


def test_unknown_store_url_scheme_is_a_store_error() -> None:
    with pytest.raises(StoreError, match="invalid store URL"):
        Store("mongodb://localhost/dsops")


def test_transactions_roll_back_on_error(store: Store) -> None:
    with pytest.raises(RuntimeError), store.transaction() as session:
        session.execute(text("UPDATE audit_head SET seq = 42"))
        raise RuntimeError("boom")
    with store.read() as session:
        assert session.execute(text("SELECT seq FROM audit_head")).scalar_one() == 0
