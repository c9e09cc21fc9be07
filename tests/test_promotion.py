"""The promotion gate's rules, on plain metric dicts (no MLflow)."""

from __future__ import annotations

import pytest

from retain.config import PromotionConfig
from retain.promotion import GATE_KINDS, GateResult, decide, next_steps

CFG = PromotionConfig(auc_tolerance=0.01, clv_metric="mae", clv_tolerance=0.1)


def test_gate_kinds_are_churn_clv_and_value():
    assert set(GATE_KINDS) == {"churn", "clv", "value"}
    with pytest.raises(ValueError, match="no promotion rule"):
        decide("other", {}, None, CFG)


# ---------------------------------------------------------------------------- churn


def test_churn_without_champion_passing_the_baseline_is_accepted():
    chal = {"test_roc_auc": 0.80, "baseline_recency_days_roc_auc": 0.70, "other": 1.0}
    result = decide("churn", chal, None, CFG)
    assert isinstance(result, GateResult)
    assert result.accepted
    assert "no champion yet" in result.reason and "baseline_recency_days_roc_auc" in result.reason
    assert result.metrics == {"challenger_test_roc_auc": 0.80, "best_baseline_roc_auc": 0.70}


def test_churn_below_the_best_baseline_is_refused_even_without_champion():
    chal = {
        "test_roc_auc": 0.72,
        "baseline_recency_days_roc_auc": 0.70,
        "baseline_bgnbd_roc_auc": 0.75,
    }
    result = decide("churn", chal, None, CFG)
    assert not result.accepted
    assert "below the best baseline baseline_bgnbd_roc_auc = 0.7500" in result.reason
    assert result.metrics["best_baseline_roc_auc"] == 0.75


def test_churn_without_baselines_says_so():
    result = decide("churn", {"test_roc_auc": 0.6}, None, CFG)
    assert result.accepted and "no baseline AUC logged" in result.reason
    assert "best_baseline_roc_auc" not in result.metrics


def test_churn_tolerance_against_the_champion():
    champ = {"test_roc_auc": 0.80}
    within = decide("churn", {"test_roc_auc": 0.791}, champ, CFG)  # 0.80 - 0.01 = 0.79
    assert within.accepted
    assert within.metrics["champion_test_roc_auc"] == 0.80
    at_floor = decide("churn", {"test_roc_auc": 0.79}, champ, CFG)
    assert at_floor.accepted
    below = decide("churn", {"test_roc_auc": 0.789}, champ, CFG)
    assert not below.accepted
    assert "minus tolerance 0.01 (= 0.7900)" in below.reason
    strict = decide("churn", {"test_roc_auc": 0.795}, champ, PromotionConfig(auc_tolerance=0))
    assert not strict.accepted


def test_churn_missing_metric_is_refused():
    no_chal = decide("churn", {"test_pr_auc": 0.5}, {"test_roc_auc": 0.5}, CFG)
    assert not no_chal.accepted and no_chal.reason == "challenger has no test_roc_auc metric"
    assert no_chal.metrics == {}
    no_champ = decide("churn", {"test_roc_auc": 0.9}, {"test_pr_auc": 0.5}, CFG)
    assert not no_champ.accepted
    assert no_champ.reason == "champion has no test_roc_auc metric to compare with"


def _with_interval(auc: float, base: float, low: float, high: float) -> dict[str, float]:
    """Challenger metrics with the paired interval against the baseline ``bgnbd``."""
    return {
        "test_roc_auc": auc,
        "baseline_bgnbd_roc_auc": base,
        "baseline_recency_roc_auc": base - 0.05,
        "auc_diff_vs_bgnbd": auc - base,
        "auc_diff_vs_bgnbd_se": (high - low) / 3.92,
        "auc_diff_vs_bgnbd_ci_low": low,
        "auc_diff_vs_bgnbd_ci_high": high,
    }


def test_churn_below_the_baseline_within_the_interval_is_accepted():
    # the first-run case of the issue: 0.8695 vs 0.8727, a gap within the noise
    chal = _with_interval(0.8695, 0.8727, -0.0090, 0.0026)
    result = decide("churn", chal, None, CFG)
    assert result.accepted
    assert "not worse than the best baseline baseline_bgnbd_roc_auc = 0.8727" in result.reason
    assert "difference -0.0032, 95% DeLong interval [-0.0090, +0.0026]" in result.reason
    assert result.metrics["best_baseline_auc_diff_ci_high"] == 0.0026


def test_churn_worse_than_the_baseline_beyond_the_interval_is_refused():
    chal = _with_interval(0.84, 0.87, -0.045, -0.015)
    result = decide("churn", chal, None, CFG)
    assert not result.accepted
    assert "worse than the best baseline baseline_bgnbd_roc_auc = 0.8700" in result.reason
    assert "95% DeLong interval [-0.0450, -0.0150], entirely below 0" in result.reason
    # the champion is never reached: the baseline refuses first
    assert "champion_test_roc_auc" not in decide("churn", chal, {"test_roc_auc": 0.5}, CFG).metrics


