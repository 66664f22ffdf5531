"""The DORA four keys for models, computed from the rollout history, the incidents, the
registry's lineage and the project's git history; plus availability and accuracy from the
prediction log. Definitions and thresholds: docs/dora.md and ``dora_tiers``.

- deployment frequency: production deploys (deployments of the environment that reached
  ``promoted``, counted at their ``promoted`` event) per day and per week of the window;
- lead time for changes: per production deploy, from the start of its change (see
  ``lead_time.lead_start``) to its ``promoted`` event; median and p90;
- change failure rate: the window's production deploys later rolled back, or blamed for
  an incident (linked by ``deployment_id``, or on the same env/model/version opened while
  that deploy was the stable one), over all of the window's production deploys;
- time to restore: incidents of the environment (and model) opened in the window, opened →
  resolved; median and p90, incidents still open at the end counted apart.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from dsops.core.clock import as_utc as utc
from dsops.core.errors import NotFound
from dsops.metrics.dora_models import (
    ChangeFailureRate,
    DeploymentFrequency,
    DeployRecord,
    DoraReport,
    IncidentRecord,
    LeadTime,
    PeriodRow,
    TimeToRestore,
)
from dsops.metrics.dora_tiers import (
    SOURCE,
    THRESHOLDS,
    change_failure_tier,
    deployment_frequency_tier,
    lead_time_tier,
    restore_tier,
)
from dsops.metrics.lead_time import GitHistory, VersionFacts, lead_start
from dsops.metrics.periods import buckets, check_granularity, median, parse_window, percentile
from dsops.store.models import (
    Dataset,
    DatasetVersion,
    Deployment,
    DeploymentEventRow,
    Incident,
    Model,
    Run,
)
from dsops.workspace import Workspace


@dataclass(frozen=True)
class _Event:
    deployment: Deployment
    kind: str
    at: datetime
    actor: str
    details: dict[str, object]


class DoraService:
    """Reports the DORA four keys of an environment's models over a time window."""

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws

    def report(self, *, model: str | None = None, env: str = "prod", since: str | datetime = "90d",
               until: str | datetime | None = None, by: str = "week") -> DoraReport:
        """The four keys with their DORA tiers, the deploys and incidents behind them, a
        table per ``by`` period (day, week, month), and availability and accuracy."""
        from dsops.metrics.serving_figures import serving_figures

        check_granularity(by)
        start, end = parse_window(since, until, self.ws.now())
        with self.ws.store.read() as session:
            self._check(session, env, model)
            events = self._events(session, env, model, end)
            incidents = self._incidents(session, env, model, end)
            deploys = [e for e in events if e.kind == "promoted" and start <= e.at < end]
            facts = self._facts(session, deploys)
        blamed = _blame(incidents, _stable_intervals(events, end))
        rollbacks: dict[str, list[_Event]] = defaultdict(list)
        for event in events:
            if event.kind == "rolled_back":
                rollbacks[event.deployment.id].append(event)
        git = GitHistory(self.ws.root)
        records = [self._record(e, rollbacks[e.deployment.id], blamed, facts, git) for e in deploys]
        window = [self._incident(i, blamed, end) for i in incidents if start <= utc(i.opened_at) < end]
        availability, accuracy = serving_figures(self.ws, env=env, model=model, start=start, end=end)
        return DoraReport(
            env=env, model=model, start=start, end=end, by=by,
            deployment_frequency=_frequency(records, start, end),
            lead_time=_lead_time(records), change_failure_rate=_failure_rate(records),
            time_to_restore=_restore(window), availability=availability, accuracy=accuracy,
            deploys=records, incidents=window, periods=_periods(records, window, start, end, by),
            thresholds=THRESHOLDS, source=SOURCE)

    # --- reading the store -----------------------------------------------------------

    def _check(self, session: Session, env: str, model: str | None) -> None:
        if model is not None and session.execute(
                select(Model.id).where(Model.name == model)).first() is None:
            raise NotFound("model", model, known=session.execute(select(Model.name)).scalars().all(),
                           hint="list the models with 'dsops models ls'")
        known = set(self.ws.config.environments)
        if env not in known:
            known |= set(session.execute(select(Deployment.env).distinct()).scalars())
            # A project with no environment at all has no history yet: "no data", not an error.
            if known and env not in known:
                raise NotFound("environment", env, known=known,
                               hint="environments are declared under 'environments:' in dsops.yaml")

    def _events(self, session: Session, env: str, model: str | None, end: datetime) -> list[_Event]:
        """Every promotion and rollback of the environment's deployments before ``end``."""
        query = (select(DeploymentEventRow, Deployment)
                 .join(Deployment, Deployment.id == DeploymentEventRow.deployment_id)
                 .where(Deployment.env == env, DeploymentEventRow.at < end,
                        DeploymentEventRow.kind.in_(("promoted", "rolled_back")))
                 .order_by(DeploymentEventRow.at, DeploymentEventRow.id))
        if model is not None:
            query = query.where(Deployment.model == model)
        return [_Event(deployment, row.kind, utc(row.at), row.actor, dict(row.details or {}))
                for row, deployment in session.execute(query).all()]

    def _incidents(self, session: Session, env: str, model: str | None, end: datetime) -> list[Incident]:
        query = select(Incident).where(Incident.env == env, Incident.opened_at < end) \
            .order_by(Incident.opened_at, Incident.id)
        if model is not None:
            query = query.where(Incident.model == model)
        return list(session.execute(query).scalars())

    def _facts(self, session: Session, deploys: list[_Event]) -> dict[tuple[str, int], VersionFacts]:
        """Run, commit and training data of every deployed version and its predecessor."""
        from dsops.registry.service import RegistryService

        wanted = {(e.deployment.model, v) for e in deploys
                  for v in (e.deployment.version, e.deployment.previous_version) if v is not None}
        registry = RegistryService(self.ws)
        infos = {key: registry.show(f"{key[0]}@{key[1]}") for key in sorted(wanted)}
        run_ids = {i.run_id for i in infos.values() if i.run_id}
        runs = {r.id: r for r in session.execute(select(Run).where(Run.id.in_(run_ids))).scalars()} \
            if run_ids else {}
        created = self._dataset_times(session, {d for i in infos.values() for d in i.datasets})
        facts = {}
        for key, info in infos.items():
            run = runs.get(info.run_id) if info.run_id else None
            facts[key] = VersionFacts(
                ref=info.ref, created_at=utc(info.created_at), run_id=info.run_id,
                run_started_at=utc(run.started_at) if run else None, commit=info.git_commit,
                dirty=run.git_dirty if run else None,
                datasets={d: created[d] for d in info.datasets if d in created})
        return facts

    def _dataset_times(self, session: Session, nodes: set[str]) -> dict[str, datetime]:
        from dsops.core.refs import Ref

        out = {}
        for node in sorted(nodes):
            ref = Ref.parse(node.removeprefix("data:"))
            at = session.execute(
                select(DatasetVersion.created_at).join(Dataset, Dataset.id == DatasetVersion.dataset_id)
                .where(Dataset.name == ref.name, DatasetVersion.version == ref.version)
            ).scalar_one_or_none()
            if at is not None:
                out[node] = utc(at)
        return out

    # --- one deploy, one incident ----------------------------------------------------

    def _record(self, promoted: _Event, rollbacks: list[_Event], blamed: dict[str, list[Incident]],
                facts: dict[tuple[str, int], VersionFacts], git: GitHistory) -> DeployRecord:
        d = promoted.deployment
        this = facts[(d.model, d.version)]
        previous = facts.get((d.model, d.previous_version)) if d.previous_version is not None else None
        start = lead_start(git, this, previous)
        lead_s, note = (promoted.at - start.at).total_seconds(), start.note
        if lead_s < 0:  # clocks that disagree, or a commit dated in the future
            lead_s, note = 0.0, f"{note}; it starts after the promotion: counted as 0"
        reasons = [f"rolled back at {e.at:%Y-%m-%d %H:%M} by {e.actor}"
                   + (f": {e.details['reason']}" if e.details.get("reason") else "")
                   for e in rollbacks if e.at >= promoted.at]
        reasons += [f"incident {i.id} ({i.monitor}: {i.rule}) opened at {utc(i.opened_at):%Y-%m-%d %H:%M}"
                    for i in blamed.get(d.id, [])]
        return DeployRecord(
            deployment_id=d.id, model=d.model, version=d.version, ref=f"{d.model}@{d.version}",
            previous_version=d.previous_version, strategy=d.strategy, promoted_at=promoted.at,
            promoted_by=promoted.actor, lead_time_s=lead_s, lead_start=start.at,
            lead_source=start.source, lead_note=note,
            commits=start.commits, failed=bool(reasons), failure_reasons=reasons)

    def _incident(self, incident: Incident, blamed: dict[str, list[Incident]],
                  end: datetime) -> IncidentRecord:
        opened = utc(incident.opened_at)
        resolved = utc(incident.resolved_at) if incident.resolved_at is not None else None
        if resolved is not None and resolved >= end:
            resolved = None  # restored after the report's end: still open as of then
        owner = next((d for d, items in blamed.items() if incident in items), None)
        return IncidentRecord(
            id=incident.id, monitor=incident.monitor, rule=incident.rule,
            status=incident.status if resolved is not None or incident.status != "resolved" else "open",
            model=incident.model, version=incident.version, opened_at=opened, resolved_at=resolved,
            restore_s=(resolved - opened).total_seconds() if resolved is not None else None,
            open_for_s=(end - opened).total_seconds() if resolved is None else None,
            deployment_id=owner)


