"""The analyst report: scores, model inputs and model metadata in, a :class:`Report` out.

Pure: no file, registry or tracking access (:mod:`retain.jobs.report` reads the scores on
disk, loads the models and their training artifacts, then calls :func:`build_report` and
writes the page). The page has one section per question an analyst asks: how many customers
and how much value (summary), how good the models are against their baselines, what drives
churn (global SHAP importance, dependence, by stage and tier), why this customer (examples
with waterfalls and reasons), where the value sits (stage x tier), what to do (the action
plan), whether the CLV model predicted unseen periods (the backtest) and whether today's
customers still look like those the churn model was tested on (drift,
:mod:`retain.reporting.drift`).
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import pandas as pd

from retain.churn.calibration import apply_calibration
from retain.churn.dataset import feature_matrix
from retain.clv.diagnostics import expected_purchases_matrix, p_alive_matrix, period_transactions
from retain.config import STAGES, TIERS, PolicyConfig
from retain.explain import shap_contributions
from retain.features.rfm import UNIT_NAMES
from retain.names import (
    ACTION_PLAN_CSV,
    CHALLENGER_ALIAS,
    CHAMPION_ALIAS,
    CHURN_REPORT_METRICS,
    CLV_REPORT_METRICS,
    CONTACT_LIST_CSV,
    INTEGER_METRICS,
    NAIVE_RATE,
    ROC_AUC,
    STAGE_TIER_CSV,
    TEST_ROC_AUC,
    baseline_metric,
    is_baseline,
    metric_label,
)
from retain.reporting import clv_diagnostics, clv_plots
from retain.reporting import shap_plots as sp
from retain.reporting.drift import drift_banner, drift_section
from retain.reporting.evaluation import evaluation_section
from retain.reporting.html import Report, Section, png_to_data_uri
from retain.reporting.summary import (
    action_plan_table,
    contact_list,
    format_amount,
    stage_tier_table,
)
from retain.reporting.transitions import transitions_section
from retain.scoring import RISK_STAGES, ScoringModels
from retain.timeline import days_to_units, horizon_days
from retain.transitions import Transitions

RETENTION_STAGES = ("at_risk", "dormant", "loyal", "new", "growing", "active", "lost")
"""The order in which example customers are picked, one per stage."""


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
    model_aliases: Mapping[str, Sequence[str]] | None = None,
    policy: PolicyConfig | None = None,
    currency: str = "$",
    top_n: int = 20,
    title: str = "retain: churn, CLV and retention report",
    sample_size: int = 2000,
    seed: int = 0,
    evaluation: tuple[Mapping[str, Any], Mapping[str, pd.DataFrame]] | None = None,
    transitions: Transitions | None = None,
    drift: Mapping[str, Any] | None = None,
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
    model_aliases : mapping, optional
        Registry aliases of the versions in use, under ``"churn"`` and ``"clv"``; a version
        without the ``champion`` alias gets a banner.
    policy : PolicyConfig, optional
        The policy the scores were made with: the save rates of the contact list. Without
        it, the save rate each row implies (expected value plus cost over churn probability
        times CLV) is shown.
    currency : str
        Written with every amount (see :func:`retain.reporting.summary.format_amount`).
    top_n : int
        Customers in the list of first contacts.
    title : str
        Page title.
    sample_size : int
        Customers sampled for the SHAP plots.
    seed : int
        Sampling seed.
    evaluation : tuple, optional
        The latest evaluation of an earlier scores date (``evaluation.json`` and its tables,
        see :func:`retain.reporting.evaluation.evaluation_section`): shown in its own section.
    transitions : Transitions, optional
        How the customers moved since an earlier scoring date
        (:func:`retain.transitions.compare_scores`): a section with the transition heat map.
    drift : mapping, optional
        The scores manifest's drift entry (:func:`retain.drift.drift_summary`); a banner
        when it calls for retraining.

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
        f"{models.clv_version}; {len(scores):,} customers scored; amounts in {currency}.",
    )
    rep.banners.extend(
        model_banners(churn_metrics or {}, clv_metrics or {}, model_aliases or {}, models)
    )
    banner = drift_banner(drift)
    if banner:
        rep.banners.append(banner)
    reasons_note = reasons_explained(scores, models, sample)
    summary_section(rep.section("Summary"), scores, len(sample.ids), currency, reasons_note)
    metrics_section(
        rep.section("Model metrics against baselines"),
        churn_metrics or {},
        clv_metrics or {},
        churn_images or {},
    )
    drift_section(rep.section("Population drift"), drift)
    shap_sections(rep, scores, sample)
    examples_section(rep.section("Example customers"), scores, sample, currency, reasons_note)
    if models.value is not None and "clv_ml" in scores.columns:
        from retain.reporting.value import value_section

        sec = rep.section("Customer value: ML and BTYD CLV")
        value_section(sec, scores, models.value.holdout, models.value.kind, currency)
    stage_tier_section(rep.section("Lifecycle stage x value tier"), scores, currency)
    action_plan_section(rep.section("Action plan"), scores, currency, policy, top_n, reasons_note)
    if evaluation is not None:
        title = f"Actions evaluated: scores as of {evaluation[0].get('scores_date')}"
        evaluation_section(rep.section(title), *evaluation, currency=currency)
    if transitions is not None:
        title = f"Customer movements since {transitions.date_from}"
        transitions_section(rep.section(title), transitions, currency)
    backtest_section(rep.section("CLV backtest"), backtest or {})
    if models.clv is not None and len(scores):
        clv_diagnostics_section(rep.section("CLV model diagnostics"), models.clv, scores)
    return rep


def model_banners(
    churn_metrics: Mapping[str, float],
    clv_metrics: Mapping[str, float],
    aliases: Mapping[str, Sequence[str]],
    models: ScoringModels | None = None,
) -> list[str]:
    """Warnings for the top of the page: a model in use is no champion or lost to a baseline.

    Parameters
    ----------
    churn_metrics, clv_metrics : mapping
        Metrics of the versions in use (``test_roc_auc`` and ``baseline_*_roc_auc``; CLV
        ``holdout_<metric>`` and ``baseline_naive_rate_holdout_<metric>``).
    aliases : mapping
        Registry aliases of the versions in use under ``"churn"`` and ``"clv"``; a model
        missing from the mapping is not judged.
    models : ScoringModels, optional
        For the version numbers in the texts.

    Returns
    -------
    list of str
        Plain-text warnings, possibly none (the drift banner is
        :func:`retain.reporting.drift.drift_banner`).
    """
    out: list[str] = []
    versions = {
        "churn": getattr(models, "churn_version", "?"),
        "clv": getattr(models, "clv_version", "?"),
    }
    for model, label in (("churn", "churn"), ("clv", "CLV")):
        if model not in aliases:
            continue
        held = sorted(str(a) for a in aliases[model])
        if CHAMPION_ALIAS not in held:
            kind = "a challenger" if CHALLENGER_ALIAS in held else "not the champion"
            out.append(
                f"The {label} model in use (version {versions[model]}) is {kind}"
                f" (aliases: {', '.join(held) or 'none'}): these scores are not the production "
                "ones."
            )
    auc = churn_metrics.get(TEST_ROC_AUC)
    baselines = {k: v for k, v in churn_metrics.items() if is_baseline(k, ROC_AUC)}
    if auc is not None and baselines:
        best_key = max(baselines, key=lambda k: baselines[k])
        if baselines[best_key] > auc:
            out.append(
                f"The churn model ranks customers worse than a simple baseline on the test set: "
                f"ROC AUC {auc:.3f} against {baselines[best_key]:.3f} for "
                f"{metric_label(best_key).split(':')[0]}. Treat its ranking with caution."
            )
    for metric in CLV_REPORT_METRICS:
        base = baseline_metric(NAIVE_RATE, metric)
        if metric in clv_metrics and base in clv_metrics:
            model_err, base_err = abs(clv_metrics[metric]), abs(clv_metrics[base])
            if model_err > base_err:
                out.append(
                    f"The CLV model predicted the holdout worse than the naive baseline (each "
                    f"customer keeps their past purchase rate): {metric_label(metric)} "
                    f"{model_err:.3f} against {base_err:.3f}."
                )
            break
    return out


def typical_churn_probability(models: ScoringModels, sample: ShapSample) -> float:
    """Churn probability of the typical customer the reasons compare with (NaN: unknown).

    SHAP contributions start from the booster's expected value (its average raw score over
    the training rows, the last column of every contribution row); the calibrator turns it
    into a probability.
    """
    if not len(sample.contrib):
        return float("nan")
    expected = np.asarray([sample.contrib[0, -1]], dtype=float)
    return float(np.asarray(apply_calibration(models.calibrator, expected), dtype=float)[0])


def reasons_explained(scores: pd.DataFrame, models: ScoringModels, sample: ShapSample) -> str:
    """What the reasons compare with, the base rates, and the risk-first order, in words."""
    typical = typical_churn_probability(models, sample)
    buyers = scores["lifecycle_stage"] != "prospect"
    mean = float(np.nanmean(scores.loc[buyers, "churn_probability"])) if buyers.any() else np.nan
    parts = [
        "Each reason compares the customer with a typical customer: the churn model's average "
        "score over the customers it was trained on"
        + (f", a churn probability of {typical:.2f}" if np.isfinite(typical) else "")
        + ". 'Raises churn risk' means the factor pushes this customer's risk above that "
        "typical customer's, 'lowers churn risk' below it; so a factor can lower the risk of "
        "a customer whose churn probability is still high."
    ]
    if np.isfinite(mean):
        parts.append(
            f"The customers scored here have a mean churn probability of {mean:.2f} (the "
            "probability at the average score and the average probability differ, since the "
            "probability is not linear in the score)."
        )
    parts.append(
        f"For customers in a retention stage ({', '.join(sorted(RISK_STAGES))}) the reasons "
        "list the factors that raise the risk first, largest first; factors that lower it "
        "follow, marked '(protective)', only when fewer than three raise it. Other customers "
        "get their largest factors either way. The number in brackets is the factor's "
        "contribution in log-odds."
    )
    return " ".join(parts)


def summary_section(
    sec: Section,
    scores: pd.DataFrame,
    n_sampled: int,
    currency: str = "$",
    reasons_note: str = "",
) -> Section:
    """Customers, prospects, total CLV, mean churn probability, contacts, cost and value."""
    money = partial(format_amount, currency=currency)
    totals = pd.DataFrame(
        {
            "value": [
                f"{len(scores):,}",
                f"{int((scores['lifecycle_stage'] == 'prospect').sum()):,}",
                money(float(np.nansum(scores["clv"]))),
                f"{float(np.nanmean(scores['churn_probability'])):.1%}",
                f"{int(scores['action_priority'].notna().sum()):,}",
                money(float(np.nansum(scores["action_cost"]))),
                money(float(np.nansum(scores["expected_value_saved"]))),
            ]
        },
        index=pd.Index(
            [
                "customers scored",
                "prospects (no purchase yet)",
                "total predicted CLV",
                "mean churn probability",
                "customers to contact",
                "total action cost",
                "total expected value saved",
            ],
            name="",
        ),
    )
    sec.table(totals)
    sec.text(
        "Churn probabilities are calibrated. All SHAP values and reasons are in log-odds of the "
        "uncalibrated LightGBM model (the calibrator is monotone, so signs and rankings carry "
        "over); SHAP values are exact (equal to LightGBM's pred_contrib) and computed for a "
        f"random sample of {n_sampled:,} buying customers in the plots below."
        + (f" {reasons_note}" if reasons_note else ""),
        note=True,
    )
    return sec


def format_metric(key: str, value: float) -> str:
    """A metric value for display: counts as integers, rates as percentages, else 3 decimals."""
    if not np.isfinite(value):
        return ""
    if key in INTEGER_METRICS:
        return f"{round(value):,}"
    if key.endswith("_churn_rate") or key.endswith("_capture"):
        return f"{value:.1%}"
    return f"{value:.3f}"


def metric_tables(
    churn_metrics: Mapping[str, float], clv_metrics: Mapping[str, float]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The churn and CLV metrics the report shows, each followed by its baselines.

    Returns
    -------
    churn, clv : DataFrame
        Columns ``metric`` (the human label of :func:`retain.names.metric_label`), ``value``
        (formatted: counts as integers) and ``key`` (the raw metric name, as in MLflow).
    """
    churn_keys = [k for k in CHURN_REPORT_METRICS if k in churn_metrics]
    churn_keys += [k for k in ("test_churn_rate", "test_top_decile_capture") if k in churn_metrics]
    churn_keys += sorted(k for k in churn_metrics if is_baseline(k, ROC_AUC))
    clv_keys = [k for k in CLV_REPORT_METRICS if k in clv_metrics]
    clv_keys += sorted(k for k in clv_metrics if is_baseline(k))

    def table(keys: list[str], metrics: Mapping[str, float]) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "metric": [metric_label(k) for k in keys],
                "value": [format_metric(k, float(metrics[k])) for k in keys],
                "key": keys,
            }
        )

    return table(churn_keys, churn_metrics), table(clv_keys, clv_metrics)


