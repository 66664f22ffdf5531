"""``ActiveRun``: the run a process logs to, with its in-memory buffer of metric values.

``log_metric`` appends to four lists after a few type checks; ``flush`` writes the buffer
in one store transaction, and ``end`` writes what is left together with the end of the
run (one transaction: a run is never stored as ended without its last values). Params
and artifacts are rare and go straight to the store.

The buffer is columnar rather than a list of tuples: a tuple per value is an object the
garbage collector tracks, and 10,000 of them in a loop trigger collections, including a
full one (50–70 ms in a process that has imported SQLAlchemy); floats, ints and strings
appended to existing lists trigger none.
"""

from __future__ import annotations

import math
import os
import sys
import threading
import time
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from dsops.core.errors import UsageError
from dsops.tracking import flusher

if TYPE_CHECKING:
    from dsops.tracking.metric_writer import MetricColumns
    from dsops.tracking.models import ArtifactInfo, RunInfo
    from dsops.tracking.service import TrackingService
    from dsops.workspace import Workspace

MAX_NAME_LENGTH = 256  # the store's column

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
        # Appended to by log_metric without a lock (list.append is atomic under the GIL),
        # `_times` last: a writer takes the first len(_times) values out of each list and
        # never swaps the lists, so a value logged during a flush lands in this flush or
        # in the next one, whole.
        self._names: list[str] = []
        self._values: list[float] = []
        self._steps: list[int] = []
        self._times: list[float] = []  # seconds since the epoch
        self._unwritten: MetricColumns | None = None  # taken out, not stored yet
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
        self._names.append(name)
        self._values.append(value)
        self._steps.append(step)
        self._times.append(_now() if timestamp is None else _epoch(timestamp))

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
            taken = self._take()
            if taken is None:
                return 0
            written = self._service().log_metrics(self.id, taken)
            self._unwritten = None
            return written

    def pending(self) -> int:
        """How many logged values are not in the store yet."""
        return len(self._times) + (len(self._unwritten) if self._unwritten else 0)

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
        self._request_end(status, exit_code, error)
        self._write_with_retries()

    def _take(self) -> MetricColumns | None:
        """Move the buffered values to ``_unwritten`` (under ``_flush_lock``) and return
        them; None when there are none."""
        # Imported here, not at the top: `import dsops; dsops.log_metric` stays at a few ms.
        from dsops.tracking.metric_writer import MetricColumns

        taken = len(self._times)
        if taken:
            columns = [self._names, self._values, self._steps, self._times]
            parts = [column[:taken] for column in columns]
            for column in columns:
                del column[:taken]
            if self._unwritten is not None:  # an earlier write failed: these go first
                previous = self._unwritten
                parts = [previous.keys + parts[0], previous.values + parts[1],
                         previous.steps + parts[2], previous.times + parts[3]]
            self._unwritten = MetricColumns(*parts)
        return self._unwritten

    def _request_end(self, status: str, exit_code: int | None, error: str | None) -> None:
        self._ended = True
        self._end_request = (status, exit_code, error)
        flusher.deactivate(self)

    def _write(self) -> None:
        """Write the values, or the values and the requested end in one transaction."""
        with self._write_lock:  # the flusher and end() may both get here: end once
            if self._end_request is None:
                self.flush()
            else:
                status, exit_code, error = self._end_request
                with self._flush_lock:
                    self._service().end_run(self.id, status, exit_code=exit_code, error=error,
                                            metrics=self._take() or ())
                    self._unwritten = None
                self._end_request = None
                flusher.forget(self)
        if self._failing:
            self._failing = False
            print(f"dsops: metrics of run {self.id} are being written again", file=sys.stderr)

    def _write_with_retries(self) -> bool:
        for attempt in range(flusher.FINAL_ATTEMPTS):
            try:
                self._write()
            except Exception as exc:
                flusher.report_failure(self, exc)
                if attempt + 1 < flusher.FINAL_ATTEMPTS:
                    time.sleep(flusher.FINAL_RETRY_PAUSE_S)
                continue
            return True
        return False

    def _open_store(self) -> None:
        self._service().ws.store  # noqa: B018 (opens the store)

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
            self.end("failed", error=flusher.one_line(exc))


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


__all__ = ["MAX_NAME_LENGTH", "ActiveRun"]
