"""TrackingService on both store backends."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from dsops.core.errors import Conflict, NotFound, UsageError
from dsops.security.audit import AuditService
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
