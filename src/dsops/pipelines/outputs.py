"""A stage's outs in the object store: saved after a run, checked, and restored on a hit.

Restored files are hard links to the local object when the object store is a local
directory (no copy, no extra space), else verified copies. Because a link shares the
object's inode, the runner deletes a stage's outs before running it: a command that
rewrote an out in place would otherwise rewrite the stored object.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from dsops.data.status import StatCache, local_digest
from dsops.workspace import Workspace

OutsRecord = dict[str, dict[str, Any]]


def missing_outs(root: Path, outs: list[str]) -> list[str]:
    """The declared outs that do not exist on disk."""
    return [o for o in outs if not (root / o).exists()]


def save_outs(ws: Workspace, stat_cache: StatCache, outs: list[str]) -> OutsRecord:
    """Store every out (file, or each file of a directory) and return their digests."""
    from dsops.data.manifest import scan_tree

    record: OutsRecord = {}
    for rel in outs:
        path = ws.root / rel
        if path.is_dir():
            files = {}
            for file_rel, file_path, st in scan_tree(str(path)):
                digest = stat_cache.digest(file_path, st)
                ws.objects.put_file(Path(file_path), digest=digest)
                files[file_rel] = digest
            record[rel] = {"digest": local_digest(path, stat_cache), "files": files}
        else:
            st = path.stat()
            digest = stat_cache.digest(path, st)
            ws.objects.put_file(path, digest=digest)
            record[rel] = {"digest": digest, "size": st.st_size}
    return record


def outs_changes(ws: Workspace, stat_cache: StatCache, record: OutsRecord) -> list[str]:
    """Why the outs on disk are not those recorded: "out X missing" / "out X modified"."""
    why = []
    for rel, info in record.items():
        digest = local_digest(ws.root / rel, stat_cache)
        if digest is None:
            why.append(f"out {rel} missing")
        elif digest != info["digest"]:
            why.append(f"out {rel} modified")
    return why


def remove_outs(root: Path, outs: list[str]) -> None:
    """Delete outs before a stage runs (so it writes new files, never into objects)."""
    for rel in outs:
        path = root / rel
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()


def restore_outs(ws: Workspace, stat_cache: StatCache, record: OutsRecord) -> None:
    """Put the recorded outs back on disk from the object store."""
    for rel, info in record.items():
        dest = ws.root / rel
        remove_outs(ws.root, [rel])
        if "files" in info:
            for file_rel, digest in info["files"].items():
                _materialise(ws, stat_cache, digest, dest / file_rel)
            if not info["files"]:
                dest.mkdir(parents=True, exist_ok=True)
        else:
            _materialise(ws, stat_cache, info["digest"], dest)


def _materialise(ws: Workspace, stat_cache: StatCache, digest: str, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    source = ws.objects.readable_path(digest)
    linked = False
    if source is not None and source.exists():
        fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".tmp")
        os.close(fd)
        os.unlink(tmp_name)
        try:
            os.link(source, tmp_name)
            os.replace(tmp_name, dest)
            linked = True
        except OSError:  # another filesystem, or links not supported: copy instead
            Path(tmp_name).unlink(missing_ok=True)
    if not linked:
        ws.objects.get_file(digest, dest)
    stat_cache.remember(dest, digest, dest.stat())
