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


def tree_fingerprint(listing: list[tuple[str, str | Path, os.stat_result]]) -> str:
    """A hash of every file's relative path, size, mtime and inode: unchanged while the
    directory's content is (as far as ``stat`` can tell, like git's index)."""
    from dsops.core.hashing import hash_bytes

    return hash_bytes("\n".join(
        f"{rel}\0{st.st_size}\0{st.st_mtime_ns}\0{st.st_ino}" for rel, _, st in listing
    ).encode())


def encode_manifest(entries: list[ManifestEntry]) -> bytes:
    """Canonical bytes of the content: the same files always give the same manifest, and
    its hash is the version's digest (independent of where the blobs are kept)."""
    rows = [[e.path, e.digest, e.size] for e in sorted(entries, key=lambda e: e.path)]
    return json.dumps({"format": 1, "files": rows}, separators=(",", ":")).encode()


@dataclass(frozen=True)
class Location:
    """Where a file's bytes are kept: a pack and an offset, or (pack None) its own blob."""

    pack: str | None = None
    offset: int = 0


def encode_stored(entries: list[ManifestEntry], locations: dict[str, Location]) -> bytes:
    """The manifest as stored: the content rows plus where each file is kept."""
    rows: list[list[object]] = []
    for e in sorted(entries, key=lambda e: e.path):
        where = locations.get(e.digest, Location())
        rows.append([e.path, e.digest, e.size] + ([where.pack, where.offset] if where.pack else []))
    return json.dumps({"format": 2, "files": rows}, separators=(",", ":")).encode()


def decode_stored(data: bytes) -> tuple[list[ManifestEntry], dict[str, Location]]:
    """Entries and locations of a stored manifest (format 1 had no packs)."""
    entries, locations = [], {}
    for row in json.loads(data)["files"]:
        entries.append(ManifestEntry(row[0], row[1], row[2]))
        locations[row[1]] = Location(row[3], row[4]) if len(row) > 3 else Location()
    return entries, locations
