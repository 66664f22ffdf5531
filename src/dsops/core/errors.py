"""The one error hierarchy: each class carries its CLI exit code and HTTP status.

Messages say what was wrong, where, and what to do. The CLI prints them without a
traceback; the HTTP API returns ``{"error": message, "code": code}``.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class DsopsError(Exception):
    """Base of every error a user can act on."""

    exit_code = 3
    http_status = 500
    code = "error"

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def format_message(self) -> str:
        """The message as shown to a user, with the hint on its own line."""
        return self.message if not self.hint else f"{self.message}\n  hint: {self.hint}"

    def __str__(self) -> str:
        return self.format_message()


class UsageError(DsopsError):
    """The request itself is wrong: bad argument, bad reference, malformed config."""

    exit_code = 2
    http_status = 400
    code = "usage_error"


class ConfigError(UsageError):
    """``dsops.yaml`` is malformed; the message names file, line and key."""

    code = "config_error"

    def __init__(
        self, message: str, *, file: str, line: int | None = None, key: str | None = None,
        hint: str | None = None,
    ) -> None:
        where = file if line is None else f"{file}:{line}"
        prefix = f"{where}: {key}: " if key else f"{where}: "
        super().__init__(prefix + message, hint=hint)
        self.file, self.line, self.key = file, line, key


class NotFound(UsageError):
    """A named thing does not exist; suggests the closest known name."""

    http_status = 404
    code = "not_found"

    def __init__(
        self, kind: str, name: str, *, known: Iterable[str] = (), hint: str | None = None
    ) -> None:
        known = sorted(set(known))
        message = f"unknown {kind} {name!r}"
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
        if close:
            message += f" — did you mean {close[0]!r}?"
        elif known:
            shown = ", ".join(known[:10]) + (", …" if len(known) > 10 else "")
            message += f" (known: {shown})"
        super().__init__(message, hint=hint)
        self.kind, self.name = kind, name


class Conflict(UsageError):
    """The operation clashes with the current state (already exists, already revoked…)."""

    http_status = 409
    code = "conflict"


class PermissionDenied(UsageError):
    """The acting identity may not do this."""

    http_status = 403
    code = "permission_denied"


class ValidationFailed(DsopsError):
    """Checks ran and failed (data expectations, gates); ``report`` holds the details."""

    exit_code = 1
    http_status = 422
    code = "validation_failed"

    def __init__(self, message: str, *, report: object = None, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.report = report


class StoreError(DsopsError):
    """The metadata store or object store is unreachable, corrupt, or too new."""

    exit_code = 3
    http_status = 500
    code = "store_error"


class IntegrityError(StoreError):
    """Stored content does not match its recorded hash."""

    code = "integrity_error"


class EncryptionError(UsageError):
    """Sensitive content cannot be read or written: missing or wrong key."""

    code = "encryption_error"
