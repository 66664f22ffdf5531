"""The gateway's HTTP app: OIP v2, MLflow scoring, feedback and metrics over one `Gateway`.

``create_app(ws, env)`` serves every model routed in ``env``. Starlette, not FastAPI: the hot
path reads raw bytes and writes raw bytes, so FastAPI's validation layer would only add cost
(measured in docs/serving.md). Every response carries ``x-request-id``. What the handlers decide
is the `Gateway`'s (:mod:`dsops.serving.gateway`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from dsops.core.errors import DsopsError
from dsops.core.ids import new_id
from dsops.serving.gateway import MODEL_HEADER, Gateway, Target, Unavailable
from dsops.serving.pool import RETIRE_AFTER_S
from dsops.serving.protocol import (
    BINARY_HEADER,
    ProtocolError,
    decode_infer,
    decode_mlflow,
    encode_infer,
    encode_mlflow,
    error_body,
)

log = logging.getLogger("dsops.serving")
JSON = "application/json"
REQUEST_ID = "x-request-id"
_MAX_ID = 200


def create_app(ws: Any, env: str, *, routes_provider: Callable[[str], Any] | None = None,
               loader: Callable[[str], Any] | None = None, log_predictions: bool = True,
               refresh_s: float = 1.0, retire_after_s: float = RETIRE_AFTER_S,
               gateway: Gateway | None = None) -> Starlette:
    """A Starlette app serving every model routed in ``env`` of workspace ``ws``.

    ``routes_provider(env) -> list[Route]`` defaults to ``RolloutService(ws).routes``; ``loader(ref)``
    to ``load_registered``. Routes are re-read every ``refresh_s`` seconds; a version no route has
    named for ``retire_after_s`` seconds is unloaded.
    """
    gw = gateway or Gateway(ws, env, routes_provider=routes_provider, loader=loader,
                            log_predictions=log_predictions, refresh_s=refresh_s,
                            retire_after_s=retire_after_s)
    endpoints = _Endpoints(gw)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await gw.start()
        try:
            yield
        finally:
            await gw.stop()

    routes = [
        Route("/invocations", endpoints.invocations, methods=["POST"]),
        Route("/v2/models/{name}/infer", endpoints.infer, methods=["POST"]),
        Route("/v2/models/{name}/versions/{version}/infer", endpoints.infer, methods=["POST"]),
        Route("/v2", endpoints.server_metadata, methods=["GET"]),
        Route("/v2/health/live", endpoints.live, methods=["GET"]),
        Route("/v2/health/ready", endpoints.ready, methods=["GET"]),
        Route("/v2/models/{name}", endpoints.model_metadata, methods=["GET"]),
        Route("/v2/models/{name}/versions/{version}", endpoints.model_metadata, methods=["GET"]),
        Route("/v2/models/{name}/ready", endpoints.model_ready, methods=["GET"]),
        Route("/v2/models/{name}/versions/{version}/ready", endpoints.model_ready, methods=["GET"]),
        Route("/ping", endpoints.ping, methods=["GET"]),
        Route("/health", endpoints.ping, methods=["GET"]),
        Route("/version", endpoints.version, methods=["GET"]),
        Route("/feedback", endpoints.feedback, methods=["POST"]),
        Route("/metrics", endpoints.metrics, methods=["GET"]),
    ]
    app = Starlette(routes=routes, lifespan=lifespan,
                    exception_handlers={HTTPException: _http_error, Exception: _server_error})
    app.state.gateway = gw
    return app


def request_id(headers: Mapping[str, str], given: str | None = None) -> str:
    """The client's ``x-request-id`` (or OIP ``id``) when it is a sane one, else a new time-ordered id."""
    value = headers.get(REQUEST_ID) or given
    if value and len(value) <= _MAX_ID and value.isprintable():
        return value
    return new_id()


