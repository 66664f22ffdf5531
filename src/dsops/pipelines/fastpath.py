"""The no-op fast path of ``dsops run`` and ``dsops status``: stage fingerprints.

After a run, every stage that ran or came from the cache gets a fingerprint in
``.dsops/state.db``: what its cache key depends on, in a form checked with ``stat``
calls and cheap reads — each dep and out file's (size, mtime, inode, ctime) with its
content hash, directories by a fingerprint of their files' stats, the matches of each
glob, ``params.yaml``'s stat and hash, ``data:`` deps as the dataset version digest,
the hash of ``dsops.yaml`` (command, outs and all), the environment lock and the store
URL — together with the resulting cache key.

``fingerprints.record_fingerprints`` writes them; ``cached_stages`` checks every
stage's fingerprint with the standard library (BLAKE3 only to rehash a file whose stat
changed), reads the store's stage cache and dataset heads with ``sqlite3``, and says
"all cached" only when everything matches. Anything unclear — no fingerprint, a
changed file, a PostgreSQL store, another environment — returns None, and the caller
takes the full path (the planner), the source of truth.

Stats are trusted only when the file was last changed well before its hash was
verified (2 s): an edit within the filesystem's timestamp granularity after that could
otherwise keep the same stat ("racily clean", as git calls it). Those files are rehashed.
"""

from __future__ import annotations

import glob
import json
import os
import sqlite3
import stat as stat_module
import time
from pathlib import Path
from typing import Any, NamedTuple

from dsops.core.project import CONFIG_NAME, STATE_DIR
from dsops.data.status import STATE_DB, StatCache

FORMAT = 1
RACY_NS = 2_000_000_000
DISABLE_ENV = "DSOPS_FAST_PATH"  # "0": always take the full path

SCHEMA = """
CREATE TABLE IF NOT EXISTS pipeline_fingerprint (
    id INTEGER PRIMARY KEY CHECK (id = 1), body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS stage_fingerprints (stage TEXT PRIMARY KEY, body TEXT NOT NULL);
"""
# The planner's StageCache.last(): the stage's current entry.
_LAST_ENTRY = ("SELECT key, run_id FROM stage_cache WHERE project = ? AND stage = ? "
               "ORDER BY used_at DESC, created_at DESC LIMIT 1")
_DATASET_VERSION = ("SELECT v.version, v.digest FROM datasets d JOIN dataset_versions v "
                    "ON v.dataset_id = d.id WHERE d.name = ? AND v.version = ?")
_DATASET_LATEST = ("SELECT v.version, v.digest FROM datasets d JOIN dataset_versions v "
                   "ON v.dataset_id = d.id WHERE d.name = ? ORDER BY v.version DESC LIMIT 1")

# A stamp is a JSON list: ["file", size, mtime_ns, inode, ctime_ns, digest, verified_ns]
# or ["dir", stat fingerprint, digest, verified_ns]; verified_ns is when the digest was
# known to match that stat.
Stamp = list[Any]


class CachedStage(NamedTuple):
    """A stage the fast path found up to date, with the run that produced its outs."""

    stage: str
    run_id: str | None


# --------------------------------------------------------------------------- checking


def cached_stages(root: Path) -> list[CachedStage] | None:
    """Every stage, in execution order, if nothing changed since its fingerprint was
    recorded; None when anything differs or is unclear (take the full path)."""
    if os.environ.get(DISABLE_ENV) == "0" or os.environ.get("DSOPS_URL"):
        return None
    if not (root / STATE_DIR / STATE_DB).exists():
        return None
    cache = StatCache(root / STATE_DIR)
    try:
        return _Check(root, cache).run()
    except (OSError, sqlite3.Error, ValueError, KeyError, TypeError, IndexError):
        return None  # an unreadable or old-format fingerprint is "unclear"
    finally:
        cache.close()


