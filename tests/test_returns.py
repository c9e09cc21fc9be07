"""Returns netted against earlier purchases (``returns: net_earlier``), the way retail exports
carry cancellations: their own invoice number, the item returned, a negative quantity."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from retain.config import DataConfig
from retain.io import row_counts, validate_transactions

AS_OF = "2011-12-09"
COLUMNS = ["customer_id", "timestamp", "amount", "order_id", "item_id"]


def frame(rows: list[tuple]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=COLUMNS[: len(rows[0])], dtype=object)


def reasons(rejects: pd.DataFrame) -> dict[int, str]:
    return dict(zip(rejects["row_number"], rejects["reason"], strict=True))


def test_a_cancellation_nets_against_the_earlier_purchase_of_the_same_item():
    raw = frame(
        [
            ("17850", "2010-12-01 08:26", "15.30", "536365", "85123A"),  # 6 x 2.55
            ("17850", "2010-12-01 08:26", "6.78", "536365", "71053"),
            ("17850", "2010-12-01 09:41", "-5.10", "C536379", "85123A"),  # 2 x 2.55 back
            ("13047", "2010-12-01 08:34", "20", "536367", "85123A"),  # other customer
        ]
    )
    clean, rejects = validate_transactions(raw, AS_OF, returns="net_earlier")
    assert reasons(rejects) == {2: "return_netted"}
    np.testing.assert_allclose(clean["amount"], [10.20, 6.78, 20.0])
    assert clean["item_id"].tolist() == ["85123A", "71053", "85123A"]
    # under `net` the cancellation has no order of its own: unmatched, spend overstated
    clean, rejects = validate_transactions(raw, AS_OF, returns="net")
    assert reasons(rejects) == {2: "return_unmatched"}
    np.testing.assert_allclose(clean["amount"], [15.30, 6.78, 20.0])


def test_the_same_item_is_used_latest_first_until_the_return_is_used_up():
    raw = frame(
        [
            ("a", "2011-01-01", "10", "o1", "X"),
            ("a", "2011-02-01", "4", "o2", "X"),
            ("a", "2011-02-01", "50", "o2", "Y"),
            ("a", "2011-03-01", "-6", "C1", "X"),  # takes 4 from o2 (to zero), 2 from o1
            ("a", "2011-04-01", "7", "o3", "X"),  # later than the return: untouched
        ]
    )
    clean, rejects = validate_transactions(raw, AS_OF, returns="net_earlier")
    assert reasons(rejects) == {1: "return_netted_to_zero", 3: "return_netted"}
    np.testing.assert_allclose(clean["amount"], [8.0, 50.0, 7.0])


def test_without_an_item_match_the_latest_earlier_order_is_scaled():
    raw = frame(
        [
            ("a", "2011-01-01", "100", "o1", "X"),
            ("a", "2011-02-01", "30", "o2", "Y"),
            ("a", "2011-02-01", "10", "o2", "Z"),
            ("a", "2011-03-01", "-8", "C1", "D"),  # a discount line: no purchase of D
            ("a", "2011-03-05", "-2", "C2", None),  # no item at all
            ("a", "2011-04-01", "60", "o3", "Y"),  # after both returns
        ]
    )
    clean, rejects = validate_transactions(raw, AS_OF, returns="net_earlier")
    assert reasons(rejects) == {3: "return_netted", 4: "return_netted"}
    # o2: 40 -> 32 -> 30, lines in proportion 3:1
    np.testing.assert_allclose(clean["amount"], [100.0, 22.5, 7.5, 60.0])


def test_without_item_ids_the_latest_earlier_order_is_used():
    raw = frame(
        [
            ("a", "2011-01-01", "10", "o1"),
            ("a", "2011-01-03", "20", None),  # no order id: one timestamp is one order
            ("a", "2011-01-03", "20", None),
            ("a", "2011-01-04", "-10", "C9"),
        ]
    )
    clean, rejects = validate_transactions(raw, AS_OF, returns="net_earlier", duplicates="keep")
    assert reasons(rejects) == {3: "return_netted"}
    np.testing.assert_allclose(clean["amount"], [10.0, 15.0, 15.0])
    no_orders = raw.drop(columns="order_id")
    clean, rejects = validate_transactions(
        no_orders, AS_OF, returns="net_earlier", duplicates="keep"
    )
    assert reasons(rejects) == {3: "return_netted"}
    np.testing.assert_allclose(clean["amount"], [10.0, 15.0, 15.0])


def test_a_return_bigger_than_the_purchases_goes_to_zero_and_is_counted():
    raw = frame(
        [
            ("a", "2011-01-01", "5", "o1", "X"),
            ("a", "2011-01-02", "3", "o2", "X"),
            ("a", "2011-01-02", "9", "o2", "Y"),
            ("a", "2011-01-03", "-20", "C1", "X"),  # X: 8 bought, the rest is not taken from Y
            ("b", "2011-01-01", "4", "o3", "X"),
            ("b", "2011-01-01", "6", "o3", "Y"),
            ("b", "2011-01-05", "-50", "C2", "Z"),  # no Z: the whole latest order goes
            ("c", "2011-01-01", "1", "o4", "X"),
        ]
    )
    clean, rejects = validate_transactions(raw, AS_OF, returns="net_earlier")
    assert reasons(rejects) == {
        0: "return_netted_to_zero",
        1: "return_netted_to_zero",
        3: "return_netted",
        4: "return_netted_to_zero",
        5: "return_netted_to_zero",
        6: "return_netted",
    }
    assert clean["amount"].tolist() == [9.0, 1.0]
    counts = row_counts("transactions", len(raw), clean, rejects)
    assert counts["rows_in"] == counts["rows_used"] + counts["rows_rejected"] == 8
    assert counts["rejected_return_netted_to_zero"] == 4
    assert counts["rejected_return_netted"] == 2


def test_a_return_before_any_purchase_stays_unmatched():
    raw = frame(
        [
            ("a", "2011-01-05", "-5", "C1", "X"),  # before a's purchase
            ("a", "2011-01-06", "10", "o1", "X"),
            ("b", "2011-01-01", "-1", "C2", "X"),  # b never bought
            ("c", "2011-01-01", "3", "o2", "X"),
        ]
    )
    clean, rejects = validate_transactions(raw, AS_OF, returns="net_earlier")
    assert reasons(rejects) == {0: "return_unmatched", 2: "return_unmatched"}
    assert clean["amount"].tolist() == [10.0, 3.0]


def test_a_return_with_its_own_order_nets_there_as_under_net():
    raw = frame(
        [
            ("a", "2011-01-01", "10", "o1", "X"),
            ("a", "2011-01-02", "40", "o2", "X"),
            ("a", "2011-01-03", "-8", "o2", "X"),  # o2 has a purchase: netted there
        ]
    )
    clean, rejects = validate_transactions(raw, AS_OF, returns="net_earlier")
    assert reasons(rejects) == {2: "return_netted"}
    np.testing.assert_allclose(clean["amount"], [10.0, 32.0])


def test_returns_after_the_as_of_date_are_rejected_before_netting():
    raw = frame(
        [
            ("a", "2011-12-01", "10", "o1", "X"),
            ("a", "2011-12-10", "-4", "C1", "X"),  # the day after the as-of date
        ]
    )
    clean, rejects = validate_transactions(raw, AS_OF, returns="net_earlier")
    assert reasons(rejects) == {1: "timestamp_after_as_of"}
    assert clean["amount"].tolist() == [10.0]


def test_amounts_per_customer_match_a_hand_computation():
    raw = frame(
        [
            ("a", "2011-01-01", "10", "1", "X"),
            ("a", "2011-01-01", "20", "1", "Y"),
            ("a", "2011-02-01", "5", "2", "X"),
            ("a", "2011-02-10", "-7", "C3", "X"),  # X: 5 (order 2) to zero, 2 from order 1
            ("a", "2011-02-11", "-3", "C4", "W"),  # no W: latest live order is 1 (28 -> 25)
            ("b", "2011-01-01", "12", "5", "X"),
            ("b", "2011-01-02", "-2", "5", "X"),  # own order: 10
            ("b", "2011-03-01", "-4", "C6", "X"),  # item X, order 5 line: 6
            ("c", "2011-01-01", "-9", "C7", "X"),  # unmatched
            ("c", "2011-01-02", "9", "7", "X"),
        ]
    )
    clean, rejects = validate_transactions(raw, AS_OF, returns="net_earlier")
    spend = clean.groupby("customer_id")["amount"].sum()
    assert spend.to_dict() == pytest.approx({"a": 25.0, "b": 6.0, "c": 9.0})
    assert reasons(rejects) == {
        2: "return_netted_to_zero",
        3: "return_netted",
        4: "return_netted",
        6: "return_netted",
        7: "return_netted",
        8: "return_unmatched",
    }
    # order 1 after both returns: X 8, then 28 -> 25 in proportion 8:20
    np.testing.assert_allclose(clean["amount"].iloc[:2], [8 * 25 / 28, 20 * 25 / 28])


def test_the_setting_accepts_net_earlier_and_keeps_the_old_values():
    assert DataConfig(returns="net_earlier").returns == "net_earlier"
    assert DataConfig().returns == "drop"
    with pytest.raises(ValueError):
        DataConfig(returns="earlier")
    with pytest.raises(ValueError, match="returns must be"):
        validate_transactions(frame([("a", "2011-01-01", "1")]), AS_OF, returns="earlier")  # type: ignore[arg-type]


ids = st.sampled_from(["a", "b", "c", None])
stamps = st.sampled_from(["2011-01-01", "2011-01-02", "2011-02-01", "2011-12-10", "bad"])
amounts = st.sampled_from(["1", "2.5", "10", "0", "-1", "-2.5", "-20", "x"])
orders = st.sampled_from(["o1", "o2", "C3", None])
items = st.sampled_from(["X", "Y", None])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.lists(st.tuples(ids, stamps, amounts, orders, items), min_size=1, max_size=40))
def test_property_accounting_holds_and_spend_only_goes_down(rows):
    raw = pd.DataFrame([("z", "2011-01-01", "1", "o9", "X"), *rows], columns=COLUMNS)
    clean, rejects = validate_transactions(raw, AS_OF, returns="net_earlier")
    counts = row_counts("transactions", len(raw), clean, rejects)
    assert counts["rows_in"] == counts["rows_used"] + counts["rows_rejected"]
    assert rejects["row_number"].is_unique
    assert (clean["amount"] >= 0).all()
    used = np.setdiff1d(np.arange(len(raw)), rejects["row_number"].to_numpy())
    used_amounts = raw["amount"].iloc[used].astype(float)
    netted = rejects.loc[rejects["reason"] == "return_netted", "row_number"]
    returned = raw["amount"].iloc[netted].astype(float).sum()
    # netting takes from purchases at most what was returned, and never adds
    assert clean["amount"].sum() <= used_amounts.sum() + 1e-9
    assert clean["amount"].sum() >= used_amounts.sum() + returned - 1e-9


def test_a_cancellation_after_a_cutoff_does_not_reach_that_cutoffs_features():
    from retain.churn.train import AsOfFeatures
    from retain.features.build import build_features

    raw = pd.DataFrame(
        {
            "customer_id": ["a", "a", "a"],
            "timestamp": ["2024-01-05", "2024-03-01", "2024-03-20"],
            "amount": ["10", "20", "-20"],
            "order_id": ["536365", "536366", "C900001"],
            "item_id": ["85123A", "85123A", "85123A"],
        }
    )
    full = validate_transactions(raw, "2024-06-30", returns="net_earlier")[0]
    cutoff = pd.Timestamp("2024-03-10")
    # validated once, at the end: the 03-01 purchase is already gone at the 03-10 cutoff
    assert build_features(full, cutoff).loc["a", "frequency"] == 0

    def as_of(c: pd.Timestamp) -> pd.DataFrame:
        return validate_transactions(raw, c, returns="net_earlier")[0]

    features = AsOfFeatures(lambda tx, c, ev: build_features(tx, c, ev), as_of)
    seen = features(full, cutoff, None)
    assert seen.loc["a", "frequency"] == 1  # on 03-10 the cancellation had not happened
    assert seen.loc["a", "monetary_value"] == 20
