"""The Python SDK surface: dsops.Dataset by reference."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

import dsops
from dsops.core.crypto import generate_key
from dsops.core.errors import NotFound, UsageError
from dsops.data.service import DatasetService
from dsops.sdk import RevokedDataWarning
from tests.data.samples import people, write_csv


def test_dataset_reads_versions(workspace, tmp_path: Path) -> None:
    svc = DatasetService(workspace)
    path = write_csv(tmp_path / "p.csv", people(40))
    svc.add(path, "people")
    write_csv(path, people(50))
    svc.add(path, "people")

    latest = dsops.Dataset("people", workspace=workspace)
    assert latest.version == 2 and len(latest.to_pandas()) == 50
    first = dsops.Dataset("people@1", workspace=workspace)
    assert first.to_arrow().num_rows == 40
    assert first.path().read_bytes() == svc.checkout("people@1", tmp_path / "x.csv").read_bytes()
    with pytest.raises(NotFound):
        _ = dsops.Dataset("people@9", workspace=workspace).info


def test_dataset_directory_sensitive_and_revoked(workspace, tmp_path: Path, monkeypatch) -> None:
    svc = DatasetService(workspace)
    src = tmp_path / "docs"
    src.mkdir()
    (src / "a.txt").write_text("plain text")
    svc.add(src, "docs")
    folder = dsops.Dataset("docs", workspace=workspace).path()
    assert (folder / "a.txt").read_text() == "plain text"
    with pytest.raises(UsageError, match="not tabular"):
        dsops.Dataset("docs", workspace=workspace).to_arrow()

    monkeypatch.setenv("DSOPS_ENCRYPTION_KEY", generate_key())
    rows = [{"id": i, "email": f"u{i}@example.com"} for i in range(5)]
    svc.add(write_csv(tmp_path / "c.csv", rows), "contacts")
    contacts = dsops.Dataset("contacts", workspace=workspace)
    assert list(contacts.to_pandas()["email"])[:1] == ["u0@example.com"]
    with pytest.raises(UsageError, match="no plaintext path"):
        contacts.path()

    svc.revoke("contacts@1", reason="consent withdrawn")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dsops.Dataset("contacts@1", workspace=workspace).to_arrow()
    assert any(issubclass(w.category, RevokedDataWarning) for w in caught)


def test_dataset_finds_the_workspace_from_the_working_directory(workspace, tmp_path: Path,
                                                                 monkeypatch) -> None:
    DatasetService(workspace).add(write_csv(tmp_path / "p.csv", people(10)), "people")
    monkeypatch.chdir(workspace.root)
    monkeypatch.setenv("DSOPS_STORE_URL", workspace.store_url)
    assert dsops.Dataset("people").to_arrow().num_rows == 10
