"""Model flavors: write a model object's files into a directory, and load them back to predict.

Pure functions over a local directory: the registry service stores the files, their hashes, the
returned ``meta`` and trust records. Safe formats come first (native booster files, ONNX, skops);
pickle is the fallback, and an artifact that needs it (or holds types skops does not trust) loads only
with ``trusted=True``. Heavy libraries are imported inside the flavor that needs them.

One module a flavor (``sklearn_flavor``, ``boosters``, ``onnx_flavor``, ``python_flavor``); this
package states the public surface, detects the flavor and dispatches to it.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dsops.core.errors import DsopsError, PermissionDenied, StoreError, UsageError
from dsops.registry.flavors._common import PICKLE_REASON, Saved, _in_library, _library_class, _qualified
from dsops.registry.flavors.boosters import (
    _LIGHTGBM_BASES,
    _XGBOOST_BASES,
    _load_lightgbm,
    _load_xgboost,
    _save_lightgbm,
    _save_xgboost,
)
from dsops.registry.flavors.loaded import LoadedClassifier, LoadedModel
from dsops.registry.flavors.onnx_flavor import _is_onnx, _load_onnx, _save_onnx
from dsops.registry.flavors.python_flavor import _load_python, _save_python
from dsops.registry.flavors.sklearn_flavor import _load_sklearn, _save_sklearn, _skops_reason

__all__ = [
    "FLAVORS", "FORMAT_VERSION", "PICKLE_REASON", "LoadedClassifier", "LoadedModel", "SavedModel",
    "load_model", "save_model",
]

FLAVORS = ("sklearn", "xgboost", "lightgbm", "onnx", "python")
FORMAT_VERSION = 1


@dataclass(frozen=True)
class SavedModel:
    """What `save_model` wrote: relative file paths, and the metadata `load_model` needs besides them."""

    flavor: str
    files: list[str]
    meta: dict[str, Any]
    needs_trust: bool
    trust_reason: str | None


def save_model(model: Any, directory: Path, *, flavor: str | None = None,
               code_ref: str | None = None) -> SavedModel:
    """Write `model`'s files into the empty (or absent) `directory`, in `flavor` or the detected one.

    `code_ref` ("module:Class") names the class a ``python``-flavor model is rebuilt with. Raises
    `UsageError` for an object no flavor fits, or one `flavor` does not fit; nothing is left behind.
    """
    directory = Path(directory)
    if flavor is not None and flavor not in FLAVORS:
        raise UsageError(f"unknown model flavor {flavor!r} (supported: {', '.join(FLAVORS)})")
    detected = _detect_flavor(model)
    if flavor is None and detected is None:
        raise UsageError(
            f"cannot save a {_qualified(type(model))}: no model flavor fits it "
            f"(supported: {', '.join(FLAVORS)}; a scikit-learn or python model needs a predict method)",
            hint="pass flavor='onnx' for a serialized ONNX model" if _is_onnx(model) else None)
    chosen = flavor or detected
    assert chosen is not None
    if not _FITS[chosen](model):
        fits = f" (it fits {detected!r})" if detected else ""
        raise UsageError(f"a {_qualified(type(model))} cannot be saved as a {chosen!r} model{fits}")
    if code_ref is not None and chosen != "python":
        raise UsageError(f"code_ref applies to the 'python' flavor, not {chosen!r}")
    if directory.exists() and any(directory.iterdir()):
        raise UsageError(f"{directory} is not empty: save_model writes into an empty directory")
    directory.mkdir(parents=True, exist_ok=True)
    try:
        files, meta, reason = _SAVERS[chosen](model, directory, code_ref)
    except BaseException as exc:
        for child in directory.iterdir():
            shutil.rmtree(child) if child.is_dir() else child.unlink()
        if isinstance(exc, DsopsError) or not isinstance(exc, Exception):
            raise
        raise UsageError(f"cannot save a {_qualified(type(model))} as a {chosen!r} model: {exc}") from exc
    meta = {"format_version": FORMAT_VERSION, **meta,
            "needs_trust": reason is not None, "trust_reason": reason}
    return SavedModel(chosen, files, meta, reason is not None, reason)


def load_model(directory: Path, flavor: str, meta: Mapping[str, Any], *, trusted: bool = False,
               ref: str | None = None) -> LoadedModel:
    """Load the model `save_model` wrote into `directory`; `ref` names it in errors.

    An artifact that needs trust (pickle, or skops types outside skops' defaults) raises
    `PermissionDenied` unless `trusted` is True.
    """
    directory = Path(directory)
    if flavor not in FLAVORS:
        raise UsageError(f"unknown model flavor {flavor!r} (supported: {', '.join(FLAVORS)})")
    reason = _trust_reason(meta)
    if reason and not trusted:
        raise PermissionDenied(
            f"model {ref or directory} is not trusted: {reason}",
            hint=f"record trust with 'dsops models trust {ref or 'NAME@VERSION'}' after checking where the "
                 "model came from")
    path = directory / str(meta["file"])
    if not path.is_file():
        raise StoreError(f"model file {path} is missing")
    return _LOADERS[flavor](path, meta, trusted)


def _trust_reason(meta: Mapping[str, Any]) -> str | None:
    # Derived from the format fields too, so a `needs_trust` flag edited to False cannot unlock a pickle.
    if meta.get("format") == "pickle" or meta.get("state_format") == "pickle":
        return PICKLE_REASON
    if meta.get("untrusted_types"):
        return _skops_reason(meta["untrusted_types"])
    return meta.get("trust_reason") or ("it was saved as needing trust" if meta.get("needs_trust") else None)


# --- flavor detection ------------------------------------------------------------------------------------

def _has_predict(model: Any) -> bool:
    return callable(getattr(model, "predict", None))


_FITS: dict[str, Callable[[Any], bool]] = {
    "xgboost": lambda m: _library_class(m, "xgboost", _XGBOOST_BASES) is not None,
    "lightgbm": lambda m: _library_class(m, "lightgbm", _LIGHTGBM_BASES) is not None,
    "onnx": _is_onnx,
    "sklearn": lambda m: any(_in_library(c, "sklearn") for c in type(m).__mro__) and _has_predict(m),
    "python": lambda m: _has_predict(m) and not isinstance(m, type),
}


# Boosters' scikit-learn API classes are scikit-learn estimators too: their native formats come first.
_DETECTION_ORDER = ("xgboost", "lightgbm", "onnx", "sklearn", "python")


def _detect_flavor(model: Any) -> str | None:
    if isinstance(model, bytes | bytearray | memoryview):
        return None  # serialized ONNX is saved only when asked for by name
    return next((name for name in _DETECTION_ORDER if _FITS[name](model)), None)


_SAVERS: dict[str, Callable[[Any, Path, str | None], Saved]] = {
    "sklearn": _save_sklearn, "xgboost": _save_xgboost, "lightgbm": _save_lightgbm, "onnx": _save_onnx,
    "python": _save_python,
}
_LOADERS: dict[str, Callable[[Path, Mapping[str, Any], bool], LoadedModel]] = {
    "sklearn": _load_sklearn, "xgboost": _load_xgboost, "lightgbm": _load_lightgbm, "onnx": _load_onnx,
    "python": _load_python,
}
