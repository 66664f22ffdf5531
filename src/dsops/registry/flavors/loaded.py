"""What `load_model` returns, and how a flavor shapes X for its library before predicting."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from dsops.registry.signature import missing_columns_error


class LoadedModel:
    """A model loaded from its files; ``predict(X)`` takes a DataFrame, an array or a dict of columns."""

    def __init__(self, flavor: str, raw: Any, predict: Callable[[Any], Any],
                 feature_names: list[str] | None = None) -> None:
        self.flavor = flavor
        self.raw = raw
        self.feature_names = feature_names
        self._predict = predict

    def predict(self, X: Any) -> Any:
        """The model's predictions for X."""
        return self._predict(X)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.flavor} {type(self.raw).__name__}>"


class LoadedClassifier(LoadedModel):
    """A loaded model that also gives class probabilities."""

    def __init__(self, flavor: str, raw: Any, predict: Callable[[Any], Any],
                 predict_proba: Callable[[Any], Any], feature_names: list[str] | None = None) -> None:
        super().__init__(flavor, raw, predict, feature_names)
        self._predict_proba = predict_proba

    def predict_proba(self, X: Any) -> Any:
        """Class probabilities for X, an (n, number of classes) array."""
        return self._predict_proba(X)


def _loaded(flavor: str, model: Any, names: list[str] | None, prepare: Callable[[Any], Any]) -> LoadedModel:
    """A LoadedModel over an object with predict (and predict_proba where it has one)."""
    def predict(X: Any) -> Any:
        return model.predict(prepare(X))

    if not callable(getattr(model, "predict_proba", None)):
        return LoadedModel(flavor, model, predict, names)
    return LoadedClassifier(flavor, model, predict, lambda X: model.predict_proba(prepare(X)), names)


def _tabular(X: Any, names: list[str] | None) -> Any:
    """X for a tabular library: a DataFrame in training column order when names are known, else an array."""
    if hasattr(X, "columns") and type(X).__module__.startswith("pandas"):
        return _select(X, names) if names else X
    if isinstance(X, Mapping):
        if names:
            import pandas as pd

            missing = [n for n in names if n not in X]
            if missing:
                raise missing_columns_error(missing, names, list(X))
            return pd.DataFrame({n: np.asarray(X[n]) for n in names})
        return np.column_stack([np.asarray(v) for v in X.values()])
    return X


def _matrix(X: Any, names: list[str] | None) -> np.ndarray:
    X = _tabular(X, names)
    return X.to_numpy() if hasattr(X, "to_numpy") else np.asarray(X)


def _select(frame: Any, names: list[str]) -> Any:
    missing = [n for n in names if n not in frame.columns]
    if missing:
        raise missing_columns_error(missing, names, [str(c) for c in frame.columns])
    return frame[names]
