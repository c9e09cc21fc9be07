"""Engagement features: hand-built events, absent events, customers without events."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from retain.contracts import EVENT_TYPES
from retain.features.build import build_features
from retain.features.engagement import engagement_column_names, engagement_features

CUTOFF = "2021-12-31"


def events_frame(rows):
    """rows: (customer, timestamp, event_type, value)."""
    df = pd.DataFrame(rows, columns=["customer_id", "timestamp", "event_type", "value"])
    df["customer_id"] = df["customer_id"].astype("string")
    df["event_type"] = df["event_type"].astype("string")
    df["timestamp"] = pd.to_datetime(df["timestamp"], format="ISO8601").astype("datetime64[ns]")
    df["value"] = df["value"].astype(float)
    return df


@pytest.fixture
def events():
    nan = np.nan
    return events_frame(
        [
            ("a", "2021-12-31 10:00:00", "session", nan),  # cutoff day: included
            ("a", "2021-12-20", "session", nan),
            ("a", "2021-08-01", "session", nan),  # 152 days before: earlier trend window
            ("a", "2021-12-01", "email_sent", nan),
            ("a", "2021-11-01", "email_sent", nan),
            ("a", "2021-11-01", "email_sent", nan),
            ("a", "2021-11-01", "email_sent", nan),
            ("a", "2021-12-01", "email_open", nan),
            ("a", "2021-11-02", "email_open", nan),
            ("a", "2021-12-02", "email_click", nan),
            ("a", "2021-03-01", "support_ticket", 2.0),
            ("a", "2021-10-01 09:00:00", "support_ticket", 4.0),  # latest ticket
            ("a", "2021-06-01", "survey", 9.0),
            ("a", "2021-02-01", "referral", nan),
            ("a", "2020-02-01", "referral", nan),  # older than every window: total only
            ("a", "2022-01-01", "support_ticket", 1.0),  # after the cutoff
            ("b", "2021-12-30", "survey", 3.0),
            ("b", "2021-12-30", "survey", 7.0),  # same instant: the greater value wins
            ("b", "2021-12-30", "webinar", nan),  # no role: a generic type
            ("e", "2022-02-01", "session", nan),  # only after the cutoff: absent
        ]
    )


def test_hand_built_values(events):
    f = engagement_features(events, CUTOFF)
    assert list(f.index) == ["a", "b"]
    assert list(f.columns) == engagement_column_names(event_types=["webinar"])
    a, b = f.loc["a"], f.loc["b"]
    assert a["session_count_30d"] == 2 and a["session_count_180d"] == 3
    assert a["days_since_last_session"] == 0
    assert a["email_sent_count_365d"] == 4
    assert a["email_click_rate"] == pytest.approx(1 / 4)
    assert a["email_open_rate"] == pytest.approx(2 / 4)
    assert a["last_satisfaction"] == 4.0
    assert a["days_since_last_support_ticket"] == 91
    assert a["last_nps"] == 9.0
    assert a["referrals_total"] == 2 and a["referral_count_365d"] == 1
    # sessions: recent 90 days 2, earlier 90 days 1 -> (2 - 1) / 3
    assert a["engagement_trend"] == pytest.approx(1 / 3)
    assert b["last_nps"] == 7.0 and b["survey_count_30d"] == 2
    assert np.isnan(b["days_since_last_session"]) and b["session_count_365d"] == 0
    assert np.isnan(b["email_click_rate"]) and np.isnan(b["last_satisfaction"])
    assert np.isnan(b["engagement_trend"])
    assert b["events_webinar_30d"] == 1 and b["days_since_webinar"] == 1
    assert a["events_webinar_365d"] == 0 and np.isnan(a["days_since_webinar"])


def test_no_events_gives_no_columns():
    assert engagement_features(None, CUTOFF) is None
    tx = pd.DataFrame(
        {
            "customer_id": pd.array(["a", "z"], dtype="string"),
            "timestamp": pd.to_datetime(["2021-06-01", "2021-07-01"]).astype("datetime64[ns]"),
            "amount": [1.0, 2.0],
        }
    )
    plain = build_features(tx, CUTOFF)
    engagement_cols = set(engagement_column_names())
    assert not engagement_cols & set(plain.columns)


def test_customers_without_events_get_zero_counts_and_nan_elsewhere(events):
    tx = pd.DataFrame(
        {
            "customer_id": pd.array(["a", "z"], dtype="string"),
            "timestamp": pd.to_datetime(["2021-06-01", "2021-07-01"]).astype("datetime64[ns]"),
            "amount": [1.0, 2.0],
        }
    )
    f = build_features(tx, CUTOFF, events=events)
    assert list(f.index) == ["a", "z"]  # purchasers only: b has events but no purchase
    z = f.loc["z"]
    for col in engagement_column_names(event_types=["webinar"]):
        if "_count_" in col or col.startswith("events_") or col == "referrals_total":
            assert z[col] == 0, col
            assert f[col].dtype == np.int64, col
        else:
            assert np.isnan(z[col]), col
    assert f.loc["a", "last_satisfaction"] == 4.0


def test_role_and_listed_columns_do_not_depend_on_types_present(events):
    only_sessions = events[events["event_type"] == "session"]
    f = engagement_features(only_sessions, CUTOFF, windows_days=(14,))
    assert list(f.columns) == engagement_column_names((14,))
    assert all(f"days_since_last_{t}" in f for t in EVENT_TYPES)
    listed = engagement_features(only_sessions, CUTOFF, (14,), event_types=["Webinar", "demo"])
    assert list(listed.columns) == engagement_column_names((14,), ["webinar", "demo"])
    assert (listed["events_demo_14d"] == 0).all() and listed["days_since_webinar"].isna().all()
    empty = engagement_features(events.iloc[:0], CUTOFF)
    assert empty.empty and list(empty.columns) == engagement_column_names()
    assert engagement_features(events, CUTOFF, top_n=0).columns.tolist() == (
        engagement_column_names()
    )
