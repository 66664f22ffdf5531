"""Decide, per stage, whether to run it or use the cache, and say why."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dsops.pipelines.cache import CacheEntry, Components, StageCache, cache_key, explain, key_components
from dsops.pipelines.dag import Pipeline
from dsops.pipelines.inputs import DepHasher, Params, environment
from dsops.pipelines.outputs import outs_changes


@dataclass
class Decision:
    """``run`` or ``cached`` (``restore`` says whether outs must be put back first)."""

    stage: str
    action: str
    why: list[str]
    key: str | None = None
    components: Components | None = None
    entry: CacheEntry | None = None
    restore: bool = False
    params: dict[str, Any] = field(default_factory=dict)


class Planner:
    """Evaluates stages against the stage cache of one project."""

    def __init__(self, pipeline: Pipeline, hasher: DepHasher, params: Params,
                 cache: StageCache, project: str) -> None:
        self.pipeline = pipeline
        self.hasher = hasher
        self.params = params
        self.cache = cache
        self.project = project

    def check(self, names: list[str]) -> None:
        """Fail before anything runs on an unknown param key or dataset."""
        for name in names:
            stage = self.pipeline.stages[name]
            self.params.values(name, stage.params)
            self.hasher.check_datasets(name, stage.deps)

    def decide(self, name: str, *, force: bool = False,
               upstream_running: list[str] | None = None) -> Decision:
        """What to do with ``name`` now, given its deps as they are on disk."""
        if upstream_running:
            return Decision(name, "run", [f"upstream {u} will run" for u in upstream_running])
        stage = self.pipeline.stages[name]
        deps: dict[str, str] = {}
        for dep in stage.deps:
            deps.update(self.hasher.hash(name, dep))
        params = self.params.values(name, stage.params)
        components = key_components(stage, deps, params, environment())
        components["project"] = self.project
        key = cache_key(components)
        last = self.cache.last(name)
        decision = Decision(name, "run", [], key=key, components=components, params=params)
        if force:
            decision.why = ["forced"]
            return decision
        if last is not None and last.key == key:
            changes = outs_changes(self.cache.ws, self.hasher.stat_cache, last.outs)
            decision.action, decision.entry = "cached", last
            decision.why = [*changes, "outs restored from the cache"] if changes else ["up to date"]
            decision.restore = bool(changes)
            return decision
        decision.why = explain(last.components if last else None, components)
        entry = self.cache.get(key)
        if entry is not None:
            decision.action, decision.entry, decision.restore = "cached", entry, True
            decision.why = [*decision.why, "outs restored from the cache"]
        return decision
