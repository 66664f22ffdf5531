"""The Python SDK objects behind ``dsops.*`` (see ``dsops/__init__.py`` for the surface)."""

from __future__ import annotations

import os
import shutil
import warnings
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dsops.workspace import Workspace

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

    from dsops.data.models import DatasetVersionInfo
    from dsops.data.service import DatasetService
    from dsops.registry.loading import RegisteredModel
    from dsops.registry.models import ModelVersionInfo


class RevokedDataWarning(UserWarning):
    """The dataset version being read was revoked."""


class Dataset:
    """A dataset version by reference: ``Dataset("credit@3")``, or ``"credit"`` for the latest.

    >>> df = dsops.Dataset("credit@3").to_pandas()
    """

    def __init__(self, ref: str, *, workspace: Workspace | None = None) -> None:
        self.ref = ref
        self._ws = workspace

    @cached_property
    def _service(self) -> DatasetService:
        from dsops.data.service import DatasetService

        return DatasetService(self._ws or Workspace.open())

    @cached_property
    def info(self) -> DatasetVersionInfo:
        """Metadata, schema, profile and findings of this version."""
        info = self._service.show(self.ref)
        if info.revoked:
            warnings.warn(f"{info.ref} was revoked: {info.revoke_reason}", RevokedDataWarning,
                          stacklevel=3)
        return info

    @property
    def version(self) -> int:
        return self.info.version

    def to_arrow(self) -> pa.Table:
        """The data as an Arrow table (sensitive versions are decrypted in memory only)."""
        return self._service.read_table(self.info.ref)

    def to_pandas(self) -> pd.DataFrame:
        """The data as a pandas DataFrame."""
        return self.to_arrow().to_pandas()

    def path(self) -> Path:
        """A local path with the content: the file, or a directory for directory datasets.

        Plain content is read in place or cached under ``.dsops/cache``; sensitive content
        has no plaintext path (use ``to_pandas`` or ``dsops data checkout``).
        """
        info = self.info
        if info.kind == "file":
            return self._service.local_file(info)
        if info.encrypted:
            return self._service.local_file(info)  # raises the explanatory error
        target = self._service.ws.state_dir / "cache" / info.digest
        if not target.exists():
            # Per process: two readers materialising the same version must not collide.
            tmp = target.with_name(f"{target.name}.{os.getpid()}.partial")
            self._service.checkout(info.ref, tmp, force=True)
            try:
                tmp.rename(target)
            except OSError:  # another process finished first: its copy is identical
                if not target.is_dir():
                    raise
                shutil.rmtree(tmp, ignore_errors=True)
        return target

    def __repr__(self) -> str:
        return f"Dataset({self.ref!r})"


def log_model(model: Any, name: str, *, signature: Any = None, input_example: Any = None,
              flavor: str | None = None, code_ref: str | None = None,
              metrics: dict[str, float] | None = None, description: str | None = None,
              owner: str | None = None, intended_use: str | None = None,
              limitations: str | None = None,
              workspace: Workspace | None = None) -> ModelVersionInfo:
    """Register ``model`` as the next version of ``name``, linked to the active run.

    >>> dsops.log_model(clf, name="credit-risk", input_example=X_train.head())
    """
    import tempfile

    from dsops.registry.package import save_model as save_package
    from dsops.registry.service import RegistryService
    from dsops.tracking.client import active_run

    run = active_run()
    if run is not None:
        run.flush()  # the version shows the run's metrics logged so far
    ws = workspace or Workspace.open()
    with tempfile.TemporaryDirectory(prefix="dsops-model-") as tmp:
        path = save_package(model, Path(tmp) / "model", flavor=flavor, signature=signature,
                            input_example=input_example, code_ref=code_ref)
        info = {"description": description, "owner": owner, "intended_use": intended_use,
                "limitations": limitations}
        return RegistryService(ws).register(name, path, run_id=run.id if run else None,
                                            metrics=metrics, info=info).version


def save_model(model: Any, path: str | os.PathLike[str], *, signature: Any = None,
               input_example: Any = None, flavor: str | None = None,
               code_ref: str | None = None) -> Path:
    """Save ``model`` to a directory a stage's ``model:`` can name (registered by
    ``registers:`` when the stage succeeds)."""
    from dsops.registry.package import save_model as save_package

    return save_package(model, path, flavor=flavor, signature=signature,
                        input_example=input_example, code_ref=code_ref)


def load_model(ref: str, *, workspace: Workspace | None = None) -> RegisteredModel:
    """A registered version with ``predict`` (and ``predict_proba`` where it has one):
    ``dsops.load_model("credit-risk@champion")``. Files are hash-checked before loading."""
    from dsops.registry.loading import load_registered

    return load_registered(workspace or Workspace.open(), ref)
