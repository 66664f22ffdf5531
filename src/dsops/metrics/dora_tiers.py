"""The DORA performance tiers (elite, high, medium, low) of each of the four keys.

Source: DORA (Google Cloud), *Accelerate State of DevOps Report 2023*, chapter "How do you
compare?", table "Software delivery performance" (performance levels from the cluster
analysis of the survey answers):

=========  ========================  ====================  ============  ======================
level      deployment frequency      change lead time      change        failed deployment
                                                           failure rate  recovery time
=========  ========================  ====================  ============  ======================
elite      on demand                 less than one day     5 %           less than one hour
high       between once per day      between one day and   10 %          less than one day
           and once per week         one week
medium     between once per week     between one week and  15 %          between one day and
           and once per month        one month                           one week
low        between once per week     between one week and  64 %          between one month and
           and once per month        one month                           six months
=========  ========================  ====================  ============  ======================

The report describes clusters, not cut-offs: the low cluster overlaps the medium one on
throughput, and its recovery band leaves a gap (one week to one month). dsops therefore
takes the elite, high and medium bands as upper (or, for frequency, lower) bounds and
calls everything beyond the medium band "low". The change failure rates are the clusters'
typical values; dsops uses them as "at most" bounds. The 2023 report is used because it is
the most recent one whose four columns are ordered from elite to low: the 2024 report keeps
the same throughput bands but gives change failure rates of 5 %, 20 %, 10 % and 40 %
(medium lower than high), which cannot rank one team on that key alone.
"""

from __future__ import annotations

from typing import Literal

Tier = Literal["elite", "high", "medium", "low"]
TIERS: tuple[Tier, ...] = ("elite", "high", "medium", "low")

SOURCE = ("DORA (Google Cloud), Accelerate State of DevOps Report 2023, "
          "“How do you compare?”: software delivery performance levels")

HOUR = 3600.0
DAY = 24 * HOUR
WEEK = 7 * DAY
MONTH = 30 * DAY  # "one month" of the report, as a fixed length

# Deployment frequency, in production deploys per day: at least this many.
#   elite: on demand — at least once per day on average (the high band starts at once per day)
#   high: between once per day and once per week
#   medium: between once per week and once per month
DEPLOYS_PER_DAY_AT_LEAST: tuple[tuple[Tier, float], ...] = (
    ("elite", 1.0), ("high", 1 / 7), ("medium", 1 / 30))
# Lead time for changes (median), in seconds: less than.
#   elite: less than one day; high: one day to one week; medium: one week to one month
LEAD_TIME_LESS_THAN_S: tuple[tuple[Tier, float], ...] = (
    ("elite", DAY), ("high", WEEK), ("medium", MONTH))
# Change failure rate, as a share of production deploys: at most.
#   elite: 5 %; high: 10 %; medium: 15 %; (low: 64 %)
CHANGE_FAILURE_AT_MOST: tuple[tuple[Tier, float], ...] = (
    ("elite", 0.05), ("high", 0.10), ("medium", 0.15))
# Time to restore (failed deployment recovery time, median), in seconds: less than.
#   elite: less than one hour; high: less than one day; medium: one day to one week
RESTORE_LESS_THAN_S: tuple[tuple[Tier, float], ...] = (
    ("elite", HOUR), ("high", DAY), ("medium", WEEK))

THRESHOLDS: dict[str, dict[str, str]] = {
    "deployment_frequency": {"elite": ">= 1 per day", "high": ">= 1 per week",
                             "medium": ">= 1 per month (30 days)", "low": "< 1 per month"},
    "lead_time": {"elite": "< 1 day", "high": "< 1 week", "medium": "< 1 month (30 days)",
                  "low": ">= 1 month"},
    "change_failure_rate": {"elite": "<= 5 %", "high": "<= 10 %", "medium": "<= 15 %",
                            "low": "> 15 %"},
    "time_to_restore": {"elite": "< 1 hour", "high": "< 1 day", "medium": "< 1 week",
                        "low": ">= 1 week"},
}


def deployment_frequency_tier(per_day: float | None) -> Tier | None:
    """The tier of a production deploy rate (deploys per day); None without data."""
    if per_day is None:
        return None
    return next((tier for tier, bound in DEPLOYS_PER_DAY_AT_LEAST if per_day >= bound), "low")


def lead_time_tier(median_s: float | None) -> Tier | None:
    """The tier of a median lead time for changes (seconds); None without data."""
    return _below(median_s, LEAD_TIME_LESS_THAN_S)


def change_failure_tier(rate: float | None) -> Tier | None:
    """The tier of a change failure rate (0–1); None without data."""
    if rate is None:
        return None
    return next((tier for tier, bound in CHANGE_FAILURE_AT_MOST if rate <= bound), "low")


def restore_tier(median_s: float | None) -> Tier | None:
    """The tier of a median time to restore (seconds); None without data."""
    return _below(median_s, RESTORE_LESS_THAN_S)


def _below(value: float | None, bounds: tuple[tuple[Tier, float], ...]) -> Tier | None:
    if value is None:
        return None
    return next((tier for tier, bound in bounds if value < bound), "low")