# --- the history as intervals ------------------------------------------------------------


@dataclass(frozen=True)
class _Stable:
    deployment: Deployment
    since: datetime
    until: datetime


def _stable_intervals(events: list[_Event], end: datetime) -> list[_Stable]:
    """When each deployment was the stable (serving) one of its model, replaying promotions
    and rollbacks as the rollout service decides: the latest promoted, not rolled back."""
    intervals: list[_Stable] = []
    live: dict[str, list[Deployment]] = defaultdict(list)  # per model, in promotion order
    since: dict[str, datetime] = {}
    for event in events:
        d = event.deployment
        before = live[d.model][-1] if live[d.model] else None
        if event.kind == "promoted":
            live[d.model].append(d)
        elif d in live[d.model]:
            live[d.model].remove(d)
        else:
            continue  # a rollout aborted before it was promoted never served as stable
        after = live[d.model][-1] if live[d.model] else None
        if before is not after:
            if before is not None:
                intervals.append(_Stable(before, since.pop(before.id), event.at))
            if after is not None:
                since[after.id] = event.at
    intervals += [_Stable(items[-1], since[items[-1].id], end) for items in live.values() if items]
    return intervals


def _blame(incidents: list[Incident], stable: list[_Stable]) -> dict[str, list[Incident]]:
    """The production deploy each incident counts against: the one it names, else the
    deploy of the same model and version that was stable when the incident opened."""
    promoted = {s.deployment.id for s in stable}
    blamed: dict[str, list[Incident]] = defaultdict(list)
    for incident in incidents:
        if incident.deployment_id in promoted:
            blamed[incident.deployment_id].append(incident)
            continue
        opened = utc(incident.opened_at)
        owner = next((s.deployment.id for s in stable
                      if incident.version is not None and s.deployment.model == incident.model
                      and s.deployment.version == incident.version and s.since <= opened < s.until),
                     None)
        if owner is not None:
            blamed[owner].append(incident)
    return blamed


