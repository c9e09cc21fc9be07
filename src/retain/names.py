"""One catalogue of names: output files, MLflow artifact paths and metric keys.

Every job, the report and the tracking code take these names from here, so that what one step
writes is, by construction, what another reads. No file name or metric key is spelled
anywhere else in the jobs, the report or :mod:`retain.tracking`.

- **Output files** in a date's own folder (``<root>/<config>/<kind>/as_of=YYYY-MM-DD``).
- **Artifact paths** inside an MLflow run, by the step that logs them (:data:`WRITTEN_BY`),
  and those the report reads back (:data:`READ_BY_REPORT`).
- **Metric keys** of the runs and model versions, and their builders
  (:func:`holdout_metric`, :func:`baseline_metric`, ...).
"""

from __future__ import annotations

# ------------------------------------------------------------------------- output files

SCORES_FILE = "scores.parquet"
SCORES_CSV = "scores.csv"
REJECTS_FILE = "rejects.parquet"
MANIFEST_FILE = "manifest.json"
REPORT_FILE = "report.html"
FEATURES_FILE = "features.parquet"
STAGE_TIER_CSV = "stage_by_tier.csv"
"""Customers and predicted CLV per lifecycle stage and value tier (beside the scores)."""
ACTION_PLAN_CSV = "action_plan.csv"
"""Customers, cost and expected value saved per action and channel (beside the scores)."""
CONTACT_LIST_CSV = "contact_list.csv"
"""The first ``report.top_n`` customers to contact, with the ranking's arithmetic."""
SUMMARY_CSVS = (STAGE_TIER_CSV, ACTION_PLAN_CSV, CONTACT_LIST_CSV)
"""The summary tables ``retain score`` writes beside the scores (the report shows them too)."""

EVALUATION_FILE = "evaluation.json"
"""What ``retain evaluate-actions`` measured: dates, horizon, counts, metrics, files."""
EVALUATION_BY_ACTION_CSV = "by_action.csv"
"""Treated versus control per retention action (and channel)."""
EVALUATION_BY_STAGE_TIER_CSV = "by_stage_tier.csv"
"""Treated versus control per lifecycle stage and value tier."""
EVALUATION_OVERALL_CSV = "overall.csv"
"""Treated versus control over every contacted customer."""
PROPOSED_SAVE_RATES_CSV = "proposed_save_rates.csv"
"""The measured save rate of each action rule, its interval, sample sizes and proposal."""
PROPOSED_POLICY_FILE = "proposed_policy.yaml"
"""The current policy with the proposed save rates, for the user to review and adopt."""
REALISED_CALIBRATION_CSV = "realised_calibration.csv"
"""Mean predicted churn probability and realised churn rate per decile of the prediction."""
EVALUATION_TABLES = (
    EVALUATION_BY_ACTION_CSV,
    EVALUATION_BY_STAGE_TIER_CSV,
    EVALUATION_OVERALL_CSV,
    PROPOSED_SAVE_RATES_CSV,
    REALISED_CALIBRATION_CSV,
)
"""The tables of an evaluation folder (and of its MLflow run, under ``evaluation/``)."""
COMPARE_STAGES_CSV = "stage_transitions.csv"
"""Customers and CLV per (stage at ``from``, stage at ``to``), written by ``retain compare``."""
COMPARE_TIERS_CSV = "tier_transitions.csv"
"""Customers and CLV per (value tier at ``from``, tier at ``to``)."""
COMPARE_AT_RISK_CSV = "at_risk_outcomes.csv"
"""What became of the customers at risk at ``from``: saved, still at risk, slipped, ..."""
COMPARE_SUMMARY = "summary.json"
"""The counts of a comparison (new, reactivated, absent on one date, ...) and its dates."""
COMPARE_FILES = (COMPARE_STAGES_CSV, COMPARE_TIERS_CSV, COMPARE_AT_RISK_CSV, COMPARE_SUMMARY)

OUTPUT_FILES = (
    SCORES_FILE,
    SCORES_CSV,
    REJECTS_FILE,
    MANIFEST_FILE,
    REPORT_FILE,
    FEATURES_FILE,
    *SUMMARY_CSVS,
    EVALUATION_FILE,
    *EVALUATION_TABLES,
    PROPOSED_POLICY_FILE,
    *COMPARE_FILES,
)

