"""The ``report`` step: one self-contained HTML report for analysts.

It reads the scores that ``retain score`` wrote for the date (it never scores anew), loads the
model versions their manifest names, computes exact SHAP values for a
sample of customers and builds :func:`build_report`: model metrics against the baselines, churn
evaluation charts, global SHAP bar and beeswarm plots, dependence plots, mean |SHAP| by
lifecycle stage and value tier, example customers with waterfall plots and their reasons,
stage x tier counts and CLV sums, the action plan with its expected value, and the CLV backtest
charts. The page embeds every image (base64), opens offline, is written to its own folder
beside the scores (atomically, see :func:`retain.io.owned_directory`) and logged to MLflow.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from retain.config import ConfigError, RunConfig
from retain.explain import shap_contributions
from retain.names import (
    CHURN_PLOTS,
    CHURN_REPORT_METRICS,
    CLV_BACKTEST_TABLES,
    CLV_REPORT_METRICS,
    MANIFEST_FILE,
    READ_BY_REPORT,
    REPORT_FILE,
    REPORT_FOLDER,
    REPORT_KIND,
    ROC_AUC,
    SCORES_FILE,
    SCORES_KIND,
    is_baseline,
)
from retain.reporting.html import Report, png_to_data_uri
from retain.scoring import ScoringModels, check_model_inputs, model_features

Progress = Callable[[str], None]


@dataclass(frozen=True)
class ReportResult:
    """What :func:`report` produced: the file, its image count and the MLflow run."""

    path: Path
    n_images: int
    run_id: str


def _metric_tables(
    churn_metrics: Mapping[str, float], clv_metrics: Mapping[str, float]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    churn_rows = {k: churn_metrics[k] for k in CHURN_REPORT_METRICS if k in churn_metrics}
    for k, v in sorted(churn_metrics.items()):
        if is_baseline(k, ROC_AUC):
            churn_rows[k] = v
    clv_rows = {k: clv_metrics[k] for k in CLV_REPORT_METRICS if k in clv_metrics}
    for k, v in sorted(clv_metrics.items()):
        if is_baseline(k):
            clv_rows[k] = v
    churn = pd.DataFrame({"value": pd.Series(churn_rows, dtype=float)})
    clv = pd.DataFrame({"value": pd.Series(clv_rows, dtype=float)})
    churn.index.name = "churn metric"
    clv.index.name = "CLV metric"
    return churn, clv


def _examples(scores: pd.DataFrame, sample_ids: pd.Index, n: int = 4) -> list[str]:
    """Customers to show: the top action priority, then one per other retention stage."""
    pool = scores.set_index("customer_id").loc[sample_ids]
    chosen: list[str] = []
    prio = pool["action_priority"].dropna().sort_values()
    if len(prio):
        chosen.append(str(prio.index[0]))
    for stage in ("at_risk", "dormant", "loyal", "new", "growing", "active", "lost"):
        ids = pool.index[(pool["lifecycle_stage"] == stage) & ~pool.index.isin(chosen)]
        if len(ids):
            chosen.append(str(ids[0]))
        if len(chosen) >= n:
            break
    return chosen


def build_report(
    scores: pd.DataFrame,
    inputs: pd.DataFrame,
    models: ScoringModels,
    *,
    churn_metrics: Mapping[str, float] | None = None,
    clv_metrics: Mapping[str, float] | None = None,
    backtest: Mapping[str, pd.DataFrame] | None = None,
    churn_images: Mapping[str, bytes] | None = None,
    title: str = "retain: churn, CLV and retention report",
    sample_size: int = 2000,
    seed: int = 0,
) -> Report:
    """Build the analyst report from scores, model inputs and model metadata (no I/O).

    Parameters
    ----------
    scores : DataFrame
        Output of :func:`retain.scoring.score_customers`.
    inputs : DataFrame
        The churn model's inputs per buying customer (index ``customer_id``), as built by
        :func:`retain.scoring.model_features` for the same as-of date.
    models : ScoringModels
        The models that produced ``scores``.
    churn_metrics, clv_metrics : mapping, optional
        Metrics of the model versions (test metrics and ``baseline_*`` entries).
    backtest : mapping, optional
        CLV backtest tables ``cumulative`` and ``by_frequency``.
    churn_images : mapping, optional
        PNG bytes of the churn evaluation charts by name.
    title : str
        Page title.
    sample_size : int
        Customers sampled for the SHAP plots.
    seed : int
        Sampling seed.

    Returns
    -------
    Report
        Render with :meth:`Report.render`.
    """
    from retain.churn.dataset import feature_matrix
    from retain.reporting import shap_plots as sp

    names = list(models.feature_names)
    buyers = scores.loc[scores["lifecycle_stage"] != "prospect", "customer_id"]
    buyers = pd.Index(buyers[buyers.isin(inputs.index)].astype(str))
    rng = np.random.default_rng(seed)
    take = min(sample_size, len(buyers))
    sample_ids = pd.Index(np.sort(rng.choice(np.asarray(buyers, dtype=object), take, False)))
    X = feature_matrix(inputs.loc[sample_ids], names)
    contrib = shap_contributions(models.booster, X, tables=models.tables())
    by_id = scores.set_index("customer_id")
    as_of = pd.Timestamp(scores["as_of"].iloc[0]).date() if len(scores) else "?"
    rep = Report(
        title,
        f"as of {as_of}; churn model version {models.churn_version}, CLV model version "
        f"{models.clv_version}; {len(scores):,} customers scored.",
    )

    sec = rep.section("Summary")
    totals = pd.DataFrame(
        {
            "value": [
                f"{len(scores):,}",
                f"{int((scores['lifecycle_stage'] == 'prospect').sum()):,}",
                f"{float(np.nansum(scores['clv'])):,.2f}",
                f"{float(np.nanmean(scores['churn_probability'])):.3f}",
                f"{int(scores['action_priority'].notna().sum()):,}",
                f"{float(np.nansum(scores['action_cost'])):,.2f}",
                f"{float(np.nansum(scores['expected_value_saved'])):,.2f}",
            ]
        },
        index=[
            "customers scored",
            "prospects (no purchase yet)",
            "total predicted CLV",
            "mean churn probability",
            "customers to contact",
            "total action cost",
            "total expected value saved",
        ],
    )
    sec.table(totals)
    sec.text(
        "Churn probabilities are calibrated. All SHAP values and reasons are in log-odds of the "
        "uncalibrated LightGBM model (the calibrator is monotone, so signs and rankings carry "
        "over); SHAP values are exact (equal to LightGBM's pred_contrib) and computed for a "
        f"random sample of {take:,} buying customers in the plots below.",
        note=True,
    )

    sec = rep.section("Model metrics against baselines")
    churn_t, clv_t = _metric_tables(churn_metrics or {}, clv_metrics or {})
    if len(churn_t):
        sec.table(churn_t, float_format="{:.4f}")
    if len(clv_t):
        sec.table(clv_t, float_format="{:.4f}")
    for name, data in (churn_images or {}).items():
        sec.image(png_to_data_uri(data), f"churn model: {name}")

    sec = rep.section("Global SHAP importance")
    sec.figure(sp.plot_shap_bar(contrib, names).figure, "mean |SHAP| per feature")
    sec.figure(sp.plot_beeswarm(contrib, X, names), "SHAP beeswarm")

    sec = rep.section("Dependence plots for the top features")
    top = sp.mean_abs_shap(contrib, names).head(4).index
    sec.grid([(sp.plot_dependence(contrib, X, names, f).figure, f"dependence {f}") for f in top])

    sec = rep.section("Mean |SHAP| by lifecycle stage and value tier")
    for col, label in (("lifecycle_stage", "lifecycle stage"), ("value_tier", "value tier")):
        table = sp.mean_abs_by_group(contrib, names, by_id.loc[sample_ids, col])
        sec.figure(
            sp.plot_mean_abs_by_group(table, title=f"Mean |SHAP| by {label}").figure,
            f"mean |SHAP| by {label}",
        )

    sec = rep.section("Example customers")
    for cid in _examples(scores, sample_ids):
        row = by_id.loc[cid]
        i = sample_ids.get_loc(cid)
        sec.text(
            f"Customer {cid}: stage {row['lifecycle_stage']} ({row['stage_reason']}); tier "
            f"{row['value_tier']}; churn probability {row['churn_probability']:.2f}; CLV "
            f"{row['clv']:,.2f}; action: {row['retention_action']} via {row['action_channel']} "
            f"(expected value saved {row['expected_value_saved']:,.2f})."
        )
        reasons = [str(row[c]) for c in ("reason_1", "reason_2", "reason_3") if pd.notna(row[c])]
        sec.blocks.append("<ul>" + "".join(f"<li>{_esc(r)}</li>" for r in reasons) + "</ul>")
        sec.figure(
            sp.plot_waterfall(contrib[i], X[i], names, title=f"customer {cid}"),
            f"waterfall for customer {cid}",
        )

    sec = rep.section("Lifecycle stage x value tier")
    counts = pd.crosstab(scores["lifecycle_stage"], scores["value_tier"], margins=True)
    clv_sum = scores.pivot_table(
        index="lifecycle_stage",
        columns="value_tier",
        values="clv",
        aggfunc="sum",
        margins=True,
        observed=True,
    )
    sec.text("Customers:").table(counts, float_format="{:,.0f}")
    sec.text("Sum of predicted CLV:").table(clv_sum)

    sec = rep.section("Action plan")
    plan = (
        scores.groupby(["retention_action", "action_channel"], observed=True)
        .agg(
            customers=("customer_id", "size"),
            total_cost=("action_cost", "sum"),
            expected_value_saved=("expected_value_saved", "sum"),
            mean_churn_probability=("churn_probability", "mean"),
            clv=("clv", "sum"),
        )
        .sort_values("expected_value_saved", ascending=False)
    )
    sec.table(plan)
    first = scores[scores["action_priority"].notna()].sort_values("action_priority").head(20)
    cols = [
        "action_priority",
        "customer_id",
        "lifecycle_stage",
        "value_tier",
        "retention_action",
        "action_channel",
        "churn_probability",
        "clv",
        "expected_value_saved",
        "reason_1",
    ]
    sec.text("The first 20 customers to act on:").table(first[cols], index=False)

    sec = rep.section("CLV backtest")
    if backtest:
        from retain.reporting import clv_plots

        if "cumulative" in backtest:
            sec.figure(
                clv_plots.plot_cumulative_purchases(backtest["cumulative"]).figure,
                "backtest cumulative purchases",
            )
        if "by_frequency" in backtest:
            sec.figure(
                clv_plots.plot_frequency_table(backtest["by_frequency"]).figure,
                "backtest by frequency",
            )
    else:
        sec.text("No backtest tables were found for this CLV model version.", note=True)
    return rep


def _esc(text: str) -> str:
    return html.escape(text)


def _training_artifacts(version: Any, wanted: Mapping[str, str], dst: str) -> dict[str, Path]:
    """Download what the report reads from a model version's training run.

    What is expected follows from the step that logged the run (its ``step`` tag) and
    :data:`retain.names.READ_BY_REPORT`: a ``train_clv`` run always logs the backtest tables,
    a ``train_churn`` run the evaluation charts. A version without a source run, or whose run
    was not logged by a training job, has none of them (an empty dict).

    Raises
    ------
    retain.tracking.TrackingError
        Naming the run and the artifact, when an expected artifact is missing or unreadable.
    """
    from retain import tracking

    run_id = version.run_id
    if not run_id:
        return {}
    step = tracking.run_tags(run_id).get("step", "")
    expected = set(READ_BY_REPORT.get(step, ()))
    found: dict[str, Path] = {}
    for name, artifact in wanted.items():
        if artifact not in expected:
            continue
        try:
            found[name] = tracking.download_artifact(run_id, artifact, dst)
        except tracking.TrackingError as exc:
            raise tracking.TrackingError(
                f"the report needs {artifact} of run {run_id} ({step} run of model "
                f"{version.name} version {version.version}), which cannot be read: {exc}; "
                "retrain the model or restore the run's artifacts"
            ) from exc
    return found


def _backtest_tables(clv_version: Any) -> dict[str, pd.DataFrame]:
    """The CLV backtest tables of the version's training run (empty when none were logged)."""
    with tempfile.TemporaryDirectory() as tmp:
        paths = _training_artifacts(clv_version, CLV_BACKTEST_TABLES, tmp)
        tables = {name: pd.read_csv(path) for name, path in paths.items()}
    if "cumulative" in tables and "date" in tables["cumulative"]:
        tables["cumulative"]["date"] = pd.to_datetime(tables["cumulative"]["date"])
    return tables


