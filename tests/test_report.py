"""The analyst report: one self-contained HTML file with its images embedded."""

from __future__ import annotations

import base64
import re
from pathlib import Path
from types import SimpleNamespace

import lightgbm as lgb
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from retain import names
from retain.churn import ChurnModel
from retain.churn.calibration import fit_calibration
from retain.churn.dataset import feature_matrix, select_feature_columns
from retain.clv import ClvModel
from retain.config import TrackingConfig, load_policy
from retain.features.build import build_features
from retain.features.labels import churn_labels
from retain.io import write_table_atomic, write_text_atomic
from retain.reporting import shap_plots as sp
from retain.reporting.html import Report, table_html
from retain.reporting.report import build_report
from retain.reporting.summary import contact_list, format_amount, summary_tables
from retain.scoring import ScoringModels, model_features, score_customers
from retain.synthetic import generate_synthetic

POLICY = Path(__file__).resolve().parents[1] / "configs" / "policy.yaml"
AS_OF = pd.Timestamp("2023-12-31")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def scored():
    data = generate_synthetic(600, "2022-01-01", "2023-12-31", seed=5, with_events=True)
    tx, events = data.transactions, data.events
    cut = pd.Timestamp("2023-03-31")
    feats = build_features(tx, cut, events)
    names = [c for c in select_feature_columns(feats.reset_index())[0] if c != "customer_id"]
    churn = ChurnModel(None, names, {}, horizon_days=90)  # the booster comes below
    models = ScoringModels(None, churn, clv_version="1")
    inputs = model_features(feats, models)
    y = churn_labels(tx, cut, 90, AS_OF).reindex(inputs.index).astype(int).to_numpy()
    X = feature_matrix(inputs, names)
    params = {"objective": "binary", "verbose": -1, "num_leaves": 8, "max_depth": 3, "seed": 0}
    churn.booster = lgb.train(params, lgb.Dataset(X, y), 30)
    churn.calibrator = fit_calibration(churn.booster.predict(X, raw_score=True), y, "sigmoid")
    summary = pd.DataFrame(
        {
            "frequency": feats["frequency"],
            "recency_weeks": feats["recency_days"] / 7,
            "tenure_weeks": feats["tenure_days"] / 7,
            "monetary_value": feats["monetary_value"],
        }
    )
    models.clv = ClvModel(purchase_model="bgnbd", time_unit="W").fit(summary)
    models.churn_version = "2"
    scores = score_customers(tx, AS_OF, models, load_policy(POLICY), events=events)
    now = model_features(build_features(tx, AS_OF, events), models)
    return scores, now, models


def small_report(scored, **kwargs):
    """The report on the small synthetic fixture (also opened by the browser test)."""
    scores, inputs, models = scored
    weeks = np.arange(1, 11)
    backtest = {
        "cumulative": pd.DataFrame(
            {
                "week": weeks,
                "date": pd.date_range("2023-01-07", periods=10, freq="7D"),
                "actual": np.cumsum(weeks),
                "predicted": np.cumsum(weeks) * 1.05,
            }
        ),
        "by_frequency": pd.DataFrame(
            {
                "frequency": [str(f) for f in range(12)] + ["12+"],
                "customers": [900 - 60 * f for f in range(13)],
                "mean_actual": np.linspace(0.2, 6.0, 13),
                "mean_predicted": np.linspace(0.25, 5.8, 13),
            }
        ),
    }
    args = {
        "churn_metrics": {
            "test_roc_auc": 0.70,
            "baseline_recency_roc_auc": 0.72,
            "baseline_pareto_nbd_neg_expected_purchases_roc_auc": 0.69,
            "best_iteration": 217.0,
            "test_churn_rate": 0.8,
            "test_top_decile_lift": 1.21,
        },
        "clv_metrics": {"holdout_mae": 1.2, "baseline_naive_rate_holdout_mae": 1.5},
        "backtest": backtest,
        "model_aliases": {"churn": ["challenger"], "clv": ["champion"]},
        "policy": load_policy(POLICY),
        "currency": "EUR",
        "sample_size": 300,
    }
    return build_report(scores, inputs, models, **{**args, **kwargs})


