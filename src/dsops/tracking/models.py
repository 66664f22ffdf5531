"""Typed values the tracking service takes and returns."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel


class ArtifactInfo(BaseModel):
    """A file a run produced."""

    path: str
    digest: str
    size: int


class MetricPoint(BaseModel):
    """One logged value of a metric."""

    step: int
    value: float
    at: datetime


class RunInfo(BaseModel):
    """A run as shown by ``runs ls/show`` and returned by the SDK."""

    id: str
    name: str
    kind: str
    status: str
    created_by: str
    started_at: datetime
    ended_at: datetime | None = None
    duration_s: float | None = None
    exit_code: int | None = None
    command: str | None = None
    git_commit: str | None = None
    git_dirty: bool | None = None
    environment: dict[str, Any] | None = None
    error: str | None = None
    params: dict[str, str] = {}
    metrics: dict[str, float] = {}
    artifacts: list[ArtifactInfo] = []
    inputs: list[str] = []
    outputs: list[str] = []


class Comparison(BaseModel):
    """``runs compare``: params and latest metrics side by side."""

    runs: list[str]
    params: dict[str, list[str | None]]
    metrics: dict[str, list[float | None]]
    differing_params: list[str]
    differing_metrics: list[str]
