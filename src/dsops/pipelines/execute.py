"""Run one stage's command as a subprocess. Kept to the standard library: the same
function runs in a thread of the local executor and in a Dask worker process."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field

# Runs a `python: module:function` stage: the project root first on sys.path; an int
# returned by the function is the exit code.
PYTHON_STAGE = (
    "import importlib, sys\n"
    "root, module, function = sys.argv[1:4]\n"
    "sys.path.insert(0, root)\n"
    "sys.argv = [module]\n"
    "result = getattr(importlib.import_module(module), function)()\n"
    "sys.exit(result if isinstance(result, int) and not isinstance(result, bool) else 0)\n"
)


@dataclass(frozen=True)
class StageJob:
    """Everything needed to run a stage's command, picklable for Dask."""

    stage: str
    run_id: str
    argv: list[str]
    cwd: str
    stdout_path: str
    stderr_path: str
    env: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class JobOutcome:
    """How the command ended."""

    exit_code: int
    duration_s: float


def stage_argv(*, cmd: str | None, python: str | None, root: str) -> list[str]:
    """The argument vector: ``bash -c CMD``, or this Python running ``module:function``."""
    if cmd is not None:
        return ["bash", "-c", cmd]
    assert python is not None
    module, function = python.split(":")
    return [sys.executable, "-c", PYTHON_STAGE, root, module, function]


_running: dict[str, subprocess.Popen[bytes]] = {}
_lock = threading.Lock()


def execute(job: StageJob) -> JobOutcome:
    """Run the job's command with its output going to its log files; wait for it."""
    os.makedirs(os.path.dirname(job.stdout_path), exist_ok=True)
    started = time.monotonic()
    with open(job.stdout_path, "wb") as out, open(job.stderr_path, "wb") as err:
        try:
            # Own session: Ctrl-C in the terminal reaches dsops, which stops the whole
            # process group of each stage (bash and whatever it started).
            proc = subprocess.Popen(job.argv, cwd=job.cwd, env={**os.environ, **job.env},
                                    stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                    start_new_session=True)
        except OSError as exc:
            err.write(f"cannot start {job.argv[0]}: {exc}\n".encode())
            return JobOutcome(127, time.monotonic() - started)
        with _lock:
            _running[job.run_id] = proc
        try:
            code = proc.wait()
        finally:
            with _lock:
                _running.pop(job.run_id, None)
    return JobOutcome(code, time.monotonic() - started)


def terminate_all(grace_s: float = 5.0) -> list[str]:
    """Stop every running stage process group (SIGTERM, then SIGKILL); their run ids."""
    with _lock:
        procs = dict(_running)
    for proc in procs.values():
        _signal_group(proc, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    for proc in procs.values():
        try:
            proc.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            _signal_group(proc, signal.SIGKILL)
            proc.wait()
    return list(procs)


def _signal_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)
