"""Progress reporting from services, without services knowing about terminals."""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    """Receives the phases of a long operation; the CLI shows them as Rich bars."""

    def start(self, phase: str, total: int | None) -> None:
        """A new phase begins, with ``total`` units of work if known."""

    def advance(self, n: int = 1) -> None:
        """``n`` more units of the current phase are done."""


class NoProgress:
    """Discards progress (the default for SDK and API callers)."""

    def start(self, phase: str, total: int | None) -> None:
        pass

    def advance(self, n: int = 1) -> None:
        pass
