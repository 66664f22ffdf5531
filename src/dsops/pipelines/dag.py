"""The stage graph: edges from outs to deps, topological order, selection, and the
checks that a pipeline is well formed (no cycle, every dep produced or present)."""

from __future__ import annotations

import difflib
import glob
from fnmatch import fnmatchcase
from pathlib import Path, PurePosixPath

from dsops.config.models import StageConfig
from dsops.core.errors import NotFound, UsageError

GLOB_CHARS = frozenset("*?[")


def is_data_dep(dep: str) -> bool:
    """``data:NAME`` or ``data:NAME@N``: a dataset version, not a path."""
    return dep.startswith("data:")


def is_glob(dep: str) -> bool:
    """A path pattern (``src/*.py``) rather than one path."""
    return any(c in GLOB_CHARS for c in dep)


def _norm(path: str) -> str:
    return str(PurePosixPath(path.rstrip("/"))).removeprefix("./")


def _inside(path: str, parent: str) -> bool:
    return path == parent or path.startswith(parent + "/")


def _feeds(out: str, dep: str) -> bool:
    """Whether a stage's ``out`` is (part of) what ``dep`` names."""
    if is_glob(dep):
        return fnmatchcase(out, dep) or any(fnmatchcase(p, dep) for p in _parents(out))
    return _inside(dep, out) or _inside(out, dep)


def _parents(path: str) -> list[str]:
    return [str(p) for p in PurePosixPath(path).parents if str(p) != "."]


class Pipeline:
    """The stages of a project as a graph: ``upstream[s]`` are the stages ``s`` needs."""

    def __init__(self, stages: dict[str, StageConfig], root: Path) -> None:
        self.stages = stages
        self.root = root
        self.outs = {name: [_norm(o) for o in s.all_outs() + s.plots] for name, s in stages.items()}
        self.upstream: dict[str, list[str]] = {}
        for name, stage in stages.items():
            ups: list[str] = []
            for dep in stage.deps:
                if is_data_dep(dep):
                    continue
                for producer in self.producers(_norm(dep)):
                    if producer not in ups:
                        ups.append(producer)
            self.upstream[name] = ups
        self.order = self._topological_order()

    def producers(self, dep: str) -> list[str]:
        """The stages whose outs feed ``dep`` (a path or a glob)."""
        return [name for name, outs in self.outs.items() if any(_feeds(o, dep) for o in outs)]

    def validate(self) -> None:
        """Raise a UsageError for a dep that no stage produces and that is not on disk."""
        known_outs = sorted({o for outs in self.outs.values() for o in outs})
        for name, stage in self.stages.items():
            for dep in stage.deps:
                if is_data_dep(dep):
                    continue
                path = _norm(dep)
                if self.producers(path):
                    continue
                exists = (glob.glob(path, root_dir=self.root) if is_glob(path)
                          else (self.root / path).exists())
                if exists:
                    continue
                message = (f"stage {name}: dep {dep!r} is not produced by any stage and does "
                           f"not exist")
                close = difflib.get_close_matches(path, known_outs, n=1, cutoff=0.6)
                if close:
                    message += f" — did you mean {close[0]!r}?"
                raise UsageError(message, hint="declare it as an out of the stage that writes "
                                               "it, or fix the path in dsops.yaml")

    def select(self, names: list[str] | None) -> list[str]:
        """The named stages and every stage upstream of them, in execution order."""
        if not names:
            return list(self.order)
        wanted: set[str] = set()
        todo = []
        for name in names:
            if name not in self.stages:
                raise NotFound("stage", name, known=self.stages,
                               hint="stages are declared under 'stages:' in dsops.yaml")
            todo.append(name)
        while todo:
            name = todo.pop()
            if name not in wanted:
                wanted.add(name)
                todo.extend(self.upstream[name])
        return [s for s in self.order if s in wanted]

    def downstream(self, name: str) -> set[str]:
        """Every stage that needs ``name``'s outs, directly or not."""
        out: set[str] = set()
        todo = [name]
        while todo:
            current = todo.pop()
            for other, ups in self.upstream.items():
                if current in ups and other not in out:
                    out.add(other)
                    todo.append(other)
        return out

    def _topological_order(self) -> list[str]:
        cycle = self._find_cycle()
        if cycle:
            raise UsageError(f"stages form a cycle: {' → '.join(cycle)}",
                             hint="a stage cannot depend, directly or not, on its own outs")
        order: list[str] = []
        done: set[str] = set()
        remaining = list(self.stages)
        while remaining:
            for name in remaining:
                if all(u in done for u in self.upstream[name]):
                    order.append(name)
                    done.add(name)
                    remaining.remove(name)
                    break
        return order

    def _find_cycle(self) -> list[str] | None:
        """A cycle as producer → consumer → … → producer, or None."""
        consumers: dict[str, list[str]] = {n: [] for n in self.stages}
        for name, ups in self.upstream.items():
            for up in ups:
                consumers[up].append(name)
        state: dict[str, int] = {}  # 1: on the current path, 2: finished
        path: list[str] = []

        def visit(node: str) -> list[str] | None:
            state[node] = 1
            path.append(node)
            for nxt in consumers[node]:
                if state.get(nxt) == 1:
                    return [*path[path.index(nxt):], nxt]
                if nxt not in state:
                    found = visit(nxt)
                    if found:
                        return found
            path.pop()
            state[node] = 2
            return None

        for name in self.stages:
            if name not in state:
                found = visit(name)
                if found:
                    return found
        return None
