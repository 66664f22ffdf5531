"""dsops: DevOps for data science.

The Python SDK surface is stated here once; everything else may change. Names are
imported lazily so that ``import dsops`` (and every CLI call) stays cheap.
"""

from __future__ import annotations

# Not `from typing import TYPE_CHECKING`: every CLI call imports this package, and
# typing costs ~10 ms of the no-op `dsops status` budget.
TYPE_CHECKING = False

__version__ = "0.1.0"
__all__ = ["Dataset", "Workspace", "__version__"]

if TYPE_CHECKING:
    from dsops.sdk import Dataset
    from dsops.workspace import Workspace

_LAZY = {"Dataset": "dsops.sdk", "Workspace": "dsops.workspace"}


def __getattr__(name: str) -> object:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'dsops' has no attribute {name!r}")
