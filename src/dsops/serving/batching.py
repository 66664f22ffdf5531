"""Adaptive micro-batching: requests for one model version that arrive together are predicted
in one call, then split back.

Everything runs on the event loop's thread. A request submits its prepared rows and awaits a
future; the first submission schedules a flush for the loop's *next* iteration
(``call_soon``), so every request already read in this iteration joins the batch and a lone
request waits for nothing. The flush waits longer — re-checking each loop iteration, at most
``max_wait_us`` — only while other requests for the same version have been routed but not
yet submitted (their bodies are still being read). ``max_batch`` rows flush at once.

A fast model predicts inline (a thread hop costs more than a small predict); once a model's
predict takes longer than `SLOW_PREDICT_S` on average, batches run on one thread of their own
so the loop keeps reading requests, and those queue into the next batch meanwhile.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

SLOW_PREDICT_S = 0.005
_EWMA = 0.2

PredictBatch = Callable[[Sequence[Any], Sequence[int]], Sequence[Any]]


class MicroBatcher:
    """Batches concurrent predictions of one model version (see the module doc)."""

    def __init__(self, predict: PredictBatch, *, max_batch: int = 32, max_wait_us: int = 2000,
                 on_batch: Callable[[int, int], None] | None = None, name: str = "model") -> None:
        self.predict = predict
        self.max_batch = max(1, max_batch)
        self.max_wait_us = max(0, max_wait_us)
        self.on_batch = on_batch  # (rows, requests) of each predict call
        self.name = name
        self.calls = 0
        self._queue: deque[tuple[Any, int, asyncio.Future[Any]]] = deque()
        self._rows = 0
        self._arriving = 0
        self._first_at = 0.0
        self._handle: asyncio.Handle | None = None
        self._busy = False
        self._predict_s = 0.0
        self._executor: ThreadPoolExecutor | None = None

    def configure(self, *, max_batch: int, max_wait_us: int) -> None:
        """Apply new settings (a deployment's batching options changed)."""
        self.max_batch = max(1, max_batch)
        self.max_wait_us = max(0, max_wait_us)

    def expect(self) -> None:
        """A request was routed here and is being read: a pending flush may wait for it."""
        self._arriving += 1

    def arrived(self) -> None:
        """The request `expect` announced submitted, or gave up."""
        self._arriving = max(0, self._arriving - 1)

    def submit(self, inputs: Any, rows: int) -> asyncio.Future[Any]:
        """Queue one request's prepared inputs; the future resolves to its share of the batch's result."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._queue.append((inputs, rows, future))
        self._rows += rows
        if self._busy:
            return future  # the running batch flushes the queue when it ends
        if self._rows >= self.max_batch:
            self._cancel_tick()
            self._flush(loop)
        elif self._handle is None:
            self._first_at = time.perf_counter()
            self._handle = loop.call_soon(self._tick, loop)
        return future

    async def run(self, inputs: Any, rows: int) -> Any:
        """`submit` and await the result."""
        return await self.submit(inputs, rows)

    def close(self) -> None:
        """Stop the batch thread, if one was started."""
        if self._executor is not None:
            self._executor.shutdown(wait=False)

    # --- internals ----------------------------------------------------------------------------------

    def _cancel_tick(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _tick(self, loop: asyncio.AbstractEventLoop) -> None:
        self._handle = None
        if not self._queue or self._busy:
            return
        waited_us = (time.perf_counter() - self._first_at) * 1e6
        if self._arriving > 0 and waited_us < self.max_wait_us and self._rows < self.max_batch:
            self._handle = loop.call_soon(self._tick, loop)
            return
        self._flush(loop)

    def _take(self) -> list[tuple[Any, int, asyncio.Future[Any]]]:
        batch = [self._queue.popleft()]
        rows = batch[0][1]
        while self._queue and rows + self._queue[0][1] <= self.max_batch:
            item = self._queue.popleft()
            batch.append(item)
            rows += item[1]
        self._rows -= rows
        return batch

    def _flush(self, loop: asyncio.AbstractEventLoop) -> None:
        while self._queue and not self._busy:
            batch = self._take()
            if self._predict_s > SLOW_PREDICT_S:
                self._busy = True
                if self._executor is None:
                    self._executor = ThreadPoolExecutor(1, thread_name_prefix=f"dsops-batch-{self.name}")
                work = loop.run_in_executor(self._executor, self._timed, batch)
                work.add_done_callback(lambda done, b=batch: self._finished(loop, b, done))
                return
            try:
                results = self._timed(batch)
            except Exception as exc:
                _fail(batch, exc)
            else:
                _resolve(batch, results)
        if self._queue and self._handle is None and not self._busy:
            self._first_at = time.perf_counter()
            self._handle = loop.call_soon(self._tick, loop)

    def _timed(self, batch: list[tuple[Any, int, asyncio.Future[Any]]]) -> Sequence[Any]:
        sizes = [rows for _, rows, _ in batch]
        started = time.perf_counter()
        try:
            return self.predict([inputs for inputs, _, _ in batch], sizes)
        finally:
            elapsed = time.perf_counter() - started
            self._predict_s = elapsed if self.calls == 0 else \
                (1 - _EWMA) * self._predict_s + _EWMA * elapsed
            self.calls += 1
            if self.on_batch is not None:
                self.on_batch(sum(sizes), len(batch))

    def _finished(self, loop: asyncio.AbstractEventLoop, batch: list[tuple[Any, int, asyncio.Future[Any]]],
                  done: asyncio.Future[Sequence[Any]]) -> None:
        self._busy = False
        exc = done.exception()
        if exc is not None:
            _fail(batch, exc)
        else:
            _resolve(batch, done.result())
        if self._queue:
            self._flush(loop)


def _resolve(batch: list[tuple[Any, int, asyncio.Future[Any]]], results: Sequence[Any]) -> None:
    for (_, _, future), result in zip(batch, results, strict=True):
        if not future.done():
            future.set_result(result)


def _fail(batch: list[tuple[Any, int, asyncio.Future[Any]]], exc: BaseException) -> None:
    for _, _, future in batch:
        if not future.done():
            future.set_exception(exc)
