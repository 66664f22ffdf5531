"""The tracking SDK behind ``dsops.start_run``, ``dsops.log_metric`` and friends.

Metric values go to the active run's in-memory buffer (one list append per call) that a
daemon thread writes to the store every second, and that ``end()`` and interpreter exit
write in full: a normal exit loses nothing, a crash at most the last second
(``active_run.py`` holds the buffer, ``flusher.py`` the thread and the exit hook).

Inside a pipeline stage the runner sets ``DSOPS_RUN_ID``: ``log_*`` calls (and
``start_run``) attach to that run with no configuration. This module imports nothing
heavy; the workspace and the store open on the first ``start_run`` or flush.
"""

from __future__ import annotations

import os
import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from dsops.core.errors import UsageError
from dsops.tracking.active_run import ActiveRun
from dsops.tracking.flusher import one_line, register, state

if TYPE_CHECKING:
    from dsops.tracking.models import ArtifactInfo
    from dsops.workspace import Workspace

__all__ = [
    "ActiveRun", "active_run", "flush", "log_artifact", "log_metric", "log_metrics",
    "log_param", "log_params", "one_line", "start_run",
]

RUN_ID_ENV = "DSOPS_RUN_ID"
NO_ACTIVE_RUN = "no active run: use `with dsops.start_run(...)`"


def start_run(name: str | None = None, *, params: dict[str, object] | None = None,
              workspace: Workspace | None = None) -> ActiveRun:
    """Start a run (use it as ``with dsops.start_run("train") as run:``, or call ``.end()``).

    Inside a pipeline stage (``DSOPS_RUN_ID`` set) this returns the stage's run instead of
    starting another, so the same script works in and out of pipelines.
    """
    current = state.active
    if current is None and os.environ.get(RUN_ID_ENV):
        current = _attach(workspace)
    if current is not None:
        if not current.attached:
            raise UsageError(
                f"run {current.name!r} ({current.id}) is already active in this process",
                hint="end it first (leave its `with` block or call .end()); nested runs "
                     "are not supported")
        if params:
            current.log_params(params)
        return current
    from dsops.tracking.service import TrackingService
    from dsops.workspace import Workspace

    service = TrackingService(workspace or Workspace.open())
    info = service.start_run(name or _default_name(), command=_command_line(), params=params)
    run = ActiveRun(info.id, info.name, attached=False, service=service, workspace=workspace)
    register(run)
    return run


def active_run() -> ActiveRun | None:
    """The run ``log_*`` calls go to: the started one, else the stage's run, else None."""
    run = state.active
    if run is None and os.environ.get(RUN_ID_ENV):
        run = _attach(None)
    return run


def log_metric(name: str, value: float, step: int | None = None, *,
               timestamp: datetime | float | None = None) -> None:
    """Log one value of a metric to the active run (buffered: about a microsecond a call)."""
    (state.active or _active_or_raise()).log_metric(name, value, step, timestamp=timestamp)


def log_metrics(metrics: dict[str, float], step: int | None = None, *,
                timestamp: datetime | float | None = None) -> None:
    """Log several metrics to the active run (all at ``step`` if given)."""
    (state.active or _active_or_raise()).log_metrics(metrics, step, timestamp=timestamp)


def log_param(key: str, value: object) -> None:
    """Record one parameter of the active run."""
    (state.active or _active_or_raise()).log_params({key: value})


def log_params(params: dict[str, object]) -> None:
    """Record parameters of the active run."""
    (state.active or _active_or_raise()).log_params(params)


def log_artifact(path: str | os.PathLike[str], name: str | None = None) -> ArtifactInfo:
    """Store a file in the object store and attach it to the active run."""
    return (state.active or _active_or_raise()).log_artifact(path, name)


def flush() -> int:
    """Write the active run's buffered metric values now (the flusher does it every second)."""
    run = state.active
    return run.flush() if run is not None else 0


def _active_or_raise() -> ActiveRun:
    if os.environ.get(RUN_ID_ENV):
        return _attach(None)
    raise UsageError(NO_ACTIVE_RUN)


def _attach(workspace: Workspace | None) -> ActiveRun:
    """Become a logger of the stage run the pipeline runner named in ``DSOPS_RUN_ID``."""
    with state.lock:
        if state.active is None:
            # The workspace (cwd inside the project, DSOPS_STORE_URL) opens at first flush.
            register(ActiveRun(os.environ[RUN_ID_ENV], None, attached=True, workspace=workspace))
        assert state.active is not None
        return state.active


def _default_name() -> str:
    script = sys.argv[0] if sys.argv else ""
    stem = Path(script).stem if script and script not in ("-c", "-m", "-") else ""
    return stem or "run"


def _command_line() -> str | None:
    return " ".join(sys.argv) if sys.argv and sys.argv[0] else None
