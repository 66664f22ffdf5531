"""Typed values of a DORA report: the four keys with their tiers, the production deploys and
incidents they were computed from, the per-period table, and the two ML extras."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel

from dsops.metrics.dora_tiers import Tier


class DeployRecord(BaseModel):
    """One production deploy: a deployment of the environment that reached ``promoted``."""

    deployment_id: str
    model: str
    version: int
    ref: str
    previous_version: int | None = None
    strategy: str
    promoted_at: datetime
    promoted_by: str
    lead_time_s: float
    lead_start: datetime
    lead_source: str  # git | data | run | registry
    lead_note: str
    commits: int = 0
    failed: bool = False
    failure_reasons: list[str] = []


class IncidentRecord(BaseModel):
    """An incident of the environment, and the production deploy it is blamed on (if any)."""

    id: str
    monitor: str
    rule: str
    status: str
    model: str | None = None
    version: int | None = None
    opened_at: datetime
    resolved_at: datetime | None = None
    restore_s: float | None = None  # resolved_at - opened_at, when resolved by the report's end
    open_for_s: float | None = None  # age at the report's end, when still open then
    deployment_id: str | None = None  # the production deploy it counts against


class DeploymentFrequency(BaseModel):
    """Production deploys in the window, as a count and a rate."""

    deploys: int
    per_day: float | None
    per_week: float | None
    tier: Tier | None


class LeadTime(BaseModel):
    """Lead time for changes over the window's production deploys (seconds)."""

    measured: int
    median_s: float | None
    p90_s: float | None
    sources: dict[str, int] = {}  # how many starts came from git, data, run, registry
    tier: Tier | None


class ChangeFailureRate(BaseModel):
    """Share of the window's production deploys later rolled back or blamed for an incident."""

    deploys: int
    failed: int
    rate: float | None
    tier: Tier | None


class TimeToRestore(BaseModel):
    """Incidents opened in the window: open → resolved (seconds); open ones apart."""

    incidents: int
    restored: int
    still_open: int
    median_s: float | None
    p90_s: float | None
    tier: Tier | None


class Availability(BaseModel):
    """Share of served requests that succeeded, from the prediction log ("no data": None)."""

    requests: int = 0
    failed: int = 0
    value: float | None = None
    note: str = ""


class Accuracy(BaseModel):
    """Share of labelled predictions equal to their label, from the prediction log."""

    predictions: int = 0
    labelled: int = 0
    correct: int = 0
    value: float | None = None
    coverage: float | None = None  # labelled / predictions
    note: str = ""


class PeriodRow(BaseModel):
    """One calendar bucket of the window (clipped to it)."""

    period: str  # 2026-01-05 | 2026-W02 | 2026-01
    start: datetime
    end: datetime
    deploys: int
    failures: int
    median_lead_time_s: float | None = None
    incidents: int = 0
    restored: int = 0
    median_restore_s: float | None = None


class DoraReport(BaseModel):
    """The DORA four keys of an environment (and model) over ``[start, end)``."""

    env: str
    model: str | None = None
    start: datetime
    end: datetime
    by: str
    deployment_frequency: DeploymentFrequency
    lead_time: LeadTime
    change_failure_rate: ChangeFailureRate
    time_to_restore: TimeToRestore
    availability: Availability
    accuracy: Accuracy
    deploys: list[DeployRecord] = []
    incidents: list[IncidentRecord] = []
    periods: list[PeriodRow] = []
    thresholds: dict[str, dict[str, str]] = {}
    source: str = ""

    @property
    def failures(self) -> list[DeployRecord]:
        """The production deploys that failed, with their reasons."""
        return [d for d in self.deploys if d.failed]