def test_report_is_self_contained_with_embedded_images(scored, tmp_path: Path) -> None:
    scores, _, _ = scored
    before = set(plt.get_fignums())
    rep = small_report(scored)
    assert set(plt.get_fignums()) == before  # every figure was closed
    path = tmp_path / "out" / "report.html"
    write_text_atomic(rep.render(), path)
    text = path.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>")
    sources = re.findall(r'<img alt="[^"]*" src="([^"]+)"', text)
    # bar, beeswarm, 4 dependence, 2 group heatmaps, >= 1 waterfall, 2 backtest charts,
    # 3 CLV diagnostics (two frequency x recency matrices, period transactions)
    assert len(sources) >= 14 and len(sources) == rep.n_images
    for src in sources:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1])[:8] == PNG_MAGIC
    assert not re.search(r"(src|href)=\"(https?:|//|file:)", text)  # opens offline
    for heading in (
        "Model metrics against baselines",
        "Global SHAP importance",
        "Dependence plots",
        "Mean |SHAP| by lifecycle stage and value tier",
        "Example customers",
        "Lifecycle stage x value tier",
        "Action plan",
        "CLV backtest",
        "CLV model diagnostics",
    ):
        assert heading in text
    assert "log-odds of the uncalibrated" in text
    assert "baseline_recency_roc_auc" in text
    first_reason = scores.loc[scores["action_priority"] == 1, "reason_1"].iloc[0]
    assert first_reason.split(":")[0] in text


def test_report_labels_metrics_counts_and_amounts(scored) -> None:
    html = small_report(scored).render()
    # a human label beside the raw key; a count without decimals
    assert names.metric_label("baseline_pareto_nbd_neg_expected_purchases_roc_auc") in html
    assert "baseline_pareto_nbd_neg_expected_purchases_roc_auc" in html
    assert ">217<" in html and "217.0" not in html
    # the currency goes with amounts; a how-to line precedes the charts
    assert html.count(" EUR") >= 10
    assert html.count('class="howto"') >= 6
    # the base rate and the lift's ceiling are spelled out
    assert "Base rate: 80.0%" in html and "1.25" in html


def test_banners_for_a_challenger_and_a_model_that_lost_to_its_baseline(scored) -> None:
    html = small_report(scored).render()
    banners = re.findall(r'<div class="banner"[^>]*>(.*?)</div>', html)
    assert len(banners) == 2
    assert any("challenger" in b for b in banners)
    assert any("baseline" in b for b in banners)
    quiet = small_report(
        scored,
        churn_metrics={"test_roc_auc": 0.8, "baseline_recency_roc_auc": 0.7},
        model_aliases={"churn": ["champion"], "clv": ["champion"]},
    ).render()
    assert 'class="banner"' not in quiet


def test_contact_list_shows_the_ranking_arithmetic(scored) -> None:
    scores, _, _ = scored
    policy = load_policy(POLICY)
    first = contact_list(scores, policy, top_n=5)
    # the first five customers to contact: the control group keeps its priorities, unlisted
    to_contact = scores.loc[scores["contact"], "action_priority"].astype(int)
    assert len(first) == 5 and first["action_priority"].tolist() == sorted(to_contact)[:5]
    recomputed = (
        first["churn_probability"] * first["clv"] * first["save_rate"] - first["action_cost"]
    )
    np.testing.assert_allclose(recomputed, first["expected_value_saved"])
    html = small_report(scored).render()
    assert "churn probability x CLV x save rate - cost" in html


def test_summary_tables_are_written_as_csv_beside_the_scores(scored, tmp_path: Path) -> None:
    scores, _, _ = scored
    tables = summary_tables(scores, load_policy(POLICY), top_n=7)
    assert set(tables) == set(names.SUMMARY_CSVS)
    stage_tier = tables[names.STAGE_TIER_CSV]
    total = stage_tier.query("lifecycle_stage == 'all' and value_tier == 'all'")
    assert int(total["customers"].iloc[0]) == len(scores)
    cells = stage_tier.query("lifecycle_stage != 'all' and value_tier != 'all'")
    assert cells["customers"].sum() == len(scores)
    plan = tables[names.ACTION_PLAN_CSV]
    assert plan["customers"].sum() == len(scores)
    assert len(tables[names.CONTACT_LIST_CSV]) == 7
    for name, table in tables.items():
        write_table_atomic(table, tmp_path / name)
        back = pd.read_csv(tmp_path / name)
        assert list(back.columns) == list(table.columns)


