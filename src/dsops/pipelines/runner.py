"""Run the selected stages in DAG order: independent stages in parallel, on local
processes or a Dask cluster; a stage's result recorded as a tracked run and cached."""

from __future__ import annotations

import os
import sys
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any, Protocol

from dsops.core.errors import UsageError
from dsops.core.progress import NoProgress, Progress
from dsops.data.status import StatCache
from dsops.pipelines.cache import CacheEntry, StageCache
from dsops.pipelines.dag import Pipeline, is_data_dep
from dsops.pipelines.execute import JobOutcome, StageJob, execute, stage_argv, terminate_all
from dsops.pipelines.inputs import flatten
from dsops.pipelines.models import PipelineInterrupted, StageResult
from dsops.pipelines.outputs import missing_outs, remove_outs, restore_outs, save_outs
from dsops.pipelines.planner import Decision, Planner
from dsops.tracking.service import TrackingService
from dsops.workspace import Workspace

STDERR_TAIL = 20


class Executor(Protocol):
    """Where stage commands run."""

    def submit(self, job: StageJob) -> Future[JobOutcome]: ...
    def stop(self) -> None: ...
    def close(self) -> None: ...


class LocalExecutor:
    """Subprocesses on this machine, at most ``jobs`` at a time."""

    def __init__(self, jobs: int) -> None:
        self._pool = ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="dsops-stage")

    def submit(self, job: StageJob) -> Future[JobOutcome]:
        return self._pool.submit(execute, job)

    def stop(self) -> None:
        terminate_all()

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


class DaskExecutor:
    """Each stage a task on a Dask distributed cluster (workers share the filesystem)."""

    def __init__(self, address: str) -> None:
        try:
            from distributed import Client
        except ImportError:
            raise UsageError("--executor dask needs the 'distributed' package",
                             hint="pip install 'dask[distributed]'") from None
        try:
            _check_reachable(address)
            self._client = Client(address, timeout=15)
        except (OSError, TimeoutError) as exc:
            raise UsageError(f"cannot reach the Dask scheduler at {address}: {exc}",
                             hint="check --scheduler (e.g. tcp://host:8786)") from None
        self._waiters = ThreadPoolExecutor(thread_name_prefix="dsops-dask")
        self._futures: list[Any] = []

    def submit(self, job: StageJob) -> Future[JobOutcome]:
        future = self._client.submit(execute, job, pure=False, key=f"dsops-{job.stage}-{job.run_id}")
        self._futures.append(future)
        return self._waiters.submit(future.result)

    def stop(self) -> None:
        # Cancelling a running task does not stop its subprocess on the worker: the runs
        # are marked killed, and the worker finishes (or is restarted by its operator).
        self._client.cancel(self._futures, force=True)

    def close(self) -> None:
        self._waiters.shutdown(wait=False, cancel_futures=True)
        self._client.close()


