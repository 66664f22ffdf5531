"""Durations as people write them in dsops.yaml and on the command line: ``90s``, ``5m``,
``1h``, ``7d``, ``2w`` (or a bare number of seconds)."""

from __future__ import annotations

import re

from dsops.core.errors import UsageError

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$")


class DurationError(UsageError, ValueError):
    """A malformed duration: a usage error on the command line, and a ValueError for the
    dsops.yaml validators (which report it with file, line and key)."""


def parse_duration(text: str | float | int) -> float:
    """Seconds in ``text``; a malformed duration is a DurationError naming the expected shape."""
    if isinstance(text, int | float) and not isinstance(text, bool):
        seconds = float(text)
    else:
        match = _DURATION.match(str(text))
        if not match:
            raise DurationError(f"invalid duration {text!r}: expected a number and a unit, "
                             "e.g. 30s, 5m, 1h, 7d, 2w")
        seconds = float(match.group(1)) * _UNITS[match.group(2) or "s"]
    if seconds <= 0:
        raise DurationError(f"invalid duration {text!r}: must be more than zero")
    return seconds


def parse_retention(text: str) -> float:
    """Seconds in a retention of the prediction log (``predictions.retention``,
    ``--older-than``): a duration of a day or more, as the log is kept by whole days."""
    seconds = parse_duration(text)
    if seconds < 86400:
        raise DurationError(f"retention {text!r} is under a day: the log is kept by whole days, "
                            "e.g. 30d, 13w")
    return seconds
