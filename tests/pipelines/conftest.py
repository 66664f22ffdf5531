"""A small two-stage project (prepare → train) written as tiny Python scripts."""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from dsops.pipelines.service import PipelineService
from dsops.workspace import Workspace

PREPARE = """\
import pathlib, yaml
params = yaml.safe_load(open("params.yaml"))["prepare"]
rows = pathlib.Path("raw.csv").read_text().splitlines()
pathlib.Path("build").mkdir(exist_ok=True)
pathlib.Path("build/features.txt").write_text("\\n".join(r * params["repeat"] for r in rows))
"""

TRAIN = """\
import json, pathlib, yaml

def main():
    params = yaml.safe_load(open("params.yaml"))["train"]
    features = pathlib.Path("build/features.txt").read_text()
    pathlib.Path("build/model.txt").write_text(f"lr={params['lr']} n={len(features)}")
    pathlib.Path("build/metrics.json").write_text(json.dumps(
        {"auc": 0.5 + params["lr"], "loss": {"train": 0.25}}))
"""

STAGES = """\
stages:
  prepare:
    cmd: python prepare.py
    deps: [prepare.py, raw.csv]
    params: [prepare]
    outs: [build/features.txt]
  train:
    python: train:main
    deps: [build/features.txt, train.py]
    params: [train.lr]
    outs: [build/model.txt]
    metrics: [build/metrics.json]
"""


class Project:
    """A workspace whose dsops.yaml can be rewritten; ``service()`` re-reads it."""

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        self.root = ws.root
        self._opened: list[Workspace] = []
        self._base = (ws.root / "dsops.yaml").read_text()

    def write_stages(self, stages: str) -> None:
        (self.root / "dsops.yaml").write_text(self._base + "\n" + textwrap.dedent(stages))

    def write(self, rel: str, text: str) -> None:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)

    def service(self) -> PipelineService:
        ws = Workspace.open(self.root, store_url=self.ws.store_url,
                            objects_url=self.ws.objects_url, identity=self.ws.identity)
        self._opened.append(ws)
        return PipelineService(ws)

    def actions(self, **kwargs: object) -> dict[str, str]:
        """Run the pipeline; stage → action."""
        result = self.service().run(**kwargs)  # type: ignore[arg-type]
        return {s.stage: s.action for s in result.stages}

    def close(self) -> None:
        for ws in self._opened:
            ws.close()


def two_stage(project: Project) -> Project:
    project.write("prepare.py", PREPARE)
    project.write("train.py", TRAIN)
    project.write("raw.csv", "a\nb\nc\n")
    project.write("params.yaml", "prepare:\n  repeat: 2\ntrain:\n  lr: 0.1\n  epochs: 3\n")
    project.write_stages(STAGES)
    return project


@pytest.fixture
def make_project(make_workspace: Callable[..., Workspace]) -> Iterator[Callable[..., Project]]:
    """Factory: ``make_project(store_url=None, two_stage=True) -> Project``."""
    made: list[Project] = []

    def make(store_url: str | None = None, *, with_stages: bool = True) -> Project:
        project = Project(make_workspace(store_url=store_url))
        made.append(project)
        return two_stage(project) if with_stages else project

    yield make
    for project in made:
        project.close()


@pytest.fixture
def project(store_url: str, make_project: Callable[..., Project]) -> Project:
    """The two-stage project on SQLite and on PostgreSQL."""
    return make_project(store_url)


def read(root: Path, rel: str) -> str:
    return (root / rel).read_text()
