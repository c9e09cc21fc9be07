"""The feature catalogue covers every column build_features can make, and its texts render."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from retain.config import FeatureConfig
from retain.contracts import EVENT_TYPES
from retain.features.build import build_features
from retain.features.catalogue import FEATURE_CATALOGUE, feature_info, reason_text


def _data(n=40, seed=0):
    rng = np.random.default_rng(seed)
    ids = pd.array([f"c{i}" for i in rng.integers(0, 10, n)], dtype="string")
    ts = (np.datetime64("2021-01-01") + rng.integers(0, 360, n).astype("timedelta64[D]")).astype(
        "datetime64[ns]"
    )
    tx = pd.DataFrame(
        {"customer_id": ids, "timestamp": ts, "amount": rng.gamma(2, 10, n), "quantity": 1.0}
    )
    ev = pd.DataFrame(
        {
            "customer_id": ids,
            "timestamp": ts,
            "event_type": pd.array(rng.choice(EVENT_TYPES, n), dtype="string"),
            "value": rng.integers(0, 6, n).astype(float),
        }
    )
    return tx, ev


def test_every_column_of_build_features_has_an_entry():
    tx, ev = _data()
    full = build_features(tx, "2021-12-31", events=ev)
    plain = build_features(tx.drop(columns="quantity"), "2021-12-31")
    for col in [*full.columns, *plain.columns]:
        assert col in FEATURE_CATALOGUE, col
    custom = build_features(tx, "2021-12-31", ev, FeatureConfig(windows_days=(7, 60)))
    for col in custom.columns:
        info = feature_info(col)
        assert info.meaning and info.unit and info.reason


@pytest.mark.parametrize("seed", [0, 1])
def test_every_reason_renders_with_customer_values(seed):
    tx, ev = _data(seed=seed)
    f = build_features(tx, "2021-12-31", events=ev)
    for _, row in f.iterrows():
        for col in f.columns:
            text = reason_text(col, row)
            assert text and "{" not in text and "nan" not in text.lower(), (col, text)
            assert text != "value not available", col  # every NaN-able feature says why


def test_reason_uses_own_values_and_falls_back_when_missing():
    row = pd.Series({"days_since_last_purchase": 143.0, "mean_gap_days": 35.2})
    assert reason_text("days_since_last_purchase", row) == (
        "no purchase for 143 days (usual gap 35 days)"
    )
    row["mean_gap_days"] = np.nan
    assert reason_text("days_since_last_purchase", row) == "no purchase for 143 days"
    assert reason_text("mean_gap_days", row) == "only one purchase so far, no usual gap yet"


def test_unknown_feature_is_a_key_error():
    with pytest.raises(KeyError, match="not in the feature catalogue"):
        feature_info("shoe_size")
    with pytest.raises(KeyError):
        feature_info("webinar_count_30d")
