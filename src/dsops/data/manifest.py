"""Directory datasets: the list of files with their hashes, stored as one JSON blob."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

SKIP_DIRS = {".dsops", ".git", "__pycache__"}


@dataclass(frozen=True)
class ManifestEntry:
    """One file of a directory dataset."""

    path: str  # relative, POSIX separators
    digest: str
    size: int


def scan_tree(root: str) -> list[tuple[str, str, os.stat_result]]:
    """Every regular file under ``root`` as (relative POSIX path, path, stat), sorted.

    Strings, not pathlib: this runs on ``dsops status``'s no-op path over many files.
    """
    out: list[tuple[str, str, os.stat_result]] = []
    stack = [(root, "")]
    while stack:
        directory, prefix = stack.pop()
        with os.scandir(directory) as it:
            for entry in it:
                if entry.is_dir(follow_symlinks=False):
                    if entry.name not in SKIP_DIRS:
                        stack.append((entry.path, prefix + entry.name + "/"))
                elif entry.is_file():
                    out.append((prefix + entry.name, entry.path, entry.stat()))
    out.sort(key=lambda item: item[0])
    return out


def walk_files(root: Path) -> list[tuple[str, Path, os.stat_result]]:
    """``scan_tree`` with paths as ``Path`` objects."""
    return [(rel, Path(path), st) for rel, path, st in scan_tree(str(root))]


def tree_fingerprint(listing: list[tuple[str, str | Path, os.stat_result]]) -> str:
    """A hash of every file's relative path, size, mtime and inode: unchanged while the
    directory's content is (as far as ``stat`` can tell, like git's index)."""
    from dsops.core.hashing import hash_bytes

    return hash_bytes("\n".join(
        f"{rel}\0{st.st_size}\0{st.st_mtime_ns}\0{st.st_ino}" for rel, _, st in listing
    ).encode())


def encode_manifest(entries: list[ManifestEntry]) -> bytes:
    """Canonical bytes: the same files always give the same manifest (and digest)."""
    rows = [[e.path, e.digest, e.size] for e in sorted(entries, key=lambda e: e.path)]
    return json.dumps({"format": 1, "files": rows}, separators=(",", ":")).encode()


def decode_manifest(data: bytes) -> list[ManifestEntry]:
    """The entries of a stored manifest."""
    return [ManifestEntry(p, d, s) for p, d, s in json.loads(data)["files"]]
