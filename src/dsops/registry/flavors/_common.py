"""What the flavor modules share when saving: the pickle fallback and its refusals, naming classes."""

from __future__ import annotations

import inspect
import pickle
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dsops.core.errors import UsageError

PICKLE_REASON = "pickle can run arbitrary code on load"

Saved = tuple[list[str], dict[str, Any], str | None]


def _library_class(model: Any, library: str, bases: Sequence[str]) -> type | None:
    """The first class of `library` in `model`'s MRO, when the MRO holds one of `bases` from it."""
    mro = type(model).__mro__
    if not any(c.__name__ in bases and _in_library(c, library) for c in mro):
        return None
    return next(c for c in mro if _in_library(c, library))


def _in_library(cls: type, library: str) -> bool:
    return cls.__module__ == library or cls.__module__.startswith(library + ".")


class _Pickler(pickle.Pickler):
    """A pickler that refuses references to ``__main__``, which cannot be imported where the model loads."""

    def reducer_override(self, obj: Any) -> Any:
        owner = obj if isinstance(obj, type) or inspect.isfunction(obj) else type(obj)
        if getattr(owner, "__module__", None) == "__main__":
            raise _MainReference(owner.__qualname__)
        return NotImplemented


class _MainReference(Exception):
    pass


def _dump_pickle(obj: Any, path: Path, model: Any, skops_error: Exception | None = None) -> None:
    try:
        with path.open("wb") as file:
            _Pickler(file, protocol=pickle.HIGHEST_PROTOCOL).dump(obj)
    except _MainReference as exc:
        path.unlink(missing_ok=True)
        _refuse_main([str(exc)], model)
    except Exception as exc:
        path.unlink(missing_ok=True)
        tried = f"skops: {skops_error}; pickle: {exc}" if skops_error else f"pickle: {exc}"
        raise UsageError(f"cannot save a {_qualified(type(model))}: {tried}") from exc


def _refuse_main(names: Sequence[str], model: Any) -> None:
    shown = ", ".join(n.removeprefix("__main__.") for n in names)
    raise UsageError(
        f"cannot save a {_qualified(type(model))}: {shown} is defined in __main__ or inside a function, "
        "so it cannot be imported where the model is loaded",
        hint="move the class into an importable module (e.g. mypackage/model.py), or pass "
             "code_ref='module:Class' for the python flavor")


def _feature_names(model: Any) -> list[str] | None:
    names = getattr(model, "feature_names_in_", None)
    return None if names is None else [str(n) for n in names]


def _qualified(cls: type) -> str:
    return cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"
