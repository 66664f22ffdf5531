"""Recording stage fingerprints after a run (the full path), for the no-op fast path
of ``pipelines/fastpath.py``, which describes what they hold and how they are checked."""

from __future__ import annotations

import glob
import json
import os
import stat as stat_module
import time
from typing import TYPE_CHECKING, Any

from dsops.core.project import CONFIG_NAME
from dsops.data.status import StatCache
from dsops.pipelines.fastpath import (
    FORMAT,
    SCHEMA,
    Stamp,
    environment_digest,
    file_stat,
    sqlite_path,
    tree_stamp,
    write_fingerprints,
)

if TYPE_CHECKING:
    from dsops.pipelines.dag import Pipeline
    from dsops.pipelines.inputs import Params
    from dsops.workspace import Workspace

# What a cache key hashes (pipelines/cache.py key_components + the project): recording
# refuses a key with any other component, so the fast path cannot miss a new input.
KNOWN_COMPONENTS = frozenset({"command", "wdir", "deps", "params", "env", "project"})

def record_fingerprints(ws: Workspace, pipeline: Pipeline, stat_cache: StatCache,
                        done: list[str], undone: list[str]) -> None:
    """After a run: fingerprint the ``done`` stages (their outs on disk are their current
    cache entry's), forget the ``undone`` ones (failed, skipped, killed).

    Every part is checked against the stage's cache entry as it is now — each dep's and
    out's hash, the params' values, the command, the environment — so a file edited
    during the run, or a dsops.yaml changed since it was loaded, records nothing.
    """
    from dsops.core.errors import DsopsError

    db = stat_cache.db
    db.executescript(SCHEMA)
    now = time.time_ns()
    try:
        config = _config_stamp(ws, now)
        if config is None or sqlite_path(ws.store_url) is None:
            write_fingerprints(db, None, dict.fromkeys([*done, *undone]))
            return
        recorder = _Recorder(ws, stat_cache, now, config[5])
        fingerprints = {name: recorder.stage(name) for name in done}
    except (DsopsError, OSError, ValueError):
        # e.g. dsops.yaml made invalid during the run: the run itself succeeded, and
        # without fingerprints the next run just takes the full path.
        write_fingerprints(db, None, dict.fromkeys([*done, *undone]))
        return
    fingerprints.update(dict.fromkeys(undone))
    pipe = {"format": FORMAT, "project": ws.config.project, "config": config,
            "config_store": ws.config.store, "store_url": ws.store_url,
            "stages": list(pipeline.order)}
    write_fingerprints(db, pipe, fingerprints)


def _config_stamp(ws: Workspace, now: int) -> Stamp | None:
    """The stamp of dsops.yaml if it still says what the workspace loaded."""
    from dsops.config import load_config
    from dsops.core.hashing import hash_bytes

    path = ws.root / CONFIG_NAME
    before = os.stat(path)
    data = path.read_bytes()
    if load_config(path) != ws.config or file_stat(os.stat(path)) != file_stat(before):
        return None
    return ["file", *file_stat(before), hash_bytes(data), now]


class _Recorder:
    def __init__(self, ws: Workspace, stat_cache: StatCache, now: int, config: str) -> None:
        from dsops.pipelines.cache import StageCache
        from dsops.pipelines.inputs import environment
        from dsops.tracking.environment import environment_lock

        self.ws = ws
        self.stat_cache = stat_cache
        self.now = now
        self.config = config
        self.cache = StageCache(ws)
        # The lock the planner hashed into this run's keys, if still the environment's.
        self.env = environment() if environment() == environment_lock() else None
        self.env_digest = environment_digest()
        self._params: tuple[Stamp, Params] | None = None
        self._params_read = False

    def stage(self, name: str) -> dict[str, Any] | None:
        """The stage's fingerprint, or None if its current state is not its cache entry's."""
        from dsops.pipelines.dag import is_data_dep, is_glob

        stage = self.ws.config.stages[name]
        entry = self.cache.last(name)
        if entry is None or self.env is None:
            return None
        comp = entry.components
        if set(comp) != KNOWN_COMPONENTS:
            return None  # the key depends on something this module does not check
        if (comp.get("command"), comp.get("wdir"), comp.get("project"), comp.get("env")) != (
                stage.command_text(), stage.wdir, self.ws.config.project, self.env):
            return None
        params = None
        if stage.params:
            params = self._params_stamp(name, stage.params, comp.get("params"))
            if params is None:
                return None
        deps: dict[str, Stamp] = {}
        globs: dict[str, list[str]] = {}
        data: dict[str, str] = {}
        expected = comp.get("deps", {})
        for dep in stage.deps:
            if is_data_dep(dep):
                if dep not in expected:
                    return None
                data[dep] = expected[dep]
                continue
            paths = [dep]
            if is_glob(dep):
                paths = globs[dep] = sorted(glob.glob(dep, root_dir=self.ws.root, recursive=True))
            for rel in paths:
                stamp = self._stamp(rel, expected.get(rel))
                if stamp is None:
                    return None
                deps[rel] = stamp
        if set(expected) != set(deps) | set(data):
            return None
        outs: dict[str, Stamp] = {}
        for rel, info in entry.outs.items():
            stamp = self._stamp(rel, info.get("digest"))
            if stamp is None:
                return None
            outs[rel] = stamp
        return {"format": FORMAT, "key": entry.key, "config": self.config,
                "env": self.env_digest, "store_url": self.ws.store_url, "deps": deps,
                "globs": globs, "data": data, "outs": outs, "params": params}

    def _stamp(self, rel: str, expected: str | None) -> Stamp | None:
        """The stamp of a file or directory if its content hash is ``expected``."""
        from dsops.data.status import local_digest

        if expected is None:
            return None
        path = self.ws.root / rel
        try:
            st = os.stat(path)
        except OSError:
            return None
        if stat_module.S_ISREG(st.st_mode):
            if self.stat_cache.digest(path, st) != expected:
                return None
            return ["file", *file_stat(st), expected, self.now]
        if not stat_module.S_ISDIR(st.st_mode):
            return None
        from dsops.data.manifest import scan_tree

        fingerprint = tree_stamp(scan_tree(str(path)))[0]
        if (local_digest(path, self.stat_cache) != expected
                or tree_stamp(scan_tree(str(path)))[0] != fingerprint):
            return None
        return ["dir", fingerprint, expected, self.now]

    def _params_stamp(self, stage: str, keys: list[str], expected: Any) -> list[Any] | None:
        """``[params file, stamp]`` if the stage's listed values are still ``expected``."""
        from dsops.core.errors import DsopsError
        from dsops.pipelines.cache import canonical_json
        from dsops.pipelines.inputs import PARAMS_FILE

        if not self._params_read:
            self._params, self._params_read = self._read_params(), True
        if self._params is None:
            return None
        stamp, params = self._params
        try:
            values = params.values(stage, keys)
        except DsopsError:
            return None
        return [PARAMS_FILE, stamp] if json.loads(canonical_json(values)) == expected else None

    def _read_params(self) -> tuple[Stamp, Params] | None:
        """params.yaml's stamp and values, from one read of a file that did not change."""
        from dsops.core.hashing import hash_bytes
        from dsops.pipelines.inputs import PARAMS_FILE, Params

        path = self.ws.root / PARAMS_FILE
        try:
            before = os.stat(path)
            data = path.read_bytes()
            after = os.stat(path)
        except OSError:
            return None
        if file_stat(before) != file_stat(after):
            return None
        return (["file", *file_stat(before), hash_bytes(data), self.now],
                Params(self.ws.root, text=data))
