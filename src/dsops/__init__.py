"""dsops: DevOps for data science.

The Python SDK surface is stated here once; everything else may change. Names are
imported lazily so that ``import dsops`` (and every CLI call) stays cheap.
"""

from __future__ import annotations

# Not `from typing import TYPE_CHECKING`: every CLI call imports this package, and
# typing costs ~10 ms of the no-op `dsops status` budget.
TYPE_CHECKING = False

__version__ = "0.1.0"
__all__ = [
    "ActiveRun",
    "Dataset",
    "Workspace",
    "__version__",
    "active_run",
    "load_model",
    "log_artifact",
    "log_metric",
    "log_metrics",
    "log_model",
    "log_param",
    "log_params",
    "save_model",
    "start_run",
]

if TYPE_CHECKING:
    from dsops.sdk import Dataset, load_model, log_model, save_model
    from dsops.tracking.client import (
        ActiveRun,
        active_run,
        log_artifact,
        log_metric,
        log_metrics,
        log_param,
        log_params,
        start_run,
    )
    from dsops.workspace import Workspace

_TRACKING = ("ActiveRun", "active_run", "log_artifact", "log_metric", "log_metrics", "log_param",
             "log_params", "start_run")
_SDK = ("Dataset", "load_model", "log_model", "save_model")
_LAZY = {**dict.fromkeys(_SDK, "dsops.sdk"), "Workspace": "dsops.workspace",
         **dict.fromkeys(_TRACKING, "dsops.tracking.client")}


def __getattr__(name: str) -> object:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        # Cached: `dsops.log_metric(...)` in a training loop must not pay this lookup per call.
        globals()[name] = value
        return value
    raise AttributeError(f"module 'dsops' has no attribute {name!r}")
