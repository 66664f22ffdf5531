"""The boosters: XGBoost in its native UBJSON, LightGBM in its native text format."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from dsops.core.errors import StoreError, UsageError
from dsops.registry.flavors._common import Saved, _library_class
from dsops.registry.flavors.loaded import LoadedClassifier, LoadedModel, _loaded, _tabular

_XGBOOST_BASES = ("Booster", "XGBModel")
_LIGHTGBM_BASES = ("Booster", "LGBMModel")
_LIGHTGBM_AUTO_NAME = re.compile(r"Column_\d+")


# --- xgboost: native UBJSON -------------------------------------------------------------------------------

def _save_xgboost(model: Any, directory: Path, code_ref: str | None) -> Saved:
    import xgboost

    base = _library_class(model, "xgboost", _XGBOOST_BASES)
    assert base is not None
    model.save_model(directory / "model.ubj")
    booster = model if base.__name__ == "Booster" else model.get_booster()
    return ["model.ubj"], {"format": "ubj", "file": "model.ubj", "class": base.__name__,
                           "feature_names": list(booster.feature_names) if booster.feature_names else None,
                           "library_versions": {"xgboost": xgboost.__version__}}, None


def _load_xgboost(path: Path, meta: Mapping[str, Any], trusted: bool) -> LoadedModel:
    import xgboost

    names = meta.get("feature_names")
    if meta["class"] == "Booster":
        booster = xgboost.Booster()
        booster.load_model(path)

        def dmatrix(X: Any) -> Any:
            X = _tabular(X, names)
            if isinstance(X, np.ndarray) and names and X.ndim == 2 and X.shape[1] == len(names):
                return xgboost.DMatrix(X, feature_names=names)
            return xgboost.DMatrix(X)

        return LoadedModel("xgboost", booster, lambda X: booster.predict(dmatrix(X)), names)
    cls = getattr(xgboost, str(meta["class"]), None)
    if not (isinstance(cls, type) and issubclass(cls, xgboost.XGBModel)):
        raise StoreError(f"model {path} names an unknown XGBoost class {meta['class']!r}")
    model = cls()
    model.load_model(path)
    return _loaded("xgboost", model, names, lambda X: _tabular(X, names))


# --- lightgbm: native text; classifiers rebuilt around the Booster ---------------------------------------

def _save_lightgbm(model: Any, directory: Path, code_ref: str | None) -> Saved:
    import lightgbm

    base = _library_class(model, "lightgbm", _LIGHTGBM_BASES)
    assert base is not None
    booster = model if base.__name__ == "Booster" else model.booster_
    meta: dict[str, Any] = {"format": "text", "file": "model.txt", "class": base.__name__,
                            "library_versions": {"lightgbm": lightgbm.__version__}}
    if isinstance(model, lightgbm.LGBMClassifier):
        if callable(model.objective_):
            raise UsageError("a LightGBM classifier with a custom objective function predicts raw scores, "
                             "not probabilities: save it with flavor='sklearn'")
        meta["classes"] = model.classes_.tolist()
    names = booster.feature_name()
    meta["feature_names"] = None if all(_LIGHTGBM_AUTO_NAME.fullmatch(n) for n in names) else names
    booster.save_model(directory / "model.txt")
    return ["model.txt"], meta, None


def _load_lightgbm(path: Path, meta: Mapping[str, Any], trusted: bool) -> LoadedModel:
    import lightgbm

    # Parsing from a string measured 0.6 ms against 1–8 ms for model_file (50 trees, 2 busy cores).
    booster = lightgbm.Booster(model_str=path.read_text(encoding="utf-8"))
    names = meta.get("feature_names")

    def predict(X: Any) -> Any:
        return booster.predict(_tabular(X, names))

    if meta.get("classes") is None:
        return LoadedModel("lightgbm", booster, predict, names)
    classes = np.asarray(meta["classes"])

    def predict_proba(X: Any) -> np.ndarray:
        scores = predict(X)
        # As LGBMClassifier.predict_proba: a binary booster gives P(class 1) only.
        return np.column_stack([1.0 - scores, scores]) if scores.ndim == 1 else scores

    return LoadedClassifier("lightgbm", booster, lambda X: classes[np.argmax(predict_proba(X), axis=1)],
                            predict_proba, names)
