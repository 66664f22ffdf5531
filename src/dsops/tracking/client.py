"""The tracking SDK behind ``dsops.start_run``, ``dsops.log_metric`` and friends.

Metric values go to an in-memory buffer (one list append per call) that a daemon thread
writes to the store every second, and that ``end()`` and interpreter exit write in full:
a normal exit loses nothing, a crash at most the last second. Params and artifacts are
rare and go straight to the store.

Inside a pipeline stage the runner sets ``DSOPS_RUN_ID``: ``log_*`` calls (and
``start_run``) attach to that run with no configuration. This module imports nothing
heavy; the workspace and the store open on the first ``start_run`` or flush.
"""

from __future__ import annotations

import atexit
import math
import os
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from dsops.core.errors import UsageError

if TYPE_CHECKING:
    from dsops.tracking.models import ArtifactInfo, RunInfo
    from dsops.tracking.service import TrackingService
    from dsops.workspace import Workspace

__all__ = [
    "ActiveRun", "active_run", "flush", "log_artifact", "log_metric", "log_metrics",
    "log_param", "log_params", "start_run",
]

RUN_ID_ENV = "DSOPS_RUN_ID"
FLUSH_INTERVAL_S = 1.0
# Attempts to write what is left when a run ends or the interpreter exits, and the pause
# between them: a store that blinks should not cost the values, a dead one not the exit.
FINAL_ATTEMPTS = 3
FINAL_RETRY_PAUSE_S = 0.5
MAX_NAME_LENGTH = 256  # the store's column
NO_ACTIVE_RUN = "no active run: use `with dsops.start_run(...)`"

_now = time.time
_isfinite = math.isfinite


