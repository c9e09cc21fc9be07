"""retain.setup: timestamp formats, column roles, the proposed split; ``auto`` cutoffs."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from retain.churn.dataset import (
    LeakageError,
    auto_cutoffs,
    horizon_for_span,
    make_time_split,
)
from retain.config import ChurnConfig, ConfigError, validate_model
from retain.jobs.train_churn import resolve_cutoffs
from retain.setup import SetupError, detect_timestamp_format, inspect_table, propose_split


def test_month_first_is_read_from_a_day_above_12() -> None:
    fmt, note = detect_timestamp_format(["12/1/2010 8:26", "12/13/2010 10:05", "1/4/2011 9:00"])
    assert (fmt, note) == ("%m/%d/%Y %H:%M", None)


def test_day_first_is_read_from_a_day_above_12() -> None:
    fmt, note = detect_timestamp_format(["01/12/2010 08:26:00", "13/12/2010 10:05:59"])
    assert (fmt, note) == ("%d/%m/%Y %H:%M:%S", None)


def test_ambiguous_dates_choose_month_first_and_ask() -> None:
    fmt, note = detect_timestamp_format(["1/12/2010", "3/4/2011", "", None])
    assert fmt == "%m/%d/%Y"
    assert note is not None and "%d/%m/%Y" in note and "month-first" in note


def test_iso_needs_no_format_and_garbage_says_so() -> None:
    assert detect_timestamp_format(["2010-12-01 08:26:00", "2010-12-02"]) == (None, None)
    fmt, note = detect_timestamp_format(["soon", "12/1/2010"])
    assert fmt is None and note is not None and "timestamp_format" in note


def test_online_retail_roles() -> None:
    sample = pd.DataFrame(
        {
            "InvoiceNo": ["536365", "536365", "C536379", "536366"],
            "StockCode": ["85123A", "71053", "D", "22633"],
            "Quantity": ["6", "6", "-1", "2"],
            "InvoiceDate": [
                "12/1/2010 8:26",
                "12/1/2010 8:26",
                "12/13/2010 9:41",
                "12/1/2010 8:28",
            ],
            "UnitPrice": ["2.55", "3.39", "27.50", "1.85"],
            "CustomerID": ["17850.0", "17850.0", "", "14688.0"],
            "Country": ["United Kingdom"] * 4,
        }
    )
    profile = inspect_table(sample, "transactions")
    assert profile.roles["customer_id"] == "CustomerID"
    assert profile.roles["timestamp"] == "InvoiceDate"
    assert profile.roles["amount"] == "Quantity * UnitPrice"
    assert profile.roles["order_id"] == "InvoiceNo"
    assert profile.integer_text_ids
    assert profile.negative_amounts == 1 and profile.cancellation_orders
    assert profile.columns["CustomerID"].null_share == pytest.approx(0.25)
    assert "UnitPrice" in profile.currency_columns


def test_a_missing_role_is_named() -> None:
    with pytest.raises(SetupError, match="customer_id"):
        inspect_table(pd.DataFrame({"when": ["2020-01-01"], "x": ["1"]}), "transactions")


@pytest.mark.parametrize(
    ("last", "horizon"),
    [("2020-06-30", 30), ("2020-12-31", 90), ("2021-12-31", 182)],
)
def test_split_fits_the_span(last: str, horizon: int) -> None:
    first = dt.date(2020, 1, 1)
    proposal = propose_split(first, dt.date.fromisoformat(last))
    assert proposal["churn.horizon_days"] == horizon
    until = proposal["data.observed_until"]
    test = proposal["churn.test_cutoff"]
    assert test + dt.timedelta(days=horizon) <= until  # type: ignore[operator]
    assert proposal["clv.calibration_end"] < proposal["clv.holdout_end"] == until  # type: ignore[operator]
    assert proposal["scoring.as_of"] == until
    train = proposal["churn.train_cutoffs"]
    assert train and min(train) >= first + dt.timedelta(days=30)  # type: ignore[arg-type,operator]
    split = make_time_split(
        train,  # type: ignore[arg-type]
        proposal["churn.validation_cutoff"],  # type: ignore[arg-type]
        test,  # type: ignore[arg-type]
        horizon,
        until,  # type: ignore[arg-type]
    )
    assert split.validation_cutoff < split.test_cutoff


def test_too_short_a_span_is_refused() -> None:
    with pytest.raises(SetupError, match="at least 120"):
        propose_split(dt.date(2020, 1, 1), dt.date(2020, 3, 1))
    assert horizon_for_span(120) == 30 and horizon_for_span(360) == 90


def test_auto_cutoffs_keep_given_dates_and_strict_validation() -> None:
    split = auto_cutoffs("2020-01-01", "2020-12-31", 90, strict_validation=True)
    assert split.validation_test_overlap_days == 0
    kept = auto_cutoffs("2020-01-01", "2020-12-31", 90, test_cutoff="2020-09-01")
    assert kept.test_cutoff == pd.Timestamp("2020-09-01")
    with pytest.raises(LeakageError):
        auto_cutoffs("2020-01-01", "2020-04-01", 90)


def test_config_accepts_auto_and_still_checks_dates() -> None:
    churn = ChurnConfig(train_cutoffs="auto", validation_cutoff="auto", test_cutoff="auto")
    assert churn.has_auto_cutoffs
    mixed = ChurnConfig(train_cutoffs="auto", validation_cutoff="2020-06-01", test_cutoff="auto")
    assert mixed.has_auto_cutoffs
    with pytest.raises(ConfigError, match="test_cutoff"):
        validate_model(
            ChurnConfig,
            {
                "train_cutoffs": "auto",
                "validation_cutoff": "2020-06-01",
                "test_cutoff": "2020-05-01",
            },
            "x.yaml",
        )
    with pytest.raises(ConfigError, match="train_cutoffs"):
        validate_model(
            ChurnConfig,
            {"train_cutoffs": "sometimes", "validation_cutoff": "auto", "test_cutoff": "auto"},
            "x.yaml",
        )


def test_train_churn_resolves_auto_cutoffs_from_the_data() -> None:
    tx = pd.DataFrame(
        {
            "customer_id": ["a", "b"],
            "timestamp": pd.to_datetime(["2020-01-01 10:00", "2020-12-31 09:00"]),
            "amount": [1.0, 2.0],
        }
    )
    churn = ChurnConfig(
        horizon_days=90, train_cutoffs="auto", validation_cutoff="auto", test_cutoff="auto"
    )
    resolved, text = resolve_cutoffs(churn, tx, pd.Timestamp("2020-12-31"))
    expected = auto_cutoffs("2020-01-01", "2020-12-31", 90)
    assert resolved.test_cutoff == expected.test_cutoff.date()
    assert resolved.train_cutoffs == tuple(c.date() for c in expected.train_cutoffs)
    assert not resolved.has_auto_cutoffs and "auto cutoffs" in text
    fixed = ChurnConfig(
        train_cutoffs=["2020-03-01"], validation_cutoff="2020-06-01", test_cutoff="2020-09-01"
    )
    assert resolve_cutoffs(fixed, tx, pd.Timestamp("2020-12-31")) == (fixed, "")
