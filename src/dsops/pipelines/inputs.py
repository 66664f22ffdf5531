"""What goes into a stage's cache key: its deps' content hashes, its params' values from
``params.yaml``, and the environment lock."""

from __future__ import annotations

import difflib
import glob
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dsops.core.errors import NotFound, UsageError
from dsops.data.status import StatCache, local_digest
from dsops.pipelines.dag import is_data_dep, is_glob
from dsops.workspace import Workspace

PARAMS_FILE = "params.yaml"
_MISSING = object()

_environment: tuple[Callable[[], dict[str, Any]], dict[str, Any]] | None = None


def environment() -> dict[str, Any]:
    """The environment lock (Python + installed packages), computed once per process.

    The cache is keyed by the lock function itself, so replacing
    ``dsops.tracking.environment.environment_lock`` (as tests do) takes effect.
    """
    global _environment
    from dsops.tracking import environment as env

    fn = env.environment_lock
    if _environment is None or _environment[0] is not fn:
        _environment = (fn, fn())
    return _environment[1]


class Params:
    """The values of ``params.yaml`` at the project root, read once (``text``: its bytes,
    already read)."""

    def __init__(self, root: Path, *, text: bytes | None = None) -> None:
        self.path = root / PARAMS_FILE
        self._data: Any = _MISSING
        self._text = text

    def _load(self) -> Any:
        if self._data is _MISSING:
            import yaml

            if self._text is None and not self.path.exists():
                self._data = None
            else:
                text = self._text if self._text is not None else self.path.read_bytes()
                try:
                    self._data = yaml.safe_load(text.decode("utf-8")) or {}
                except yaml.YAMLError as exc:
                    raise UsageError(f"{PARAMS_FILE}: invalid YAML: {exc}") from None
        return self._data

    def values(self, stage: str, keys: list[str]) -> dict[str, Any]:
        """Each listed dotted key's value (a leaf or a whole section)."""
        if not keys:
            return {}
        data = self._load()
        if data is None:
            raise UsageError(f"stage {stage} lists params {', '.join(keys)} but there is no "
                             f"{PARAMS_FILE} at the project root",
                             hint=f"create {self.path}")
        return {key: self._lookup(stage, data, key) for key in keys}

    def _lookup(self, stage: str, data: Any, key: str) -> Any:
        node = data
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                known = sorted(flatten(data, sections=True))
                message = f"stage {stage}: param {key!r} not found in {PARAMS_FILE}"
                close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
                if close:
                    message += f" — did you mean {close[0]!r}?"
                raise UsageError(message, hint=f"add it to {PARAMS_FILE} or fix the key in "
                                               "dsops.yaml")
            node = node[part]
        return node


def flatten(value: Any, prefix: str = "", *, sections: bool = False) -> dict[str, Any]:
    """Nested mappings → dotted keys (``{"train": {"lr": 0.1}}`` → ``{"train.lr": 0.1}``);
    with ``sections``, the inner keys are listed too."""
    if not isinstance(value, dict):
        return {prefix: value} if prefix else {}
    out: dict[str, Any] = {}
    for k, v in value.items():
        key = f"{prefix}.{k}" if prefix else str(k)
        if sections and isinstance(v, dict):
            out[key] = v
        out.update(flatten(v, key, sections=sections))
    return out


class DepHasher:
    """Content hashes of a stage's deps; files through the stat cache, datasets through
    the store (``data:NAME`` is the latest version at the time of the call)."""

    def __init__(self, ws: Workspace, stat_cache: StatCache) -> None:
        self.ws = ws
        self.stat_cache = stat_cache
        self._datasets: Any = None

    def hash(self, stage: str, dep: str) -> dict[str, str]:
        """``{name: digest}`` for one dep: a path, every file a glob matches, or a dataset
        (``{"data:credit": "credit@2:<digest>"}``)."""
        if is_data_dep(dep):
            return {dep: self.dataset(stage, dep)}
        paths = (sorted(glob.glob(dep, root_dir=self.ws.root, recursive=True)) if is_glob(dep)
                 else [dep])
        out = {}
        for rel in paths:
            digest = local_digest(self.ws.root / rel, self.stat_cache)
            if digest is None:
                raise UsageError(f"stage {stage}: dep {rel!r} does not exist",
                                 hint="produce it with an upstream stage or fix dsops.yaml")
            out[rel] = digest
        return out

    def dataset(self, stage: str, dep: str) -> str:
        """``NAME@N:<digest>`` of the dataset version a ``data:`` dep names."""
        from dsops.core.refs import Ref
        from dsops.data.service import DatasetService

        if self._datasets is None:
            self._datasets = DatasetService(self.ws)
        ref = Ref.parse(dep, "dataset reference")
        try:
            info = self._datasets.show(ref)
        except NotFound as exc:
            if exc.kind != "dataset":
                raise
            known = [d.name for d in self._datasets.list()]
            raise NotFound("dataset", ref.name, known=known,
                           hint=f"stage {stage} lists dep {dep!r}; add the dataset with "
                                "'dsops data add PATH --name NAME'") from None
        return f"{info.ref}:{info.digest}"

    def check_datasets(self, stage: str, deps: list[str]) -> None:
        """Resolve every ``data:`` dep now, so an unknown dataset fails before any stage runs."""
        for dep in deps:
            if is_data_dep(dep):
                self.dataset(stage, dep)
