import numpy as np
import pandas as pd
import pytest

from retain.cohorts import cohort_retention


def _tx(rows):
    return pd.DataFrame(
        {
            "customer_id": pd.array([r[0] for r in rows], dtype="string"),
            "timestamp": pd.to_datetime([r[1] for r in rows]),
            "amount": 10.0,
        }
    )


def test_shares_sizes_and_unobserved_periods():
    tx = _tx(
        [
            ("a", "2024-01-05"),
            ("a", "2024-02-10"),
            ("a", "2024-02-11"),
            ("b", "2024-01-20"),
            ("b", "2024-03-01"),
            ("c", "2024-02-02"),
            ("c", "2024-03-15"),
            ("d", "2024-04-01"),  # after the cutoff: ignored
        ]
    )
    table = cohort_retention(tx, "2024-03-31")
    assert list(table.index) == ["2024-01", "2024-02"]
    assert table.loc["2024-01", "size"] == 2
    assert table.loc["2024-02", "size"] == 1
    assert table.loc["2024-01", 0] == 1.0
    assert table.loc["2024-01", 1] == pytest.approx(0.5)  # only a bought in February
    assert table.loc["2024-01", 2] == pytest.approx(0.5)  # only b bought in March
    assert table.loc["2024-02", 1] == 1.0
    assert np.isnan(table.loc["2024-02", 2])  # April is after the cutoff


def test_cdnow_master_cohorts(cdnow_master):
    table = cohort_retention(cdnow_master, "1998-06-30")
    # CDNOW's customers were all acquired in the first quarter of 1997.
    assert list(table.index) == ["1997-01", "1997-02", "1997-03"]
    assert table["size"].sum() == 23570
    assert ((table.drop(columns="size") <= 1) | table.drop(columns="size").isna()).all().all()


def test_rejects_unknown_period(cdnow_sample):
    with pytest.raises(ValueError, match="period"):
        cohort_retention(cdnow_sample, "1997-12-31", period="W")
