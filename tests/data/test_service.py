"""DatasetService end to end on both store backends (SQLite and PostgreSQL)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dsops.config.models import DatasetConfig, Expectation, ProjectConfig
from dsops.core.crypto import generate_key
from dsops.core.errors import Conflict, EncryptionError, NotFound, UsageError, ValidationFailed
from dsops.data.service import DatasetService
from dsops.security.audit import AuditService
from tests.data.samples import people, write_csv


def with_datasets(ws, **datasets: DatasetConfig):
    ws.config = ProjectConfig(project=ws.config.project, datasets=datasets)
    return DatasetService(ws)


def count_objects(ws) -> int:
    root = ws.state_dir / "objects"
    return sum(1 for p in root.rglob("*") if p.is_file() and "tmp" not in p.parts)


def test_add_profiles_and_dedups(workspace, tmp_path: Path) -> None:
    svc = DatasetService(workspace)
    path = write_csv(tmp_path / "people.csv", people(200))
    first = svc.add(path, "people", owner="ana@example.com")
    assert first.created and first.version.version == 1
    info = first.version
    assert info.row_count == 200 and info.format == "csv" and info.owner == "ana@example.com"
    assert {c["name"] for c in info.data_schema["columns"]} == {"id", "age", "city", "income"}
    assert info.profile["columns"]["age"]["min"] == 20
    assert not info.sensitive and not info.encrypted

    again = svc.add(path, "people")
    assert not again.created and again.version.version == 1

    write_csv(path, people(220, age_shift=5))
    second = svc.add(path, "people")
    assert second.created and second.version.version == 2
    assert [v.version for v in svc.versions("people")] == [1, 2]
    assert svc.show("people").version == 2
    assert svc.show("people@1").digest == info.digest


def test_failing_expectations_store_nothing(workspace, tmp_path: Path) -> None:
    svc = with_datasets(workspace, people=DatasetConfig(expectations=[
        Expectation(column="age", between=(18, 100)),
        Expectation(row_count={"min": 10}),
    ]))
    path = write_csv(tmp_path / "people.csv", people(50, bad_ages=3))
    before = count_objects(workspace)
    with pytest.raises(ValidationFailed) as err:
        svc.add(path, "people")
    report = err.value.report
    assert report["passed"] is False
    failing = [c for c in report["checks"] if not c["passed"]]
    assert failing[0]["column"] == "age" and failing[0]["failing_rows"] == 3
    assert count_objects(workspace) == before
    with pytest.raises(NotFound):
        svc.show("people")

    flagged = svc.add(path, "people", allow_invalid=True)
    assert flagged.created and not flagged.version.valid
    assert "invalid" in flagged.version.flags


def test_sensitive_data_is_encrypted(workspace, tmp_path: Path, monkeypatch) -> None:
    rows = [{"id": i, "email": f"user{i}@example.com", "amount": i} for i in range(30)]
    path = write_csv(tmp_path / "contacts.csv", rows)
    svc = DatasetService(workspace)
    monkeypatch.delenv("DSOPS_ENCRYPTION_KEY", raising=False)
    monkeypatch.delenv("DSOPS_ENCRYPTION_KEY_FILE", raising=False)
    with pytest.raises(EncryptionError):
        svc.add(path, "contacts")  # PII found, no key: refuse, store nothing
    with pytest.raises(NotFound):
        svc.show("contacts")

    monkeypatch.setenv("DSOPS_ENCRYPTION_KEY", generate_key())
    info = svc.add(path, "contacts").version
    assert info.sensitive and info.encrypted
    assert [(f.column, f.kind, f.count) for f in info.pii] == [("email", "email", 30)]
    # the plaintext is nowhere in the object store
    blobs = [p.read_bytes() for p in (workspace.state_dir / "objects").rglob("*") if p.is_file()]
    assert blobs and not any(b"user1@example.com" in b for b in blobs)
    assert svc.read_table("contacts@1").num_rows == 30

    monkeypatch.setenv("DSOPS_ENCRYPTION_KEY", generate_key())
    with pytest.raises(EncryptionError, match="encrypted with key"):
        svc.read_table("contacts@1")
    monkeypatch.delenv("DSOPS_ENCRYPTION_KEY")
    with pytest.raises(EncryptionError, match="needs the encryption key"):
        svc.checkout("contacts@1", tmp_path / "out.csv")
    assert not (tmp_path / "out.csv").exists()


def test_directory_dataset_round_trip_and_diff(workspace, tmp_path: Path) -> None:
    src = tmp_path / "images"
    for i in range(100):
        (src / f"class{i % 3}").mkdir(parents=True, exist_ok=True)
        (src / f"class{i % 3}" / f"img{i}.bin").write_bytes(bytes([i]) * (100 + i))
    svc = DatasetService(workspace)
    v1 = svc.add(src, "images").version
    assert v1.kind == "directory" and v1.file_count == 100
    (src / "class0" / "img0.bin").write_bytes(b"changed")
    (src / "class1" / "img1.bin").unlink()
    (src / "new.bin").write_bytes(b"new")
    assert svc.add(src, "images").version.version == 2

    out = svc.checkout("images@1", tmp_path / "restored")
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == \
        sorted(e.path for e in svc.manifest("images@1"))
    assert (out / "class1" / "img1.bin").read_bytes() == bytes([1]) * 101

    d = svc.diff("images@1", "images@2")
    assert d.added_files == ["new.bin"]
    assert d.removed_files == ["class1/img1.bin"]
    assert d.changed_files == ["class0/img0.bin"]


def test_diff_reports_changed_columns(workspace, tmp_path: Path) -> None:
    svc = DatasetService(workspace)
    path = write_csv(tmp_path / "p.csv", people(300))
    svc.add(path, "p")
    rows = people(320, age_shift=25)
    for r in rows:
        r["score"] = 1
    write_csv(path, rows)
    svc.add(path, "p")
    d = svc.diff("p@1", "p@2")
    assert d.row_count.delta == 20
    assert d.added_columns == ["score"]
    assert d.columns["age"]["changed"] is True
    assert d.columns["city"]["changed"] is False


def test_unknown_references(workspace, tmp_path: Path) -> None:
    svc = DatasetService(workspace)
    svc.add(write_csv(tmp_path / "c.csv", people(20)), "credit")
    with pytest.raises(NotFound, match="did you mean 'credit'"):
        svc.show("credti")
    with pytest.raises(NotFound, match="versions 1 to 1"):
        svc.show("credit@7")
    with pytest.raises(UsageError, match="expected NAME or NAME@VERSION"):
        svc.show("credit@")
    with pytest.raises(UsageError, match="no such file"):
        svc.add(tmp_path / "missing.csv", "credit")


def test_revoke_and_audit(workspace, tmp_path: Path) -> None:
    svc = DatasetService(workspace)
    svc.add(write_csv(tmp_path / "c.csv", people(20)), "credit")
    with pytest.raises(UsageError):
        svc.revoke("credit@1", reason=" ")
    info = svc.revoke("credit@1", reason="consent withdrawn")
    assert info.revoked and info.revoked_by == "alice@example.com"
    with pytest.raises(Conflict, match="already revoked"):
        svc.revoke("credit@1", reason="again")
    assert "revoked" in svc.list()[0].flags
    audit = AuditService(workspace)
    actions = [e.action for e in audit.list()]
    assert actions[:2] == ["dataset.revoke", "dataset.add"]
    assert audit.verify().ok


def test_checkout_protects_unversioned_content(workspace, tmp_path: Path) -> None:
    svc = DatasetService(workspace)
    path = write_csv(tmp_path / "c.csv", people(20))
    svc.add(path, "credit")
    path.write_text("id\n1\n")  # edited, never added
    with pytest.raises(Conflict, match="no version"):
        svc.checkout("credit@1", path)
    assert path.read_text() == "id\n1\n"
    svc.checkout("credit@1", path, force=True)
    assert svc.add(path, "credit").created is False


def test_small_files_are_packed_and_reused(workspace, tmp_path: Path, monkeypatch) -> None:
    src = tmp_path / "corpus"
    src.mkdir()
    for i in range(200):
        (src / f"doc{i}.bin").write_bytes(bytes([i % 256]) * (50 + i))
    (src / "big.bin").write_bytes(b"x" * (2 << 20))  # over the pack limit: its own blob
    svc = DatasetService(workspace)
    objects = workspace.state_dir / "objects"

    def blobs() -> set[Path]:
        return {p for p in objects.glob("??/*")}

    v1 = svc.add(src, "corpus").version
    first = blobs()
    assert len(first) == 3  # one pack, the big file, the stored manifest
    (src / "new.bin").write_bytes(b"new file")
    v2 = svc.add(src, "corpus").version
    added = blobs() - first
    assert len(added) == 2  # a pack holding only the new file, and the manifest
    assert min(p.stat().st_size for p in added) == len(b"new file")

    out = svc.checkout(v1.ref, tmp_path / "v1")
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in src.iterdir()
                                                           if p.name != "new.bin")
    assert (out / "doc7.bin").read_bytes() == bytes([7]) * 57
    assert (out / "big.bin").stat().st_size == 2 << 20
    assert (svc.checkout(v2.ref, tmp_path / "v2") / "new.bin").read_bytes() == b"new file"

    monkeypatch.setenv("DSOPS_ENCRYPTION_KEY", generate_key())
    (src / "contact.txt").write_text("mail me at someone@example.com\n")
    v3 = svc.add(src, "corpus").version
    assert v3.encrypted and [f.file for f in v3.pii] == ["contact.txt"]
    assert not any(b"someone@example.com" in p.read_bytes() for p in blobs() - first)
    back = svc.checkout(v3.ref, tmp_path / "v3")
    assert (back / "contact.txt").read_text() == "mail me at someone@example.com\n"
    assert (back / "doc199.bin").read_bytes() == bytes([199]) * 249


def test_manifests_before_packs_still_read() -> None:
    from dsops.data.manifest import Location, decode_stored

    old = b'{"format":1,"files":[["a.txt","ab",3]]}'
    entries, locations = decode_stored(old)
    assert entries[0].path == "a.txt" and locations["ab"] == Location()
