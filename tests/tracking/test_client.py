"""The tracking SDK (``dsops.start_run``, ``dsops.log_metric`` …) on real stores.

In-process tests use the ``workspace`` fixture (SQLite and PostgreSQL); the attach and
crash tests run a real ``python -c`` subprocess inside the project, as a pipeline stage
would, with ``DSOPS_RUN_ID`` and ``DSOPS_STORE_URL`` set.
"""

from __future__ import annotations

import itertools
import math
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import dsops
from dsops.core.errors import StoreError, UsageError
from dsops.tracking.service import TrackingService
from dsops.workspace import Workspace


@pytest.fixture(autouse=True)
def _no_run_left_active(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test starts with no active run, and a failing test does not leak one."""
    monkeypatch.delenv("DSOPS_RUN_ID", raising=False)
    assert dsops.active_run() is None
    yield
    monkeypatch.delenv("DSOPS_RUN_ID", raising=False)
    run = dsops.active_run()
    if run is not None:
        run.end("killed", error="left active by a test")


def stage_env(ws: Workspace, run_id: str) -> dict[str, str]:
    """The environment the pipeline runner gives a stage process."""
    return {**os.environ, "DSOPS_RUN_ID": run_id, "DSOPS_STORE_URL": ws.store_url,
            "DSOPS_USER": "alice@example.com", "PYTHONUNBUFFERED": "1"}


# --- start_run blocks --------------------------------------------------------------------


def test_block_logs_10000_values_all_stored_in_step_order(workspace: Workspace) -> None:
    with dsops.start_run("train", params={"lr": 0.1}, workspace=workspace) as run:
        assert dsops.active_run() is run
        for i in range(10_000):
            dsops.log_metric("loss", 1.0 / (i + 1))
        dsops.log_metrics({"auc": 0.9, "acc": 1}, step=7)
        dsops.log_param("model", "lgbm")
    assert dsops.active_run() is None

    svc = TrackingService(workspace)
    info = svc.get(run.id)
    assert info.name == "train" and info.status == "finished" and info.ended_at is not None
    assert info.params == {"lr": "0.1", "model": "lgbm"}
    assert info.metrics == {"loss": 1.0 / 10_000, "auc": 0.9, "acc": 1.0}
    history = svc.metric_history(run.id, "loss")
    assert [p.step for p in history] == list(range(10_000))
    assert [p.value for p in history] == [1.0 / (i + 1) for i in range(10_000)]
    assert all(a.at <= b.at for a, b in itertools.pairwise(history))
    assert [p.step for p in svc.metric_history(run.id, "auc")] == [7]


def test_explicit_steps_and_default_step_continues_after_them(workspace: Workspace) -> None:
    with dsops.start_run("steps", workspace=workspace) as run:
        dsops.log_metric("loss", 3.0, step=10)
        dsops.log_metric("loss", 2.0)
        run.log_metric("loss", 1.0, step=100)
    steps = [p.step for p in TrackingService(workspace).metric_history(run.id, "loss")]
    assert steps == [10, 11, 100]


def test_block_raising_marks_run_failed_with_the_message(workspace: Workspace) -> None:
    with pytest.raises(ValueError, match="diverged"), \
            dsops.start_run("boom", workspace=workspace) as run:
        dsops.log_metric("loss", 1.0)
        raise ValueError("loss diverged at step 3\nsecond line")
    info = TrackingService(workspace).get(run.id)
    assert info.status == "failed"
    assert info.error == "ValueError: loss diverged at step 3"
    assert info.metrics == {"loss": 1.0}  # what was logged before the error is kept


def test_keyboard_interrupt_marks_run_killed(workspace: Workspace) -> None:
    with pytest.raises(KeyboardInterrupt), dsops.start_run("ctrl-c", workspace=workspace) as run:
        raise KeyboardInterrupt
    assert TrackingService(workspace).get(run.id).status == "killed"


def test_plain_object_with_end(workspace: Workspace) -> None:
    run = dsops.start_run("plain", workspace=workspace)
    dsops.log_metric("x", 1)
    run.end()
    run.end()  # idempotent
    assert TrackingService(workspace).get(run.id).status == "finished"
    with pytest.raises(UsageError, match="has ended"):
        run.log_metric("x", 2)


def test_nested_start_run_is_refused(workspace: Workspace) -> None:
    with dsops.start_run("outer", workspace=workspace) as outer:
        with pytest.raises(UsageError, match="already active"):
            dsops.start_run("inner", workspace=workspace)
        assert dsops.active_run() is outer


def test_log_artifact(workspace: Workspace, tmp_path: Path) -> None:
    path = tmp_path / "report.txt"
    path.write_text("auc 0.9\n")
    with dsops.start_run("art", workspace=workspace) as run:
        artifact = dsops.log_artifact(path, name="reports/report.txt")
    assert artifact.path == "reports/report.txt" and artifact.size == 8
    assert [a.path for a in TrackingService(workspace).get(run.id).artifacts] == [
        "reports/report.txt"]


def test_flush_failure_keeps_values_and_retries(workspace: Workspace,
                                                capfd: pytest.CaptureFixture[str]) -> None:
    """A store error (injected at the service boundary) loses nothing: the next flush writes."""
    with dsops.start_run("flaky", workspace=workspace) as run:
        service = run._service()
        real = service.log_metrics
        failures = iter([StoreError("metadata store: connection refused")])

        def flaky(run_id: str, rows: list) -> int:
            for exc in failures:
                raise exc
            return real(run_id, rows)

        service.log_metrics = flaky  # type: ignore[method-assign]
        for i in range(100):
            dsops.log_metric("loss", float(i))
        deadline = time.monotonic() + 10
        while run.pending() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert run.pending() == 0
    assert len(TrackingService(workspace).metric_history(run.id, "loss")) == 100
    err = capfd.readouterr().err
    assert err.count("cannot write metrics") == 1 and "connection refused" in err


def test_a_failed_end_is_retried_with_its_values_and_nothing_is_stored_twice(
        workspace: Workspace, capfd: pytest.CaptureFixture[str]) -> None:
    """The last values and the end go in one transaction: a failure stores neither, the
    retry both."""
    run = dsops.start_run("flaky-end", workspace=workspace)
    service = run._service()
    real = service.end_run
    failures = iter([StoreError("metadata store: connection reset")])

    def flaky(*args: object, **kwargs: object) -> object:
        for exc in failures:
            raise exc
        return real(*args, **kwargs)  # type: ignore[arg-type]

    service.end_run = flaky  # type: ignore[method-assign]
    for i in range(500):
        dsops.log_metric("loss", float(i))
    run.end()
    info = TrackingService(workspace).get(run.id)
    assert info.status == "finished" and info.metrics == {"loss": 499.0}
    history = TrackingService(workspace).metric_history(run.id, "loss")
    assert [p.step for p in history] == list(range(500))
    assert "cannot write metrics" in capfd.readouterr().err


def test_logging_allocates_nothing_the_garbage_collector_tracks(workspace: Workspace) -> None:
    """A tuple per value made 10,000 calls trigger collections, including full ones
    (50–70 ms with SQLAlchemy imported); the buffer is four lists instead."""
    import gc

    with dsops.start_run("gc", workspace=workspace):
        values = [1.0 / (i + 1) for i in range(10_000)]
        log_metric = dsops.log_metric
        log_metric("loss", 0.0)
        gc.disable()
        try:
            before = gc.get_count()[0]
            for v in values:
                log_metric("loss", v)
            allocated = gc.get_count()[0] - before
        finally:
            gc.enable()
    assert allocated < 100, f"{allocated} tracked objects allocated by 10,000 calls"


# --- bad input ----------------------------------------------------------------------------


def test_no_active_run_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match=r"no active run: use `with dsops.start_run\(...\)`"):
        dsops.log_metric("loss", 1.0)
    with pytest.raises(UsageError, match="no active run"):
        dsops.log_params({"a": 1})


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, "0.5", None, True, [1.0]])
def test_bad_metric_values_are_usage_errors(workspace: Workspace, value: object) -> None:
    with dsops.start_run("bad", workspace=workspace) as run:
        with pytest.raises(UsageError, match="expected a finite number"):
            dsops.log_metric("loss", value)  # type: ignore[arg-type]
        for name in ("", " ", "x" * 257, 3):
            with pytest.raises(UsageError, match="metric name"):
                dsops.log_metric(name, 1.0)  # type: ignore[arg-type]
        with pytest.raises(UsageError, match="step must be an integer"):
            dsops.log_metric("loss", 1.0, step=1.5)  # type: ignore[arg-type]
    assert TrackingService(workspace).get(run.id).metrics == {}


# --- cost -------------------------------------------------------------------------------


def test_100000_calls_take_under_half_a_second(workspace: Workspace) -> None:
    with dsops.start_run("speed", workspace=workspace) as run:
        log_metric = dsops.log_metric
        best = math.inf
        for _ in range(2):  # best of two: this is a shared machine
            t0 = time.perf_counter()
            for i in range(100_000):
                log_metric("loss", 0.5, i)
            best = min(best, time.perf_counter() - t0)
            run.flush()
    assert best < 0.5, f"100,000 log_metric calls took {best:.3f} s"


def test_importing_the_sdk_stays_cheap() -> None:
    code = ("import sys, dsops; dsops.log_metric; "
            "print(sorted(m for m in ('sqlalchemy', 'pydantic', 'dsops.workspace') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60).stdout
    assert out.strip() == "[]"


# --- pipeline stage processes ---------------------------------------------------------------


def test_stage_process_attaches_through_dsops_run_id(workspace: Workspace) -> None:
    svc = TrackingService(workspace)
    stage = svc.start_run("train", kind="stage", command="python train.py")
    script = textwrap.dedent("""
        import dsops
        for i in range(2000):
            dsops.log_metric("loss", i / 10)
        dsops.log_params({"epochs": 2000})
        with dsops.start_run("ignored: the stage run is used", params={"lr": 0.1}) as run:
            dsops.log_metric("auc", 0.75)
        print(run.id, run.name)
    """)
    proc = subprocess.run([sys.executable, "-c", script], cwd=workspace.root,
                          env=stage_env(workspace, stage.id), capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == [stage.id, "train"]
    info = svc.get(stage.id)
    assert info.status == "running"  # the runner, not the stage process, ends a stage run
    assert info.params == {"epochs": "2000", "lr": "0.1"}
    assert info.metrics == {"loss": 199.9, "auc": 0.75}
    history = svc.metric_history(stage.id, "loss")
    assert [p.step for p in history] == list(range(2000))


def test_crash_loses_at_most_about_the_last_second(workspace: Workspace) -> None:
    svc = TrackingService(workspace)
    stage = svc.start_run("crash", kind="stage")
    # The value logged is the time since the loop started: what is stored after the kill
    # shows how much of the run survived.
    script = textwrap.dedent("""
        import sys, time, dsops
        dsops.log_metric("elapsed", 0.0)
        print("ready", flush=True)
        t0 = time.monotonic()
        while True:
            time.sleep(0.01)
            dsops.log_metric("elapsed", time.monotonic() - t0)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=workspace.root,
                            env=stage_env(workspace, stage.id), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stderr is not None
    try:
        first = proc.stdout.readline().strip()
        if first == "ready":
            time.sleep(2.5)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(30)
    assert first == "ready", f"stage process: {first!r}\n{proc.stderr.read()}"
    history = svc.metric_history(stage.id, "elapsed")
    assert [p.step for p in history] == list(range(len(history)))  # no gap, no duplicate
    assert history[-1].value >= 2.5 - 1.3, (
        f"only {history[-1].value:.2f} s of a 2.5 s run survived the kill")


@pytest.mark.parametrize(("tail", "status", "error"), [
    ("", "finished", None),
    ("raise RuntimeError('boom')", "failed", "RuntimeError: boom"),
])
def test_run_never_ended_is_ended_at_exit_by_the_outcome(
        workspace: Workspace, tail: str, status: str, error: str | None) -> None:
    script = ("import dsops\nrun = dsops.start_run('plain')\nprint(run.id, flush=True)\n"
              "for i in range(100): dsops.log_metric('x', i)\n" + tail)
    env = {**os.environ, "DSOPS_STORE_URL": workspace.store_url}
    proc = subprocess.run([sys.executable, "-c", script], cwd=workspace.root, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == (0 if status == "finished" else 1), proc.stderr
    info = TrackingService(workspace).get(proc.stdout.strip())
    assert (info.status, info.error, info.metrics) == (status, error, {"x": 99.0})


def test_unreachable_store_at_exit_reports_the_lost_values(tmp_path: Path) -> None:
    project = tmp_path / "proj"
    Workspace.init(project, project="demo", store_url=f"sqlite:///{tmp_path}/init.db").close()
    env = {**os.environ, "DSOPS_RUN_ID": "0190a1b2-0000-7000-8000-000000000000",
           # a port nothing listens on: every flush fails at once
           "DSOPS_STORE_URL": "postgresql://nobody@127.0.0.1:9/none"}
    script = "import dsops\nfor i in range(25): dsops.log_metric('loss', i)\n"
    proc = subprocess.run([sys.executable, "-c", script], cwd=project, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0
    assert "cannot write metrics" in proc.stderr
    assert "lost 25 metric values" in proc.stderr
