"""Outcomes after a scoring date, treated versus control, save rates and the proposed policy."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from retain.config import load_policy
from retain.contracts import DataError
from retain.evaluation.actions import compare_groups, contacted, require_control_groups
from retain.evaluation.intervals import (
    newcombe_difference,
    relative_reduction,
    welch_difference,
    wilson_interval,
)
from retain.evaluation.proposal import proposed_policy_yaml, proposed_save_rates
from retain.evaluation.realised import realised_performance
from retain.outcomes import check_horizon_passed, horizon_outcomes

POLICY = Path(__file__).resolve().parents[1] / "configs" / "policy.yaml"


# ------------------------------------------------------------------------------ intervals


def test_wilson_and_newcombe_match_the_published_examples():
    # Newcombe (1998), single proportion 81/263 and difference 56/70 - 48/80 (method 10)
    one = wilson_interval(81, 263)
    assert one.low == pytest.approx(0.2553, abs=5e-4)
    assert one.high == pytest.approx(0.3662, abs=5e-4)
    diff = newcombe_difference(56, 70, 48, 80)
    assert diff.value == pytest.approx(0.2)
    assert diff.low == pytest.approx(0.0524, abs=5e-4)
    assert diff.high == pytest.approx(0.3339, abs=5e-4)
    assert not wilson_interval(0, 0).has_interval


def test_welch_interval_agrees_with_scipy():
    rng = np.random.default_rng(0)
    a, b = rng.gamma(2.0, 3.0, 40), rng.gamma(2.0, 2.0, 55)
    est = welch_difference(a, b)
    ci = stats.ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
    assert est.value == pytest.approx(a.mean() - b.mean())
    assert (est.low, est.high) == pytest.approx((ci.low, ci.high))


def test_relative_reduction_by_hand_and_undefined_without_control_churners():
    # 20/100 treated vs 40/100 control churned: RR 0.5, se(log RR) = sqrt(.8/20 + .6/40)
    est = relative_reduction(20, 100, 40, 100)
    assert est.value == pytest.approx(0.5)
    assert est.low == pytest.approx(0.2082, abs=5e-4)
    assert est.high == pytest.approx(0.6842, abs=5e-4)
    assert np.isnan(relative_reduction(5, 100, 0, 100).value)
    no_treated_churn = relative_reduction(0, 100, 10, 100)
    assert no_treated_churn.value == 1.0 and not no_treated_churn.has_interval
    assert not relative_reduction(100, 100, 50, 50).has_interval  # all churned: no width


# ------------------------------------------------------------------------------- outcomes


def _tx(rows: list[tuple[str, str, float]]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": pd.array([r[0] for r in rows], dtype="string"),
            "timestamp": pd.to_datetime([r[1] for r in rows], format="ISO8601"),
            "amount": [r[2] for r in rows],
        }
    )


def test_outcome_window_is_the_label_window_and_same_day_purchases_are_one_occasion():
    tx = _tx(
        [
            ("a", "2024-01-01 10:00", 10.0),
            ("a", "2024-01-31 23:00", 5.0),  # on D: history, not outcome
            ("b", "2024-01-02", 7.0),
            ("b", "2024-02-01 08:00", 3.0),  # D + 1
            ("b", "2024-02-01 18:00", 4.0),  # same day: one occasion
            ("b", "2024-03-01", 6.0),  # D + 30 = the last day of the window
            ("c", "2024-01-05", 9.0),
            ("c", "2024-03-02", 9.0),  # D + 31: after the window
            ("p", "2024-02-10", 20.0),  # a prospect at D buying in the window
        ]
    )
    out = horizon_outcomes(tx, pd.Index(["a", "b", "c", "p"]), "2024-01-31", 30, "2024-03-31")
    assert out["purchased"].tolist() == [False, True, False, True]
    assert out.loc["b", "occasions"] == 2
    assert out.loc["b", "revenue"] == pytest.approx(13.0)
    assert out.loc["a", "revenue"] == 0.0
    assert out.loc[["a", "b", "c"], "churned"].tolist() == [1, 0, 1]
    assert pd.isna(out.loc["p", "churned"])  # no purchase by D: churn undefined


def test_refuses_a_horizon_the_data_does_not_cover():
    with pytest.raises(
        DataError, match="the horizon of 2024-01-31 ends on 2024-03-01; data reaches 2024-02-29"
    ):
        check_horizon_passed("2024-01-31", 30, "2024-02-29")
    assert check_horizon_passed("2024-01-31", 30, "2024-03-01") == pd.Timestamp("2024-03-01")


# ----------------------------------------------------------------------- treated vs control


def _scores(groups: list[str | None], **columns: object) -> pd.DataFrame:
    n = len(groups)
    base = {
        "customer_id": [f"c{i}" for i in range(n)],
        "lifecycle_stage": "at_risk",
        "value_tier": "vip",
        "retention_action": "personal call",
        "action_channel": "phone",
        "action_cost": 1.0,
        "churn_probability": 0.5,
        "treatment_group": groups,
    }
    return pd.DataFrame({**base, **columns})


def _outcomes(purchased: list[bool], revenue: list[float]) -> pd.DataFrame:
    ids = pd.Index([f"c{i}" for i in range(len(purchased))], name="customer_id")
    return pd.DataFrame(
        {
            "purchased": purchased,
            "churned": pd.array([0 if p else 1 for p in purchased], dtype="Int64"),
            "revenue": revenue,
            "occasions": [int(p) for p in purchased],
        },
        index=ids,
    )


def test_roi_is_incremental_revenue_minus_cost_over_cost():
    groups = ["treatment"] * 4 + ["control"] * 4 + [None]
    scores = _scores(groups)
    out = _outcomes(
        [True, True, False, False, False, False, True, False, True],
        [10.0, 10.0, 0.0, 0.0, 0.0, 0.0, 5.0, 5.0, 99.0],
    )
    frame = contacted(scores, out)
    assert len(frame) == 8  # the customer without a group is left out
    row = compare_groups(frame, min_group_size=2).iloc[0]
    assert row["group"] == "all"
    assert row["cost"] == 4.0  # the control group is not contacted: no cost
    assert row["revenue_uplift"] == pytest.approx(2.5)
    assert row["incremental_revenue"] == pytest.approx(10.0)
    assert row["roi"] == pytest.approx((10.0 - 4.0) / 4.0)
    assert row["retention_uplift"] == pytest.approx(0.5 - 0.25)
    assert row["save_rate"] == pytest.approx(1 - 0.5 / 0.75)
    assert row["roi_low"] < row["roi"] < row["roi_high"]


def test_small_groups_get_counts_and_points_but_no_intervals():
    groups = ["treatment"] * 5 + ["control"] * 5
    out = _outcomes([True, False] * 5, [1.0, 0.0] * 5)
    row = compare_groups(contacted(_scores(groups), out), min_group_size=30).iloc[0]
    assert (row["n_treatment"], row["n_control"]) == (5, 5)
    assert np.isfinite(row["retention_uplift"])
    for col in ("retention_uplift_low", "save_rate_high", "revenue_uplift_low", "roi_high"):
        assert np.isnan(row[col]), col


def test_scores_without_control_groups_are_refused():
    scores = _scores([None]).drop(columns="treatment_group")
    with pytest.raises(DataError, match="^these scores were written without control groups"):
        require_control_groups(scores, "x")
    with pytest.raises(DataError, match="treatment_group holds 'maybe'"):
        require_control_groups(_scores(["maybe"]), "x")


# ----------------------------------------------------------------------- proposed policy


def test_proposed_policy_loads_and_carries_the_measured_rates(tmp_path):
    policy = load_policy(POLICY)
    rng = np.random.default_rng(3)
    n = 4000
    groups = np.where(rng.random(n) < 0.5, "control", "treatment")
    # at_risk x vip: personal call; a few at_risk x high customers: too few to measure
    tier = np.where(np.arange(n) < 3980, "vip", "high")
    action = np.where(tier == "vip", "personal call", "retention offer")
    churn_p = np.where(groups == "treatment", 0.6 * 0.75, 0.6)  # a 25% save rate
    purchased = rng.random(n) >= churn_p
    scores = _scores(list(groups), value_tier=tier, retention_action=action)
    out = _outcomes(list(purchased), list(np.where(purchased, 20.0, 0.0)))
    frame = contacted(scores, out)
    table = proposed_save_rates(frame, policy, min_group_size=30)
    call = table.set_index("action").loc["personal call"]
    assert call["status"] == "measured"
    assert call["save_rate_low"] < 0.25 < call["save_rate_high"]
    assert call["proposed_save_rate"] == round(min(max(call["save_rate"], 0), 1), 4)
    offer = table.set_index("action").loc["retention offer"]
    assert offer["status"] == "too few customers"
    assert offer["proposed_save_rate"] == offer["current_save_rate"]
    assert (table["channel"] != "none").all()

    text = proposed_policy_yaml(policy, table, "proposed\nfor review")
    path = tmp_path / "proposed_policy.yaml"
    path.write_text(text)
    loaded = load_policy(path)  # valid under PolicyConfig
    rule = loaded.resolve("at_risk", "vip")
    assert rule.save_rate == pytest.approx(call["proposed_save_rate"])
    assert (
        loaded.resolve("at_risk", "high").save_rate == policy.resolve("at_risk", "high").save_rate
    )
    assert loaded.stages == policy.stages and len(loaded.actions) == len(policy.actions)
    assert text.startswith("# proposed\n# for review\n")


def test_a_measured_rate_outside_zero_one_is_clipped_in_the_proposal():
    policy = load_policy(POLICY)
    groups = ["treatment"] * 50 + ["control"] * 50
    # the treated churned more than the control: a negative raw save rate
    purchased = [False] * 50 + [True] * 25 + [False] * 25
    frame = contacted(_scores(groups), _outcomes(purchased, [0.0] * 100))
    row = proposed_save_rates(frame, policy).set_index("action").loc["personal call"]
    assert row["save_rate"] < 0 and row["proposed_save_rate"] == 0.0


# ------------------------------------------------------------------- realised performance


def test_realised_performance_judges_the_scores_on_the_customers_not_contacted():
    groups = ["treatment"] * 20 + ["control"] * 20 + [None] * 20
    churned = [True, False] * 30
    prob = [0.9 if c else 0.1 for c in churned]
    # the treated all bought: their outcome says nothing of the prediction
    purchased = [True] * 20 + [not c for c in churned[20:]]
    scores = _scores(groups, churn_probability=prob)
    metrics, calibration = realised_performance(scores, _outcomes(purchased, [0.0] * 60))
    assert metrics["not_contacted_n"] == 40 and metrics["all_n"] == 60
    assert metrics["not_contacted_roc_auc"] == 1.0
    assert metrics["all_roc_auc"] < 1.0
    assert metrics["not_contacted_churn_rate"] == pytest.approx(0.5)
    assert set(calibration["population"]) == {"not_contacted", "all"}
    assert calibration.groupby("population")["n"].sum().to_dict() == {
        "not_contacted": 40,
        "all": 60,
    }


def test_welch_gives_no_interval_when_both_groups_are_constant():
    est = welch_difference(np.full(5, 3.0), np.full(7, 1.0))
    assert est.value == pytest.approx(2.0) and not est.has_interval
    assert welch_difference(np.array([3.0, 4.0]), np.full(7, 1.0)).has_interval


# --------------------------------------------------------------- mixed control shares


def _stratified_frame(cells):
    """Customers per (stratum, group, retained count, n): revenue 40 when retained, else 0."""
    rows = []
    for stratum, group, kept, n in cells:
        for i in range(n):
            rows.append(
                {
                    "stratum": stratum,
                    "treatment_group": group,
                    "purchased": i < kept,
                    "revenue": 40.0 + (i % 3) if i < kept else 0.0,
                    "action_cost": 1.0 if group == "treatment" else 0.0,
                    "retention_action": "mail",
                }
            )
    return pd.DataFrame(rows)


def test_pooled_comparison_with_unequal_shares_is_standardised():
    # no effect: in each rule treated and control retain alike; rule a holds out 5%, rule b 50%,
    # and rule a's customers churn far more, so a plain pooled difference is badly biased
    frame = _stratified_frame(
        [
            ("share=0.05", "treatment", 190, 950),
            ("share=0.05", "control", 10, 50),
            ("share=0.5", "treatment", 400, 500),
            ("share=0.5", "control", 400, 500),
        ]
    )
    naive = compare_groups(frame).iloc[0]
    assert not naive["retention_uplift_low"] <= 0.0 <= naive["retention_uplift_high"]
    assert not naive["save_rate_low"] <= 0.0 <= naive["save_rate_high"]
    row = compare_groups(frame, strata="stratum").iloc[0]
    assert row["strata"] == 2 and row["n_unmatched"] == 0
    assert (row["n_treatment"], row["n_control"]) == (1450, 550)
    for measure in ("retention_uplift", "save_rate", "revenue_uplift"):
        assert row[f"{measure}_low"] < 0.0 < row[f"{measure}_high"], measure
    assert row["retention_uplift"] == pytest.approx(0.0, abs=1e-12)
    assert row["retention_treatment"] == pytest.approx(590 / 1450)
    assert row["retention_control"] == pytest.approx(row["retention_treatment"])
    by_action = compare_groups(frame, ["retention_action"], strata="stratum").iloc[0]
    assert by_action["retention_uplift_low"] < 0.0 < by_action["retention_uplift_high"]


def test_standardised_interval_covers_a_null_effect_at_its_level():
    # repeated random splits with shares 0.05 and 0.5 and no effect: the 95% interval of the
    # standardised uplift covers 0 in about 95% of them; the plain pooled one almost never
    rng = np.random.default_rng(7)
    covered = naive_covered = 0
    runs = 200
    for _ in range(runs):
        share = np.repeat([0.05, 0.5], [2000, 600])
        kept = rng.random(share.size) < np.repeat([0.2, 0.8], [2000, 600])
        control = rng.random(share.size) < share
        frame = pd.DataFrame(
            {
                "stratum": np.where(share < 0.1, "a", "b"),
                "treatment_group": np.where(control, "control", "treatment"),
                "purchased": kept,
                "revenue": kept * 10.0,
                "action_cost": 0.0,
            }
        )
        row = compare_groups(frame, strata="stratum").iloc[0]
        covered += row["retention_uplift_low"] <= 0.0 <= row["retention_uplift_high"]
        plain = compare_groups(frame).iloc[0]
        naive_covered += plain["retention_uplift_low"] <= 0.0 <= plain["retention_uplift_high"]
    assert covered / runs > 0.9
    assert naive_covered / runs < 0.1


def test_one_share_is_the_plain_comparison_and_the_formulas_reduce_to_it():
    from retain.evaluation.actions import _standardised

    frame = _stratified_frame(
        [("s", "treatment", 120, 400), ("s", "control", 10, 60)]
    )
    plain = compare_groups(frame, min_group_size=2).iloc[0]
    one = compare_groups(frame, strata="stratum", min_group_size=2).iloc[0]
    pd.testing.assert_series_equal(one, plain, rtol=1e-9)
    treated = frame[frame["treatment_group"] == "treatment"]
    control = frame[frame["treatment_group"] == "control"]
    direct = _standardised(treated, control, "stratum", 2, 0.95)
    for key in ("retention_uplift", "save_rate", "save_rate_low", "save_rate_high",
                "revenue_uplift", "churn_control", "cost", "roi"):  # fmt: skip
        assert direct[key] == pytest.approx(plain[key], rel=1e-9, abs=1e-12), key


def test_rules_with_the_same_share_form_one_stratum():
    from retain.evaluation.proposal import control_strata

    policy = load_policy(POLICY)
    frame = pd.DataFrame(
        {
            "lifecycle_stage": ["at_risk", "active", "lost"],
            "value_tier": ["low", "low", "low"],
            "retention_action": ["retention reminder", "cross-sell", "old action"],
        }
    )
    strata = control_strata(frame, policy)
    assert strata.iloc[0] == strata.iloc[1]  # both rules hold out 0.10
    assert strata.iloc[2].startswith("cell=lost|low")  # the policy no longer gives it
