"""The gateway's Prometheus metrics (prometheus-client), multiprocess-safe.

With several workers, ``dsops serve`` points ``PROMETHEUS_MULTIPROC_DIR`` at a fresh directory
before any worker starts; each worker then writes its values to files there and ``/metrics``,
whichever worker answers it, sums them all. Without the variable (one process, tests) each app
has a registry of its own, so several apps in one process do not clash.
"""

from __future__ import annotations

import os
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)


def multiprocess_dir() -> str | None:
    """The multiprocess directory when several workers share the metrics, else None."""
    return os.environ.get(MULTIPROC_ENV) or None


class GatewayMetrics:
    """Request counts, latencies, batch sizes, errors and the prediction-log queue depth."""

    def __init__(self) -> None:
        self.multiprocess = multiprocess_dir() is not None
        # In multiprocess mode values live in files, and /metrics collects them from there.
        self.registry = CollectorRegistry(auto_describe=True)
        registry = None if self.multiprocess else self.registry
        self.requests = Counter("dsops_requests", "Requests answered, by model, version and HTTP status.",
                                ["model", "version", "status"], registry=registry)
        self.latency = Histogram("dsops_request_latency_seconds", "Time from request to response.",
                                 ["model", "version"], buckets=LATENCY_BUCKETS, registry=registry)
        self.batch_size = Histogram("dsops_batch_size", "Rows in each predict call (micro-batching).",
                                    ["model", "version"], buckets=BATCH_BUCKETS, registry=registry)
        self.errors = Counter("dsops_errors", "Failed requests, by model, version and error code.",
                              ["model", "version", "code"], registry=registry)
        self.queue_depth = Gauge("dsops_prediction_log_queue_depth",
                                 "Prediction-log records waiting to be written.",
                                 registry=registry, multiprocess_mode="livesum")
        self._children: dict[tuple[Any, ...], Any] = {}

    def observe_request(self, model: str, version: str, status: int, seconds: float) -> None:
        """Count one answered request and its latency."""
        key = ("r", model, version, status)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = self.requests.labels(model, version, str(status))
        child.inc()
        key = ("l", model, version)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = self.latency.labels(model, version)
        child.observe(seconds)

    def observe_error(self, model: str, version: str, code: str) -> None:
        """Count one failed request."""
        key = ("e", model, version, code)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = self.errors.labels(model, version, code)
        child.inc()

    def observe_batch(self, model: str, version: str, rows: int) -> None:
        """Record the size of one predict call."""
        key = ("b", model, version)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = self.batch_size.labels(model, version)
        child.observe(rows)

    def exposition(self) -> tuple[bytes, str]:
        """The Prometheus text of every metric (summed over workers) and its content type."""
        if self.multiprocess:
            from prometheus_client import multiprocess

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            return generate_latest(registry), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


def mark_worker_dead(pid: int) -> None:
    """Drop a stopped worker's live gauges from the shared files."""
    if multiprocess_dir() is not None:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)