# --- the four keys and the periods --------------------------------------------------------


def _frequency(deploys: list[DeployRecord], start: datetime, end: datetime) -> DeploymentFrequency:
    if not deploys:
        return DeploymentFrequency(deploys=0, per_day=None, per_week=None, tier=None)
    per_day = len(deploys) / ((end - start).total_seconds() / 86400)
    return DeploymentFrequency(deploys=len(deploys), per_day=per_day, per_week=per_day * 7,
                               tier=deployment_frequency_tier(per_day))


def _lead_time(deploys: list[DeployRecord]) -> LeadTime:
    values = [d.lead_time_s for d in deploys]
    sources: dict[str, int] = defaultdict(int)
    for d in deploys:
        sources[d.lead_source] += 1
    mid = median(values)
    return LeadTime(measured=len(values), median_s=mid, p90_s=percentile(values, 0.9),
                    sources=dict(sorted(sources.items())), tier=lead_time_tier(mid))


def _failure_rate(deploys: list[DeployRecord]) -> ChangeFailureRate:
    failed = sum(d.failed for d in deploys)
    rate = failed / len(deploys) if deploys else None
    return ChangeFailureRate(deploys=len(deploys), failed=failed, rate=rate,
                             tier=change_failure_tier(rate))


def _restore(incidents: list[IncidentRecord]) -> TimeToRestore:
    values = [i.restore_s for i in incidents if i.restore_s is not None]
    mid = median(values)
    return TimeToRestore(incidents=len(incidents), restored=len(values),
                         still_open=len(incidents) - len(values), median_s=mid,
                         p90_s=percentile(values, 0.9), tier=restore_tier(mid))


def _periods(deploys: list[DeployRecord], incidents: list[IncidentRecord], start: datetime,
             end: datetime, by: str) -> list[PeriodRow]:
    rows = []
    for label, lo, hi in buckets(start, end, by):
        mine = [d for d in deploys if lo <= d.promoted_at < hi]
        opened = [i for i in incidents if lo <= i.opened_at < hi]
        restores = [i.restore_s for i in opened if i.restore_s is not None]
        rows.append(PeriodRow(
            period=label, start=lo, end=hi, deploys=len(mine), failures=sum(d.failed for d in mine),
            median_lead_time_s=median([d.lead_time_s for d in mine]), incidents=len(opened),
            restored=len(restores), median_restore_s=median(restores)))
    return rows
