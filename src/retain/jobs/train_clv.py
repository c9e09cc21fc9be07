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
4. Log to MLflow: the config, the input tables (:func:`retain.tracking.log_inputs`: name,
   source, digest, rows in/used/rejected; context ``training``), the data window and row
   counts, the fitted parameters and
   log-likelihoods, the backtest metrics (``holdout_mae``, ``holdout_rmse``,
   ``holdout_total_abs_error``, ...; per candidate ``<model>_holdout_<metric>``), a naive
   baseline (each customer keeps their calibration purchase rate:
   ``baseline_naive_rate_holdout_<metric>``, which the promotion gate uses), the backtest plots
   and tables. Then log the model with its signature and register it as ``clv`` with the alias
   ``challenger``, and describe the run (:func:`clv_description`).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from retain.clv.backtest import METRICS, AutoResult, naive_rate_errors, run_from_config
from retain.config import RunConfig
from retain.contracts import TIMESTAMP
from retain.features.rfm import rfm_summary
from retain.io import DataError, Inputs, check_dates_against_data, load_inputs, observed_until
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
from retain.reporting import clv_plots
from retain.tracking import (
    TRAINING,
    data_label,
    describe_run,
    log_clv_model,
    log_dict,
    log_figure,
    log_inputs,
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
    warnings: list[str] = field(default_factory=list)


def _log_plots(auto: AutoResult) -> None:
    """Log the cumulative-purchases and by-frequency plots of the selected backtest."""
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
    inputs, until = _load_inputs(cfg, holdout_end, calibration_end)
    tx = inputs.transactions

    with tracked_run(cfg, "train_clv") as run:
        note("logging data window")
        log_inputs(cfg, inputs, TRAINING)
        log_params_flat(window_params(tx, until))
        log_metrics(row_metrics(inputs))
        log_dict(inputs.counts, CLV_ROW_COUNTS)

        note(backtest_message(clv.purchase_model, calibration_end, holdout_end))
        auto = _backtest(tx, cfg, holdout_end)
        model = auto.model
        assert model is not None  # final_cutoff was given
        fitted = model.to_dict()

        note("logging metrics, tables and plots")
        metrics = clv_metrics(auto, fitted, rfm_summary(tx, calibration_end, clv.time_unit))
        _log_fit(auto, fitted, metrics)

        note("registering the model as clv@challenger")
        version = log_clv_model(
            model,
            rfm_summary(tx, holdout_end, clv.time_unit).head(20),
            metrics=promotion_metrics(metrics),
            model_name=registered_name(cfg, "clv"),
            tags={
                "purchase_model": auto.selected,
                "fit_cutoff": str(holdout_end.date()),
                **provenance_tags(cfg),
            },
        )
        describe_run(clv_description(cfg, data_label(cfg, inputs), auto.selected, metrics))
    return TrainClvResult(
        run_id=run.info.run_id,
        model_version=str(version.version),
        purchase_model=auto.selected,
        metrics=metrics,
        comparison=auto.comparison,
        tracking_uri=tracking_uri(),
        warnings=inputs.warnings,
    )


def _load_inputs(
    cfg: RunConfig, holdout_end: pd.Timestamp, calibration_end: pd.Timestamp
) -> tuple[Inputs, pd.Timestamp]:
    """Load the inputs as of ``holdout_end``; refuse a window the data does not cover.

    Returns
    -------
    inputs : Inputs
        The validated inputs.
    until : Timestamp
        The last observed day.

    Raises
    ------
    retain.io.DataError
        When the holdout ends after the last observed day, or no transaction falls on or before
        ``calibration_end``.
    """
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
    return inputs, until


def window_params(tx: pd.DataFrame, until: pd.Timestamp) -> dict[str, str]:
    """The data window as run parameters: first and last transaction, last observed day."""
    return {
        "window.first_transaction": str(tx[TIMESTAMP].min().date()),
        "window.last_transaction": str(tx[TIMESTAMP].max().date()),
        "window.observed_until": str(until.date()),
    }


def row_metrics(inputs: Inputs) -> dict[str, Any]:
    """Transaction rows in, used and rejected, and the number of customers."""
    counts = inputs.counts.get("transactions", {})
    tx = inputs.transactions
    return {
        "rows_in": counts.get("rows_in"),
        "rows_used": counts.get("rows_used", len(tx)),
        "rows_rejected": counts.get("rows_rejected"),
        "n_customers_total": tx["customer_id"].nunique(),
    }


def backtest_message(
    purchase_model: str, calibration_end: pd.Timestamp, holdout_end: pd.Timestamp
) -> str:
    """The progress message of the backtest stage."""
    return (
        "backtesting "
        + ("bgnbd, pareto_nbd, mbgnbd" if purchase_model == "auto" else purchase_model)
        + f" ({calibration_end.date()} | {holdout_end.date()}) and refitting"
    )


def _backtest(tx: pd.DataFrame, cfg: RunConfig, holdout_end: pd.Timestamp) -> AutoResult:
    """Backtest and refit up to ``holdout_end``; warnings raised meanwhile become run tags."""
    # with returns netted into earlier purchases, the calibration period is what validation
    # knew on its last day: a return after it must not shrink a calibration purchase
    known = None
    if cfg.data.returns != "drop":
        known = load_inputs(cfg, cfg.clv.calibration_end).transactions
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        auto = run_from_config(
            tx, cfg.clv, final_cutoff=holdout_end, calibration_transactions=known
        )
    for i, w in enumerate(caught, start=1):  # e.g. spend/frequency correlation: keep it visible
        set_tags({f"warning.{i}": f"{w.category.__name__}: {w.message}"[:5000]})
    return auto


def clv_metrics(
    auto: AutoResult, fitted: dict[str, Any], cal_summary: pd.DataFrame
) -> dict[str, float]:
    """Every metric of the run (see the module docstring).

    Parameters
    ----------
    auto : AutoResult
        The backtests and the selection.
    fitted : dict
        The production model's :meth:`~retain.clv.ClvModel.to_dict`.
    cal_summary : DataFrame
        The RFM summary at the calibration end (for the naive-rate baseline).

    Returns
    -------
    dict
        Holdout metrics of the selected model, per-candidate metrics, the naive baseline, and
        the production fit's log-likelihoods, spend correlation and customer count.
    """
    best = auto.best
    metrics: dict[str, float] = {
        holdout_metric(k): v for k, v in best.metrics.items() if k != LOG_LIKELIHOOD
    }
    metrics[CALIBRATION_LOG_LIKELIHOOD] = best.metrics[LOG_LIKELIHOOD]
    for name, res in auto.backtests.items():
        for metric in METRICS:
            metrics[candidate_metric(name, holdout_metric(metric))] = res.metrics[metric]
        metrics[candidate_metric(name, CALIBRATION_LOG_LIKELIHOOD)] = res.metrics[LOG_LIKELIHOOD]
    baseline = naive_rate_errors(
        cal_summary, best.per_customer["actual_purchases"], best.metrics["holdout_days"]
    )
    metrics.update({baseline_metric(NAIVE_RATE, holdout_metric(k)): v for k, v in baseline.items()})
    metrics[LOG_LIKELIHOOD] = float(fitted[LOG_LIKELIHOOD])
    for key in ("spend_log_likelihood", "spend_frequency_corr"):
        if fitted.get(key) is not None:
            metrics[key] = float(fitted[key])
    metrics["n_customers_fit"] = float(fitted["n_customers"])
    return metrics


def clv_description(
    cfg: RunConfig, data: str, purchase_model: str, metrics: dict[str, float]
) -> str:
    """The run's description: the model, the data and window, and its backtest evidence.

    Parameters
    ----------
    cfg : RunConfig
        The run config (the ``clv`` section).
    data : str
        The data in a few words (:func:`retain.tracking.data_label`).
    purchase_model : str
        The selected purchase model.
    metrics : dict
        The run's metrics (:func:`clv_metrics`).

    Returns
    -------
    str
        E.g. "CLV model bgnbd + gamma_gamma fitted on cdnow_sample (6,919 transactions, 2,357
        customers) up to 1998-06-30, selected on a backtest calibrated to 1997-09-30; holdout
        MAE 1.07 purchases per customer vs 1.29 for the naive rate."
    """
    clv = cfg.clv
    mae = metrics.get(holdout_metric("mae"))
    naive = metrics.get(baseline_metric(NAIVE_RATE, holdout_metric("mae")))
    text = (
        f"CLV model {purchase_model} + {clv.spend_model} fitted on {data} up to "
        f"{clv.holdout_end}, selected on a backtest calibrated to {clv.calibration_end}"
    )
    if mae is not None:
        text += f"; holdout MAE {mae:.2f} purchases per customer"
        if naive is not None:
            text += f" vs {naive:.2f} for the naive rate"
    return text + "."


def fit_params(auto: AutoResult) -> dict[str, str]:
    """The selected purchase model and the fitted parameters (``repr``) as run parameters."""
    model = auto.model
    assert model is not None  # fitted with a final cutoff
    return {
        "selected_purchase_model": auto.selected,
        **{f"fit.purchase.{k}": repr(v) for k, v in model.purchase_params_.items()},
        **{f"fit.spend.{k}": repr(v) for k, v in (model.spend_params_ or {}).items()},
    }


def promotion_metrics(metrics: dict[str, float]) -> dict[str, float]:
    """The numbers the promotion gate may compare (any ``clv_metric``), kept as version tags."""
    return {
        k: v
        for k, v in metrics.items()
        if is_baseline(k) or k in {holdout_metric(m) for m in METRICS}
    }


def _log_fit(auto: AutoResult, fitted: dict[str, Any], metrics: dict[str, float]) -> None:
    """Log metrics, fitted parameters, backtest tables, the model dict and plots."""
    best = auto.best
    log_metrics(metrics)
    log_params_flat(fit_params(auto))
    set_tags({"purchase_model": auto.selected})
    log_table(auto.comparison, BACKTEST_COMPARISON)
    log_table(best.by_frequency, BACKTEST_BY_FREQUENCY, index=False)
    log_table(best.cumulative, BACKTEST_CUMULATIVE, index=False)
    log_table(best.per_customer, BACKTEST_PER_CUSTOMER)
    log_dict(fitted, CLV_MODEL_DICT)
    _log_plots(auto)
