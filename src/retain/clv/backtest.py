"""Calibration/holdout backtests of CLV models, and model selection by holdout error.

The split is by explicit dates (both days included in their period): the models are fitted on
``rfm_summary(transactions, calibration_end)``, and the holdout is every purchase occasion of
those customers on the days ``calibration_end + 1 .. holdout_end``. Customers first seen in the
holdout are not part of the backtest. ``lifetimes.utils.calibration_and_holdout_data`` is not
used (it fails on pandas 3).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from retain.clv.mle import ClvFitError
from retain.clv.model import ClvModel
from retain.config import ClvConfig
from retain.contracts import CUSTOMER_ID
from retain.features.rfm import UNIT_DAYS, cutoff_day, purchase_occasions, rfm_summary
from retain.timeline import day

Metric = Literal["mae", "rmse", "total_abs_error"]
METRICS: tuple[str, ...] = ("mae", "rmse", "total_abs_error")
ALL_PURCHASE_MODELS: tuple[str, ...] = ("bgnbd", "pareto_nbd", "mbgnbd")


@dataclass
class BacktestResult:
    """Outcome of :func:`run_backtest` for one model.

    Attributes
    ----------
    model : ClvModel
        The model fitted on the calibration summary.
    calibration_end, holdout_end : Timestamp
        The split dates (each included in its period).
    metrics : dict
        ``n_customers``, ``holdout_days``, ``total_actual``, ``total_predicted``,
        ``total_abs_error``, ``total_rel_error``, ``mae``, ``rmse`` (per-customer holdout
        purchases), ``n_spenders`` (customers buying in the holdout), ``mean_actual_spend``,
        ``mean_predicted_spend`` (per purchase, over those customers), ``log_likelihood``.
    per_customer : DataFrame
        Index ``customer_id``: ``frequency`` (calibration), ``actual_purchases``,
        ``predicted_purchases``, ``actual_mean_spend`` (NaN without holdout purchases),
        ``predicted_avg_value``.
    by_frequency : DataFrame
        One row per calibration frequency ``0 .. max_frequency-1`` and ``"<max>+"``: columns
        ``frequency``, ``customers``, ``mean_actual``, ``mean_predicted``.
    cumulative : DataFrame
        Weekly: ``week`` (1..), ``date`` (end of the week, capped at the holdout end),
        ``actual`` and ``predicted`` cumulative holdout repeat purchases.
    """

    model: ClvModel
    calibration_end: pd.Timestamp
    holdout_end: pd.Timestamp
    metrics: dict[str, float]
    per_customer: pd.DataFrame
    by_frequency: pd.DataFrame
    cumulative: pd.DataFrame

    def tables(self) -> dict[str, pd.DataFrame]:
        """The result tables by name (``by_frequency``, ``cumulative``, ``per_customer``)."""
        return {
            "by_frequency": self.by_frequency,
            "cumulative": self.cumulative,
            "per_customer": self.per_customer,
        }


@dataclass
class AutoResult:
    """Outcome of :func:`fit_auto`.

    Attributes
    ----------
    selected : str
        The chosen purchase model.
    metric : str
        The selection metric.
    comparison : DataFrame
        One row per candidate (index ``purchase_model``): ``log_likelihood``, the backtest
        metrics, ``error`` (message when the fit failed, else empty) and ``selected``.
    backtests : dict
        :class:`BacktestResult` per successfully fitted candidate.
    model : ClvModel
        The selected model: fitted on ``final_cutoff`` data when given, otherwise the
        calibration fit.
    """

    selected: str
    metric: str
    comparison: pd.DataFrame
    backtests: dict[str, BacktestResult] = field(default_factory=dict)
    model: ClvModel | None = None

    @property
    def best(self) -> BacktestResult:
        """Backtest of the selected model."""
        return self.backtests[self.selected]


def holdout_activity(
    transactions: pd.DataFrame,
    customers: pd.Index,
    calibration_end: dt.date | str,
    holdout_end: dt.date | str,
) -> pd.DataFrame:
    """Actual repeat purchase occasions and their mean value in the holdout window.

    Parameters
    ----------
    transactions : DataFrame
        Transactions (``customer_id``, ``timestamp``, ``amount``).
    customers : Index
        The calibration customers (others are ignored).
    calibration_end, holdout_end : date or str
        The holdout covers the days after ``calibration_end`` up to ``holdout_end`` included.

    Returns
    -------
    DataFrame
        Index ``customer_id`` (= ``customers``), columns ``actual_purchases`` (int, same-day
        transactions merged) and ``actual_mean_spend`` (NaN when there is none).
    """
    occ = purchase_occasions(transactions, holdout_end)
    occ = occ[(occ["day"] > cutoff_day(calibration_end)) & occ[CUSTOMER_ID].isin(customers)]
    grouped = occ.groupby(CUSTOMER_ID, observed=True)["amount"]
    counts = grouped.size().reindex(customers, fill_value=0)
    spend = grouped.mean().reindex(customers)
    out = pd.DataFrame(
        {
            "actual_purchases": counts.to_numpy(dtype=np.int64),
            "actual_mean_spend": spend.to_numpy(dtype=float),
        },
        index=customers,
    )
    return out


def _split_dates(
    calibration_end: dt.date | str, holdout_end: dt.date | str
) -> tuple[pd.Timestamp, pd.Timestamp, int]:
    cal = day(calibration_end)
    hold = day(holdout_end)
    days = int((hold - cal).days)
    if days <= 0:
        raise ValueError(
            f"holdout_end ({hold.date()}) must be after calibration_end ({cal.date()})"
        )
    return cal, hold, days


def run_backtest(
    transactions: pd.DataFrame,
    calibration_end: dt.date | str,
    holdout_end: dt.date | str,
    model: ClvModel | None = None,
    *,
    max_frequency: int = 7,
    calibration_summary: pd.DataFrame | None = None,
) -> BacktestResult:
    """Fit ``model`` on the calibration period and compare its predictions with the holdout.

    Parameters
    ----------
    transactions : DataFrame
        Validated transactions covering at least up to ``holdout_end``.
    calibration_end, holdout_end : date or str
        Calibration: up to ``calibration_end`` included; holdout: the following days up to
        ``holdout_end`` included.
    model : ClvModel, optional
        Template (its parameters are used; it is not modified). Default ``ClvModel()``.
    max_frequency : int
        Calibration frequencies >= this are pooled in the last row of ``by_frequency``.
    calibration_summary : DataFrame, optional
        ``rfm_summary(transactions, calibration_end, model.time_unit)`` if already computed.

    Returns
    -------
    BacktestResult

    Raises
    ------
    ClvFitError
        When the model cannot be fitted on the calibration data.
    """
    cal, hold, days = _split_dates(calibration_end, holdout_end)
    template = model if model is not None else ClvModel()
    unit = template.time_unit
    summary = (
        rfm_summary(transactions, cal, unit) if calibration_summary is None else calibration_summary
    )
    fitted = ClvModel(**template.get_params()).fit(summary)
    actual = holdout_activity(transactions, summary.index, cal, hold)
    horizon = days / UNIT_DAYS[unit]
    predicted = fitted.expected_purchases(summary, horizon).to_numpy()
    if fitted.spend_params_ is not None:
        avg_value = fitted.predict(summary, horizon=1)["expected_avg_value"].to_numpy()
    else:
        avg_value = np.full(len(summary), np.nan)
    per_customer = pd.DataFrame(
        {
            "frequency": summary["frequency"].to_numpy(),
            "actual_purchases": actual["actual_purchases"].to_numpy(),
            "predicted_purchases": predicted,
            "actual_mean_spend": actual["actual_mean_spend"].to_numpy(),
            "predicted_avg_value": avg_value,
        },
        index=summary.index.copy(),
    )
    err = per_customer["predicted_purchases"] - per_customer["actual_purchases"]
    total_actual = float(per_customer["actual_purchases"].sum())
    total_predicted = float(per_customer["predicted_purchases"].sum())
    spenders = per_customer["actual_purchases"] > 0
    metrics = {
        "n_customers": float(len(per_customer)),
        "holdout_days": float(days),
        "total_actual": total_actual,
        "total_predicted": total_predicted,
        "total_abs_error": abs(total_predicted - total_actual),
        "total_rel_error": (
            (total_predicted - total_actual) / total_actual if total_actual else float("nan")
        ),
        "mae": float(err.abs().mean()),
        "rmse": float(np.sqrt((err**2).mean())),
        "n_spenders": float(spenders.sum()),
        "mean_actual_spend": float(per_customer.loc[spenders, "actual_mean_spend"].mean()),
        "mean_predicted_spend": float(per_customer.loc[spenders, "predicted_avg_value"].mean()),
        "log_likelihood": float(fitted.log_likelihood_),
    }
    return BacktestResult(
        model=fitted,
        calibration_end=cal,
        holdout_end=hold,
        metrics=metrics,
        per_customer=per_customer,
        by_frequency=frequency_table(per_customer, max_frequency),
        cumulative=_cumulative(transactions, summary, fitted, cal, hold),
    )


def frequency_table(per_customer: pd.DataFrame, max_frequency: int = 7) -> pd.DataFrame:
    """Mean actual vs predicted holdout purchases by calibration frequency.

    Parameters
    ----------
    per_customer : DataFrame
        ``BacktestResult.per_customer``.
    max_frequency : int
        Frequencies >= this are pooled into a row labelled ``"<max_frequency>+"``.

    Returns
    -------
    DataFrame
        Columns ``frequency`` (str labels ``"0"``, ``"1"``, ..., ``"7+"``), ``customers``,
        ``mean_actual``, ``mean_predicted``; empty bins are kept with zero customers.
    """
    freq = per_customer["frequency"].to_numpy()
    binned = np.minimum(freq, max_frequency).astype(int)
    labels = [str(k) for k in range(max_frequency)] + [f"{max_frequency}+"]
    rows = []
    for k, label in enumerate(labels):
        sel = binned == k
        rows.append(
            {
                "frequency": label,
                "customers": int(sel.sum()),
                "mean_actual": float(per_customer["actual_purchases"].to_numpy()[sel].mean())
                if sel.any()
                else float("nan"),
                "mean_predicted": float(per_customer["predicted_purchases"].to_numpy()[sel].mean())
                if sel.any()
                else float("nan"),
            }
        )
    return pd.DataFrame(rows)


def _cumulative(
    transactions: pd.DataFrame,
    summary: pd.DataFrame,
    fitted: ClvModel,
    cal: pd.Timestamp,
    hold: pd.Timestamp,
) -> pd.DataFrame:
    """Weekly cumulative actual vs predicted holdout repeat purchases."""
    days = int((hold - cal).days)
    ends = np.minimum(np.arange(7, days + 7, 7), days)
    occ = purchase_occasions(transactions, hold)
    start = cutoff_day(cal)
    occ = occ[(occ["day"] > start) & occ[CUSTOMER_ID].isin(summary.index)]
    offsets = np.sort(occ["day"].to_numpy() - start)
    actual = np.searchsorted(offsets, ends, side="right")
    unit = UNIT_DAYS[fitted.time_unit]
    predicted = [float(fitted.expected_purchases(summary, e / unit).sum()) for e in ends]
    return pd.DataFrame(
        {
            "week": np.arange(1, len(ends) + 1),
            "date": cal + pd.to_timedelta(ends, unit="D"),
            "actual": actual.astype(np.int64),
            "predicted": np.asarray(predicted),
        }
    )


def fit_auto(
    transactions: pd.DataFrame,
    calibration_end: dt.date | str,
    holdout_end: dt.date | str,
    *,
    metric: Metric = "mae",
    purchase_models: Sequence[str] = ALL_PURCHASE_MODELS,
    final_cutoff: dt.date | str | None = None,
    max_frequency: int = 7,
    calibration_transactions: pd.DataFrame | None = None,
    **model_params: Any,
) -> AutoResult:
    """Backtest several purchase models and select the one with the lowest holdout error.

    Parameters
    ----------
    transactions : DataFrame
        Validated transactions.
    calibration_end, holdout_end : date or str
        The backtest split (see :func:`run_backtest`).
    metric : {"mae", "rmse", "total_abs_error"}
        Selection metric (lower is better); ties keep the order of ``purchase_models``.
    purchase_models : sequence of str
        Candidates (default all three).
    final_cutoff : date or str, optional
        When given, the selected model is refitted on ``rfm_summary(transactions,
        final_cutoff)`` and returned as ``.model`` (e.g. the holdout end, for deployment).
    max_frequency : int
        See :func:`run_backtest`.
    calibration_transactions : DataFrame, optional
        The transactions as validated as of ``calibration_end``, for the calibration summary
        (when returns are netted into earlier purchases, a return after the calibration end
        must not shrink a calibration purchase); default ``transactions``.
    **model_params
        Other :class:`ClvModel` parameters (spend_model, penalizer, purchase_penalizer,
        spend_penalizer, time_unit, discount_rate, horizon).

    Returns
    -------
    AutoResult

    Raises
    ------
    ClvFitError
        When no candidate could be fitted (the messages of all candidates are included).
    """
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
    if not purchase_models:
        raise ValueError("purchase_models is empty")
    template = ClvModel(**model_params)
    cal, hold, _ = _split_dates(calibration_end, holdout_end)
    known = transactions if calibration_transactions is None else calibration_transactions
    summary = rfm_summary(known, cal, template.time_unit)
    rows, results = [], {}
    for name in purchase_models:
        candidate = ClvModel(**{**template.get_params(), "purchase_model": name})
        try:
            res = run_backtest(
                transactions,
                cal,
                hold,
                candidate,
                max_frequency=max_frequency,
                calibration_summary=summary,
            )
        except ClvFitError as exc:
            rows.append({"purchase_model": name, "error": str(exc)})
            continue
        results[name] = res
        rows.append({"purchase_model": name, **res.metrics, "error": ""})
    comparison = pd.DataFrame(rows).set_index("purchase_model")
    if not results:
        raise ClvFitError(
            "no purchase model could be fitted: " + " | ".join(comparison["error"].astype(str))
        )
    scores = comparison.loc[list(results), metric].astype(float)
    selected = str(scores.idxmin())
    comparison["selected"] = comparison.index == selected
    model = results[selected].model
    if final_cutoff is not None:
        final_summary = rfm_summary(transactions, final_cutoff, template.time_unit)
        model = ClvModel(**model.get_params()).fit(final_summary)
    return AutoResult(
        selected=selected, metric=metric, comparison=comparison, backtests=results, model=model
    )


def run_from_config(
    transactions: pd.DataFrame,
    config: ClvConfig,
    *,
    final_cutoff: dt.date | str | None = None,
    calibration_transactions: pd.DataFrame | None = None,
) -> AutoResult:
    """Backtest (and, for ``purchase_model: auto``, select) as set in the ``clv`` config.

    Parameters
    ----------
    transactions : DataFrame
        Validated transactions up to at least ``config.holdout_end``.
    config : ClvConfig
        The ``clv`` section of the run config.
    final_cutoff : date or str, optional
        Refit the chosen model on data up to this date (see :func:`fit_auto`).
    calibration_transactions : DataFrame, optional
        The transactions as validated as of the calibration end (see :func:`fit_auto`).

    Returns
    -------
    AutoResult
        With a single-row comparison when a specific purchase model is configured.
    """
    models = ALL_PURCHASE_MODELS if config.purchase_model == "auto" else (config.purchase_model,)
    return fit_auto(
        transactions,
        config.calibration_end,
        config.holdout_end,
        metric=config.selection_metric,
        purchase_models=models,
        final_cutoff=final_cutoff,
        spend_model=config.spend_model,
        penalizer=config.penalizer,
        purchase_penalizer=config.purchase_penalizer,
        spend_penalizer=config.spend_penalizer,
        time_unit=config.time_unit,
        discount_rate=config.discount_rate_monthly,
        horizon=config.horizon_months,
        calibration_transactions=calibration_transactions,
    )


def naive_rate_errors(
    calibration_summary: pd.DataFrame, actual_purchases: pd.Series, holdout_days: float
) -> dict[str, float]:
    """Holdout errors of the naive baseline: each customer keeps their calibration rate.

    The prediction is ``frequency / tenure * holdout length`` (0 for customers whose tenure is
    0). A probabilistic model that cannot beat it should not be promoted.

    Parameters
    ----------
    calibration_summary : DataFrame
        RFM summary at the calibration end (``frequency``, ``tenure_<unit>``).
    actual_purchases : Series
        Actual holdout repeat purchases, indexed like the summary.
    holdout_days : float
        Length of the holdout in days.

    Returns
    -------
    dict
        ``mae``, ``rmse`` and ``total_abs_error``, named as in the backtest metrics.
    """
    tenure_col = next(c for c in calibration_summary.columns if c.startswith("tenure_"))
    unit_days = UNIT_DAYS["W"] if tenure_col.endswith("weeks") else UNIT_DAYS["D"]
    tenure = calibration_summary[tenure_col].to_numpy(dtype=float)
    freq = calibration_summary["frequency"].to_numpy(dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = np.where(tenure > 0, freq / tenure, 0.0)
    predicted = rate * holdout_days / unit_days
    actual = actual_purchases.reindex(calibration_summary.index).to_numpy(dtype=float)
    err = predicted - actual
    return {
        "mae": float(np.abs(err).mean()),
        "rmse": float(np.sqrt((err**2).mean())),
        "total_abs_error": float(abs(predicted.sum() - actual.sum())),
    }
