"""Lineage graphs over recorded edges, on both store backends."""

from __future__ import annotations

import pytest

from dsops.core.errors import NotFound
from dsops.tracking.lineage import LineageService
from dsops.tracking.service import TrackingService


def test_upstream_and_downstream(workspace) -> None:
    tracking = TrackingService(workspace)
    prepare = tracking.start_run("prepare", kind="stage")
    train = tracking.start_run("train", kind="stage")
    feats, model = "file:build/f.parquet@" + "a" * 64, "file:build/m.pkl@" + "b" * 64
    tracking.add_lineage(["data:credit@2"], [f"run:{prepare.id}"])
    tracking.add_lineage([f"run:{prepare.id}"], [feats])
    tracking.add_lineage([feats], [f"run:{train.id}"])
    tracking.add_lineage([f"run:{train.id}"], [model])
    lineage = LineageService(workspace)

    down = lineage.graph("credit@2")
    assert down.root == "data:credit@2" and down.upstream == []
    assert {t for _, t in down.downstream} == {f"run:{prepare.id}", feats, f"run:{train.id}",
                                                model}
    up = lineage.graph("build/m.pkl")  # a path: its latest recorded content
    assert up.root == model
    assert {s for s, _ in up.upstream} == {f"run:{train.id}", feats, f"run:{prepare.id}",
                                           "data:credit@2"}
    assert lineage.graph(train.id[-10:]).root == f"run:{train.id}"
    assert len(lineage.graph("credit@2", depth=1).downstream) == 1
    with pytest.raises(NotFound, match="unknown lineage reference"):
        lineage.graph("credit@9")