SCORES_KIND = "scores"
"""The kind of output folder ``retain score`` writes (and the report reads)."""
REPORT_KIND = "report"
FEATURES_KIND = "features"
EVALUATION_KIND = "evaluation"
"""The kind of output folder ``retain evaluate-actions`` writes, one per scores date."""
COMPARE_KIND = "compare"
"""The kind of folder ``retain compare`` writes: ``<root>/<config>/compare/from=D1_to=D2``."""
EXPORT_KIND = "export"
"""The kind of folder ``retain export`` writes: ``<root>/<config>/export/as_of=D``."""
OUTPUT_KINDS = (
    SCORES_KIND,
    REPORT_KIND,
    FEATURES_KIND,
    EVALUATION_KIND,
    COMPARE_KIND,
    EXPORT_KIND,
)

# ----------------------------------------------------------- artifacts: every tracked run

CONFIG_FOLDER = "config"
"""The config file as given (``config/<file name>``)."""
CONFIG_RESOLVED = "config/resolved.json"

# ---------------------------------------------------------------- artifacts: train_clv

CLV_ROW_COUNTS = "data/row_counts.json"
BACKTEST_COMPARISON = "backtest/comparison.csv"
BACKTEST_BY_FREQUENCY = "backtest/by_frequency.csv"
BACKTEST_CUMULATIVE = "backtest/cumulative.csv"
BACKTEST_PER_CUSTOMER = "backtest/per_customer.csv"
BACKTEST_FOLDER = "backtest"
CLV_MODEL_DICT = "model/clv_model.json"
PLOT_BACKTEST_CUMULATIVE = "plots/backtest_cumulative_purchases.png"
PLOT_BACKTEST_BY_FREQUENCY = "plots/backtest_by_frequency.png"

# -------------------------------------------------------------- artifacts: train_churn

PLOT_CALIBRATION = "plots/calibration.png"
PLOT_ROC = "plots/roc.png"
PLOT_PRECISION_RECALL = "plots/precision_recall.png"
PLOT_GAIN = "plots/gain.png"
PLOT_SHAP_BAR = "plots/shap_bar.png"
"""Mean |SHAP| per feature on a seeded sample of the test cutoff's customers."""
PLOT_SHAP_BEESWARM = "plots/shap_beeswarm.png"
"""The SHAP beeswarm of the same sample."""
TABLE_CALIBRATION = "tables/calibration_test.csv"
TABLE_CALIBRATION_RAW = "tables/calibration_test_raw.csv"
TABLE_OPTUNA_TRIALS = "tables/optuna_trials.csv"
TABLE_FEATURE_IMPORTANCE = "tables/feature_importance.csv"
CHURN_METADATA = "churn_model/metadata.json"
CHURN_CATALOGUE = "churn_model/catalogue.json"
CHURN_DATASET = "churn_model/dataset.json"

# -------------------------------------------------------------- artifacts: train_value

PLOT_VALUE_CAPTURE = "plots/value_capture.png"
"""Share of actual value captured against share of customers targeted (test cutoff)."""
PLOT_VALUE_DECILES = "plots/value_deciles.png"
"""Mean predicted and actual value per decile of predicted value (test cutoff)."""
TABLE_VALUE_DECILES = "tables/value_deciles_test.csv"
"""The decile table of every value prediction compared (column ``method``)."""
TABLE_VALUE_IMPORTANCE = "tables/value_feature_importance.csv"
VALUE_METADATA = "value_model/metadata.json"
VALUE_CATALOGUE = "value_model/catalogue.json"

# ---------------------------------------------------------- artifacts: score, promote, report

