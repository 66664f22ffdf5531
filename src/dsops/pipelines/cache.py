"""Stage cache keys, and the store table that remembers, per key, the outs it produced.

A key is BLAKE3 over canonical JSON of its components (command, deps' content hashes,
params' values, environment lock). The components of each stage's last successful key
are kept, so a changed key can be explained ("param train.lr changed 0.1 → 0.2").
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from dsops.config.models import StageConfig
from dsops.core.hashing import hash_bytes
from dsops.pipelines.inputs import flatten
from dsops.store.models import StageCacheEntry
from dsops.workspace import Workspace

Components = dict[str, Any]


def canonical_json(value: Any) -> bytes:
    """Stable bytes for hashing: sorted keys, no whitespace, non-JSON values as text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str,
                      ensure_ascii=False).encode()


def key_components(stage: StageConfig, deps: dict[str, str], params: dict[str, Any],
                   env: dict[str, Any]) -> Components:
    """Everything a stage's result depends on, as one JSON-able mapping."""
    return {"command": stage.command_text(), "wdir": stage.wdir, "deps": deps,
            "params": json.loads(canonical_json(params)), "env": env}


def cache_key(components: Components) -> str:
    """The BLAKE3 hex digest of the components' canonical JSON."""
    return hash_bytes(canonical_json(components))


def explain(previous: Components | None, current: Components) -> list[str]:
    """Why ``current`` differs from the last successful key's components, in words."""
    if previous is None:
        return ["never run"]
    why: list[str] = []
    if previous.get("command") != current["command"] or previous.get("wdir") != current["wdir"]:
        why.append("command changed")
    old_deps, new_deps = previous.get("deps", {}), current["deps"]
    for name in sorted(old_deps.keys() | new_deps.keys()):
        old, new = old_deps.get(name), new_deps.get(name)
        if old == new:
            continue
        if old is None:
            why.append(f"dep {name} added")
        elif new is None:
            why.append(f"dep {name} removed")
        elif name.startswith("data:"):
            why.append(f"dep {name} changed ({old.split(':')[0]} → {new.split(':')[0]})")
        else:
            why.append(f"dep {name} changed")
    old_params = flatten(previous.get("params", {}))
    new_params = flatten(current["params"])
    for key in sorted(old_params.keys() | new_params.keys()):
        old, new = old_params.get(key, _ABSENT), new_params.get(key, _ABSENT)
        if old == new:
            continue
        if old is _ABSENT:
            why.append(f"param {key} added")
        elif new is _ABSENT:
            why.append(f"param {key} removed")
        else:
            why.append(f"param {key} changed {old} → {new}")
    env_change = _env_change(previous.get("env", {}), current["env"])
    if env_change:
        why.append(env_change)
    return why or ["cache key changed"]


_ABSENT = object()


def _env_change(old: dict[str, Any], new: dict[str, Any]) -> str | None:
    changes = []
    if old.get("python") != new.get("python"):
        changes.append(f"python {old.get('python')} → {new.get('python')}")
    old_pkgs, new_pkgs = old.get("packages", {}), new.get("packages", {})
    for name in sorted(old_pkgs.keys() | new_pkgs.keys()):
        a, b = old_pkgs.get(name), new_pkgs.get(name)
        if a != b:
            changes.append(f"{name} {a or 'absent'} → {b or 'absent'}" if a and b else
                           f"{name} {'added' if b else 'removed'}")
    if not changes:
        return None
    shown = ", ".join(changes[:3]) + (f", and {len(changes) - 3} more" if len(changes) > 3 else "")
    return f"environment changed ({shown})"


@dataclass(frozen=True)
class CacheEntry:
    """A successful result: the key, its components, and the outs it produced."""

    key: str
    stage: str
    components: Components
    outs: dict[str, Any]
    run_id: str | None


class StageCache:
    """The ``stage_cache`` table of one project."""

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        self.project = ws.config.project

    def get(self, key: str) -> CacheEntry | None:
        """The entry for ``key``, if this key ever succeeded."""
        with self.ws.store.read() as session:
            row = session.get(StageCacheEntry, key)
            return None if row is None else _entry(row)

    def last(self, stage: str) -> CacheEntry | None:
        """The stage's most recently used successful entry (what its outs should be now)."""
        with self.ws.store.read() as session:
            row = session.execute(
                select(StageCacheEntry).where(StageCacheEntry.project == self.project,
                                              StageCacheEntry.stage == stage)
                .order_by(StageCacheEntry.used_at.desc(), StageCacheEntry.created_at.desc())
                .limit(1)).scalar_one_or_none()
            return None if row is None else _entry(row)

    def record(self, entry: CacheEntry) -> None:
        """Remember a successful run's outs under its key (replacing a forced rerun's)."""
        now = self.ws.now()
        with self.ws.store.transaction() as session:
            row = session.get(StageCacheEntry, entry.key)
            if row is None:
                session.add(StageCacheEntry(
                    key=entry.key, project=self.project, stage=entry.stage,
                    components=entry.components, outs=entry.outs, run_id=entry.run_id,
                    created_at=now, used_at=now))
            else:
                row.project, row.stage, row.components = self.project, entry.stage, entry.components
                row.outs, row.run_id, row.used_at = entry.outs, entry.run_id, now
            self.ws.audit(session, "stage.cache", f"stage:{entry.stage}",
                          {"key": entry.key, "run": entry.run_id})

    def touch(self, key: str, stage: str) -> None:
        """Mark an entry as the stage's current one (its outs were restored)."""
        with self.ws.store.transaction() as session:
            row = session.get(StageCacheEntry, key)
            if row is not None:
                row.used_at, row.project, row.stage = self.ws.now(), self.project, stage


def _entry(row: StageCacheEntry) -> CacheEntry:
    return CacheEntry(key=row.key, stage=row.stage, components=row.components, outs=row.outs,
                      run_id=row.run_id)
