"""What a run records about where it ran: git commit and dirtiness, Python, packages."""

from __future__ import annotations

import functools
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any


def git_state(root: Path) -> tuple[str | None, bool | None]:
    """The HEAD commit and whether the work tree has changes (None, None outside git)."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True,
                                text=True, timeout=10)
        if commit.returncode != 0:
            return None, None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=root, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None, None
    return commit.stdout.strip(), bool(dirty.stdout.strip())


def environment_lock() -> dict[str, Any]:
    """Python version and the installed package set (name → version), sorted."""
    lock = _environment_lock()
    return {"python": lock["python"], "packages": dict(lock["packages"])}


@functools.cache
def _environment_lock() -> dict[str, Any]:
    # Once per process: reading every package's metadata costs ~0.8 s with ~500 packages
    # installed, and a pipeline starts a run per stage.
    packages = {}
    for dist in metadata.distributions():
        name = dist.metadata.get("Name")
        if name:
            packages[name.lower()] = dist.version
    return {"python": platform.python_version(),
            "packages": dict(sorted(packages.items()))}
