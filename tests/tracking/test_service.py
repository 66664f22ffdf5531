"""TrackingService on both store backends."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from dsops.core.errors import Conflict, NotFound, UsageError
from dsops.security.audit import AuditService
from dsops.tracking.models import RunSummary
from dsops.tracking.service import TrackingService


@pytest.fixture
def tracking(make_workspace, store_url, manual_clock) -> TrackingService:
    return TrackingService(make_workspace(store_url=store_url, clock=manual_clock))


def test_run_lifecycle(tracking: TrackingService, manual_clock, tmp_path: Path) -> None:
    run = tracking.start_run("train", params={"lr": 0.1, "model": "lgbm", "deep": True})
    assert run.status == "running" and run.params == {"lr": "0.1", "model": "lgbm",
                                                      "deep": "true"}
    assert run.environment["python"] and "sqlalchemy" in run.environment["packages"]
    t0 = manual_clock.now()
    rows = [("loss", 1.0 / (i + 1), i, t0 + timedelta(seconds=i)) for i in range(100)]
    assert tracking.log_metrics(run.id, rows) == 100
    tracking.log_metrics(run.id, [("auc", 0.81, 0, t0)])
    (tmp_path / "model.txt").write_text("weights")
    tracking.log_artifact(run.id, tmp_path / "model.txt")
    tracking.add_lineage(["data:credit@2"], [f"run:{run.id}"])
    manual_clock.advance(42)
    done = tracking.end_run(run.id, exit_code=0)
    assert done.status == "finished" and done.duration_s == 42
    assert done.metrics == {"loss": pytest.approx(0.01), "auc": 0.81}
    assert [a.path for a in done.artifacts] == ["model.txt"]
    assert done.inputs == ["data:credit@2"]
    history = tracking.metric_history(run.id[-8:], "loss")
    assert [p.step for p in history] == list(range(100))
    assert [p.at for p in history] == [at for _, _, _, at in rows]  # times round-trip, UTC
    actions = [e.action for e in AuditService(tracking.ws).list()]
    assert actions[:3] == ["run.end", "run.artifact", "run.start"]


def test_bad_input(tracking: TrackingService) -> None:
    run = tracking.start_run("x", params={"lr": 0.1})
    with pytest.raises(UsageError, match="finite number"):
        tracking.log_metrics(run.id, [("loss", float("nan"), 0, tracking.ws.now())])
    with pytest.raises(Conflict, match="cannot change"):
        tracking.log_params(run.id, {"lr": 0.2})
    tracking.log_params(run.id, {"lr": 0.1})  # same value again is fine
    with pytest.raises(NotFound, match="unknown run"):
        tracking.get("0000dead")
    with pytest.raises(NotFound, match="unknown metric 'los'"):
        tracking.log_metrics(run.id, [("loss", 1.0, 0, tracking.ws.now())]) and \
            tracking.metric_history(run.id, "los")
    with pytest.raises(UsageError):
        tracking.end_run(run.id, "exploded")


def test_compare(tracking: TrackingService) -> None:
    a = tracking.start_run("a", params={"lr": 0.1, "depth": 3})
    b = tracking.start_run("b", params={"lr": 0.2, "depth": 3})
    now = tracking.ws.now()
    tracking.log_metrics(a.id, [("auc", 0.8, 0, now)])
    tracking.log_metrics(b.id, [("auc", 0.85, 0, now)])
    c = tracking.compare([a.id, b.id])
    assert c.params == {"depth": ["3", "3"], "lr": ["0.1", "0.2"]}
    assert c.differing_params == ["lr"] and c.differing_metrics == ["auc"]
    with pytest.raises(UsageError):
        tracking.compare([a.id])


def test_end_run_stores_the_last_values_with_the_end(tracking: TrackingService) -> None:
    run = tracking.start_run("train")
    t0 = tracking.ws.now().timestamp()
    done = tracking.end_run(run.id, metrics=[("loss", 0.5, 0, t0), ("loss", 0.25, 1, t0 + 1)])
    assert done.status == "finished" and done.metrics == {"loss": 0.25}
    assert [p.value for p in tracking.metric_history(run.id, "loss")] == [0.5, 0.25]


def test_a_bad_value_in_the_last_batch_leaves_the_run_running(tracking: TrackingService) -> None:
    run = tracking.start_run("train")
    now = tracking.ws.now()
    with pytest.raises(UsageError, match="finite number"):
        tracking.end_run(run.id, metrics=[("loss", 0.5, 0, now), ("loss", float("inf"), 1, now)])
    info = tracking.get(run.id)
    assert info.status == "running" and info.metrics == {}


def test_latest_value_is_the_highest_step_and_a_tie_goes_to_the_later_row(
        tracking: TrackingService) -> None:
    run = tracking.start_run("train")
    now = tracking.ws.now()
    tracking.log_metrics(run.id, [("a", 1.0, 5, now), ("b", 7.0, 0, now), ("a", 2.0, 3, now),
                                  ("a", 3.0, 5, now)])
    assert tracking.get(run.id).metrics == {"a": 3.0, "b": 7.0}
    tracking.log_metrics(run.id, [("a", 4.0, 4, now)])  # a lower step: not the latest
    assert tracking.get(run.id).metrics["a"] == 3.0
    tracking.log_metrics(run.id, [("a", 5.0, 5, now), ("b", 8, 1, now)])  # same step, later
    assert tracking.get(run.id).metrics == {"a": 5.0, "b": 8.0}
    assert [p.value for p in tracking.metric_history(run.id, "a")] == [2.0, 4.0, 1.0, 3.0, 5.0]


def test_metric_times_round_trip_to_the_microsecond(tracking: TrackingService) -> None:
    """Epoch seconds (what the SDK buffers) and datetimes (naive = UTC) are stored in UTC
    and read back as ``datetime.fromtimestamp`` would round them."""
    from datetime import UTC, datetime

    run = tracking.start_run("times")
    epochs = [1796000000.1234565, 1796000000.9999996, -12345.6789, 0.0, 1796000001.0000004]
    naive = datetime(2026, 11, 30, 12, 0, 0, 123456)
    rows = [("t", 1.0, i, at) for i, at in enumerate(epochs)]
    tracking.log_metrics(run.id, [*rows, ("t", 1.0, len(rows), naive)])
    got = [p.at for p in tracking.metric_history(run.id, "t")]
    assert got == [*(datetime.fromtimestamp(at, UTC) for at in epochs),
                   naive.replace(tzinfo=UTC)]


@pytest.mark.parametrize(("row", "message"), [
    (("loss", True, 0), "finite number"),
    (("loss", "0.5", 0), "finite number"),
    (("loss", float("nan"), 0), "finite number"),
    (("", 0.5, 0), "metric name"),
    (("x" * 257, 0.5, 0), "metric name"),
    ((3, 0.5, 0), "metric name"),
    (("loss", 0.5, 1.5), "step must be an integer"),
])
def test_bad_metric_rows_write_nothing(tracking: TrackingService, row: tuple, message: str) -> None:
    run = tracking.start_run("bad")
    now = tracking.ws.now()
    with pytest.raises(UsageError, match=message):
        tracking.log_metrics(run.id, [("ok", 1.0, 0, now), (*row, now)])
    assert tracking.get(run.id).metrics == {}


def test_list_returns_summaries_get_the_whole_run(tracking: TrackingService,
                                                 manual_clock) -> None:
    a = tracking.start_run("a", params={"model": "lgbm", "lr": 0.1})
    tracking.log_metrics(a.id, [("auc", 0.9, 0, manual_clock.now())])
    manual_clock.advance(5)
    tracking.end_run(a.id)
    b = tracking.start_run("b", params={"model": "xgb"})
    tracking.add_lineage(["data:credit@1"], [f"run:{b.id}"])
    listed = tracking.list()
    assert [r.id for r in listed] == [b.id, a.id]  # newest first
    assert isinstance(listed[0], RunSummary)
    assert listed[1].params == {"model": "lgbm", "lr": "0.1"}
    assert listed[1].metrics == {"auc": 0.9} and listed[1].duration_s == 5
    assert listed[0].ended_at is None and listed[0].duration_s is None
    assert tracking.list(filter="metrics.auc > 0.5") == [listed[1]]
    assert [r.id for r in tracking.list(sort="params.model desc")] == [b.id, a.id]
    full = tracking.get(b.id)
    assert full.inputs == ["data:credit@1"] and full.environment is not None


def test_list_of_many_runs_and_the_first_of_them(tracking: TrackingService) -> None:
    """2,000 runs listed whole (more than SQLite's historical 999 parameters a statement,
    should a listing ever bind ids again), and the first ``limit`` of them in the sort's
    order (on SQLite the statement has no LIMIT: the reader stops after ``limit`` rows)."""
    from sqlalchemy import insert

    from dsops.store.models import Run, RunLatestMetric, RunParam, RunValues
    from dsops.tracking.run_values import encode

    now = tracking.ws.now()
    ids = [f"run-{i:05d}" for i in range(2000)]
    with tracking.ws.store.transaction() as session:
        session.execute(insert(Run), [
            {"id": i, "name": "r", "kind": "manual", "status": "finished", "created_by": "x",
             "started_at": now} for i in ids])
        session.execute(insert(RunParam), [
            {"run_id": i, "key": "n", "value": i, "number": None} for i in ids])
        session.execute(insert(RunLatestMetric), [
            {"run_id": i, "key": "m", "value": float(n), "step": 0} for n, i in enumerate(ids)])
        session.execute(insert(RunValues), [  # as the service leaves them
            {"run_id": i, **encode({"n": i}, {"m": float(n)})} for n, i in enumerate(ids)])
    listed = tracking.list(limit=5000, sort="metrics.m")
    assert [r.id for r in listed] == ids
    assert all(r.params == {"n": r.id} and r.metrics["m"] == n for n, r in enumerate(listed))
    assert [r.id for r in tracking.list(limit=3, sort="metrics.m desc")] == ids[:-4:-1]
    assert [r.id for r in tracking.list(limit=2, filter="metrics.m >= 10",
                                        sort="params.n")] == ids[10:12]
    with pytest.raises(UsageError, match="limit must be at least 1"):
        tracking.list(limit=0)