SCORING_MANIFEST = "scoring/manifest.json"
SCORING_DISTRIBUTION = "scoring/score_distribution.csv"
SCORING_STAGE_BY_TIER = "scoring/stage_by_tier.csv"
SCORING_DRIFT = "scoring/drift.csv"
"""Per-feature drift figures of a scoring run (:func:`retain.drift.drift_table`; only the
header when the churn model has no reference profile)."""
PROMOTION_DECISION = "promotion/decision.json"
EVALUATION_FOLDER = "evaluation"
"""The evaluate_actions run logs its folder's files under ``evaluation/``."""
COMPARE_FOLDER = "compare"
"""Where a ``compare`` run logs its tables (the files of :data:`COMPARE_FILES`)."""
REPORT_FOLDER = "report"
"""The report run logs ``report/report.html``."""

# ------------------------------------------------------------- artifacts: model folders

CLV_MODEL_FILE = "clv_model.json"
"""The CLV model's saved form inside a registered model (``artifacts/clv_model.json``)."""
CHURN_MODEL_FILE = "churn_model.json"
"""The churn model's saved form inside a registered model (``artifacts/churn_model.json``)."""
VALUE_MODEL_FILE = "value_model.json"
"""The value model's saved form inside a registered model (``data/value_model.json``)."""

# ------------------------------------------------------------------ what reads what

CLV_BACKTEST_TABLES = {"cumulative": BACKTEST_CUMULATIVE, "by_frequency": BACKTEST_BY_FREQUENCY}
"""Backtest tables the report charts, by name: the CLV model's source run logs them."""
CHURN_PLOTS = {
    "roc": PLOT_ROC,
    "gain": PLOT_GAIN,
    "calibration": PLOT_CALIBRATION,
    "precision_recall": PLOT_PRECISION_RECALL,
}
"""Churn evaluation charts the report embeds, by name: the churn model's source run logs them."""

WRITTEN_BY = {
    "train_clv": (
        CLV_ROW_COUNTS,
        BACKTEST_COMPARISON,
        BACKTEST_BY_FREQUENCY,
        BACKTEST_CUMULATIVE,
        BACKTEST_PER_CUSTOMER,
        CLV_MODEL_DICT,
        PLOT_BACKTEST_CUMULATIVE,
        PLOT_BACKTEST_BY_FREQUENCY,
    ),
    "train_churn": (
        PLOT_CALIBRATION,
        PLOT_ROC,
        PLOT_PRECISION_RECALL,
        PLOT_GAIN,
        PLOT_SHAP_BAR,
        PLOT_SHAP_BEESWARM,
        TABLE_CALIBRATION,
        TABLE_CALIBRATION_RAW,
        TABLE_FEATURE_IMPORTANCE,
        CHURN_METADATA,
        CHURN_CATALOGUE,
        CHURN_DATASET,
    ),
    "train_value": (
        PLOT_VALUE_CAPTURE,
        PLOT_VALUE_DECILES,
        TABLE_VALUE_DECILES,
        TABLE_VALUE_IMPORTANCE,
        VALUE_METADATA,
        VALUE_CATALOGUE,
    ),
    "score": (SCORING_MANIFEST, SCORING_DISTRIBUTION, SCORING_STAGE_BY_TIER, SCORING_DRIFT),
    "promote": (PROMOTION_DECISION,),
    "evaluate_actions": tuple(
        f"{EVALUATION_FOLDER}/{name}"
        for name in (EVALUATION_FILE, *EVALUATION_TABLES, PROPOSED_POLICY_FILE)
    ),
    "compare": tuple(f"{COMPARE_FOLDER}/{name}" for name in COMPARE_FILES),
}
"""The artifacts each step always logs (``train_churn`` adds ``TABLE_OPTUNA_TRIALS`` when it
searches parameters)."""

READ_BY_REPORT = {
    "train_clv": tuple(CLV_BACKTEST_TABLES.values()),
    "train_churn": tuple(CHURN_PLOTS.values()),
}
"""The artifacts the report reads from the source run of each model version, by its step."""

# ------------------------------------------------------------------------ registry aliases

CHAMPION_ALIAS = "champion"
"""The alias of the version in production (as :data:`retain.tracking.registry.CHAMPION`)."""
CHALLENGER_ALIAS = "challenger"
"""The alias of a candidate version (as :data:`retain.tracking.registry.CHALLENGER`)."""

# ------------------------------------------------------------------------- metric keys

