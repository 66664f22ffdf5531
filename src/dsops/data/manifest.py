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


def walk_files(root: Path) -> list[tuple[str, Path, os.stat_result]]:
    """Every regular file under ``root`` (sorted by relative path), with its stat."""
    out: list[tuple[str, Path, os.stat_result]] = []
    stack = [root]
    while stack:
        directory = stack.pop()
        with os.scandir(directory) as it:
            for entry in it:
                if entry.is_dir(follow_symlinks=False):
                    if entry.name not in SKIP_DIRS:
                        stack.append(Path(entry.path))
                elif entry.is_file():
                    path = Path(entry.path)
                    out.append((path.relative_to(root).as_posix(), path, entry.stat()))
    out.sort(key=lambda item: item[0])
    return out


def encode_manifest(entries: list[ManifestEntry]) -> bytes:
    """Canonical bytes: the same files always give the same manifest (and digest)."""
    rows = [[e.path, e.digest, e.size] for e in sorted(entries, key=lambda e: e.path)]
    return json.dumps({"format": 1, "files": rows}, separators=(",", ":")).encode()


def decode_manifest(data: bytes) -> list[ManifestEntry]:
    """The entries of a stored manifest."""
    return [ManifestEntry(p, d, s) for p, d, s in json.loads(data)["files"]]
