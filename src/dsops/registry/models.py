"""Typed values the registry returns: versions, aliases and their history, diffs."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel


class ModelFile(BaseModel):
    """One file of a registered artifact, by content hash."""

    path: str
    digest: str
    size: int


class GateSummary(BaseModel):
    """The latest gate verdict of a version."""

    id: str
    passed: bool
    at: datetime
    failed: list[str] = []


class ModelVersionInfo(BaseModel):
    """One registered version of a model, as ``models show`` prints it."""

    name: str
    version: int
    ref: str
    digest: str
    flavor: str
    files: list[ModelFile]
    size: int
    signature: dict[str, Any] | None = None
    metrics: dict[str, float] = {}
    params: dict[str, str] = {}
    info: dict[str, Any] = {}
    run_id: str | None = None
    git_commit: str | None = None
    datasets: list[str] = []
    aliases: list[str] = []
    needs_trust: bool = False
    trust_reason: str | None = None
    trusted_by: str | None = None
    trusted_at: datetime | None = None
    created_at: datetime
    created_by: str
    gate: GateSummary | None = None
    flags: list[str] = []

    @property
    def flagged(self) -> bool:
        return bool(self.flags)


class RegisterResult(BaseModel):
    """``log_model`` / a stage's ``registers``: the version, and whether it is new."""

    version: ModelVersionInfo
    created: bool


class ModelSummary(BaseModel):
    """A model in ``models ls``: its latest version and where its aliases point."""

    name: str
    latest: int
    versions: int
    aliases: dict[str, int]
    flavor: str
    updated_at: datetime
    flags: list[str] = []


class AliasChange(BaseModel):
    """One move of an alias, from the alias history."""

    model: str
    alias: str
    from_version: int | None
    to_version: int | None
    at: datetime
    actor: str
    reason: str | None = None
    forced: bool = False


class ValueDelta(BaseModel):
    """A value in two versions."""

    old: Any = None
    new: Any = None
    changed: bool


class ModelDiff(BaseModel):
    """``models diff A B``: what differs between two versions."""

    old: str
    new: str
    flavor: ValueDelta
    metrics: dict[str, ValueDelta]
    params: dict[str, ValueDelta]
    inputs: dict[str, ValueDelta]  # signature columns: type in each (None = absent)
    datasets: ValueDelta
