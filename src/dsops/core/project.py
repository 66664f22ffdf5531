"""Locating a project on disk (standard library only: used on the fast paths)."""

from __future__ import annotations

from pathlib import Path

CONFIG_NAME = "dsops.yaml"
STATE_DIR = ".dsops"


def find_root(start: Path) -> Path | None:
    """The nearest directory at or above ``start`` holding ``dsops.yaml``."""
    start = start.resolve()
    for directory in (start, *start.parents):
        if (directory / CONFIG_NAME).is_file():
            return directory
    return None