BASELINE_PREFIX = "baseline_"
ROC_AUC = "roc_auc"
TEST_ROC_AUC = f"test_{ROC_AUC}"
HOLDOUT_PREFIX = "holdout_"
NAIVE_RATE = "naive_rate"
"""The CLV baseline: each customer keeps their calibration purchase rate."""
LOG_LIKELIHOOD = "log_likelihood"
CALIBRATION_LOG_LIKELIHOOD = "calibration_log_likelihood"
PROMOTION_ACCEPTED = "promotion_accepted"

CHURN_GATE_METRICS = (TEST_ROC_AUC, "test_pr_auc", "test_brier", "test_ece")
"""Churn metrics copied onto a registered version (with the baseline AUCs)."""
CHURN_REPORT_METRICS = (
    TEST_ROC_AUC,
    "test_pr_auc",
    "test_brier",
    "test_log_loss",
    "test_ece",
    "test_raw_ece",
    "test_top_decile_lift",
    "validation_roc_auc",
    "best_iteration",
)
"""Churn metrics the report shows (then every baseline AUC)."""


def holdout_metric(metric: str) -> str:
    """``holdout_<metric>``: a CLV backtest error on the holdout (``mae`` -> ``holdout_mae``).

    A key that already starts with ``holdout_`` is returned unchanged.
    """
    return metric if metric.startswith(HOLDOUT_PREFIX) else f"{HOLDOUT_PREFIX}{metric}"


def candidate_metric(model: str, metric: str) -> str:
    """``<model>_<key>``: a metric of one backtested purchase model (``bgnbd_holdout_mae``)."""
    return f"{model}_{metric}"


def baseline_metric(name: str, metric: str) -> str:
    """``baseline_<name>_<metric>``: a baseline's metric (``baseline_recency_days_roc_auc``)."""
    return f"{BASELINE_PREFIX}{name}_{metric}"


MANIFEST_DRIFT = "drift"
"""The scoring manifest's drift entry (:func:`retain.drift.drift_summary`)."""
DRIFT_PSI_MAX = "drift_psi_max"
DRIFT_CHURN_RATE_SHIFT = "drift_churn_rate_shift"
DRIFT_RETRAIN = "drift_retrain"
"""1 when the drift check says the churn model should be retrained, else 0."""
DRIFT_PSI_PREFIX = "drift_psi."
"""Per-feature PSI metrics of a scoring run: ``drift_psi.<feature>``."""
AUC_DIFF_PREFIX = "auc_diff_vs_"
AUC_DIFF_PARTS = ("", "se", "ci_low", "ci_high")
"""The parts of a paired AUC comparison: the difference itself, its DeLong standard error and
the bounds of its 95% interval."""


def auc_difference_metric(baseline: str, part: str = "") -> str:
    """``auc_diff_vs_<baseline>[_<part>]``: test AUC of the model minus a baseline's (paired).

    ``part`` is one of :data:`AUC_DIFF_PARTS`: ``""`` the difference, ``"se"`` its DeLong
    standard error, ``"ci_low"`` / ``"ci_high"`` the bounds of its 95% interval
    (``auc_diff_vs_bgnbd_p_no_purchase_ci_high``).
    """
    if part not in AUC_DIFF_PARTS:
        raise ValueError(f"part must be one of {AUC_DIFF_PARTS}, got {part!r}")
    key = f"{AUC_DIFF_PREFIX}{baseline}"
    return f"{key}_{part}" if part else key


def baseline_name(key: str, metric: str) -> str:
    """The baseline's name in ``baseline_<name>_<metric>`` (``baseline_x_roc_auc`` -> ``x``)."""
    if not is_baseline(key, metric):
        raise ValueError(f"{key!r} is not a baseline_<name>_{metric} key")
    return key[len(BASELINE_PREFIX) : -len(metric) - 1]


def is_baseline(key: str, metric: str | None = None) -> bool:
    """Whether ``key`` is a baseline metric (of ``metric``, e.g. ``roc_auc``, when given)."""
    if not key.startswith(BASELINE_PREFIX):
        return False
    return metric is None or key.endswith(f"_{metric}")


