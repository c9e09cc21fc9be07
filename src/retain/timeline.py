"""Time in retain: the day, the cutoff, the units and the horizons. The one place dates are made.

- A **day** is a calendar day, held as a midnight :class:`pandas.Timestamp` (tz-naive). Every
  date a user gives (a config date, ``--as-of``, a cutoff) becomes one with :func:`day`; the
  time of day, if any, is dropped.
- A **cutoff** (as-of date) includes its whole day: data up to :func:`cutoff_end` (the next
  midnight, exclusive) is known at the cutoff, nothing later.
- **Units**: days (``D``) and weeks (``W``, 7 days) for the BTYD models; a **month** is
  ``365.25 / 12`` days (the average Gregorian month), so 12 months are a year.
- **Horizons**: the churn horizon is a whole number of days (``churn.horizon_days``); the CLV
  horizon is a whole number of months (``clv.horizon_months``), which :func:`horizon_days`
  turns into whole days where a rule needs days.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd

DateLike = dt.date | str | pd.Timestamp
"""Anything :func:`day` accepts: a date, a ``YYYY-MM-DD`` string or a timestamp."""

UNIT_DAYS: dict[str, float] = {"D": 1.0, "W": 7.0}
"""Days per BTYD time unit."""

DAYS_PER_MONTH = 365.25 / 12
"""Days in an average month (``30.4375``)."""

__all__ = [
    "DAYS_PER_MONTH",
    "UNIT_DAYS",
    "DateLike",
    "day",
    "cutoff_end",
    "days_to_units",
    "horizon_days",
    "iso_day",
]


def day(value: DateLike) -> pd.Timestamp:
    """The calendar day of ``value`` as a midnight timestamp.

    Parameters
    ----------
    value : date, str or Timestamp
        A date, an ISO ``YYYY-MM-DD`` string or a timestamp (its time of day is dropped).

    Returns
    -------
    Timestamp
        Midnight of that day, tz-naive.
    """
    return pd.Timestamp(pd.Timestamp(value).date())


def cutoff_end(value: DateLike) -> pd.Timestamp:
    """The exclusive end of a cutoff day: the next midnight.

    Parameters
    ----------
    value : date, str or Timestamp
        The cutoff.

    Returns
    -------
    Timestamp
        ``day(value) + 1 day``; a timestamp before it belongs to the cutoff or earlier.
    """
    return day(value) + pd.Timedelta(days=1)


def iso_day(value: DateLike) -> str:
    """``YYYY-MM-DD`` of the calendar day of ``value``."""
    return day(value).date().isoformat()


def days_to_units(days: float, unit: str) -> float:
    """A number of days in a BTYD time unit (``D`` or ``W``).

    Parameters
    ----------
    days : float
        Days.
    unit : {"D", "W"}
        The unit.

    Returns
    -------
    float
        ``days / UNIT_DAYS[unit]``.
    """
    return days / UNIT_DAYS[unit]


def horizon_days(months: int) -> int:
    """The CLV horizon in whole days (``12`` months -> ``365`` days).

    Parameters
    ----------
    months : int
        The CLV horizon in months.

    Returns
    -------
    int
        ``months x 365.25 / 12`` rounded to whole days.
    """
    return round(months * DAYS_PER_MONTH)
