"""Churn labels on hand-built customers and refusal of unobserved windows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from retain.features.labels import churn_labels

CUTOFF = "2021-03-31"
H = 30  # window: 2021-04-01 .. 2021-04-30


def tx(rows):
    return pd.DataFrame(
        {
            "customer_id": pd.array([r[0] for r in rows], dtype="string"),
            "timestamp": pd.to_datetime([r[1] for r in rows], format="ISO8601").astype(
                "datetime64[ns]"
            ),
            "amount": [10.0] * len(rows),
        }
    )


@pytest.fixture
def hand_built():
    return tx(
        [
            ("buys_next_day", "2021-01-05"),
            ("buys_next_day", "2021-04-01 00:00:00"),  # first day of the window -> 0
            ("buys_last_day", "2021-02-01"),
            ("buys_last_day", "2021-04-30 23:59:59"),  # last day of the window -> 0
            ("buys_too_late", "2021-03-01"),
            ("buys_too_late", "2021-05-01 00:00:00"),  # the day after the window -> 1
            ("cutoff_day_only", "2021-03-31 23:00:00"),  # in the history, not the window -> 1
            ("never_again", "2020-06-01"),  # -> 1
            ("first_after_cutoff", "2021-04-10"),  # no purchase by the cutoff: no label
        ]
    )


def test_labels_on_hand_built_cases(hand_built):
    y = churn_labels(hand_built, CUTOFF, H, "2021-06-30")
    assert y.name == "churned" and y.dtype == np.int64 and y.index.name == "customer_id"
    assert y.to_dict() == {
        "buys_last_day": 0,
        "buys_next_day": 0,
        "buys_too_late": 1,
        "cutoff_day_only": 1,
        "never_again": 1,
    }


def test_window_must_be_observed(hand_built):
    # cutoff + H == observed_until is fine; one day less of data is not
    churn_labels(hand_built, CUTOFF, H, "2021-04-30")
    with pytest.raises(ValueError, match=r"cutoff 2021-03-31.*30-day.*\(2021-04-29\)"):
        churn_labels(hand_built, CUTOFF, H, "2021-04-29")
    with pytest.raises(ValueError, match="horizon_days must be positive"):
        churn_labels(hand_built, CUTOFF, 0, "2021-06-30")
