"""The python flavor: a class with predict, rebuilt from its code reference and its state."""

from __future__ import annotations

import importlib
import json
import math
import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dsops.core.errors import UsageError
from dsops.registry.flavors._common import (
    PICKLE_REASON,
    Saved,
    _dump_pickle,
    _feature_names,
    _qualified,
    _refuse_main,
)
from dsops.registry.flavors.loaded import LoadedModel, _loaded, _select


def _save_python(model: Any, directory: Path, code_ref: str | None) -> Saved:
    cls = type(model)
    if code_ref is None:
        if cls.__module__ == "__main__" or "<locals>" in cls.__qualname__:
            _refuse_main([cls.__qualname__], model)
        code_ref = f"{cls.__module__}:{cls.__qualname__}"
    target = _import_ref(code_ref)
    if not (isinstance(target, type) and callable(getattr(target, "predict", None))):
        raise UsageError(f"code_ref {code_ref!r} must name a class with a predict method")
    state = getattr(model, "__dict__", None)
    if state is None:
        raise UsageError(f"cannot save a {_qualified(cls)}: it has no __dict__ to store (uses __slots__?)")
    meta: dict[str, Any] = {"class": _qualified(cls), "code_ref": code_ref,
                            "feature_names": _feature_names(model)}
    if _is_plain_json(state):
        (directory / "state.json").write_text(json.dumps(state), encoding="utf-8")
        return ["state.json"], {**meta, "state_format": "json", "file": "state.json"}, None
    _dump_pickle(state, directory / "state.pkl", model)
    return ["state.pkl"], {**meta, "state_format": "pickle", "file": "state.pkl"}, PICKLE_REASON


def _load_python(path: Path, meta: Mapping[str, Any], trusted: bool) -> LoadedModel:
    cls = _import_ref(str(meta["code_ref"]))
    if meta["state_format"] == "json":
        state = json.loads(path.read_text(encoding="utf-8"))
    else:
        with path.open("rb") as file:
            state = pickle.load(file)
    model = cls.__new__(cls)  # state is restored as saved: __init__ would reset or demand arguments
    model.__dict__.update(state)
    names = meta.get("feature_names")
    return _loaded("python", model, names,
                   lambda X: _select(X, names) if names and hasattr(X, "columns") else X)


def _import_ref(code_ref: str) -> Any:
    module_name, _, qualname = code_ref.partition(":")
    if not module_name or not qualname:
        raise UsageError(f"code reference {code_ref!r} is not of the form 'module:QualName'")
    try:
        target: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError) as exc:
        raise UsageError(f"cannot import {code_ref!r}: {exc}",
                         hint="the module must be importable where the model is saved and loaded") from exc
    return target


def _is_plain_json(value: Any, depth: int = 0) -> bool:
    """True when JSON holds `value` exactly (no tuples, non-str keys, NaN or subclasses to lose)."""
    kind = type(value)
    if value is None or kind in (str, int, bool):
        return True
    if kind is float:
        return math.isfinite(value)
    if depth > 50:
        return False
    if kind is list:
        return all(_is_plain_json(v, depth + 1) for v in value)
    if kind is dict:
        return all(type(k) is str and _is_plain_json(v, depth + 1) for k, v in value.items())
    return False
