"""The process side of the tracking SDK: the active run, the background flusher, exit.

Every run with values or an end still to write is registered here (the ``ActiveRun``
methods with a leading underscore are this module's interface to a run). A daemon thread writes
each one's buffered values every ``FLUSH_INTERVAL_S``; at interpreter exit what is left is
written (with a few retries), and a run started without ``with`` and never ended is ended
by the process outcome. A forked child starts with no run, like a new process.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dsops.tracking.active_run import ActiveRun

FLUSH_INTERVAL_S = 1.0
# Attempts to write what is left when a run ends or the interpreter exits, and the pause
# between them: a store that blinks should not cost the values, a dead one not the exit.
FINAL_ATTEMPTS = 3
FINAL_RETRY_PAUSE_S = 0.5


class ProcessState:
    """The run ``log_*`` calls go to, the runs still to write, and the flusher thread."""

    def __init__(self) -> None:
        self.exit_hook = False
        self.reset()

    def reset(self) -> None:
        """Forget every run and thread (a forked child must not share the parent's)."""
        self.active: ActiveRun | None = None
        self.runs: list[ActiveRun] = []
        self.lock = threading.RLock()
        self.flusher: threading.Thread | None = None
        self.wake = threading.Event()


state = ProcessState()


def register(run: ActiveRun) -> None:
    """Make ``run`` the active run, and make sure the flusher and the exit hook run."""
    with state.lock:
        state.active = run
        state.runs.append(run)
        if not state.exit_hook:
            atexit.register(_at_exit)
            state.exit_hook = True
        if state.flusher is None or not state.flusher.is_alive():
            state.wake.clear()
            state.flusher = threading.Thread(target=_flush_loop, name="dsops-metrics-flusher",
                                             daemon=True)
            state.flusher.start()


def deactivate(run: ActiveRun) -> None:
    """``log_*`` calls no longer go to ``run`` (it is ending)."""
    with state.lock:
        if state.active is run:
            state.active = None


def forget(run: ActiveRun) -> None:
    """``run`` has nothing left to write."""
    with state.lock:
        if run in state.runs:
            state.runs.remove(run)


def report_failure(run: ActiveRun, exc: BaseException) -> None:
    """Say once per outage that values are kept in memory, not on every retry."""
    if not run._failing:
        run._failing = True
        print(f"dsops: cannot write metrics of run {run.id} ({one_line(exc)}); keeping "
              f"{run.pending()} values in memory and retrying every {FLUSH_INTERVAL_S:g} s",
              file=sys.stderr)


def one_line(exc: BaseException) -> str:
    """``"ValueError: the first line of the message"``."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def _flush_loop() -> None:
    # Open the store at once and write what is there, rather than at the first tick:
    # importing SQLAlchemy and opening the store take about a second on a busy machine,
    # which would otherwise double the values a crash in the first seconds loses.
    for run in list(state.runs):
        try:
            run._open_store()
        except Exception as exc:
            report_failure(run, exc)
    while True:
        for run in list(state.runs):
            try:
                run._write()
            except Exception as exc:  # the store is down: keep the values, retry next tick
                report_failure(run, exc)
        if state.wake.wait(FLUSH_INTERVAL_S):
            return


def _at_exit() -> None:
    """Write what is left: every run's values, and the end of a run started without ``with``."""
    state.wake.set()
    active = state.active
    if active is not None and not active.attached and not active._ended:
        # A run started without `with` and never ended: the process outcome decides.
        crash = getattr(sys, "last_value", None)  # set when an uncaught exception was printed
        active._request_end(*(("failed", 1, one_line(crash)) if crash is not None
                             else ("finished", None, None)))
    for run in list(state.runs):
        if (run.pending() or run._end_request) and not run._write_with_retries():
            lost = f"lost {run.pending()} metric values of run {run.id}"
            if run._end_request:
                lost += f" and its end ({run._end_request[0]}; it stays 'running')"
            print(f"dsops: {lost}: the store could not be reached at exit", file=sys.stderr)


os.register_at_fork(after_in_child=state.reset)


__all__ = ["FLUSH_INTERVAL_S", "ProcessState", "deactivate", "forget", "one_line",
           "register", "report_failure", "state"]
