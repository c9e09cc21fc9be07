"""The open event vocabulary: roles mapped from the source's names, generic per-type features,
their point-in-time choice, the catalogue entries and the rejected-share warning."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from retain.config import FeatureConfig, RunConfig
from retain.contracts import EVENT_ROLES, event_role_renames
from retain.features.build import build_features, fix_event_types, model_feature_config
from retain.features.catalogue import build_catalogue, feature_info, reason_text
from retain.features.engagement import (
    engagement_column_names,
    engagement_features,
    event_type_slug,
    generic_column_names,
    generic_event_types,
    top_event_types,
)
from retain.validation import rejected_share_warnings, row_counts, validate_events

CUTOFF = "2021-06-30"
AS_OF = "2021-12-31"


def raw_events(rows):
    """rows: (customer, timestamp, event_type, value) as text, as read from a file."""
    return pd.DataFrame(rows, columns=["customer_id", "timestamp", "event_type", "value"])


def transactions(customers=("a", "b", "c")):
    return pd.DataFrame(
        {
            "customer_id": pd.array(list(customers), dtype="string"),
            "timestamp": pd.to_datetime(["2021-01-10"] * len(customers)).astype("datetime64[ns]"),
            "amount": np.ones(len(customers)),
        }
    )


SOURCE_ROWS = [
    ("a", "2021-06-30 12:00", "web_session", None),
    ("a", "2021-05-01", "web_session", None),
    ("a", "2021-01-01", "web_session", None),
    ("a", "2021-03-01", "ticket_closed", "2"),
    ("b", "2021-06-01", "web_session", None),
    ("b", "2021-06-02", "page_view", None),
    ("b", "2021-06-03", "page_view", None),
    ("c", "2021-02-02", "Page View", None),
    ("c", "2021-04-04", "download", None),
    ("c", "2021-08-01", "web_session", None),  # after the cutoff
]


def test_mapped_source_names_give_the_same_role_features_as_the_role_names():
    roles = {"session": "web_session", "support_ticket": "ticket_closed"}
    mapped, _ = validate_events(raw_events(SOURCE_ROWS), AS_OF, roles=roles)
    renamed = [
        (c, t, {"web_session": "session", "ticket_closed": "support_ticket"}.get(e, e), v)
        for c, t, e, v in SOURCE_ROWS
    ]
    native, _ = validate_events(raw_events(renamed), AS_OF)
    f_mapped = build_features(transactions(), CUTOFF, mapped)
    f_native = build_features(transactions(), CUTOFF, native)
    pd.testing.assert_frame_equal(f_mapped, f_native, check_exact=True)
    assert f_mapped.loc["a", "session_count_90d"] == 2
    assert f_mapped.loc["a", "last_satisfaction"] == 2.0
    # without the mapping the same data has no sessions at all: web_session is a generic type
    unmapped, _ = validate_events(raw_events(SOURCE_ROWS), AS_OF)
    f_unmapped = build_features(transactions(), CUTOFF, unmapped)
    assert (f_unmapped["session_count_365d"] == 0).all()
    assert f_unmapped.loc["a", "events_web_session_365d"] == 3


def test_unknown_types_are_kept_and_become_generic_features():
    events, rejects = validate_events(raw_events(SOURCE_ROWS), AS_OF)
    assert rejects.empty
    assert "download" in set(events["event_type"]) and "page view" in set(events["event_type"])
    f = build_features(transactions(), CUTOFF, events)
    # "page_view" and "Page View" slug alike: one generic type, counted together
    assert f.loc["b", "events_page_view_30d"] == 2
    assert f.loc["c", "events_page_view_365d"] == 1
    assert f.loc["c", "days_since_download"] == 87
    assert np.isnan(f.loc["a", "days_since_download"]) and f.loc["a", "events_download_30d"] == 0
    assert f["events_page_view_30d"].dtype == np.int64


def test_top_n_is_chosen_from_the_data_before_the_cutoff_ties_by_name():
    rows = [
        ("a", "2021-01-01", "zeta", None),
        ("a", "2021-01-02", "alpha", None),
        ("b", "2021-01-03", "beta", None),
        ("b", "2021-01-04", "beta", None),
        *[("a", f"2021-07-0{d}", "late", None) for d in range(1, 6)],  # only after the cutoff
        *[("b", f"2021-06-0{d}", "session", None) for d in range(1, 6)],  # a role: not generic
    ]
    events, _ = validate_events(raw_events(rows), AS_OF)
    assert top_event_types(events, CUTOFF, 2) == ("beta", "alpha")
    assert top_event_types(events, CUTOFF, 10) == ("beta", "alpha", "zeta")
    assert top_event_types(events, "2021-12-31", 1) == ("late",)
    assert top_event_types(events, CUTOFF, 0) == () and top_event_types(None, CUTOFF) == ()
    f = build_features(transactions(), CUTOFF, events, FeatureConfig(event_types_top_n=2))
    assert [c for c in f.columns if c.startswith("days_since_") and "last" not in c] == [
        "days_since_beta",
        "days_since_alpha",
    ]


@pytest.mark.parametrize("config", [FeatureConfig(), FeatureConfig(event_types=("beta", "late"))])
def test_events_after_the_cutoff_change_no_feature(config):
    before = [
        ("a", "2021-01-01", "beta", None),
        ("a", "2021-06-30 23:59:59", "alpha", None),
        ("b", "2021-03-03", "session", None),
        ("c", "2021-02-02", "survey", "8"),
    ]
    after = [
        *[("a", f"2021-07-0{d}", "late", None) for d in range(1, 10)],  # new, most frequent
        ("b", "2021-07-02", "beta", None),
        ("c", "2021-07-01", "survey", "1"),
        ("new", "2021-07-01", "alpha", None),
    ]
    ev0, _ = validate_events(raw_events(before), AS_OF)
    ev1, _ = validate_events(raw_events(before + after), AS_OF)
    f0 = build_features(transactions(), CUTOFF, ev0, config)
    f1 = build_features(transactions(), CUTOFF, ev1, config)
    pd.testing.assert_frame_equal(f0, f1, check_exact=True)
    assert f0.attrs == f1.attrs
    pd.testing.assert_frame_equal(
        engagement_features(ev0, CUTOFF, event_types=config.event_types),
        engagement_features(ev1, CUTOFF, event_types=config.event_types),
        check_exact=True,
    )


def test_listed_types_always_get_their_columns_so_a_model_can_be_scored():
    trained_on = ["recency_days", *generic_column_names(["webinar", "page_view"], (30, 90))]
    assert generic_event_types(trained_on) == ("webinar", "page_view")
    events, _ = validate_events(raw_events([("a", "2021-01-01", "session", None)]), AS_OF)
    config = FeatureConfig(windows_days=(30, 90), event_types=generic_event_types(trained_on))
    f = build_features(transactions(), CUTOFF, events, config)
    assert set(trained_on) <= set(f.columns)
    assert (f["events_webinar_90d"] == 0).all() and f["days_since_page_view"].isna().all()


def test_generic_event_types_reads_only_generic_columns():
    roles = [c for c in engagement_column_names((30,)) if c not in ("days_since_x",)]
    assert generic_event_types([*roles, "days_since_last_purchase", "spend_30d"]) == ()
    assert generic_event_types(["days_since_last_login", "events_a_7d_30d"]) == (
        "last_login",
        "a_7d",
    )


@pytest.mark.parametrize(
    ("name", "slug"),
    [
        ("Page View", "page_view"),
        ("  page-view!! ", "page_view"),
        ("App.Open/iOS", "app_open_ios"),
        ("session!", "session_event"),  # a role name is reserved
        ("last purchase", "last_purchase_event"),  # days_since_last_purchase exists
        ("last_survey", "last_survey_event"),  # days_since_last_survey exists
        ("last_login", "last_login"),
    ],
)
def test_slugs(name, slug):
    assert event_type_slug(name) == slug


def test_a_name_without_letters_or_digits_gets_a_stable_distinct_slug():
    a, b = event_type_slug("会话"), event_type_slug("登录")
    assert a != b and a.startswith("type_") and a == event_type_slug("会话")


def test_catalogue_resolves_generic_columns():
    info = feature_info("events_page_view_30d")
    assert info.unit == "count"
    assert reason_text("events_page_view_30d", {"events_page_view_30d": 4}) == (
        "4 page_view events in the last 30 days"
    )
    assert feature_info("days_since_download").render(12.0) == "last download event 12 days ago"
    assert feature_info("days_since_download").render(np.nan) == "no download events recorded"
    role = feature_info("days_since_last_session")
    assert role.render(3.0) == "last of the web sessions 3 days ago"
    catalogue = build_catalogue((30,), ["Page View"])
    assert {"events_page_view_30d", "days_since_page_view"} <= set(catalogue)
    with pytest.raises(KeyError):
        feature_info("webinar_count_30d")


def test_role_renames_and_config():
    assert event_role_renames(None) == {}
    assert event_role_renames({"session": ["Web_Session", "app_open"], "survey": "survey"}) == {
        "web_session": "session",
        "app_open": "session",
    }
    base = {"name": "t", "clv": {"calibration_end": "1997-09-30", "holdout_end": "1998-06-30"}}
    files = {"source": "files", "transactions": {"path": "tx.csv"}, "observed_until": AS_OF}
    cfg = RunConfig.model_validate(
        {**base, "data": {**files, "events": {"path": "ev.csv", "roles": {"session": "visit"}}}}
    )
    assert cfg.data.events.roles == {"session": "visit"}
    assert cfg.data.max_rejected_share == 0.05
    assert RunConfig.model_validate({**base, "data": files}).features.event_types_top_n == 5
    with pytest.raises(ValidationError, match="unknown event role 'visits'"):
        RunConfig.model_validate(
            {**base, "data": {**files, "events": {"path": "e.csv", "roles": {"visits": "v"}}}}
        )
    with pytest.raises(ValidationError, match="'session' is an event role"):
        FeatureConfig(event_types=("Session",))
    assert set(EVENT_ROLES) == {
        "session",
        "email_sent",
        "email_open",
        "email_click",
        "support_ticket",
        "survey",
        "referral",
    }


def test_rejected_share_warnings():
    rows = [("a", "2021-01-01", "survey", "11")] * 7 + [("a", "2021-01-02", "x", None)] * 2
    rows += [("a", "2021-01-03", None, None), ("a", "2022-02-02", "x", None)]
    events, rejects = validate_events(raw_events(rows), AS_OF)
    counts = {
        "events": row_counts("events", len(rows), events, rejects),
        "customers": {"rows_in": 10, "rows_used": 10, "rows_rejected": 0},
        "empty": {"rows_in": 0, "rows_used": 0, "rows_rejected": 0},
    }
    # 11 rows in, 1 after the as-of date (not a data problem, left out): 9 of 10 rejected;
    # reasons by count, largest first, ties by name
    (warning,) = rejected_share_warnings(counts, 0.05)
    assert warning == (
        "events: 90.0% of rows rejected (9 of 10: value_out_of_range 70.0%, duplicate 10.0%, "
        "event_type_missing 10.0%)"
    )
    assert rejected_share_warnings(counts, 0.9) == []
    netted = {"rows_in": 4, "rejected_return_netted": 2, "rejected_amount_missing": 1}
    assert rejected_share_warnings({"transactions": netted}, 0.4) == [
        "transactions: 50.0% of rows rejected (1 of 2: amount_missing 50.0%)"
    ]


def test_fixed_types_for_training_and_the_model_config_for_scoring():
    rows = [("a", "2021-01-01", "beta", None), ("a", "2021-07-01", "late", None)]
    events, _ = validate_events(raw_events(rows), AS_OF)
    fixed = fix_event_types(FeatureConfig(), events, CUTOFF)
    assert fixed.event_types == ("beta",)
    assert fix_event_types(FeatureConfig(event_types=("x",)), events, CUTOFF).event_types == ("x",)
    assert fix_event_types(FeatureConfig(), None, CUTOFF).event_types == ()
    trained = build_features(transactions(), CUTOFF, events, fixed)
    names = [c for c in trained.columns if c != "rfm_segment" and c != "rfm_class"]
    scoring = model_feature_config(FeatureConfig(**fixed.model_dump(mode="json")), names)
    assert scoring.event_types == ("beta",)
    later, _ = validate_events(raw_events([("b", "2021-11-01", "gamma", None)]), AS_OF)
    scored = build_features(transactions(), "2021-12-31", later, scoring)
    assert set(names) <= set(scored.columns) and "events_gamma_30d" not in scored
