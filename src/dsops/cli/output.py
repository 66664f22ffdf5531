"""Rendering shared by every command: console, JSON output, tables, progress bars."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

# Piped output (CI logs, `make demo`) gets 120 columns instead of Rich's default 80.
console = Console(highlight=False, width=None if sys.stdout.isatty() else 120)
err_console = Console(stderr=True, highlight=False)


def _default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    return str(value)


def print_json(value: Any) -> None:
    """Machine-readable output on stdout (pydantic models, dataclasses, plain values)."""
    if hasattr(value, "model_dump"):
        value = value.model_dump(mode="json")
    elif isinstance(value, list):
        value = [v.model_dump(mode="json") if hasattr(v, "model_dump") else v for v in value]
    sys.stdout.write(json.dumps(value, indent=2, default=_default) + "\n")


def table(title: str | None, columns: Sequence[str], rows: Sequence[Sequence[Any]], *,
          no_wrap: Sequence[str] = ()) -> None:
    """Print a Rich table; cell values are shown literally (no Rich markup)."""
    t = Table(title=title, title_justify="left", show_edge=False, header_style="bold")
    for col in columns:
        if col in no_wrap:
            t.add_column(col, no_wrap=True, overflow="ellipsis", max_width=60)
        else:
            t.add_column(col)
    for row in rows:
        t.add_row(*(Text("" if v is None else str(v)) if not isinstance(v, Text) else v
                    for v in row))
    console.print(t)


def when(value: datetime | None) -> str:
    """A timestamp for tables: local-free, to the second."""
    return "" if value is None else value.strftime("%Y-%m-%d %H:%M:%S")


class RichProgress:
    """A ``core.progress.Progress`` shown as a Rich bar once a phase runs over a second."""

    def __init__(self) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
        )

        self._bar = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                             MofNCompleteColumn(), TimeElapsedColumn(), console=err_console,
                             transient=True, refresh_per_second=8)
        self._task: Any = None
        self._shown = False

    def __enter__(self) -> RichProgress:
        # A bar only on a terminal: to a file or a CI log Rich's stop() prints a blank
        # line, ahead of whatever the command says next.
        self._shown = err_console.is_terminal
        if self._shown:
            self._bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._shown:
            self._bar.stop()

    def start(self, phase: str, total: int | None) -> None:
        if self._task is not None:
            self._bar.update(self._task, visible=False)
        self._task = self._bar.add_task(phase, total=total)

    def advance(self, n: int = 1) -> None:
        if self._task is not None:
            self._bar.advance(self._task, n)


def print_validation(report: dict[str, Any]) -> None:
    """The expectations report: one line per check, failures with counts and examples."""
    from dsops.data.expectations import format_report

    ok = report.get("passed")
    console.print(f"  expectations: {'[green]passed[/]' if ok else '[red]failed[/]'}")
    for line in format_report(report):
        console.print(f"    {escape(line)}")


def write_output(path: Path, text: str) -> None:
    """Write a report the user asked for to ``path`` (missing folders are created); a path
    that cannot be written is a clear error, not a traceback."""
    from dsops.core.errors import UsageError

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}",
                         hint="check that the path names a file in a writable folder") from None
