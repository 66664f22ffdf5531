"""``dsops status``: which declared datasets changed on disk since their latest version,
and which pipeline stages ``dsops run`` would run (see pipelines/fastpath.py).

This is the path that must feel instant, so it uses only the standard library (plus
BLAKE3 when something needs rehashing): a stat cache in ``.dsops/state.db`` maps
(path, size, mtime, inode, ctime) to a content hash, as git's index and DVC's state
database do; the parsed dataset paths of ``dsops.yaml`` are cached by the file's stat
too; the embedded SQLite store is read with ``sqlite3`` directly. Only when ``dsops.yaml`` changed,
or the store is PostgreSQL, are the heavier modules imported.
"""

from __future__ import annotations

import json
import os
import sqlite3
import sys
from pathlib import Path
from typing import NamedTuple

from dsops.core.project import CONFIG_NAME, STATE_DIR, find_root

STATE_DB = "state.db"

_SCHEMA = """
DROP TABLE IF EXISTS stat_cache;
CREATE TABLE IF NOT EXISTS file_stats (
    path TEXT PRIMARY KEY, size INTEGER, mtime_ns INTEGER, inode INTEGER, ctime_ns INTEGER,
    digest TEXT);
CREATE TABLE IF NOT EXISTS tree_cache (
    path TEXT PRIMARY KEY, fingerprint TEXT, digest TEXT);
DROP TABLE IF EXISTS config_cache;
CREATE TABLE IF NOT EXISTS config_stats (
    id INTEGER PRIMARY KEY CHECK (id = 1), size INTEGER, mtime_ns INTEGER, inode INTEGER,
    ctime_ns INTEGER, body TEXT);
"""


