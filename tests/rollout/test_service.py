"""Deployments and the rollout controller with an injected clock: policies, approvals
(four eyes), the canary state machine, shadow and blue-green, promote, abort, rollback."""

from __future__ import annotations

import textwrap
from datetime import timedelta

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

import dsops.sdk as sdk
from dsops.config import load_config
from dsops.core.clock import ManualClock
from dsops.core.errors import Conflict, NotFound, PermissionDenied, UsageError
from dsops.rollout.service import RolloutService
from dsops.security.audit import AuditService
from dsops.workspace import Workspace

ENVIRONMENTS = """
environments:
  staging: {}
  prod:
    approvals: 1
    deployers: [alice@example.com, bob@example.com]
  gated:
    require_gate: true
"""


@pytest.fixture
def ws(store_url: str, make_workspace, manual_clock: ManualClock) -> Workspace:  # type: ignore[no-untyped-def]
    """A project with environments and three versions of model ``m``."""
    ws = make_workspace(store_url=store_url, clock=manual_clock)
    (ws.root / "dsops.yaml").write_text("project: demo\n" + textwrap.dedent(ENVIRONMENTS))
    ws.config = load_config(ws.root / "dsops.yaml")
    rng = np.random.default_rng(0)
    x = pd.DataFrame({"a": rng.normal(size=50), "b": rng.normal(size=50)})
    y = (x["a"] > 0).astype(int)
    for c in (1.0, 0.1, 0.01):
        sdk.log_model(LogisticRegression(C=c).fit(x, y), "m", input_example=x.head(), workspace=ws)
    return ws


def as_user(ws: Workspace, identity: str) -> RolloutService:
    other = Workspace(ws.root, ws.config, clock=ws.clock, identity=identity, store_url=ws.store_url)
    other.__dict__["store"] = ws.store  # share the open store
    return RolloutService(other)


def test_direct_deploy_serves_at_once_and_a_second_replaces_it(ws: Workspace) -> None:
    service = RolloutService(ws)
    first = service.deploy("m@1", "staging")
    assert first.status == "promoted" and first.weight == 100
    assert [(r.model, r.stable, r.candidate) for r in service.routes("staging")] == [("m", 1, None)]
    second = service.deploy("m@2", "staging")
    assert second.previous_version == 1
    assert service.routes("staging")[0].stable == 2
    assert service.routes("prod") == []


def test_canary_steps_up_on_time_and_promotes(ws: Workspace, manual_clock: ManualClock) -> None:
    service = RolloutService(ws)
    service.deploy("m@1", "staging")
    d = service.deploy("m@2", "staging", strategy="canary", steps=[10, 50, 100], interval="5m")
    assert (d.status, d.weight) == ("progressing", 10)
    route = service.routes("staging")[0]
    assert (route.stable, route.candidate, route.weight, route.mode) == (1, 2, 10, "split")
    assert service.reconcile(manual_clock.now()) == []  # not due yet
    weights = []
    for _ in range(3):
        manual_clock.advance(timedelta(minutes=5))
        weights += [(i.status, i.weight) for i in service.reconcile(manual_clock.now())]
    assert weights == [("progressing", 50), ("progressing", 100), ("promoted", 100)]
    assert service.routes("staging")[0].stable == 2 and service.routes("staging")[0].candidate is None
    kinds = [e.kind for e in service.get(d.id).events]
    assert kinds == ["created", "started", "analysis", "step", "analysis", "step", "analysis",
                     "promoted"]


def test_approvals_are_four_eyes(ws: Workspace) -> None:
    alice = RolloutService(ws)  # the fixture's identity is alice@example.com
    d = alice.deploy("m@1", "prod")
    assert d.status == "pending_approval" and alice.routes("prod") == []
    with pytest.raises(PermissionDenied, match="cannot approve it"):
        alice.approve(d.id)
    approved = as_user(ws, "bob@example.com").approve(d.id, comment="looks good")
    assert approved.status == "promoted" and approved.approvals == ["bob@example.com"]
    with pytest.raises(Conflict, match="not waiting for approval"):
        as_user(ws, "carol@example.com").approve(d.id)


def test_only_listed_deployers_may_deploy(ws: Workspace) -> None:
    with pytest.raises(PermissionDenied, match=r"mallory@example.com may not deploy to prod"):
        as_user(ws, "mallory@example.com").deploy("m@1", "prod")


