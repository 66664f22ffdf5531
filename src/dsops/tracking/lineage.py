"""Lineage: what a dataset version, run or file came from, and what was made from it.

Edges are recorded by whoever produces something (the pipeline runner, the registry):
``data:credit@2 → run:<id> → file:build/features.parquet@<digest> → run:<id> → …``.
"""

from __future__ import annotations

from collections import deque

from pydantic import BaseModel
from sqlalchemy import select

from dsops.core.errors import NotFound
from dsops.store.models import LineageEdge, Run
from dsops.workspace import Workspace


class LineageGraph(BaseModel):
    """The nodes reachable from ``root`` upstream and downstream, as edges."""

    root: str
    upstream: list[tuple[str, str]]
    downstream: list[tuple[str, str]]


class LineageService:
    """Walks the lineage edges of the store."""

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws

    def graph(self, ref: str, *, depth: int = 20) -> LineageGraph:
        """Edges upstream and downstream of ``ref``: ``data:NAME@N`` (or ``NAME@N``), a
        run id (or unique prefix/suffix), or a file path (its latest recorded content)."""
        with self.ws.store.read() as session:
            root = self._resolve(session, ref)
            return LineageGraph(root=root, upstream=self._walk(session, root, depth, up=True),
                                downstream=self._walk(session, root, depth, up=False))

    def _walk(self, session, root: str, depth: int, *, up: bool) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
        edges: list[tuple[str, str]] = []
        seen = {root}
        frontier = deque([(root, 0)])
        while frontier:
            node, level = frontier.popleft()
            if level >= depth:
                continue
            column = LineageEdge.target if up else LineageEdge.source
            for source, target in session.execute(
                    select(LineageEdge.source, LineageEdge.target).where(column == node)
                    .order_by(LineageEdge.source, LineageEdge.target)):
                edges.append((source, target))
                nxt = source if up else target
                if nxt not in seen:
                    seen.add(nxt)
                    frontier.append((nxt, level + 1))
        return edges

    def _resolve(self, session, ref: str) -> str:  # type: ignore[no-untyped-def]
        ref = ref.strip()
        candidates = [ref]
        if "@" in ref and not ref.startswith(("data:", "file:", "run:")):
            candidates.append(f"data:{ref}")
        if not ref.startswith(("data:", "file:", "run:")):
            candidates.append(f"run:{ref}")
        for candidate in candidates:
            if session.execute(select(LineageEdge.source).where(
                    (LineageEdge.source == candidate) | (LineageEdge.target == candidate)
            ).limit(1)).first():
                return candidate
        if not ref.startswith(("data:", "file:")) and len(ref) >= 6:
            runs = session.execute(select(Run.id).where(
                Run.id.like(ref + "%") | Run.id.like("%" + ref)).limit(2)).scalars().all()
            if len(runs) == 1:
                return f"run:{runs[0]}"
        path = ref.removeprefix("file:")
        latest = session.execute(
            select(LineageEdge.target, LineageEdge.created_at)
            .where(LineageEdge.target.like(f"file:{path}@%"))
            .order_by(LineageEdge.created_at.desc()).limit(1)).first()
        if latest:
            return latest[0]
        raise NotFound("lineage reference", ref,
                       hint="give data:NAME@N, a run id, or a file a pipeline stage produced")