VALUE_GATE_METRIC = "test_ml_top20_capture"
"""The value model's promotion metric: share of the test cutoff's actual value held by its top
20% (higher is better)."""
VALUE_GATE_METRICS = (
    VALUE_GATE_METRIC,
    "test_btyd_top20_capture",
    "test_naive_top20_capture",
    "test_ml_gini",
    "test_btyd_gini",
)
"""Value metrics copied onto a registered version."""


def value_metric(method: str, metric: str) -> str:
    """``test_<method>_<metric>``: a value prediction's test figure (``test_btyd_gini``)."""
    return f"test_{method}_{metric}"


CLV_REPORT_METRICS = tuple(
    holdout_metric(m) for m in ("mae", "rmse", "total_abs_error", "total_rel_error")
)
"""CLV metrics the report shows (then every baseline)."""


# ---------------------------------------------------------------- metric labels (report)

METRIC_LABELS = {
    TEST_ROC_AUC: "ROC AUC (test)",
    "test_pr_auc": "PR AUC / average precision (test)",
    "test_brier": "Brier score (test, lower is better)",
    "test_log_loss": "log loss (test, lower is better)",
    "test_ece": "calibration error, ECE (test, lower is better)",
    "test_raw_ece": "calibration error before calibration (test)",
    "test_top_decile_lift": "top-10% lift (test)",
    "test_top_decile_capture": "share of churners in the top 10% (test)",
    "test_churn_rate": "base churn rate (test)",
    "test_rows": "customers in the test set",
    "validation_roc_auc": "ROC AUC (validation)",
    "best_iteration": "trees in the model (best iteration)",
    "n_features": "model inputs (features)",
    holdout_metric("mae"): "mean absolute error per customer (holdout purchases)",
    holdout_metric("rmse"): "root mean squared error per customer (holdout purchases)",
    holdout_metric("total_abs_error"): "error in total holdout purchases (absolute)",
    holdout_metric("total_rel_error"): "error in total holdout purchases (relative)",
    ROC_AUC: "ROC AUC",
    "pr_auc": "PR AUC",
    "top_decile_lift": "top-10% lift",
}
"""Human labels of the metric keys the report shows (the raw key is shown beside them)."""

INTEGER_METRICS = frozenset({"best_iteration", "n_features", "test_rows"})
"""Metric keys whose values are counts (shown without decimals)."""

BASELINE_LABELS = {
    "p_no_purchase": "P(no purchase in the horizon)",
    "neg_expected_purchases": "fewest expected purchases",
    "days_since_last_purchase": "days since the last purchase",
    NAIVE_RATE: "each customer keeps their past purchase rate",
}
"""Human names of the baseline scores (suffixes of ``baseline_<model>_<score>``)."""

_MODEL_LABELS = {"bgnbd": "BG/NBD", "pareto_nbd": "Pareto/NBD", "mbgnbd": "MBG/NBD"}


def metric_label(key: str) -> str:
    """A human label for a metric key; unknown keys come back with ``_`` read as spaces.

    ``baseline_<name>_<metric>`` reads as "baseline <name>: <metric label>", e.g.
    ``baseline_pareto_nbd_neg_expected_purchases_roc_auc`` -> "baseline Pareto/NBD, fewest
    expected purchases: ROC AUC".
    """
    if key in METRIC_LABELS:
        return METRIC_LABELS[key]
    if key.startswith(BASELINE_PREFIX):
        rest = key[len(BASELINE_PREFIX) :]
        for metric, label in sorted(METRIC_LABELS.items(), key=lambda kv: -len(kv[0])):
            suffix = "_" + metric.removeprefix("test_")
            if rest.endswith(suffix):
                return f"baseline {_baseline_name(rest[: -len(suffix)])}: {label.split(' (')[0]}"
    return key.replace("_", " ")


def _baseline_name(name: str) -> str:
    for model, label in _MODEL_LABELS.items():
        if name.startswith(model + "_") and name[len(model) + 1 :] in BASELINE_LABELS:
            return f"{label}, {BASELINE_LABELS[name[len(model) + 1 :]]}"
    return BASELINE_LABELS.get(name, name.replace("_", " "))