class ActiveRun:
    """A run this process logs to: one it started, or the pipeline stage run it attached to.

    A context manager: leaving the block writes every buffered value and ends the run
    (``finished``; ``failed`` with the error if the block raised; ``killed`` on Ctrl-C).
    An attached stage run is only flushed: the pipeline runner ends it.
    """

    def __init__(self, run_id: str, name: str | None, *, attached: bool,
                 service: TrackingService | None = None,
                 workspace: Workspace | None = None) -> None:
        self.id = run_id
        self._name = name  # None for an attached stage run until asked (a store read)
        self.attached = attached
        self._service_obj = service
        self._workspace = workspace
        # Appended to by log_metric without a lock (list.append is atomic under the GIL);
        # the flusher takes a prefix of it out, never swaps the list, so an append racing
        # a flush lands either in this flush or in the next one.
        self._rows: list[tuple[str, float, int, float]] = []
        self._unwritten: list[tuple[str, float, int, float]] = []  # taken out, write failed
        self._next_step: dict[str, int] = {}
        self._flush_lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._failing = False
        self._ended = False
        self._end_request: tuple[str, int | None, str | None] | None = None

    def __repr__(self) -> str:
        return f"<ActiveRun {self._name!r} id={self.id}{' (stage)' if self.attached else ''}>"

    @property
    def name(self) -> str:
        """The run's name (a stage run's is read from the store on first use)."""
        if self._name is None:
            self._name = self._service().get(self.id).name
        return self._name

    # --- logging --------------------------------------------------------------------

    def log_metric(self, name: str, value: float, step: int | None = None, *,
                   timestamp: datetime | float | None = None) -> None:
        """Buffer one value of metric ``name``; ``step`` defaults to the metric's next step."""
        # The hot path of a training loop: keep it to a few type checks and one append.
        if type(value) is not float:
            value = float(value) if type(value) is int else _as_float(name, value)
        if not _isfinite(value):
            raise UsageError(f"metric {name!r}: expected a finite number, got {value!r}")
        if type(name) is not str:
            raise UsageError(f"a metric name must be a non-empty string, got {name!r}")
        if self._ended:
            raise UsageError(f"run {self.id} has ended: start a new one with dsops.start_run()")
        next_step = self._next_step.get(name)
        if next_step is None:  # a new name: checked once, so a bad one cannot block flushes
            _check_name(name)
            next_step = 0
        if step is None:
            step = next_step
        elif type(step) is not int:
            step = _as_step(name, step)
        self._next_step[name] = step + 1
        self._rows.append((name, value, step, _now() if timestamp is None
                           else _epoch(timestamp)))

    def log_metrics(self, metrics: dict[str, float], step: int | None = None, *,
                    timestamp: datetime | float | None = None) -> None:
        """Buffer several metrics at once (all at ``step`` if given)."""
        at = _now() if timestamp is None else _epoch(timestamp)
        for name, value in metrics.items():
            self.log_metric(name, value, step, timestamp=at)

    def log_param(self, key: str, value: object) -> None:
        """Record one parameter now (a param cannot change once logged)."""
        self.log_params({key: value})

    def log_params(self, params: dict[str, object]) -> None:
        """Record parameters now (a param cannot change once logged)."""
        if params:
            self._service().log_params(self.id, params)

    def log_artifact(self, path: str | os.PathLike[str], name: str | None = None) -> ArtifactInfo:
        """Store a file in the object store and attach it to the run."""
        return self._service().log_artifact(self.id, Path(path), name)

    @property
    def info(self) -> RunInfo:
        """The run as stored now (params, latest metrics, status …); flushes first."""
        self.flush()
        return self._service().get(self.id)

    # --- writing --------------------------------------------------------------------

    def flush(self) -> int:
        """Write the buffered values to the store now; returns how many were written.

        On failure the values stay buffered (the next flush retries them) and the
        store's error is raised.
        """
        with self._flush_lock:
            taken = len(self._rows)
            if taken:
                self._unwritten += self._rows[:taken]
                del self._rows[:taken]
            if not self._unwritten:
                return 0
            rows = [(k, v, s, datetime.fromtimestamp(t, UTC)) for k, v, s, t in self._unwritten]
            written = self._service().log_metrics(self.id, rows)
            self._unwritten = []
            return written

    def pending(self) -> int:
        """How many logged values are not in the store yet."""
        return len(self._rows) + len(self._unwritten)

    def end(self, status: str = "finished", *, error: str | None = None,
            exit_code: int | None = None) -> None:
        """Write every buffered value and end the run (an attached stage run is only flushed).

        If the store cannot be reached, the flusher keeps retrying, and exit tries once more.
        """
        if self.attached:  # the pipeline runner ends the stage run; logging may go on
            self._write_with_retries()
            return
        if self._ended:
            return
        self._ended = True
        self._end_request = (status, exit_code, error)
        with _state.lock:
            if _state.active is self:
                _state.active = None
        self._write_with_retries()

    def _write(self) -> None:
        """Flush, then store a requested end; the run is done with once both are stored."""
        with self._write_lock:  # the flusher and end() may both get here: end once
            self.flush()
            if self._end_request is not None:
                status, exit_code, error = self._end_request
                self._service().end_run(self.id, status, exit_code=exit_code, error=error)
                self._end_request = None
                _forget(self)
        if self._failing:
            self._failing = False
            print(f"dsops: metrics of run {self.id} are being written again", file=sys.stderr)

    def _write_with_retries(self) -> bool:
        for attempt in range(FINAL_ATTEMPTS):
            try:
                self._write()
            except Exception as exc:
                _report_failure(self, exc)
                if attempt + 1 < FINAL_ATTEMPTS:
                    time.sleep(FINAL_RETRY_PAUSE_S)
                continue
            return True
        return False

    def _service(self) -> TrackingService:
        if self._service_obj is None:
            from dsops.tracking.service import TrackingService
            from dsops.workspace import Workspace

            self._service_obj = TrackingService(self._workspace or Workspace.open())
        return self._service_obj

    # --- context manager ------------------------------------------------------------

    def __enter__(self) -> ActiveRun:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc is None:
            self.end("finished")
        elif isinstance(exc, KeyboardInterrupt):
            self.end("killed", error="interrupted (KeyboardInterrupt)")
        elif isinstance(exc, SystemExit) and exc.code in (None, 0):
            self.end("finished", exit_code=0)
        elif isinstance(exc, SystemExit):
            code = exc.code if isinstance(exc.code, int) else 1
            self.end("failed", exit_code=code, error=f"SystemExit: {exc.code}")
        else:
            self.end("failed", error=one_line(exc))


