"""The gateway without HTTP: one environment's routes, loaded versions, batching, mirroring and logs.

`Gateway` decides everything a request needs (which version answers, what is counted and logged);
:mod:`dsops.serving.app` puts HTTP on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import time
import zlib
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from dsops.core.errors import DsopsError, NotFound, UsageError
from dsops.rollout.models import Route as RouteInfo
from dsops.serving.batching import MicroBatcher
from dsops.serving.metrics import GatewayMetrics, mark_worker_dead
from dsops.serving.pool import RETIRE_AFTER_S, RuntimePool
from dsops.serving.protocol import ProtocolError, Table
from dsops.serving.runtime import ModelRuntime, Prediction

log = logging.getLogger("dsops.serving")
MODEL_HEADER = "x-dsops-model"
_MIRROR_DRAIN_S = 30.0


class Unavailable(DsopsError):
    """The model (version) cannot answer now: failed to load, or still loading."""

    exit_code = 3
    http_status = 503
    code = "unavailable"


@dataclass
class Target:
    """Where one request goes: the answering version, its role, and the mirror copy's version if any."""

    route: RouteInfo
    runtime: ModelRuntime
    batcher: MicroBatcher
    role: str
    deployment: str | None
    shadow: tuple[ModelRuntime, MicroBatcher] | None = None

    @property
    def model(self) -> str:
        return self.runtime.model

    @property
    def version(self) -> int:
        return self.runtime.version

    def prepare(self, table: Table) -> Any:
        """The request rows as the model's input, checked against its signature."""
        return self.runtime.prepare(table)

    def outputs(self, requested: list[str] | None) -> list[str]:
        """The OIP outputs to return: ``predict`` by default; an unknown name is a 400 naming the known."""
        known = ["predict", "predict_proba"] if self.runtime.has_proba else ["predict"]
        if requested is None:
            return ["predict"]
        unknown = [name for name in requested if name not in known]
        if unknown:
            raise ProtocolError(f"unknown output {unknown[0]!r} of {self.runtime.ref} "
                                f"(outputs: {', '.join(known)})")
        return requested


