"""Typed values the pipeline service returns: a stage's status, result, and the whole run."""

from __future__ import annotations

from pydantic import BaseModel, Field

from dsops.core.errors import DsopsError

ACTIONS = ("run", "cached", "failed", "skipped", "killed")


class StageStatus(BaseModel):
    """What ``dsops run`` would do with a stage, and why."""

    stage: str
    action: str  # "run" or "cached"
    why: list[str] = Field(default_factory=list)


class StageResult(BaseModel):
    """What happened to one stage in a pipeline run."""

    stage: str
    action: str  # one of ACTIONS
    why: list[str] = Field(default_factory=list)
    duration_s: float | None = None
    run_id: str | None = None
    exit_code: int | None = None
    error: str | None = None
    stderr_tail: list[str] = Field(default_factory=list)
    model: str | None = None  # the model version a ``registers:`` stage registered


class PipelineResult(BaseModel):
    """Every selected stage's result, in execution order."""

    stages: list[StageResult]
    dry: bool = False

    @property
    def failed(self) -> list[StageResult]:
        """The stages that failed (not those skipped because of them)."""
        return [s for s in self.stages if s.action == "failed"]

    @property
    def ok(self) -> bool:
        """True when no stage failed, was skipped or was killed."""
        return all(s.action in ("run", "cached") for s in self.stages)


class PipelineInterrupted(DsopsError):
    """SIGINT or SIGTERM arrived during a run: running stages were stopped, runs killed."""

    exit_code = 130
    code = "interrupted"
