"""Datasets on a real S3-compatible object store (SeaweedFS) and an unreachable one."""

from __future__ import annotations

from pathlib import Path

import pytest

from dsops.core.errors import StoreError
from dsops.data.service import DatasetService
from tests.data.samples import people, write_csv


def test_add_and_checkout_on_s3(make_workspace, s3_objects_url: str, tmp_path: Path) -> None:
    ws = make_workspace(objects_url=s3_objects_url)
    svc = DatasetService(ws)
    path = write_csv(tmp_path / "p.csv", people(100))
    v = svc.add(path, "p").version
    assert svc.add(path, "p").created is False
    out = svc.checkout("p@1", tmp_path / "back.csv")
    assert out.read_bytes() == path.read_bytes()
    assert svc.read_table("p").num_rows == 100
    assert ws.objects.exists(v.digest)


def test_s3_down_stores_nothing(make_workspace, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("DSOPS_S3_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing listens
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "y")
    ws = make_workspace(objects_url="s3://nowhere/dsops")
    svc = DatasetService(ws)
    with pytest.raises(StoreError, match="object store s3://nowhere/dsops"):
        svc.add(write_csv(tmp_path / "p.csv", people(10)), "p")
    assert svc.list() == []
