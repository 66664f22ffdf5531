"""The prediction log and feedback writers: what the gateway calls on every request.

``append`` only puts a tuple on a deque (no lock, no I/O: safe from the event loop, worker
threads and signal handlers alike). A background thread turns what has accumulated into
one Parquet segment per (model, version, day) every ``flush_interval_s``, or as soon as
``max_rows`` are waiting, and stores it in the object store under ``logs/``. A segment
that cannot be stored keeps its rows in memory for the next tick; ``close()`` writes what
is left, so a graceful shutdown loses nothing that was appended.

Inputs can be personal data: nothing here ever logs a value, only counts and error types.
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import logging
import threading
import weakref
import zlib
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from time import sleep
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from dsops.core.clock import Clock, SystemClock
from dsops.core.errors import DsopsError, StoreError, UsageError
from dsops.core.ids import new_id
from dsops.objects.store import ObjectStore
from dsops.serving.predlog_schema import (
    FEEDBACK_SCHEMA,
    PREDICTION_SCHEMA,
    ROLES,
    STATUSES,
    TIME,
    feedback_key,
    input_columns,
    prediction_key,
    split_value,
    utc_date,
    value_columns,
)

log = logging.getLogger("dsops.serving.predlog")

# What close() does when the store fails at shutdown: a store that blinks should not
# cost the rows, a dead one should not hang the shutdown.
FINAL_ATTEMPTS = 3
FINAL_RETRY_PAUSE_S = 0.5

Row = tuple[Any, ...]


class _SegmentWriter:
    """Buffer rows in memory and store them as Parquet segments from a background thread."""

    kind = "log"

    def __init__(
        self, objects: ObjectStore, *, clock: Clock | None, flush_interval_s: float,
        max_rows: int, max_pending_rows: int,
    ) -> None:
        if flush_interval_s <= 0 or max_rows < 1 or max_pending_rows < max_rows:
            raise UsageError(
                f"{self.kind} writer: flush_interval_s must be > 0 and "
                f"1 <= max_rows <= max_pending_rows (got {flush_interval_s}, {max_rows}, "
                f"{max_pending_rows})")
        self._objects = objects
        self._clock: Clock = clock or SystemClock()
        self.flush_interval_s = flush_interval_s
        self.max_rows = max_rows
        self.max_pending_rows = max_pending_rows
        # deque.append and popleft are atomic: appenders never wait for the writer.
        self._rows: deque[Row] = deque()
        # Segments that could not be stored, kept encoded (a fraction of the rows' memory)
        # and retried under the same key: a PUT that did land is overwritten, not doubled.
        self._retry: list[tuple[str, bytes, int]] = []
        self._retry_rows = 0
        self._writing = 0  # rows taken off the queue by a write still in progress
        self._write_lock = threading.RLock()  # reentrant: close() may run in a signal handler
        self._wake = threading.Event()
        self._stopping = False
        self._closed = False
        self._failing = False
        self.rows_written = 0
        self.segments_written = 0
        self.write_failures = 0
        self.dropped_rows = 0
        self._thread = threading.Thread(target=self._run, name=f"dsops-{self.kind}-writer",
                                        daemon=True)
        self._thread.start()
        # A writer that was never closed still writes its rows when the interpreter exits.
        atexit.register(_close_at_exit, weakref.ref(self))

    @property
    def queue_depth(self) -> int:
        """Rows appended and not yet stored (including rows waiting for a retry)."""
        return len(self._rows) + self._retry_rows + self._writing

    def flush(self) -> int:
        """Store every row appended so far, now; returns how many rows were stored.

        Raises ``StoreError`` when a segment could not be stored: its rows are kept and
        written by the next flush."""
        return self._write_pending()

    def close(self) -> None:
        """Stop the background thread and store every row left (retrying a few times).

        Idempotent. Raises ``StoreError`` if rows remain unwritten after the retries."""
        if self._closed:
            return
        self._closed = True
        self._stopping = True
        self._wake.set()
        if self._thread is not threading.current_thread():
            self._thread.join()
        for attempt in range(FINAL_ATTEMPTS):
            try:
                self._write_pending()
                return
            except StoreError:
                if attempt + 1 == FINAL_ATTEMPTS:
                    log.error("%s: %d rows could not be stored at shutdown",
                              self.kind, self.queue_depth)
                    raise
                sleep(FINAL_RETRY_PAUSE_S)

    def _add(self, row: Row) -> bool:
        if self._closed:
            raise RuntimeError(f"{self.kind} writer is closed")
        depth = len(self._rows)
        if depth + self._retry_rows >= self.max_pending_rows:
            self.dropped_rows += 1  # the store has been down long enough to fill memory
            if self.dropped_rows == 1 or self.dropped_rows % 10_000 == 0:
                log.error("%s: %d rows waiting to be stored (limit %d): dropped %d rows so far",
                          self.kind, self.queue_depth, self.max_pending_rows, self.dropped_rows)
            return False
        self._rows.append(row)
        if depth + 1 == self.max_rows:
            self._wake.set()
        return True

    def _run(self) -> None:
        # pyarrow imports pandas on the first array it builds (~0.5 s of Python holding the
        # GIL): pay it now, while the gateway starts, not on the first flush under load.
        pa.array([0])
        while not self._stopping:
            self._wake.wait(self.flush_interval_s)
            self._wake.clear()
            if self._stopping:
                return
            try:
                self._write_pending()
            except StoreError:
                pass  # counted and logged; the rows wait for the next tick
            except Exception:  # a bug must not kill the thread that saves the rows
                log.exception("%s writer: unexpected error", self.kind)

    def _write_pending(self) -> int:
        with self._write_lock:
            rows = [self._rows.popleft() for _ in range(len(self._rows))]
            self._writing = len(rows) + self._retry_rows
            segments, self._retry, self._retry_rows = self._retry, [], 0
            if not segments and not rows:
                return 0
            written = 0
            error: BaseException | None = None
            for key, data, count in itertools.chain(segments, self._segments(rows)):
                try:
                    self._objects.put_log(key, data)
                except Exception as exc:
                    self._retry.append((key, data, count))
                    self._retry_rows += count
                    error = error or exc
                else:
                    written += count
                    self.segments_written += 1
                self._writing -= count
            self._writing = 0  # rows of segments that could not be encoded were dropped
            self.rows_written += written
            if error is not None:
                self.write_failures += 1
                reason = _reason(error)
                if not self._failing:
                    log.warning("%s: cannot store a segment (%s); keeping %d rows in memory "
                                "and retrying every %g s", self.kind, reason, self._retry_rows,
                                self.flush_interval_s)
                self._failing = True
                raise StoreError(f"{self.kind}: {self._retry_rows} rows could not be stored: "
                                 f"{reason}", hint="they are kept and retried")
            if self._failing:
                log.warning("%s: storing segments again after %d failed attempts",
                            self.kind, self.write_failures)
                self._failing = False
            return written

    def _segments(self, rows: list[Row]) -> Iterator[tuple[str, bytes, int]]:
        """``(key, Parquet bytes, row count)`` of each segment the rows make."""
        for partition, group in self._partitions(rows).items():
            try:
                key, table = self._segment(partition, group)
                sink = pa.BufferOutputStream()
                pq.write_table(table, sink, compression="zstd")
            except Exception as exc:  # deterministic: retrying would fail forever
                self.dropped_rows += len(group)
                log.error("%s: cannot encode %d rows (%s): dropped", self.kind, len(group),
                          type(exc).__name__)
                continue
            yield key, bytes(sink.getvalue()), len(group)

    def _partitions(self, rows: list[Row]) -> dict[Any, list[Row]]:
        """Rows grouped by the segment (partition folder) they go to, in append order."""
        raise NotImplementedError

    def _segment(self, partition: Any, rows: list[Row]) -> tuple[str, pa.Table]:
        """The key and the table of one segment."""
        raise NotImplementedError


def _reason(error: BaseException) -> str:
    """What to say about a failed write: the store's message (no row values can be in it:
    a DsopsError or an OSError names the store or the path), else only the error type."""
    if isinstance(error, (DsopsError, OSError)):
        text = str(error).strip().splitlines()
        return text[0] if text else type(error).__name__
    return type(error).__name__


def _close_at_exit(ref: weakref.ref[_SegmentWriter]) -> None:
    writer = ref()
    if writer is not None:
        with contextlib.suppress(Exception):  # at exit: already logged, nothing better to do
            writer.close()


# Positions in a prediction row tuple.
_RID, _ROW, _TIME, _DEPLOYMENT, _MODEL, _VERSION, _ROLE, _STATUS, _ERROR, _LATENCY, \
    _PREDICTION, _SCORE, _INPUTS = range(13)


class PredictionLogWriter(_SegmentWriter):
    """Logs every prediction the gateway answers, off the hot path (see the module doc).

    ``sample_rate`` is the share of requests whose inputs are kept; the decision hashes
    the request id, so every row of a request, and the stable and shadow answers to it,
    are sampled alike. Outputs, status and latency are always logged."""

    kind = "prediction log"

    def __init__(
        self, objects: ObjectStore, *, env: str, sample_rate: float = 1.0,
        clock: Clock | None = None, flush_interval_s: float = 1.0, max_rows: int = 10_000,
        max_pending_rows: int = 1_000_000,
    ) -> None:
        if not 0.0 <= sample_rate <= 1.0:
            raise UsageError(f"sample rate must be between 0 and 1, not {sample_rate}")
        self.env = env
        self.sample_rate = sample_rate
        self._sample_below = int(sample_rate * 0xFFFFFFFF)
        # Per (model, version): input column -> type, kept for every later segment.
        self._inputs: dict[tuple[str, int], dict[str, pa.DataType]] = {}
        super().__init__(objects, clock=clock, flush_interval_s=flush_interval_s,
                         max_rows=max_rows, max_pending_rows=max_pending_rows)

    def append(
        self, request_id: str, model: str, version: int, prediction: object, *,
        inputs: Mapping[str, object] | None = None, latency_ms: float = 0.0,
        status: str = "ok", error: str | None = None, score: float | None = None,
        deployment: str | None = None, role: str = "stable", row: int = 0,
        sampled: bool | None = None, time: datetime | None = None,
    ) -> bool:
        """Queue one prediction (O(1), no I/O). ``prediction`` is a number or a class label
        (None for an error); ``inputs`` maps feature names to this row's values and is
        kept only when sampled (``sampled`` overrides the rate). ``time`` defaults to the
        clock. Returns False when the row was dropped because ``max_pending_rows`` rows
        are already waiting for a store that is down."""
        if role not in ROLES or status not in STATUSES or not isinstance(version, int):
            raise ValueError(f"role must be one of {sorted(ROLES)}, status one of "
                             f"{sorted(STATUSES)} and version an int, not {role!r}, "
                             f"{status!r}, {version!r}")
        if sampled is None:
            sampled = self._sampled(request_id)
        return self._add((
            request_id, row, time or self._clock.now(), deployment, model, version, role,
            status, error, latency_ms, prediction, score, inputs if sampled else None,
        ))

    def _sampled(self, request_id: str) -> bool:
        if self.sample_rate >= 1.0:
            return True
        if self.sample_rate <= 0.0:
            return False
        return zlib.crc32(request_id.encode()) < self._sample_below

    def _partitions(self, rows: list[Row]) -> dict[Any, list[Row]]:
        groups: dict[Any, list[Row]] = {}
        for row in rows:
            groups.setdefault((row[_MODEL], row[_VERSION], utc_date(row[_TIME])), []).append(row)
        return groups

    def _segment(self, partition: Any, rows: list[Row]) -> tuple[str, pa.Table]:
        model, version, day = partition
        columns, schema = self._columns(model, version, rows)
        table = pa.Table.from_arrays(list(columns.values()), schema=schema)
        return prediction_key(model, version, day, new_id()), table

    def _columns(self, model: str, version: int,
                 rows: list[Row]) -> tuple[dict[str, pa.Array], pa.Schema]:
        numbers, labels = value_columns([r[_PREDICTION] for r in rows])
        n = len(rows)
        columns: dict[str, pa.Array] = {
            "request_id": pa.array([r[_RID] for r in rows], pa.string()),
            "row": pa.array([r[_ROW] for r in rows], pa.int32()),
            "time": pa.array([r[_TIME] for r in rows], TIME),
            "env": pa.array([self.env] * n, pa.string()),
            "deployment": pa.array([r[_DEPLOYMENT] for r in rows], pa.string()),
            "model": pa.array([model] * n, pa.string()),
            "version": pa.array([version] * n, pa.int64()),
            "role": pa.array([r[_ROLE] for r in rows], pa.string()),
            "status": pa.array([r[_STATUS] for r in rows], pa.string()),
            "error": pa.array([r[_ERROR] for r in rows], pa.string()),
            "latency_ms": pa.array([r[_LATENCY] for r in rows], pa.float64()),
            "prediction": numbers,
            "prediction_label": labels,
            "score": pa.array([r[_SCORE] for r in rows], pa.float64()),
            "sampled": pa.array([r[_INPUTS] is not None for r in rows], pa.bool_()),
        }
        known = self._inputs.setdefault((model, version), {})
        columns.update(input_columns([r[_INPUTS] for r in rows], known))
        fields = [*PREDICTION_SCHEMA, *(pa.field(name, columns[name].type)
                                        for name in list(columns)[len(PREDICTION_SCHEMA):])]
        return columns, pa.schema(fields)


class FeedbackWriter(_SegmentWriter):
    """Logs ground-truth labels that arrive after the predictions (``POST /feedback``,
    ``dsops feedback FILE``); readers join them to predictions by (request id, row)."""

    kind = "feedback log"

    def __init__(
        self, objects: ObjectStore, *, clock: Clock | None = None,
        flush_interval_s: float = 1.0, max_rows: int = 10_000,
        max_pending_rows: int = 1_000_000,
    ) -> None:
        super().__init__(objects, clock=clock, flush_interval_s=flush_interval_s,
                         max_rows=max_rows, max_pending_rows=max_pending_rows)

    def append(self, request_id: str, label: object, *, row: int = 0,
               time: datetime | None = None) -> bool:
        """Queue one label (a class label or a number) for the prediction ``request_id``.

        Raises ``UsageError`` for an empty request id, a missing label or a bad row."""
        _check_feedback(request_id, label, row, "feedback")
        return self._add((request_id, row, time or self._clock.now(), label))

    def append_many(self, request_ids: Sequence[str], labels: Sequence[object], *,
                    rows: Sequence[int] | None = None, time: datetime | None = None) -> int:
        """Queue many labels at once (a feedback file); returns how many were queued.

        All or nothing: every label is checked before any is queued. Not for the hot
        path: every ``max_rows`` labels it stores what is waiting, so a file of any size
        goes through in bounded memory."""
        if len(request_ids) != len(labels) or (rows is not None and len(rows) != len(labels)):
            raise UsageError("feedback: request ids, labels and rows differ in length")
        positions = rows if rows is not None else [0] * len(labels)
        for i, (rid, label, row) in enumerate(zip(request_ids, labels, positions, strict=True)):
            _check_feedback(rid, label, row, f"feedback row {i + 1}")
        when = time or self._clock.now()
        queued = 0
        for rid, label, row in zip(request_ids, labels, positions, strict=True):
            queued += self.append(rid, label, row=row, time=when)
            if self.queue_depth >= self.max_rows:
                self.flush()
        return queued

    def _partitions(self, rows: list[Row]) -> dict[Any, list[Row]]:
        groups: dict[Any, list[Row]] = {}
        for row in rows:
            groups.setdefault(utc_date(row[2]), []).append(row)
        return groups

    def _segment(self, partition: Any, rows: list[Row]) -> tuple[str, pa.Table]:
        numbers, labels = zip(*(split_value(r[3]) for r in rows), strict=True)
        table = pa.Table.from_arrays([
            pa.array([r[0] for r in rows], pa.string()),
            pa.array([r[1] for r in rows], pa.int32()),
            pa.array([r[2] for r in rows], TIME),
            # Numbers keep their text too ("1" and 1.0): a reader compares class labels
            # by text and regression targets by value.
            pa.array([text if text is not None else _number_text(number)
                      for number, text in zip(numbers, labels, strict=True)], pa.string()),
            pa.array(numbers, pa.float64()),
        ], schema=FEEDBACK_SCHEMA)
        return feedback_key(partition, new_id()), table


def _check_feedback(request_id: object, label: object, row: object, where: str) -> None:
    if not isinstance(request_id, str) or not request_id:
        raise UsageError(f"{where} needs a non-empty request_id")
    if label is None:
        raise UsageError(f"{where} (request {request_id!r}) has no label")
    if not isinstance(row, int) or isinstance(row, bool) or row < 0:
        raise UsageError(f"{where}: row must be a non-negative integer, not {row!r}")


def _number_text(number: float | None) -> str | None:
    if number is None:
        return None
    return str(int(number)) if number.is_integer() else repr(number)
