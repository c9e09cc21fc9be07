"""Probabilistic customer-lifetime-value models: BG/NBD, MBG/NBD, Pareto/NBD + Gamma-Gamma.

- :class:`ClvModel`: the estimator (``fit(summary)``, ``predict(summary, horizon)``,
  ``to_dict()`` / ``ClvModel.from_dict(d)``);
- :mod:`retain.clv.backtest`: calibration/holdout backtests by explicit dates and
  :func:`fit_auto`, which picks the purchase model with the lowest holdout error;
- :mod:`retain.clv.diagnostics`: frequency x recency matrices, period transactions, cohort
  tracking and P(alive) histories (plots in :mod:`retain.reporting.clv_diagnostics`).
"""

from retain.clv.backtest import (
    AutoResult,
    BacktestResult,
    fit_auto,
    frequency_table,
    holdout_activity,
    naive_rate_errors,
    run_backtest,
    run_from_config,
)
from retain.clv.diagnostics import (
    cohort_tracking,
    expected_purchases_matrix,
    p_alive_history,
    p_alive_matrix,
    period_transactions,
)
from retain.clv.mle import ClvFitError
from retain.clv.model import (
    DAYS_PER_MONTH,
    PREDICTION_COLUMNS,
    ClvModel,
    NotFittedError,
    SpendCorrelationWarning,
    ZeroSpendWarning,
    month_length,
)

__all__ = [
    "AutoResult",
    "BacktestResult",
    "fit_auto",
    "frequency_table",
    "holdout_activity",
    "naive_rate_errors",
    "run_backtest",
    "run_from_config",
    "cohort_tracking",
    "expected_purchases_matrix",
    "p_alive_history",
    "p_alive_matrix",
    "period_transactions",
    "DAYS_PER_MONTH",
    "PREDICTION_COLUMNS",
    "ClvFitError",
    "ClvModel",
    "NotFittedError",
    "SpendCorrelationWarning",
    "ZeroSpendWarning",
    "month_length",
]
