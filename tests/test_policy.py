"""Policy: every stage boundary, tiers, the action table, expected value, budget, degrees."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from retain.config import STAGES, TIERS, ConfigError, PolicyConfig, StageRules, load_policy
from retain.policy import (
    OVER_BUDGET,
    STAGE_FIVE_F,
    STAGE_PHASE,
    action_priority,
    apply_budget,
    apply_policy,
    assign_actions,
    assign_stages,
    assign_tiers,
    five_degrees,
    tier_cut_points,
)

POLICY_YAML = Path(__file__).resolve().parents[1] / "configs" / "policy.yaml"
RULES = StageRules(
    new_customer_days=90,
    lost_p_alive=0.10,
    lost_inactive_days=365,
    dormant_p_alive=0.30,
    dormant_gap_multiple=3.0,
    dormant_min_inactive_days=120,
    default_gap_days=90.0,
    reactivated_min_gap_days=180,
    reactivated_window_days=90,
    at_risk_churn_probability=0.5,
    loyal_min_tenure_days=365,
    loyal_min_frequency=4,
    loyal_max_churn_probability=0.3,
    growing_value_ratio=1.2,
)

# An 'active' customer: bought 100 days ago, usual gap 100 days (dormant limit 300 days), low
# risk, predicted value 10 below 1.2 x historical value 73.
BASE = {
    "frequency": 2.0,
    "recency_days": 200.0,
    "tenure_days": 300.0,
    "monetary_value": 30.0,
    "p_alive": 0.9,
    "clv": 10.0,
    "churn_probability": 0.3,
    "last_gap_days": 100.0,
}


def stage_of(rules: StageRules = RULES, **changes: float) -> tuple[str, str]:
    row = {**BASE, **changes}
    frame = pd.DataFrame([row], index=pd.Index(["c1"], name="customer_id", dtype="string"))
    out = assign_stages(frame, rules, 365)
    return str(out["lifecycle_stage"].iloc[0]), str(out["stage_reason"].iloc[0])


def test_base_customer_is_active() -> None:
    stage, reason = stage_of()
    assert stage == "active"
    assert reason.startswith("active:") and "churn probability 0.3 < 0.5" in reason


def test_prospect_without_purchase() -> None:
    nan = float("nan")
    stage, reason = stage_of(
        frequency=nan,
        recency_days=nan,
        tenure_days=nan,
        monetary_value=nan,
        p_alive=nan,
        clv=nan,
        churn_probability=nan,
    )
    assert stage == "prospect"
    assert "without a purchase" in reason


def test_new_boundary() -> None:
    stage, reason = stage_of(frequency=0, recency_days=0, tenure_days=90, churn_probability=0.9)
    assert stage == "new" and "90 days ago (<= 90)" in reason
    stage, _ = stage_of(frequency=0, recency_days=0, tenure_days=91, churn_probability=0.9)
    assert stage == "at_risk"


def test_lost_by_p_alive_boundary() -> None:
    stage, reason = stage_of(p_alive=0.0999)
    assert stage == "lost" and "P(alive) 0.0999 < 0.1" in reason
    # exactly at the lost threshold: not lost, but below the dormant one
    assert stage_of(p_alive=0.10)[0] == "dormant"


def test_lost_by_inactivity_boundary() -> None:
    # usual gap 67.5 days -> dormant limit 202.5 days; inactivity 365 is dormant, 366 is lost
    assert stage_of(recency_days=135, tenure_days=500)[0] == "dormant"
    stage, reason = stage_of(recency_days=134, tenure_days=500)
    assert stage == "lost"
    assert "no purchase for 366 days (> 365)" in reason


def test_dormant_by_p_alive_boundary() -> None:
    stage, reason = stage_of(p_alive=0.2999)
    assert stage == "dormant" and "P(alive) 0.3 < 0.3" in reason
    assert stage_of(p_alive=0.30)[0] == "active"


def test_dormant_by_gap_multiple_boundary() -> None:
    # usual gap 100/2 = 50 days -> limit max(3 x 50, 120) = 150 days since the last purchase
    assert stage_of(recency_days=100, tenure_days=250)[0] == "active"
    stage, reason = stage_of(recency_days=100, tenure_days=251)
    assert stage == "dormant"
    assert "no purchase for 151 days (> 150" in reason and "usual gap 50 days" in reason


def test_dormant_minimum_inactivity_boundary() -> None:
    # usual gap 10 days -> 3 x 10 = 30 is below the 120-day minimum
    assert stage_of(frequency=10, recency_days=100, tenure_days=220)[0] == "active"
    assert stage_of(frequency=10, recency_days=100, tenure_days=221)[0] == "dormant"


def test_dormant_one_time_buyer_uses_default_gap() -> None:
    # no repeat purchase: usual gap = default 90 days -> limit 270 days
    assert stage_of(frequency=0, recency_days=0, tenure_days=270)[0] == "active"
    assert stage_of(frequency=0, recency_days=0, tenure_days=271)[0] == "dormant"


def test_reactivated_boundaries() -> None:
    # usual gap 200 days: the dormant limit (600) is far away
    common = {"frequency": 3, "recency_days": 600, "p_alive": 0.9}
    stage, reason = stage_of(**common, tenure_days=690, last_gap_days=180)
    assert stage == "reactivated"
    assert "90 days ago (<= 90)" in reason and "180-day gap (>= 180)" in reason
    assert stage_of(**common, tenure_days=690, last_gap_days=179)[0] == "active"
    assert stage_of(**common, tenure_days=691, last_gap_days=180)[0] == "active"


def test_reactivated_needs_last_gap_column() -> None:
    frame = pd.DataFrame(
        [{**BASE, "frequency": 3, "recency_days": 600, "tenure_days": 690}],
        index=pd.Index(["c1"], name="customer_id", dtype="string"),
    ).drop(columns=["last_gap_days"])
    assert assign_stages(frame, RULES, 365)["lifecycle_stage"].iloc[0] == "active"


def test_at_risk_boundary() -> None:
    stage, reason = stage_of(churn_probability=0.5)
    assert stage == "at_risk" and "0.5 >= 0.5" in reason
    assert stage_of(churn_probability=0.4999)[0] == "active"


def test_loyal_boundaries() -> None:
    loyal = {"frequency": 4, "recency_days": 300, "tenure_days": 365, "churn_probability": 0.2999}
    stage, reason = stage_of(**loyal)
    assert stage == "loyal" and "tenure 365 days" in reason and "4 repeat purchases" in reason
    assert stage_of(**{**loyal, "tenure_days": 364, "recency_days": 299})[0] != "loyal"
    assert stage_of(**{**loyal, "frequency": 3})[0] != "loyal"
    assert stage_of(**{**loyal, "churn_probability": 0.30})[0] == "active"


def test_growing_boundary() -> None:
    historical = 30.0 * 2 / 300 * 365  # monetary x frequency / tenure x horizon = 73
    stage, reason = stage_of(clv=1.2 * historical)
    assert stage == "growing" and "historical value 73.00" in reason
    assert stage_of(clv=1.2 * historical - 0.01)[0] == "active"


def test_rule_order_first_match_wins() -> None:
    # new beats at_risk, lost beats dormant, reactivated beats at_risk, at_risk beats loyal
    assert stage_of(tenure_days=60, recency_days=0, churn_probability=0.9)[0] == "new"
    assert stage_of(p_alive=0.05, recency_days=0, tenure_days=400)[0] == "lost"
    react = {"frequency": 3, "recency_days": 600, "tenure_days": 650, "last_gap_days": 300}
    assert stage_of(**react, churn_probability=0.9)[0] == "reactivated"
    loyal = {"frequency": 6, "recency_days": 500, "tenure_days": 550}
    assert stage_of(**loyal, churn_probability=0.6)[0] == "at_risk"


def test_stage_maps_to_phase_and_5f() -> None:
    assert set(STAGE_PHASE) == set(STAGES) == set(STAGE_FIVE_F)
    assert [STAGE_FIVE_F[s] for s in ("prospect", "new", "active", "growing", "loyal")] == [
        "Find",
        "Focus",
        "Frequent",
        "Foster",
        "Fidelity",
    ]
    frame = pd.DataFrame([BASE], index=pd.Index(["c1"], name="customer_id", dtype="string"))
    out = assign_stages(frame, RULES, 365)
    assert out["lifecycle_phase"].iloc[0] == "maintenance" and out["five_f"].iloc[0] == "Frequent"


# ----------------------------------------------------------------------- tiers


def test_quantile_tiers_shares() -> None:
    clv = pd.Series(np.arange(1.0, 101.0), index=pd.Index([f"c{i}" for i in range(100)]))
    policy = load_policy(POLICY_YAML)
    cuts = tier_cut_points(clv, policy.tiers)
    assert cuts == {"vip": 96.0, "high": 81.0, "medium": 51.0}
    tiers = assign_tiers(clv, cuts)
    assert tiers.value_counts().to_dict() == {"low": 50, "medium": 30, "high": 15, "vip": 5}
    assert tiers.iloc[95] == "vip" and tiers.iloc[94] == "high"


def test_quantile_ties_share_the_better_tier_and_missing_is_low() -> None:
    policy = load_policy(POLICY_YAML)
    clv = pd.Series([5.0] * 10 + [np.nan])
    tiers = assign_tiers(clv, tier_cut_points(clv, policy.tiers))
    assert (tiers.iloc[:10] == "vip").all() and tiers.iloc[10] == "low"


def test_absolute_tiers() -> None:
    raw = yaml.safe_load(POLICY_YAML.read_text())
    raw["tiers"] = {"method": "absolute", "vip": 500, "high": 200, "medium": 50}
    policy = PolicyConfig.model_validate(raw)
    clv = pd.Series([600.0, 500.0, 499.99, 200.0, 50.0, 49.0])
    tiers = assign_tiers(clv, tier_cut_points(clv, policy.tiers))
    assert tiers.tolist() == ["vip", "vip", "high", "high", "medium", "low"]


# ----------------------------------------------------------------- action table


def test_shipped_policy_resolves_every_pair_with_the_playbook() -> None:
    policy = load_policy(POLICY_YAML)
    for s in STAGES:
        for t in TIERS:
            policy.resolve(s, t)
    vip_risk = policy.resolve("at_risk", "vip")
    assert (vip_risk.action, vip_risk.channel, vip_risk.offer) == (
        "personal call",
        "phone",
        "exclusive offer",
    )
    new = policy.resolve("new", "medium")
    assert new.action == "welcome series" and new.offer == "second-purchase coupon"
    for t in TIERS:
        dormant = policy.resolve("dormant", t)
        assert dormant.action == "reactivation offer" and dormant.channel in {"sms", "email"}
    assert policy.resolve("loyal", "vip").action == "membership perks"
    assert policy.resolve("active", "high").action == "cross-sell"
    assert policy.resolve("growing", "low").action == "upsell"
    lost_low = policy.resolve("lost", "low")
    assert lost_low.channel == "none" and lost_low.unit_cost == 0


def test_most_specific_rule_wins() -> None:
    raw = yaml.safe_load(POLICY_YAML.read_text())
    raw["actions"] = [
        {"stage": "*", "tier": "*", "action": "any", "channel": "email"},
        {"stage": "*", "tier": "vip", "action": "any vip", "channel": "email"},
        {"stage": "lost", "tier": "*", "action": "lost any", "channel": "none"},
        {"stage": "lost", "tier": "vip", "action": "lost vip", "channel": "phone"},
    ]
    policy = PolicyConfig.model_validate(raw)
    assert policy.resolve("lost", "vip").action == "lost vip"
    assert policy.resolve("lost", "low").action == "lost any"
    assert policy.resolve("new", "vip").action == "any vip"
    assert policy.resolve("new", "low").action == "any"


def _write_policy(tmp_path: Path, raw: dict) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda r: r["actions"].append(dict(r["actions"][0])), "exactly one action"),
        (lambda r: r["actions"].pop(), "no action for: (prospect, vip)"),
        (lambda r: r["actions"][0].update(stage="churned"), "unknown stage"),
        (lambda r: r["actions"][0].update(tier="gold"), "unknown tier"),
        (lambda r: r["actions"][0].update(channel="fax"), "actions.0.channel"),
        (lambda r: r["actions"][0].update(save_rate=1.5), "save_rate"),
        (lambda r: r["actions"][0].update(unit_cost=-1), "unit_cost"),
        (lambda r: r["actions"][0].update(colour="red"), "unknown key"),
        (lambda r: r["stages"].update(at_risk_churn_probability=1.2), "at_risk_churn"),
        (lambda r: r["stages"].update(lost_p_alive=0.5), "lost_p_alive must not exceed"),
        (lambda r: r["stages"].update(new_customer_dayz=30), "unknown key"),
        (lambda r: r["tiers"].update(vip=0.6, high=0.3), "must not exceed 1"),
        (lambda r: r.update(budget={"phone": {}}), "max_contacts, max_cost"),
        (lambda r: r.update(budget={"none": {"max_contacts": 3}}), "takes no budget"),
    ],
)
def test_invalid_policies_are_config_errors(tmp_path: Path, change, message: str) -> None:
    raw = yaml.safe_load(POLICY_YAML.read_text())
    change(raw)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_policy(_write_policy(tmp_path, raw))


def test_missing_policy_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_policy(tmp_path / "nope.yaml")


# ------------------------------------------------------ expected value and budget


def _actions_frame(policy: PolicyConfig) -> pd.DataFrame:
    idx = pd.Index([f"c{i}" for i in range(6)], name="customer_id", dtype="string")
    stages = pd.Series(["at_risk"] * 4 + ["lost", "new"], index=idx)
    tiers = pd.Series(["vip"] * 4 + ["low", "low"], index=idx)
    churn = pd.Series([0.9, 0.5, 0.8, 0.6, 0.99, 0.2], index=idx)
    clv = pd.Series([100.0, 400.0, 50.0, 300.0, 10.0, 80.0], index=idx)
    return assign_actions(stages, tiers, churn, clv, policy)


def test_expected_value_saved_formula_and_priority() -> None:
    policy = load_policy(POLICY_YAML)
    acts = _actions_frame(policy)
    rule = policy.resolve("at_risk", "vip")
    expected = 0.5 * 400.0 * rule.save_rate - rule.unit_cost
    assert acts.loc["c1", "expected_value_saved"] == pytest.approx(expected)
    assert acts.loc["c4", "retention_action"] == "no contact"
    assert acts.loc["c4", "expected_value_saved"] == 0.0
    prio = action_priority(acts)
    ev = acts["expected_value_saved"]
    contacted = ev[acts["action_channel"] != "none"].sort_values(ascending=False)
    assert prio[contacted.index].tolist() == list(range(1, len(contacted) + 1))
    assert prio.isna()["c4"]


def test_budget_by_contacts_keeps_the_best() -> None:
    raw = yaml.safe_load(POLICY_YAML.read_text())
    raw["budget"] = {"phone": {"max_contacts": 2}}
    policy = PolicyConfig.model_validate(raw)
    acts = _actions_frame(policy)
    out = apply_budget(acts, policy)
    phone = acts.index[acts["action_channel"] == "phone"]
    best = acts.loc[phone, "expected_value_saved"].sort_values(ascending=False).index
    assert (out.loc[best[:2], "action_channel"] == "phone").all()
    assert (out.loc[best[2:], "retention_action"] == OVER_BUDGET).all()
    assert (out.loc[best[2:], ["action_cost", "expected_value_saved"]] == 0).all().all()
    assert out.loc["c5", "action_channel"] == "email"  # other channels untouched


def test_budget_by_money() -> None:
    raw = yaml.safe_load(POLICY_YAML.read_text())
    unit = policy_cost = load_policy(POLICY_YAML).resolve("at_risk", "vip").unit_cost
    raw["budget"] = {"phone": {"max_cost": 3 * unit - 0.01}}
    policy = PolicyConfig.model_validate(raw)
    out = apply_budget(_actions_frame(policy), policy)
    assert (out["action_channel"] == "phone").sum() == 2
    assert out.loc[out["action_channel"] == "phone", "action_cost"].sum() <= 3 * policy_cost


# ----------------------------------------------------------------- five degrees


def test_five_degrees_missing_sources_stay_empty() -> None:
    policy = load_policy(POLICY_YAML)
    idx = pd.Index(["a", "b", "c", "d"], name="customer_id", dtype="string")
    table = pd.DataFrame(
        {
            "tenure_days": [10.0, 20.0, 30.0, 40.0],
            "frequency": [0.0, 1.0, 2.0, 3.0],
            "clv": [5.0, np.nan, 1.0, 3.0],
        },
        index=idx,
    )
    out = five_degrees(table, policy)
    assert out["satisfaction"].isna().all() and out["referral"].isna().all()
    assert out["loyalty"].tolist() == [0.25, 0.5, 0.75, 1.0]
    assert np.isnan(out.loc["b", "value"]) and out.loc["a", "value"] == 1.0


def test_apply_policy_end_to_end_columns() -> None:
    policy = load_policy(POLICY_YAML)
    rng = np.random.default_rng(3)
    n = 200
    tenure = rng.uniform(1, 700, n)
    freq = rng.integers(0, 8, n).astype(float)
    recency = np.where(freq > 0, tenure * rng.uniform(0, 1, n), 0.0)
    frame = pd.DataFrame(
        {
            "frequency": freq,
            "recency_days": recency,
            "tenure_days": tenure,
            "monetary_value": np.where(freq > 0, rng.uniform(5, 80, n), 0.0),
            "p_alive": rng.uniform(0, 1, n),
            "clv": rng.gamma(2.0, 50.0, n),
            "churn_probability": rng.uniform(0, 1, n),
        },
        index=pd.Index([f"c{i}" for i in range(n)], name="customer_id", dtype="string"),
    )
    out = apply_policy(frame, policy, 365)
    assert out.index.equals(frame.index)
    assert set(out["lifecycle_stage"]) <= set(STAGES)
    assert set(out["value_tier"]) <= set(TIERS)
    assert out["stage_reason"].notna().all()
    for stage in out["lifecycle_stage"].unique():
        assert out.loc[out["lifecycle_stage"] == stage, "stage_reason"].str.startswith(stage).all()
    ev = frame["churn_probability"] * frame["clv"]
    acts = assign_actions(
        out["lifecycle_stage"], out["value_tier"], frame["churn_probability"], frame["clv"], policy
    )
    assert np.allclose(
        out["expected_value_saved"], ev * acts["save_rate"] - acts["action_cost"], equal_nan=True
    )