def lift_text(churn_metrics: Mapping[str, float]) -> str | None:
    """The base churn rate and what the top-10% lift means against its ceiling."""
    rate = churn_metrics.get("test_churn_rate")
    lift = churn_metrics.get("test_top_decile_lift")
    if rate is None or not 0 < rate <= 1:
        return None
    text = (
        f"Base rate: {rate:.1%} of the test customers churned within the horizon. The gain chart "
        "shows the share of those churners reached when contacting the customers the model "
        "ranks riskiest first; the dashed diagonal is random contact."
    )
    if lift is not None:
        ceiling = 1.0 / rate
        text += (
            f" Top-10% lift {lift:.2f}: the riskiest 10% churn {lift:.2f} times as often as "
            f"average. With a base rate of {rate:.1%} no model can do better than "
            f"{ceiling:.2f} (every one of the 10% churns), so {lift:.2f} is "
            f"{(lift - 1) / max(ceiling - 1, 1e-9):.0%} of the possible gain over random."
        )
        if rate >= 0.5:
            text += (
                " When most customers churn, every curve sits close to the diagonal: the "
                "ranking matters most for who to leave out, and the churn probability "
                "matters more than the order."
            )
    return text


CHART_HOWTO = {
    "roc": "each curve shows the share of churners caught (up) against the share of "
    "non-churners wrongly flagged (right) as the threshold falls; further up-left is better; "
    "the legend gives the area under each curve (0.5 = random, 1 = perfect).",
    "gain": "contact the customers the model ranks riskiest first: the curve gives the share "
    "of all churners reached (up) for the share of customers contacted (right). The dotted "
    "vertical line marks the top 10%.",
    "calibration": "points on the diagonal mean a predicted 30% churn really churns 30% of "
    "the time; above the line the model under-predicts churn, below it over-predicts.",
    "precision_recall": "precision (share of flagged customers who churn) against recall "
    "(share of churners flagged); the dashed line is the base churn rate.",
}
"""The "how to read" line above each churn evaluation chart, by chart name."""


