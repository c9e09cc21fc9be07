"""The one time module: days, cutoff ends, units and horizons."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from retain.timeline import cutoff_end, day, days_to_units, horizon_days, iso_day


@pytest.mark.parametrize(
    "value",
    [
        "1998-06-30",
        dt.date(1998, 6, 30),
        pd.Timestamp("1998-06-30 17:45:12"),
        dt.datetime(1998, 6, 30, 23, 59),
    ],
)
def test_every_way_of_writing_a_day_gives_the_same_midnight(value):
    assert day(value) == pd.Timestamp("1998-06-30")
    assert iso_day(value) == "1998-06-30"
    assert cutoff_end(value) == pd.Timestamp("1998-07-01")


def test_units_and_horizons():
    assert days_to_units(14, "W") == 2.0 and days_to_units(14, "D") == 14.0
    assert horizon_days(12) == 365  # the policy's growing rule keeps its year
    assert horizon_days(6) == 183 and horizon_days(1) == 30
    with pytest.raises(KeyError):
        days_to_units(7, "M")


def test_a_cutoff_outside_the_nanosecond_range_is_an_error_not_a_wrapped_value():
    from retain.validation import validate_transactions

    raw = pd.DataFrame({"customer_id": ["a"], "timestamp": ["1998-01-01"], "amount": ["1"]})
    with pytest.raises(pd.errors.OutOfBoundsDatetime):
        validate_transactions(raw, "1600-01-01")