def test_churn_interval_of_another_baseline_is_not_used():
    # the interval logged is against the recency baseline, the best is bgnbd: plain comparison
    chal = {
        "test_roc_auc": 0.86,
        "baseline_bgnbd_roc_auc": 0.87,
        "auc_diff_vs_recency": 0.1,
        "auc_diff_vs_recency_ci_low": 0.05,
        "auc_diff_vs_recency_ci_high": 0.15,
    }
    result = decide("churn", chal, None, CFG)
    assert not result.accepted and "below the best baseline" in result.reason


def test_churn_champion_keeps_the_tolerance_with_an_interval():
    chal = _with_interval(0.80, 0.79, -0.01, 0.03)
    assert decide("churn", chal, {"test_roc_auc": 0.805}, CFG).accepted
    below = decide("churn", chal, {"test_roc_auc": 0.82}, CFG)
    assert not below.accepted and "minus tolerance 0.01" in below.reason


def test_next_steps_name_the_commands_that_go_on():
    churn = next_steps("configs/shop.yaml", "churn")
    assert 'retain promote --config configs/shop.yaml --model churn --force --reason "..."' in churn
    assert "retain score --config configs/shop.yaml --model-version challenger" in churn
    assert "logged as forced" in churn
    assert "--clv-version challenger" in next_steps("c.yaml", "clv")


# ------------------------------------------------------------------------------ clv


def test_clv_without_champion_and_the_naive_baseline():
    chal = {"holdout_mae": 1.0, "baseline_naive_rate_holdout_mae": 1.2}
    result = decide("clv", chal, None, CFG)
    assert result.accepted and "no champion yet" in result.reason
    assert result.metrics == {
        "challenger_holdout_mae": 1.0,
        "best_baseline_holdout_mae": 1.2,
    }


def test_clv_worse_than_the_best_baseline_is_refused():
    chal = {
        "holdout_mae": 1.1,
        "baseline_naive_rate_holdout_mae": 1.0,
        "baseline_naive_rate_holdout_rmse": 5.0,  # another metric: not compared
    }
    result = decide("clv", chal, None, CFG)
    assert not result.accepted
    assert "worse (higher) than the best baseline baseline_naive_rate_holdout_mae" in result.reason


def test_clv_relative_tolerance_against_the_champion():
    champ = {"holdout_mae": 1.0}
    assert decide("clv", {"holdout_mae": 1.1}, champ, CFG).accepted  # 1.0 x 1.1
    worse = decide("clv", {"holdout_mae": 1.11}, champ, CFG)
    assert not worse.accepted
    assert "allowed up to 1.1000 with relative tolerance 0.1" in worse.reason
    assert worse.metrics["champion_holdout_mae"] == 1.0
    strict = PromotionConfig(clv_tolerance=0.0)
    assert decide("clv", {"holdout_mae": 0.99}, champ, strict).accepted
    assert not decide("clv", {"holdout_mae": 1.01}, champ, strict).accepted


def test_clv_compares_the_configured_metric():
    cfg = PromotionConfig(clv_metric="rmse")
    chal = {"holdout_mae": 9.0, "holdout_rmse": 2.0}
    result = decide("clv", chal, {"holdout_mae": 1.0, "holdout_rmse": 2.5}, cfg)
    assert result.accepted
    assert result.metrics == {"challenger_holdout_rmse": 2.0, "champion_holdout_rmse": 2.5}


def test_clv_missing_metric_is_refused():
    no_chal = decide("clv", {"holdout_rmse": 1.0}, None, CFG)
    assert not no_chal.accepted and no_chal.reason == "challenger has no holdout_mae metric"
    no_champ = decide("clv", {"holdout_mae": 1.0}, {"holdout_rmse": 1.0}, CFG)
    assert not no_champ.accepted
    assert no_champ.reason == "champion has no holdout_mae metric to compare with"


@pytest.mark.parametrize("kind,key", [("churn", "test_roc_auc"), ("clv", "holdout_mae")])
def test_a_nan_metric_is_missing_never_a_pass(kind, key):
    cfg = PromotionConfig()
    nan = float("nan")
    assert not decide(kind, {key: nan}, None, cfg).accepted
    good = {key: 0.8}
    assert not decide(kind, good, {key: nan}, cfg).accepted  # nothing to compare with
    # a NaN baseline is ignored, a finite one still counts
    baseline = "baseline_x_roc_auc" if kind == "churn" else "baseline_x_holdout_mae"
    worse = 0.9 if kind == "churn" else 0.5
    assert decide(kind, {**good, baseline: nan}, None, cfg).accepted
    assert not decide(kind, {**good, baseline: worse}, None, cfg).accepted


# ---------------------------------------------------------------------------- value


def test_value_gate_against_the_champion_with_tolerance():
    cfg = PromotionConfig(value_tolerance=0.01)
    chal = {"test_ml_top20_capture": 0.80, "test_btyd_top20_capture": 0.82}
    first = decide("value", chal, None, cfg)
    assert first.accepted and "no champion" in first.reason
    assert decide("value", chal, {"test_ml_top20_capture": 0.805}, cfg).accepted
    refused = decide("value", chal, {"test_ml_top20_capture": 0.82}, cfg)
    assert not refused.accepted
    assert refused.metrics["champion_test_ml_top20_capture"] == 0.82
    assert not decide("value", {}, None, cfg).accepted
    assert not decide("value", {"test_ml_top20_capture": float("nan")}, None, cfg).accepted
    assert not decide("value", chal, {"other": 1.0}, cfg).accepted