def metrics_section(
    sec: Section,
    churn_metrics: Mapping[str, float],
    clv_metrics: Mapping[str, float],
    churn_images: Mapping[str, bytes],
) -> Section:
    """Model metrics beside their baselines, the base rate and lift, then the charts."""
    churn_t, clv_t = metric_tables(churn_metrics, clv_metrics)
    if len(churn_t) or len(clv_t):
        sec.howto(
            "each model metric comes first, then the same metric for simple baselines the "
            "model should beat (higher is better for AUC and lift, lower for errors); the key "
            "column is the metric's name in MLflow."
        )
    if len(churn_t):
        sec.table(churn_t, index=False)
    lift = lift_text(churn_metrics)
    if lift:
        sec.text(lift)
    if len(clv_t):
        sec.table(clv_t, index=False)
    sec.text(
        "Drift between the training data and the scored customers is not measured yet.",
        note=True,
    )
    for name, data in churn_images.items():
        if name in CHART_HOWTO:
            sec.howto(CHART_HOWTO[name])
        sec.image(png_to_data_uri(data), f"churn model: {name}")
    return sec


def shap_sections(rep: Report, scores: pd.DataFrame, sample: ShapSample) -> None:
    """Global importance, dependence of the top features, mean |SHAP| by stage and tier."""
    contrib, X, names = sample.contrib, sample.X, sample.names
    sec = rep.section("Global SHAP importance")
    sec.howto(
        "the longer the bar, the more the feature moves churn scores on average, in either "
        "direction."
    )
    sec.figure(sp.plot_shap_bar(contrib, names).figure, "mean |SHAP| per feature")
    sec.howto(
        "one dot per customer and feature; right of 0 pushes towards churn, left away from "
        "it; red dots are high values of the feature, blue low ones."
    )
    sec.figure(sp.plot_beeswarm(contrib, X, names), "SHAP beeswarm")

    sec = rep.section("Dependence plots for the top features")
    top = sp.mean_abs_shap(contrib, names).head(4).index
    sec.howto(
        "how the feature's value (across) moves the churn score (up = towards churn). The x "
        "axis spans the 1%-99% quantiles; customers beyond are drawn at the edge, customers "
        "with a missing value apart under 'missing'."
    )
    sec.grid([(sp.plot_dependence(contrib, X, names, f).figure, f"dependence {f}") for f in top])

    sec = rep.section("Mean |SHAP| by lifecycle stage and value tier")
    sec.howto(
        "brighter cells: the feature matters more for that group's churn scores (mean "
        "absolute SHAP value, log-odds)."
    )
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


