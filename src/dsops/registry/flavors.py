"""Model flavors: write a model object's files into a directory, and load them back to predict.

Pure functions over a local directory: the registry service stores the files, their hashes, the
returned ``meta`` and trust records. Safe formats come first (native booster files, ONNX, skops);
pickle is the fallback, and an artifact that needs it (or holds types skops does not trust) loads only
with ``trusted=True``. Heavy libraries are imported inside the flavor that needs them.
"""

from __future__ import annotations

import importlib
import inspect
import json
import math
import pickle
import re
import shutil
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dsops.core.errors import DsopsError, PermissionDenied, StoreError, UsageError
from dsops.registry.signature import missing_columns_error

FLAVORS = ("sklearn", "xgboost", "lightgbm", "onnx", "python")
FORMAT_VERSION = 1
PICKLE_REASON = "pickle can run arbitrary code on load"
_XGBOOST_BASES = ("Booster", "XGBModel")
_LIGHTGBM_BASES = ("Booster", "LGBMModel")
_LIGHTGBM_AUTO_NAME = re.compile(r"Column_\d+")
_ONNX_DTYPES = {"tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(int64)": np.int64,
                "tensor(int32)": np.int32, "tensor(bool)": np.bool_, "tensor(string)": np.object_}


@dataclass(frozen=True)
class SavedModel:
    """What `save_model` wrote: relative file paths, and the metadata `load_model` needs besides them."""

    flavor: str
    files: list[str]
    meta: dict[str, Any]
    needs_trust: bool
    trust_reason: str | None


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

def _library_class(model: Any, library: str, bases: Sequence[str]) -> type | None:
    """The first class of `library` in `model`'s MRO, when the MRO holds one of `bases` from it."""
    mro = type(model).__mro__
    if not any(c.__name__ in bases and _in_library(c, library) for c in mro):
        return None
    return next(c for c in mro if _in_library(c, library))


def _in_library(cls: type, library: str) -> bool:
    return cls.__module__ == library or cls.__module__.startswith(library + ".")


def _is_onnx(model: Any) -> bool:
    return isinstance(model, bytes | bytearray | memoryview) or any(
        c.__name__ == "ModelProto" and _in_library(c, "onnx") for c in type(model).__mro__)


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


# --- sklearn: skops, or pickle when skops cannot round-trip the object -------------------------------------

Saved = tuple[list[str], dict[str, Any], str | None]


def _save_sklearn(model: Any, directory: Path, code_ref: str | None) -> Saved:
    import sklearn
    import skops
    import skops.io

    versions = {"scikit-learn": sklearn.__version__, "skops": skops.__version__}
    meta: dict[str, Any] = {"class": _qualified(type(model)), "feature_names": _feature_names(model),
                            "library_versions": versions}
    path = directory / "model.skops"
    try:
        skops.io.dump(model, path)
        _make_skops_deterministic(path)
        untrusted = skops.io.get_untrusted_types(file=path)
        in_main = [t for t in untrusted if t.startswith("__main__.")]
        if in_main:
            _refuse_main(in_main, model)
        # A dump can succeed on objects skops cannot rebuild (compiled regexes, lambdas): load it back once.
        skops.io.load(path, trusted=untrusted)
    except DsopsError:
        raise
    except Exception as exc:
        path.unlink(missing_ok=True)
        _dump_pickle(model, directory / "model.pkl", model, skops_error=exc)
        return ["model.pkl"], {**meta, "format": "pickle", "file": "model.pkl",
                               "skops_error": f"{type(exc).__name__}: {exc}"}, PICKLE_REASON
    meta |= {"format": "skops", "file": "model.skops", "untrusted_types": untrusted}
    return ["model.skops"], meta, _skops_reason(untrusted) if untrusted else None


def _make_skops_deterministic(path: Path) -> None:
    """Rewrite a skops zip so that equal models give equal bytes (the registry is content-addressed).

    skops names array entries and memo keys after ``id()`` of the objects and stamps entries with the
    current time; ids become ordinals in schema order, times a fixed date. Loading only compares them.
    """
    with zipfile.ZipFile(path) as source:
        names = set(source.namelist())
        schema = json.loads(source.read("schema.json"))
        ids: dict[int, int] = {}
        files: dict[str, str] = {}

        def renumber(node: Any) -> None:
            if isinstance(node, list):
                for item in node:
                    renumber(item)
            elif isinstance(node, dict):
                for key, value in node.items():
                    if key == "__id__" and type(value) is int:
                        node[key] = ids.setdefault(value, len(ids) + 1)
                    elif key == "file" and isinstance(value, str) and value in names:
                        node[key] = files.setdefault(value, f"{len(files) + 1}{Path(value).suffix}")
                    else:
                        renumber(value)

        renumber(schema)
        entries = {files.get(name, name): source.read(name) for name in names if name != "schema.json"}
    entries["schema.json"] = json.dumps(schema, indent=2).encode()
    scratch = path.with_name(path.name + ".tmp")
    with zipfile.ZipFile(scratch, "w", compression=zipfile.ZIP_STORED) as target:
        for name in sorted(entries):
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o600 << 16
            target.writestr(info, entries[name])
    scratch.replace(path)