class Runner:
    """One execution of a set of stages."""

    def __init__(self, ws: Workspace, pipeline: Pipeline, planner: Planner,
                 stat_cache: StatCache, executor: Executor, *, jobs: int,
                 progress: Progress | None = None) -> None:
        self.ws = ws
        self.pipeline = pipeline
        self.planner = planner
        self.stat_cache = stat_cache
        self.executor = executor
        self.jobs = jobs
        self.progress = progress or NoProgress()
        self.tracking = TrackingService(ws)
        self.cache: StageCache = planner.cache

    def run(self, selected: list[str], *, force: bool) -> list[StageResult]:
        """Run or restore every selected stage; failures skip their dependants only."""
        results: dict[str, StageResult] = {}
        pending = list(selected)
        running: dict[Future[JobOutcome], tuple[Decision, str]] = {}
        self.progress.start("stages", len(selected))
        try:
            while pending or running:
                self._start_ready(pending, running, results, selected, force)
                if not running:
                    if pending:
                        raise RuntimeError(f"stages {pending} can never start")  # a bug, not input
                    break
                done, _ = wait(list(running), return_when=FIRST_COMPLETED)
                for future in done:
                    decision, run_id = running.pop(future)
                    results[decision.stage] = self._finish(decision, run_id, future.result())
                    self.progress.advance()
        except KeyboardInterrupt:
            self.executor.stop()
            for _, run_id in running.values():
                self.tracking.end_run(run_id, "killed", error="interrupted (SIGINT/SIGTERM)")
                self._save_logs(run_id)
            names = ", ".join(d.stage for d, _ in running.values()) or "none"
            raise PipelineInterrupted(f"interrupted: stopped running stages ({names}); their "
                                      "runs are marked killed") from None
        return [results[name] for name in selected]

    def _start_ready(self, pending: list[str], running: dict[Future[JobOutcome], tuple[Decision, str]],
                     results: dict[str, StageResult], selected: list[str], force: bool) -> None:
        progressed = True
        while progressed:
            progressed = False
            for name in list(pending):
                ups = [u for u in self.pipeline.upstream[name] if u in selected]
                bad = [u for u in ups if u in results and results[u].action not in ("run", "cached")]
                if bad:
                    pending.remove(name)
                    results[name] = StageResult(stage=name, action="skipped",
                                                why=[f"upstream {bad[0]} failed"])
                    self.progress.advance()
                    progressed = True
                    continue
                if not all(u in results for u in ups) or len(running) >= self.jobs:
                    continue
                pending.remove(name)
                progressed = True
                decision = self.planner.decide(name, force=force)
                if decision.action == "cached":
                    results[name] = self._use_cache(decision)
                    self.progress.advance()
                else:
                    future, run_id = self._launch(decision)
                    running[future] = (decision, run_id)

    def _use_cache(self, decision: Decision) -> StageResult:
        started = time.monotonic()
        entry = decision.entry
        assert entry is not None
        if decision.restore:
            restore_outs(self.ws, self.stat_cache, entry.outs)
        self.cache.touch(entry.key, decision.stage)
        return StageResult(stage=decision.stage, action="cached", why=decision.why,
                           duration_s=time.monotonic() - started, run_id=entry.run_id)

    def _launch(self, decision: Decision) -> tuple[Future[JobOutcome], str]:
        stage = self.pipeline.stages[decision.stage]
        remove_outs(self.ws.root, stage.all_outs() + stage.plots)
        for out in stage.all_outs() + stage.plots:
            (self.ws.root / out).parent.mkdir(parents=True, exist_ok=True)
        run = self.tracking.start_run(decision.stage, kind="stage", command=stage.command_text(),
                                      params=flatten(decision.params) or None)
        logs = self._log_dir(run.id)
        cwd = self.ws.root / stage.wdir if stage.wdir else self.ws.root
        env = {"DSOPS_RUN_ID": run.id, "DSOPS_STORE_URL": self.ws.store_url,
               "DSOPS_OBJECTS_URL": self.ws.objects_url or str(self.ws.state_dir / "objects"),
               "DSOPS_STAGE": decision.stage,
               "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")}
        job = StageJob(stage=decision.stage, run_id=run.id,
                       argv=stage_argv(cmd=stage.cmd, python=stage.python, root=str(self.ws.root)),
                       cwd=str(cwd), stdout_path=str(logs / "stdout.log"),
                       stderr_path=str(logs / "stderr.log"), env=env)
        return self.executor.submit(job), run.id

    def _finish(self, decision: Decision, run_id: str, outcome: JobOutcome) -> StageResult:
        name = decision.stage
        stage = self.pipeline.stages[name]
        result = StageResult(stage=name, action="run", why=decision.why,
                             duration_s=outcome.duration_s, run_id=run_id,
                             exit_code=outcome.exit_code)
        self._save_logs(run_id)
        if outcome.exit_code != 0:
            return self._fail(result, f"stage {name} failed with exit code {outcome.exit_code}",
                              outcome.exit_code)
        missing = missing_outs(self.ws.root, stage.all_outs() + stage.plots)
        if missing:
            return self._fail(result, f"stage {name} did not produce {', '.join(missing)}", 0)
        try:
            metrics = _read_metrics(self.ws.root, stage.metrics)
        except UsageError as exc:
            return self._fail(result, f"stage {name}: {exc.message}", 0)
        outs = save_outs(self.ws, self.stat_cache, stage.all_outs() + stage.plots)
        now = self.ws.now()
        self.tracking.log_metrics(run_id, [(k, v, 0, now) for k, v in metrics.items()])
        for plot in stage.plots:
            if (self.ws.root / plot).is_file():
                self.tracking.log_artifact(run_id, self.ws.root / plot, name=plot)
        assert decision.components is not None and decision.key is not None
        inputs = [_input_ref(dep, digest) for dep, digest in decision.components["deps"].items()]
        run_ref = f"run:{run_id}"
        if inputs:
            self.tracking.add_lineage(inputs, [run_ref])
        self.tracking.add_lineage([run_ref], [f"file:{p}@{o['digest']}" for p, o in outs.items()])
        if stage.registers and stage.model:
            from dsops.registry.service import RegistryService

            try:
                registered = RegistryService(self.ws).register(
                    stage.registers, self.ws.root / stage.model, run_id=run_id)
            except UsageError as exc:
                return self._fail(result, f"stage {name}: cannot register {stage.model} as "
                                          f"{stage.registers}: {exc.message}", 0)
            result.model = registered.version.ref
            if stage.model in outs:
                self.tracking.add_lineage([f"file:{stage.model}@{outs[stage.model]['digest']}"],
                                          [f"model:{registered.version.ref}"])
        self.tracking.end_run(run_id, "finished", exit_code=0)
        self.cache.record(CacheEntry(key=decision.key, stage=name, components=decision.components,
                                     outs=outs, run_id=run_id))
        return result

    def _fail(self, result: StageResult, error: str, exit_code: int) -> StageResult:
        self.tracking.end_run(result.run_id or "", "failed", exit_code=exit_code, error=error)
        result.action, result.error = "failed", error
        stderr = self._log_dir(result.run_id or "") / "stderr.log"
        try:
            result.stderr_tail = stderr.read_text(errors="replace").splitlines()[-STDERR_TAIL:]
        except OSError:
            result.stderr_tail = []
        return result

    def _save_logs(self, run_id: str) -> None:
        for name in ("stdout.log", "stderr.log"):
            path = self._log_dir(run_id) / name
            if path.is_file():
                self.tracking.log_artifact(run_id, path, name=name)

    def _log_dir(self, run_id: str) -> Path:
        return self.ws.state_dir / "logs" / run_id


def _check_reachable(address: str) -> None:
    """Fail at once on a refused tcp:// address (the Dask client would retry for seconds)."""
    import socket

    if address.startswith("tcp://"):
        host, _, port = address[6:].rpartition(":")
        if port.isdigit():
            socket.create_connection((host.strip("[]"), int(port)), timeout=5).close()


def _input_ref(dep: str, digest: str) -> str:
    if is_data_dep(dep):
        return f"data:{digest.split(':')[0]}"
    return f"file:{dep}@{digest}"


def _read_metrics(root: Path, files: list[str]) -> dict[str, float]:
    """Numbers from JSON/YAML metrics files, nested keys dotted."""
    import json

    import yaml

    out: dict[str, float] = {}
    for rel in files:
        path = root / rel
        text = path.read_text(encoding="utf-8")
        try:
            data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
        except (ValueError, yaml.YAMLError) as exc:
            raise UsageError(f"metrics file {rel} is not valid JSON/YAML: {exc}") from None
        for key, value in flatten(data if isinstance(data, dict) else {}).items():
            if isinstance(value, int | float) and not isinstance(value, bool):
                out[key] = float(value)
    return out

