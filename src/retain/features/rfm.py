"""RFM summary: frequency, recency, tenure and monetary value as of a cutoff.

Definitions (the CDNOW convention used throughout the BTYD literature):

- a *purchase occasion* is a (customer, calendar day) with at least one transaction; same-day
  transactions merge into one occasion whose value is their sum;
- ``frequency`` is the number of repeat occasions (occasions after the first);
- ``recency`` is the time from the first to the last occasion;
- ``tenure`` (T) is the time from the first occasion to the cutoff;
- ``monetary_value`` is the mean value of the repeat occasions (0 when there are none).

The cutoff day is included: a transaction at any time on the cutoff date counts.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

import numpy as np
import pandas as pd

from retain.contracts import CUSTOMER_ID, TIMESTAMP

TimeUnit = Literal["D", "W"]
UNIT_DAYS: dict[str, float] = {"D": 1.0, "W": 7.0}
UNIT_NAMES: dict[str, str] = {"D": "days", "W": "weeks"}

_EPOCH_DAY = np.datetime64("1970-01-01", "D")


def cutoff_day(cutoff: dt.date | str | pd.Timestamp) -> int:
    """The cutoff as whole days since 1970-01-01 (the cutoff day itself is included)."""
    return int((np.datetime64(pd.Timestamp(cutoff).date(), "D") - _EPOCH_DAY).astype(np.int64))


def cutoff_end(cutoff: dt.date | str | pd.Timestamp) -> pd.Timestamp:
    """The first instant after the cutoff day: rows strictly before it are 'as of' the cutoff."""
    return pd.Timestamp(pd.Timestamp(cutoff).date()) + pd.Timedelta(days=1)


def purchase_occasions(transactions: pd.DataFrame, cutoff: dt.date | str) -> pd.DataFrame:
    """Merge same-day transactions into purchase occasions, up to and including the cutoff.

    Parameters
    ----------
    transactions : DataFrame
        Transactions in the contract of :data:`retain.contracts.TRANSACTIONS`.
    cutoff : date or str
        The as-of date (required; included).

    Returns
    -------
    DataFrame
        Columns ``customer_id`` (str), ``day`` (int, days since 1970-01-01), ``amount`` (sum of
        the day's transactions) and, when present in the input, ``quantity`` (sum). Sorted by
        customer then day, with a fresh RangeIndex.
    """
    ts = transactions[TIMESTAMP].to_numpy(dtype="datetime64[ns]")
    mask = ts < np.datetime64(cutoff_end(cutoff), "ns")
    days = (ts[mask].astype("datetime64[D]") - _EPOCH_DAY).astype(np.int64)
    ids = transactions[CUSTOMER_ID].to_numpy()[mask]
    codes, uniques = pd.factorize(ids, sort=True)
    if len(days) == 0:
        cols = {
            CUSTOMER_ID: pd.Series([], dtype="string"),
            "day": np.array([], dtype=np.int64),
            "amount": np.array([], dtype=float),
        }
        if "quantity" in transactions:
            cols["quantity"] = np.array([], dtype=float)
        return pd.DataFrame(cols)
    dmin = days.min()
    span = int(days.max() - dmin) + 1
    key = codes.astype(np.int64) * span + (days - dmin)
    unique_keys, inverse = np.unique(key, return_inverse=True)
    out = {
        CUSTOMER_ID: pd.array(
            np.asarray(uniques, dtype=object)[unique_keys // span], dtype="string"
        ),
        "day": unique_keys % span + dmin,
        "amount": np.bincount(inverse, weights=transactions["amount"].to_numpy(float)[mask]),
    }
    if "quantity" in transactions:
        qty = transactions["quantity"].to_numpy(float, na_value=0.0)[mask]
        out["quantity"] = np.bincount(inverse, weights=qty)
    return pd.DataFrame(out)


def summary_from_occasions(
    occasions: pd.DataFrame, cutoff: dt.date | str, time_unit: TimeUnit = "D"
) -> pd.DataFrame:
    """RFM summary from the output of :func:`purchase_occasions`.

    Parameters
    ----------
    occasions : DataFrame
        Sorted purchase occasions as returned by :func:`purchase_occasions`.
    cutoff : date or str
        The as-of date used to build ``occasions``.
    time_unit : {"D", "W"}
        Unit of recency and tenure: days or weeks (7 days, fractional).

    Returns
    -------
    DataFrame
        See :func:`rfm_summary`.
    """
    if time_unit not in UNIT_DAYS:
        raise ValueError(f"time_unit must be 'D' or 'W', got {time_unit!r}")
    unit = UNIT_DAYS[time_unit]
    name = UNIT_NAMES[time_unit]
    ids = occasions[CUSTOMER_ID].to_numpy()
    n = len(ids)
    if n == 0:
        empty = pd.DataFrame(
            {"frequency": [], f"recency_{name}": [], f"tenure_{name}": [], "monetary_value": []},
            index=pd.Index([], dtype="string", name=CUSTOMER_ID),
        )
        return empty.astype({"frequency": np.int64})
    starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
    ends = np.r_[starts[1:], n] - 1
    day = occasions["day"].to_numpy(np.int64)
    amount = occasions["amount"].to_numpy(float)
    frequency = (ends - starts).astype(np.int64)
    totals = np.add.reduceat(amount, starts)
    repeat_total = totals - amount[starts]
    with np.errstate(invalid="ignore", divide="ignore"):
        monetary = np.where(frequency > 0, repeat_total / np.maximum(frequency, 1), 0.0)
    first, last = day[starts], day[ends]
    out = pd.DataFrame(
        {
            "frequency": frequency,
            f"recency_{name}": (last - first) / unit,
            f"tenure_{name}": (cutoff_day(cutoff) - first) / unit,
            "monetary_value": monetary,
        },
        index=pd.Index(ids[starts], dtype="string", name=CUSTOMER_ID),
    )
    return out


def rfm_summary(
    transactions: pd.DataFrame, cutoff: dt.date | str, time_unit: TimeUnit = "D"
) -> pd.DataFrame:
    """Frequency, recency, tenure and monetary value per customer as of ``cutoff``.

    Parameters
    ----------
    transactions : DataFrame
        Validated transactions (``customer_id``, ``timestamp``, ``amount``, ...).
    cutoff : date or str
        The as-of date, required and included. Later rows are ignored.
    time_unit : {"D", "W"}
        Unit of recency and tenure: days, or weeks of 7 days (fractional).

    Returns
    -------
    DataFrame
        Indexed by ``customer_id`` (sorted), one row per customer with a purchase on or before
        the cutoff, columns ``frequency`` (int), ``recency_<unit>``, ``tenure_<unit>`` and
        ``monetary_value``, where ``<unit>`` is ``days`` or ``weeks``.
    """
    return summary_from_occasions(purchase_occasions(transactions, cutoff), cutoff, time_unit)