class StatCache:
    """Content hashes of local files, trusted while size, mtime, inode and ctime are
    unchanged (ctime: an edit that restores the mtime still changes it)."""

    def __init__(self, state_dir: Path) -> None:
        state_dir.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(state_dir / STATE_DB, timeout=30, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        # A cache: losing its last writes costs a rehash, never correctness; an fsync
        # here would wait for every dirty page of a large file just copied (ext4).
        self.db.execute("PRAGMA synchronous=OFF")
        self.db.executescript(_SCHEMA)
        self._rows: dict[str, tuple[int, int, int, int, str]] | None = None
        self._pending: list[tuple[str, int, int, int, int, str]] = []

    def _load(self) -> dict[str, tuple[int, int, int, int, str]]:
        if self._rows is None:
            self._rows = {
                p: (s, m, i, c, d)
                for p, s, m, i, c, d in self.db.execute("SELECT * FROM file_stats")
            }
        return self._rows

    def cached(self, path: str | Path, st: os.stat_result) -> str | None:
        """The remembered hash of ``path`` if its size, mtime, inode and ctime are unchanged."""
        row = self._load().get(str(path))
        if row and row[:4] == (st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns):
            return row[4]
        return None

    def digest(self, path: str | Path, st: os.stat_result | None = None) -> str:
        """The content hash of ``path``, from the cache when its stat is unchanged."""
        st = st or os.stat(path)
        cached = self.cached(path, st)
        if cached is not None:
            return cached
        from dsops.core.hashing import hash_file

        digest = hash_file(path, st.st_size)
        self.remember(path, digest, st)
        return digest

    def remember(self, path: str | Path, digest: str, st: os.stat_result) -> None:
        """Record a hash computed elsewhere (e.g. by ``data add``)."""
        row = (st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns, digest)
        self._load()[str(path)] = row
        self._pending.append((str(path), *row))

    def tree_digest(self, path: str, fingerprint: str) -> str | None:
        """The remembered digest of a directory whose stat fingerprint is unchanged."""
        row = self.db.execute("SELECT fingerprint, digest FROM tree_cache WHERE path = ?",
                              (path,)).fetchone()
        return row[1] if row and row[0] == fingerprint else None

    def remember_tree(self, path: str, fingerprint: str, digest: str) -> None:
        """Record a directory's dataset digest under its stat fingerprint."""
        self.db.execute("INSERT OR REPLACE INTO tree_cache VALUES (?, ?, ?)",
                        (path, fingerprint, digest))

    def flush(self) -> None:
        """Write remembered hashes to disk."""
        if self._pending:
            self.db.execute("BEGIN")
            self.db.executemany("INSERT OR REPLACE INTO file_stats VALUES (?,?,?,?,?,?)",
                                self._pending)
            self.db.execute("COMMIT")
            self._pending.clear()

    def close(self) -> None:
        self.flush()
        self.db.close()

    def cached_config(self, st: os.stat_result) -> dict[str, object] | None:
        """What was remembered of dsops.yaml, if its stat is ``st``."""
        row = self.db.execute("SELECT size, mtime_ns, inode, ctime_ns, body "
                              "FROM config_stats").fetchone()
        if row and row[:4] == (st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns):
            return json.loads(row[4])
        return None

    def store_config(self, st: os.stat_result, body: dict[str, object]) -> None:
        """Remember ``body`` for dsops.yaml as of ``st`` (taken before it was parsed)."""
        self.db.execute("INSERT OR REPLACE INTO config_stats VALUES (1, ?, ?, ?, ?, ?)",
                        (st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns,
                         json.dumps(body)))


def local_digest(path: Path, cache: StatCache) -> str | None:
    """The dataset digest of a file or directory on disk (None when it does not exist)."""
    if path.is_file():
        return cache.digest(path)
    if path.is_dir():
        from dsops.core.hashing import hash_bytes
        from dsops.data.manifest import ManifestEntry, encode_manifest, scan_tree, tree_fingerprint

        listing = scan_tree(str(path))
        fingerprint = tree_fingerprint(listing)
        known = cache.tree_digest(str(path.resolve()), fingerprint)
        if known is not None:
            return known
        entries = [ManifestEntry(rel, cache.digest(p, st), st.st_size) for rel, p, st in listing]
        digest = hash_bytes(encode_manifest(entries))
        cache.remember_tree(str(path.resolve()), fingerprint, digest)
        return digest
    return None


class DatasetStatus(NamedTuple):
    """One declared dataset compared with its latest version."""

    name: str
    path: str
    state: str  # unchanged | modified | not added | missing
    latest_version: int | None


def _project(root: Path, cache: StatCache) -> dict[str, object]:
    """Dataset paths, stage names and store URL from dsops.yaml, via the cache when
    unchanged."""
    config_path = root / CONFIG_NAME
    st = config_path.stat()
    body = cache.cached_config(st)
    if body is None:
        from dsops.config import load_config

        config = load_config(config_path)
        body = {"store": config.store,
                "datasets": {n: d.path for n, d in config.datasets.items()},
                "stages": list(config.stages)}
        cache.store_config(st, body)
    return body


def _latest_versions(root: Path, store_url: str | None, names: list[str]
                     ) -> dict[str, tuple[int, str]]:
    default_db = root / STATE_DIR / "dsops.db"
    if store_url is None or store_url == f"sqlite:///{default_db}":
        if not default_db.exists():
            return {}
        db = sqlite3.connect(f"{default_db.as_uri()}?mode=ro", uri=True, timeout=30)
        try:
            rows = db.execute(
                "SELECT d.name, v.version, v.digest FROM datasets d "
                "JOIN dataset_versions v ON v.dataset_id = d.id "
                "WHERE v.version = (SELECT max(version) FROM dataset_versions "
                "WHERE dataset_id = d.id)").fetchall()
        except sqlite3.OperationalError:
            return {}  # store not created yet
        finally:
            db.close()
        return {name: (version, digest) for name, version, digest in rows}
    from dsops.data.service import DatasetService
    from dsops.workspace import Workspace

    ws = Workspace.open(root)
    return DatasetService(ws).latest_digests(names)


def compute_status(root: Path) -> list[DatasetStatus]:
    """Compare each declared dataset's files with its latest stored version."""
    return _compute(root)[0]


def _compute(root: Path) -> tuple[list[DatasetStatus], list[str]]:
    """Dataset statuses, and the names of the stages dsops.yaml declares."""
    cache = StatCache(root / STATE_DIR)
    try:
        project = _project(root, cache)
        datasets: dict[str, str | None] = project["datasets"]  # type: ignore[assignment]
        store_url = os.environ.get("DSOPS_STORE_URL") or project["store"]
        latest = _latest_versions(root, store_url, list(datasets))  # type: ignore[arg-type]
        out = []
        for name, rel in datasets.items():
            if rel is None:
                continue
            digest = local_digest(root / rel, cache)
            known = latest.get(name)
            if digest is None:
                state = "missing"
            elif known is None:
                state = "not added"
            else:
                state = "unchanged" if known[1] == digest else "modified"
            out.append(DatasetStatus(name, rel, state, known[0] if known else None))
        return out, list(project["stages"])  # type: ignore[call-overload]
    finally:
        cache.close()


class StageState(NamedTuple):
    """One pipeline stage: would ``dsops run`` run it or use the cache, and why."""

    name: str
    state: str  # cached | will run
    why: list[str]


def stage_status(root: Path) -> list[StageState]:
    """Every stage's state: from the fingerprints when nothing changed (standard library
    only), else from the planner, which says which dep, param or environment changed."""
    from dsops.pipelines.fastpath import cached_stages

    cached = cached_stages(root)
    if cached is not None:
        return [StageState(s.stage, "cached", ["up to date"]) for s in cached]
    from dsops.pipelines.service import PipelineService
    from dsops.workspace import Workspace

    ws = Workspace.open(root)
    try:
        return [StageState(s.stage, "cached" if s.action == "cached" else "will run", s.why)
                for s in PipelineService(ws).status()]
    finally:
        ws.close()


def run_status_command(*, json_output: bool) -> int:
    """The ``dsops status`` command: datasets, then pipeline stages (plain output: Rich is
    not imported on this path). A broken pipeline is reported after the datasets."""
    root = find_root(Path.cwd())
    if root is None:
        from dsops.core.errors import UsageError

        raise UsageError(f"no {CONFIG_NAME} in {Path.cwd()} or any parent directory",
                         hint="run 'dsops init' to start a project here")
    rows, stage_names = _compute(root)
    stages: list[StageState] = []
    error: Exception | None = None
    if stage_names:
        try:
            stages = stage_status(root)
        except Exception as exc:  # a DsopsError is shown after the datasets
            from dsops.core.errors import DsopsError

            if not isinstance(exc, DsopsError):
                raise
            error = exc
    if json_output:
        # One list, as before stages were shown: dataset rows, then stage rows.
        print(json.dumps([{"kind": "dataset", **r._asdict()} for r in rows]
                         + [{"kind": "stage", **s._asdict()} for s in stages], indent=2))
    else:
        _print_plain(rows, stages, bool(stage_names))
    if error is not None:
        raise error
    return 0


def _print_plain(rows: list[DatasetStatus], stages: list[StageState], has_stages: bool) -> None:
    if rows:
        width = max(len(r.name) for r in rows)
        for r in rows:
            latest = f"@{r.latest_version}" if r.latest_version else ""
            print(f"{r.name:<{width}}  {r.state:<10} {r.path} {latest}".rstrip())
    elif not has_stages:
        print("no datasets with a 'path' declared in dsops.yaml")
    if stages:
        if rows:
            print()
        print("stages:")
        width = max(len(s.name) for s in stages)
        for s in stages:
            print(f"  {s.name:<{width}}  {s.state:<8}  {'; '.join(s.why)}".rstrip())
    changed = [r.name for r in rows if r.state in ("modified", "not added")]
    if changed:
        print(f"\n{len(changed)} changed: run 'dsops data add PATH --name NAME' to version them",
              file=sys.stderr)
    to_run = [s.name for s in stages if s.state == "will run"]
    if to_run:
        print(f"\n{len(to_run)} of {len(stages)} stages will run: run 'dsops run' to bring "
              "them up to date", file=sys.stderr)
