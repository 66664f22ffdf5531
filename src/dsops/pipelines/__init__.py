"""Pipelines: stages declared in ``dsops.yaml``, cached by content, run locally or on Dask.

Names are imported lazily: the no-op fast path (``pipelines.fastpath``) is imported on
every ``dsops run`` and must not pull in pydantic through ``models``.
"""

from __future__ import annotations

TYPE_CHECKING = False

__all__ = ["PipelineResult", "StageResult", "StageStatus"]

if TYPE_CHECKING:
    from dsops.pipelines.models import PipelineResult, StageResult, StageStatus


def __getattr__(name: str) -> object:
    if name in __all__:
        from dsops.pipelines import models

        return getattr(models, name)
    raise AttributeError(f"module 'dsops.pipelines' has no attribute {name!r}")
