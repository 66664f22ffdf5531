"""What a model does on an evaluation dataset: quality metrics, fairness (Fairlearn) per
sensitive attribute, and latency on a reference batch. Values only; the gate decides."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from dsops.core.errors import UsageError

CLASSIFICATION_METRICS = ("accuracy", "precision", "recall", "f1", "auc", "log_loss")
REGRESSION_METRICS = ("mae", "rmse", "r2")
LATENCY_METRICS = ("p50_latency_ms", "p99_latency_ms", "batch_latency_ms")
FAIRNESS_FUNCTIONS = ("demographic_parity_difference", "equalized_odds_difference",
                      "disparate_impact_ratio")


@dataclass
class EvalData:
    """An evaluation dataset version as a frame, with its label and sensitive columns."""

    ref: str
    frame: Any  # pandas DataFrame
    label: str | None
    positive_label: Any = None
    latency_rows: int = 200

    def __post_init__(self) -> None:
        if self.label is not None and self.label not in self.frame.columns:
            raise UsageError(f"label column {self.label!r} is not in {self.ref} "
                             f"(columns: {', '.join(map(str, self.frame.columns))})")

    @property
    def rows(self) -> int:
        return len(self.frame)

    def column(self, name: str, purpose: str) -> Any:
        """A column of the evaluation data; a missing one names the columns there are."""
        if name not in self.frame.columns:
            raise UsageError(f"{purpose}: column {name!r} is not in the evaluation data {self.ref} "
                             f"(columns: {', '.join(map(str, self.frame.columns))})")
        return self.frame[name]

    def features(self) -> Any:
        return self.frame.drop(columns=[self.label]) if self.label else self.frame


@dataclass
class ModelEvaluation:
    """One model's predictions on the evaluation data, and every value derived from them."""

    model: Any  # has predict (and maybe predict_proba)
    data: EvalData
    _cache: dict[str, float] = field(default_factory=dict)

    def measured(self) -> dict[str, float]:
        """Every value measured so far (metrics, ``function(by)`` fairness, latencies)."""
        return dict(self._cache)

    @cached_property
    def predictions(self) -> np.ndarray:
        return np.asarray(self.model.predict(self.data.features()))

    @cached_property
    def scores(self) -> np.ndarray | None:
        """Probability of the positive class (binary classifiers), else None."""
        if not hasattr(self.model, "predict_proba"):
            return None
        proba = np.asarray(self.model.predict_proba(self.data.features()))
        if proba.ndim == 2 and proba.shape[1] == 2:
            return proba[:, 1]
        return None

    @property
    def is_classifier(self) -> bool:
        return hasattr(self.model, "predict_proba")

    def _truth(self, purpose: str) -> np.ndarray:
        if self.data.label is None:
            raise UsageError(f"{purpose} needs the label column of the evaluation data",
                             hint="declare 'label:' under the model's gate in dsops.yaml")
        return np.asarray(self.data.frame[self.data.label])

    def _positive(self, truth: np.ndarray) -> Any:
        if self.data.positive_label is not None:
            return self.data.positive_label
        values = sorted(set(truth.tolist()))
        return values[-1] if values else 1

    def metric(self, name: str) -> float:
        """A quality metric on the evaluation data; NaN where it does not apply."""
        if name not in self._cache:
            self._cache[name] = self._metric(name)
        return self._cache[name]

    def _metric(self, name: str) -> float:
        from sklearn import metrics as m

        truth, predicted = self._truth(name), self.predictions
        if name in REGRESSION_METRICS:
            if self.is_classifier:
                return math.nan
            if name == "mae":
                return float(m.mean_absolute_error(truth, predicted))
            if name == "rmse":
                return float(math.sqrt(m.mean_squared_error(truth, predicted)))
            return float(m.r2_score(truth, predicted))
        if not self.is_classifier:
            return math.nan
        positive = self._positive(truth)
        if name == "accuracy":
            return float(m.accuracy_score(truth, predicted))
        if name in ("precision", "recall", "f1"):
            binary = len(set(truth.tolist()) | set(predicted.tolist())) <= 2
            kwargs: dict[str, Any] = ({"pos_label": positive} if binary else {"average": "macro"})
            fn = {"precision": m.precision_score, "recall": m.recall_score, "f1": m.f1_score}[name]
            return float(fn(truth, predicted, zero_division=0, **kwargs))
        scores = self.scores
        if scores is None or len(set(truth.tolist())) != 2:
            return math.nan
        if name == "auc":
            return float(m.roc_auc_score(truth == positive, scores))
        return float(m.log_loss(truth == positive, np.clip(scores, 1e-15, 1 - 1e-15)))

    def fairness(self, function: str, by: str) -> float:
        """A Fairlearn fairness metric of the predictions across the groups of ``by``."""
        key = f"{function}({by})"
        if key not in self._cache:
            from fairlearn import metrics as fm

            groups = self.data.column(by, function)
            truth, predicted = self._truth(function), self.predictions
            positive = self._positive(truth)
            y_true, y_pred = (truth == positive).astype(int), (predicted == positive).astype(int)
            fn = {"demographic_parity_difference": fm.demographic_parity_difference,
                  "equalized_odds_difference": fm.equalized_odds_difference,
                  "disparate_impact_ratio": fm.demographic_parity_ratio}[function]
            self._cache[key] = float(fn(y_true, y_pred, sensitive_features=np.asarray(groups)))
        return self._cache[key]

    def fairness_table(self, by: str) -> dict[str, dict[str, float]]:
        """Per group of ``by``: rows, selection rate, accuracy, true and false positive rate."""
        from fairlearn.metrics import (
            MetricFrame,
            count,
            false_positive_rate,
            selection_rate,
            true_positive_rate,
        )
        from sklearn.metrics import accuracy_score

        truth, predicted = self._truth("fairness table"), self.predictions
        positive = self._positive(truth)
        frame = MetricFrame(
            metrics={"rows": count, "selection_rate": selection_rate,
                     "accuracy": accuracy_score, "true_positive_rate": true_positive_rate,
                     "false_positive_rate": false_positive_rate},
            y_true=(truth == positive).astype(int), y_pred=(predicted == positive).astype(int),
            sensitive_features=np.asarray(self.data.column(by, "fairness table")))
        table = frame.by_group.to_dict(orient="index")
        return {str(group): {k: float(v) for k, v in values.items()}
                for group, values in table.items()}

    def latency(self, name: str) -> float:
        """Milliseconds to predict one row (p50, p99 over the reference rows, one at a time)
        or the whole reference batch at once."""
        if name not in self._cache:
            features = self.data.features()
            batch = features.iloc[: self.data.latency_rows]
            if len(batch) == 0:
                raise UsageError(f"latency needs rows: the evaluation data {self.data.ref} is empty")
            self.model.predict(batch.iloc[:1])  # warm-up: first calls pay lazy set-up
            timings = []
            for i in range(len(batch)):
                row = batch.iloc[i:i + 1]
                start = time.perf_counter()
                self.model.predict(row)
                timings.append((time.perf_counter() - start) * 1000)
            start = time.perf_counter()
            self.model.predict(batch)
            self._cache["batch_latency_ms"] = (time.perf_counter() - start) * 1000
            self._cache["p50_latency_ms"] = float(np.percentile(timings, 50))
            self._cache["p99_latency_ms"] = float(np.percentile(timings, 99))
        return self._cache[name]