# --- the module-level SDK -----------------------------------------------------------


def start_run(name: str | None = None, *, params: dict[str, object] | None = None,
              workspace: Workspace | None = None) -> ActiveRun:
    """Start a run (use it as ``with dsops.start_run("train") as run:``, or call ``.end()``).

    Inside a pipeline stage (``DSOPS_RUN_ID`` set) this returns the stage's run instead of
    starting another, so the same script works in and out of pipelines.
    """
    current = _state.active
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
    _register(run)
    return run


def active_run() -> ActiveRun | None:
    """The run ``log_*`` calls go to: the started one, else the stage's run, else None."""
    run = _state.active
    if run is None and os.environ.get(RUN_ID_ENV):
        run = _attach(None)
    return run


def log_metric(name: str, value: float, step: int | None = None, *,
               timestamp: datetime | float | None = None) -> None:
    """Log one value of a metric to the active run (buffered: about a microsecond a call)."""
    (_state.active or _active_or_raise()).log_metric(name, value, step, timestamp=timestamp)


def log_metrics(metrics: dict[str, float], step: int | None = None, *,
                timestamp: datetime | float | None = None) -> None:
    """Log several metrics to the active run (all at ``step`` if given)."""
    (_state.active or _active_or_raise()).log_metrics(metrics, step, timestamp=timestamp)


def log_param(key: str, value: object) -> None:
    """Record one parameter of the active run."""
    (_state.active or _active_or_raise()).log_params({key: value})


def log_params(params: dict[str, object]) -> None:
    """Record parameters of the active run."""
    (_state.active or _active_or_raise()).log_params(params)


def log_artifact(path: str | os.PathLike[str], name: str | None = None) -> ArtifactInfo:
    """Store a file in the object store and attach it to the active run."""
    return (_state.active or _active_or_raise()).log_artifact(path, name)


def flush() -> int:
    """Write the active run's buffered metric values now (the flusher does it every second)."""
    run = _state.active
    return run.flush() if run is not None else 0


