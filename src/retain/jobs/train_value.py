"""The ``train_value`` step: the machine-learned CLV, its comparison with BTYD, registration.

What it does, in order:

1. Load and validate all inputs up to the last observed day.
2. Place the value model's cutoffs once (:func:`retain.clv.value_fit.configured_value_split`:
   the CLV horizon after each, the churn split's rules) and build the point-in-time snapshots
   of that split with the value label (:func:`retain.clv.value_fit.prepare_value_dataset`; the
   leakage guard runs at every cutoff). The features are of the churn model's kind
   (``churn.clv_feature_model`` for the purchase-model features, the ``features`` windows, which
   scoring requires to be the churn model's); the generic event types are fixed at the last
   training cutoff.
3. Train the candidates (Tweedie, hurdle), keep the better validation top-20% capture, and
   compare the model with the BTYD + Gamma-Gamma CLV fitted at the test cutoff and a naive
   past-spend-rate baseline on the test cutoff (:func:`retain.clv.value_fit.fit_value_model`).
4. Log to MLflow: the split, the parameters, every figure (``validation_<kind>_*``,
   ``test_<ml|btyd|naive>_<gini|top5_capture|top20_capture|total_error|mae|decile_mae>``),
   the capture curve and decile chart, the decile tables, feature importance and catalogue;
   register the model's one saved form (:meth:`retain.clv.ml.ValueModel.to_dict`) as
   ``<name>-value`` with the alias ``challenger`` (:func:`retain.tracking.log_value_model`).
   Its test figures travel inside it (``holdout``), which ``clv.method: auto`` reads.

Runs on one machine (no customer partitions): the snapshots are those of the churn model's
kind, of the value model's fewer cutoffs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from retain.churn.dataset import feature_catalogue
from retain.clv.value_fit import (
    METHODS,
    ValueFit,
    configured_value_split,
    fit_value_model,
    prepare_value_dataset,
)
from retain.config import RunConfig
from retain.contracts import TIMESTAMP, DataError
from retain.features.build import fix_event_types
from retain.io import load_inputs, observed_until
from retain.names import (
    PLOT_VALUE_CAPTURE,
    PLOT_VALUE_DECILES,
    TABLE_VALUE_DECILES,
    TABLE_VALUE_IMPORTANCE,
    VALUE_CATALOGUE,
    VALUE_GATE_METRICS,
    VALUE_METADATA,
)
from retain.reporting.value_plots import plot_value_capture, plot_value_deciles
from retain.tracking import (
    TRAINING,
    VALUE_MODEL_NAME,
    data_label,
    describe_run,
    log_dict,
    log_figure,
    log_inputs,
    log_metrics,
    log_params_flat,
    log_table,
    log_value_model,
    provenance_tags,
    registered_name,
    tracked_run,
    tracking_uri,
)

Progress = Callable[[str], None]

METHOD_LABELS = {"ml": "ML value model", "btyd": "BTYD + Gamma-Gamma", "naive": "past spend rate"}
"""How the compared predictions are named in charts and tables."""


@dataclass(frozen=True)
class TrainValueResult:
    """What :func:`train_value` produced.

    Attributes
    ----------
    run_id : str
        The MLflow run.
    model_version : str
        The registered ``value`` version (alias ``challenger``).
    kind : str
        ``tweedie`` or ``hurdle``.
    metrics : dict
        Every logged metric.
    tracking_uri : str
        Where the run was logged.
    """

    run_id: str
    model_version: str
    kind: str
    metrics: dict[str, float] = field(default_factory=dict)
    tracking_uri: str = ""
    warnings: list[str] = field(default_factory=list)


def _importance(fit: ValueFit) -> pd.DataFrame:
    frames = []
    for name, booster in fit.model.boosters.items():
        frames.append(
            pd.DataFrame(
                {
                    "booster": name,
                    "feature": fit.model.feature_names,
                    "gain": booster.feature_importance("gain"),
                    "splits": booster.feature_importance("split"),
                }
            ).sort_values("gain", ascending=False)
        )
    return pd.concat(frames, ignore_index=True)


def _log_evaluation(fit: ValueFit) -> None:
    """The capture curve, the decile chart and the decile tables of the test cutoff (all on
    the rows every method is compared on)."""
    values = {k: v[fit.compared] for k, v in fit.test_values.items()}
    predictions = {METHOD_LABELS[m]: values[m] for m in METHODS}
    log_figure(plot_value_capture(values["actual"], predictions), PLOT_VALUE_CAPTURE)
    shown = {METHOD_LABELS[m]: fit.deciles[m] for m in ("ml", "btyd")}
    log_figure(plot_value_deciles(shown), PLOT_VALUE_DECILES)
    tables = [t.assign(method=m) for m, t in fit.deciles.items()]
    log_table(pd.concat(tables, ignore_index=True), TABLE_VALUE_DECILES, index=False)


def value_description(data: str, fit: ValueFit) -> str:
    """The run's description: data, cutoffs, horizon, the chosen loss and the test captures."""
    split = fit.dataset.split
    m = fit.metrics
    return (
        f"Value model ({fit.model.kind}) trained on {data} with cutoffs "
        f"{split.train_cutoffs[0].date()}..{split.test_cutoff.date()}, horizon "
        f"{split.horizon_days} days; test top-20% capture {m['test_ml_top20_capture']:.3f} vs "
        f"BTYD {m['test_btyd_top20_capture']:.3f} and naive {m['test_naive_top20_capture']:.3f}."
    )


