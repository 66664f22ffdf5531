"""PipelineService: run the stages of ``dsops.yaml`` (cached, in parallel) and report
what would run and why."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from dsops.core.errors import UsageError
from dsops.core.progress import Progress
from dsops.data.status import StatCache
from dsops.pipelines.cache import StageCache
from dsops.pipelines.dag import Pipeline
from dsops.pipelines.fingerprints import record_fingerprints
from dsops.pipelines.inputs import DepHasher, Params
from dsops.pipelines.models import PipelineResult, StageResult, StageStatus
from dsops.pipelines.planner import Planner
from dsops.workspace import Workspace

EXECUTORS = ("local", "dask")


class PipelineService:
    """The pipeline operations of one project."""

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws

    def pipeline(self) -> Pipeline:
        """The stage graph of ``dsops.yaml`` (a cycle is a UsageError)."""
        if not self.ws.config.stages:
            raise UsageError("no stages declared in dsops.yaml",
                             hint="add a 'stages:' section (see docs/pipelines.md)")
        return Pipeline(self.ws.config.stages, self.ws.root)

    def run(self, stages: list[str] | None = None, *, force: bool = False, dry: bool = False,
            jobs: int | None = None, executor: str = "local", scheduler: str | None = None,
            progress: Progress | None = None) -> PipelineResult:
        """Run the out-of-date stages among ``stages`` (default: all) and their upstreams.

        Every input is checked before anything runs. ``dry`` only reports what would run.
        """
        if executor not in EXECUTORS:
            raise UsageError(f"unknown executor {executor!r}: use local or dask")
        if executor == "dask" and not scheduler and not dry:
            raise UsageError("--executor dask needs --scheduler ADDRESS (e.g. tcp://host:8786)")
        if jobs is not None and jobs < 1:
            raise UsageError(f"--jobs must be at least 1, got {jobs}")
        if dry:
            return PipelineResult(dry=True, stages=[
                StageResult(stage=s.stage, action=s.action, why=s.why)
                for s in self.status(stages, force=force)])
        from dsops.pipelines.runner import DaskExecutor, LocalExecutor, Runner

        with self._planning() as (pipeline, planner, stat_cache):
            selected = pipeline.select(stages)
            planner.check(selected)
            jobs = jobs or os.cpu_count() or 1
            backend = DaskExecutor(scheduler or "") if executor == "dask" else LocalExecutor(jobs)
            try:
                runner = Runner(self.ws, pipeline, planner, stat_cache, backend,
                                jobs=jobs if executor == "local" else max(jobs, len(selected)),
                                progress=progress)
                with _sigterm_as_interrupt():
                    results = runner.run(selected, force=force)
            finally:
                backend.close()
            record_fingerprints(self.ws, pipeline, stat_cache,
                                done=[r.stage for r in results if r.action in ("run", "cached")],
                                undone=[r.stage for r in results
                                        if r.action not in ("run", "cached")])
        return PipelineResult(stages=results)

    def status(self, stages: list[str] | None = None, *, force: bool = False) -> list[StageStatus]:
        """Per selected stage: would it run or come from the cache, and why."""
        with self._planning() as (pipeline, planner, stat_cache):
            selected = pipeline.select(stages)
            planner.check(selected)
            out: list[StageStatus] = []
            will_run: set[str] = set()
            for name in selected:
                ups = [u for u in pipeline.upstream[name] if u in will_run]
                decision = planner.decide(name, force=force, upstream_running=ups)
                if decision.action == "run":
                    will_run.add(name)
                out.append(StageStatus(stage=name, action=decision.action, why=decision.why))
            if not force and all(s.why == ["up to date"] for s in out):
                # Everything is as the last run left it: the next no-op check can be fast.
                record_fingerprints(self.ws, pipeline, stat_cache, done=selected, undone=[])
            return out

    @contextmanager
    def _planning(self) -> Iterator[tuple[Pipeline, Planner, StatCache]]:
        pipeline = self.pipeline()
        pipeline.validate()
        stat_cache = StatCache(self.ws.state_dir)
        try:
            hasher = DepHasher(self.ws, stat_cache)
            planner = Planner(pipeline, hasher, Params(self.ws.root), StageCache(self.ws),
                              self.ws.config.project)
            yield pipeline, planner, stat_cache
        finally:
            stat_cache.close()


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM stops a run as Ctrl-C does (only the main thread can install handlers)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
