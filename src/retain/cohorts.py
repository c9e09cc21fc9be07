"""Acquisition cohorts: who keeps buying, month by month after the first purchase."""

from __future__ import annotations

import datetime as dt
from typing import Literal

import numpy as np
import pandas as pd

from retain.contracts import CUSTOMER_ID, TIMESTAMP
from retain.timeline import cutoff_end

__all__ = ["cohort_retention"]


def cohort_retention(
    transactions: pd.DataFrame,
    cutoff: dt.date | str,
    period: Literal["M", "Q"] = "M",
) -> pd.DataFrame:
    """Share of each acquisition cohort that buys in each period after its first purchase.

    Parameters
    ----------
    transactions : DataFrame
        Validated transactions.
    cutoff : date or str
        As-of date (included); later rows are ignored.
    period : {"M", "Q"}
        Cohort and activity period: calendar month or quarter.

    Returns
    -------
    DataFrame
        Rows: cohort (the period of the first purchase, as a string such as ``1997-01``);
        columns: ``size`` (customers in the cohort) then periods since acquisition ``0, 1, ...``
        holding the share (0-1) of the cohort with at least one purchase in that period. Periods
        not yet observed at the cutoff are NaN.
    """
    if period not in ("M", "Q"):
        raise ValueError(f"period must be 'M' or 'Q', got {period!r}")
    t = transactions.loc[transactions[TIMESTAMP] < cutoff_end(cutoff), [CUSTOMER_ID, TIMESTAMP]]
    ts = t[TIMESTAMP].dt
    months = ts.year.to_numpy() * 12 + ts.month.to_numpy() - 1
    index = months if period == "M" else months // 3
    first = pd.Series(index).groupby(t[CUSTOMER_ID].to_numpy()).transform("min").to_numpy()
    active = pd.DataFrame(
        {"customer": t[CUSTOMER_ID].to_numpy(), "cohort": first, "age": index - first}
    ).drop_duplicates()
    sizes = active.loc[active["age"] == 0].groupby("cohort")["customer"].nunique()
    counts = active.groupby(["cohort", "age"])["customer"].nunique().unstack(fill_value=0)
    shares = counts.div(sizes, axis=0)
    ts_cut = pd.Timestamp(cutoff)
    last = ts_cut.year * 12 + ts_cut.month - 1
    last = last if period == "M" else last // 3
    observable = last - shares.index.to_numpy()[:, None] >= shares.columns.to_numpy()[None, :]
    shares = shares.where(observable, np.nan)
    label = {"M": lambda c: f"{c // 12}-{c % 12 + 1:02d}", "Q": lambda c: f"{c // 4}-Q{c % 4 + 1}"}
    shares.index = [label[period](int(c)) for c in shares.index]
    shares.index.name = "cohort"
    shares.columns = [int(c) for c in shares.columns]
    shares.insert(0, "size", sizes.to_numpy())
    return shares