def test_an_environment_requiring_a_gate_refuses_an_ungated_version(ws: Workspace) -> None:
    with pytest.raises(PermissionDenied, match="requires a passing gate, and m@1 has none"):
        RolloutService(ws).deploy("m@1", "gated")
    from dsops.gates.service import GateService

    GateService(ws).evaluate("m@1", checks=["1 >= 0"])
    assert RolloutService(ws).deploy("m@1", "gated").status == "promoted"


def test_bad_references_and_environments(ws: Workspace) -> None:
    service = RolloutService(ws)
    with pytest.raises(NotFound, match="unknown model 'nope'"):
        service.deploy("nope@1", "staging")
    with pytest.raises(NotFound, match="versions are 1 to 3"):
        service.deploy("m@9", "staging")
    with pytest.raises(NotFound, match="unknown environment 'prd' — did you mean 'prod'"):
        service.deploy("m@1", "prd")
    with pytest.raises(UsageError, match="no stable version"):
        service.deploy("m@1", "staging", strategy="canary")
    service.deploy("m@1", "staging")
    with pytest.raises(UsageError, match="invalid --steps"):
        service.deploy("m@2", "staging", strategy="canary", steps=[50, 10])
    with pytest.raises(UsageError, match="unknown metric 'eror_rate'"):
        service.deploy("m@2", "staging", strategy="canary", checks=["eror_rate < 0.01"])
    with pytest.raises(Conflict, match="already serving"):
        service.deploy("m@1", "staging")


def test_one_rollout_at_a_time_and_abort_rolls_back(ws: Workspace) -> None:
    service = RolloutService(ws)
    service.deploy("m@1", "staging")
    d = service.deploy("m@2", "staging", strategy="canary")
    with pytest.raises(Conflict, match="already has a deployment in flight"):
        service.deploy("m@3", "staging", strategy="canary")
    aborted = service.abort(d.id, reason="wrong build")
    assert (aborted.status, aborted.weight) == ("rolled_back", 0)
    assert service.routes("staging")[0].stable == 1 and service.routes("staging")[0].candidate is None
    with pytest.raises(Conflict, match="rolled back: only a progressing or paused"):
        service.promote(d.id)


def test_promote_skips_the_remaining_steps(ws: Workspace) -> None:
    service = RolloutService(ws)
    service.deploy("m@1", "staging")
    d = service.deploy("m@2", "staging", strategy="canary")
    assert service.promote(d.id[-8:], reason="urgent fix").status == "promoted"
    assert service.routes("staging")[0].stable == 2


def test_shadow_mirrors_then_waits_for_promotion(ws: Workspace, manual_clock: ManualClock) -> None:
    service = RolloutService(ws)
    service.deploy("m@1", "staging")
    d = service.deploy("m@2", "staging", strategy="shadow", interval="1m")
    route = service.routes("staging")[0]
    assert (route.stable, route.candidate, route.mode) == (1, 2, "mirror")
    manual_clock.advance(timedelta(minutes=1))
    assert [i.status for i in service.reconcile(manual_clock.now())] == ["paused"]
    assert service.routes("staging")[0].mode == "mirror"
    assert service.promote(d.id).status == "promoted"


def test_blue_green_switches_fully_after_analysis(ws: Workspace, manual_clock: ManualClock) -> None:
    service = RolloutService(ws)
    service.deploy("m@1", "staging")
    service.deploy("m@2", "staging", strategy="blue-green", interval="1m")
    manual_clock.advance(timedelta(minutes=1))
    assert [(i.status, i.weight) for i in service.reconcile(manual_clock.now())] == [("promoted", 100)]


def test_rollback_returns_to_the_previous_version(ws: Workspace) -> None:
    service = RolloutService(ws)
    with pytest.raises(Conflict, match="not deployed in staging"):
        service.rollback("staging", "m", reason="x")
    service.deploy("m@1", "staging")
    with pytest.raises(Conflict, match="nothing to roll back to"):
        service.rollback("staging", "m", reason="x")
    service.deploy("m@2", "staging")
    rolled = service.rollback("staging", "m", reason="errors after release")
    assert rolled.status == "rolled_back" and rolled.version == 2
    assert service.routes("staging")[0].stable == 1
    actions = [e.action for e in AuditService(ws).list(limit=50)]
    assert "deployment.rolled_back" in actions and "deployment.promoted" in actions


