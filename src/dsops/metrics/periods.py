"""Report windows and calendar buckets (UTC days, ISO weeks from Monday, calendar months),
and the order statistics the reports use (median and percentiles, linearly interpolated)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime, timedelta

from dsops.core.clock import as_utc as utc
from dsops.core.durations import parse_duration
from dsops.core.errors import UsageError

GRANULARITIES = ("day", "week", "month")


def parse_window(since: str | datetime, until: str | datetime | None,
                 now: datetime) -> tuple[datetime, datetime]:
    """``[start, end)`` of a report: ``since`` is a duration back from ``until`` (``90d``,
    ``12w``) or a date/time; ``until`` a date/time, default ``now``."""
    end = _moment(until, "--until") if until is not None else utc(now)
    if isinstance(since, datetime):
        start = utc(since)
    else:
        try:
            start = end - timedelta(seconds=parse_duration(since))
        except ValueError:
            start = _moment(since, "--since")
    if start >= end:
        raise UsageError(f"the report window is empty: it starts at {start:%Y-%m-%d %H:%M} "
                         f"and ends at {end:%Y-%m-%d %H:%M}",
                         hint="--since must be before --until")
    return start, end


def check_granularity(by: str) -> str:
    """``by`` when it is a known bucket size."""
    if by not in GRANULARITIES:
        raise UsageError(f"unknown period {by!r}: use {', '.join(GRANULARITIES)}")
    return by


def bucket_start(when: datetime, by: str) -> datetime:
    """The start of the calendar bucket holding ``when``."""
    day = utc(when).replace(hour=0, minute=0, second=0, microsecond=0)
    if by == "day":
        return day
    if by == "week":
        return day - timedelta(days=day.weekday())
    return day.replace(day=1)


def next_bucket(start: datetime, by: str) -> datetime:
    """The start of the bucket after the one starting at ``start``."""
    if by == "day":
        return start + timedelta(days=1)
    if by == "week":
        return start + timedelta(days=7)
    return start.replace(year=start.year + 1, month=1) if start.month == 12 \
        else start.replace(month=start.month + 1)


def bucket_label(start: datetime, by: str) -> str:
    """``2026-01-05`` (day), ``2026-W02`` (ISO week), ``2026-01`` (month)."""
    if by == "day":
        return f"{start:%Y-%m-%d}"
    if by == "week":
        year, week, _ = start.isocalendar()
        return f"{year}-W{week:02d}"
    return f"{start:%Y-%m}"


def buckets(start: datetime, end: datetime, by: str) -> list[tuple[str, datetime, datetime]]:
    """Every bucket overlapping ``[start, end)``: label, and its bounds clipped to the window."""
    out = []
    at = bucket_start(start, by)
    while at < end:
        after = next_bucket(at, by)
        out.append((bucket_label(at, by), max(at, start), min(after, end)))
        at = after
    return out


def median(values: Sequence[float]) -> float | None:
    """The median (mean of the two middle values for an even count); None when empty."""
    return percentile(values, 0.5)


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q`` quantile with linear interpolation between order statistics (NumPy's
    default): position ``q * (n - 1)`` in the sorted values. None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    position = q * (len(ordered) - 1)
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _moment(text: str | datetime, option: str) -> datetime:
    if isinstance(text, datetime):
        return utc(text)
    try:
        return utc(datetime.fromisoformat(text.strip()))
    except ValueError:
        expected = "a duration like 90d or 12w, or " if option == "--since" else ""
        raise UsageError(f"invalid {option} {text!r}: expected {expected}a date like 2026-01-31 "
                         "or a time like 2026-01-31T12:00") from None
