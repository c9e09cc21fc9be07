"""The analyst report: scores, model inputs and model metadata in, a :class:`Report` out.

Pure: no file, registry or tracking access (:mod:`retain.jobs.report` reads the scores on
disk, loads the models and their training artifacts, then calls :func:`build_report` and
writes the page). The page has one section per question an analyst asks: how many customers
and how much value (summary), how good the models are against their baselines, what drives
churn (global SHAP importance, dependence, by stage and tier), why this customer (examples
with waterfalls and reasons), where the value sits (stage x tier), what to do (the action
plan) and whether the CLV model predicted unseen periods (the backtest).
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from retain.churn.dataset import feature_matrix
from retain.explain import shap_contributions
from retain.names import CHURN_REPORT_METRICS, CLV_REPORT_METRICS, ROC_AUC, is_baseline
from retain.reporting import clv_plots
from retain.reporting import shap_plots as sp
from retain.reporting.html import Report, Section, png_to_data_uri
from retain.scoring import ScoringModels

RETENTION_STAGES = ("at_risk", "dormant", "loyal", "new", "growing", "active", "lost")
"""The order in which example customers are picked, one per stage."""

PLAN_COLUMNS = [
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
"""Columns of the "first customers to act on" table."""


@dataclass(frozen=True)
class ShapSample:
    """Exact SHAP values for a random sample of buying customers.

    Attributes
    ----------
    ids : Index
        The sampled ``customer_id`` values, sorted.
    X : ndarray
        Their model inputs, in the order of ``names``.
    contrib : ndarray
        SHAP contributions (log-odds), one row per customer.
    names : list of str
        The model's feature names.
    """

    ids: pd.Index
    X: np.ndarray
    contrib: np.ndarray
    names: list[str]


def shap_sample(
    scores: pd.DataFrame,
    inputs: pd.DataFrame,
    models: ScoringModels,
    sample_size: int,
    seed: int,
) -> ShapSample:
    """Draw up to ``sample_size`` buying customers and compute their exact SHAP values."""
    names = list(models.feature_names)
    buyers = scores.loc[scores["lifecycle_stage"] != "prospect", "customer_id"]
    buyers = pd.Index(buyers[buyers.isin(inputs.index)].astype(str))
    rng = np.random.default_rng(seed)
    take = min(sample_size, len(buyers))
    ids = pd.Index(np.sort(rng.choice(np.asarray(buyers, dtype=object), take, False)))
    X = feature_matrix(inputs.loc[ids], names)
    contrib = shap_contributions(models.booster, X, tables=models.tables())
    return ShapSample(ids, X, contrib, names)


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
    sample = shap_sample(scores, inputs, models, sample_size, seed)
    as_of = pd.Timestamp(scores["as_of"].iloc[0]).date() if len(scores) else "?"
    rep = Report(
        title,
        f"as of {as_of}; churn model version {models.churn_version}, CLV model version "
        f"{models.clv_version}; {len(scores):,} customers scored.",
    )
    summary_section(rep.section("Summary"), scores, len(sample.ids))
    metrics_section(
        rep.section("Model metrics against baselines"),
        churn_metrics or {},
        clv_metrics or {},
        churn_images or {},
    )
    shap_sections(rep, scores, sample)
    examples_section(rep.section("Example customers"), scores, sample)
    stage_tier_section(rep.section("Lifecycle stage x value tier"), scores)
    action_plan_section(rep.section("Action plan"), scores)
    backtest_section(rep.section("CLV backtest"), backtest or {})
    return rep


def summary_section(sec: Section, scores: pd.DataFrame, n_sampled: int) -> Section:
    """Customers, prospects, total CLV, mean churn probability, contacts, cost and value."""
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
        f"random sample of {n_sampled:,} buying customers in the plots below.",
        note=True,
    )
    return sec


def metric_tables(
    churn_metrics: Mapping[str, float], clv_metrics: Mapping[str, float]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The churn and CLV metrics the report shows, each followed by its baselines."""
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


def metrics_section(
    sec: Section,
    churn_metrics: Mapping[str, float],
    clv_metrics: Mapping[str, float],
    churn_images: Mapping[str, bytes],
) -> Section:
    """Model metrics beside their baselines, then the churn evaluation charts."""
    churn_t, clv_t = metric_tables(churn_metrics, clv_metrics)
    if len(churn_t):
        sec.table(churn_t, float_format="{:.4f}")
    if len(clv_t):
        sec.table(clv_t, float_format="{:.4f}")
    for name, data in churn_images.items():
        sec.image(png_to_data_uri(data), f"churn model: {name}")
    return sec