class _Endpoints:
    """The HTTP handlers; everything they decide is the `Gateway`'s."""

    def __init__(self, gateway: Gateway) -> None:
        self.gw = gateway

    # --- predictions ---------------------------------------------------------------------------------

    async def invocations(self, request: Request) -> Response:
        """MLflow scoring: one of dataframe_split, dataframe_records, instances, inputs, or CSV."""
        started = time.perf_counter()
        rid = request_id(request.headers)
        try:
            name, version = self.gw.invocation_model(request.query_params.get("model")
                                                     or request.headers.get(MODEL_HEADER))
            target = self.gw.choose(name, version, request.headers)
        except DsopsError as exc:
            return self._failed(exc, rid, started, mlflow=True)
        target.batcher.expect()
        try:
            table = decode_mlflow(await request.body(), request.headers.get("content-type"))
            prepared = target.prepare(table)
        except DsopsError as exc:
            target.batcher.arrived()
            return self._failed(exc, rid, started, target, mlflow=True)
        target.batcher.arrived()
        try:
            prediction = await target.batcher.run(prepared, table.rows)
        except Exception as exc:
            return self._failed(exc, rid, started, target, mlflow=True)
        body = encode_mlflow(prediction.predictions)
        self.gw.answered(target, rid, started, prediction, prepared, table)
        return Response(body, 200, {REQUEST_ID: rid}, JSON)

    async def infer(self, request: Request) -> Response:
        """OIP v2 inference on the routed version, or the one in the path."""
        started = time.perf_counter()
        rid = request_id(request.headers)
        params = request.path_params
        try:
            target = self.gw.choose(params["name"], params.get("version"), request.headers)
        except DsopsError as exc:
            return self._failed(exc, rid, started, model=params["name"])
        target.batcher.expect()
        try:
            infer = decode_infer(await request.body(), request.headers.get(BINARY_HEADER))
            if infer.id is not None and REQUEST_ID not in request.headers:
                rid = request_id(request.headers, infer.id)
            prepared = target.prepare(infer.table)
            wanted = target.outputs(infer.outputs)
        except DsopsError as exc:
            target.batcher.arrived()
            return self._failed(exc, rid, started, target)
        target.batcher.arrived()
        try:
            prediction = await target.batcher.run(prepared, infer.table.rows)
        except Exception as exc:
            return self._failed(exc, rid, started, target)
        outputs = prediction.outputs()
        selected = {name: outputs[name] for name in wanted if name in outputs}
        body, header_length = encode_infer(target.model, str(target.version), infer.id or rid, selected,
                                           infer.binary_outputs)
        self.gw.answered(target, rid, started, prediction, prepared, infer.table)
        headers = {REQUEST_ID: rid}
        if header_length is not None:
            headers["inference-header-content-length"] = str(header_length)
            return Response(body, 200, headers, "application/octet-stream")
        return Response(body, 200, headers, JSON)

    def _failed(self, exc: BaseException, rid: str, started: float, target: Target | None = None, *,
                model: str = "", mlflow: bool = False) -> Response:
        """The error response; a failure of the chosen version is counted, and logged when it predicted."""
        if isinstance(exc, DsopsError):
            status, code, message = exc.http_status, exc.code, exc.message
        else:
            log.exception("predict failed (request %s)", rid)
            status, code, message = 500, "predict_error", f"prediction failed: {type(exc).__name__}: {exc}"
        # A payload neither protocol can read is the client's fault, not the version's: not logged.
        self.gw.failed(target, rid, started, status, code, message, model=model,
                       logged=not isinstance(exc, ProtocolError))
        payload: dict[str, Any] = {"error": message, "code": code}
        if mlflow:  # what MLflow's scoring server says, for clients that read it
            payload |= {"error_code": _MLFLOW_CODES.get(status, "INTERNAL_ERROR"), "message": message}
        return Response(json.dumps(payload).encode(), status, {REQUEST_ID: rid}, JSON)

    # --- metadata and health -----------------------------------------------------------------------------

    async def server_metadata(self, request: Request) -> Response:
        """OIP server metadata."""
        import dsops

        return _json({"name": "dsops", "version": dsops.__version__, "extensions": ["binary_tensor_data"]},
                     request)

    async def live(self, request: Request) -> Response:
        """OIP liveness: the process answers."""
        return _json({"live": True}, request)

    async def ready(self, request: Request) -> Response:
        """OIP readiness: the routes were read and their versions loaded (or failed) at least once."""
        return _json({"ready": self.gw.ready}, request, 200 if self.gw.ready else 503)

    async def model_metadata(self, request: Request) -> Response:
        """OIP model metadata: versions served, inputs and outputs with datatypes and shapes."""
        try:
            return _json(self.gw.metadata(request.path_params["name"], request.path_params.get("version")),
                         request)
        except DsopsError as exc:
            return _error(exc, request)

    async def model_ready(self, request: Request) -> Response:
        """OIP model readiness: 200 when the version that answers is loaded, else 503 with the reason."""
        name = request.path_params["name"]
        try:
            target = self.gw.choose(name, request.path_params.get("version"), request.headers)
        except Unavailable as exc:
            return _json({"name": name, "ready": False, "error": exc.message}, request, 503)
        except DsopsError as exc:
            return _error(exc, request)
        return _json({"name": name, "version": str(target.version), "ready": True}, request)

    async def ping(self, request: Request) -> Response:
        """MLflow health check."""
        status = 200 if self.gw.ready else 503
        return PlainTextResponse("\n", status, {REQUEST_ID: request_id(request.headers)})

    async def version(self, request: Request) -> Response:
        """The server's version, as MLflow's ``/version``."""
        import dsops

        return PlainTextResponse(dsops.__version__, headers={REQUEST_ID: request_id(request.headers)})

    # --- feedback and metrics ----------------------------------------------------------------------------

    async def feedback(self, request: Request) -> Response:
        """Ground-truth labels: ``{"request_id", "label"[, "row"]}`` or a list of them."""
        try:
            payload = json.loads(await request.body())
        except ValueError as exc:
            return _error(ProtocolError(f"invalid JSON: {exc}"), request)
        try:
            accepted = self.gw.feedback(payload)
        except DsopsError as exc:
            return _error(exc, request)
        return _json({"accepted": accepted}, request)

    async def metrics(self, request: Request) -> Response:
        """Prometheus text exposition."""
        body, content_type = self.gw.exposition()
        return Response(body, 200, {REQUEST_ID: request_id(request.headers)}, content_type)


_MLFLOW_CODES = {400: "BAD_REQUEST", 404: "RESOURCE_DOES_NOT_EXIST", 415: "BAD_REQUEST",
                 503: "TEMPORARILY_UNAVAILABLE"}


def _json(value: Any, request: Request, status: int = 200) -> Response:
    return Response(json.dumps(value).encode(), status, {REQUEST_ID: request_id(request.headers)}, JSON)


def _error(exc: DsopsError, request: Request) -> Response:
    return Response(error_body(exc.message, exc.code), exc.http_status,
                    {REQUEST_ID: request_id(request.headers)}, JSON)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    message = f"no route {request.method} {request.url.path}" if exc.status_code in (404, 405) \
        else str(exc.detail)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "error")
    return Response(error_body(message, code), exc.status_code,
                    {REQUEST_ID: request_id(request.headers), **(exc.headers or {})}, JSON)


async def _server_error(request: Request, exc: Exception) -> Response:
    log.exception("unexpected error on %s %s", request.method, request.url.path)
    return Response(error_body(f"internal error: {type(exc).__name__}", "internal_error"), 500,
                    {REQUEST_ID: request_id(request.headers)}, JSON)
