"""Model-fit diagnostics of a fitted :class:`~retain.clv.ClvModel`, as tables.

The tables lifetimes and pymc-marketing users look at, computed exactly (no simulation) from
the model's own formulas:

- :func:`p_alive_matrix` and :func:`expected_purchases_matrix`: P(alive) and the expected
  repeat purchases over a grid of frequency x recency at a fixed tenure;
- :func:`period_transactions`: customers by number of repeat purchases in their calibration
  tenure, actual vs expected (BTYD's ``PlotFrequencyInCalibration``);
- :func:`cohort_tracking`: actual vs expected repeat purchases of a cohort, period by period and
  cumulated (the tracking plots of the BTYD walkthrough and lifetimes'
  ``expected_cumulative_transactions``);
- :func:`p_alive_history`: one customer's P(alive) day by day (lifetimes' ``plot_history_alive``).

The plots of these tables are in :mod:`retain.reporting.clv_diagnostics`. Dates are explicit
arguments (no "last date in the data"); same-day purchases are one purchase occasion.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from retain.clv.model import ClvModel
from retain.contracts import CUSTOMER_ID, TIMESTAMP
from retain.features.rfm import UNIT_NAMES
from retain.timeline import UNIT_DAYS
from retain.timeline import day as to_day


def _unit_columns(model: ClvModel) -> tuple[str, str]:
    name = UNIT_NAMES[model.time_unit]
    return f"recency_{name}", f"tenure_{name}"


def _grid(
    model: ClvModel, max_frequency: int, max_recency: int, tenure: float | None
) -> tuple[pd.DataFrame, np.ndarray, np.ndarray, np.ndarray]:
    """Possible (frequency, recency) cells at one tenure, as an RFM summary."""
    if int(max_frequency) != max_frequency or max_frequency < 0:
        raise ValueError(f"max_frequency must be a whole number >= 0, got {max_frequency!r}")
    if int(max_recency) != max_recency or max_recency < 0:
        raise ValueError(f"max_recency must be a whole number >= 0, got {max_recency!r}")
    tenure = float(max_recency if tenure is None else tenure)
    if tenure < max_recency:
        raise ValueError(f"tenure ({tenure}) must be >= max_recency ({max_recency})")
    recency = np.arange(int(max_recency) + 1, dtype=float)
    frequency = np.arange(int(max_frequency) + 1, dtype=float)
    rec, freq = np.meshgrid(recency, frequency, indexing="ij")
    possible = (freq > 0) | (rec == 0)  # no repeat purchase means recency 0
    rec_col, ten_col = _unit_columns(model)
    cells = pd.DataFrame(
        {
            "frequency": freq[possible],
            rec_col: rec[possible],
            ten_col: np.full(int(possible.sum()), tenure),
        }
    )
    return cells, possible, recency, frequency


def _matrix(
    model: ClvModel, values: np.ndarray, possible: np.ndarray, recency, frequency
) -> pd.DataFrame:
    out = np.full(possible.shape, np.nan)
    out[possible] = values
    rec_col, _ = _unit_columns(model)
    return pd.DataFrame(
        out,
        index=pd.Index(recency, name=rec_col),
        columns=pd.Index(frequency.astype(int), name="frequency"),
    )


def p_alive_matrix(
    model: ClvModel, max_frequency: int, max_recency: int, *, tenure: float | None = None
) -> pd.DataFrame:
    """P(alive) over a grid of frequency x recency, at one tenure.

    lifetimes' ``conditional_probability_alive_matrix`` (which takes the grid from the fitted
    data; a :class:`ClvModel` keeps no data, so the grid is given here).

    Parameters
    ----------
    model : ClvModel
        A fitted model.
    max_frequency : int
        Frequencies 0, 1, ..., ``max_frequency`` (the columns).
    max_recency : int
        Recencies 0, 1, ..., ``max_recency`` in the model's time unit (the rows).
    tenure : float, optional
        Tenure of every cell (default ``max_recency``, as lifetimes).

    Returns
    -------
    DataFrame
        Rows ``recency_<unit>``, columns ``frequency``. Cells that no customer can have
        (frequency 0 with recency > 0) are NaN.
    """
    cells, possible, recency, frequency = _grid(model, max_frequency, max_recency, tenure)
    values = model.probability_alive(cells).to_numpy()
    return _matrix(model, values, possible, recency, frequency)


def expected_purchases_matrix(
    model: ClvModel,
    t: float,
    max_frequency: int,
    max_recency: int,
    *,
    tenure: float | None = None,
) -> pd.DataFrame:
    """Expected repeat purchases in the next ``t`` over a grid of frequency x recency.

    The matrix of lifetimes' ``plot_frequency_recency_matrix(model, T=t)``.

    Parameters
    ----------
    model : ClvModel
        A fitted model.
    t : float
        Window length in the model's time unit.
    max_frequency, max_recency : int
        The grid (see :func:`p_alive_matrix`).
    tenure : float, optional
        Tenure of every cell (default ``max_recency``).

    Returns
    -------
    DataFrame
        Rows ``recency_<unit>``, columns ``frequency``; impossible cells NaN.
    """
    cells, possible, recency, frequency = _grid(model, max_frequency, max_recency, tenure)
    values = model.expected_purchases(cells, t).to_numpy()
    return _matrix(model, values, possible, recency, frequency)


def period_transactions(
    model: ClvModel, summary: pd.DataFrame, max_frequency: int = 7
) -> pd.DataFrame:
    """Customers by number of repeat purchases in their tenure: actual vs expected.

    The expected count of customers with ``n`` repeat purchases is
    ``sum_i P(X(T_i) = n)``, the new-customer probability of ``n`` purchases over each
    customer's tenure ``T_i`` (:meth:`ClvModel.probability_of_n_purchases`); the last bin
    collects ``max_frequency`` or more. Exact, where lifetimes' ``plot_period_transactions``
    simulates.

    Parameters
    ----------
    model : ClvModel
        A model fitted on ``summary`` (or on the same calibration period).
    summary : DataFrame
        RFM summary in the model's time unit.
    max_frequency : int
        The censoring bin (BTYD uses 7: bins 0, ..., 6 and "7+").

    Returns
    -------
    DataFrame
        Indexed by ``frequency`` 0..``max_frequency``; columns ``label`` ("0", ..., "7+"),
        ``actual`` and ``expected`` (numbers of customers).
    """
    if int(max_frequency) != max_frequency or max_frequency < 1:
        raise ValueError(f"max_frequency must be a whole number >= 1, got {max_frequency!r}")
    k = int(max_frequency)
    _, ten_col = _unit_columns(model)
    model.probability_alive(summary)  # validates the summary and that the model is fitted
    x = summary["frequency"].to_numpy(dtype=float)
    tenures, counts = np.unique(summary[ten_col].to_numpy(dtype=float), return_counts=True)
    pmf = np.array(
        [[model.probability_of_n_purchases(float(T), n) for n in range(k)] for T in tenures]
    )
    expected = counts @ pmf
    expected = np.append(expected, counts.sum() - expected.sum())
    actual = np.bincount(np.minimum(x, k).astype(np.int64), minlength=k + 1)
    return pd.DataFrame(
        {
            "label": [str(n) for n in range(k)] + [f"{k}+"],
            "actual": actual,
            "expected": expected,
        },
        index=pd.Index(np.arange(k + 1), name="frequency"),
    )


def _occasion_days(transactions: pd.DataFrame, start: pd.Timestamp) -> pd.DataFrame:
    """Distinct (customer, day) purchase occasions as day numbers since ``start``."""
    missing = [c for c in (CUSTOMER_ID, TIMESTAMP) if c not in transactions]
    if missing:
        raise ValueError(f"transactions need columns {[CUSTOMER_ID, TIMESTAMP]}, missing {missing}")
    days = (pd.to_datetime(transactions[TIMESTAMP]).dt.normalize() - start).dt.days
    occ = pd.DataFrame({CUSTOMER_ID: transactions[CUSTOMER_ID].to_numpy(), "day": days.to_numpy()})
    return occ.drop_duplicates()


def cohort_tracking(
    model: ClvModel,
    transactions: pd.DataFrame,
    start: dt.date | str,
    end: dt.date | str,
    *,
    period_days: int = 7,
) -> pd.DataFrame:
    """Repeat purchases of a cohort, actual vs expected, period by period and cumulated.

    Every customer whose first purchase falls in ``[start, end]`` is expected to make
    ``E[X(a)]`` repeat purchases by age ``a`` (:meth:`ClvModel.expected_purchases_new_customer`).
    At the end of period ``j`` (``start + j * period_days`` days) a customer first seen on day
    ``b < j * period_days`` has age ``j * period_days - b`` days; the expected cumulative count
    sums these over the cohort, the actual one counts repeat occasions (later distinct purchase
    days) before that moment. This is the tracking of the BTYD walkthrough
    (``pnbd.PlotTrackingCum``/``PlotTrackingInc``) and of lifetimes'
    ``expected_cumulative_transactions(..., freq="D", freq_multiplier=period_days)``.

    Parameters
    ----------
    model : ClvModel
        A fitted model (usually on the calibration period of the same customers).
    transactions : DataFrame
        ``customer_id`` and ``timestamp`` of the cohort's transactions; none may precede
        ``start`` (a customer first seen before ``start`` is not a new customer there).
    start : date or str
        Day 0 of the tracking (e.g. the first day of the cohort's acquisition).
    end : date or str
        Last day tracked (included); only whole periods are reported.
    period_days : int
        Period length in days (7 = weekly).

    Returns
    -------
    DataFrame
        Indexed by ``period`` 1, 2, ...; columns ``period_end`` (last day of the period),
        ``actual`` and ``expected`` repeat purchases within the period, and
        ``actual_cumulative`` and ``expected_cumulative`` since ``start``.
    """
    start_ts, end_ts = to_day(start), to_day(end)
    if int(period_days) != period_days or period_days < 1:
        raise ValueError(f"period_days must be a whole number >= 1, got {period_days!r}")
    period_days = int(period_days)
    n_periods = ((end_ts - start_ts).days + 1) // period_days
    if n_periods < 1:
        raise ValueError(f"no whole period of {period_days} days between {start} and {end}")
    occ = _occasion_days(transactions, start_ts)
    if (occ["day"] < 0).any():
        n = int(occ.loc[occ["day"] < 0, CUSTOMER_ID].nunique())
        raise ValueError(f"{n} customers have transactions before start {start_ts.date()}")
    horizon = n_periods * period_days
    occ = occ[occ["day"] < horizon]
    first = occ.groupby(CUSTOMER_ID)["day"].transform("min")
    repeat_days = occ.loc[occ["day"] > first, "day"].to_numpy()
    actual = np.bincount(repeat_days // period_days, minlength=n_periods)[:n_periods]
    births, cohort = np.unique(occ.loc[occ["day"] == first, "day"].to_numpy(), return_counts=True)
    ends = np.arange(1, n_periods + 1) * period_days
    age_days = ends[:, None] - births[None, :]
    age = np.where(age_days > 0, age_days, 0) / UNIT_DAYS[model.time_unit]
    expected_cum = model.expected_purchases_new_customer(age) @ cohort
    expected_cum = np.asarray(expected_cum, dtype=float)
    return pd.DataFrame(
        {
            "period_end": start_ts + pd.to_timedelta(ends - 1, unit="D"),
            "actual": actual.astype(np.int64),
            "expected": np.diff(expected_cum, prepend=0.0),
            "actual_cumulative": np.cumsum(actual).astype(np.int64),
            "expected_cumulative": expected_cum,
        },
        index=pd.Index(np.arange(1, n_periods + 1), name="period"),
    )


def p_alive_history(
    model: ClvModel, transactions: pd.DataFrame, customer_id: str, end: dt.date | str
) -> pd.DataFrame:
    """One customer's P(alive), day by day from the first purchase to ``end``.

    On each day the history is what was known at its end: frequency (repeat purchase days so
    far), recency and tenure; lifetimes' ``calculate_alive_path`` / ``plot_history_alive``
    with ``freq="D"``, in the model's time unit.

    Parameters
    ----------
    model : ClvModel
        A fitted model.
    transactions : DataFrame
        ``customer_id`` and ``timestamp`` (other customers' rows are ignored).
    customer_id : str
        The customer.
    end : date or str
        Last day of the history (included); later transactions are ignored.

    Returns
    -------
    DataFrame
        Indexed by ``date``; columns ``purchase`` (a purchase that day), ``frequency``,
        ``recency_<unit>``, ``tenure_<unit>`` and ``p_alive``.
    """
    end_ts = to_day(end)
    rows = transactions[transactions[CUSTOMER_ID] == customer_id]
    days = pd.to_datetime(rows[TIMESTAMP]).dt.normalize()
    days = np.unique(days[days <= end_ts].to_numpy())
    if days.size == 0:
        raise ValueError(
            f"customer {customer_id!r} has no transaction on or before {end_ts.date()}"
        )
    first = pd.Timestamp(days[0])
    dates = pd.date_range(first, end_ts, freq="D")
    bought = dates.isin(days)
    day = np.arange(len(dates), dtype=float)
    last = np.maximum.accumulate(np.where(bought, day, 0.0))
    unit = UNIT_DAYS[model.time_unit]
    rec_col, ten_col = _unit_columns(model)
    out = pd.DataFrame(
        {
            "purchase": bought,
            "frequency": np.cumsum(bought) - 1,
            rec_col: last / unit,
            ten_col: day / unit,
        },
        index=pd.Index(dates, name="date"),
    )
    out["p_alive"] = model.probability_alive(out).to_numpy()
    return out
