"""The ``train_churn`` step: snapshots, LightGBM, calibration, evaluation, MLflow registration.

What it does, in order:

1. Load and validate all inputs up to the last observed day (:func:`retain.io.load_inputs`,
   :func:`retain.io.observed_until`).
2. Check the time split and build the point-in-time snapshots
   (:func:`retain.churn.train.prepare_dataset`). On the local engine, above one customer
   partition (``partitions``, auto: about one per 2 million input rows), steps 1 and 2 run one
   partition at a time (:func:`retain.engine.snapshots.build_dataset_partitioned`: the same
   data set, memory bounded by a partition plus the data set; param ``engine.partitions``).
   Under ``engine: spark`` they run on Spark
   (:func:`retain.engine.spark_snapshots.build_dataset_spark`, the same data set) and only the
   data set (training rows after the sample cap) comes to the driver for the steps below.
   A feature computed from data after its cutoff, or a training label window overlapping the
   test window, fails the run (:class:`retain.churn.LeakageError`).
3. Optionally search LightGBM parameters with optuna (``churn.optuna.n_trials`` > 0), scored by
   the validation AUC only (:func:`retain.churn.tuning.search_params`); the best trial's
   parameters are logged as ``optuna.best.*`` and all trials as ``tables/optuna_trials.csv``.
   Above ``churn.max_training_rows`` training rows, the trees (and the search) learn from a
   seeded sample of exactly that many, stratified by cutoff and label
   (:func:`retain.churn.sampling.cap_training_rows`); validation and test keep every row.
   Then train, calibrate on the validation cutoff and evaluate on the test cutoff beside the
   BTYD and recency baselines (:func:`retain.churn.train.fit_and_evaluate`); for each baseline
   the paired DeLong difference of test AUCs, model minus baseline, with its standard error and
   95% interval (:func:`retain.churn.evaluate.baseline_auc_differences`: the promotion gate's
   evidence, ``auc_diff_vs_<name>`` and ``_se``/``_ci_low``/``_ci_high``).
4. Log to MLflow: the config, the split, the LightGBM parameters used, every metric
   (``test_roc_auc``, ``test_pr_auc``, ``test_brier``, ``test_log_loss``, ``test_ece``,
   ``test_top_decile_lift``, ... and ``baseline_<name>_<metric>``), the calibration/ROC/PR/gain
   plots, the training rows built and used (metrics ``training_rows_total`` and
   ``training_rows_used``; the cap is the param ``churn.max_training_rows``, the rows per
   (cutoff, label) are under ``training_sample`` in ``churn_model/dataset.json``), the input
   tables (:func:`retain.tracking.log_inputs`, context ``training``), the
   global SHAP importance and beeswarm of a seeded sample of the test cutoff
   (:func:`shap_sample`, ``plots/shap_*.png``), feature importance and the feature
   catalogue, and a description of the run (:func:`churn_description`). The model's one saved form
   (:meth:`retain.churn.ChurnModel.to_dict`: booster text, calibrator, features, horizon, CLV
   feature model, feature windows, provenance, and the test cutoff's reference profile for the
   drift check at scoring, :mod:`retain.drift`) is logged as a plain-file pyfunc and registered
   as ``<name>-churn`` with the alias ``challenger`` (:func:`retain.tracking.log_churn_model`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from retain.churn.dataset import (
    ChurnDataset,
    feature_catalogue,
    feature_matrix,
    resolve_auto_cutoffs,
)
from retain.churn.evaluate import baseline_auc_differences, best_baseline, calibration_table
from retain.churn.train import ChurnFit, fit_and_evaluate, prepare_dataset
from retain.churn.tuning import SearchResult, search_params
from retain.config import ChurnConfig, ConfigError, FeatureConfig, RunConfig
from retain.contracts import TIMESTAMP
from retain.engine.local import auto_partitions, input_rows, partition_source
from retain.engine.snapshots import PartitionedDataset, build_dataset_partitioned
from retain.engine.workdir import work_folder
from retain.explain import shap_contributions
from retain.features.build import fix_event_types
from retain.inputs import Inputs, InputsRecord
from retain.io import check_dates_against_data, load_inputs, observed_until
from retain.names import (
    AUC_DIFF_PREFIX,
    CHURN_CATALOGUE,
    CHURN_DATASET,
    CHURN_GATE_METRICS,
    CHURN_METADATA,
    PLOT_CALIBRATION,
    PLOT_GAIN,
    PLOT_PRECISION_RECALL,
    PLOT_ROC,
    PLOT_SHAP_BAR,
    PLOT_SHAP_BEESWARM,
    ROC_AUC,
    TABLE_CALIBRATION,
    TABLE_CALIBRATION_RAW,
    TABLE_FEATURE_IMPORTANCE,
    TABLE_OPTUNA_TRIALS,
    TEST_ROC_AUC,
    baseline_metric,
    is_baseline,
)
from retain.reporting.churn_plots import (
    plot_calibration_curve,
    plot_gain,
    plot_precision_recall,
    plot_roc,
)
from retain.reporting.shap_plots import plot_beeswarm, plot_shap_bar
from retain.timeline import day
from retain.tracking import (
    TRAINING,
    data_label,
    describe_run,
    log_churn_model,
    log_dict,
    log_figure,
    log_inputs,
    log_metrics,
    log_params_flat,
    log_table,
    provenance_tags,
    registered_name,
    tracked_run,
    tracking_uri,
)

Progress = Callable[[str], None]

SHAP_SAMPLE_ROWS = 2000
"""Customers of the test cutoff whose exact SHAP values give the run's SHAP plots."""


