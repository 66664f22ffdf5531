"""Listings read each run's params and latest metrics from ``run_values``: every writer
keeps it equal to the per-key rows, and runs a store held before it existed (migration
0009) are filled in on upgrade."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, insert, select

from dsops.store import Store
from dsops.store.db import HEAD_REVISION, MIGRATIONS
from dsops.store.models import Run, RunLatestMetric, RunParam
from dsops.tracking.service import TrackingService

# Floats whose shortest text needs all 17 digits, or sits at the ends of the range.
EXACT = [0.1 + 0.2, 1 / 3, 2 / 3 * 1e-300, 1.7976931348623157e308, 2.2250738585072014e-308]


@pytest.fixture
def tracking(make_workspace, store_url, manual_clock) -> TrackingService:
    return TrackingService(make_workspace(store_url=store_url, clock=manual_clock))


def per_key_rows(store: Store, run_id: str) -> tuple[dict[str, str], dict[str, float]]:
    with store.read() as session:
        params = dict(session.execute(select(RunParam.key, RunParam.value)
                                      .where(RunParam.run_id == run_id)).all())
        metrics = dict(session.execute(select(RunLatestMetric.key, RunLatestMetric.value)
                                       .where(RunLatestMetric.run_id == run_id)).all())
    return params, metrics


def test_listings_equal_the_per_key_rows_after_every_kind_of_write(
        tracking: TrackingService) -> None:
    now = tracking.ws.now()
    a = tracking.start_run("a", params={"lr": 0.1, "model": "lgbm"})
    tracking.log_params(a.id, {"depth": 3, "lr": 0.1, "note": 'quotes " and \\ and ünïcode'})
    tracking.log_metrics(a.id, [(f"m{i}", v, 0, now) for i, v in enumerate(EXACT)])
    tracking.log_metrics(a.id, [("m0", 9.0, -1, now)])  # a lower step is not the latest
    tracking.end_run(a.id, metrics=[("m1", 2.5, 5, now), ("loss", 0.25, 1, now)])
    b = tracking.start_run("b")  # nothing logged
    c = tracking.start_run("c", params={"only": "params"})

    listed = {r.id: r for r in tracking.list()}
    assert set(listed) == {a.id, b.id, c.id}
    for run_id in listed:
        params, metrics = per_key_rows(tracking.ws.store, run_id)
        assert listed[run_id].params == params == tracking.get(run_id).params
        assert listed[run_id].metrics == metrics == tracking.get(run_id).metrics
    assert listed[a.id].metrics == {"m0": EXACT[0], "m1": 2.5, "m2": EXACT[2],
                                    "m3": EXACT[3], "m4": EXACT[4], "loss": 0.25}
    assert listed[a.id].params["note"] == 'quotes " and \\ and ünïcode'
    assert listed[b.id].params == listed[b.id].metrics == listed[c.id].metrics == {}


@contextmanager
def alembic_on(store: Store) -> Iterator[tuple[Config, Connection]]:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with store.engine.connect() as conn, conn.begin():
        config.attributes["connection"] = conn
        yield config, conn


def test_runs_stored_before_run_values_are_listed_with_their_values(
        store_url: str, make_workspace) -> None:
    """A store at revision 0008 (no ``run_values``) with runs, params and metrics, as
    dsops then wrote them: opening it upgrades it and fills ``run_values`` in."""
    store = Store(store_url)
    started = datetime(2026, 1, 1, tzinfo=UTC)
    with alembic_on(store) as (config, conn):
        command.downgrade(config, "0008")
        conn.execute(insert(Run), [
            {"id": f"run-{i}", "name": f"r{i}", "kind": "manual", "status": "finished",
             "created_by": "x", "started_at": started + timedelta(hours=i)} for i in range(3)])
        conn.execute(insert(RunParam), [
            {"run_id": "run-0", "key": "model", "value": "lgbm", "number": None},
            {"run_id": "run-0", "key": "lr", "value": "0.1", "number": 0.1},
            {"run_id": "run-1", "key": "model", "value": "xgb", "number": None}])
        conn.execute(insert(RunLatestMetric), [
            {"run_id": "run-0", "key": "auc", "value": EXACT[0], "step": 3},
            {"run_id": "run-2", "key": "auc", "value": EXACT[1], "step": 0}])
    assert store.revision() == "0008"
    store.close()

    tracking = TrackingService(make_workspace(store_url=store_url))  # opening upgrades
    assert tracking.ws.store.revision() == HEAD_REVISION
    listed = {r.id: (r.params, r.metrics) for r in tracking.list()}
    assert listed == {"run-0": ({"lr": "0.1", "model": "lgbm"}, {"auc": EXACT[0]}),
                      "run-1": ({"model": "xgb"}, {}),
                      "run-2": ({}, {"auc": EXACT[1]})}


def test_listing_filters_run_as_the_driver_takes_them(tracking: TrackingService,
                                                      manual_clock) -> None:
    """A listing's statement goes to the driver as compiled SQL: times (stored as text on
    SQLite), expanded `in` lists and case-sensitive `like` behave as through SQLAlchemy."""
    t0 = manual_clock.now()
    runs = []
    for name, model in (("train-a", "lgbm"), ("Train-b", "xgb"), ("eval", "rf")):
        runs.append(tracking.start_run(name, params={"model": model}).id)
        manual_clock.advance(60)

    def listed(text: str, sort: str | None = None) -> list[str]:
        return [r.id for r in tracking.list(filter=text, sort=sort)]

    second = (t0 + timedelta(seconds=60)).isoformat()
    assert listed(f"started_at >= '{second}'") == [runs[2], runs[1]]
    assert listed(f"started_at > '{second}'") == [runs[2]]
    assert listed("started_at = '2026-01-01'") == runs[::-1]
    assert listed("params.model in ('lgbm', 'rf')", sort="name") == [runs[2], runs[0]]
    assert listed("name like 'train%' or params.model not in ('lgbm', 'xgb')") == \
        [runs[2], runs[0]]
    assert listed("name like 'train%' or params.model not in ('lgbm', 'xgb')") == \
        [runs[2], runs[0]]  # the second time from the compiled statement
