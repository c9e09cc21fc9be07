"""build_features: assembly, point-in-time guard, and the point-in-time property."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from retain.config import FeatureConfig
from retain.contracts import EVENT_TYPES
from retain.features.behaviour import behaviour_column_names, behaviour_features
from retain.features.build import PointInTimeError, build_features, check_point_in_time
from retain.features.engagement import engagement_column_names, engagement_features
from retain.features.rfm import rfm_summary

CUTOFF = pd.Timestamp("2021-06-30")


def test_cdnow_master_features_agree_with_their_parts(cdnow_master):
    f = build_features(cdnow_master, "1997-09-30")
    assert len(f) == 23_570 and f.index.is_unique and f.index.is_monotonic_increasing
    assert str(f.index.dtype) == "string" and f.index.name == "customer_id"
    expected = [
        "frequency",
        "recency_days",
        "tenure_days",
        "monetary_value",
        *[c for c in behaviour_column_names() if c != "tenure_days"],
        "r_score",
        "f_score",
        "m_score",
        "rfm_segment",
        "rfm_class",
    ]
    assert list(f.columns) == expected
    pd.testing.assert_frame_equal(
        f[["frequency", "recency_days", "tenure_days", "monetary_value"]],
        rfm_summary(cdnow_master, "1997-09-30"),
    )
    behaviour = behaviour_features(cdnow_master, "1997-09-30")
    pd.testing.assert_frame_equal(f[behaviour.columns], behaviour)
    np.testing.assert_array_equal(f["n_occasions"], f["frequency"] + 1)
    np.testing.assert_allclose(f["days_since_last_purchase"], f["tenure_days"] - f["recency_days"])
    assert f["rfm_segment"].dtype == "category" and not f["rfm_segment"].isna().any()
    assert set(f["rfm_class"].cat.categories) == {"VIP", "new", "dormant", "regular"}
    check_point_in_time(f, "1997-09-30")


def test_point_in_time_guard_catches_later_information(cdnow_master):
    late = build_features(cdnow_master, "1998-03-31")
    check_point_in_time(late, "1998-03-31")
    with pytest.raises(PointInTimeError, match="not built for cutoff 1997-09-30"):
        check_point_in_time(late, "1997-09-30")
    # a table relabelled as an earlier cutoff: its record shows data after that cutoff day
    relabelled = late.copy()
    relabelled.attrs["point_in_time"] = {"1997-09-30": late.attrs["point_in_time"]["1998-03-31"]}
    with pytest.raises(PointInTimeError, match="used data from 1998-03-"):
        check_point_in_time(relabelled, "1997-09-30")
    # a feature computed with a later purchase: negative days since the last purchase
    leaked = build_features(cdnow_master, "1997-09-30")
    leaked.loc[leaked.index[0], "days_since_last_purchase"] = -3
    with pytest.raises(PointInTimeError, match="after the cutoff"):
        check_point_in_time(leaked)
    stripped = late.copy()
    stripped.attrs = {}  # e.g. lost in a merge: the guard refuses rather than passes
    with pytest.raises(PointInTimeError, match="no point-in-time record"):
        check_point_in_time(stripped, "1998-03-31")


# ------------------------------------------------------------- point-in-time property

_DAY = 86_400


@st.composite
def histories(draw):
    """Transactions and events up to CUTOFF, plus arbitrary rows dated after it."""
    customers = st.sampled_from(["a", "b", "c", "d", "e"])
    later_customers = st.sampled_from(["a", "b", "c", "d", "e", "new1", "new2"])
    # amounts are multiples of 1/4, exact in binary, so sums do not depend on row order
    amount = st.integers(1, 4000).map(lambda k: k / 4)

    def tx_rows(who, days):
        return st.lists(
            st.tuples(who, days, st.integers(0, _DAY - 1), amount, st.integers(0, 5)),
            min_size=0,
            max_size=25,
        )

    def event_rows(who, days):
        kinds = st.sampled_from([*EVENT_TYPES, "webinar"])
        value = st.one_of(st.none(), st.integers(0, 10))
        return st.lists(st.tuples(who, days, st.integers(0, _DAY - 1), kinds, value), max_size=40)

    before_days = st.integers(-500, 0)
    after_days = st.integers(1, 500)
    tx_before = draw(tx_rows(customers, before_days).filter(len))
    tx_after = draw(tx_rows(later_customers, after_days))
    ev_before = draw(event_rows(customers, before_days))
    ev_after = draw(event_rows(later_customers, after_days))
    seed = draw(st.integers(0, 2**32 - 1))
    return tx_before, tx_after, ev_before, ev_after, seed


def _stamp(day, second):
    return CUTOFF + pd.Timedelta(days=day, seconds=second)


def _tx(rows):
    return pd.DataFrame(
        {
            "customer_id": pd.array([r[0] for r in rows], dtype="string"),
            "timestamp": pd.to_datetime([_stamp(r[1], r[2]) for r in rows]).astype(
                "datetime64[ns]"
            ),
            "amount": np.array([r[3] for r in rows], dtype=float),
            "quantity": np.array([r[4] for r in rows], dtype=float),
        }
    )


def _ev(rows):
    return pd.DataFrame(
        {
            "customer_id": pd.array([r[0] for r in rows], dtype="string"),
            "timestamp": pd.to_datetime([_stamp(r[1], r[2]) for r in rows]).astype(
                "datetime64[ns]"
            ),
            "event_type": pd.array([r[3] for r in rows], dtype="string"),
            "value": np.array([np.nan if r[4] is None else r[4] for r in rows], dtype=float),
        }
    )


def _append_shuffled(before, after, seed):
    both = pd.concat([before, after], ignore_index=True)
    order = np.random.default_rng(seed).permutation(len(both))
    return both.iloc[order].reset_index(drop=True)


@settings(
    max_examples=30,
    deadline=None,
    database=None,  # no .hypothesis folder in the working directory
    suppress_health_check=[HealthCheck.too_slow],
)
@given(histories())
def test_rows_after_the_cutoff_change_no_feature(history):
    tx_before, tx_after, ev_before, ev_after, seed = history
    tx0, ev0 = _tx(tx_before), _ev(ev_before)
    tx1 = _append_shuffled(tx0, _tx(tx_after), seed)
    ev1 = _append_shuffled(ev0, _ev(ev_after), seed + 1)
    config = FeatureConfig(windows_days=(7, 30, 365), trend_window_days=30)
    # build_features holds the RFM summary in days and the behaviour features (checked against
    # rfm_summary and behaviour_features above); the weeks summary and the engagement table of
    # all event holders (purchasers or not) are checked on their own.
    pd.testing.assert_frame_equal(
        rfm_summary(tx0, CUTOFF, "W"), rfm_summary(tx1, CUTOFF, "W"), check_exact=True
    )
    pd.testing.assert_frame_equal(
        engagement_features(ev0, CUTOFF, (7, 30), 30),
        engagement_features(ev1, CUTOFF, (7, 30), 30),
        check_exact=True,
    )
    f0 = build_features(tx0, CUTOFF, ev0, config)
    f1 = build_features(tx1, CUTOFF, ev1, config)
    pd.testing.assert_frame_equal(f0, f1, check_exact=True)
    assert f0.attrs == f1.attrs
    check_point_in_time(f1, CUTOFF)
    assert list(f0.columns[-len(engagement_column_names((7, 30, 365))) :]) == (
        engagement_column_names((7, 30, 365))
    )