class _Check:
    def __init__(self, root: Path, cache: StatCache) -> None:
        self.root = root
        self.cache = cache
        self.now = time.time_ns()
        self.dirty = False

    def run(self) -> list[CachedStage] | None:
        db = self.cache.db
        db.executescript(SCHEMA)
        row = db.execute("SELECT body FROM pipeline_fingerprint").fetchone()
        if row is None:
            return None
        pipe = json.loads(row[0])
        if pipe.get("format") != FORMAT or not self.stamp_ok(CONFIG_NAME, pipe["config"]):
            return None
        store_url = (os.environ.get("DSOPS_STORE_URL") or pipe["config_store"]
                     or default_store_url(self.root))
        store_path = sqlite_path(store_url)
        if store_url != pipe["store_url"] or store_path is None or not store_path.exists():
            return None
        env = environment_digest()
        fingerprints = {stage: json.loads(body) for stage, body
                        in db.execute("SELECT stage, body FROM stage_fingerprints")}
        store = sqlite3.connect(f"{store_path.as_uri()}?mode=ro", uri=True, timeout=30)
        try:
            out = []
            for name in pipe["stages"]:
                fp = fingerprints.get(name)
                if (fp is None or fp.get("format") != FORMAT or fp["config"] != pipe["config"][5]
                        or fp["env"] != env or fp["store_url"] != store_url
                        or not self.inputs_ok(fp, store)):
                    return None
                last = store.execute(_LAST_ENTRY, (pipe["project"], name)).fetchone()
                if last is None or last[0] != fp["key"]:
                    return None
                out.append(CachedStage(name, last[1]))
        finally:
            store.close()
        if self.dirty:  # stats refreshed after rehashing unchanged content
            write_fingerprints(db, pipe, {n: fingerprints[n] for n in pipe["stages"]})
        return out

    def inputs_ok(self, fp: dict[str, Any], store: sqlite3.Connection) -> bool:
        for pattern, matches in fp["globs"].items():
            if sorted(glob.glob(pattern, root_dir=self.root, recursive=True)) != matches:
                return False
        for dep, expected in fp["data"].items():
            if dataset_digest(store, dep) != expected:
                return False
        if fp["params"] is not None and not self.stamp_ok(fp["params"][0], fp["params"][1]):
            return False
        return (all(self.stamp_ok(rel, s) for rel, s in fp["deps"].items())
                and all(self.stamp_ok(rel, s) for rel, s in fp["outs"].items()))

    def stamp_ok(self, rel: str, stamp: Stamp) -> bool:
        """Whether ``rel`` still has the stamped content; a changed stat over unchanged
        content refreshes the stamp."""
        path = self.root / rel
        if stamp[0] == "dir":
            return self._dir_ok(path, stamp)
        try:
            st = os.stat(path)
        except OSError:
            return False
        if not stat_module.S_ISREG(st.st_mode) or st.st_size != stamp[1]:
            return False
        if (file_stat(st) == stamp[1:5]
                and max(st.st_mtime_ns, st.st_ctime_ns) < stamp[6] - RACY_NS):
            return True
        from dsops.core.hashing import hash_file

        verified = time.time_ns()
        digest = hash_file(path, st.st_size)
        self.cache.remember(path, digest, st)  # the full path need not hash it again
        if digest != stamp[5]:
            return False
        stamp[1:] = [*file_stat(st), digest, verified]
        self.dirty = True
        return True

    def _dir_ok(self, path: Path, stamp: Stamp) -> bool:
        if not path.is_dir():
            return False
        from dsops.data.manifest import scan_tree

        listing = scan_tree(str(path))
        fingerprint, newest = tree_stamp(listing)
        if fingerprint == stamp[1] and newest < stamp[3] - RACY_NS:
            return True
        from dsops.core.hashing import hash_bytes, hash_file
        from dsops.data.manifest import ManifestEntry, encode_manifest

        verified = time.time_ns()
        digest = hash_bytes(encode_manifest(
            [ManifestEntry(rel, hash_file(p, st.st_size), st.st_size) for rel, p, st in listing]))
        if digest != stamp[2] or tree_stamp(scan_tree(str(path)))[0] != fingerprint:
            return False
        stamp[1:] = [fingerprint, digest, verified]
        self.dirty = True
        return True


def file_stat(st: os.stat_result) -> list[int]:
    return [st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns]


def tree_stamp(listing: list[tuple[str, str, os.stat_result]]) -> tuple[str, int]:
    """A directory's stat fingerprint (every file's path, size, mtime, inode, ctime) and
    its newest mtime or ctime."""
    from dsops.core.hashing import hash_bytes

    fingerprint = hash_bytes("\n".join(
        f"{rel}\0{st.st_size}\0{st.st_mtime_ns}\0{st.st_ino}\0{st.st_ctime_ns}"
        for rel, _, st in listing).encode())
    newest = max((max(st.st_mtime_ns, st.st_ctime_ns) for _, _, st in listing), default=0)
    return fingerprint, newest


def environment_digest() -> str:
    """A hash of the environment lock (Python + installed packages) of this process."""
    from dsops.core.hashing import hash_bytes
    from dsops.tracking.environment import environment_lock

    return hash_bytes(json.dumps(environment_lock(), sort_keys=True).encode())


def default_store_url(root: Path) -> str:
    """The store URL of a project that configures none (as ``Workspace`` computes it)."""
    return f"sqlite:///{root / STATE_DIR / 'dsops.db'}"


def sqlite_path(url: str) -> Path | None:
    """The file of a ``sqlite:////absolute/path`` URL; None for anything else."""
    if not url.startswith("sqlite:///") or "?" in url:
        return None
    path = url[len("sqlite:///"):]
    return Path(path) if path.startswith("/") else None


def dataset_digest(store: sqlite3.Connection, dep: str) -> str | None:
    """``NAME@N:<digest>`` of the version a ``data:NAME[@N]`` dep names (as the planner
    records it), read from a SQLite store; None if unknown or not a numbered ref."""
    name, _, tag = dep.strip().removeprefix("data:").partition("@")
    if tag and not tag.isdigit():
        return None
    row = (store.execute(_DATASET_VERSION, (name, int(tag))) if tag
           else store.execute(_DATASET_LATEST, (name,))).fetchone()
    return None if row is None else f"{name}@{row[0]}:{row[1]}"


def write_fingerprints(db: sqlite3.Connection, pipe: dict[str, Any] | None,
           stages: dict[str, dict[str, Any] | None]) -> None:
    """Store the pipeline row and each stage's fingerprint (None deletes it)."""
    db.execute("BEGIN IMMEDIATE")
    try:
        if pipe is not None:
            db.execute("INSERT OR REPLACE INTO pipeline_fingerprint VALUES (1, ?)",
                       (json.dumps(pipe),))
            names = pipe["stages"]
            db.execute(f"DELETE FROM stage_fingerprints WHERE stage NOT IN "
                       f"({', '.join('?' * len(names))})", names)
        for name, fp in stages.items():
            if fp is None:
                db.execute("DELETE FROM stage_fingerprints WHERE stage = ?", (name,))
            else:
                db.execute("INSERT OR REPLACE INTO stage_fingerprints VALUES (?, ?)",
                           (name, json.dumps(fp)))
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