def train_value(cfg: RunConfig, progress: Progress | None = None) -> TrainValueResult:
    """Train, compare, log and register the value model described by ``cfg``.

    Parameters
    ----------
    cfg : RunConfig
        Run config (``clv`` with its ``ml`` settings; the ``churn`` section gives the BTYD
        model of the purchase-model features, bgnbd without one).
    progress : callable, optional
        Called with a short message before each stage.

    Returns
    -------
    TrainValueResult

    Raises
    ------
    retain.io.DataError
        When the inputs fail validation, the data are too short for the horizon, or the
        snapshots hold no customer with (or without) spend.
    retain.churn.LeakageError
        When configured cutoffs break the split's rules, or a feature breaks the
        point-in-time rules.
    retain.tracking.TrackingError
        When the tracking store or registry is unreachable.
    """
    note = progress or (lambda _msg: None)
    purchase_model = cfg.churn.clv_feature_model if cfg.churn is not None else "bgnbd"
    note("loading inputs")
    until = observed_until(cfg)
    loaded = load_inputs(cfg, until)
    tx = loaded.transactions
    if tx.empty:
        raise DataError(f"config {cfg.name!r}: no transactions to train a value model on")
    first = tx[TIMESTAMP].min()
    note("building point-in-time snapshots with the value label")
    ml = cfg.clv.ml
    split = configured_value_split(cfg.clv, first, until)
    features = fix_event_types(cfg.features, loaded.events, max(split.train_cutoffs))
    dataset = prepare_value_dataset(
        tx,
        cfg.clv,
        split,
        loaded.events,
        feature_config=features,
        purchase_model=purchase_model,
        seed=cfg.seed,
    )
    note("training the candidates and comparing with BTYD on the test cutoff")
    fit = fit_value_model(dataset, cfg.clv, purchase_model=purchase_model, seed=cfg.seed)
    model = fit.model
    model.feature_settings = features.model_dump(mode="json")
    model.training = {
        "config_name": cfg.name,
        "config_hash": cfg.config_hash(),
        "dataset": cfg.data.dataset_id(),
    }
    note("logging to MLflow")
    with tracked_run(cfg, "train_value") as run:
        log_inputs(cfg, loaded, TRAINING)
        log_params_flat(dataset.split.as_params(), prefix="split.")
        log_params_flat(
            {
                "kind": model.kind,
                "objective": ml.objective,
                "n_features": len(model.feature_names),
                "clv_feature_model": purchase_model,
                "horizon_months": cfg.clv.horizon_months,
                "discount_rate_monthly": cfg.clv.discount_rate_monthly,
            },
            prefix="value_model.",
        )
        for name, params in model.params.items():
            shown = {k: v for k, v in params.items() if k != "num_threads"}
            log_params_flat(shown, prefix=f"lgbm.{name}.")
        log_metrics(fit.metrics)
        _log_evaluation(fit)
        log_table(_importance(fit), TABLE_VALUE_IMPORTANCE, index=False)
        log_dict(model.metadata(), VALUE_METADATA)
        log_dict(feature_catalogue(model.feature_names), VALUE_CATALOGUE)
        example = dataset.test[model.feature_names].head(5).astype("float64")
        version = log_value_model(
            model,
            example,
            metrics={k: v for k, v in fit.metrics.items() if k in VALUE_GATE_METRICS},
            model_name=registered_name(cfg, VALUE_MODEL_NAME),
            tags={
                "kind": model.kind,
                "horizon_months": str(model.horizon_months),
                "test_cutoff": dataset.split.test_cutoff.date().isoformat(),
                "clv_feature_model": purchase_model,
                **provenance_tags(cfg),
            },
        )
        describe_run(value_description(data_label(cfg, loaded), fit))
        logged_to = tracking_uri()
    return TrainValueResult(
        run_id=run.info.run_id,
        model_version=str(version.version),
        kind=model.kind,
        metrics=dict(fit.metrics),
        tracking_uri=logged_to,
        warnings=list(loaded.warnings),
    )


def summary_line(result: TrainValueResult) -> str:
    """The one line ``retain train-value`` prints."""
    m: dict[str, Any] = result.metrics
    return (
        f"train-value: value version {result.model_version} ({result.kind}, alias challenger), "
        f"test top-20% capture {m['test_ml_top20_capture']:.3f} vs BTYD "
        f"{m['test_btyd_top20_capture']:.3f}, naive {m['test_naive_top20_capture']:.3f}; "
        f"run {result.run_id} in {result.tracking_uri}"
    )