def test_format_amount_places_symbols_and_codes() -> None:
    assert format_amount(1234.5, "$") == "$1,234.50"
    assert format_amount(-3, "$") == "-$3.00"
    assert format_amount(1234.5, "EUR").endswith(" EUR")
    assert format_amount(float("nan"), "$") == ""


def test_dependence_plot_clips_its_axis_and_draws_missing_values_apart() -> None:
    rng = np.random.default_rng(0)
    x = np.r_[rng.uniform(0, 1, 500), [500.0], [np.nan] * 20]
    contrib = np.c_[rng.normal(size=x.size), np.zeros(x.size)]
    ax = sp.plot_dependence(contrib, x[:, None], ["gap_ratio"], "gap_ratio")
    try:
        lo, hi = sp.dependence_axis(x)
        assert hi < 2  # the outlier does not stretch the axis
        assert ax.get_xlim()[1] < 2
        labels = [t.get_text() for t in ax.get_xticklabels()]
        assert "missing" in labels
        legend = [t.get_text() for t in ax.get_legend().get_texts()]
        assert any("missing" in t and "20" in t for t in legend)
    finally:
        plt.close(ax.figure)


def test_report_page_is_responsive() -> None:
    rep = Report("t")
    rep.section("s").table(pd.DataFrame({"a": range(3)}))
    html = rep.render()
    assert "name='viewport'" in html
    assert '<div class="table-wrap"><table' in html
    assert "@media (max-width" in html


def test_html_escapes_values() -> None:
    rep = Report("t")
    rep.section("s").text("<script>").table(pd.DataFrame({"a": ["<b>"]}))
    html = rep.render()
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "&lt;b&gt;" in table_html(pd.DataFrame({"a": ["<b>"]}))


# ------------------------------------------------------- artifacts of the training runs


def _version_of(run_id: str) -> SimpleNamespace:
    return SimpleNamespace(run_id=run_id, name="report-test-clv", version="7")


def test_a_missing_backtest_table_is_an_error_naming_run_and_artifact(mlflow_tmp):
    from retain import tracking
    from retain.jobs.report import _backtest_tables, _churn_images

    settings = tracking.configure(TrackingConfig(experiment_name="report-artifacts"))
    table = pd.DataFrame({"date": ["1997-01-01"], "actual": [1.0], "predicted": [1.0]})
    with tracking.start_run(settings, "clv", {"step": "train_clv"}) as run:
        tracking.log_table(table, names.BACKTEST_CUMULATIVE, index=False)
    run_id = run.info.run_id
    with pytest.raises(tracking.TrackingError) as exc:
        _backtest_tables(_version_of(run_id))
    message = str(exc.value)
    assert run_id in message and names.BACKTEST_BY_FREQUENCY in message
    assert "report-test-clv version 7" in message

    with tracking.start_run(settings, "churn", {"step": "train_churn"}) as run:
        pass
    with pytest.raises(tracking.TrackingError, match=names.PLOT_ROC):
        _churn_images(_version_of(run.info.run_id))


def test_backtest_tables_of_a_complete_run_and_of_a_version_that_logged_none(mlflow_tmp):
    from retain import tracking
    from retain.jobs.report import _backtest_tables

    settings = tracking.configure(TrackingConfig(experiment_name="report-artifacts"))
    cumulative = pd.DataFrame({"date": ["1997-01-01"], "actual": [1.0], "predicted": [1.0]})
    by_frequency = pd.DataFrame({"frequency": [0], "actual": [1.0], "predicted": [1.0]})
    with tracking.start_run(settings, "clv", {"step": "train_clv"}) as run:
        tracking.log_table(cumulative, names.BACKTEST_CUMULATIVE, index=False)
        tracking.log_table(by_frequency, names.BACKTEST_BY_FREQUENCY, index=False)
    tables = _backtest_tables(_version_of(run.info.run_id))
    assert set(tables) == {"cumulative", "by_frequency"}
    assert pd.api.types.is_datetime64_any_dtype(tables["cumulative"]["date"])
    # a version logged outside the training job has no backtest tables: the report notes it
    with tracking.start_run(settings, "elsewhere") as other:
        pass
    assert _backtest_tables(_version_of(other.info.run_id)) == {}
    assert _backtest_tables(_version_of(None)) == {}


