"""What a run records about where it ran: git commit and dirtiness, Python, packages."""

from __future__ import annotations

import functools
import os
import platform
import re
import subprocess
import sys
from pathlib import Path
from typing import Any


def git_state(root: Path) -> tuple[str | None, bool | None]:
    """The HEAD commit and whether tracked files have changes (None, None outside git or
    before the first commit).

    One ``git status --porcelain=v2 --branch`` gives both (it was ``rev-parse`` and
    ``status``: two processes per run). ``--no-optional-locks`` keeps it from refreshing
    the index, which would take ``index.lock`` under a concurrent ``git add`` or commit.
    """
    try:
        status = subprocess.run(
            ["git", "--no-optional-locks", "status", "--porcelain=v2", "--branch",
             "--untracked-files=no"],
            cwd=root, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None, None
    if status.returncode != 0:
        return None, None
    commit, dirty = None, False
    for line in status.stdout.splitlines():
        if line.startswith("# branch.oid "):
            commit = line[len("# branch.oid "):].strip()
        elif line and not line.startswith("#"):
            dirty = True
    if commit in (None, "(initial)"):
        return None, None
    return commit, dirty


def environment_lock() -> dict[str, Any]:
    """Python version and the installed package set (name → version), sorted."""
    lock = _environment_lock()
    return {"python": lock["python"], "packages": dict(lock["packages"])}


@functools.cache
def _environment_lock() -> dict[str, Any]:
    # From the names of the ``*.dist-info`` directories on sys.path (``name-version``),
    # as installers write them: a directory listing, ~1 ms, where reading every
    # package's metadata took ~0.8 s with a few hundred packages (once per process).
    packages: dict[str, str] = {}
    for entry in sys.path:
        try:
            names = os.listdir(entry or ".")
        except OSError:
            continue
        for name in names:
            if name.endswith(".dist-info"):
                package, _, version = name[: -len(".dist-info")].partition("-")
                if version:
                    packages.setdefault(_normalise(package), version)
    return {"python": platform.python_version(), "packages": dict(sorted(packages.items()))}


def _normalise(name: str) -> str:
    """PEP 503 normalisation: ``Foo_Bar.baz`` → ``foo-bar-baz``."""
    return re.sub(r"[-_.]+", "-", name).lower()
