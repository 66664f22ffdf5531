"""Pipelines: stages declared in ``dsops.yaml``, cached by content, run locally or on Dask."""

from dsops.pipelines.models import PipelineResult, StageResult, StageStatus

__all__ = ["PipelineResult", "StageResult", "StageStatus"]