def test_report_shows_an_evaluation_of_earlier_scores_when_given_one(scored) -> None:
    from retain.evaluation.actions import compare_groups
    from retain.evaluation.proposal import proposed_save_rates
    from retain.names import (
        EVALUATION_BY_ACTION_CSV,
        EVALUATION_OVERALL_CSV,
        PROPOSED_SAVE_RATES_CSV,
    )

    rng = np.random.default_rng(0)
    n = 400
    frame = pd.DataFrame(
        {
            "lifecycle_stage": "at_risk",
            "value_tier": "vip",
            "retention_action": "personal call",
            "action_channel": "phone",
            "action_cost": 15.0,
            "treatment_group": np.where(rng.random(n) < 0.5, "control", "treatment"),
            "purchased": rng.random(n) < 0.4,
            "revenue": rng.gamma(2.0, 10.0, n),
        }
    )
    tables = {
        EVALUATION_BY_ACTION_CSV: compare_groups(frame, ["retention_action", "action_channel"]),
        EVALUATION_OVERALL_CSV: compare_groups(frame),
        PROPOSED_SAVE_RATES_CSV: proposed_save_rates(frame, load_policy(POLICY)),
    }
    summary = {"scores_date": "2023-09-30", "horizon_days": 90, "confidence": 0.95}
    without = small_report(scored)
    rep = small_report(scored, evaluation=(summary, tables))
    titles = [s.title for s in rep.sections]
    assert "Actions evaluated: scores as of 2023-09-30" in titles
    assert len(titles) == len(without.sections) + 1
    assert rep.n_images == without.n_images + 1


def test_the_movements_section_appears_with_an_earlier_date(scored) -> None:
    from retain.transitions import compare_scores

    scores, _, _ = scored
    earlier = scores.assign(lifecycle_stage=scores["lifecycle_stage"].shift(1, fill_value="new"))
    earlier = earlier.iloc[5:]  # five customers scored now only
    moves = compare_scores(earlier, scores, "2023-01-31", "2023-03-31")
    assert moves.counts["new"] == 5
    without = small_report(scored)
    with_moves = small_report(scored, transitions=moves)
    titles = [s.title for s in with_moves.sections]
    assert "Customer movements since 2023-01-31" in titles
    assert not any("movements" in s.title for s in without.sections)
    assert with_moves.n_images == without.n_images + 1


def test_the_drift_entry_gives_a_section_and_a_banner(scored) -> None:
    entry = {
        "status": "retrain",
        "retrain": True,
        "reasons": ["recency_days PSI 0.400 >= 0.25"],
        "reference": {"cutoff": "2023-03-31", "customers": 900},
        "customers": 950,
        "psi_max": 0.4,
        "psi_max_feature": "recency_days",
        "churn_rate": 0.5,
        "churn_rate_reference": 0.48,
        "churn_rate_shift": 0.02,
        "thresholds": {"psi_warn": 0.1, "psi_retrain": 0.25},
        "features": {
            "recency_days": {
                "psi": 0.4,
                "p_value": 0.0,
                "missing_share": 0.0,
                "missing_share_reference": 0.0,
                "status": "retrain",
            },
            "frequency": {
                "psi": 0.01,
                "p_value": 0.5,
                "missing_share": 0.0,
                "missing_share_reference": 0.0,
                "status": "ok",
            },
        },
    }
    plain = small_report(scored)
    rep = small_report(scored, drift=entry)
    html = rep.render()
    assert "Population drift" in html and rep.n_images == plain.n_images + 1
    banners = re.findall(r'<div class="banner"[^>]*>(.*?)</div>', html)
    assert any("recency_days" in b and "retrain" in b for b in banners)
    assert "no drift entry" in plain.render()
