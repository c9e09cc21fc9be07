"""Purchase behaviour features as of a cutoff: timing, gaps, trailing windows, trends, basket.

All features are computed from purchase occasions (same-day transactions merged, see
:mod:`retain.features.rfm`) dated on or before the cutoff day. Days are calendar days; the
cutoff day is day 0 of every trailing window, so a window of ``w`` days covers the cutoff day and
the ``w - 1`` days before it.

Definitions (NaN marks a quantity that is undefined for the customer, never a guess):

``tenure_days``
    Days from the first occasion to the cutoff.
``days_since_last_purchase``
    Days from the last occasion to the cutoff (0 when the customer bought on the cutoff day).
``n_occasions``
    Number of purchase occasions (``frequency + 1``).
``mean_gap_days``
    Mean gap in days between consecutive occasions; NaN with fewer than 2 occasions.
``std_gap_days``
    Sample standard deviation (``ddof=1``) of those gaps; NaN with fewer than 2 gaps
    (fewer than 3 occasions).
``gap_ratio``
    ``days_since_last_purchase / mean_gap_days``: how overdue the next purchase is against the
    customer's usual rhythm (1 = one usual gap). NaN when ``mean_gap_days`` is NaN.
``spend_<w>d``, ``occasions_<w>d``
    Amount spent and number of occasions in the trailing ``w``-day window.
``spend_trend``, ``frequency_trend``
    ``(recent - earlier) / (recent + earlier)`` where *recent* is the trailing
    ``trend_window_days`` window and *earlier* the window of the same length just before it:
    +1 = all activity is recent, -1 = all activity is in the earlier window, 0 = level.
    NaN when both windows are empty. Customers younger than two windows have a partly empty
    earlier window, which pushes the trend up; read it together with ``tenure_days``.
``mean_basket_size``
    Quantity per occasion (only when the transactions carry ``quantity``; missing = 0).
``total_spend``, ``avg_occasion_value``
    Sum of all occasion amounts (including the first) and that sum per occasion.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import numpy as np
import pandas as pd

from retain.features.rfm import OccasionArrays, cutoff_day, occasion_arrays

__all__ = [
    "DEFAULT_WINDOWS_DAYS",
    "behaviour_column_names",
    "behaviour_features",
    "behaviour_from_arrays",
    "normalised_trend",
]

DEFAULT_WINDOWS_DAYS: tuple[int, ...] = (30, 90, 180, 365)


def behaviour_column_names(
    windows_days: Sequence[int] = DEFAULT_WINDOWS_DAYS, with_quantity: bool = True
) -> list[str]:
    """The columns :func:`behaviour_features` returns, in order.

    Parameters
    ----------
    windows_days : sequence of int
        Trailing window lengths.
    with_quantity : bool
        Whether the transactions carry ``quantity`` (adds ``mean_basket_size``).

    Returns
    -------
    list of str
        Column names.
    """
    cols = [
        "tenure_days",
        "days_since_last_purchase",
        "n_occasions",
        "mean_gap_days",
        "std_gap_days",
        "gap_ratio",
    ]
    for w in windows_days:
        cols += [f"spend_{w}d", f"occasions_{w}d"]
    cols += ["spend_trend", "frequency_trend"]
    if with_quantity:
        cols.append("mean_basket_size")
    cols += ["total_spend", "avg_occasion_value"]
    return cols


def normalised_trend(recent: np.ndarray, earlier: np.ndarray) -> np.ndarray:
    """``(recent - earlier) / (recent + earlier)``, NaN where both are 0.

    Parameters
    ----------
    recent, earlier : ndarray
        Non-negative activity in the recent window and in the window before it.

    Returns
    -------
    ndarray of float
        Values in [-1, 1], NaN where there is no activity in either window.
    """
    recent = np.asarray(recent, dtype=float)
    earlier = np.asarray(earlier, dtype=float)
    total = recent + earlier
    out = np.full(total.shape, np.nan)
    np.divide(recent - earlier, total, out=out, where=total > 0)
    return out


def _check_windows(windows_days: Sequence[int], trend_window_days: int) -> None:
    if not len(windows_days) or any(int(w) <= 0 for w in windows_days):
        raise ValueError(f"windows_days must be positive day counts, got {tuple(windows_days)}")
    if len(set(windows_days)) != len(windows_days):
        raise ValueError(f"windows_days must be distinct, got {tuple(windows_days)}")
    if int(trend_window_days) <= 0:
        raise ValueError(f"trend_window_days must be positive, got {trend_window_days}")


def behaviour_from_arrays(
    occ: OccasionArrays,
    cutoff: dt.date | str,
    windows_days: Sequence[int] = DEFAULT_WINDOWS_DAYS,
    trend_window_days: int = 90,
) -> pd.DataFrame:
    """Behaviour features from precomputed occasions (see :func:`behaviour_features`).

    Parameters
    ----------
    occ : OccasionArrays
        Occasions built by :func:`retain.features.rfm.occasion_arrays` for ``cutoff``.
    cutoff : date or str
        The as-of date used to build ``occ``.
    windows_days : sequence of int
        Trailing window lengths in days.
    trend_window_days : int
        Length of the recent and the earlier window compared by the trends.

    Returns
    -------
    DataFrame
        See :func:`behaviour_features`.
    """
    _check_windows(windows_days, trend_window_days)
    n_cust = len(occ.customers)
    cols = behaviour_column_names(windows_days, occ.quantity_total is not None)
    if n_cust == 0:
        out = pd.DataFrame({c: np.array([], dtype=float) for c in cols}, index=occ.customers)
        return out.astype({c: np.int64 for c in cols if c.startswith(("n_", "occasions_"))})
    cd = cutoff_day(cutoff)
    starts, counts, code, day = occ.starts, occ.counts, occ.code, occ.day
    ends = starts + counts - 1
    first = day[starts]
    last = day[ends]
    data: dict[str, np.ndarray] = {
        "tenure_days": (cd - first).astype(float),
        "days_since_last_purchase": (cd - last).astype(float),
        "n_occasions": counts.astype(np.int64),
    }
    n_gaps = counts - 1
    mean_gap = np.full(n_cust, np.nan)
    np.divide(last - first, n_gaps, out=mean_gap, where=n_gaps > 0)
    # Gaps between consecutive occasions of the same customer: day differences between
    # neighbours with the same customer code (the others straddle two customers).
    gap_code = code[1:]
    dev = np.empty(len(gap_code), dtype=float)
    np.subtract(day[1:], day[:-1], out=dev)
    dev -= np.take(mean_gap, gap_code)
    dev *= dev
    dev[gap_code != code[:-1]] = 0.0
    sq = np.bincount(gap_code, weights=dev, minlength=n_cust)
    del dev
    std_gap = np.full(n_cust, np.nan)
    np.divide(sq, n_gaps - 1, out=std_gap, where=n_gaps > 1)
    data["mean_gap_days"] = mean_gap
    data["std_gap_days"] = np.sqrt(std_gap)
    gap_ratio = np.full(n_cust, np.nan)
    np.divide(data["days_since_last_purchase"], mean_gap, out=gap_ratio, where=n_gaps > 0)
    data["gap_ratio"] = gap_ratio

    # Trailing windows in one pass: every window edge (and the two trend windows' edges) cuts
    # the age axis into buckets; one bincount per customer and bucket, then cumulative sums
    # over the buckets give every window at once.
    t = int(trend_window_days)
    edges = np.array(sorted({int(w) for w in windows_days} | {t, 2 * t}), dtype=np.int64)
    n_buckets = len(edges) + 1  # the last bucket holds occasions older than every edge
    cell = code * n_buckets
    for e in edges:  # offset = number of edges <= age, so age < edges[k] <=> offset <= k
        cell += day <= cd - int(e)  # age = cd - day >= e
    size = n_cust * n_buckets
    spend = np.bincount(cell, weights=occ.amount, minlength=size).reshape(n_cust, n_buckets)
    visits = np.bincount(cell, minlength=size).reshape(n_cust, n_buckets)
    del cell
    spend_cum = np.cumsum(spend[:, :-1], axis=1)
    visits_cum = np.cumsum(visits[:, :-1], axis=1)
    edge_index = {int(e): k for k, e in enumerate(edges)}
    for w in windows_days:
        k = edge_index[int(w)]
        data[f"spend_{w}d"] = np.ascontiguousarray(spend_cum[:, k])
        data[f"occasions_{w}d"] = visits_cum[:, k].astype(np.int64)
    k1, k2 = edge_index[t], edge_index[2 * t]
    data["spend_trend"] = normalised_trend(spend_cum[:, k1], spend[:, k1 + 1 : k2 + 1].sum(axis=1))
    data["frequency_trend"] = normalised_trend(
        visits_cum[:, k1], visits[:, k1 + 1 : k2 + 1].sum(axis=1)
    )
    if occ.quantity_total is not None:
        data["mean_basket_size"] = occ.quantity_total / counts
    total = np.add.reduceat(occ.amount, starts)
    data["total_spend"] = total
    data["avg_occasion_value"] = total / counts
    return pd.DataFrame({c: data[c] for c in cols}, index=occ.customers, copy=False)


def behaviour_features(
    transactions: pd.DataFrame,
    cutoff: dt.date | str,
    windows_days: Sequence[int] = DEFAULT_WINDOWS_DAYS,
    trend_window_days: int = 90,
) -> pd.DataFrame:
    """Purchase behaviour per customer as of ``cutoff`` (the cutoff day included).

    Parameters
    ----------
    transactions : DataFrame
        Validated transactions (``customer_id``, ``timestamp``, ``amount``, optional
        ``quantity``). Rows after the cutoff day are ignored.
    cutoff : date or str
        The as-of date (required).
    windows_days : sequence of int
        Trailing window lengths in days for ``spend_<w>d`` and ``occasions_<w>d``.
    trend_window_days : int
        Length of the recent and the earlier window compared by the trend features.

    Returns
    -------
    DataFrame
        Indexed by ``customer_id`` (sorted), one row per customer with a purchase by the
        cutoff; columns as listed by :func:`behaviour_column_names` and defined in the module
        docstring. Counts are int64, everything else float64.
    """
    return behaviour_from_arrays(
        occasion_arrays(transactions, cutoff), cutoff, windows_days, trend_window_days
    )
