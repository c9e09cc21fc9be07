"""Outcomes after a scoring date: what each scored customer did in the churn horizon.

For a scoring date D and the churn horizon H (``churn.horizon_days``), the **outcome window**
is the label window of :mod:`retain.features.labels`: days D + 1 .. D + H, both included
(timestamps from :func:`retain.timeline.cutoff_end` of D, for H whole days). Per customer:

- ``purchased``: at least one purchase in the window. For a customer with a purchase by D
  this is exactly ``not churned`` of :func:`retain.features.labels.churn_labels` (retained =
  not churned), and the label is reused, not re-derived;
- ``churned``: that label (1 = no purchase in the window), missing for customers without a
  purchase by D (prospects), for whom churn is not defined;
- ``revenue``: the sum of the window's transaction amounts;
- ``occasions``: purchase occasions in the window (same-day purchases count as one, the
  convention of :mod:`retain.features.rfm`).

An outcome is only known once the whole window is in the data: :func:`check_horizon_passed`
refuses a window that ends after the last day the data covers.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from retain.contracts import CUSTOMER_ID, TIMESTAMP, DataError
from retain.features.labels import LABEL, churn_labels
from retain.timeline import DateLike, cutoff_end, day

__all__ = [
    "OUTCOME_COLUMNS",
    "check_horizon_passed",
    "horizon_end",
    "horizon_outcomes",
]

OUTCOME_COLUMNS = ("purchased", LABEL, "revenue", "occasions")
"""The columns of :func:`horizon_outcomes`."""


def horizon_end(scoring_date: DateLike, horizon_days: int) -> pd.Timestamp:
    """The last day of the outcome window of a scoring date: D + H.

    Parameters
    ----------
    scoring_date : date, str or Timestamp
        The scoring date D.
    horizon_days : int
        The churn horizon H in days (> 0).

    Returns
    -------
    Timestamp
        Midnight of day D + H.
    """
    if int(horizon_days) <= 0:
        raise ValueError(f"horizon_days must be positive, got {horizon_days}")
    return day(scoring_date) + pd.Timedelta(days=int(horizon_days))


def check_horizon_passed(
    scoring_date: DateLike, horizon_days: int, data_end: DateLike
) -> pd.Timestamp:
    """Refuse an outcome window that the data does not cover whole.

    Parameters
    ----------
    scoring_date : date, str or Timestamp
        The scoring date D.
    horizon_days : int
        The churn horizon H in days.
    data_end : date, str or Timestamp
        The last day the data covers (``observed_until``, or the ``--until`` day).

    Returns
    -------
    Timestamp
        The window's last day, D + H.

    Raises
    ------
    DataError
        When D + H is after ``data_end``: "the horizon of D ends on X; data reaches Y".
    """
    end = horizon_end(scoring_date, horizon_days)
    reach = day(data_end)
    if end > reach:
        raise DataError(
            f"the horizon of {day(scoring_date).date()} ends on {end.date()}; data reaches "
            f"{reach.date()}: evaluate these scores once the data covers {end.date()} "
            f"({horizon_days}-day churn horizon)"
        )
    return end


def horizon_outcomes(
    transactions: pd.DataFrame,
    customers: pd.Index | pd.Series,
    scoring_date: DateLike,
    horizon_days: int,
    observed_until: DateLike,
) -> pd.DataFrame:
    """What each customer did in the outcome window of a scoring date.

    Parameters
    ----------
    transactions : DataFrame
        Validated transactions (``customer_id``, ``timestamp``, ``amount``) covering at least
        the window; later rows are ignored.
    customers : Index or Series
        The scored customer ids (each once).
    scoring_date : date, str or Timestamp
        The scoring date D.
    horizon_days : int
        The churn horizon H in days.
    observed_until : date, str or Timestamp
        The last day the data covers.

    Returns
    -------
    DataFrame
        Indexed by ``customer_id`` in the order of ``customers``: ``purchased`` (bool),
        ``churned`` (nullable Int64, missing for customers without a purchase by D),
        ``revenue`` (float) and ``occasions`` (int64); see the module docstring.

    Raises
    ------
    DataError
        When the window ends after ``observed_until``.
    ValueError
        When ``customers`` repeats an id.
    """
    check_horizon_passed(scoring_date, horizon_days, observed_until)
    ids = pd.Index(pd.Series(customers).astype("string"), name=CUSTOMER_ID)
    if ids.has_duplicates:
        raise ValueError("customers must be distinct")
    labels = churn_labels(transactions, scoring_date, horizon_days, observed_until)

    ts = transactions[TIMESTAMP].to_numpy(dtype="datetime64[ns]")
    start = np.datetime64(cutoff_end(scoring_date), "ns")
    stop = start + np.timedelta64(int(horizon_days), "D")
    inside = (ts >= start) & (ts < stop)
    window = pd.DataFrame(
        {
            CUSTOMER_ID: transactions[CUSTOMER_ID].astype("string").to_numpy()[inside],
            "day": ts[inside].astype("datetime64[D]"),
            "amount": transactions["amount"].to_numpy(dtype=float)[inside],
        }
    )
    grouped = window.groupby(CUSTOMER_ID, sort=False)
    revenue = grouped["amount"].sum().reindex(ids, fill_value=0.0)
    occasions = grouped["day"].nunique().reindex(ids, fill_value=0)

    churned = labels.reindex(ids).astype("Int64")
    purchased = occasions.to_numpy() > 0
    known = churned.notna().to_numpy()
    # the label and the window agree by construction (same day convention); checked anyway
    label = churned.to_numpy(dtype=float, na_value=np.nan)
    if (purchased[known] == label[known].astype(bool)).any():
        raise RuntimeError("outcomes disagree with the churn labels (a bug in retain)")
    return pd.DataFrame(
        {
            "purchased": purchased,
            LABEL: churned.array,
            "revenue": revenue.to_numpy(dtype=float),
            "occasions": occasions.to_numpy(dtype=np.int64),
        },
        index=ids,
    )
