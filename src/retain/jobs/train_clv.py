"""The ``train_clv`` step: backtest the CLV models, fit the production model, log and register it.

What it does, in order:

1. Load and validate the inputs as of ``clv.holdout_end`` (:func:`retain.io.load_inputs`); the
   holdout may not run past the last day the data covers.
2. Backtest on the calibration/holdout split of the ``clv`` config
   (:func:`retain.clv.backtest.run_from_config`). With ``purchase_model: auto`` all three
   purchase models are backtested and the one with the lowest holdout error
   (``clv.selection_metric``) is chosen; the comparison table is logged.
3. Refit the chosen specification on **all data up to ``holdout_end``** for production. The
   backtest metrics are the evidence that the specification predicts unseen periods; the
   production model then uses the most recent behaviour as well (the holdout customers and
   purchases), which is what scoring needs. The calibration-period fit is not registered.
4. Log to MLflow: the config, the data window and row counts, the fitted parameters and
   log-likelihoods, the backtest metrics (``holdout_mae``, ``holdout_rmse``,
   ``holdout_total_abs_error``, ...; per candidate ``<model>_holdout_<metric>``), a naive
   baseline (each customer keeps their calibration purchase rate:
   ``baseline_naive_rate_holdout_<metric>``, which the promotion gate uses), the backtest plots
   and tables. Then log the model with its signature and register it as ``clv`` with the alias
   ``challenger``.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import pandas as pd
from matplotlib.figure import Figure

from retain.clv.backtest import METRICS, AutoResult, naive_rate_errors, run_from_config
from retain.config import RunConfig
from retain.contracts import TIMESTAMP
from retain.features.rfm import rfm_summary
from retain.io import DataError, check_dates_against_data, load_inputs, observed_until
from retain.names import (
    BACKTEST_BY_FREQUENCY,
    BACKTEST_COMPARISON,
    BACKTEST_CUMULATIVE,
    BACKTEST_PER_CUSTOMER,
    CALIBRATION_LOG_LIKELIHOOD,
    CLV_MODEL_DICT,
    CLV_ROW_COUNTS,
    LOG_LIKELIHOOD,
    NAIVE_RATE,
    PLOT_BACKTEST_BY_FREQUENCY,
    PLOT_BACKTEST_CUMULATIVE,
    baseline_metric,
    candidate_metric,
    holdout_metric,
    is_baseline,
)
from retain.tracking import (
    log_clv_model,
    log_dict,
    log_figure,
    log_metrics,
    log_params_flat,
    log_table,
    provenance_tags,
    registered_name,
    set_tags,
    tracked_run,
    tracking_uri,
)

Progress = Callable[[str], None]


@dataclass(frozen=True)
class TrainClvResult:
    """What :func:`train_clv` produced.

    Attributes
    ----------
    run_id : str
        The MLflow run.
    model_version : str
        The registered ``clv`` version (alias ``challenger``).
    purchase_model : str
        The selected purchase model.
    metrics : dict
        The metrics logged to the run.
    comparison : DataFrame
        One row per candidate purchase model (backtest metrics, ``selected``).
    tracking_uri : str
        Where the run lives.
    """

    run_id: str
    model_version: str
    purchase_model: str
    metrics: dict[str, float] = field(default_factory=dict)
    comparison: pd.DataFrame = field(default_factory=pd.DataFrame)
    tracking_uri: str = ""


def _log_plots(auto: AutoResult) -> None:
    from retain.reporting import clv_plots

    best = auto.best
    # plain Figures (no pyplot): no GUI backend, nothing global to clean up
    fig = Figure(figsize=(8, 4.5))
    clv_plots.plot_cumulative_purchases(best.cumulative, ax=fig.add_subplot())
    log_figure(fig, PLOT_BACKTEST_CUMULATIVE)
    fig = Figure(figsize=(8, 4.5))
    clv_plots.plot_frequency_table(best.by_frequency, ax=fig.add_subplot())
    log_figure(fig, PLOT_BACKTEST_BY_FREQUENCY)


def train_clv(cfg: RunConfig, progress: Progress | None = None) -> TrainClvResult:
    """Backtest, refit and register the CLV model as configured (see the module docstring).

    Parameters
    ----------
    cfg : RunConfig
        The run config (``data``, ``clv``, ``tracking`` sections).
    progress : callable, optional
        Called with a short message as each stage starts (the CLI shows it).

    Returns
    -------
    TrainClvResult
        Run id, registered version and the selection.

    Raises
    ------
    retain.io.DataError
        When the inputs are invalid or the holdout runs past the observed data.
    retain.clv.ClvFitError
        When no purchase model can be fitted.
    retain.tracking.TrackingError
        When the tracking store is unreachable.
    """
    note = progress or (lambda _msg: None)
    clv = cfg.clv
    holdout_end = pd.Timestamp(clv.holdout_end)
    calibration_end = pd.Timestamp(clv.calibration_end)

    note("loading inputs")
    inputs = load_inputs(cfg, holdout_end)
    check_dates_against_data(cfg, inputs.transactions, ("clv",))
    until = observed_until(cfg, inputs)
    if holdout_end > until:
        raise DataError(
            f"clv.holdout_end {holdout_end.date()} is after the last observed day "
            f"{until.date()}: the holdout would count unobserved days as no purchase"
        )
    tx = inputs.transactions
    if not len(tx) or tx[TIMESTAMP].min() > calibration_end:
        raise DataError(f"no transactions up to clv.calibration_end {calibration_end.date()}")

    with tracked_run(cfg, "train_clv") as run:
        note("logging data window")
        counts = inputs.counts.get("transactions", {})
        log_params_flat(
            {
                "window.first_transaction": str(tx[TIMESTAMP].min().date()),
                "window.last_transaction": str(tx[TIMESTAMP].max().date()),
                "window.observed_until": str(until.date()),
            }
        )
        log_metrics(
            {
                "rows_in": counts.get("rows_in"),
                "rows_used": counts.get("rows_used", len(tx)),
                "rows_rejected": counts.get("rows_rejected"),
                "n_customers_total": tx["customer_id"].nunique(),
            }
        )
        log_dict(inputs.counts, CLV_ROW_COUNTS)

        note(
            "backtesting "
            + ("bgnbd, pareto_nbd, mbgnbd" if clv.purchase_model == "auto" else clv.purchase_model)
            + f" ({calibration_end.date()} | {holdout_end.date()}) and refitting"
        )
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            auto = run_from_config(tx, clv, final_cutoff=holdout_end)
        for w in caught:  # e.g. spend/frequency correlation: keep it visible in the run
            set_tags({f"warning.{w.category.__name__}": str(w.message)[:5000]})
        best = auto.best
        model = auto.model
        assert model is not None  # final_cutoff was given

        note("logging metrics, tables and plots")
        metrics: dict[str, float] = {
            holdout_metric(k): v for k, v in best.metrics.items() if k != LOG_LIKELIHOOD
        }
        metrics[CALIBRATION_LOG_LIKELIHOOD] = best.metrics[LOG_LIKELIHOOD]
        for name, res in auto.backtests.items():
            for metric in METRICS:
                metrics[candidate_metric(name, holdout_metric(metric))] = res.metrics[metric]
            metrics[candidate_metric(name, CALIBRATION_LOG_LIKELIHOOD)] = res.metrics[
                LOG_LIKELIHOOD
            ]
        cal_summary = rfm_summary(tx, calibration_end, clv.time_unit)
        baseline = naive_rate_errors(
            cal_summary, best.per_customer["actual_purchases"], best.metrics["holdout_days"]
        )
        metrics.update(
            {baseline_metric(NAIVE_RATE, holdout_metric(k)): v for k, v in baseline.items()}
        )
        fitted = model.to_dict()
        metrics[LOG_LIKELIHOOD] = float(fitted[LOG_LIKELIHOOD])
        for key in ("spend_log_likelihood", "spend_frequency_corr"):
            if fitted.get(key) is not None:
                metrics[key] = float(fitted[key])
        metrics["n_customers_fit"] = float(fitted["n_customers"])
        log_metrics(metrics)
        log_params_flat(
            {
                "selected_purchase_model": auto.selected,
                **{f"fit.purchase.{k}": repr(v) for k, v in model.purchase_params_.items()},
                **{f"fit.spend.{k}": repr(v) for k, v in (model.spend_params_ or {}).items()},
            }
        )
        set_tags({"purchase_model": auto.selected})
        log_table(auto.comparison, BACKTEST_COMPARISON)
        log_table(best.by_frequency, BACKTEST_BY_FREQUENCY, index=False)
        log_table(best.cumulative, BACKTEST_CUMULATIVE, index=False)
        log_table(best.per_customer, BACKTEST_PER_CUSTOMER)
        log_dict(fitted, CLV_MODEL_DICT)
        _log_plots(auto)

        note("registering the model as clv@challenger")
        final_summary = rfm_summary(tx, holdout_end, clv.time_unit)
        # the numbers the promotion gate may compare (any clv_metric), as version tags
        promotion_metrics = {
            k: v
            for k, v in metrics.items()
            if is_baseline(k) or k in {holdout_metric(m) for m in METRICS}
        }
        version = log_clv_model(
            model,
            final_summary.head(20),
            metrics=promotion_metrics,
            model_name=registered_name(cfg, "clv"),
            tags={
                "purchase_model": auto.selected,
                "fit_cutoff": str(holdout_end.date()),
                **provenance_tags(cfg),
            },
        )
    return TrainClvResult(
        run_id=run.info.run_id,
        model_version=str(version.version),
        purchase_model=auto.selected,
        metrics=metrics,
        comparison=auto.comparison,
        tracking_uri=tracking_uri(),
    )