def _churn_images(churn_version: Any) -> dict[str, bytes]:
    """The churn evaluation charts (PNG bytes) of the version's training run."""
    with tempfile.TemporaryDirectory() as tmp:
        paths = _training_artifacts(churn_version, CHURN_PLOTS, tmp)
        return {name: path.read_bytes() for name, path in paths.items()}


def _scores_on_disk(scores_dir: Path, when: pd.Timestamp) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The scores and manifest retain wrote for a date; OutputError when absent or unreadable."""
    from retain.io import OutputError, read_marker

    day = when.date().isoformat()
    scores_path = scores_dir / SCORES_FILE
    if not scores_path.is_file() or read_marker(scores_dir) is None:
        raise OutputError(
            f"no scores as of {day} in {scores_dir}; run `retain score --as-of {day}` first "
            "(or give the date of existing scores with --as-of)"
        )
    try:
        manifest = json.loads(
            (scores_dir / MANIFEST_FILE).read_text(encoding="utf-8"),
            parse_constant=_refuse_constant,  # strict JSON: no NaN or Infinity
        )
        scores = pd.read_parquet(scores_path)
    except (OSError, ValueError, pa.ArrowException) as exc:
        raise OutputError(
            f"cannot read the scores in {scores_dir} ({type(exc).__name__}: {exc}); they may be "
            f"damaged: run `retain score --as-of {day}` again"
        ) from exc
    models = manifest.get("models") if isinstance(manifest, dict) else None
    versions_known = isinstance(models, dict) and all(
        isinstance(models.get(m), dict) and models[m].get("version") for m in ("clv", "churn")
    )
    if not versions_known or manifest.get("as_of") != day or not len(scores):
        raise OutputError(
            f"the scores in {scores_dir} are not retain's scores as of {day}; run "
            f"`retain score --as-of {day}` again"
        )
    return scores, manifest


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def report(
    cfg: RunConfig,
    *,
    as_of: dt.date | str | None = None,
    output_dir: str | Path | None = None,
    model_version: str | None = None,
    allow_other_dataset: bool = False,
    sample_size: int = 2000,
    progress: Progress | None = None,
) -> ReportResult:
    """Build the analyst report on the scores of one date and write/log it.

    The report explains the scores that ``retain score`` wrote for the date, with the model
    versions recorded in their manifest; it never scores anew. It is written to its own folder,
    ``<output root>/<config name>/report/as_of=YYYY-MM-DD/report.html``.

    Parameters
    ----------
    cfg : RunConfig
        Run config with a ``scoring`` section.
    as_of : date or str, optional
        The scoring date whose scores are reported; default ``scoring.as_of``.
    output_dir : str or Path, optional
        Output root holding the scores and receiving the report; default
        ``scoring.output_dir``.
    model_version : str, optional
        Churn model alias, version or run id; must be the version the scores were made with
        (default: that version).
    allow_other_dataset : bool
        Accept models trained on another data set than the config's.
    sample_size : int
        Customers sampled for the SHAP plots.
    progress : callable, optional
        Called with a short message before each stage.

    Returns
    -------
    ReportResult
        The file, its number of images and the MLflow run id.

    Raises
    ------
    retain.io.OutputError
        No readable scores for the date, scores made with another churn model than
        ``model_version``, or a report folder retain may not write.
    retain.tracking.TrackingError
        The store is unreachable, a model version fails its checks, or an artifact its
        training run always logs (backtest tables, evaluation charts) is missing.
    """
    from retain import tracking
    from retain.features.build import build_features
    from retain.io import (
        OutputError,
        check_output_folder,
        load_inputs,
        output_folder,
        owned_directory,
        write_text_atomic,
    )

    note = progress or (lambda _m: None)
    if cfg.scoring is None:
        raise ConfigError(f"config {cfg.name!r} has no 'scoring' section")
    sc = cfg.scoring
    when = pd.Timestamp(pd.Timestamp(as_of or sc.as_of).date())
    root = output_dir or sc.output_dir
    scores_dir = output_folder(root, cfg.name, SCORES_KIND, when.date())
    report_dir = output_folder(root, cfg.name, REPORT_KIND, when.date())
    check_output_folder(report_dir, REPORT_KIND)

    note(f"reading the scores as of {when.date()}")
    scores, manifest = _scores_on_disk(scores_dir, when)
    used = manifest.get("models", {})

    note("loading models")
    settings = tracking.configure(cfg.tracking)
    loaded = tracking.load_scoring_models(
        cfg,
        used["clv"]["version"],
        model_version or used["churn"]["version"],
        allow_other_dataset=allow_other_dataset,
    )
    if str(loaded.churn_version.version) != str(used["churn"]["version"]):
        raise OutputError(
            f"the scores as of {when.date()} were made with churn version "
            f"{used['churn']['version']}, not {loaded.churn_version.version}; report them "
            f"without --model-version, or score again with --model-version {model_version}"
        )
    models = loaded.models
    clv_v, churn_v = loaded.clv_version, loaded.churn_version
    note("loading inputs and features")
    inputs = load_inputs(cfg, when)
    settings = models.feature_config or cfg.features
    feats = build_features(inputs.transactions, when, inputs.events, settings)
    model_inputs = model_features(feats, models)
    check_model_inputs(model_inputs, models, settings)

    note("reading model metrics and backtest tables")
    churn_metrics = tracking.version_metrics(churn_v)
    clv_metrics = tracking.version_metrics(clv_v)
    backtest = _backtest_tables(clv_v)
    images = _churn_images(churn_v)

    note("building the report")
    t0 = time.perf_counter()
    rep = build_report(
        scores,
        model_inputs,
        models,
        churn_metrics=churn_metrics,
        clv_metrics=clv_metrics,
        backtest=backtest,
        churn_images=images,
        title=f"retain report: {cfg.name}, as of {when.date()}",
        sample_size=sample_size,
        seed=cfg.seed,
    )
    info = {"as_of": when.date().isoformat(), "config_name": cfg.name}
    with owned_directory(report_dir, REPORT_KIND, info) as tmp:
        write_text_atomic(rep.render(), tmp / REPORT_FILE)
    path = report_dir / REPORT_FILE
    seconds = time.perf_counter() - t0

    note("logging to MLflow")
    with tracking.tracked_run(cfg, "report", settings=settings) as run:
        tracking.log_params_flat(
            {"path": str(path), "as_of": when.date().isoformat()}, prefix="report."
        )
        tracking.log_metrics({"report_images": rep.n_images, "report_seconds": seconds})
        tracking.log_artifact(path, artifact_path=REPORT_FOLDER)
        run_id = run.info.run_id
    return ReportResult(path, rep.n_images, run_id)
