"""The error hierarchy: exit codes, HTTP statuses, messages and suggestions."""

from __future__ import annotations

import pytest

from dsops.core.errors import (
    ConfigError,
    Conflict,
    DsopsError,
    EncryptionError,
    IntegrityError,
    NotFound,
    PermissionDenied,
    StoreError,
    UsageError,
    ValidationFailed,
)


@pytest.mark.parametrize(
    ("error", "exit_code", "http_status", "code"),
    [
        (UsageError("x"), 2, 400, "usage_error"),
        (ConfigError("x", file="dsops.yaml", line=1), 2, 400, "config_error"),
        (NotFound("dataset", "x"), 2, 404, "not_found"),
        (Conflict("x"), 2, 409, "conflict"),
        (PermissionDenied("x"), 2, 403, "permission_denied"),
        (ValidationFailed("x"), 1, 422, "validation_failed"),
        (StoreError("x"), 3, 500, "store_error"),
        (IntegrityError("x"), 3, 500, "integrity_error"),
        (EncryptionError("x"), 2, 400, "encryption_error"),
    ],
)
def test_each_error_carries_exit_code_and_http_status(
    error: DsopsError, exit_code: int, http_status: int, code: str
) -> None:
    assert isinstance(error, DsopsError)
    assert (error.exit_code, error.http_status, error.code) == (exit_code, http_status, code)


def test_not_found_suggests_the_closest_name() -> None:
    error = NotFound("dataset", "credti", known=["credit", "census"])
    assert str(error) == "unknown dataset 'credti' — did you mean 'credit'?"
    assert (error.kind, error.name) == ("dataset", "credti")


def test_not_found_lists_known_names_when_nothing_is_close() -> None:
    assert str(NotFound("model", "zzz", known=["b", "a", "a"])) == \
        "unknown model 'zzz' (known: a, b)"
    many = NotFound("stage", "zzz", known=[f"s{i:02}" for i in range(15)])
    assert str(many).endswith("(known: s00, s01, s02, s03, s04, s05, s06, s07, s08, s09, …)")
    assert str(NotFound("stage", "zzz")) == "unknown stage 'zzz'"


def test_hint_is_shown_on_its_own_line() -> None:
    error = UsageError("no dsops.yaml here", hint="run 'dsops init'")
    assert error.format_message() == "no dsops.yaml here\n  hint: run 'dsops init'"
    assert str(error) == error.format_message()
    assert error.message == "no dsops.yaml here"


def test_config_error_names_file_line_and_key() -> None:
    error = ConfigError("unknown key", file="dsops.yaml", line=14, key="datasets.x.pth")
    assert str(error) == "dsops.yaml:14: datasets.x.pth: unknown key"
    assert (error.file, error.line, error.key) == ("dsops.yaml", 14, "datasets.x.pth")
    assert str(ConfigError("bad", file="dsops.yaml")) == "dsops.yaml: bad"


def test_validation_failed_keeps_its_report() -> None:
    report = {"failed": ["age between 18 and 100"]}
    assert ValidationFailed("2 checks failed", report=report).report is report
