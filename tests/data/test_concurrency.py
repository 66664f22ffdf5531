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
    for i in range(1500):  # ~100 MB of small files: two packs
        (src / f"f{i:05d}.bin").write_bytes(os.urandom(64 << 10))
    env = {**os.environ, "DSOPS_USER": "bot@example.com"}
    proc = subprocess.Popen([DSOPS, "data", "add", str(src), "--name", "many"], cwd=ws.root,
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    objects = ws.state_dir / "objects"
    deadline = time.monotonic() + 60
    staged = 0
    while time.monotonic() < deadline and not staged:
        # a pack being written: the upload has started and is not finished
        staged = sum(p.stat().st_size for p in (objects / "tmp").glob("stage-*")) \
            if (objects / "tmp").exists() else 0
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert staged, "the upload never started"

    with ws.store.read() as session:
        assert session.execute(select(DatasetVersion)).first() is None
    for blob in objects.glob("??/*"):  # no partial blob under a real name
        assert hash_file(blob) == blob.parent.name + blob.name

    result = DatasetService(ws).add(src, "many")  # and a retry completes
    assert result.created and result.version.version == 1 and result.version.file_count == 1500
    out = DatasetService(ws).checkout("many", tmp_path / "back")
    assert (out / "f00042.bin").read_bytes() == (src / "f00042.bin").read_bytes()


def test_two_processes_adding_the_same_content_make_one_version(workspace) -> None:
    env = {**os.environ, "DSOPS_STORE_URL": workspace.store_url, "DSOPS_USER": "bot@example.com"}
    (workspace.root / "same.csv").write_text("x\n1\n2\n")
    procs = [subprocess.Popen([DSOPS, "data", "add", "same.csv", "--name", "same"],
                              cwd=workspace.root, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(3)]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    assert [v.version for v in DatasetService(workspace).versions("same")] == [1]
