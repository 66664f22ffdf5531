"""What a monitor computes over a window of the prediction log: service figures (errors,
latency), accuracy over the requests whose labels arrived, and the value source alert
rules are evaluated against (gates/expr.py)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from dsops.core.errors import UsageError

SERVICE_METRICS = ("request_count", "error_rate", "p50_latency_ms", "p95_latency_ms",
                   "p99_latency_ms")
ACCURACY_METRICS = ("label_coverage", "labelled_count", "accuracy", "precision", "recall", "f1",
                    "auc", "calibration_error", "mae", "rmse")
DRIFT_METRICS = ("drifted_share", "drifted_count", "prediction_drift", "expectations_failed")
COLUMN_FUNCTIONS = ("psi", "drift", "drifted", "null_share", "out_of_range_share", "unseen_share")


def service_values(columns: Mapping[str, np.ndarray]) -> dict[str, float]:
    """Request count, error rate and latency percentiles of a window."""
    status = np.asarray(columns["status"])
    values: dict[str, float] = {"request_count": float(len(status))}
    if len(status) == 0:
        return values
    values["error_rate"] = float(np.mean(status != "ok"))
    latency = np.asarray(columns["latency_ms"], dtype=float)[status == "ok"]
    if len(latency):
        for q in (50, 95, 99):
            values[f"p{q}_latency_ms"] = float(np.percentile(latency, q))
    return values


def accuracy_values(columns: Mapping[str, np.ndarray], *, positive_label: Any = None) -> dict[str, float]:
    """Quality over the requests whose label has arrived, with the label coverage."""
    from sklearn import metrics as m

    status = np.asarray(columns["status"])
    ok = status == "ok"
    labels = np.asarray(columns.get("label", np.full(len(status), None)), dtype=object)
    has_label = ok & np.array([v is not None for v in labels], dtype=bool)
    values = {"labelled_count": float(has_label.sum()),
              "label_coverage": float(has_label.sum() / ok.sum()) if ok.sum() else 0.0}
    if not has_label.any():
        return values
    label_values = np.asarray(columns.get("label_value", np.full(len(status), np.nan)), dtype=float)
    predicted_num = np.asarray(columns.get("prediction", np.full(len(status), np.nan)), dtype=float)
    predicted_txt = np.asarray(columns.get("prediction_label", np.full(len(status), None)),
                               dtype=object)
    scores = np.asarray(columns.get("score", np.full(len(status), np.nan)), dtype=float)
    regression = not np.isnan(predicted_num[has_label]).any() and \
        not np.isnan(label_values[has_label]).any() and \
        len(np.unique(label_values[has_label])) > 10
    if regression:
        errors = predicted_num[has_label] - label_values[has_label]
        values["mae"] = float(np.mean(np.abs(errors)))
        values["rmse"] = float(np.sqrt(np.mean(errors ** 2)))
        return values
    truth = np.array([str(v) for v in labels[has_label]])
    predicted = np.array([str(t) if t is not None else _label_text(n)
                          for t, n in zip(predicted_txt[has_label], predicted_num[has_label],
                                          strict=True)])
    values["accuracy"] = float(np.mean(truth == predicted))
    positive = str(positive_label) if positive_label is not None else sorted(set(truth))[-1]
    values["precision"] = float(m.precision_score(truth == positive, predicted == positive,
                                                  zero_division=0))
    values["recall"] = float(m.recall_score(truth == positive, predicted == positive, zero_division=0))
    values["f1"] = float(m.f1_score(truth == positive, predicted == positive, zero_division=0))
    score = scores[has_label]
    if not np.isnan(score).any() and len(set(truth)) == 2:
        values["auc"] = float(m.roc_auc_score(truth == positive, score))
        values["calibration_error"] = expected_calibration_error(truth == positive, score)
    return values


def expected_calibration_error(truth: np.ndarray, score: np.ndarray, bins: int = 10) -> float:
    """Mean |observed rate - mean score| over equal-width score bins, weighted by size."""
    edges = np.linspace(0, 1, bins + 1)
    index = np.clip(np.searchsorted(edges, score, side="right") - 1, 0, bins - 1)
    total = 0.0
    for b in range(bins):
        mask = index == b
        if mask.any():
            total += mask.sum() * abs(float(np.mean(truth[mask])) - float(np.mean(score[mask])))
    return total / len(score)


def _label_text(number: float) -> str:
    if math.isnan(number):
        return ""
    return str(int(number)) if float(number).is_integer() else str(number)


class MonitorSource:
    """The value source of alert rules: a window's values and its per-column drift."""

    def __init__(self, monitor: str, values: Mapping[str, float],
                 columns: Mapping[str, Mapping[str, Any]]) -> None:
        self.monitor, self.values, self.columns = monitor, values, columns

    def value(self, name: str, scope: str | None) -> float | None:
        if name not in (*SERVICE_METRICS, *ACCURACY_METRICS, *DRIFT_METRICS):
            return None
        from dsops.gates.expr import NoData

        if name not in self.values:
            raise NoData(f"no {name.replace('_', ' ')} in this window")
        return float(self.values[name])

    def call(self, name: str, args: tuple[Any, ...], kwargs: Mapping[str, Any],
             scope: str | None) -> float | None:
        if name not in COLUMN_FUNCTIONS:
            return None
        column = str(args[0]) if args else ""
        if column not in self.columns:
            raise UsageError(
                f"monitor {self.monitor}: unknown column {column!r} in {name}({column})",
                hint=f"columns compared: {', '.join(sorted(self.columns)) or 'none'}")
        value = self.columns[column].get(name)
        if value is None:
            from dsops.gates.expr import NoData

            raise NoData(f"no {name} for column {column!r}")
        return float(value)

    def known_names(self) -> list[str]:
        return [*SERVICE_METRICS, *ACCURACY_METRICS, *DRIFT_METRICS]

    def known_functions(self) -> list[str]:
        return list(COLUMN_FUNCTIONS)
