"""The sklearn flavor: skops, or pickle when skops cannot round-trip the object."""

from __future__ import annotations

import json
import pickle
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from dsops.core.errors import DsopsError, PermissionDenied
from dsops.registry.flavors._common import (
    PICKLE_REASON,
    Saved,
    _dump_pickle,
    _feature_names,
    _qualified,
    _refuse_main,
)
from dsops.registry.flavors.loaded import LoadedModel, _loaded, _tabular


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
