"""Engagement features from events (sessions, e-mails, tickets, surveys, referrals) as of a cutoff.

Only events dated on or before the cutoff day are used. Event types are the known
:data:`retain.contracts.EVENT_TYPES`; rows of any other type are ignored, so the set of columns
depends only on the window settings, never on which types happen to occur in the data.

Definitions (for every known event type ``<type>`` and trailing window ``w``):

``<type>_count_<w>d``
    Number of events of that type in the trailing ``w``-day window (the cutoff day and the
    ``w - 1`` days before it).
``days_since_last_<type>``
    Days from the last event of that type to the cutoff; NaN when there is none.
``email_click_rate``
    E-mail clicks divided by e-mails sent, both counted over the longest trailing window
    (a click-through rate). NaN when no e-mail was sent in that window.
``email_open_rate``
    E-mail opens divided by e-mails sent over the same window; NaN when none was sent.
``last_satisfaction``
    ``value`` of the latest ``support_ticket`` (satisfaction score, 1-5); NaN when none.
``last_nps``
    ``value`` of the latest ``survey`` answer (0-10); NaN when none.
``referrals_total``
    Number of ``referral`` events up to the cutoff (all history).
``engagement_trend``
    Sessions in the trailing ``trend_window_days`` window against the window of the same length
    before it, as ``(recent - earlier) / (recent + earlier)``; NaN when both are 0.

The "latest" event is the one with the greatest timestamp; equal timestamps are resolved by
taking the greater value, so the result never depends on row order.

Without an events table there are no engagement columns at all (``None`` in, ``None`` out):
absent data is never turned into zeros.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import numpy as np
import pandas as pd

from retain.contracts import CUSTOMER_ID, EVENT_TYPES, TIMESTAMP
from retain.features.behaviour import DEFAULT_WINDOWS_DAYS, _check_windows, normalised_trend
from retain.features.rfm import cutoff_day, epoch_days
from retain.timeline import cutoff_end

COUNT_FILL_COLUMNS_SUFFIX = "_count_"


def engagement_column_names(windows_days: Sequence[int] = DEFAULT_WINDOWS_DAYS) -> list[str]:
    """The columns :func:`engagement_features` returns, in order.

    Parameters
    ----------
    windows_days : sequence of int
        Trailing window lengths.

    Returns
    -------
    list of str
        Column names.
    """
    cols = []
    for t in EVENT_TYPES:
        cols += [f"{t}_count_{w}d" for w in windows_days]
        cols.append(f"days_since_last_{t}")
    cols += [
        "email_click_rate",
        "email_open_rate",
        "last_satisfaction",
        "last_nps",
        "referrals_total",
        "engagement_trend",
    ]
    return cols


def zero_when_absent(column: str) -> bool:
    """Whether a customer without any event has 0 (a count) rather than NaN in ``column``.

    Parameters
    ----------
    column : str
        An engagement column name.

    Returns
    -------
    bool
        True for event counts and ``referrals_total``.
    """
    return COUNT_FILL_COLUMNS_SUFFIX in column or column == "referrals_total"


def _last_value(code: np.ndarray, ns: np.ndarray, value: np.ndarray, n_cust: int) -> np.ndarray:
    out = np.full(n_cust, np.nan)
    if len(code) == 0:
        return out
    # Sort by customer, timestamp, value (NaN last in numpy sorts: a missing value at the same
    # instant loses against a present one); the last row per customer is the latest.
    order = np.lexsort((np.nan_to_num(value, nan=-np.inf), ns, code))
    c = code[order]
    last = np.r_[c[1:] != c[:-1], True]
    out[c[last]] = value[order][last]
    return out


def engagement_features(
    events: pd.DataFrame | None,
    cutoff: dt.date | str,
    windows_days: Sequence[int] = DEFAULT_WINDOWS_DAYS,
    trend_window_days: int = 90,
) -> pd.DataFrame | None:
    """Engagement per customer as of ``cutoff`` (the cutoff day included).

    Parameters
    ----------
    events : DataFrame or None
        Validated events (``customer_id``, ``timestamp``, ``event_type``, optional ``value``),
        or None when the source has no events.
    cutoff : date or str
        The as-of date (required).
    windows_days : sequence of int
        Trailing window lengths in days.
    trend_window_days : int
        Length of the recent and the earlier window of ``engagement_trend``.

    Returns
    -------
    DataFrame or None
        None when ``events`` is None. Otherwise indexed by ``customer_id`` (sorted), one row per
        customer with at least one known event by the cutoff, columns as listed by
        :func:`engagement_column_names` and defined in the module docstring. Counts are int64,
        the rest float64.
    """
    if events is None:
        return None
    _check_windows(windows_days, trend_window_days)
    cols = engagement_column_names(windows_days)
    ns = events[TIMESTAMP].to_numpy(dtype="datetime64[ns]").view(np.int64)
    type_code = pd.Index(EVENT_TYPES).get_indexer(events["event_type"].astype("string"))
    mask = (ns < np.datetime64(cutoff_end(cutoff), "ns").astype(np.int64)) & (type_code >= 0)
    ns = ns[mask]
    tcode = type_code[mask].astype(np.int64)
    code, customers = pd.factorize(events[CUSTOMER_ID][mask], sort=True)
    customers = pd.Index(customers, dtype="string", name=CUSTOMER_ID)
    n_cust = len(customers)
    if "value" in events:
        value = events["value"].to_numpy(float, na_value=np.nan)[mask]
    else:
        value = np.full(len(ns), np.nan)
    age = cutoff_day(cutoff) - epoch_days(ns)
    n_types = len(EVENT_TYPES)
    key = code * n_types + tcode
    size = n_cust * n_types
    data: dict[str, np.ndarray] = {}
    counts_by_window = {}
    for w in windows_days:
        inside = age < w
        counts_by_window[w] = np.bincount(key[inside], minlength=size).reshape(n_cust, n_types)
    min_age = np.full(size, np.iinfo(np.int64).max)
    np.minimum.at(min_age, key, age)
    min_age = min_age.reshape(n_cust, n_types)
    for j, t in enumerate(EVENT_TYPES):
        for w in windows_days:
            data[f"{t}_count_{w}d"] = counts_by_window[w][:, j].astype(np.int64)
        col = min_age[:, j]
        data[f"days_since_last_{t}"] = np.where(
            col == np.iinfo(np.int64).max, np.nan, col.astype(float)
        )
    longest = counts_by_window[max(windows_days)]
    sent = longest[:, EVENT_TYPES.index("email_sent")].astype(float)
    for name, kind in (("email_click_rate", "email_click"), ("email_open_rate", "email_open")):
        rate = np.full(n_cust, np.nan)
        np.divide(longest[:, EVENT_TYPES.index(kind)], sent, out=rate, where=sent > 0)
        data[name] = rate
    for name, kind in (("last_satisfaction", "support_ticket"), ("last_nps", "survey")):
        sel = tcode == EVENT_TYPES.index(kind)
        data[name] = _last_value(code[sel], ns[sel], value[sel], n_cust)
    data["referrals_total"] = np.bincount(
        code[tcode == EVENT_TYPES.index("referral")], minlength=n_cust
    ).astype(np.int64)
    t = int(trend_window_days)
    sessions = tcode == EVENT_TYPES.index("session")
    data["engagement_trend"] = normalised_trend(
        np.bincount(code[sessions & (age < t)], minlength=n_cust),
        np.bincount(code[sessions & (age >= t) & (age < 2 * t)], minlength=n_cust),
    )
    return pd.DataFrame({c: data[c] for c in cols}, index=customers, copy=False)
