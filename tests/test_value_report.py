"""The report's value section on a small scores table."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from retain.reporting.html import Section
from retain.reporting.value import holdout_table, top_membership, top_overlap, value_section


def _scores() -> pd.DataFrame:
    n = 10
    return pd.DataFrame(
        {
            "customer_id": [f"c{i}" for i in range(n)],
            "clv": np.arange(n, dtype=float)[::-1],
            "clv_ml": np.arange(n, dtype=float)[::-1],
            # BTYD agrees on c0 as the best, and puts c1 last
            "clv_btyd": [9.0, 0.0, 8.0, 7.0, 6.0, 5.0, 4.0, 3.0, 2.0, 1.0],
            "clv_method": ["ml"] * n,
            "value_tier": ["vip"] + ["high"] * 2 + ["medium"] * 3 + ["low"] * 4,
            "value_reason_1": ["spent a lot: raises predicted value (+0.90)"] * n,
            "value_reason_2": [pd.NA] * n,
            "value_reason_3": [pd.NA] * n,
        }
    )


def test_overlap_of_the_top_fifth() -> None:
    # top 2 by ML: c0, c1; by BTYD: c0, c2 -> half of them shared
    assert top_overlap(_scores()) == pytest.approx(0.5)
    assert np.isnan(top_overlap(_scores().assign(clv_ml=np.nan)))


def test_overlap_with_ties_does_not_depend_on_the_row_order() -> None:
    # a constant ML CLV ranks no one: each customer is in its top 2 of 10 with chance 1/5,
    # so the expected overlap is 1/5 whichever rows come first
    flat = _scores().assign(clv_ml=1.0)
    assert top_overlap(flat) == pytest.approx(0.2)
    assert top_overlap(flat.iloc[::-1]) == pytest.approx(0.2)
    # a tie at the edge: c1 and c2 share the second place by ML; c2 is second by BTYD
    edge = _scores().assign(clv_ml=[9.0, 5.0, 5.0, 4.0, 3.0, 2.0, 1.0, 0.0, 0.0, 0.0])
    assert top_overlap(edge) == pytest.approx((1 + 0.5) / 2)
    assert top_overlap(edge.iloc[::-1]) == pytest.approx(0.75)
    member = top_membership(np.array([3.0, 2.0, 2.0, 2.0, 1.0]), 2)
    np.testing.assert_allclose(member, [1, 1 / 3, 1 / 3, 1 / 3, 0])


def test_holdout_table_and_section() -> None:
    table = holdout_table({"ml_top20_capture": 0.85, "btyd_top20_capture": 0.8})
    assert table.loc["share of the test value held by the top 20%", "BTYD"] == 0.8
    assert table["ML value model"].isna().sum() == len(table) - 1
    sec = value_section(Section("value"), _scores(), {"ml_top20_capture": 0.85}, "hurdle")
    page = "".join(sec.blocks)
    assert "ML value model CLV (ml)" in page and "50%" in page
    assert page.count("raises predicted value") == 5  # the five highest-value customers
    assert "mean BTYD CLV" in page
