"""Engagement features from events (sessions, e-mails, tickets, surveys, referrals) as of a cutoff.

Only events dated on or before the cutoff day are used. The vocabulary is open: the roles
(:data:`retain.contracts.EVENT_ROLES`, the source's names mapped onto them at validation) get
the named features below, always; any other event type gets generic per-type features.

Generic per-type features
-------------------------
A type's name is slugged (:func:`event_type_slug`: lower case, every run of characters outside
``[a-z0-9]`` becomes one ``_``). Types whose slugs collide (``Page View`` and ``page-view``) are
one generic type and are counted together; a slug equal to a role name or whose
``days_since_<slug>`` would name an existing column (``last_purchase``, ``last_<role>``) gets
``_event`` appended; a name with no ``[a-z0-9]`` character becomes ``type_<8 hex digits of its
SHA-1>``. Which types get features: the given list (``features.event_types``) when there is
one, else the ``features.event_types_top_n`` most frequent non-role types among the events
before the cutoff (:func:`top_event_types`; ties by slug), so the choice, like every value,
depends only on data up to the cutoff. For each chosen ``<slug>`` and window ``w``:

``events_<slug>_<w>d``
    Number of events of that type in the trailing ``w``-day window.
``days_since_<slug>``
    Days from the last event of that type to the cutoff; NaN when there is none.

A chosen type with no event at all still gets its columns (0 counts, NaN days), so a model
trained on a type can be scored on data where it is absent. The generic columns come first,
then the role columns.

Role features (for every role ``<type>`` and trailing window ``w``):

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
import hashlib
import re
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from retain.contracts import CUSTOMER_ID, EVENT_ROLES, TIMESTAMP
from retain.features.behaviour import DEFAULT_WINDOWS_DAYS, _check_windows, normalised_trend
from retain.features.rfm import cutoff_day, epoch_days
from retain.timeline import cutoff_end

COUNT_FILL_COLUMNS_SUFFIX = "_count_"
GENERIC_COUNT_PREFIX = "events_"
DEFAULT_TOP_N = 5

_RESERVED_SLUGS = frozenset(
    {*EVENT_ROLES, "last_purchase", *(f"last_{role}" for role in EVENT_ROLES)}
)
_GENERIC_COUNT = re.compile(r"^events_(?P<slug>[a-z0-9_]+)_(?P<w>\d+)d$")


def event_type_slug(name: str) -> str:
    """The ``[a-z0-9_]`` name of an event type in feature column names.

    Parameters
    ----------
    name : str
        An event type as in the validated events (any text).

    Returns
    -------
    str
        Lower case, runs of other characters as one ``_``, no leading or trailing ``_``;
        ``_event`` appended when the slug is reserved (a role name, ``last_purchase``,
        ``last_<role>``); ``type_<sha1[:8]>`` when nothing is left.
    """
    slug = re.sub(r"[^a-z0-9]+", "_", str(name).strip().lower()).strip("_")
    if not slug:
        return "type_" + hashlib.sha1(str(name).encode("utf-8")).hexdigest()[:8]
    return slug + "_event" if slug in _RESERVED_SLUGS else slug


def _slugs(event_types: Iterable[str]) -> tuple[str, ...]:
    """Distinct slugs of ``event_types`` in first-seen order."""
    return tuple(dict.fromkeys(event_type_slug(t) for t in event_types))


def generic_column_names(
    event_types: Iterable[str], windows_days: Sequence[int] = DEFAULT_WINDOWS_DAYS
) -> list[str]:
    """The generic per-type columns of ``event_types`` (slugged), in order.

    Parameters
    ----------
    event_types : iterable of str
        Generic event types (names or slugs).
    windows_days : sequence of int
        Trailing window lengths.

    Returns
    -------
    list of str
        ``events_<slug>_<w>d`` for every window, then ``days_since_<slug>``, per type.
    """
    cols = []
    for slug in _slugs(event_types):
        cols += [f"{GENERIC_COUNT_PREFIX}{slug}_{w}d" for w in windows_days]
        cols.append(f"days_since_{slug}")
    return cols


def generic_event_types(columns: Iterable[str]) -> tuple[str, ...]:
    """The generic event types (slugs) whose columns are among ``columns``.

    What a model trained on generic features needs at scoring: pass the result as
    ``FeatureConfig.event_types`` so :func:`engagement_features` makes exactly those columns.

    Parameters
    ----------
    columns : iterable of str
        Column names, e.g. a churn model's ``feature_names``.

    Returns
    -------
    tuple of str
        Slugs in first-seen order (from ``events_<slug>_<w>d`` and ``days_since_<slug>``).
    """
    out: dict[str, None] = {}
    for col in columns:
        match = _GENERIC_COUNT.match(col)
        if match is not None:
            out[match.group("slug")] = None
        elif col.startswith("days_since_") and col[len("days_since_") :] not in _RESERVED_SLUGS:
            out[col[len("days_since_") :]] = None
    return tuple(out)


def _before_cutoff(events: pd.DataFrame, cutoff: dt.date | str) -> np.ndarray:
    ns = events[TIMESTAMP].to_numpy(dtype="datetime64[ns]").view(np.int64)
    return ns < np.datetime64(cutoff_end(cutoff), "ns").astype(np.int64)


def _slug_codes(types: pd.Series) -> tuple[np.ndarray, pd.Index]:
    """Per row: code into the returned slugs, -1 for roles and missing types."""
    code, uniques = pd.factorize(types.astype("string"), use_na_sentinel=True)
    names = [None if t in EVENT_ROLES else event_type_slug(t) for t in uniques]
    slugs = pd.Index(sorted({n for n in names if n is not None}), dtype=object)
    lookup = np.array([-1 if n is None else slugs.get_loc(n) for n in names] + [-1])
    return lookup[code], slugs


def top_event_types(
    events: pd.DataFrame | None, cutoff: dt.date | str, n: int = DEFAULT_TOP_N
) -> tuple[str, ...]:
    """The ``n`` most frequent non-role event types (slugs) among the events before the cutoff.

    Parameters
    ----------
    events : DataFrame or None
        Validated events.
    cutoff : date or str
        The as-of date; only events on or before that day count.
    n : int
        How many types.

    Returns
    -------
    tuple of str
        Slugs, most frequent first, ties by slug; fewer when the data has fewer types.
    """
    if events is None or n <= 0 or len(events) == 0:
        return ()
    mask = _before_cutoff(events, cutoff)
    code, slugs = _slug_codes(events["event_type"][mask])
    counts = np.bincount(code[code >= 0], minlength=len(slugs))
    order = sorted(range(len(slugs)), key=lambda i: (-counts[i], slugs[i]))
    return tuple(str(slugs[i]) for i in order if counts[i] > 0)[:n]


def engagement_column_names(
    windows_days: Sequence[int] = DEFAULT_WINDOWS_DAYS, event_types: Iterable[str] = ()
) -> list[str]:
    """The columns :func:`engagement_features` returns, in order.

    Parameters
    ----------
    windows_days : sequence of int
        Trailing window lengths.
    event_types : iterable of str
        The generic event types (names or slugs); their columns come first.

    Returns
    -------
    list of str
        Column names.
    """
    cols = generic_column_names(event_types, windows_days)
    for t in EVENT_ROLES:
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
        True for event counts (generic ``events_<slug>_<w>d`` included) and
        ``referrals_total``.
    """
    return (
        COUNT_FILL_COLUMNS_SUFFIX in column
        or _GENERIC_COUNT.match(column) is not None
        or column == "referrals_total"
    )


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
    event_types: Sequence[str] | None = None,
    top_n: int = DEFAULT_TOP_N,
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
    event_types : sequence of str, optional
        The generic event types to make columns for (``features.event_types``; names or
        slugs), whether or not they occur. None: the ``top_n`` most frequent non-role types
        before the cutoff (:func:`top_event_types`).
    top_n : int
        How many generic types when ``event_types`` is None (``features.event_types_top_n``).

    Returns
    -------
    DataFrame or None
        None when ``events`` is None. Otherwise indexed by ``customer_id`` (sorted), one row per
        customer with at least one event of a role or a chosen type by the cutoff, columns as
        listed by :func:`engagement_column_names` and defined in the module docstring. Counts
        are int64, the rest float64.
    """
    if events is None:
        return None
    _check_windows(windows_days, trend_window_days)
    generic = (
        _slugs(event_types) if event_types is not None else top_event_types(events, cutoff, top_n)
    )
    cols = engagement_column_names(windows_days, generic)
    ns = events[TIMESTAMP].to_numpy(dtype="datetime64[ns]").view(np.int64)
    types = events["event_type"].astype("string")
    type_code = pd.Index(EVENT_ROLES).get_indexer(types)
    slug_code, slugs = _slug_codes(types)
    chosen = pd.Index(generic, dtype=object).get_indexer(slugs)
    chosen_code = np.append(chosen, -1)[slug_code]
    type_code = np.where(
        (type_code < 0) & (chosen_code >= 0), len(EVENT_ROLES) + chosen_code, type_code
    )
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
    all_types = (*EVENT_ROLES, *generic)
    n_types = len(all_types)
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
    for j, t in enumerate(all_types):
        is_role = j < len(EVENT_ROLES)
        for w in windows_days:
            name = f"{t}_count_{w}d" if is_role else f"{GENERIC_COUNT_PREFIX}{t}_{w}d"
            data[name] = counts_by_window[w][:, j].astype(np.int64)
        col = min_age[:, j]
        data[f"days_since_last_{t}" if is_role else f"days_since_{t}"] = np.where(
            col == np.iinfo(np.int64).max, np.nan, col.astype(float)
        )
    longest = counts_by_window[max(windows_days)]
    sent = longest[:, EVENT_ROLES.index("email_sent")].astype(float)
    for name, kind in (("email_click_rate", "email_click"), ("email_open_rate", "email_open")):
        rate = np.full(n_cust, np.nan)
        np.divide(longest[:, EVENT_ROLES.index(kind)], sent, out=rate, where=sent > 0)
        data[name] = rate
    for name, kind in (("last_satisfaction", "support_ticket"), ("last_nps", "survey")):
        sel = tcode == EVENT_ROLES.index(kind)
        data[name] = _last_value(code[sel], ns[sel], value[sel], n_cust)
    data["referrals_total"] = np.bincount(
        code[tcode == EVENT_ROLES.index("referral")], minlength=n_cust
    ).astype(np.int64)
    t = int(trend_window_days)
    sessions = tcode == EVENT_ROLES.index("session")
    data["engagement_trend"] = normalised_trend(
        np.bincount(code[sessions & (age < t)], minlength=n_cust),
        np.bincount(code[sessions & (age >= t) & (age < 2 * t)], minlength=n_cust),
    )
    return pd.DataFrame({c: data[c] for c in cols}, index=customers, copy=False)
