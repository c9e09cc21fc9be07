"""Comparing two scoring dates: hand-counted transitions, absent customers kept, the section."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest

from retain.reporting.html import Report
from retain.reporting.transitions import matrix_grid, transitions_section
from retain.transitions import ABSENT, compare_scores, pair_scores


def _scores(rows: list[tuple[str, str, str, float]]) -> pd.DataFrame:
    ids, stages, tiers, clv = zip(*rows, strict=True)
    return pd.DataFrame(
        {
            "customer_id": pd.array(ids, dtype="string"),
            "lifecycle_stage": pd.array(stages, dtype="string"),
            "value_tier": pd.array(tiers, dtype="string"),
            "clv": np.asarray(clv, dtype=float),
        }
    )


# a: at_risk -> active (saved); b: at_risk -> lost (slipped); c: at_risk -> at_risk;
# d: at_risk, gone at `to` (absent); e: dormant -> active; f: active -> active;
# g: only at `to` (new); prospect p has no CLV at `from`
BEFORE = _scores(
    [
        ("a", "at_risk", "high", 100.0),
        ("b", "at_risk", "low", 10.0),
        ("c", "at_risk", "low", 20.0),
        ("d", "at_risk", "vip", 500.0),
        ("e", "dormant", "medium", 30.0),
        ("f", "active", "low", 5.0),
        ("p", "prospect", "low", float("nan")),
    ]
)
AFTER = _scores(
    [
        ("a", "active", "vip", 150.0),
        ("b", "lost", "low", 1.0),
        ("c", "at_risk", "low", 18.0),
        ("e", "active", "medium", 40.0),
        ("f", "active", "low", 6.0),
        ("g", "new", "medium", 50.0),
        ("p", "new", "low", 12.0),
    ]
)


@pytest.fixture(scope="module")
def result():
    return compare_scores(BEFORE, AFTER, "2024-01-01", "2024-04-01")


def _cell(cells: pd.DataFrame, what: str, src: str, dst: str) -> pd.Series:
    row = cells[(cells[f"from_{what}"] == src) & (cells[f"to_{what}"] == dst)]
    assert len(row) == 1, (src, dst)
    return row.iloc[0]


def test_every_customer_of_either_date_is_counted(result) -> None:
    pairs = pair_scores(BEFORE, AFTER)
    assert len(pairs) == 8  # 7 + g
    assert result.stages["customers"].sum() == 8 and result.tiers["customers"].sum() == 8
    assert _cell(result.stages, "stage", "at_risk", ABSENT)["customers"] == 1
    assert _cell(result.stages, "stage", ABSENT, "new")["customers"] == 1
    c = result.counts
    assert (c["customers_from"], c["customers_to"], c["in_both"]) == (7, 7, 6)
    assert (c["only_from"], c["only_to"], c["new"]) == (1, 1, 1)
    assert c["reactivated"] == 0  # e left dormant but is not in the stage reactivated
    assert c["stage_changed"] == 4  # a, b, e, p
    assert c["tier_changed"] == 1  # a


def test_hand_counted_cells_shares_and_clv_moved(result) -> None:
    cells = result.stages
    at_risk = cells[cells["from_stage"] == "at_risk"]
    assert dict(zip(at_risk["to_stage"], at_risk["customers"], strict=True)) == {
        "active": 1,
        "at_risk": 1,
        "lost": 1,
        ABSENT: 1,
    }
    np.testing.assert_allclose(at_risk["share_of_from"], 0.25)
    for _, shares in cells.groupby("from_stage")["share_of_from"]:
        assert shares.sum() == pytest.approx(1.0)
    active = _cell(cells, "stage", "active", "active")  # f only
    assert active["customers"] == 1 and active["clv_from"] == 5.0 and active["clv_to"] == 6.0
    gone = _cell(cells, "stage", "at_risk", ABSENT)
    assert gone["clv_from"] == 500.0 and gone["clv_to"] == 0.0
    # the CLV that moved adds up to each date's total (an absent side and a missing CLV are 0)
    assert cells["clv_from"].sum() == pytest.approx(665.0)
    assert cells["clv_to"].sum() == pytest.approx(AFTER["clv"].sum())
    assert cells["clv_change"].sum() == pytest.approx(AFTER["clv"].sum() - 665.0)
    # display order: the stage order of the policy, (absent) last
    assert cells["from_stage"].iloc[-1] == ABSENT
    tiers = result.tiers
    assert _cell(tiers, "tier", "high", "vip")["customers"] == 1
    assert _cell(tiers, "tier", "low", "low")["customers"] == 4  # b, c, f, p


def test_at_risk_outcomes(result) -> None:
    out = result.at_risk.set_index("outcome")
    assert out["customers"].to_dict() == {
        "saved": 1,
        "still at_risk": 1,
        "slipped": 1,
        "other": 0,
        "absent": 1,
    }
    assert out["share"].sum() == pytest.approx(1.0)
    assert out.loc["saved", "clv_to"] == 150.0


def test_repeated_ids_are_refused() -> None:
    with pytest.raises(ValueError, match="repeated"):
        compare_scores(pd.concat([BEFORE, BEFORE]), AFTER, "2024-01-01", "2024-04-01")


def test_grid_and_report_section(result) -> None:
    grid = matrix_grid(result.stages, "stage", "customers")
    assert grid.loc["at_risk", ABSENT] == 1 and grid.loc["dormant", "lost"] == 0
    assert int(grid.to_numpy().sum()) == 8
    rep = Report("t")
    transitions_section(rep.section("Customer movements"), result, "$")
    html = rep.render()
    assert rep.n_images == 1 and "2024-01-01" in html and ABSENT in html


def test_reactivated_counts_the_stage_and_at_risk_to_reactivated_is_saved() -> None:
    before = _scores(
        [
            ("x", "dormant", "low", 1.0),
            ("y", "dormant", "low", 1.0),
            ("z", "at_risk", "low", 1.0),
            ("w", "reactivated", "low", 1.0),
            ("v", "lost", "low", 1.0),
        ]
    )
    after = _scores(
        [
            ("x", "reactivated", "low", 1.0),
            ("y", "at_risk", "low", 1.0),  # no purchase: not reactivated
            ("z", "reactivated", "low", 1.0),
            ("w", "reactivated", "low", 1.0),  # already reactivated then
            ("v", "reactivated", "low", 1.0),
        ]
    )
    out = compare_scores(before, after, "2024-01-01", "2024-04-01")
    assert out.counts["reactivated"] == 3  # x, z, v
    outcomes = out.at_risk.set_index("outcome")["customers"]
    assert outcomes["saved"] == 1 and outcomes["other"] == 0  # z