def examples_section(
    sec: Section,
    scores: pd.DataFrame,
    sample: ShapSample,
    currency: str = "$",
    reasons_note: str = "",
) -> Section:
    """A few customers with their stage, tier, action, reasons and SHAP waterfall."""
    by_id = scores.set_index("customer_id")
    sec.howto(
        "each waterfall starts from the average score (bottom), the typical customer the "
        "reasons compare with, and adds the customer's features one by one; red bars push "
        "towards churn, blue ones away from it."
    )
    if reasons_note:
        sec.text(reasons_note, note=True)
    for cid in example_customers(scores, sample.ids):
        row = by_id.loc[cid]
        i = sample.ids.get_loc(cid)
        sec.text(
            f"Customer {cid}: stage {row['lifecycle_stage']} ({row['stage_reason']}); tier "
            f"{row['value_tier']}; churn probability {row['churn_probability']:.0%}; CLV "
            f"{format_amount(row['clv'], currency)}; action: {row['retention_action']} via "
            f"{row['action_channel']} (expected value saved "
            f"{format_amount(row['expected_value_saved'], currency)})."
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


def stage_tier_section(sec: Section, scores: pd.DataFrame, currency: str = "$") -> Section:
    """Customer counts and predicted CLV per lifecycle stage and value tier."""
    long = stage_tier_table(scores)
    tiers = [t for t in TIERS if t in set(long["value_tier"])] + ["all"]
    wide = long.pivot(index="lifecycle_stage", columns="value_tier")
    stages = [s for s in STAGES if s in wide.index] + ["all"]
    counts = wide["customers"].reindex(index=stages, columns=tiers)
    clv = wide["clv"].reindex(index=stages, columns=tiers)
    counts.index.name = clv.index.name = "stage \\ tier"
    counts.columns.name = clv.columns.name = None
    sec.howto(
        f"rows are lifecycle stages, columns value tiers; the 'all' row and column are totals. "
        f"Also written as {STAGE_TIER_CSV} beside the scores."
    )
    sec.text("Customers:").table(counts.map(_count))
    sec.text(f"Sum of predicted CLV ({currency}):").table(
        clv.map(lambda v: format_amount(v, currency, 0))
    )
    return sec


def action_plan_section(
    sec: Section,
    scores: pd.DataFrame,
    currency: str = "$",
    policy: PolicyConfig | None = None,
    top_n: int = 20,
    reasons_note: str = "",
) -> Section:
    """Actions by channel with cost and expected value, then the first customers to act on.

    The list of first contacts shows, per row, the arithmetic that ranks it: churn
    probability x CLV x save rate - cost = expected value saved.
    """
    money = partial(format_amount, currency=currency)
    plan = action_plan_table(scores)
    shown = pd.DataFrame(
        {
            "action": plan["retention_action"],
            "channel": plan["action_channel"],
            "customers": plan["customers"].map(_count),
            "contacted": plan["contacted"].map(_count),
            "control (not contacted)": plan["control"].map(_count),
            "total cost": plan["total_cost"].map(money),
            "expected value saved": plan["expected_value_saved"].map(money),
            "mean churn probability": plan["mean_churn_probability"].map(_pct),
            "total CLV": plan["clv"].map(money),
        }
    )
    sec.howto(
        f"one row per action and channel, most valuable first. Customers held out in the "
        f"control group keep their action but are not contacted: cost and expected value "
        f"saved count the customers contacted. Also written as {ACTION_PLAN_CSV} beside the "
        f"scores."
    )
    sec.table(shown, index=False, stack=True)

    if policy is not None or "action_save_rate" in scores:
        first = contact_list(scores, policy, top_n)
        rate_note = "the save rate assumed by the policy's action table when the scores were made"
    else:
        first = scores[scores["action_priority"].notna()].sort_values("action_priority")
        first = first.head(top_n).copy()
        denom = first["churn_probability"] * first["clv"]
        first["save_rate"] = (first["expected_value_saved"] + first["action_cost"]) / denom.where(
            denom > 0
        )
        rate_note = "the save rate these numbers imply"
    rows = pd.DataFrame(
        {
            "rank": first["action_priority"].map(_count),
            "customer": first["customer_id"].astype(str),
            "stage / tier": first["lifecycle_stage"].astype(str)
            + " / "
            + first["value_tier"].astype(str),
            "action": first["retention_action"].astype(str)
            + " ("
            + first["action_channel"].astype(str)
            + ")",
            "expected value saved = churn probability x CLV x save rate - cost": [
                f"{_pct(p)} x {money(v)} x {_pct(r)} - {money(c)} = {money(e)}"
                for p, v, r, c, e in zip(
                    first["churn_probability"],
                    first["clv"],
                    first["save_rate"],
                    first["action_cost"],
                    first["expected_value_saved"],
                    strict=True,
                )
            ],
            "main churn reason": first["reason_1"].astype(str),
        }
    )
    sec.text(f"The first {len(rows)} customers to act on:")
    sec.howto(
        "customers are ranked by the expected value of acting, not by churn risk: expected "
        "value saved = churn probability x CLV x save rate - cost, where the save rate is "
        f"{rate_note} (the share of churners the action keeps). A valuable customer with a "
        "low churn probability can therefore rank above a risky one of little value; filter "
        f"on stage at_risk for the riskiest. The list is also written as {CONTACT_LIST_CSV} "
        "beside the scores."
    )
    sec.table(rows, index=False, stack=True)
    if reasons_note:
        sec.text(f"Main churn reason: {reasons_note}", note=True)
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


def clv_diagnostics_section(sec: Section, model: Any, scores: pd.DataFrame) -> Section:
    """What the CLV model believes, over the range of the scored customers.

    Expected purchases over the model's horizon and P(alive) on a frequency x recency grid (at
    the longest tenure seen), and the customers by number of repeat purchases, actual vs
    expected, at the scoring date.
    """
    unit = UNIT_NAMES[model.time_unit]
    buyers = scores.dropna(subset=["tenure_days"])
    if buyers.empty:
        return sec
    days = {c: buyers[c].to_numpy(dtype=float) for c in ("recency_days", "tenure_days")}
    summary = pd.DataFrame(
        {
            "frequency": buyers["frequency"].to_numpy(dtype=float),
            f"recency_{unit}": days_to_units(days["recency_days"], model.time_unit),
            f"tenure_{unit}": days_to_units(days["tenure_days"], model.time_unit),
            "monetary_value": buyers["monetary_value"].to_numpy(dtype=float),
        }
    )
    max_f = int(max(1, min(40, summary["frequency"].quantile(0.99))))
    max_r = int(max(1, np.ceil(summary[f"tenure_{unit}"].max())))
    horizon = days_to_units(horizon_days(model.horizon), model.time_unit)
    sec.text(
        "How to read: each cell is a customer with that many repeat purchases (columns) and that "
        f"time from first to last purchase (rows, in {unit}); brighter means more. Recent, "
        "frequent buyers sit at the bottom right; a frequent buyer who stopped long ago sits "
        "high up and is likely gone.",
        note=True,
    )
    sec.figure(
        clv_diagnostics.plot_frequency_recency_matrix(
            expected_purchases_matrix(model, horizon, max_f, max_r),
            title=f"expected repeat purchases over the CLV horizon ({model.horizon} months)",
        ).figure,
        "expected purchases by frequency and recency",
    )
    sec.figure(
        clv_diagnostics.plot_frequency_recency_matrix(
            p_alive_matrix(model, max_f, max_r), title="P(alive)"
        ).figure,
        "P(alive) by frequency and recency",
    )
    sec.text(
        "How to read: customers by number of repeat purchases at the scoring date, as counted "
        "and as the model expects them; bars of similar height mean the model fits the spread "
        "of buying frequencies.",
        note=True,
    )
    sec.figure(
        clv_diagnostics.plot_period_transactions(period_transactions(model, summary)).figure,
        "repeat purchases, actual vs model",
    )
    return sec


def _esc(text: str) -> str:
    return html.escape(text)


def _count(value: float) -> str:
    return "" if pd.isna(value) else f"{round(value):,}"


def _pct(value: float) -> str:
    return "" if pd.isna(value) else f"{value:.0%}" if value >= 0.1 else f"{value:.1%}"


__all__ = [
    "RETENTION_STAGES",
    "ShapSample",
    "action_plan_section",
    "backtest_section",
    "CHART_HOWTO",
    "build_report",
    "example_customers",
    "examples_section",
    "format_metric",
    "lift_text",
    "metric_tables",
    "metrics_section",
    "model_banners",
    "shap_sample",
    "shap_sections",
    "stage_tier_section",
    "summary_section",
]