class Gateway:
    """Serves the models routed in one environment: routes re-read every ``refresh_s``, versions loaded
    once, requests split or mirrored per route, predictions batched and logged."""

    def __init__(self, ws: Any, env: str, *, routes_provider: Callable[[str], Any] | None = None,
                 loader: Callable[[str], Any] | None = None, log_predictions: bool = True,
                 refresh_s: float = 1.0, retire_after_s: float = RETIRE_AFTER_S) -> None:
        self.ws = ws
        self.env = env
        self.refresh_s = refresh_s
        self._provider = routes_provider or _default_routes(ws)
        self.pool = RuntimePool(loader or _default_loader(ws), retire_after_s)
        self.metrics = GatewayMetrics()
        self.routes: dict[str, RouteInfo] = {}
        self.batchers: dict[tuple[str, int], MicroBatcher] = {}
        self.ready = False
        self._log_predictions = log_predictions
        self._writer: Any = None
        self._feedback: Any = None
        self._store = ThreadPoolExecutor(1, thread_name_prefix="dsops-gateway-store")
        self._refresher: asyncio.Task[None] | None = None
        self._mirrors: set[asyncio.Task[None]] = set()

    # --- lifecycle ---------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Read the routes and load their versions once, then keep them fresh in the background."""
        if self._log_predictions:
            from dsops.serving.predlog import PredictionLogWriter

            self._writer = PredictionLogWriter(self.ws.objects, env=self.env, clock=self.ws.clock)
        await self.refresh()
        self._refresher = asyncio.get_running_loop().create_task(self._refresh_forever())

    async def stop(self) -> None:
        """Stop refreshing, let mirrored predictions finish, and store every logged prediction."""
        if self._refresher is not None:
            self._refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refresher
        if self._mirrors:
            await asyncio.wait(set(self._mirrors), timeout=_MIRROR_DRAIN_S)
        for batcher in self.batchers.values():
            batcher.close()
        loop = asyncio.get_running_loop()
        for writer in (self._writer, self._feedback):
            if writer is not None:
                await loop.run_in_executor(self._store, writer.close)
        self._store.shutdown(wait=True)
        mark_worker_dead(os.getpid())

    async def refresh(self) -> None:
        """Re-read the routes; load (off the event loop) the versions they name that are not loaded."""
        loop = asyncio.get_running_loop()
        routes = list(await loop.run_in_executor(self._store, self._provider, self.env))
        wanted = {(r.model, v) for r in routes for v in (r.stable, r.candidate) if v is not None}
        missing = self.pool.missing(wanted)
        if missing:
            self.pool.install(await loop.run_in_executor(self._store, self.pool.load, missing))
        for route in routes:
            for version in (route.stable, route.candidate):
                if version is None:
                    continue
                key = (route.model, version)
                batcher = self.batchers.get(key)
                runtime = self.pool.get(*key)
                if batcher is None or (runtime is not None and runtime.ready
                                       and batcher.predict != runtime.predict_batch):
                    self.batchers[key] = self._batcher(route, version)
                else:
                    batcher.configure(max_batch=route.max_batch, max_wait_us=route.max_wait_us)
        for key in self.pool.retire(wanted):  # no await from here on: requests see the old or the new
            batcher = self.batchers.pop(key, None)
            if batcher is not None:
                batcher.close()
            log.info("unloaded %s@%d: no route has named it for %.0f s", *key, self.pool.retire_after_s)
        self.routes = {route.model: route for route in routes}
        self.ready = True

    async def _refresh_forever(self) -> None:
        failing = False
        while True:
            await asyncio.sleep(self.refresh_s)
            try:
                await self.refresh()
                if failing:
                    log.warning("routes of %s read again", self.env)
                failing = False
            except Exception as exc:  # keep serving the last routes known
                if not failing:
                    log.warning("cannot re-read the routes of %s: %s", self.env, exc)
                failing = True
            if self._writer is not None:
                self.metrics.queue_depth.set(self._writer.queue_depth)

    def _batcher(self, route: RouteInfo, version: int) -> MicroBatcher:
        runtime = self.pool.get(route.model, version)
        model, label = route.model, str(version)

        def on_batch(rows: int, requests: int) -> None:
            self.metrics.observe_batch(model, label, rows)

        predict = runtime.predict_batch if runtime is not None and runtime.ready else _not_loaded
        return MicroBatcher(predict, max_batch=route.max_batch, max_wait_us=route.max_wait_us,
                            on_batch=on_batch, name=f"{model}-{version}")

    # --- routing -------------------------------------------------------------------------------------------

    def invocation_model(self, given: str | None) -> tuple[str, int | None]:
        """The model ``/invocations`` scores: the one named (``name`` or ``name@N``), else the only one."""
        if given:
            name, _, version = given.partition("@")
            if version and not version.isdigit():
                raise UsageError(f"model {given!r}: the version after '@' must be a number")
            return name, int(version) if version else None
        if len(self.routes) == 1:
            return next(iter(self.routes)), None
        if not self.routes:
            raise Unavailable(f"no model is deployed in {self.env}",
                              hint=f"deploy one: dsops deploy NAME@VERSION --env {self.env}")
        served = ", ".join(sorted(self.routes))
        raise UsageError(f"{self.env} serves several models ({served}): name one with "
                         f"?model=NAME or the {MODEL_HEADER} header")

    def choose(self, name: str, version: Any, headers: Mapping[str, str]) -> Target:
        """The version answering this request (split by weight, sticky by header) and its mirror copy."""
        route = self.routes.get(name)
        if route is None:
            raise NotFound(f"model in {self.env}", name, known=self.routes)
        if version is not None:
            return self._pinned(route, version)
        stable = self.pool.get(name, route.stable) if route.stable is not None else None
        candidate = self.pool.get(name, route.candidate) if route.candidate is not None else None
        use_candidate = stable is None
        if candidate is not None and route.mode == "split" and route.weight > 0:
            if route.weight >= 100:
                use_candidate = True
            else:
                key = headers.get(route.sticky_header) if route.sticky_header else None
                bucket = zlib.crc32(key.encode()) % 100 if key else random.randrange(100)
                use_candidate = bucket < route.weight
        chosen, other = (candidate, stable) if use_candidate else (stable, candidate)
        if (chosen is None or not chosen.ready) and other is not None and other.ready:
            chosen, other = other, chosen  # availability first: a broken candidate must not fail requests
        if chosen is None:
            raise Unavailable(f"model {name} is not loaded yet")
        if not chosen.ready:
            raise Unavailable(f"model {chosen.ref} is not available: "
                              f"{chosen.error or 'still loading'}")
        is_candidate = chosen.version == route.candidate and chosen.version != route.stable
        shadow = None
        if route.mode == "mirror" and candidate is not None and candidate.ready and not is_candidate:
            shadow = (candidate, self.batchers[(name, candidate.version)])
        return Target(route, chosen, self.batchers[(name, chosen.version)],
                      "candidate" if is_candidate else "stable",
                      route.deployment if is_candidate else route.stable_deployment, shadow)

    def _pinned(self, route: RouteInfo, version: Any) -> Target:
        served = [v for v in (route.stable, route.candidate) if v is not None]
        number = int(version) if str(version).isdigit() else None
        if number not in served:
            raise NotFound(f"version of {route.model} in {self.env}", str(version),
                           known=[str(v) for v in served])
        runtime = self.pool.get(route.model, number)
        if runtime is None or not runtime.ready:
            reason = runtime.error if runtime is not None else "still loading"
            raise Unavailable(f"model {route.model}@{number} is not available: {reason}")
        is_candidate = number == route.candidate and number != route.stable
        return Target(route, runtime, self.batchers[(route.model, number)],
                      "candidate" if is_candidate else "stable",
                      route.deployment if is_candidate else route.stable_deployment)

    # --- after predicting ----------------------------------------------------------------------------------

    def answered(self, target: Target, rid: str, started: float, prediction: Prediction, prepared: Any,
                 table: Table) -> None:
        """Count and log an answered request; start its mirror copy, if the route mirrors."""
        seconds = time.perf_counter() - started
        self.metrics.observe_request(target.model, str(target.version), 200, seconds)
        if self._writer is not None:
            self._log(target.runtime, target.route, target.role, target.deployment, rid, seconds * 1000,
                      prediction, prepared)
        if target.shadow is not None:
            task = asyncio.get_running_loop().create_task(self._mirror(target, rid, table))
            self._mirrors.add(task)
            task.add_done_callback(self._mirrors.discard)

    def failed(self, target: Target | None, rid: str, started: float, status: int, code: str,
               message: str, *, model: str = "", logged: bool = True) -> None:
        """Count a failed request; log it against the chosen version when the version itself failed it."""
        seconds = time.perf_counter() - started
        name = target.model if target is not None else (model if model in self.routes else "")
        version = str(target.version) if target is not None else ""
        self.metrics.observe_request(name, version, status, seconds)
        self.metrics.observe_error(name, version, code)
        if target is not None and logged and self._writer is not None:
            self._writer.append(rid, target.model, target.version, None, latency_ms=seconds * 1000,
                                status="error", error=message, deployment=target.deployment,
                                role=target.role, sampled=False)

    async def _mirror(self, target: Target, rid: str, table: Table) -> None:
        assert target.shadow is not None
        runtime, batcher = target.shadow
        started = time.perf_counter()
        try:
            prepared = runtime.prepare(table)
            prediction = await batcher.run(prepared, table.rows)
        except Exception as exc:
            message = exc.message if isinstance(exc, DsopsError) else f"{type(exc).__name__}: {exc}"
            self.metrics.observe_error(runtime.model, str(runtime.version), "shadow_error")
            if self._writer is not None:
                self._writer.append(rid, runtime.model, runtime.version, None, status="error", error=message,
                                    latency_ms=(time.perf_counter() - started) * 1000, role="shadow",
                                    deployment=target.route.deployment, sampled=False)
            return
        if self._writer is not None:
            self._log(runtime, target.route, "shadow", target.route.deployment, rid,
                      (time.perf_counter() - started) * 1000, prediction, prepared)

    def _log(self, runtime: ModelRuntime, route: RouteInfo, role: str, deployment: str | None, rid: str,
             latency_ms: float, prediction: Prediction, prepared: Any) -> None:
        sampled = _sampled(rid, route.sample_rate)
        values = prediction.predictions.tolist()
        scores = prediction.scores()
        score_list = scores.tolist() if scores is not None else None
        append = self._writer.append
        for row, value in enumerate(values):
            append(rid, runtime.model, runtime.version, value, latency_ms=latency_ms,
                   score=score_list[row] if score_list is not None else None, deployment=deployment,
                   role=role, row=row, sampled=sampled,
                   inputs=runtime.row_inputs(prepared, row) if sampled else None)

    # --- metadata, feedback, metrics ---------------------------------------------------------------------

    def metadata(self, name: str, version: Any) -> dict[str, Any]:
        """OIP model metadata of the answering (or the named) version."""
        target = self.choose(name, version, {})
        route = target.route
        versions = [str(v) for v in (route.stable, route.candidate) if v is not None]
        return {"name": name, "versions": versions, "version": str(target.version),
                **target.runtime.metadata()}

    def feedback(self, payload: Any) -> int:
        """Queue labels (one object or a list of ``{"request_id", "label"[, "row"]}``); all or nothing."""
        items = payload if isinstance(payload, list) else [payload]
        checked = []
        for i, item in enumerate(items):
            where = f"feedback[{i}]" if isinstance(payload, list) else "feedback"
            if not isinstance(item, dict):
                raise UsageError(f"{where} must be an object with request_id and label")
            rid, label, row = item.get("request_id"), item.get("label"), item.get("row", 0)
            if not isinstance(rid, str) or not rid:
                raise UsageError(f"{where} needs a request_id (the x-request-id of the prediction)")
            if label is None:
                raise UsageError(f"{where} needs a label")
            if isinstance(label, dict | list):
                raise UsageError(f"{where}: label must be a number, a string or a boolean")
            if not isinstance(row, int) or isinstance(row, bool) or row < 0:
                raise UsageError(f"{where}: row must be a non-negative integer")
            checked.append((rid, label, row))
        if self._feedback is None:
            from dsops.serving.predlog import FeedbackWriter

            self._feedback = FeedbackWriter(self.ws.objects, clock=self.ws.clock)
        for rid, label, row in checked:
            self._feedback.append(rid, label, row=row)
        return len(checked)

    def exposition(self) -> tuple[bytes, str]:
        """Prometheus text of the gateway's metrics."""
        if self._writer is not None:
            self.metrics.queue_depth.set(self._writer.queue_depth)
        return self.metrics.exposition()


def _sampled(rid: str, rate: float) -> bool:
    """The prediction log's sampling decision: a hash of the request id, so every copy agrees."""
    if rate >= 1.0:
        return True
    return rate > 0.0 and zlib.crc32(rid.encode()) < int(rate * 0xFFFFFFFF)


def _not_loaded(inputs: Any, sizes: Any) -> Any:
    raise Unavailable("the model version is not loaded")


def _default_routes(ws: Any) -> Callable[[str], Any]:
    from dsops.rollout.service import RolloutService

    return RolloutService(ws).routes


def _default_loader(ws: Any) -> Callable[[str], Any]:
    from dsops.registry.loading import load_registered

    return lambda ref: load_registered(ws, ref)
