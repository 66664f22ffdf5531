"""Typed values the dataset service takes and returns."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel


class PiiFinding(BaseModel):
    """Where personal data was found and how often — never the values."""

    kind: str
    count: int
    column: str | None = None
    file: str | None = None


class DatasetVersionInfo(BaseModel):
    """One version of a dataset, as shown by ``data show`` and returned by the SDK."""

    name: str
    version: int
    ref: str
    digest: str
    manifest: str | None = None
    kind: str
    format: str
    source_name: str
    size: int
    file_count: int
    row_count: int | None
    created_at: datetime
    created_by: str
    description: str | None = None
    owner: str | None = None
    license: str | None = None
    consent: str | None = None
    retention_until: date | None = None
    sensitive: bool
    encrypted: bool
    valid: bool
    revoked: bool
    revoked_at: datetime | None = None
    revoked_by: str | None = None
    revoke_reason: str | None = None
    validation: dict[str, Any] | None = None
    data_schema: dict[str, Any] | None = None
    profile: dict[str, Any] | None = None
    pii: list[PiiFinding] = []

    @property
    def flags(self) -> list[str]:
        """Short markers for listings: revoked, invalid, sensitive."""
        out = []
        if self.revoked:
            out.append("revoked")
        if not self.valid:
            out.append("invalid")
        if self.sensitive:
            out.append("sensitive")
        return out


class AddResult(BaseModel):
    """What ``data add`` did: a new version, or none because the content is unchanged."""

    created: bool
    version: DatasetVersionInfo


class DatasetSummary(BaseModel):
    """One dataset in ``data ls``."""

    name: str
    versions: int
    latest: int
    latest_created_at: datetime
    size: int
    row_count: int | None
    flags: list[str]


class ValueChange(BaseModel):
    """A number before and after."""

    old: float | int | None
    new: float | int | None
    delta: float | int | None = None


class DiffResult(BaseModel):
    """``data diff``: how two versions differ in content, schema and profile."""

    old: str
    new: str
    same_content: bool
    row_count: ValueChange | None = None
    size: ValueChange
    added_columns: list[str] = []
    removed_columns: list[str] = []
    type_changes: list[dict[str, Any]] = []
    columns: dict[str, dict[str, Any]] = {}
    added_files: list[str] = []
    removed_files: list[str] = []
    changed_files: list[str] = []
