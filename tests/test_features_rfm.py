"""rfm_summary: known answers on CDNOW and agreement with lifetimes on random data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from lifetimes import BetaGeoFitter
from lifetimes.utils import summary_data_from_transaction_data

from retain.features.rfm import purchase_occasions, rfm_summary


def random_transactions(seed: int, n_rows: int = 3000, n_customers: int = 300) -> pd.DataFrame:
    """Random transactions with several rows per day and times of day (same-day merging)."""
    rng = np.random.default_rng(seed)
    start = np.datetime64("2020-01-01T00:00:00", "s")
    seconds = rng.integers(0, 400 * 86_400, n_rows)
    # Force some same-day repeats: copy a third of the rows onto another time of the same day.
    dup = rng.choice(n_rows, n_rows // 3, replace=False)
    half = len(dup) // 2
    dst, src = dup[:half], dup[half : 2 * half]
    seconds[dst] = (seconds[src] // 86_400) * 86_400 + 3600
    ids = rng.integers(0, n_customers, n_rows)
    ids[dst] = ids[src]
    return pd.DataFrame(
        {
            "customer_id": pd.array([f"c{i:04d}" for i in ids], dtype="string"),
            "timestamp": (start + seconds.astype("timedelta64[s]")).astype("datetime64[ns]"),
            "amount": np.round(rng.gamma(2.0, 20.0, n_rows), 2),
            "quantity": rng.integers(1, 5, n_rows).astype(float),
        }
    )


def test_cdnow_sample_summary_reproduces_published_bgnbd(cdnow_sample):
    s = rfm_summary(cdnow_sample, "1997-09-30", "W")
    assert len(s) == 2357
    assert s["frequency"].sum() == 2457
    fit = BetaGeoFitter().fit(s["frequency"], s["recency_weeks"], s["tenure_weeks"])
    # Fader, Hardie & Lee (2005), "Counting your customers the easy way", CDNOW sample,
    # 39-week calibration: r = 0.243, alpha = 4.414, a = 0.793, b = 2.426. Compared at 3
    # significant digits, as published values are given to 3-4.
    published = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
    for name, value in published.items():
        assert f"{fit.params_[name]:.3g}" == f"{value:.3g}", name


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize(("time_unit", "multiplier"), [("D", 1), ("W", 7)])
def test_summary_equals_lifetimes_on_random_data(seed, time_unit, multiplier):
    tx = random_transactions(seed)
    cutoff = "2020-10-15"
    ours = rfm_summary(tx, cutoff, time_unit)
    # lifetimes' freq="W" groups calendar weeks; our weeks are 7 days counted from calendar
    # days, which lifetimes computes as freq="D" with freq_multiplier=7.
    theirs = summary_data_from_transaction_data(
        tx,
        "customer_id",
        "timestamp",
        monetary_value_col="amount",
        observation_period_end=cutoff,
        freq="D",
        freq_multiplier=multiplier,
    ).sort_index()
    unit = {"D": "days", "W": "weeks"}[time_unit]
    assert list(ours.index) == list(theirs.index)
    np.testing.assert_array_equal(ours["frequency"], theirs["frequency"])
    for ours_col, their_col in [
        (f"recency_{unit}", "recency"),
        (f"tenure_{unit}", "T"),
        ("monetary_value", "monetary_value"),
    ]:
        np.testing.assert_allclose(ours[ours_col], theirs[their_col], rtol=1e-12, atol=1e-12)


def test_cutoff_day_is_included_and_same_day_rows_merge():
    tx = pd.DataFrame(
        {
            "customer_id": pd.array(["a", "a", "a", "a", "b"], dtype="string"),
            "timestamp": pd.to_datetime(
                [
                    "2021-01-01 09:00:00",
                    "2021-01-01 17:00:00",  # same day: one occasion of 30
                    "2021-01-11 23:59:59",  # the cutoff day itself: included
                    "2021-01-12 00:00:00",  # the day after: ignored
                    "2021-01-12 08:00:00",  # customer b only after the cutoff: absent
                ]
            ).astype("datetime64[ns]"),
            "amount": [10.0, 20.0, 5.0, 100.0, 7.0],
        }
    )
    s = rfm_summary(tx, "2021-01-11")
    assert list(s.index) == ["a"]
    row = s.loc["a"]
    assert row["frequency"] == 1
    assert row["recency_days"] == 10
    assert row["tenure_days"] == 10
    assert row["monetary_value"] == 5.0
    occ = purchase_occasions(tx, "2021-01-11")
    assert occ["amount"].tolist() == [30.0, 5.0]


def test_no_purchase_by_cutoff_gives_empty_summary():
    tx = random_transactions(3)
    s = rfm_summary(tx, "2019-01-01")
    assert s.empty
    assert list(s.columns) == ["frequency", "recency_days", "tenure_days", "monetary_value"]
    assert s["frequency"].dtype == np.int64


def test_unknown_time_unit_is_refused():
    with pytest.raises(ValueError, match="time_unit"):
        rfm_summary(random_transactions(0, 10, 3), "2020-06-01", "M")


def test_missing_ids_or_timestamps_are_refused():
    tx = random_transactions(0, 10, 3)
    bad_id = tx.assign(customer_id=tx["customer_id"].where(tx.index != 2, None))
    with pytest.raises(ValueError, match="customer_id has missing values"):
        rfm_summary(bad_id, "2021-06-01")
    bad_ts = tx.copy()
    bad_ts.loc[3, "timestamp"] = pd.NaT
    with pytest.raises(ValueError, match="NaT"):
        rfm_summary(bad_ts, "2021-06-01")


@pytest.mark.parametrize("encoding", ["packed", "hashed", "factorized", "python_strings"])
def test_every_id_encoding_gives_the_same_summary(encoding):
    """Fixed-width Arrow ids are packed (or hashed when too wide); others are factorized."""
    from retain.features.behaviour import behaviour_features

    tx = random_transactions(11)
    reference = rfm_summary(tx, "2020-10-15")
    reference_b = behaviour_features(tx, "2020-10-15")
    ids = tx["customer_id"].astype(str)
    rng = np.random.default_rng(0)
    if encoding == "packed":
        mapping = {i: i for i in ids.unique()}
    elif encoding == "hashed":  # 8 bytes from a wide alphabet: too many packed values
        letters = [chr(c) for c in range(33, 127)]
        mapping = {i: "".join(rng.choice(letters, 8)) for i in ids.unique()}
    elif encoding == "factorized":  # varying length
        mapping = {i: i.replace("c0", "x") + "y" * int(rng.integers(0, 3)) for i in ids.unique()}
    else:
        mapping = {i: i for i in ids.unique()}
    dtype = pd.StringDtype("python") if encoding == "python_strings" else "string"
    mapped = tx.assign(customer_id=ids.map(mapping).astype(dtype))
    back = {v: k for k, v in mapping.items()}
    for ours, ref in [
        (rfm_summary(mapped, "2020-10-15"), reference),
        (behaviour_features(mapped, "2020-10-15"), reference_b),
    ]:
        assert ours.index.is_monotonic_increasing
        ours = ours.rename(index=back).sort_index()
        ours.index = ours.index.astype("string")
        pd.testing.assert_frame_equal(ours, ref, check_exact=True, check_index_type=False)
