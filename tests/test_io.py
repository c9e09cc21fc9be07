"""Reading, boundary validation, input loading and atomic writing (retain.io)."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from retain.config import ConfigError, CsvOptions, RunConfig, TableSource
from retain.contracts import EVENTS, REJECT_COLUMNS, TRANSACTIONS
from retain.io import (
    DataError,
    Inputs,
    load_inputs,
    observed_until,
    read_table,
    rejected_customers,
    row_counts,
    validate_customers,
    validate_events,
    validate_transactions,
    write_json_atomic,
    write_rejects,
    write_table_atomic,
)

AS_OF = "2020-06-30"


def tx(rows: list[tuple]) -> pd.DataFrame:
    """Raw transactions as text, the way a CSV arrives."""
    return pd.DataFrame(rows, columns=["customer_id", "timestamp", "amount"], dtype=object)


def nonzero(counts: dict[str, int]) -> dict[str, int]:
    return {k: v for k, v in counts.items() if v}


# ------------------------------------------------------------------ transactions


def test_each_transaction_reason_is_counted_exactly():
    raw = pd.DataFrame(
        [
            ("a", "2020-01-01", "10", "1"),  # 0 ok
            (None, "2020-01-01", "10", "1"),  # 1 customer_id_missing
            ("", "2020-01-01", "10", "1"),  # 2 customer_id_missing (blank)
            ("   ", "2020-01-01", "10", "1"),  # 3 customer_id_missing (spaces)
            ("b", None, "10", "1"),  # 4 timestamp_missing
            ("b", "  ", "10", "1"),  # 5 timestamp_missing
            ("b", "2020-13-45", "10", "1"),  # 6 timestamp_unparseable
            ("b", "yesterday", "10", "1"),  # 7 timestamp_unparseable
            ("c", "2020-01-02", None, "1"),  # 8 amount_missing
            ("c", "2020-01-02", "12,50", "1"),  # 9 amount_not_numeric
            ("c", "2020-01-02", "abc", "1"),  # 10 amount_not_numeric
            ("c", "2020-01-02", "inf", "1"),  # 11 amount_not_numeric
            ("d", "2020-01-03", "5", "two"),  # 12 quantity_not_numeric
            ("d", "2020-07-01 00:00:00", "5", "1"),  # 13 timestamp_after_as_of
            ("d", "2020-06-30 23:59:59", "5", "1"),  # 14 ok: the as-of day is included
            ("a", "2020-01-01", "10", "1"),  # 15 duplicate of row 0
            ("a", "2020-01-01 00:00:00", " 10.0 ", "1"),  # 16 duplicate of row 0 once parsed
            ("e", "2020-02-01", "-4", "1"),  # 17 return
            ("e", "2020-02-02", "-6", None),  # 18 return (a missing quantity is allowed)
            (" f ", "2020-02-03", "0", "1"),  # 19 ok: zero amount kept, id stripped
        ],
        columns=["customer_id", "timestamp", "amount", "quantity"],
    )
    clean, rejects = validate_transactions(raw, AS_OF)
    counts = row_counts("transactions", len(raw), clean, rejects)
    assert nonzero(counts) == {
        "rows_in": 20,
        "rows_used": 3,
        "rows_rejected": 17,
        "rejected_customer_id_missing": 3,
        "rejected_timestamp_missing": 2,
        "rejected_timestamp_unparseable": 2,
        "rejected_amount_missing": 1,
        "rejected_amount_not_numeric": 3,
        "rejected_quantity_not_numeric": 1,
        "rejected_timestamp_after_as_of": 1,
        "rejected_duplicate": 2,
        "rejected_return": 2,
    }
    assert rejects["row_number"].tolist() == [
        1,
        2,
        3,
        4,
        5,
        6,
        7,
        8,
        9,
        10,
        11,
        12,
        13,
        15,
        16,
        17,
        18,
    ]
    assert rejects.loc[rejects["row_number"] == 3, "customer_id"].item() == "   "  # raw value
    assert list(rejects.columns) == list(REJECT_COLUMNS)
    assert (rejects["table"] == "transactions").all()
    assert clean["customer_id"].tolist() == ["a", "d", "f"]
    assert clean["timestamp"].tolist() == [
        pd.Timestamp("2020-01-01"),
        pd.Timestamp("2020-06-30 23:59:59"),
        pd.Timestamp("2020-02-03"),
    ]
    assert clean["amount"].tolist() == [10.0, 5.0, 0.0]
    assert {c: str(t) for c, t in clean.dtypes.items()} == {
        "customer_id": "string",
        "timestamp": "datetime64[ns]",
        "amount": "float64",
        "quantity": "float64",
    }


def test_first_reason_wins_and_rows_differing_in_an_extra_column_are_not_duplicates():
    raw = tx([(None, "garbage", "x"), ("a", "2020-01-01", "1"), ("a", "2020-01-01", "1")])
    raw["line"] = ["1", "1", "2"]
    clean, rejects = validate_transactions(raw, AS_OF)
    assert rejects["reason"].tolist() == ["customer_id_missing"]
    assert len(clean) == 2
    assert list(clean.columns) == ["customer_id", "timestamp", "amount"]


def test_duplicates_keep_turns_the_check_off():
    raw = tx([("a", "2020-01-01", "1"), ("a", "2020-01-01", "1")])
    clean, rejects = validate_transactions(raw, AS_OF, duplicates="keep")
    assert len(clean) == 2 and len(rejects) == 0


def returns_frame() -> pd.DataFrame:
    return pd.DataFrame(
        [
            ("a", "2020-01-01", "10", "o1"),  # 0 o1 purchase line
            ("a", "2020-01-01", "30", "o1"),  # 1 o1 purchase line
            ("a", "2020-01-05", "-8", "o1"),  # 2 o1 partial return: o1 nets to 32
            ("b", "2020-01-02", "5", "o2"),  # 3 o2 purchase
            ("b", "2020-01-06", "-5", "o2"),  # 4 o2 full return: nets to 0
            ("b", "2020-01-07", "-3", "o3"),  # 5 o3 has no purchase: unmatched
            ("c", "2020-01-07", "-2", None),  # 6 no order id: unmatched
            ("c", "2020-01-07", "-1", "o1"),  # 7 o1 belongs to customer a: unmatched for c
            ("d", "2020-01-08", "10.1", "o4"),  # 8 o4 purchase
            ("d", "2020-01-08", "3.2", "o4"),  # 9 o4 purchase
            ("d", "2020-01-09", "-13.3", "o4"),  # 10 o4 nets to zero (up to float error)
            ("e", "2020-01-09", "7", "o5"),  # 11 untouched
        ],
        columns=["customer_id", "timestamp", "amount", "order_id"],
    )


def test_returns_drop_rejects_every_negative_amount():
    raw = returns_frame()
    clean, rejects = validate_transactions(raw, AS_OF, returns="drop")
    assert rejects["row_number"].tolist() == [2, 4, 5, 6, 7, 10]
    assert set(rejects["reason"]) == {"return"}
    assert clean["amount"].tolist() == [10.0, 30.0, 5.0, 10.1, 3.2, 7.0]


def test_returns_net_reduces_the_order_and_quarantines_the_rest():
    raw = returns_frame()
    clean, rejects = validate_transactions(raw, AS_OF, returns="net")
    reasons = dict(zip(rejects["row_number"], rejects["reason"], strict=True))
    assert reasons == {
        2: "return_netted",
        3: "return_netted_to_zero",
        4: "return_netted_to_zero",
        5: "return_unmatched",
        6: "return_unmatched",
        7: "return_unmatched",
        8: "return_netted_to_zero",
        9: "return_netted_to_zero",
        10: "return_netted_to_zero",
    }
    assert clean["order_id"].tolist() == ["o1", "o1", "o5"]
    # o1: 40 bought, 8 returned: both lines scaled by 32/40
    np.testing.assert_allclose(clean["amount"], [8.0, 24.0, 7.0])
    counts = row_counts("transactions", len(raw), clean, rejects)
    assert nonzero(counts) == {
        "rows_in": 12,
        "rows_used": 3,
        "rows_rejected": 9,
        "rejected_return_netted": 1,
        "rejected_return_netted_to_zero": 5,
        "rejected_return_unmatched": 3,
    }


def test_returns_net_without_order_ids_are_unmatched():
    raw = tx([("a", "2020-01-01", "10"), ("a", "2020-01-02", "-10")])
    clean, rejects = validate_transactions(raw, AS_OF, returns="net")
    assert rejects["reason"].tolist() == ["return_unmatched"]
    assert clean["amount"].tolist() == [10.0]


def test_a_return_after_the_as_of_date_does_not_reduce_the_order():
    raw = returns_frame().iloc[[0, 1, 2]].copy()
    raw.loc[2, "timestamp"] = "2020-07-05"
    clean, rejects = validate_transactions(raw, AS_OF, returns="net")
    assert rejects["reason"].tolist() == ["timestamp_after_as_of"]
    assert clean["amount"].tolist() == [10.0, 30.0]


def test_typed_input_is_accepted_and_integer_ids_become_text():
    raw = pd.DataFrame(
        {
            "customer_id": [1.0, 2.0, np.nan],
            "timestamp": pd.to_datetime(["2020-01-01", "2020-01-02", "2020-01-03"]),
            "amount": [1.5, np.inf, 2.0],
        }
    )
    clean, rejects = validate_transactions(raw, AS_OF)
    assert clean["customer_id"].tolist() == ["1"]
    assert rejects["reason"].tolist() == ["amount_not_numeric", "customer_id_missing"]
    assert rejects["customer_id"].tolist()[0] == "2"


def test_timestamps_in_one_zone_are_converted_to_utc_and_made_naive():
    raw = tx(
        [
            ("a", "2020-01-01T10:00:00+01:00", "1"),
            ("a", "2020-03-01 23:30+0100", "1"),
            ("a", "2020-06-30 23:30:00+01:00", "1"),  # 22:30 UTC: still on the as-of day
        ]
    )
    clean, _ = validate_transactions(raw, AS_OF)
    assert clean["timestamp"].dtype == "datetime64[ns]"
    assert clean["timestamp"].tolist() == [
        pd.Timestamp("2020-01-01 09:00"),
        pd.Timestamp("2020-03-01 22:30"),
        pd.Timestamp("2020-06-30 22:30"),
    ]
    typed = pd.DataFrame(
        {
            "customer_id": ["a"],
            "timestamp": pd.to_datetime(["2020-01-01 10:00"]).tz_localize("Europe/Berlin"),
            "amount": [1.0],
        }
    )
    clean, _ = validate_transactions(typed, AS_OF)
    assert clean["timestamp"].tolist() == [pd.Timestamp("2020-01-01 09:00")]
    assert clean["timestamp"].dtype == "datetime64[ns]"


def test_utc_written_two_ways_is_one_zone():
    raw = tx([("a", "2020-01-01T10:00:00Z", "1"), ("a", "2020-01-02 10:00+00:00", "1")])
    clean, _ = validate_transactions(raw, AS_OF)
    assert clean["timestamp"].tolist() == [
        pd.Timestamp("2020-01-01 10:00"),
        pd.Timestamp("2020-01-02 10:00"),
    ]


def test_timestamp_format_option():
    raw = tx([("a", "19970101", "1"), ("a", "1997-01-02", "1")])
    clean, rejects = validate_transactions(raw, AS_OF, timestamp_format="%Y%m%d")
    assert clean["timestamp"].tolist() == [pd.Timestamp("1997-01-01")]
    assert rejects["reason"].tolist() == ["timestamp_unparseable"]


def test_out_of_range_years_have_their_own_reason_not_a_crash():
    raw = tx(
        [
            ("a", "0001-01-01", "1"),
            ("a", "2020-01-01", "1"),
            ("b", "2999-12-31", "1"),
            ("c", "1677-09-21", "1"),  # the day pandas' range starts inside: refused whole
            ("d", "1677-09-22", "1"),  # first whole day in range: kept
        ]
    )
    clean, rejects = validate_transactions(raw, AS_OF)
    assert rejects["reason"].tolist() == ["timestamp_out_of_range"] * 3
    assert rejects["row_number"].tolist() == [0, 2, 3]
    assert clean["customer_id"].tolist() == ["a", "d"]


# ----------------------------------------------------------------- whole-input errors


def test_all_rows_bad_is_one_error_with_the_counts():
    raw = tx([("a", f"not a date {i}", "1") for i in range(120)])
    with pytest.raises(
        DataError,
        match=r"^transactions: all 120 rows were rejected \(timestamp: unparseable 120, e\.g\. "
        r"'not a date 0', 'not a date 1', 'not a date 2'\); set data\.transactions\."
        r"timestamp_format",
    ):
        validate_transactions(raw, AS_OF)


def test_all_rows_bad_lists_every_reason():
    raw = tx([(None, "2020-01-01", "1"), ("a", "2021-01-01", "1"), ("a", "2020-01-01", "x")])
    with pytest.raises(
        DataError,
        match=r"all 3 rows were rejected \(customer_id: missing 1; amount: not numeric 1, "
        r"e\.g\. 'x'; timestamp: after the as-of date 1\); check data\.transactions\.csv\."
        r"decimal",
    ):
        validate_transactions(raw, AS_OF)


def test_mixed_naive_and_aware_timestamps_are_refused_with_counts():
    raw = tx(
        [("a", "2020-01-01 10:00:00+01:00", "1")] * 3
        + [("a", "2020-01-02 10:00:00", "1")] * 2
        + [("a", "garbage", "1")]
    )
    with pytest.raises(
        DataError,
        match=r"transactions: column 'timestamp' mixes time zones "
        r"\(3 rows at UTC\+01:00, 2 rows without a time zone\)",
    ):
        validate_transactions(raw, AS_OF)


def test_different_offsets_are_refused_with_counts():
    raw = tx(
        [("a", "2020-01-01T10:00:00Z", "1")]
        + [("a", "2020-01-02T10:00:00-05:00", "1")] * 4
        + [("a", "2020-01-02T10:00:00+00:00", "1")]
    )
    with pytest.raises(
        DataError, match=r"mixes time zones \(4 rows at UTC-05:00, 2 rows at UTC\+00:00\)"
    ):
        validate_transactions(raw, AS_OF)


def test_missing_required_column_names_it_and_the_columns_present():
    raw = pd.DataFrame({"customer_id": ["a"], "timestamp": ["2020-01-01"], "total": ["1"]})
    with pytest.raises(
        DataError,
        match=r"^transactions: required column amount missing; "
        r"columns present: customer_id, timestamp, total$",
    ):
        validate_transactions(raw, AS_OF)


def test_empty_input_is_an_error():
    raw = tx([])
    with pytest.raises(DataError, match=r"transactions: the input is empty \(0 rows\)"):
        validate_transactions(raw, AS_OF)


def test_bad_policy_values_are_refused():
    raw = tx([("a", "2020-01-01", "1")])
    with pytest.raises(ValueError, match="returns must be"):
        validate_transactions(raw, AS_OF, returns="keep")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="duplicates must be"):
        validate_transactions(raw, AS_OF, duplicates="maybe")  # type: ignore[arg-type]


# ------------------------------------------------------------------ events, customers


def test_each_event_reason_is_counted_exactly():
    raw = pd.DataFrame(
        [
            ("a", "2020-01-01", "session", None),  # 0 ok
            ("a", "2020-01-02", " Email_Open ", ""),  # 1 ok: normalised, blank value
            ("a", "2020-01-03", "support_ticket", "4"),  # 2 ok with a score
            ("", "2020-01-01", "session", None),  # 3 customer_id_missing
            ("b", "soon", "session", None),  # 4 timestamp_unparseable
            ("b", None, "session", None),  # 5 timestamp_missing
            ("b", "2020-01-01", None, None),  # 6 event_type_missing
            ("b", "2020-01-01", "purchase", None),  # 7 ok: any type is kept
            ("b", "2020-01-01", " PageView", None),  # 8 ok: kept, normalised
            ("b", "2020-01-01", "survey", "ten"),  # 9 value_not_numeric
            ("b", "2020-07-01", "survey", "9"),  # 10 timestamp_after_as_of
            ("a", "2020-01-01", "session", None),  # 11 duplicate of 0
        ],
        columns=["customer_id", "timestamp", "event_type", "value"],
    )
    clean, rejects = validate_events(raw, AS_OF)
    counts = row_counts("events", len(raw), clean, rejects)
    assert nonzero(counts) == {
        "rows_in": 12,
        "rows_used": 5,
        "rows_rejected": 7,
        "rejected_customer_id_missing": 1,
        "rejected_timestamp_missing": 1,
        "rejected_timestamp_unparseable": 1,
        "rejected_event_type_missing": 1,
        "rejected_value_not_numeric": 1,
        "rejected_timestamp_after_as_of": 1,
        "rejected_duplicate": 1,
    }
    assert clean["event_type"].tolist() == [
        "session",
        "email_open",
        "support_ticket",
        "purchase",
        "pageview",
    ]
    assert "rejected_event_type_unknown" not in counts
    assert clean["value"].tolist()[2] == 4.0 and np.isnan(clean["value"].tolist()[1])
    assert {c: str(t) for c, t in clean.dtypes.items()} == {
        "customer_id": "string",
        "timestamp": "datetime64[ns]",
        "event_type": "string",
        "value": "float64",
    }
    assert (rejects["table"] == "events").all()


def test_events_of_unknown_types_are_kept():
    raw = pd.DataFrame(
        {"customer_id": ["a", "b"], "timestamp": ["2020-01-01"] * 2, "event_type": ["x", " Y "]}
    )
    clean, rejects = validate_events(raw, AS_OF)
    assert clean["event_type"].tolist() == ["x", "y"] and rejects.empty


def test_events_roles_rename_source_types_and_ranges_apply_to_the_role():
    raw = pd.DataFrame(
        [
            ("a", "2020-01-01", "Web_Session", None),  # -> session
            ("a", "2020-01-02", "ticket_closed", "4"),  # -> support_ticket, in 1-5
            ("a", "2020-01-03", "ticket_closed", "7"),  # value_out_of_range for the role
            ("a", "2020-01-04", "nps", "9"),  # -> survey
            ("a", "2020-01-05", "session", None),  # a role name is always that role
            ("a", "2020-01-06", "webinar", "99"),  # no role: kept, no range
        ],
        columns=["customer_id", "timestamp", "event_type", "value"],
    )
    roles = {"session": "web_session", "support_ticket": ["ticket_closed"], "survey": " NPS "}
    clean, rejects = validate_events(raw, AS_OF, roles=roles)
    assert clean["event_type"].tolist() == [
        "session",
        "support_ticket",
        "survey",
        "session",
        "webinar",
    ]
    assert rejects["reason"].tolist() == ["value_out_of_range"]
    assert rejects["row_number"].tolist() == [2]


@pytest.mark.parametrize(
    ("roles", "message"),
    [
        ({"visit": "web_session"}, "unknown event role 'visit'"),
        ({"session": "x", "referral": "x"}, "'x' is given for two roles"),
        ({"session": "survey"}, "'survey' is the name of another role"),
        ({"session": " "}, "empty type name"),
    ],
)
def test_events_roles_are_checked(roles, message):
    raw = pd.DataFrame({"customer_id": ["a"], "timestamp": ["2020-01-01"], "event_type": ["x"]})
    with pytest.raises(ValueError, match=message):
        validate_events(raw, AS_OF, roles=roles)


def test_each_customer_reason_is_counted_exactly():
    raw = pd.DataFrame(
        [
            ("a", "2019-05-01", "email", "gold"),  # 0 ok
            ("b", None, " paid_search ", "silver"),  # 1 ok: no signup date is allowed
            (None, "2019-05-01", "email", "gold"),  # 2 customer_id_missing
            ("c", "May first", "email", "gold"),  # 3 signup_date_unparseable
            ("d", "2020-07-01", "email", "gold"),  # 4 signup_date_after_as_of
            ("a", "2019-06-01", "social", "gold"),  # 5 customer_id_duplicate
        ],
        columns=["customer_id", "signup_date", "acquisition_channel", "tier"],
    )
    clean, rejects = validate_customers(raw, AS_OF)
    assert rejects["reason"].tolist() == [
        "customer_id_missing",
        "signup_date_unparseable",
        "signup_date_after_as_of",
        "customer_id_duplicate",
    ]
    assert clean.index.name == "customer_id" and str(clean.index.dtype) == "string"
    assert clean.index.tolist() == ["a", "b"]
    assert clean["acquisition_channel"].tolist() == ["email", "paid_search"]
    assert clean["tier"].tolist() == ["gold", "silver"]
    assert clean["signup_date"].dtype == "datetime64[ns]"
    assert row_counts("customers", len(raw), clean, rejects)["rows_rejected"] == 4


# --------------------------------------------------------------------- read_table


def write_csv(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_csv_round_trip_with_column_mapping(tmp_path):
    path = write_csv(
        tmp_path / "orders.csv",
        "Cust;When;Total;Store;customer_id\n"
        "0042;2020-01-01 10:00;12.50;north;x\n"
        "0043;2020-01-02;oops;south;y\n"
        " 0044 ;2020-01-03;7;;z\n",
    )
    source = TableSource(
        path=path,
        csv=CsvOptions(delimiter=";"),
        columns={"customer_id": "Cust", "timestamp": "When", "amount": "Total"},
    )
    raw = read_table(source, TRANSACTIONS)
    assert list(raw.columns) == [
        "customer_id",
        "timestamp",
        "amount",
        "Store",
        "source.customer_id",
    ]
    assert raw["customer_id"].tolist() == ["0042", "0043", " 0044 "]  # text, leading zeros kept
    clean, rejects = validate_transactions(raw, AS_OF)
    assert clean["customer_id"].tolist() == ["0042", "0044"]
    assert clean["amount"].tolist() == [12.5, 7.0]
    assert rejects["reason"].tolist() == ["amount_not_numeric"]
    assert rejects["row_number"].tolist() == [1]


def test_parquet_round_trip_with_column_mapping(tmp_path):
    frame = pd.DataFrame(
        {
            "cid": pd.array(["a", "b", None], dtype="string"),
            "ts": [pd.Timestamp(d) for d in ("2020-01-01 10:00", "2020-02-01", "2020-03-01")],
            "value_usd": [1.5, 2.5, 3.5],
            "order_no": ["o1", "o2", "o3"],
        }
    )
    path = tmp_path / "orders.parquet"
    frame.to_parquet(path)
    source = TableSource(
        path=path,
        columns={
            "customer_id": "cid",
            "timestamp": "ts",
            "amount": "value_usd",
            "order_id": "order_no",
        },
    )
    raw = read_table(source, TRANSACTIONS)
    assert list(raw.columns) == ["customer_id", "timestamp", "amount", "order_id"]
    clean, rejects = validate_transactions(raw, AS_OF)
    assert clean["customer_id"].tolist() == ["a", "b"]
    assert clean["timestamp"].tolist() == [
        pd.Timestamp("2020-01-01 10:00"),
        pd.Timestamp("2020-02-01"),
    ]
    assert clean["amount"].tolist() == [1.5, 2.5]
    assert clean["order_id"].tolist() == ["o1", "o2"]
    assert rejects["reason"].tolist() == ["customer_id_missing"]


def test_parquet_with_time_zone_is_read_as_utc(tmp_path):
    ts = pd.to_datetime(["2020-01-01 10:00"]).tz_localize("America/New_York")
    path = tmp_path / "events.parquet"
    pd.DataFrame({"customer_id": ["a"], "timestamp": ts, "event_type": ["session"]}).to_parquet(
        path
    )
    clean, _ = validate_events(read_table(TableSource(path=path), EVENTS), AS_OF)
    assert clean["timestamp"].tolist() == [pd.Timestamp("2020-01-01 15:00")]


def test_read_table_missing_file(tmp_path):
    with pytest.raises(DataError, match=r"transactions: file not found: .*nope\.csv"):
        read_table(TableSource(path=tmp_path / "nope.csv"), TRANSACTIONS)


def test_read_table_empty_file(tmp_path):
    path = write_csv(tmp_path / "empty.csv", "")
    with pytest.raises(DataError, match=r"events: file is empty \(0 rows\)"):
        read_table(TableSource(path=path), EVENTS)


def test_read_table_header_only_file(tmp_path):
    path = write_csv(tmp_path / "header.csv", "customer_id,timestamp,amount\n")
    with pytest.raises(DataError, match=r"transactions: file has no data rows \(0 rows\)"):
        read_table(TableSource(path=path), TRANSACTIONS)


def test_read_table_missing_required_column_names_table_column_and_present_columns(tmp_path):
    path = write_csv(tmp_path / "t.csv", "Cust,When,Price\na,2020-01-01,1\n")
    source = TableSource(path=path, columns={"customer_id": "Cust", "timestamp": "When"})
    with pytest.raises(
        DataError,
        match=r"^transactions: required column amount missing from .*t\.csv; "
        r"columns present: Cust, When, Price$",
    ):
        read_table(source, TRANSACTIONS)
    mapped = TableSource(path=path, columns={"customer_id": "Customer"})
    with pytest.raises(
        DataError,
        match=r"columns customer_id \(source column 'Customer'\), timestamp, amount missing",
    ):
        read_table(mapped, TRANSACTIONS)


def test_read_table_explicitly_mapped_optional_column_must_exist(tmp_path):
    path = write_csv(tmp_path / "t.csv", "customer_id,timestamp,amount\na,2020-01-01,1\n")
    source = TableSource(path=path, columns={"order_id": "OrderNo"})
    with pytest.raises(DataError, match=r"order_id \(source column 'OrderNo'\) missing"):
        read_table(source, TRANSACTIONS)


def test_read_table_unknown_mapping_key_is_a_config_error(tmp_path):
    path = write_csv(tmp_path / "t.csv", "customer_id,timestamp,amount\na,2020-01-01,1\n")
    with pytest.raises(ConfigError, match="custmer_id"):
        read_table(TableSource(path=path, columns={"custmer_id": "x"}), TRANSACTIONS)


def test_read_table_unreadable_file(tmp_path):
    path = tmp_path / "broken.parquet"
    path.write_bytes(b"this is not parquet")
    with pytest.raises(DataError, match=r"transactions: cannot read .*broken\.parquet"):
        read_table(TableSource(path=path), TRANSACTIONS)


# -------------------------------------------------------------------- load_inputs


def run_config(data: dict) -> RunConfig:
    return RunConfig.model_validate(
        {
            "name": "test",
            "data": data,
            "clv": {"calibration_end": "1997-09-30", "holdout_end": "1998-06-30"},
        }
    )


def test_load_inputs_cdnow_sample_real_numbers():
    cfg = run_config({"source": "cdnow_sample"})
    inputs = load_inputs(cfg, "1998-06-30")
    counts = inputs.counts["transactions"]
    assert (counts["rows_in"], counts["rows_used"], counts["rows_rejected"]) == (6919, 6919, 0)
    assert nonzero(counts) == {"rows_in": 6919, "rows_used": 6919}
    assert inputs.transactions["customer_id"].nunique() == 2357
    assert inputs.events is None and inputs.customers is None
    assert len(inputs.rejects) == 0 and list(inputs.rejects.columns) == list(REJECT_COLUMNS)
    assert observed_until(cfg, inputs) == pd.Timestamp("1998-06-30")
    assert len(rejected_customers(inputs)) == 0


def test_cdnow_identical_lines_are_kept_as_purchases(cdnow_sample):
    # CDNOW has no transaction id: 21 of its sample lines repeat an earlier line exactly.
    # load_inputs keeps them (the published analyses count them); the check would drop them.
    _, rejects = validate_transactions(cdnow_sample, "1998-06-30")
    assert rejects["reason"].value_counts().to_dict() == {"duplicate": 21}


def test_load_inputs_cdnow_master_as_of_a_cutoff():
    cfg = run_config({"source": "cdnow_master"})
    inputs = load_inputs(cfg, "1997-09-30")
    counts = inputs.counts["transactions"]
    assert counts["rows_in"] == 69659
    assert counts["rows_used"] + counts["rejected_timestamp_after_as_of"] == 69659
    assert inputs.transactions["timestamp"].max() == pd.Timestamp("1997-09-30")
    # every CDNOW customer made the first purchase in early 1997
    assert inputs.transactions["customer_id"].nunique() == 23570


def test_load_inputs_files(tmp_path):
    write_csv(
        tmp_path / "tx.csv",
        "cust,ts,amt,order\n"
        "1,2020-01-01,10,o1\n"
        "1,2020-01-03,-4,o1\n"
        "2,2020-01-02,5,o2\n"
        "3,2020-08-01,5,o3\n",
    )
    write_csv(
        tmp_path / "ev.csv",
        "customer_id,timestamp,event_type,value\n"
        "1,2020-01-01,session,\n"
        "4,2020-01-05,survey,9\n"
        "4,2020-01-06,tweet,\n"
        "5,2020-01-05,survey,11\n",
    )
    write_csv(tmp_path / "cu.csv", "customer_id,signup_date\n1,01/12/2019\n2,02/12/2019\n")
    cfg = run_config(
        {
            "source": "files",
            "returns": "net",
            "observed_until": "2020-12-31",
            "transactions": {
                "path": str(tmp_path / "tx.csv"),
                "columns": {
                    "customer_id": "cust",
                    "timestamp": "ts",
                    "amount": "amt",
                    "order_id": "order",
                },
            },
            "events": {"path": str(tmp_path / "ev.csv"), "roles": {"referral": "tweet"}},
            "customers": {"path": str(tmp_path / "cu.csv"), "timestamp_format": "%d/%m/%Y"},
        }
    )
    inputs = load_inputs(cfg, AS_OF)
    assert inputs.transactions["amount"].tolist() == [6.0, 5.0]
    assert inputs.counts["transactions"]["rejected_return_netted"] == 1
    assert inputs.counts["transactions"]["rejected_timestamp_after_as_of"] == 1
    assert inputs.counts["events"]["rejected_value_out_of_range"] == 1
    assert inputs.events["event_type"].tolist() == ["session", "survey", "referral"]
    assert inputs.customers.index.tolist() == ["1", "2"]
    assert inputs.customers["signup_date"].tolist() == [
        pd.Timestamp("2019-12-01"),
        pd.Timestamp("2019-12-02"),
    ]
    assert inputs.rejects["table"].tolist() == ["transactions", "transactions", "events"]
    assert inputs.as_of == pd.Timestamp(AS_OF)
    assert observed_until(cfg) == pd.Timestamp("2020-12-31")
    # customer 3 has only a future purchase, 5 only an NPS of 11: all their rows rejected
    assert rejected_customers(inputs).tolist() == ["3", "5"]
    # 4 has no usable transaction but a usable event
    assert rejected_customers(inputs, "transactions").tolist() == ["3"]


def test_null_spelled_ids_name_no_rejected_customer():
    raw = tx([("NULL", "2020-01-01", "1"), ("a", "2020-01-01", "1"), ("b", "2021-01-01", "1")])
    clean, rejects = validate_transactions(raw, AS_OF)
    inputs = Inputs(transactions=clean, events=None, customers=None, rejects=rejects, counts={})
    assert rejects["reason"].tolist() == ["customer_id_missing", "timestamp_after_as_of"]
    assert rejected_customers(inputs).tolist() == ["b"]


def test_validation_limits_are_keywords_with_the_config_defaults():
    raw = tx([("a", "2020-01-01", "2,5"), ("-", "2020-01-01", "1"), ("abc", "2020-01-01", "9")])
    clean, rejects = validate_transactions(
        raw, AS_OF, null_values=["-"], decimal=",", max_amount=5, max_id_length=2
    )
    assert clean["amount"].tolist() == [2.5]
    assert rejects["reason"].tolist() == ["customer_id_missing", "customer_id_invalid"]
    events = pd.DataFrame(
        {
            "customer_id": ["a", "a", "a"],
            "timestamp": ["2020-01-01"] * 3,
            "event_type": ["survey", "survey", "n/a"],
            "value": ["7,5", "11", None],
        }
    )
    clean, rejects = validate_events(events, AS_OF, decimal=",", null_values=["n/a"])
    assert clean["value"].tolist() == [7.5]
    assert rejects["reason"].tolist() == ["value_out_of_range", "event_type_missing"]


def test_load_inputs_synthetic_passes_the_config_and_validates(monkeypatch):
    calls = {}
    transactions = pd.DataFrame(
        {
            "customer_id": pd.array(["c1", "c2"], dtype="string"),
            "timestamp": pd.to_datetime(["2022-01-03", "2022-02-01"]),
            "amount": [10.0, 20.0],
        }
    )
    events = pd.DataFrame(
        {
            "customer_id": pd.array(["c1"], dtype="string"),
            "timestamp": pd.to_datetime(["2022-01-04"]),
            "event_type": pd.array(["session"], dtype="string"),
        }
    )
    customers = pd.DataFrame({"customer_id": ["c1", "c2"]})
    truth = pd.DataFrame({"purchase_rate_per_day": [0.1, 0.2]}, index=["c1", "c2"])

    def fake_generate(**kwargs):
        calls.update(kwargs)
        return types.SimpleNamespace(
            transactions=transactions, events=events, customers=customers, truth=truth
        )

    module = types.ModuleType("retain.synthetic")
    module.generate_synthetic = fake_generate  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "retain.synthetic", module)
    cfg = run_config(
        {
            "source": "synthetic",
            "synthetic": {
                "n_customers": 2,
                "start": "2022-01-01",
                "end": "2022-12-31",
                "seed": 3,
                "with_events": True,
            },
        }
    )
    inputs = load_inputs(cfg, "2022-01-31")
    assert calls == {
        "n_customers": 2,
        "start": pd.Timestamp("2022-01-01").date(),
        "end": pd.Timestamp("2022-12-31").date(),
        "seed": 3,
        "with_events": True,
    }
    assert inputs.transactions["customer_id"].tolist() == ["c1"]
    assert inputs.counts["transactions"]["rejected_timestamp_after_as_of"] == 1
    assert inputs.events is not None and len(inputs.events) == 1
    assert inputs.truth is truth
    assert observed_until(cfg) == pd.Timestamp("2022-12-31")


def test_load_inputs_synthetic_real_generator_is_consistent():
    cfg = run_config(
        {
            "source": "synthetic",
            "synthetic": {"n_customers": 300, "start": "2022-01-01", "end": "2022-12-31"},
        }
    )
    inputs = load_inputs(cfg, "2022-12-31")
    for name, counts in inputs.counts.items():
        assert counts["rows_rejected"] == 0, name
    assert inputs.customers is not None and len(inputs.customers) == 300
    assert inputs.truth is not None
    observed_until(cfg, inputs)  # consistent: no data past the end


def test_observed_until_refuses_data_past_it():
    cfg = run_config(
        {"source": "files", "observed_until": "2020-01-31", "transactions": {"path": "unused.csv"}}
    )
    clean, rejects = validate_transactions(tx([("a", "2020-02-01 08:00", "1")]), AS_OF)
    inputs = Inputs(clean, None, None, rejects, {})
    with pytest.raises(DataError, match="data runs to 2020-02-01, after observed_until 2020-01-31"):
        observed_until(cfg, inputs)


def test_observed_until_for_cdnow_and_an_explicit_shorter_period():
    assert observed_until(run_config({"source": "cdnow_master"})) == pd.Timestamp("1998-06-30")
    cfg = run_config({"source": "cdnow_master", "observed_until": "1998-03-31"})
    assert observed_until(cfg) == pd.Timestamp("1998-03-31")


# -------------------------------------------------------------------- property test

ids = st.sampled_from(["a", "b", " c ", "", None, "   ", "d"])
stamps = st.sampled_from(
    ["2020-01-01", "2020-06-30 23:00", "2020-07-01", "bad", None, "", "2020-02-30", "2020-03-03"]
)
amounts = st.sampled_from(["1", "2.5", "-1", "-2.5", "0", "x", None, "nan", "1e3"])
orders = st.sampled_from(["o1", "o2", "o3", None])
good_row = ("z", "2020-01-01", "1", "o9")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rows=st.lists(st.tuples(ids, stamps, amounts, orders), min_size=0, max_size=40),
    returns=st.sampled_from(["drop", "net"]),
)
def test_property_every_row_is_used_or_rejected_exactly_once(rows, returns):
    raw = pd.DataFrame(
        [good_row, *rows], columns=["customer_id", "timestamp", "amount", "order_id"]
    )
    clean, rejects = validate_transactions(raw, AS_OF, returns=returns)
    counts = row_counts("transactions", len(raw), clean, rejects)
    assert counts["rows_in"] == counts["rows_used"] + counts["rows_rejected"]
    assert sum(v for k, v in counts.items() if k.startswith("rejected_")) == len(rejects)
    assert rejects["row_number"].is_unique
    assert rejects["row_number"].between(0, len(raw) - 1).all()
    # every input customer is in the clean data or (only) in the rejects
    given_ids = {s.strip() for s in raw["customer_id"].dropna() if s.strip()}
    rejected_ids = {s.strip() for s in rejects["customer_id"].dropna() if s.strip()}
    assert given_ids == set(clean["customer_id"]) | rejected_ids
    assert str(clean["customer_id"].dtype) == "string"
    assert clean["timestamp"].dtype == "datetime64[ns]"
    assert clean["amount"].dtype == "float64"
    assert (clean["timestamp"] < pd.Timestamp("2020-07-01")).all()
    assert not clean.duplicated().any()
    assert (clean["amount"] >= 0).all()
    # the rejects carry the raw id of the row they point at
    raw_ids = raw["customer_id"].iloc[rejects["row_number"]].astype("string").tolist()
    assert rejects["customer_id"].tolist() == raw_ids
    used = np.setdiff1d(np.arange(len(raw)), rejects["row_number"].to_numpy())
    used_amounts = raw["amount"].iloc[used].astype(float)
    if returns == "drop":
        assert clean["amount"].tolist() == used_amounts.tolist()
    else:
        # netting moves money from returns into their orders, never creates or loses any
        netted = rejects.loc[rejects["reason"] == "return_netted", "row_number"]
        returned = raw["amount"].iloc[netted].astype(float).sum()
        assert clean["amount"].sum() == pytest.approx(used_amounts.sum() + returned)


event_types = st.sampled_from(["session", " Survey", "tweet", "", None, "email_click"])
values = st.sampled_from(["1", "", None, "x", "9"])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.lists(st.tuples(ids, stamps, event_types, values), min_size=0, max_size=30))
def test_property_events_rows_balance(rows):
    raw = pd.DataFrame(
        [("z", "2020-01-01", "session", None), *rows],
        columns=["customer_id", "timestamp", "event_type", "value"],
    )
    clean, rejects = validate_events(raw, AS_OF)
    assert len(raw) == len(clean) + len(rejects)
    assert rejects["row_number"].is_unique
    given_ids = {s.strip() for s in raw["customer_id"].dropna() if s.strip()}
    rejected_ids = {s.strip() for s in rejects["customer_id"].dropna() if s.strip()}
    assert given_ids == set(clean["customer_id"]) | rejected_ids
    assert clean["event_type"].isin(["session", "survey", "email_click", "tweet"]).all()
    assert not clean.duplicated().any()


# --------------------------------------------------------------------- writers


def test_write_table_atomic_parquet_and_csv_round_trip(tmp_path):
    df = pd.DataFrame(
        {"clv": [1.5, 2.0]}, index=pd.Index(["a", "b"], dtype="string", name="customer_id")
    )
    p = write_table_atomic(df, tmp_path / "sub" / "scores.parquet")
    # pandas reads text back as its default "str" dtype: compare values, not the text dtype
    pd.testing.assert_frame_equal(pd.read_parquet(p), df, check_index_type=False)
    c = write_table_atomic(df, tmp_path / "scores.csv")
    back = pd.read_csv(c, dtype={"customer_id": "string"}).set_index("customer_id")
    pd.testing.assert_frame_equal(back, df, check_index_type=False)
    plain = write_table_atomic(pd.DataFrame({"x": [1]}), tmp_path / "plain.csv")
    assert plain.read_text() == "x\n1\n"
    assert sorted(f.name for f in tmp_path.iterdir()) == ["plain.csv", "scores.csv", "sub"]
    with pytest.raises(ValueError, match="cannot tell the format"):
        write_table_atomic(df, tmp_path / "scores.xlsx")


def test_write_table_atomic_failure_keeps_the_old_file(tmp_path):
    path = tmp_path / "t.parquet"
    write_table_atomic(pd.DataFrame({"x": [1, 2]}), path)
    bad = pd.DataFrame({"x": [object(), object()]})
    with pytest.raises(Exception):  # noqa: B017 - whatever pyarrow raises
        write_table_atomic(bad, path)
    assert pd.read_parquet(path)["x"].tolist() == [1, 2]
    assert [f.name for f in tmp_path.iterdir()] == ["t.parquet"]


def test_write_json_atomic_sorted_keys_and_dates(tmp_path):
    path = write_json_atomic({"b": 1, "a": pd.Timestamp("2020-01-01").date()}, tmp_path / "m.json")
    text = path.read_text()
    assert text.index('"a"') < text.index('"b"')
    assert json.loads(text) == {"a": "2020-01-01", "b": 1}


def test_write_rejects_keeps_contract_columns(tmp_path):
    rejects = validate_transactions(tx([("a", "2020-01-01", "1"), (None, "x", "1")]), AS_OF)[1]
    path = write_rejects(rejects.assign(extra=1), tmp_path / "rejects.parquet")
    back = pd.read_parquet(path)
    assert list(back.columns) == list(REJECT_COLUMNS)
    assert back["reason"].tolist() == ["customer_id_missing"]


def test_write_text_atomic_replaces_whole_file_readable_by_all(tmp_path):
    from retain.io import write_text_atomic

    path = tmp_path / "r" / "report.html"
    write_text_atomic("old", path)
    write_text_atomic("<!DOCTYPE html>new", path)
    assert path.read_text() == "<!DOCTYPE html>new"
    assert path.stat().st_mode & 0o777 == 0o644
    assert [p.name for p in path.parent.iterdir()] == ["report.html"]  # no temp file left


# ------------------------------------------------ derived columns and id normalisation

RETAIL_HEADER = (
    "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n"
)
RETAIL_MAPPING = {
    "customer_id": "CustomerID",
    "timestamp": "InvoiceDate",
    "amount": "Quantity * UnitPrice",
    "quantity": "Quantity",
    "order_id": "InvoiceNo",
}


def retail_config(tmp_path: Path, transactions: dict, **data: object) -> RunConfig:
    """A ``files`` run config written as YAML and loaded as a run loads it."""
    import yaml

    from retain.config import load_config

    run = {
        "name": "retail",
        "data": {
            "source": "files",
            "observed_until": "2011-12-09",
            "transactions": transactions,
            **data,
        },
        "clv": {"calibration_end": "2011-06-30", "holdout_end": "2011-12-09"},
    }
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(run))
    return load_config(path)


def test_online_retail_export_amount_is_quantity_times_unit_price(tmp_path):
    path = write_csv(
        tmp_path / "retail.csv",
        RETAIL_HEADER + "536365,85123A,WHITE HANGING HEART,6,12/1/2010 8:26,2.55,17850.0,UK\n"
        '536365,71053,"LANTERN, WHITE",2,12/1/2010 8:26,3.39,17850.0,UK\n'
        "536366,22633,HAND WARMER,6,12/1/2010 8:28,1.85,,UK\n"
        "536367,84879,BIRD ORNAMENT,32,12/1/2010 8:34,abc,13047.0,UK\n"
        "536368,22960,JAM MAKING SET,6,12/1/2010 8:34,,13047.0,UK\n"
        "536369,21756,BATH BUILDING,3,12/1/2010 8:35,0.5,13047.0,UK\n"
        "C536379,D,Discount,-1,12/1/2010 9:41,27.5,14527.0,UK\n",
    )
    transactions = {
        "path": str(path),
        "columns": RETAIL_MAPPING,
        "timestamp_format": "%m/%d/%Y %H:%M",
    }
    cfg = retail_config(tmp_path, transactions, id_normalisation="integer_text")
    inputs = load_inputs(cfg, "2011-12-09")
    tx = inputs.transactions
    assert tx["customer_id"].tolist() == ["17850", "17850", "13047"]
    np.testing.assert_allclose(tx["amount"], [6 * 2.55, 2 * 3.39, 3 * 0.5])
    assert tx["quantity"].tolist() == [6.0, 2.0, 3.0]
    assert tx["timestamp"].iloc[0] == pd.Timestamp("2010-12-01 08:26")
    reasons = dict(zip(inputs.rejects["row_number"], inputs.rejects["reason"], strict=True))
    assert reasons == {
        2: "customer_id_missing",
        3: "amount_not_numeric",
        4: "amount_missing",
        6: "return",
    }
    assert inputs.rejects["customer_id"].tolist()[1] == "13047.0"  # as in the input
    # the contract is unchanged by default: ids stay as written
    cfg = retail_config(tmp_path, transactions)
    assert cfg.data.id_normalisation == "none"
    ids = load_inputs(cfg, "2011-12-09").transactions["customer_id"]
    assert ids.tolist() == ["17850.0", "17850.0", "13047.0"]


def test_online_retail_cancellations_net_against_the_earlier_purchase_of_the_item(tmp_path):
    path = write_csv(
        tmp_path / "retail.csv",
        RETAIL_HEADER + "536365,85123A,WHITE HANGING HEART,6,12/1/2010 8:26,2.55,17850.0,UK\n"
        '536365,71053,"LANTERN, WHITE",2,12/1/2010 8:26,3.39,17850.0,UK\n'
        "C536379,85123A,WHITE HANGING HEART,-2,12/1/2010 9:41,2.55,17850.0,UK\n"
        "536370,22728,ALARM CLOCK,24,12/1/2010 8:45,3.75,12583.0,France\n"
        "C536383,D,Discount,-1,12/1/2010 9:49,9.00,12583.0,France\n"
        "C536391,22556,PLASTERS,-12,12/1/2010 10:24,1.65,17548.0,UK\n",
    )
    transactions = {
        "path": str(path),
        "columns": {**RETAIL_MAPPING, "item_id": "StockCode"},
        "timestamp_format": "%m/%d/%Y %H:%M",
    }
    cfg = retail_config(tmp_path, transactions, returns="net_earlier")
    inputs = load_inputs(cfg, "2011-12-09")
    tx = inputs.transactions
    assert tx["item_id"].tolist() == ["85123A", "71053", "22728"]
    # 85123A: 6 x 2.55 less 2 x 2.55; the discount without an item match nets against the
    # customer's latest earlier order; 17548 bought nothing before: unmatched
    np.testing.assert_allclose(tx["amount"], [4 * 2.55, 2 * 3.39, 24 * 3.75 - 9.0])
    assert tx["quantity"].tolist() == [6.0, 2.0, 24.0]  # quantities are left as they are
    counts = inputs.counts["transactions"]
    assert counts["rejected_return_netted"] == 2
    assert counts["rejected_return_unmatched"] == 1
    assert counts["rows_in"] == counts["rows_used"] + counts["rows_rejected"] == 6
    # the same file under `net`: every cancellation is unmatched, spend overstated
    cfg = retail_config(tmp_path, transactions, returns="net")
    inputs = load_inputs(cfg, "2011-12-09")
    assert inputs.counts["transactions"]["rejected_return_unmatched"] == 3
    np.testing.assert_allclose(inputs.transactions["amount"], [6 * 2.55, 2 * 3.39, 24 * 3.75])


def test_derived_columns_honour_the_decimal_separator_and_refuse_division_by_zero(tmp_path):
    path = write_csv(
        tmp_path / "tx.csv",
        "cust;ts;qty;total\nA;2020-01-01;2;12,50\nB;2020-01-02;0;3\nC;2020-01-03;4;1.5\n",
    )
    source = TableSource(
        path=path,
        csv=CsvOptions(delimiter=";", decimal=","),
        columns={"customer_id": "cust", "timestamp": "ts", "amount": "total / qty"},
    )
    raw = read_table(source, TRANSACTIONS)
    assert list(raw.columns) == ["customer_id", "timestamp", "amount", "qty", "total"]
    clean, rejects = validate_transactions(raw, AS_OF, decimal=",")
    assert clean["amount"].tolist() == [6.25]
    assert rejects["reason"].tolist() == ["amount_not_numeric", "amount_not_numeric"]


def test_derived_columns_from_parquet_numbers_and_for_event_values(tmp_path):
    path = tmp_path / "tx.parquet"
    pd.DataFrame(
        {
            "cid": ["a", "b"],
            "ts": pd.to_datetime(["2020-01-01", "2020-01-02"]),
            "Quantity": [3, 2],
            "Unit Price": [1.5, np.nan],
        }
    ).to_parquet(path)
    source = TableSource(
        path=path,
        columns={"customer_id": "cid", "timestamp": "ts", "amount": 'Quantity * "Unit Price"'},
    )
    raw = read_table(source, TRANSACTIONS)
    assert raw["amount"].iloc[0] == 4.5 and np.isnan(raw["amount"].iloc[1])
    events = write_csv(
        tmp_path / "ev.csv", "customer_id,timestamp,event_type,score\n1,2020-01-01,survey,4\n"
    )
    raw = read_table(TableSource(path=events, columns={"value": "score * 2 + 1"}), EVENTS)
    assert raw["value"].tolist() == [9.0]


def test_a_header_with_operator_characters_is_still_a_plain_column(tmp_path):
    path = write_csv(
        tmp_path / "tx.csv", 'customer_id,timestamp,Unit-Price,"Price (EUR)"\nA,2020-01-01,2,3\n'
    )
    for value, want in (("Unit-Price", "2"), ('"Price (EUR)"', "3")):
        raw = read_table(TableSource(path=path, columns={"amount": value}), TRANSACTIONS)
        assert raw["amount"].tolist() == [want]  # the column's text, not a computed number


def test_a_missing_source_column_of_a_derived_column_names_it_and_the_key(tmp_path):
    path = write_csv(tmp_path / "tx.csv", "customer_id,timestamp,Quantity\nA,2020-01-01,2\n")
    source = TableSource(path=path, columns={"amount": "Quantity * UnitPrice"})
    with pytest.raises(DataError, match=r"'UnitPrice' of data\.transactions\.columns\.amount"):
        read_table(source, TRANSACTIONS)
    bad = TableSource(path=path, columns={"amount": "Quantity *"})
    with pytest.raises(ConfigError, match=r"data\.transactions\.columns\.amount: .*position 11"):
        read_table(bad, TRANSACTIONS)


def test_ids_and_timestamps_are_never_derived(tmp_path):
    path = write_csv(tmp_path / "tx.csv", "a,b,timestamp,amount\n1,2,2020-01-01,3\n")
    source = TableSource(path=path, columns={"customer_id": "a * b"})
    with pytest.raises(DataError, match="only allowed for amount, quantity"):
        read_table(source, TRANSACTIONS)
    typo = TableSource(path=path, columns={"amount": "a x b"})
    with pytest.raises(DataError, match=r"'a x b'\) \(to compute amount, use \+ - \* /"):
        read_table(typo, TRANSACTIONS)


@pytest.mark.parametrize(
    ("raw", "want"),
    [
        ("17850.0", "17850"),
        ("17850.00", "17850"),
        ("1.785e4", "17850"),
        ("1.785E+4", "17850"),
        ("+17850.", "17850"),
        ("-3.0", "-3"),
        (".0", "0"),
        ("123456789012345678901.0", "123456789012345678901"),  # exact, no float rounding
        ("17850.5", "17850.5"),
        ("1.7855e3", "1.7855e3"),
        ("017850", "017850"),
        ("A-17.0", "A-17.0"),
        ("17850", "17850"),
        ("1e999999999", "1e999999999"),  # too long to be an id: kept as written
    ],
)
def test_integer_text_normalises_exact_integers_only(raw, want):
    from retain.validation import normalise_ids

    ids = pd.Series([raw, None], dtype="string")
    assert normalise_ids(ids, "integer_text").tolist() == [want, pd.NA]
    assert normalise_ids(ids, "none").tolist() == [raw, pd.NA]


def test_float_formatted_ids_are_recognised():
    from retain.validation import float_formatted_ids

    assert float_formatted_ids(pd.Series(["17850.0", "13047.0", None, ""]))
    assert not float_formatted_ids(pd.Series(["17850", "13047"]))
    assert not float_formatted_ids(pd.Series(["17850.0", "A17"]))
    assert not float_formatted_ids(pd.Series(["17850.5"]))
    assert not float_formatted_ids(pd.Series([None], dtype="string"))


def test_id_normalisation_matches_customers_across_tables_and_before_duplicate_checks():
    customers = pd.DataFrame({"customer_id": ["17850", "17850.0", "13047.00"]})
    clean, rejects = validate_customers(customers, AS_OF, id_normalisation="integer_text")
    assert clean.index.tolist() == ["17850", "13047"]
    assert rejects["reason"].tolist() == ["customer_id_duplicate"]
    clean, rejects = validate_customers(customers, AS_OF)
    assert clean.index.tolist() == ["17850", "17850.0", "13047.00"] and len(rejects) == 0
    tx = pd.DataFrame(
        {
            "customer_id": ["17850.0", "17850"],
            "timestamp": ["2020-01-01", "2020-01-01"],
            "amount": ["5", "5"],
        }
    )
    clean, rejects = validate_transactions(tx, AS_OF, id_normalisation="integer_text")
    assert clean["customer_id"].tolist() == ["17850"]
    assert rejects["reason"].tolist() == ["duplicate"]
    events = pd.DataFrame(
        {"customer_id": ["1.785e4"], "timestamp": ["2020-01-01"], "event_type": ["session"]}
    )
    clean, _ = validate_events(events, AS_OF, id_normalisation="integer_text")
    assert clean["customer_id"].tolist() == ["17850"]
