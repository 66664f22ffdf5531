"""Jinja2 templates of generated documents (model cards, gate reports) and their filters.

``*.html`` templates are autoescaped: model descriptions, dataset owners, group names and
reasons are user text. ``*.md`` templates escape table cells and HTML with the ``md``
filter instead.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from functools import cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jinja2 import Environment

__all__ = ["code", "code_cell", "environment", "md", "md_text", "num", "render", "when"]


def num(value: Any, digits: int = 4) -> str:
    """A value for a table cell: floats to ``digits`` significant digits, None as a dash."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def when(value: datetime | None) -> str:
    """A timestamp in UTC to the second, or a dash."""
    if value is None:
        return "—"
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def md_text(value: Any) -> str:
    """User text in Markdown prose: HTML tags and entities are shown, never interpreted
    (a ``<`` that cannot open a tag, as in ``x <= 1``, stays as it is)."""
    text = "" if value is None else str(value)
    text = re.sub(r"&(?=#?\w+;)", "&amp;", text)
    return re.sub(r"<(?=[A-Za-z/!?])", "&lt;", text)


def md(value: Any) -> str:
    """User text in a Markdown table cell: one line, no column breaks, HTML shown as text."""
    text = md_text(num(value) if not isinstance(value, str) else value)
    return " ".join(text.split()).replace("|", "\\|") or " "


def code(value: Any) -> str:
    """User text as a Markdown code span: shown verbatim, whatever backticks it holds."""
    text = " ".join(str(value).split())
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def code_cell(value: Any) -> str:
    """A code span in a Markdown table cell (GFM reads ``\\|`` there as a literal bar)."""
    return code(value).replace("|", "\\|")


@cache
def environment() -> Environment:
    """The shared environment: templates from this package, HTML autoescaped."""
    from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

    env = Environment(loader=PackageLoader("dsops", "templates"),
                      autoescape=select_autoescape(enabled_extensions=("html",),
                                                   default_for_string=True),
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                      keep_trailing_newline=True)
    env.filters.update(num=num, when=when, md=md, md_text=md_text, code=code, code_cell=code_cell)
    return env


def render(name: str, **context: Any) -> str:
    """Render the template ``name`` (e.g. ``model_card.html``) with ``context``."""
    return environment().get_template(name).render(**context)
