"""Value metrics computed by hand on five customers."""

from __future__ import annotations

import numpy as np
import pytest

from retain.clv.value_metrics import (
    capture_curve,
    decile_table,
    normalized_gini,
    top_capture,
    total_error,
    value_metrics,
)

ACTUAL = np.array([10.0, 0.0, 5.0, 0.0, 85.0])
PRED = np.array([4.0, 1.0, 2.0, 0.0, 3.0])  # ranks: 10, 85, 5, 0, 0


def test_top_capture_by_hand() -> None:
    assert top_capture(ACTUAL, PRED, 0.2) == pytest.approx(10 / 100)
    assert top_capture(ACTUAL, PRED, 0.4) == pytest.approx(95 / 100)
    assert top_capture(ACTUAL, ACTUAL, 0.2) == pytest.approx(85 / 100)
    # ceil(0.05 x 5) = 1 customer
    assert top_capture(ACTUAL, PRED, 0.05) == pytest.approx(10 / 100)


def test_normalized_gini_by_hand() -> None:
    # ranked shares: .10 .95 1 1 1 -> 4.05/5 - 6/10 = 0.21; perfect: .85 .95 1 1 1 -> 0.36
    assert normalized_gini(ACTUAL, PRED) == pytest.approx(0.21 / 0.36)
    assert normalized_gini(ACTUAL, ACTUAL) == pytest.approx(1.0)
    assert normalized_gini(ACTUAL, np.ones(5)) == pytest.approx(0.0)
    assert normalized_gini(ACTUAL, -ACTUAL) < 0


def test_ties_take_the_group_mean_whatever_the_row_order() -> None:
    pred = np.array([1.0, 1.0, 0.0, 0.0, 0.0])
    # tie groups: {10, 0} mean 5, {5, 0, 85} mean 30 -> ranked 5 5 30 30 30
    assert top_capture(ACTUAL, pred, 0.2) == pytest.approx(0.05)
    assert top_capture(ACTUAL, pred, 0.4) == pytest.approx(0.10)
    flipped = np.argsort(-np.arange(5))
    assert top_capture(ACTUAL[flipped], pred[flipped], 0.2) == pytest.approx(0.05)


def test_decile_table_by_hand() -> None:
    table = decile_table(ACTUAL, PRED, n_bins=2)
    # rank groups floor(i x 2 / 5): [0 0 0 1 1]; predictions 4 3 2 | 1 0; actual 10 85 5 | 0 0
    assert table["customers"].tolist() == [3, 2]
    assert table["mean_predicted"].tolist() == pytest.approx([3.0, 0.5])
    assert table["mean_actual"].tolist() == pytest.approx([100 / 3, 0.0])
    assert table["decile"].tolist() == [1, 2]


def test_total_error_and_summary() -> None:
    assert total_error(ACTUAL, PRED) == pytest.approx((10 - 100) / 100)
    metrics = value_metrics(ACTUAL, PRED)
    assert metrics["top20_capture"] == pytest.approx(0.10)
    assert metrics["mae"] == pytest.approx((6 + 1 + 3 + 0 + 82) / 5)
    assert set(metrics) == {
        "gini",
        "top5_capture",
        "top20_capture",
        "total_error",
        "mae",
        "decile_mae",
    }


def test_capture_curve_ends_and_bad_input() -> None:
    targeted, captured = capture_curve(ACTUAL, PRED)
    assert targeted[0] == 0 and targeted[-1] == 1
    assert captured[0] == 0 and captured[-1] == pytest.approx(1.0)
    assert captured[2] == pytest.approx(0.95)
    with pytest.raises(ValueError, match="finite"):
        top_capture(np.array([1.0, np.nan]), np.array([1.0, 2.0]), 0.5)
    with pytest.raises(ValueError, match="length"):
        normalized_gini(np.ones(3), np.ones(2))
    assert np.isnan(top_capture(np.zeros(3), np.arange(3.0), 0.2))
