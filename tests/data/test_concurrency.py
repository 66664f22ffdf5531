"""Concurrent adds never share a version number; a killed add leaves a consistent store."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import select

from dsops.core.hashing import hash_file
from dsops.data.service import DatasetService
from dsops.store.models import DatasetVersion

DSOPS = str(Path(sys.executable).with_name("dsops"))


def test_two_processes_adding_the_same_dataset(workspace, tmp_path: Path) -> None:
    env = {**os.environ, "DSOPS_STORE_URL": workspace.store_url, "DSOPS_USER": "bot@example.com"}
    script = (
        "for i in 1 2 3 4 5; do printf 'x\\n%s-%s\\n' $1 $i > f_$1_$i.csv; "
        f"{DSOPS} data add f_$1_$i.csv --name shared >/dev/null || exit 1; done"
    )
    procs = [subprocess.Popen(["bash", "-c", script, "_", who], cwd=workspace.root, env=env,
                              stderr=subprocess.PIPE, text=True) for who in ("a", "b")]
    for p in procs:
        _, err = p.communicate(timeout=180)
        assert p.returncode == 0, err
    versions = DatasetService(workspace).versions("shared")
    assert sorted(v.version for v in versions) == list(range(1, 11))
    assert len({v.digest for v in versions}) == 10


def test_sigkill_mid_upload_leaves_store_consistent(make_workspace, tmp_path: Path) -> None:
    ws = make_workspace()
    src = tmp_path / "many"
    src.mkdir()
    for i in range(4000):
        (src / f"f{i:05d}.bin").write_bytes(os.urandom(2048))
    env = {**os.environ, "DSOPS_USER": "bot@example.com"}
    proc = subprocess.Popen([DSOPS, "data", "add", str(src), "--name", "many"], cwd=ws.root,
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    objects = ws.state_dir / "objects"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        stored = [p for p in objects.glob("??/*")] if objects.exists() else []
        if len(stored) > 50:
            break
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert len(stored) > 50, "the upload never started"

    with ws.store.read() as session:
        assert session.execute(select(DatasetVersion)).first() is None
    for blob in objects.glob("??/*"):  # no partial blob under a real name
        assert hash_file(blob) == blob.parent.name + blob.name

    result = DatasetService(ws).add(src, "many")  # and a retry completes
    assert result.created and result.version.version == 1 and result.version.file_count == 4000