# --- analysis over the live prediction log ----------------------------------------------


def _traffic(ws: Workspace, clock: ManualClock, *, version: int, role: str, n: int,
             error_every: int = 0, latency_ms: float = 5.0, shift: float = 0.0) -> None:
    """Log ``n`` predictions of ``m@version`` spread over the last minute."""
    from dsops.serving.predlog import PredictionLogWriter

    rng = np.random.default_rng(version)
    writer = PredictionLogWriter(ws.objects, env="staging", clock=clock)
    try:
        for i in range(n):
            failed = bool(error_every) and i % error_every == 0
            writer.append(f"{role}-{version}-{i}", "m", version,
                          None if failed else float(rng.random() + shift),
                          status="error" if failed else "ok", latency_ms=latency_ms, role=role,
                          time=clock.now() - timedelta(seconds=60 * i / n))
    finally:
        writer.close()


CANARY_CHECKS = ["error_rate < 0.05", "p99_latency_ms < 50", "psi(prediction) < 0.2"]


def _canary(ws: Workspace) -> str:
    service = RolloutService(ws)
    service.deploy("m@1", "staging")
    return service.deploy("m@2", "staging", strategy="canary", steps=[20, 100],
                          checks=CANARY_CHECKS, interval="5m").id


def test_a_healthy_canary_is_promoted(ws: Workspace, manual_clock: ManualClock) -> None:
    deployment = _canary(ws)
    service = RolloutService(ws)
    for _ in range(2):
        manual_clock.advance(timedelta(minutes=5))
        _traffic(ws, manual_clock, version=1, role="stable", n=200)
        _traffic(ws, manual_clock, version=2, role="candidate", n=100)
        service.reconcile(manual_clock.now())
    info = service.get(deployment)
    assert info.status == "promoted", info.events
    analyses = [e for e in info.events if e.kind == "analysis"]
    assert all(c["passed"] for e in analyses for c in e.details["checks"])


@pytest.mark.parametrize(("kind", "traffic", "failing"), [
    ("errors", {"error_every": 5}, "error_rate < 0.05"),
    ("latency", {"latency_ms": 80.0}, "p99_latency_ms < 50"),
    ("drift", {"shift": 3.0}, "psi(prediction) < 0.2"),
])
def test_a_failing_canary_rolls_back_by_itself(ws: Workspace, manual_clock: ManualClock, kind: str,
                                               traffic: dict[str, float], failing: str) -> None:
    deployment = _canary(ws)
    manual_clock.advance(timedelta(minutes=5))
    _traffic(ws, manual_clock, version=1, role="stable", n=200)
    _traffic(ws, manual_clock, version=2, role="candidate", n=100, **traffic)  # type: ignore[arg-type]
    service = RolloutService(ws)
    service.reconcile(manual_clock.now())
    info = service.get(deployment)
    assert (info.status, info.weight) == ("rolled_back", 0), kind
    assert info.reason == f"analysis failed: {failing}"
    assert [e.kind for e in info.events][-2:] == ["aborted", "rolled_back"]
    route = service.routes("staging")[0]
    assert (route.stable, route.candidate) == (1, None)


def test_no_traffic_waits_instead_of_failing(ws: Workspace, manual_clock: ManualClock) -> None:
    deployment = _canary(ws)
    manual_clock.advance(timedelta(minutes=5))
    service = RolloutService(ws)
    service.reconcile(manual_clock.now())
    info = service.get(deployment)
    assert (info.status, info.step_index) == ("progressing", 0)
    assert info.next_analysis_at is not None


def test_without_a_reference_the_environments_declared_model_is_deployed(ws: Workspace) -> None:
    service = RolloutService(ws)
    with pytest.raises(UsageError, match="staging declares no 'deploy: model:'"):
        service.deploy(None, "staging")
    path = ws.root / "dsops.yaml"
    path.write_text(path.read_text().replace("  staging: {}", "  staging:\n    deploy: {model: m@2}"))
    ws.config = load_config(path)
    assert service.deploy(None, "staging").ref == "m@2"