@dataclass(frozen=True)
class TrainChurnResult:
    """What :func:`train_churn` produced.

    Attributes
    ----------
    run_id : str
        The MLflow run.
    model_version : str
        The registered ``churn`` version (alias ``challenger``).
    metrics : dict
        Every logged metric.
    feature_names : list of str
        Model input columns, in order.
    best_baseline : str
        Name of the baseline with the highest test AUC.
    tracking_uri : str
        Where the run was logged.
    """

    run_id: str
    model_version: str
    metrics: dict[str, float] = field(default_factory=dict)
    feature_names: list[str] = field(default_factory=list)
    best_baseline: str = ""
    tracking_uri: str = ""
    warnings: list[str] = field(default_factory=list)


def _log_plots(fit: ChurnFit) -> None:
    s = fit.test_scores
    y = s["y"]
    log_figure(
        plot_calibration_curve(y, {"raw": s["raw"], "calibrated": s["calibrated"]}),
        PLOT_CALIBRATION,
    )
    baselines = {k.split(":", 1)[1]: v for k, v in s.items() if k.startswith("baseline:")}
    best = {}
    if baselines:
        name, _ = best_baseline(
            {
                baseline_metric(k, ROC_AUC): fit.metrics[baseline_metric(k, ROC_AUC)]
                for k in baselines
            }
        )
        best = {f"baseline: {name}": baselines[name]}
    curves = {"model": s["calibrated"], **best}
    log_figure(plot_roc(y, curves), PLOT_ROC)
    log_figure(plot_precision_recall(y, curves), PLOT_PRECISION_RECALL)
    log_figure(plot_gain(y, curves), PLOT_GAIN)
    log_table(calibration_table(y, s["calibrated"]), TABLE_CALIBRATION, index=False)
    log_table(calibration_table(y, s["raw"]), TABLE_CALIBRATION_RAW, index=False)