def _skops_reason(types: Sequence[str]) -> str:
    return f"skops found types outside its trusted defaults: {', '.join(types)}"


def _load_sklearn(path: Path, meta: Mapping[str, Any], trusted: bool) -> LoadedModel:
    if meta["format"] == "pickle":
        with path.open("rb") as file:
            model = pickle.load(file)
    else:
        import skops.io

        try:
            model = skops.io.load(path, trusted=list(meta.get("untrusted_types") or []) if trusted else [])
        except skops.io.exceptions.UntrustedTypesFoundException as exc:
            raise PermissionDenied(
                f"model file {path} holds types not recorded when it was saved: {exc}") from exc
    names = meta.get("feature_names")
    return _loaded("sklearn", model, names, lambda X: _tabular(X, names))


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


# --- onnx: ONNX Runtime ------------------------------------------------------------------------------------

def _save_onnx(model: Any, directory: Path, code_ref: str | None) -> Saved:
    import onnxruntime

    data = bytes(model) if isinstance(model, bytes | bytearray | memoryview) else model.SerializeToString()
    session = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])  # checks the bytes
    (directory / "model.onnx").write_bytes(data)
    return ["model.onnx"], {
        "format": "onnx", "file": "model.onnx",
        "inputs": [{"name": i.name, "type": i.type, "shape": i.shape} for i in session.get_inputs()],
        "outputs": [{"name": o.name, "type": o.type, "shape": o.shape} for o in session.get_outputs()],
        "library_versions": {"onnxruntime": onnxruntime.__version__},
    }, None


def _load_onnx(path: Path, meta: Mapping[str, Any], trusted: bool) -> LoadedModel:
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    inputs, outputs = session.get_inputs(), session.get_outputs()
    names = meta.get("feature_names")

    def feed(X: Any) -> dict[str, Any]:
        if len(inputs) == 1:
            dtype = _ONNX_DTYPES.get(inputs[0].type, np.float32)
            return {inputs[0].name: np.asarray(_matrix(X, names), dtype=dtype)}
        if not (isinstance(X, Mapping) or hasattr(X, "columns")):
            raise UsageError(f"the model takes named inputs ({', '.join(i.name for i in inputs)}): "
                             "pass a DataFrame or a dict of column → values")
        missing = [i.name for i in inputs if i.name not in X]
        if missing:
            raise missing_columns_error(missing, [i.name for i in inputs], list(X.keys()))
        fed = {}
        for i in inputs:
            column = np.asarray(X[i.name], dtype=_ONNX_DTYPES.get(i.type, np.float32))
            fed[i.name] = column.reshape(-1, 1) if column.ndim == 1 and len(i.shape) == 2 else column
        return fed

    def predict(X: Any) -> Any:
        return session.run([outputs[0].name], feed(X))[0]

    proba = next((o.name for o in outputs[1:]
                  if "prob" in o.name.lower() or o.type.startswith("seq(map")), None)
    if proba is None:
        return LoadedModel("onnx", session, predict, names)

    def predict_proba(X: Any) -> np.ndarray:
        result = session.run([proba], feed(X))[0]
        if isinstance(result, list):  # skl2onnx's ZipMap: one {class: probability} dict a row
            keys = list(result[0]) if result else []
            table = np.array([[row[k] for k in keys] for row in result], dtype=np.float32)
            return table.reshape(-1, len(keys))
        return np.asarray(result)

    return LoadedClassifier("onnx", session, predict, predict_proba, names)


# --- python: a class with predict, rebuilt from its code reference and state -----------------------------

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


# --- shared helpers ----------------------------------------------------------------------------------------

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


def _feature_names(model: Any) -> list[str] | None:
    names = getattr(model, "feature_names_in_", None)
    return None if names is None else [str(n) for n in names]


def _qualified(cls: type) -> str:
    return cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"


_SAVERS: dict[str, Callable[[Any, Path, str | None], Saved]] = {
    "sklearn": _save_sklearn, "xgboost": _save_xgboost, "lightgbm": _save_lightgbm, "onnx": _save_onnx,
    "python": _save_python,
}
_LOADERS: dict[str, Callable[[Path, Mapping[str, Any], bool], LoadedModel]] = {
    "sklearn": _load_sklearn, "xgboost": _load_xgboost, "lightgbm": _load_lightgbm, "onnx": _load_onnx,
    "python": _load_python,
}
