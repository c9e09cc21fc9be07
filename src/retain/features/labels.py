"""Labels of the snapshots: churn (did a customer buy again within H days of the cutoff) and value.

Churn (non-contractual, DESIGN.md section 3): a customer with at least one purchase by the cutoff
has churned within horizon H days (label 1) when they make no purchase on days cutoff + 1 ..
cutoff + H, both included. A label is only defined when that whole window is observed, i.e.
``cutoff + H <= observed_until``; asking for any other is a ``ValueError``.

Value (:func:`spend_labels`, the label of the machine-learned CLV): the same customers' spend in
the same kind of window, H being the CLV horizon in days, discounted month by month as the BTYD
``clv`` is.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from retain.contracts import CUSTOMER_ID, TIMESTAMP
from retain.timeline import DAYS_PER_MONTH, cutoff_end
from retain.timeline import day as to_day

LABEL = "churned"


def check_label_window(
    cutoff: dt.date | str, horizon_days: int, observed_until: dt.date | str
) -> None:
    """Raise ``ValueError`` unless the label window of ``cutoff`` lies inside the data.

    Parameters
    ----------
    cutoff : date or str
        The as-of date.
    horizon_days : int
        Label horizon H in days (> 0).
    observed_until : date or str
        Last day covered by the data.

    Raises
    ------
    ValueError
        When ``horizon_days <= 0`` or ``cutoff + horizon_days > observed_until``; the message
        names the cutoff, the horizon and the data end.
    """
    if int(horizon_days) <= 0:
        raise ValueError(f"horizon_days must be positive, got {horizon_days}")
    day = to_day(cutoff)
    end = to_day(observed_until)
    window_end = day + pd.Timedelta(days=int(horizon_days))
    if window_end > end:
        raise ValueError(
            f"cannot label cutoff {day.date()} with a {horizon_days}-day horizon: its window runs "
            f"to {window_end.date()}, past the end of the data ({end.date()}); use a cutoff on or "
            f"before {(end - pd.Timedelta(days=int(horizon_days))).date()}"
        )


def churn_labels(
    transactions: pd.DataFrame,
    cutoff: dt.date | str,
    horizon_days: int,
    observed_until: dt.date | str,
) -> pd.Series:
    """Churn label per customer with a purchase by ``cutoff``.

    Parameters
    ----------
    transactions : DataFrame
        Validated transactions covering at least up to ``cutoff + horizon_days``.
    cutoff : date or str
        The as-of date (included in the history, excluded from the label window).
    horizon_days : int
        Label horizon H: the window is days cutoff + 1 .. cutoff + H.
    observed_until : date or str
        Last day covered by the data.

    Returns
    -------
    Series
        Named ``churned``, int64 0/1, indexed by ``customer_id`` (sorted): 1 when the customer
        made no purchase in the window.

    Raises
    ------
    ValueError
        When the label window runs past ``observed_until``.
    """
    check_label_window(cutoff, horizon_days, observed_until)
    ts = transactions[TIMESTAMP].to_numpy(dtype="datetime64[ns]")
    start = np.datetime64(cutoff_end(cutoff), "ns")
    stop = start + np.timedelta64(int(horizon_days), "D")
    ids = transactions[CUSTOMER_ID]
    customers = pd.Index(pd.unique(ids[ts < start]), dtype="string", name=CUSTOMER_ID)
    customers = customers.sort_values()
    buyers = pd.unique(ids[(ts >= start) & (ts < stop)])
    churned = (~customers.isin(buyers)).astype(np.int64)
    return pd.Series(churned, index=customers, name=LABEL)


SPEND_LABEL = "future_spend"
"""Name of the value label: a customer's (discounted) spend in the CLV horizon after a cutoff."""


def spend_labels(
    transactions: pd.DataFrame,
    cutoff: dt.date | str,
    horizon_days: int,
    observed_until: dt.date | str,
    discount_rate_monthly: float = 0.0,
) -> pd.Series:
    """Spend per customer with a purchase by ``cutoff`` in the window after it.

    The window is the churn label's (days cutoff + 1 .. cutoff + H, checked by
    :func:`check_label_window`), with H the CLV horizon in days
    (:func:`retain.timeline.horizon_days`). Each amount is discounted the way the BTYD ``clv``
    discounts its month-by-month cash flows (:mod:`retain.clv.model`): an amount in month ``k``
    after the cutoff (``k = floor(days since the cutoff's end / 30.4375) + 1``) counts
    ``1 / (1 + d)^k``, so the label measures the quantity the BTYD ``clv`` predicts. A
    customer's net spend below 0 (returns larger than purchases) counts 0.

    Parameters
    ----------
    transactions : DataFrame
        Validated transactions (``amount``) covering at least up to ``cutoff + horizon_days``.
    cutoff : date or str
        The as-of date (included in the history, excluded from the window).
    horizon_days : int
        Window length in days.
    observed_until : date or str
        Last day covered by the data.
    discount_rate_monthly : float
        Monthly discount rate ``d`` (``clv.discount_rate_monthly``); 0 for plain spend.

    Returns
    -------
    Series
        Named ``future_spend``, float64 >= 0, indexed by ``customer_id`` (sorted): every
        customer with a purchase by the cutoff, 0 for those without spend in the window.

    Raises
    ------
    ValueError
        When the window runs past ``observed_until`` or the rate is not in [0, 1).
    """
    check_label_window(cutoff, horizon_days, observed_until)
    if not 0.0 <= float(discount_rate_monthly) < 1.0:
        raise ValueError(f"discount_rate_monthly must be in [0, 1), got {discount_rate_monthly}")
    ts = transactions[TIMESTAMP].to_numpy(dtype="datetime64[ns]")
    start = np.datetime64(cutoff_end(cutoff), "ns")
    stop = start + np.timedelta64(int(horizon_days), "D")
    ids = transactions[CUSTOMER_ID]
    customers = pd.Index(pd.unique(ids[ts < start]), dtype="string", name=CUSTOMER_ID)
    customers = customers.sort_values()
    inside = (ts >= start) & (ts < stop)
    days = (ts[inside] - start) / np.timedelta64(1, "D")
    month = np.floor(days / DAYS_PER_MONTH) + 1.0
    amount = transactions["amount"].to_numpy(dtype=float)[inside]
    amount = amount * (1.0 + float(discount_rate_monthly)) ** -month
    spent = pd.Series(amount, index=pd.Index(ids[inside].to_numpy(), dtype="string"))
    spent = spent.groupby(level=0, sort=False).sum()
    out = spent.reindex(customers, fill_value=0.0).clip(lower=0.0).astype(np.float64)
    out.index.name = CUSTOMER_ID
    return out.rename(SPEND_LABEL)
