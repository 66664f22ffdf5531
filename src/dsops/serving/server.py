"""Running the gateway: uvicorn with N workers, graceful shutdown, the rollout timer.

``serve()`` runs in the parent process. It checks the port, gives the workers a fresh
``PROMETHEUS_MULTIPROC_DIR`` (so ``/metrics`` sums every worker), starts the one timer that
advances rollouts (``RolloutService.reconcile``: one process only, whatever the worker
count), and hands over to uvicorn. Each worker builds its app with `worker_app` from the
environment the parent set. SIGTERM or SIGINT: uvicorn stops accepting, finishes the requests
in flight, and each worker's lifespan shutdown stores every prediction it logged.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import signal
import socket
import sys
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dsops.core.errors import UsageError

ENV_VAR = "DSOPS_SERVE_ENV"
ROOT_VAR = "DSOPS_SERVE_ROOT"
LOG_PREDICTIONS_VAR = "DSOPS_SERVE_LOG_PREDICTIONS"
RECONCILE_EVERY_S = 5.0
GRACEFUL_SHUTDOWN_S = 30

log = logging.getLogger("dsops.serving")


def serve(root: Path, env: str, *, host: str = "127.0.0.1", port: int = 8080, workers: int = 1,
          reconcile_every_s: float = RECONCILE_EVERY_S, log_predictions: bool = True,
          say: Callable[[str], None] = print) -> None:
    """Serve every model routed in ``env`` of the project at ``root`` until SIGTERM or SIGINT."""
    import uvicorn

    from dsops.workspace import Workspace

    if workers < 1:
        raise UsageError(f"--workers must be at least 1, not {workers}")
    _check_port(host, port)
    ws = Workspace.open(root)
    routes = _routes(ws, env)
    metrics_dir = tempfile.mkdtemp(prefix="dsops-metrics-")
    os.environ.update({"PROMETHEUS_MULTIPROC_DIR": metrics_dir, ENV_VAR: env, ROOT_VAR: str(ws.root),
                       LOG_PREDICTIONS_VAR: "1" if log_predictions else "0"})
    url = f"http://{host if ':' not in host else f'[{host}]'}:{port}"
    say(f"dsops gateway: serving {env} on {url} ({workers} worker{'s' if workers > 1 else ''})")
    for line in describe_routes(routes) or [f"  no model is deployed in {env} yet: deployments are picked "
                                            "up as they happen"]:
        say(line)
    stop = threading.Event()
    timer = threading.Thread(target=_reconcile_forever, args=(ws, stop, reconcile_every_s, say),
                             name="dsops-reconcile", daemon=True)
    timer.start()
    # uvicorn re-raises the SIGTERM it handled once it has shut down; with the default
    # disposition that kills this process before the clean-up below. Exit normally instead.
    previous = signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        uvicorn.run("dsops.serving.server:worker_app", factory=True, host=host, port=port, workers=workers,
                    log_level="warning", timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S, access_log=False,
                    server_header=False)
    except SystemExit as exc:
        if exc.code not in (0, None):
            raise
    finally:
        signal.signal(signal.SIGTERM, previous)
        stop.set()
        timer.join(timeout=10)
        shutil.rmtree(metrics_dir, ignore_errors=True)
        ws.close()
    say("dsops gateway: stopped")


def worker_app() -> Any:
    """The app of one worker process, from the environment `serve` set."""
    from dsops.serving.app import create_app
    from dsops.workspace import Workspace

    _log_to_stderr()
    env, root = os.environ.get(ENV_VAR), os.environ.get(ROOT_VAR)
    if not env or not root:
        raise UsageError(f"worker_app needs {ENV_VAR} and {ROOT_VAR}: start the gateway with 'dsops serve'")
    ws = Workspace.open(Path(root))
    return create_app(ws, env, log_predictions=os.environ.get(LOG_PREDICTIONS_VAR, "1") == "1")


def describe_routes(routes: list[Any]) -> list[str]:
    """One line a model: which versions answer, and how traffic is split or mirrored."""
    lines = []
    for route in routes:
        parts = []
        if route.stable is not None:
            parts.append(f"{route.model}@{route.stable} (stable)")
        if route.candidate is not None:
            how = "mirrored" if route.mode == "mirror" else f"{route.weight}% of requests"
            parts.append(f"{route.model}@{route.candidate} (candidate, {how})")
        lines.append("  " + ", ".join(parts))
    return lines


def _routes(ws: Any, env: str) -> list[Any]:
    from dsops.rollout.service import RolloutService

    return list(RolloutService(ws).routes(env))


def _check_port(host: str, port: int) -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            reason = "is already in use" if exc.errno == errno.EADDRINUSE else f"cannot be bound ({exc})"
            raise UsageError(f"{host}:{port} {reason}", hint="pick another with --port") from None


def _exit_on_sigterm(signum: int, frame: Any) -> None:
    raise SystemExit(0)


def _reconcile_forever(ws: Any, stop: threading.Event, every_s: float, say: Callable[[str], None]) -> None:
    """Every ``every_s`` seconds, in this process only: advance due rollouts, then evaluate
    the monitors of this environment whose schedule (``every``) has come; every
    ``COMPACT_EVERY``, compact the prediction log, and once a day delete its days past
    ``predictions.retention`` (see predlog_compact.py)."""
    from dsops.monitoring.service import MonitorService
    from dsops.rollout.service import RolloutService
    from dsops.serving.predlog_compact import COMPACT_EVERY, compact, prune, retention_cutoff

    service, monitors = RolloutService(ws), MonitorService(ws)
    env = os.environ.get(ENV_VAR, "")
    failing: set[str] = set()
    compacted_at = ws.clock.now()
    retention = ws.config.predictions.retention
    pruned_to = None  # the cutoff last applied: a prune a day
    while not stop.wait(every_s):
        for task in ("rollouts", "monitors", "log compaction", "log retention"):
            try:
                now = ws.clock.now()
                if task == "rollouts":
                    for info in service.reconcile(now):
                        say(f"rollout {info.id}: {info.model}@{info.version} in {info.env} is "
                            f"{info.status}" + (f" at {info.weight}%" if info.status == "progressing"
                                                else "") + (f" ({info.reason})" if info.reason else ""))
                elif task == "monitors":
                    for result in monitors.run_due(now, env=env):
                        if result.status == "firing":
                            say(f"monitor {result.monitor}: "
                                + "; ".join(r.rule for r in result.rules if r.firing))
                elif task == "log compaction" and now - compacted_at >= COMPACT_EVERY:
                    compacted_at = now
                    done = compact(ws.objects, now)
                    if done.files or done.deleted:
                        log.info("prediction log: %d segments compacted into %d files, %d files removed",
                                 done.segments, done.files, done.deleted)
                elif (task == "log retention" and retention is not None
                      and (cutoff := retention_cutoff(now, retention)) != pruned_to):
                    pruned = prune(ws, cutoff)
                    pruned_to = cutoff
                    if pruned.files:
                        log.info("prediction log: %d files of %d days before %s deleted (retention %s)",
                                 pruned.files, pruned.days, cutoff.isoformat(), retention)
            except Exception as exc:  # the gateway keeps serving; the next tick tries again
                if task not in failing:
                    log.warning("%s failed: %s", task, exc)
                failing.add(task)
                continue
            failing.discard(task)


def _log_to_stderr() -> None:
    logger = logging.getLogger("dsops")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(f"dsops[{os.getpid()}]: %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
