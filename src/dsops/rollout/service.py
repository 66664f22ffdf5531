"""Deployments and progressive delivery: policies (deployers, approvals, gate), the rollout
state machine advanced by ``reconcile(now)``, rollback, and the routes the gateway serves.

pending_approval → progressing(step i) → paused → promoted | aborted → rolled_back
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from dsops.config.models import EnvironmentConfig
from dsops.core.clock import as_utc
from dsops.core.durations import parse_duration
from dsops.core.errors import Conflict, NotFound, PermissionDenied, UsageError
from dsops.core.ids import new_id
from dsops.rollout.models import IN_FLIGHT, STRATEGIES, DeploymentEvent, DeploymentInfo, Route
from dsops.store.lookup import row_by_id
from dsops.store.models import Approval, Deployment, DeploymentEventRow, GateResult
from dsops.workspace import Workspace

DEFAULT_STEPS = [10, 50, 100]
DEFAULT_INTERVAL = "5m"
SYSTEM = "dsops-rollout"  # the actor of transitions the controller makes on its own
STABLE_LOOKBACK_S = 3600.0  # how far back the stable side looks when it has no fresh traffic


class RolloutService:
    """Deploy, approve, advance, promote, abort and roll back model versions."""

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws

    # --- commands --------------------------------------------------------------------

    def deploy(self, ref: str | None, env: str, *, strategy: str | None = None,
               steps: list[int] | None = None, checks: list[str] | None = None,
               interval: str | None = None, options: dict[str, Any] | None = None,
               reason: str | None = None) -> DeploymentInfo:
        """Deploy a model version to ``env`` under the environment's policies; without
        ``ref``, the model the environment's ``deploy:`` names."""
        from dsops.registry.service import RegistryService

        config = self._environment(env)
        if config.deployers and self.ws.identity not in config.deployers:
            raise PermissionDenied(f"{self.ws.identity} may not deploy to {env}",
                                   hint=f"allowed deployers: {', '.join(config.deployers)}")
        if ref is None:
            if config.deploy is None:
                raise UsageError(f"which model? {env} declares no 'deploy: model:' in dsops.yaml",
                                 hint=f"dsops deploy NAME@VERSION --env {env}")
            ref = config.deploy.model
        version = RegistryService(self.ws).show(ref)
        spec = config.deploy if config.deploy and config.deploy.model.split("@")[0] == version.name \
            else None
        strategy = strategy or (spec.strategy if spec else "direct")
        if strategy not in STRATEGIES:
            raise UsageError(f"unknown strategy {strategy!r}: use {', '.join(STRATEGIES)}")
        steps = _steps(steps or (spec.steps if spec else DEFAULT_STEPS)) if strategy == "canary" \
            else [100]
        checks = list(checks if checks is not None else (spec.analysis.checks if spec else []))
        _validate_checks(checks)
        interval_s = parse_duration(interval or (spec.analysis.every if spec else DEFAULT_INTERVAL))
        opts = {"sticky_header": None, "sample_rate": 1.0, "max_batch": 32, "max_wait_us": 2000,
                **{k: v for k, v in (options or {}).items() if v is not None}}
        now = self.ws.now()
        with self.ws.store.transaction() as session:
            row_version = RegistryService(self.ws).resolve(version.ref)
            if config.require_gate:
                gate = session.execute(
                    select(GateResult).where(GateResult.model_version_id == row_version.id)
                    .order_by(GateResult.id.desc()).limit(1)).scalar_one_or_none()
                if gate is None or not gate.passed:
                    raise PermissionDenied(
                        f"{env} requires a passing gate, and {version.ref} "
                        f"{'has none' if gate is None else 'failed its latest gate'}",
                        hint=f"run 'dsops gate {version.ref}' first")
            busy = self._in_flight(session, env, version.name)
            if busy is not None:
                raise Conflict(f"{version.name} already has a deployment in flight in {env}: "
                               f"{busy.id} ({busy.status}, version {busy.version})",
                               hint=f"promote or abort it first: dsops rollout abort {busy.id}")
            stable = self._stable(session, env, version.name)
            if stable is not None and stable.version == version.version:
                raise Conflict(f"{version.ref} is already serving in {env}")
            if stable is None and strategy != "direct":
                raise UsageError(f"{version.name} has no stable version in {env} yet: a {strategy} "
                                 "needs one to compare with",
                                 hint="deploy the first version with --strategy direct")
            row = Deployment(
                id=new_id(), env=env, model=version.name, version=version.version,
                model_version_id=row_version.id,
                previous_version=stable.version if stable else None, strategy=strategy,
                status="pending_approval", steps=steps, step_index=0, weight=0,
                analysis={"checks": checks, "interval_s": interval_s}, options=opts,
                approvals_required=config.approvals, created_at=now,
                created_by=self.ws.identity, updated_at=now, reason=reason)
            session.add(row)
            session.flush()
            self._event(session, row, "created", None, row.status,
                        {"strategy": strategy, "steps": steps, "checks": checks,
                         "previous_version": row.previous_version, "reason": reason},
                        actor=self.ws.identity)
            if config.approvals == 0:
                self._start(session, row, now)
            return self._info(session, row)

    def approve(self, deployment_id: str, *, comment: str | None = None) -> DeploymentInfo:
        """Approve a deployment waiting for approval; its author cannot (four eyes)."""
        now = self.ws.now()
        with self.ws.store.transaction() as session:
            row = self._row(session, deployment_id)
            if row.status != "pending_approval":
                raise Conflict(f"deployment {row.id} is {row.status}: it is not waiting for approval")
            if row.created_by == self.ws.identity:
                raise PermissionDenied(
                    f"{self.ws.identity} created deployment {row.id} and cannot approve it",
                    hint="four eyes: another person must approve it")
            if session.get(Approval, (row.id, self.ws.identity)) is not None:
                raise Conflict(f"{self.ws.identity} already approved deployment {row.id}")
            session.add(Approval(deployment_id=row.id, approver=self.ws.identity, at=now,
                                 comment=comment))
            session.flush()
            count = len(self._approvers(session, row.id))
            self._event(session, row, "approved", row.status, row.status,
                        {"approver": self.ws.identity, "comment": comment,
                         "approvals": count, "required": row.approvals_required},
                        actor=self.ws.identity)
            if count >= row.approvals_required:
                self._start(session, row, now)
            return self._info(session, row)

    def promote(self, deployment_id: str, *, reason: str | None = None) -> DeploymentInfo:
        """Send all traffic to the candidate now (skipping the remaining steps)."""
        now = self.ws.now()
        with self.ws.store.transaction() as session:
            row = self._row(session, deployment_id)
            if row.status not in ("progressing", "paused"):
                raise Conflict(f"deployment {row.id} is {row.status.replace('_', ' ')}: only a "
                               "progressing or paused deployment can be promoted",
                               hint="deploy the version again to start a new rollout"
                               if row.status in ("rolled_back", "aborted") else None)
            self._promote(session, row, now, actor=self.ws.identity, reason=reason)
            return self._info(session, row)

    def abort(self, deployment_id: str, *, reason: str) -> DeploymentInfo:
        """Stop a deployment in flight; a rollout in progress is rolled back."""
        now = self.ws.now()
        with self.ws.store.transaction() as session:
            row = self._row(session, deployment_id)
            if row.status not in IN_FLIGHT:
                raise Conflict(f"deployment {row.id} is {row.status}: nothing to abort")
            self._abort(session, row, now, actor=self.ws.identity, reason=reason)
            return self._info(session, row)

    def rollback(self, env: str, model: str, *, reason: str) -> DeploymentInfo:
        """Go back to the version that served before the current one (instant switch)."""
        now = self.ws.now()
        self._environment(env)
        with self.ws.store.transaction() as session:
            busy = self._in_flight(session, env, model)
            if busy is not None:
                self._abort(session, busy, now, actor=self.ws.identity, reason=reason)
                return self._info(session, busy)
            stable = self._stable(session, env, model)
            if stable is None:
                raise Conflict(f"{model} is not deployed in {env}: nothing to roll back")
            before = session.execute(
                select(Deployment).where(Deployment.env == env, Deployment.model == model,
                                         Deployment.status == "promoted", Deployment.id != stable.id)
                .order_by(Deployment.promoted_at.desc(), Deployment.id.desc()).limit(1)).scalar_one_or_none()
            if before is None:
                raise Conflict(f"{model}@{stable.version} is the first version deployed in {env}: "
                               "there is nothing to roll back to")
            self._transition(session, stable, "rolled_back", now, actor=self.ws.identity,
                             details={"reason": reason, "back_to": before.version})
            stable.weight, stable.reason, stable.ended_at = 0, reason, now
            return self._info(session, stable)

    def reconcile(self, now: datetime | None = None) -> list[DeploymentInfo]:
        """Advance every rollout whose analysis is due: evaluate its checks over the live
        window, then step up, promote, pause (shadow) or abort and roll back."""
        now = now or self.ws.now()
        with self.ws.store.read() as session:
            due = session.execute(select(Deployment.id).where(
                Deployment.status == "progressing", Deployment.next_analysis_at <= now)
                .order_by(Deployment.id)).scalars().all()
        changed = []
        for deployment_id in due:
            info = self._analyse(deployment_id, now)
            if info is not None:
                changed.append(info)
        return changed

    # --- reading ---------------------------------------------------------------------

    def get(self, deployment_id: str) -> DeploymentInfo:
        """One deployment with its approvals and events."""
        with self.ws.store.read() as session:
            return self._info(session, self._row(session, deployment_id), events=True)

    def list(self, *, env: str | None = None, model: str | None = None,
             active: bool = False, limit: int = 50) -> list[DeploymentInfo]:
        """Deployments, newest first; ``active``: in flight or serving as stable."""
        with self.ws.store.read() as session:
            query = select(Deployment).order_by(Deployment.id.desc()).limit(limit)
            if env:
                query = query.where(Deployment.env == env)
            if model:
                query = query.where(Deployment.model == model)
            rows = session.execute(query).scalars().all()
            if active:
                stable_ids = {r.id for r in (self._stable(session, d.env, d.model) for d in rows) if r}
                rows = [r for r in rows if r.status in IN_FLIGHT or r.id in stable_ids]
            return [self._info(session, row) for row in rows]

    def routes(self, env: str) -> list[Route]:
        """What the gateway serves in ``env`` now: per model, stable and candidate."""
        with self.ws.store.read() as session:
            models = session.execute(select(Deployment.model).where(Deployment.env == env)
                                     .distinct().order_by(Deployment.model)).scalars().all()
            routes = []
            for model in models:
                stable = self._stable(session, env, model)
                flight = self._in_flight(session, env, model)
                if flight is not None and flight.status == "pending_approval":
                    flight = None
                if stable is None and flight is None:
                    continue
                source = flight or stable
                assert source is not None
                opts = source.options
                routes.append(Route(
                    model=model, stable=stable.version if stable else None,
                    candidate=flight.version if flight else None,
                    weight=flight.weight if flight else 0,
                    mode="mirror" if flight and flight.strategy in ("shadow", "blue-green")
                    else "split",
                    deployment=source.id, stable_deployment=stable.id if stable else None,
                    sticky_header=opts.get("sticky_header"),
                    sample_rate=float(opts.get("sample_rate", 1.0)),
                    max_batch=int(opts.get("max_batch", 32)),
                    max_wait_us=int(opts.get("max_wait_us", 2000))))
            return routes

    # --- the state machine -----------------------------------------------------------

    def _start(self, session: Session, row: Deployment, now: datetime) -> None:
        if row.strategy == "direct":
            self._promote(session, row, now, actor=SYSTEM)
            return
        row.step_index = 0
        row.weight = row.steps[0] if row.strategy == "canary" else 0
        self._begin_step(row, now)
        self._transition(session, row, "progressing", now, actor=SYSTEM, kind="started",
                         details={"weight": row.weight, "mode": "split" if row.strategy == "canary"
                                  else "mirror"})

    def _begin_step(self, row: Deployment, now: datetime) -> None:
        row.step_started_at = now
        row.next_analysis_at = now + timedelta(seconds=float(row.analysis["interval_s"]))

    def _promote(self, session: Session, row: Deployment, now: datetime, *, actor: str,
                 reason: str | None = None) -> None:
        row.weight, row.promoted_at, row.ended_at, row.next_analysis_at = 100, now, now, None
        self._transition(session, row, "promoted", now, actor=actor, details={"reason": reason})

    def _abort(self, session: Session, row: Deployment, now: datetime, *, actor: str,
               reason: str, details: dict[str, Any] | None = None) -> None:
        started = row.status != "pending_approval"
        row.reason, row.ended_at, row.next_analysis_at = reason, now, None
        self._transition(session, row, "aborted", now, actor=actor,
                         details={"reason": reason, **(details or {})})
        if started:
            row.weight = 0
            self._transition(session, row, "rolled_back", now, actor=actor,
                             details={"reason": reason, "back_to": row.previous_version})

    def _analyse(self, deployment_id: str, now: datetime) -> DeploymentInfo | None:
        from dsops.gates.expr import evaluate, parse_check

        with self.ws.store.read() as session:
            row = session.get(Deployment, deployment_id)
            if row is None or row.status != "progressing":
                return None
            snapshot = (row.step_index, row.step_started_at)
            checks = [parse_check(c) for c in row.analysis.get("checks", [])]
            outcomes = []
            if checks:
                source = self._window(row, now)
                outcomes = [evaluate(check, source) for check in checks]
        with self.ws.store.transaction() as session:
            row = session.get(Deployment, deployment_id)
            if row is None or row.status != "progressing" or \
                    (row.step_index, row.step_started_at) != snapshot:
                return None  # another controller advanced it meanwhile
            results = [o.to_dict() for o in outcomes]
            failed = [o.check for o in outcomes if o.passed is False]
            undecided = [o.check for o in outcomes if o.passed is None]
            self._event(session, row, "analysis", row.status, row.status,
                        {"step": row.step_index, "weight": row.weight, "checks": results},
                        actor=SYSTEM, at=now)
            if failed:
                self._abort(session, row, now, actor=SYSTEM,
                            reason=f"analysis failed: {'; '.join(failed)}",
                            details={"checks": results})
            elif undecided:
                row.next_analysis_at = now + timedelta(seconds=float(row.analysis["interval_s"]))
            elif row.strategy == "canary" and row.step_index + 1 < len(row.steps):
                row.step_index += 1
                row.weight = row.steps[row.step_index]
                self._begin_step(row, now)
                self._event(session, row, "step", row.status, row.status,
                            {"step": row.step_index, "weight": row.weight}, actor=SYSTEM, at=now)
            elif row.strategy == "shadow":
                row.next_analysis_at = None
                self._transition(session, row, "paused", now, actor=SYSTEM,
                                 details={"reason": "shadow analysis passed: promote to switch"})
            else:
                self._promote(session, row, now, actor=SYSTEM, reason="analysis passed")
            row.updated_at = now
            return self._info(session, row)

    def _window(self, row: Deployment, now: datetime) -> Any:
        """The candidate's requests since the step began, and the stable version's over the
        same time — or, when the candidate takes all traffic (the last canary step, a
        blue-green switch), the stable version's latest requests before that."""
        import numpy as np

        from dsops.rollout.analysis import WindowSide, WindowSource
        from dsops.serving.predlog_query import PredictionLog

        start = as_utc(row.step_started_at) if row.step_started_at else now
        lookback = max(STABLE_LOOKBACK_S, 3 * float(row.analysis["interval_s"]))
        table = PredictionLog(self.ws.objects).window(
            model=row.model, start=start - timedelta(seconds=lookback), end=now)
        columns = {name: np.asarray(table[name].to_numpy(zero_copy_only=False))
                   for name in table.column_names}
        sides: dict[str, dict[str, Any]] = {"candidate": {}, "stable": {}}
        if table.num_rows:
            version, role = columns["version"], columns["role"]
            recent = columns["time"].astype("datetime64[us]") >= np.datetime64(
                start.astimezone(UTC).replace(tzinfo=None), "us")
            candidate = (version == row.version) & np.isin(role, ["candidate", "shadow"]) & recent
            stable = (version == (row.previous_version or -1)) & (role == "stable")
            if (stable & recent).any():
                stable &= recent
            for side, mask in (("candidate", candidate), ("stable", stable)):
                sides[side] = {name: values[mask] for name, values in columns.items()}
        return WindowSource(WindowSide(sides["candidate"]), WindowSide(sides["stable"]))

    def _transition(self, session: Session, row: Deployment, status: str, now: datetime, *,
                    actor: str, kind: str | None = None, details: dict[str, Any] | None = None) -> None:
        before, row.status, row.updated_at = row.status, status, now
        self._event(session, row, kind or status, before, status, details or {}, actor=actor, at=now)

    def _event(self, session: Session, row: Deployment, kind: str, before: str | None,
               after: str | None, details: dict[str, Any], *, actor: str,
               at: datetime | None = None) -> None:
        at = at or self.ws.now()
        session.add(DeploymentEventRow(id=new_id(), deployment_id=row.id, at=at, actor=actor,
                                       kind=kind, from_status=before, to_status=after,
                                       details=details))
        from dsops.store.audit import append_event

        append_event(session, at=at, actor=actor, action=f"deployment.{kind}",
                     target=f"deployment:{row.id}",
                     details={"env": row.env, "model": f"{row.model}@{row.version}",
                              "from": before, "to": after, **details})

    # --- lookups ---------------------------------------------------------------------

    def _environment(self, env: str) -> EnvironmentConfig:
        config = self.ws.config.environments.get(env)
        if config is None:
            raise NotFound("environment", env, known=self.ws.config.environments,
                           hint="declare it under 'environments:' in dsops.yaml")
        return config

    def _row(self, session: Session, deployment_id: str) -> Deployment:
        return row_by_id(session, Deployment, deployment_id, kind="deployment",
                         hint="list them with 'dsops rollout status --all'")

    def _stable(self, session: Session, env: str, model: str) -> Deployment | None:
        return session.execute(
            select(Deployment).where(Deployment.env == env, Deployment.model == model,
                                     Deployment.status == "promoted")
            .order_by(Deployment.promoted_at.desc(), Deployment.id.desc()).limit(1)).scalar_one_or_none()

    def _in_flight(self, session: Session, env: str, model: str) -> Deployment | None:
        return session.execute(
            select(Deployment).where(Deployment.env == env, Deployment.model == model,
                                     Deployment.status.in_(IN_FLIGHT))
            .order_by(Deployment.id.desc()).limit(1)).scalar_one_or_none()

    def _approvers(self, session: Session, deployment_id: str) -> list[str]:
        return list(session.execute(select(Approval.approver)
                                    .where(Approval.deployment_id == deployment_id)
                                    .order_by(Approval.at)).scalars())

    def _info(self, session: Session, row: Deployment, *, events: bool = False) -> DeploymentInfo:
        history = []
        if events:
            history = [DeploymentEvent(at=e.at, actor=e.actor, kind=e.kind, from_status=e.from_status,
                                       to_status=e.to_status, details=e.details)
                       for e in session.execute(select(DeploymentEventRow)
                                                .where(DeploymentEventRow.deployment_id == row.id)
                                                .order_by(DeploymentEventRow.id)).scalars()]
        return DeploymentInfo(
            id=row.id, env=row.env, model=row.model, version=row.version,
            ref=f"{row.model}@{row.version}", previous_version=row.previous_version,
            strategy=row.strategy, status=row.status, steps=list(row.steps),
            step_index=row.step_index, weight=row.weight,
            checks=list(row.analysis.get("checks", [])),
            interval_s=float(row.analysis.get("interval_s", 0)),
            next_analysis_at=row.next_analysis_at, options=dict(row.options),
            approvals_required=row.approvals_required,
            approvals=self._approvers(session, row.id), created_at=row.created_at,
            created_by=row.created_by, updated_at=row.updated_at, promoted_at=row.promoted_at,
            ended_at=row.ended_at, reason=row.reason, events=history)


def _steps(steps: list[int]) -> list[int]:
    from dsops.config.models import _valid_steps

    try:
        return _valid_steps(list(steps))
    except ValueError as exc:
        raise UsageError(f"invalid --steps {','.join(map(str, steps))}: {exc}") from None


def _validate_checks(checks: list[str]) -> None:
    """Analysis checks parse and name only what a live window provides."""
    from dsops.gates.expr import parse_check, validate
    from dsops.rollout.analysis import WindowSide, WindowSource

    source = WindowSource(WindowSide({}), WindowSide({}))
    for text in checks:
        validate(parse_check(text), source)
