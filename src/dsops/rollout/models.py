"""Typed values of deployments and rollouts: what the CLI shows and the gateway routes by."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel

STRATEGIES = ("direct", "canary", "shadow", "blue-green")
# pending_approval → progressing(step i) → paused → promoted | aborted → rolled_back
IN_FLIGHT = ("pending_approval", "progressing", "paused")
STATUSES = (*IN_FLIGHT, "promoted", "aborted", "rolled_back")


@dataclass(frozen=True)
class Route:
    """How the gateway answers one model of an environment right now.

    ``stable`` answers every request not sent to the candidate. With ``mode == "split"``
    the candidate answers ``weight`` % of requests (sticky per ``sticky_header`` value when
    the request carries it); with ``mode == "mirror"`` (shadow, blue-green under analysis)
    the stable version answers everything and the candidate gets a copy off the hot path.
    """

    model: str
    stable: int | None  # None until a first version is promoted (the candidate answers all)
    candidate: int | None = None
    weight: int = 0  # % of requests the candidate answers (split mode)
    mode: str = "split"  # "split" | "mirror"
    deployment: str | None = None  # the in-flight deployment's id, or the promoted one's
    stable_deployment: str | None = None
    sticky_header: str | None = None
    sample_rate: float = 1.0  # share of requests whose inputs are logged
    max_batch: int = 32
    max_wait_us: int = 2000


class DeploymentEvent(BaseModel):
    """One transition or analysis of a deployment."""

    at: datetime
    actor: str
    kind: str  # created, approved, started, step, analysis, paused, promoted, aborted, rolled_back
    from_status: str | None = None
    to_status: str | None = None
    details: dict[str, Any] = {}


class DeploymentInfo(BaseModel):
    """A deployment of one model version to an environment, and where its rollout is."""

    id: str
    env: str
    model: str
    version: int
    ref: str
    previous_version: int | None
    strategy: str
    status: str
    steps: list[int]
    step_index: int
    weight: int
    checks: list[str]
    interval_s: float
    next_analysis_at: datetime | None = None
    options: dict[str, Any] = {}
    approvals_required: int = 0
    approvals: list[str] = []
    created_at: datetime
    created_by: str
    updated_at: datetime
    promoted_at: datetime | None = None
    ended_at: datetime | None = None
    reason: str | None = None
    flags: list[str] = []
    events: list[DeploymentEvent] = []

    @property
    def in_flight(self) -> bool:
        return self.status in IN_FLIGHT
