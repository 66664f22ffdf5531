"""Canary analysis: the values of the check language over a live window of the prediction
log — the candidate's requests, and the stable version's over the same time for ``stable.``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from dsops.gates.expr import NoData

WINDOW_METRICS = ("error_rate", "p50_latency_ms", "p95_latency_ms", "p99_latency_ms",
                  "request_count", "mean_prediction", "mean_score")
FUNCTIONS = ("psi",)
STABLE_SCOPE = "stable"


class WindowSide:
    """The logged requests of one side (candidate or stable) of a rollout in a window."""

    def __init__(self, columns: Mapping[str, np.ndarray]) -> None:
        self.columns = columns
        self.count = len(next(iter(columns.values()))) if columns else 0

    def column(self, name: str) -> np.ndarray:
        if name not in self.columns:
            raise NoData(f"no column {name!r} in the window")
        return np.asarray(self.columns[name])

    def value(self, name: str) -> float:
        if name == "request_count":
            return float(self.count)
        if self.count == 0:
            raise NoData("no requests in the window")
        if name == "error_rate":
            return float(np.mean(self.column("status") != "ok"))
        ok = self.column("status") == "ok"
        if name.endswith("_latency_ms"):
            latencies = self.column("latency_ms")[ok].astype(float)
            if len(latencies) == 0:
                raise NoData("no successful requests in the window")
            return float(np.percentile(latencies, float(name[1:3])))
        values = self.column("prediction" if name == "mean_prediction" else "score")[ok]
        values = values[~np.isnan(values.astype(float))] if len(values) else values
        if len(values) == 0:
            raise NoData(f"no numeric {name.removeprefix('mean_')} in the window")
        return float(np.mean(values.astype(float)))


class WindowSource:
    """A ValueSource (gates/expr.py) over a rollout's window: names are the candidate's,
    ``stable.NAME`` the stable version's; ``psi(COLUMN)`` compares the two sides."""

    def __init__(self, candidate: WindowSide, stable: WindowSide) -> None:
        self.candidate, self.stable = candidate, stable

    def value(self, name: str, scope: str | None) -> float | None:
        if name not in WINDOW_METRICS:
            return None
        return (self.stable if scope == STABLE_SCOPE else self.candidate).value(name)

    def call(self, name: str, args: tuple[Any, ...], kwargs: Mapping[str, Any],
             scope: str | None) -> float | None:
        if name != "psi":
            return None
        from dsops.monitoring.stats import psi

        column = str(args[0]) if args else "prediction"
        column = {"prediction": "prediction", "score": "score"}.get(column, f"in_{column}")
        if column == "prediction" and "prediction_label" in self.candidate.columns and \
                np.all(np.isnan(self.candidate.column("prediction").astype(float))):
            column = "prediction_label"  # class labels: compared category by category
        if self.candidate.count == 0 or self.stable.count == 0:
            raise NoData("psi needs requests on both sides of the rollout")
        return psi(self.stable.column(column), self.candidate.column(column),
                   bins=int(kwargs.get("bins", 10)))

    def known_names(self) -> list[str]:
        return list(WINDOW_METRICS)

    def known_functions(self) -> list[str]:
        return list(FUNCTIONS)

    def known_scopes(self) -> list[str]:
        return [STABLE_SCOPE]