def one_line(exc: BaseException) -> str:
    """``"ValueError: the first line of the message"``."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


# --- process state: the active run, the flusher, exit ---------------------------------


class _State:
    def __init__(self) -> None:
        self.active: ActiveRun | None = None
        self.runs: list[ActiveRun] = []  # runs with values or an end still to write
        self.lock = threading.RLock()
        self.flusher: threading.Thread | None = None
        self.wake = threading.Event()
        self.exit_hook = False


_state = _State()


def _active_or_raise() -> ActiveRun:
    if os.environ.get(RUN_ID_ENV):
        return _attach(None)
    raise UsageError(NO_ACTIVE_RUN)


def _attach(workspace: Workspace | None) -> ActiveRun:
    """Become a logger of the stage run the pipeline runner named in ``DSOPS_RUN_ID``."""
    with _state.lock:
        if _state.active is None:
            # The workspace (cwd inside the project, DSOPS_STORE_URL) opens at first flush.
            run_id = os.environ[RUN_ID_ENV]
            _register(ActiveRun(run_id, None, attached=True, workspace=workspace))
        assert _state.active is not None
        return _state.active


def _register(run: ActiveRun) -> None:
    with _state.lock:
        _state.active = run
        _state.runs.append(run)
        if not _state.exit_hook:
            atexit.register(_at_exit)
            _state.exit_hook = True
        if _state.flusher is None or not _state.flusher.is_alive():
            _state.wake.clear()
            _state.flusher = threading.Thread(target=_flush_loop, name="dsops-metrics-flusher",
                                              daemon=True)
            _state.flusher.start()


def _forget(run: ActiveRun) -> None:
    with _state.lock:
        if run in _state.runs:
            _state.runs.remove(run)


def _flush_loop() -> None:
    # Open the store at once and write what is there, rather than at the first tick:
    # importing SQLAlchemy and opening the store take about a second on a busy machine,
    # which would otherwise double the values a crash in the first seconds loses.
    for run in list(_state.runs):
        try:
            run._service().ws.store  # noqa: B018 (opens the store)
        except Exception as exc:
            _report_failure(run, exc)
    while True:
        for run in list(_state.runs):
            try:
                run._write()
            except Exception as exc:  # the store is down: keep the values, retry next tick
                _report_failure(run, exc)
        if _state.wake.wait(FLUSH_INTERVAL_S):
            return


def _report_failure(run: ActiveRun, exc: BaseException) -> None:
    """Say once per outage that values are kept in memory, not on every retry."""
    if not run._failing:
        run._failing = True
        print(f"dsops: cannot write metrics of run {run.id} ({one_line(exc)}); keeping "
              f"{run.pending()} values in memory and retrying every {FLUSH_INTERVAL_S:g} s",
              file=sys.stderr)


def _at_exit() -> None:
    """Write what is left: every run's values, and the end of a run started without ``with``."""
    _state.wake.set()
    active = _state.active
    if active is not None and not active.attached and not active._ended:
        # A run started without `with` and never ended: the process outcome decides.
        crash = getattr(sys, "last_value", None)  # set when an uncaught exception was printed
        active._end_request = (("failed", 1, one_line(crash)) if crash is not None
                               else ("finished", None, None))
        active._ended = True
        _state.active = None
    for run in list(_state.runs):
        if (run.pending() or run._end_request) and not run._write_with_retries():
            lost = f"lost {run.pending()} metric values of run {run.id}"
            if run._end_request:
                lost += f" and its end ({run._end_request[0]}; it stays 'running')"
            print(f"dsops: {lost}: the store could not be reached at exit", file=sys.stderr)


def _reset_after_fork() -> None:
    # A forked child inherits the parent's buffer (the parent writes those values) and a
    # store connection pool it must not share: it starts with no run, like a new process.
    global _state
    exit_hook = _state.exit_hook
    _state = _State()
    _state.exit_hook = exit_hook


os.register_at_fork(after_in_child=_reset_after_fork)


# --- values ---------------------------------------------------------------------------


def _as_float(name: str, value: Any) -> float:
    """int, numpy scalars, 0-d tensors … as float; strings and bools are refused."""
    if isinstance(value, str | bytes | bool) or not hasattr(value, "__float__"):
        raise UsageError(f"metric {name!r}: expected a finite number, got {value!r}")
    try:
        return float(value)
    except (TypeError, ValueError, OverflowError) as exc:
        raise UsageError(f"metric {name!r}: expected a finite number, got {value!r}") from exc


def _check_name(name: str) -> None:
    if not name.strip() or len(name) > MAX_NAME_LENGTH:
        raise UsageError(f"a metric name must be a non-empty string of at most "
                         f"{MAX_NAME_LENGTH} characters, got {name!r}")


def _as_step(name: str, step: Any) -> int:
    if isinstance(step, bool) or not hasattr(step, "__index__"):
        raise UsageError(f"metric {name!r}: step must be an integer, got {step!r}")
    return int(step.__index__())


def _epoch(timestamp: datetime | float) -> float:
    if isinstance(timestamp, datetime):
        return timestamp.timestamp()
    if isinstance(timestamp, int | float) and not isinstance(timestamp, bool):
        return float(timestamp)
    raise UsageError(f"timestamp must be a datetime or seconds since the epoch, "
                     f"got {timestamp!r}")


def _default_name() -> str:
    script = sys.argv[0] if sys.argv else ""
    stem = Path(script).stem if script and script not in ("-c", "-m", "-") else ""
    return stem or "run"


def _command_line() -> str | None:
    return " ".join(sys.argv) if sys.argv and sys.argv[0] else None