def shap_sections(rep: Report, scores: pd.DataFrame, sample: ShapSample) -> None:
    """Global importance, dependence of the top features, mean |SHAP| by stage and tier."""
    contrib, X, names = sample.contrib, sample.X, sample.names
    sec = rep.section("Global SHAP importance")
    sec.figure(sp.plot_shap_bar(contrib, names).figure, "mean |SHAP| per feature")
    sec.figure(sp.plot_beeswarm(contrib, X, names), "SHAP beeswarm")

    sec = rep.section("Dependence plots for the top features")
    top = sp.mean_abs_shap(contrib, names).head(4).index
    sec.grid([(sp.plot_dependence(contrib, X, names, f).figure, f"dependence {f}") for f in top])

    sec = rep.section("Mean |SHAP| by lifecycle stage and value tier")
    by_id = scores.set_index("customer_id")
    for col, label in (("lifecycle_stage", "lifecycle stage"), ("value_tier", "value tier")):
        table = sp.mean_abs_by_group(contrib, names, by_id.loc[sample.ids, col])
        sec.figure(
            sp.plot_mean_abs_by_group(table, title=f"Mean |SHAP| by {label}").figure,
            f"mean |SHAP| by {label}",
        )


def example_customers(scores: pd.DataFrame, sample_ids: pd.Index, n: int = 4) -> list[str]:
    """Customers to show: the top action priority, then one per other retention stage."""
    pool = scores.set_index("customer_id").loc[sample_ids]
    chosen: list[str] = []
    prio = pool["action_priority"].dropna().sort_values()
    if len(prio):
        chosen.append(str(prio.index[0]))
    for stage in RETENTION_STAGES:
        ids = pool.index[(pool["lifecycle_stage"] == stage) & ~pool.index.isin(chosen)]
        if len(ids):
            chosen.append(str(ids[0]))
        if len(chosen) >= n:
            break
    return chosen


def examples_section(sec: Section, scores: pd.DataFrame, sample: ShapSample) -> Section:
    """A few customers with their stage, tier, action, reasons and SHAP waterfall."""
    by_id = scores.set_index("customer_id")
    for cid in example_customers(scores, sample.ids):
        row = by_id.loc[cid]
        i = sample.ids.get_loc(cid)
        sec.text(
            f"Customer {cid}: stage {row['lifecycle_stage']} ({row['stage_reason']}); tier "
            f"{row['value_tier']}; churn probability {row['churn_probability']:.2f}; CLV "
            f"{row['clv']:,.2f}; action: {row['retention_action']} via {row['action_channel']} "
            f"(expected value saved {row['expected_value_saved']:,.2f})."
        )
        reasons = [str(row[c]) for c in ("reason_1", "reason_2", "reason_3") if pd.notna(row[c])]
        sec.blocks.append("<ul>" + "".join(f"<li>{_esc(r)}</li>" for r in reasons) + "</ul>")
        sec.figure(
            sp.plot_waterfall(
                sample.contrib[i], sample.X[i], sample.names, title=f"customer {cid}"
            ),
            f"waterfall for customer {cid}",
        )
    return sec


def stage_tier_section(sec: Section, scores: pd.DataFrame) -> Section:
    """Customer counts and predicted CLV per lifecycle stage and value tier."""
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
    return sec


def action_plan_section(sec: Section, scores: pd.DataFrame) -> Section:
    """Actions by channel with cost and expected value, then the first 20 customers to act on."""
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
    sec.text("The first 20 customers to act on:").table(first[PLAN_COLUMNS], index=False)
    return sec


def backtest_section(sec: Section, backtest: Mapping[str, pd.DataFrame]) -> Section:
    """The CLV backtest charts, or a note when the model version logged none."""
    if not backtest:
        sec.text("No backtest tables were found for this CLV model version.", note=True)
        return sec
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
    return sec


def _esc(text: str) -> str:
    return html.escape(text)


__all__ = [
    "PLAN_COLUMNS",
    "RETENTION_STAGES",
    "ShapSample",
    "action_plan_section",
    "backtest_section",
    "build_report",
    "example_customers",
    "examples_section",
    "metric_tables",
    "metrics_section",
    "shap_sample",
    "shap_sections",
    "stage_tier_section",
    "summary_section",
]
