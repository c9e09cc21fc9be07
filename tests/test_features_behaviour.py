"""Behaviour features on hand-built customers whose values can be worked out by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from retain.features.behaviour import behaviour_column_names, behaviour_features

CUTOFF = "2021-12-31"


def tx(rows, quantity=True):
    """rows: (customer, 'YYYY-MM-DD[ HH:MM:SS]', amount, quantity)."""
    df = pd.DataFrame(rows, columns=["customer_id", "timestamp", "amount", "quantity"])
    df["customer_id"] = df["customer_id"].astype("string")
    df["timestamp"] = pd.to_datetime(df["timestamp"], format="ISO8601").astype("datetime64[ns]")
    return df if quantity else df.drop(columns="quantity")


@pytest.fixture
def hand_built():
    return tx(
        [
            # a: occasions on Dec 31 (cutoff day, two rows), Dec 21, Nov 1, Jan 1 -> gaps 304,
            # 50, 10 days (sorted by time).
            ("a", "2021-01-01", 10.0, 1),
            ("a", "2021-11-01", 20.0, 2),
            ("a", "2021-12-21", 30.0, 3),
            ("a", "2021-12-31 08:00:00", 5.0, 1),
            ("a", "2021-12-31 20:00:00", 5.0, 1),
            # b: one occasion, 100 days before the cutoff
            ("b", "2021-09-22", 40.0, 4),
            # c: two occasions 20 days apart, last 200 days before the cutoff
            ("c", "2021-05-25", 8.0, 1),
            ("c", "2021-06-14", 12.0, 3),
            # after the cutoff: ignored
            ("a", "2022-01-01", 999.0, 9),
            ("d", "2022-03-01", 999.0, 9),
        ]
    )


def test_hand_built_values(hand_built):
    f = behaviour_features(hand_built, CUTOFF)
    assert list(f.index) == ["a", "b", "c"]
    assert list(f.columns) == behaviour_column_names()
    a, b, c = f.loc["a"], f.loc["b"], f.loc["c"]
    assert a["tenure_days"] == 364 and a["days_since_last_purchase"] == 0
    assert a["n_occasions"] == 4
    gaps = np.array([304.0, 50.0, 10.0])
    assert a["mean_gap_days"] == pytest.approx(gaps.mean())
    assert a["std_gap_days"] == pytest.approx(gaps.std(ddof=1))
    assert a["gap_ratio"] == 0.0
    # trailing windows include the cutoff day: 30d = Dec 2..31, 90d = Oct 3..Dec 31
    assert a["spend_30d"] == 40.0 and a["occasions_30d"] == 2
    assert a["spend_90d"] == 60.0 and a["occasions_90d"] == 3
    assert a["spend_365d"] == 70.0 and a["occasions_365d"] == 4
    # trend window 90: recent 60 spent, earlier (Jul 5..Oct 2) nothing -> +1
    assert a["spend_trend"] == 1.0 and a["frequency_trend"] == 1.0
    assert a["mean_basket_size"] == pytest.approx(8 / 4)
    assert a["total_spend"] == 70.0 and a["avg_occasion_value"] == 17.5

    assert b["days_since_last_purchase"] == 100 and b["tenure_days"] == 100
    assert np.isnan(b["mean_gap_days"]) and np.isnan(b["std_gap_days"])
    assert np.isnan(b["gap_ratio"])
    assert b["occasions_90d"] == 0 and b["occasions_180d"] == 1
    assert b["spend_trend"] == -1.0  # day 100 is in the earlier window (90..179)

    assert c["mean_gap_days"] == 20.0
    assert np.isnan(c["std_gap_days"])  # one gap: no sample standard deviation
    assert c["gap_ratio"] == pytest.approx(200 / 20)
    assert np.isnan(c["spend_trend"]) and np.isnan(c["frequency_trend"])
    assert c["spend_365d"] == 20.0


def test_trend_compares_equal_windows(hand_built):
    # With a 60-day trend window, a's recent (Nov 2..Dec 31) spend 40 vs earlier 20 -> 1/3.
    f = behaviour_features(hand_built, CUTOFF, trend_window_days=60)
    assert f.loc["a", "spend_trend"] == pytest.approx((40 - 20) / 60)
    assert f.loc["a", "frequency_trend"] == pytest.approx((2 - 1) / 3)


def test_custom_windows_and_no_quantity(hand_built):
    f = behaviour_features(hand_built.drop(columns="quantity"), CUTOFF, windows_days=(7, 400))
    assert "mean_basket_size" not in f
    assert list(f.columns) == behaviour_column_names((7, 400), with_quantity=False)
    assert f.loc["a", "occasions_7d"] == 1
    assert f.loc["a", "occasions_400d"] == 4


def test_counts_are_integers_and_empty_input_keeps_columns(hand_built):
    f = behaviour_features(hand_built, CUTOFF)
    assert f["n_occasions"].dtype == np.int64 and f["occasions_30d"].dtype == np.int64
    empty = behaviour_features(hand_built, "2020-01-01")
    assert empty.empty and list(empty.columns) == list(f.columns)
    assert empty["n_occasions"].dtype == np.int64


@pytest.mark.parametrize(
    "kwargs",
    [
        {"windows_days": ()},
        {"windows_days": (0,)},
        {"windows_days": (30, 30)},
        {"trend_window_days": 0},
    ],
)
def test_invalid_windows_are_refused(hand_built, kwargs):
    with pytest.raises(ValueError):
        behaviour_features(hand_built, CUTOFF, **kwargs)