def shap_sample(fit: ChurnFit, size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact SHAP contributions of a seeded sample of the test cutoff's customers.

    Parameters
    ----------
    fit : ChurnFit
        The trained model and its data set.
    size : int
        Customers to sample (all of them when the test cutoff has fewer).
    seed : int
        Seed of the sample.

    Returns
    -------
    X : ndarray, shape (n, n_features)
        The sampled rows' model matrix, in test-set order.
    contrib : ndarray, shape (n, n_features + 1)
        Their contributions in log-odds of the uncalibrated booster, the expected value last
        (:func:`retain.explain.shap_contributions`, the engine scoring uses).
    """
    test = fit.dataset.test
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(len(test), min(size, len(test)), replace=False))
    X = feature_matrix(test.iloc[rows], fit.model.feature_names)
    return X, shap_contributions(fit.model.booster, X)


def _log_shap(fit: ChurnFit, seed: int) -> None:
    """Log the global SHAP importance (bar) and the beeswarm of a sample of the test cutoff."""
    X, contrib = shap_sample(fit, SHAP_SAMPLE_ROWS, seed)
    names = fit.model.feature_names
    caption = f"test cutoff {fit.dataset.split.test_cutoff.date()}, {len(X):,} sampled customers"
    fig = Figure(figsize=(8, 6.75), layout="constrained")
    ax = plot_shap_bar(contrib, names, ax=fig.add_subplot())
    ax.set_title(f"Global feature importance\n{caption}", fontsize=10)
    log_figure(fig, PLOT_SHAP_BAR)
    beeswarm = plot_beeswarm(contrib, X, names)
    beeswarm.axes[0].set_title(f"SHAP values per customer: {caption}", fontsize=10)
    log_figure(beeswarm, PLOT_SHAP_BEESWARM)


def _importance(fit: ChurnFit) -> pd.DataFrame:
    booster = fit.model.booster
    return (
        pd.DataFrame(
            {
                "feature": fit.model.feature_names,
                "gain": booster.feature_importance("gain"),
                "splits": booster.feature_importance("split"),
            }
        )
        .sort_values("gain", ascending=False)
        .reset_index(drop=True)
    )


def _as_of(cfg: RunConfig) -> Callable[[pd.Timestamp], pd.DataFrame]:
    """Each cutoff's transactions as validated on that day (returns netted once they happen).

    Kept per cutoff for the run: the leakage check and the snapshots both read them.
    """
    seen: dict[pd.Timestamp, pd.DataFrame] = {}

    def transactions_at(cutoff: pd.Timestamp) -> pd.DataFrame:
        key = day(cutoff)
        if key not in seen:
            seen[key] = load_inputs(cfg, key).transactions
        return seen[key]

    return transactions_at


def train_churn(cfg: RunConfig, progress: Progress | None = None) -> TrainChurnResult:
    """Train, evaluate, log and register the churn model described by ``cfg``.

    Parameters
    ----------
    cfg : RunConfig
        Run config with a ``churn`` section.
    progress : callable, optional
        Called with a short message before each stage (the CLI shows it).

    Returns
    -------
    TrainChurnResult
        Run id, registered version, metrics and feature list.

    Raises
    ------
    ConfigError
        When the config has no ``churn`` section.
    retain.io.DataError
        When the inputs fail validation.
    retain.churn.LeakageError
        When the split or a feature breaks the point-in-time rules.
    retain.tracking.TrackingError
        When the tracking store or registry is unreachable.
    """
    note = progress or (lambda _msg: None)
    churn = cfg.churn
    if churn is None:
        raise ConfigError(f"config {cfg.name!r} has no 'churn' section")
    partitions = 1
    if cfg.engine == "local":
        partitions = auto_partitions(input_rows(cfg), cfg.partitions)
    built: PartitionedDataset | None = None
    if cfg.engine == "spark":
        built = _spark_dataset(cfg, churn, note)
    elif partitions > 1:
        built = _partitioned_dataset(cfg, churn, partitions, note)
    if built is not None:
        dataset, churn, features = built.dataset, built.churn, built.features
        partitions = built.partitions
        inputs: Inputs | InputsRecord = built.record
        resolved = built.resolved
    else:
        note("loading inputs")
        until = observed_until(cfg)
        loaded = load_inputs(cfg, until)
        churn, resolved = resolve_cutoffs(churn, loaded.transactions, until)
        check_dates_against_data(
            cfg.model_copy(update={"churn": churn}), loaded.transactions, ("churn",)
        )
        observed_until(cfg, loaded)
        note(f"building point-in-time snapshots{' (' + resolved + ')' if resolved else ''}")
        # the generic event types are fixed once, so every snapshot has the same columns and
        # the model records the list (only events up to the last training cutoff choose them)
        features = fix_event_types(cfg.features, loaded.events, max(churn.train_cutoffs))
        dataset = prepare_dataset(
            loaded.transactions,
            churn,
            until,
            loaded.events,
            feature_config=features,
            seed=cfg.seed,
            transactions_at=_as_of(cfg) if cfg.data.returns != "drop" else None,
        )
        inputs = loaded
    sample = dataset.training_sample
    if sample is not None and sample.sampled:
        note(
            f"training on {sample.rows_used:,} of {sample.rows_total:,} snapshot rows "
            "(churn.max_training_rows; stratified by cutoff and label)"
        )
    params, search = _tune(dataset, churn, cfg.seed, note)
    note("training, calibrating and evaluating")
    fit = fit_and_evaluate(dataset, churn, seed=cfg.seed, params=params)
    differences = auc_differences(fit)
    metrics = {**fit.metrics, **differences}
    best_name, _ = best_baseline(metrics)
    note("logging to MLflow")
    with tracked_run(cfg, "train_churn") as run:
        log_inputs(cfg, inputs, TRAINING)
        if resolved:
            log_params_flat({"resolved": resolved}, prefix="split.")
        if cfg.engine == "spark" or partitions > 1:
            log_params_flat({"partitions": partitions}, prefix="engine.")
        _log_training(fit, best_name, search)
        log_metrics(differences)
        note("explaining the test cutoff (SHAP)")
        _log_shap(fit, cfg.seed)
        version = _log_model(cfg, fit, metrics, features)
        describe_run(churn_description(data_label(cfg, inputs), fit, best_name))
        logged_to = tracking_uri()
    return TrainChurnResult(
        run_id=run.info.run_id,
        model_version=str(version.version),
        metrics=metrics,
        feature_names=list(fit.model.feature_names),
        best_baseline=best_name,
        tracking_uri=logged_to,
        warnings=inputs.warnings,
    )


def _partitioned_dataset(
    cfg: RunConfig, churn: ChurnConfig, partitions: int, note: Progress
) -> PartitionedDataset:
    """The snapshots built one customer partition at a time (the local engine).

    :func:`retain.engine.snapshots.build_dataset_partitioned` in a temporary work folder;
    the same data set as :func:`retain.churn.train.prepare_dataset` on the whole population.
    """
    with work_folder("retain-train-churn-") as work:
        note(f"splitting the inputs into {partitions} customer partitions")
        source, parts = partition_source(cfg, partitions, work)
        built = build_dataset_partitioned(parts, source, cfg, work, churn=churn, progress=note)
        del parts
    if built.resolved:
        note(built.resolved)
    return built


def _spark_dataset(cfg: RunConfig, churn: ChurnConfig, note: Progress) -> PartitionedDataset:
    """The snapshots built on Spark (``engine: spark``; ``partitions: auto`` is twice the
    default parallelism): :func:`retain.engine.spark_snapshots.build_dataset_spark`, the same
    data set as on the local engine, brought to the driver for LightGBM."""
    from retain.engine.spark_snapshots import build_dataset_spark
    from retain.jobs.score import spark_partitions, spark_session

    note("starting Spark")
    spark = spark_session(cfg.spark)
    partitions = spark_partitions(spark, cfg.partitions)
    with work_folder("retain-train-churn-") as work:
        return build_dataset_spark(
            spark, cfg, work, partitions=partitions, churn=churn, progress=note
        )


def resolve_cutoffs(
    churn: ChurnConfig, transactions: pd.DataFrame, until: pd.Timestamp
) -> tuple[ChurnConfig, str]:
    """Replace ``auto`` cutoffs by the dates the data's span gives them.

    The rule is :func:`retain.churn.dataset.auto_cutoffs`, from the first transaction day to
    ``until`` (``data.observed_until``); dates given in the config are kept.

    Parameters
    ----------
    churn : ChurnConfig
        The configured churn section.
    transactions : DataFrame
        Validated transactions (their first day starts the span).
    until : Timestamp
        The last day the data covers.

    Returns
    -------
    churn : ChurnConfig
        The section with dates only (``churn`` itself when nothing was ``auto``).
    resolved : str
        What was resolved, e.g. ``"auto cutoffs: train 2011-03-14,2011-06-12, validation
        2011-07-27, test 2011-09-10"`` (logged as ``split.resolved``); empty when nothing was.

    Raises
    ------
    retain.churn.LeakageError
        When the data leave no room for the cutoffs.
    """
    first = None if transactions.empty else transactions[TIMESTAMP].min()
    return resolve_auto_cutoffs(churn, first, until)


def _tune(
    dataset: ChurnDataset, churn: ChurnConfig, seed: int, note: Progress
) -> tuple[dict[str, Any], SearchResult | None]:
    """The LightGBM parameters to train with: the configured ones, tuned by optuna if asked.

    Returns
    -------
    params : dict
        ``churn.lightgbm``, updated with the best trial's parameters after a search.
    search : SearchResult or None
        The search, when ``churn.optuna.n_trials`` > 0.
    """
    params: dict[str, Any] = dict(churn.lightgbm)
    if churn.optuna.n_trials <= 0:
        return params, None
    import optuna  # (b) optional: only when churn.optuna.n_trials > 0

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    note(f"optuna search ({churn.optuna.n_trials} trials on the validation cutoff)")
    search = search_params(dataset, churn, base_params=params, seed=seed)
    return {**params, **search.best_params}, search


def _log_training(fit: ChurnFit, best_name: str, search: SearchResult | None) -> None:
    """Log the split, parameters, metrics, the optuna search, plots and feature importance."""
    log_params_flat(fit.dataset.split.as_params(), prefix="split.")
    log_params_flat(lgbm_params(fit), prefix="lgbm.")
    log_params_flat(
        {"n_features": len(fit.model.feature_names), "best_baseline": best_name},
        prefix="churn_model.",
    )
    log_metrics(fit.metrics)
    if search is not None:
        log_metrics(
            {
                "optuna_best_validation_roc_auc": search.best_value,
                "optuna_trials": float(len(search.trials)),
            }
        )
        log_params_flat(search.best_params, prefix="optuna.best.")
        log_table(search.trials, TABLE_OPTUNA_TRIALS, index=False)
    _log_plots(fit)
    log_table(_importance(fit), TABLE_FEATURE_IMPORTANCE, index=False)


def auc_differences(fit: ChurnFit) -> dict[str, float]:
    """Paired DeLong differences of test AUC, model minus each baseline, with 95% intervals.

    The model's score is the calibrated probability (the one ``test_roc_auc`` is computed
    from); every baseline scored the same test rows (``fit.test_scores``).
    """
    s = fit.test_scores
    baselines = {k.split(":", 1)[1]: v for k, v in s.items() if k.startswith("baseline:")}
    return baseline_auc_differences(s["y"], s["calibrated"], baselines)


def _log_model(
    cfg: RunConfig, fit: ChurnFit, metrics: dict[str, float], features: FeatureConfig
) -> Any:
    """Stamp the model with its feature settings and provenance; log and register it.

    Returns the registered model version (alias ``challenger``).
    """
    model = fit.model
    model.feature_settings = features.model_dump(mode="json")
    model.training = training_provenance(cfg)
    catalogue = feature_catalogue(model.feature_names)
    log_dict(model.metadata(), CHURN_METADATA)
    log_dict(catalogue, CHURN_CATALOGUE)
    log_dict(dataset_summary(fit), CHURN_DATASET)
    example = fit.dataset.test[fit.model.feature_names].head(5).astype("float64")
    return log_churn_model(
        model,
        example,
        metrics=gate_metrics(metrics),
        model_name=registered_name(cfg, "churn"),
        tags={
            "horizon_days": str(model.horizon_days),
            "test_cutoff": fit.dataset.split.test_cutoff.date().isoformat(),
            "clv_feature_model": model.clv_feature_model,
            **provenance_tags(cfg),
        },
    )


def churn_description(data: str, fit: ChurnFit, best_name: str) -> str:
    """The run's description: the data, the cutoffs and horizon, and the test evidence.

    Parameters
    ----------
    data : str
        The data in a few words (:func:`retain.tracking.data_label`).
    fit : ChurnFit
        The trained model, its split and metrics.
    best_name : str
        The baseline with the highest test AUC.

    Returns
    -------
    str
        E.g. "Churn model trained on cdnow_master (69,659 transactions, 23,570 customers)
        with cutoffs 1997-03-31..1997-12-29, horizon 182 days; test AUC 0.80 vs best
        baseline 0.78 (bgnbd_p_no_purchase)."
    """
    split = fit.dataset.split
    first = min([*split.train_cutoffs, split.test_cutoff]).date()
    text = (
        f"Churn model trained on {data} with cutoffs {first}..{split.test_cutoff.date()}, "
        f"horizon {split.horizon_days} days"
    )
    auc = fit.metrics.get(TEST_ROC_AUC)
    if auc is not None:
        text += f"; test AUC {auc:.2f}"
        base = fit.metrics.get(baseline_metric(best_name, ROC_AUC))
        if base is not None:
            text += f" vs best baseline {base:.2f} ({best_name})"
    return text + "."


def lgbm_params(fit: ChurnFit) -> dict[str, Any]:
    """The LightGBM parameters used, without ``num_threads`` (a property of the machine)."""
    return {k: v for k, v in fit.model.params.items() if k != "num_threads"}


def training_provenance(cfg: RunConfig) -> dict[str, str]:
    """What the model was trained from: config name and hash, data set id."""
    return {
        "config_name": cfg.name,
        "config_hash": cfg.config_hash(),
        "dataset": cfg.data.dataset_id(),
    }


def dataset_summary(fit: ChurnFit) -> dict[str, Any]:
    """The dropped columns, the row counts and the training-row sample of the data set.

    Parameters
    ----------
    fit : ChurnFit
        The trained model and its data set.

    Returns
    -------
    dict
        ``dropped_columns``, the counts of :meth:`retain.churn.ChurnDataset.counts` and, when
        the data set records it, ``training_sample``: ``churn.max_training_rows``, the seed, the
        training rows built and used, and the rows and kept rows per (cutoff, label)
        (:meth:`retain.churn.sampling.TrainingSample.as_dict`).
    """
    out: dict[str, Any] = {"dropped_columns": fit.dataset.dropped_columns, **fit.dataset.counts()}
    if fit.dataset.training_sample is not None:
        out["training_sample"] = fit.dataset.training_sample.as_dict()
    return out


def gate_metrics(metrics: dict[str, float]) -> dict[str, float]:
    """The metrics the promotion gate reads (kept as version tags), the AUC intervals included."""
    return {
        k: v
        for k, v in metrics.items()
        if k in CHURN_GATE_METRICS or is_baseline(k, ROC_AUC) or k.startswith(AUC_DIFF_PREFIX)
    }
