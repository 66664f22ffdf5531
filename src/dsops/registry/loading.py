"""Load a registered version: its files fetched once into a local cache, every file's hash
checked before the flavor reads it, trust required for unsafe formats, and the signature
enforced on every prediction."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from dsops.core.errors import IntegrityError
from dsops.core.hashing import hash_file
from dsops.core.refs import Ref
from dsops.store.models import ModelVersion
from dsops.workspace import Workspace


class RegisteredModel:
    """A loaded model version: ``predict`` (and ``predict_proba`` where the flavor has it)
    with inputs checked against the signature first."""

    def __init__(self, ref: str, loaded: Any, signature: dict[str, Any] | None) -> None:
        self.ref = ref
        self.flavor: str = loaded.flavor
        self.raw = loaded.raw
        self.signature = None
        if signature:
            from dsops.registry.signature import Signature

            self.signature = Signature.from_dict(signature)
        self._loaded = loaded
        if hasattr(loaded, "predict_proba"):
            self.predict_proba = self._predict_proba

    def _inputs(self, inputs: Any) -> Any:
        if self.signature is None:
            return inputs
        from dsops.registry.signature import enforce

        return enforce(self.signature, inputs)

    def predict(self, inputs: Any) -> Any:
        """Predictions for ``inputs`` (DataFrame, dict of columns or array)."""
        return self._loaded.predict(self._inputs(inputs))

    def _predict_proba(self, inputs: Any) -> Any:
        return self._loaded.predict_proba(self._inputs(inputs))

    def __repr__(self) -> str:
        return f"<RegisteredModel {self.ref} ({self.flavor})>"


def load_registered(ws: Workspace, ref: str | Ref) -> RegisteredModel:
    """Fetch (once), verify and load a model version."""
    from dsops.registry.flavors import load_model
    from dsops.registry.service import RegistryService

    registry = RegistryService(ws)
    row = registry.resolve(ref)
    name = f"{Ref.parse(str(ref)).name}@{row.version}"
    directory = materialise(ws, row, name)
    loaded = load_model(directory, row.flavor, row.meta, trusted=row.trusted_by is not None,
                        ref=name)
    return RegisteredModel(name, loaded, row.signature)


def materialise(ws: Workspace, row: ModelVersion, name: str) -> Path:
    """The version's files in ``.dsops/models/DIGEST``, each hash checked on every call:
    a file edited in the cache or the object store is refused, never loaded."""
    directory = ws.state_dir / "models" / row.digest
    if not directory.is_dir():
        directory.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=directory.parent, prefix=f".{row.digest}."))
        try:
            try:
                ws.objects.get_files([(meta["digest"], staging / rel)
                                      for rel, meta in row.files.items()])
            except IntegrityError as exc:
                raise IntegrityError(f"model {name}: a stored file does not match its recorded "
                                     f"hash — tampered or corrupt ({exc.message})") from None
            try:
                os.replace(staging, directory)
            except OSError:  # another process materialised it first
                if not directory.is_dir():
                    raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return directory
    for rel, meta in row.files.items():
        path = directory / rel
        if not path.is_file() or hash_file(path) != meta["digest"]:
            raise IntegrityError(
                f"model {name}: {rel} does not match its recorded hash — the file was changed "
                "after it was registered; refusing to load it",
                hint=f"delete {directory} to fetch it again from the object store")
    return directory
