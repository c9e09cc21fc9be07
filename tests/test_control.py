"""Control groups: a stable per-customer hash, the configured shares, never contacted."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from retain.config import ConfigError, PolicyConfig, load_policy, validate_model
from retain.control import (
    CONTROL,
    TREATMENT,
    check_control_period,
    contacted_later,
    control_draws,
    control_groups,
    control_period,
    group_counts,
    rotations_in_window,
)
from retain.reporting.summary import action_plan_table, contact_list

POLICY_YAML = Path(__file__).resolve().parents[1] / "configs" / "policy.yaml"
N = 20_000


def _policy(share: float = 0.10, period_days: int | None = 91, seed: int = 0) -> PolicyConfig:
    return PolicyConfig(
        actions=(
            {"stage": "*", "tier": "*", "action": "mail", "channel": "email",
             "unit_cost": 1.0, "save_rate": 0.1, "control_share": share},
            {"stage": "lost", "tier": "*", "action": "no contact", "channel": "none"},
        ),
        control={"seed": seed, "period_days": period_days},
    )  # fmt: skip


def _table(n: int = N, channel: str = "email", stage: str = "active") -> pd.DataFrame:
    ids = pd.Index([f"c{i:06d}" for i in range(n)], name="customer_id")
    return pd.DataFrame(
        {
            "lifecycle_stage": pd.array([stage] * n, dtype="string"),
            "value_tier": pd.array(["low"] * n, dtype="string"),
            "action_channel": pd.array([channel] * n, dtype="string"),
        },
        index=ids,
    )


def test_policy_defaults_and_validation() -> None:
    policy = load_policy(POLICY_YAML)
    assert all(rule.control_share == pytest.approx(0.10) for rule in policy.actions)
    assert policy.control.period_days is None  # a permanent hold-out by default
    with pytest.raises(ConfigError, match="control_share"):
        validate_model(
            PolicyConfig,
            {"actions": [{"stage": "*", "tier": "*", "action": "a", "channel": "email",
                          "control_share": 1.0}]},
            "p.yaml",
        )  # fmt: skip
    with pytest.raises(ConfigError, match="period_days"):
        validate_model(
            PolicyConfig,
            {"actions": [{"stage": "*", "tier": "*", "action": "a", "channel": "email"}],
             "control": {"period_days": 0}},
            "p.yaml",
        )  # fmt: skip


def test_share_within_binomial_tolerance_and_contact_is_treatment() -> None:
    out = control_groups(_table(), _policy(0.10), dt.date(2024, 3, 1))
    control = (out["treatment_group"] == CONTROL).to_numpy(dtype=bool)
    sd = np.sqrt(N * 0.1 * 0.9)
    assert abs(control.sum() - 0.1 * N) < 4 * sd
    assert set(out["treatment_group"].astype(str)) == {TREATMENT, CONTROL}
    np.testing.assert_array_equal(out["contact"].to_numpy(), ~control)
    assert out["contact"].dtype == bool


def test_share_zero_gives_no_control() -> None:
    out = control_groups(_table(), _policy(0.0), dt.date(2024, 3, 1))
    assert (out["treatment_group"] == TREATMENT).all() and out["contact"].all()


def test_no_contact_channel_has_no_group() -> None:
    table = pd.concat(
        [_table(100), _table(100, channel="none", stage="lost").rename(lambda i: "n" + i)]
    )
    out = control_groups(table, _policy(0.5), dt.date(2024, 3, 1))
    none = table["action_channel"] == "none"
    assert out.loc[none, "treatment_group"].isna().all()
    assert not out.loc[none, "contact"].any()
    assert out.loc[~none, "treatment_group"].notna().all()


def test_stable_inside_a_period_and_redrawn_across_periods() -> None:
    policy = _policy(0.30, period_days=91)
    first_day = dt.date.fromordinal(dt.date(1970, 1, 1).toordinal() + 91 * 220)
    same = [first_day + dt.timedelta(days=d) for d in (0, 30, 90)]
    groups = [control_groups(_table(), policy, d)["treatment_group"] for d in same]
    assert control_period(same[0], 91) == control_period(same[-1], 91) == 220
    for g in groups[1:]:
        pd.testing.assert_series_equal(g, groups[0])
    nxt = control_groups(_table(), policy, first_day + dt.timedelta(days=91))["treatment_group"]
    assert control_period(first_day + dt.timedelta(days=91), 91) == 221
    # a fresh independent draw: about share x share stay in control, share x (1 - share) move
    was, now = (groups[0] == CONTROL).to_numpy(bool), (nxt == CONTROL).to_numpy(bool)
    both = np.sum(was & now)
    sd = np.sqrt(N * 0.09 * 0.91)
    assert abs(both - N * 0.09) < 4 * sd
    assert abs(now.sum() - N * 0.3) < 4 * np.sqrt(N * 0.3 * 0.7)


def test_seed_changes_the_groups_and_draws_are_deterministic() -> None:
    ids = np.array([f"c{i}" for i in range(1000)], dtype=object)
    a = control_draws(ids, 0, 5)
    np.testing.assert_array_equal(a, control_draws(ids, 0, 5))
    assert ((a >= 0) & (a < 1)).all()
    assert not np.array_equal(a, control_draws(ids, 1, 5))
    # per customer: the draw of one id does not depend on the others around it
    np.testing.assert_array_equal(control_draws(ids[::-1], 0, 5), a[::-1])
    np.testing.assert_array_equal(control_draws(ids[:10], 0, 5), a[:10])


def test_summaries_leave_control_out_of_the_contacts() -> None:
    n = 400
    table = _table(n)
    groups = control_groups(table, _policy(0.25), dt.date(2024, 3, 1))
    scores = pd.DataFrame(
        {
            "customer_id": table.index.to_numpy(),
            "lifecycle_stage": "active",
            "value_tier": "low",
            "retention_action": "mail",
            "action_channel": "email",
            "churn_probability": 0.5,
            "clv": 100.0,
            "action_save_rate": 0.1,
            "action_cost": 1.0,
            "expected_value_saved": np.linspace(10, 1, n),
            "action_priority": pd.array(np.arange(1, n + 1), dtype="Int64"),
            "treatment_group": groups["treatment_group"].to_numpy(),
            "contact": groups["contact"].to_numpy(),
            "reason_1": "r",
        }
    )
    first = contact_list(scores, top_n=30)
    assert len(first) == 30 and first["action_priority"].is_monotonic_increasing
    contacted = scores.loc[scores["contact"], "action_priority"].astype(int)
    assert first["action_priority"].tolist() == sorted(contacted)[:30]
    plan = action_plan_table(scores).iloc[0]
    n_control = int((~scores["contact"]).sum())
    assert plan["control"] == n_control and plan["contacted"] == n - n_control
    assert plan["total_cost"] == pytest.approx(n - n_control)
    assert group_counts(scores) == {"mail": {TREATMENT: n - n_control, CONTROL: n_control}}


def test_permanent_hold_out_keeps_the_group_on_every_date() -> None:
    policy = _policy(0.30, period_days=None)
    dates = [dt.date(2020, 1, 1), dt.date(2020, 7, 1), dt.date(2023, 12, 31)]
    groups = [control_groups(_table(), policy, d)["treatment_group"] for d in dates]
    for g in groups[1:]:
        pd.testing.assert_series_equal(g, groups[0])
    assert control_period(dates[0], None) is None
    ids = _table(50).index.to_numpy()
    np.testing.assert_array_equal(control_draws(ids, 0), control_draws(ids, 0, None))
    assert not np.array_equal(control_draws(ids, 0), control_draws(ids, 0, 0))


def test_period_shorter_than_the_horizon_is_refused() -> None:
    check_control_period(_policy(period_days=None).control, 182)
    check_control_period(_policy(period_days=182).control, 182)
    with pytest.raises(ConfigError, match="at least 182"):
        check_control_period(_policy(period_days=91).control, 182, "policy.yaml")


def test_rotations_inside_the_outcome_window() -> None:
    start = dt.date.fromordinal(dt.date(1970, 1, 1).toordinal() + 91 * 220)  # a period's day 0
    assert rotations_in_window(start, 90, None) == []
    assert rotations_in_window(start, 90, 91) == []  # window days 1..90 inside the period
    crossed = rotations_in_window(start, 91, 91)
    assert crossed == [pd.Timestamp(start + dt.timedelta(days=91))]
    assert len(rotations_in_window(start, 182, 91)) == 2


def test_control_customers_contacted_later_are_counted() -> None:
    control_ids = pd.Series(["a", "b", "c"])
    later = pd.DataFrame(
        {"customer_id": ["a", "a", "b", "x"], "contact": [True, False, False, True]}
    )
    assert contacted_later(control_ids, later) == 1
    assert contacted_later(control_ids, later.iloc[0:0]) == 0



def test_manifest_counts_name_customers_without_a_group_none() -> None:
    from retain.scoring import count_by

    groups = pd.Series(["treatment", None, "control", None], dtype="string")
    counts = count_by(pd.DataFrame({"treatment_group": groups}), ["treatment_group"])
    assert counts == {"treatment_group": {"none": 2, "treatment": 1, "control": 1}}
