"""A corpus of bad input files, each read and validated the way a run reads them.

Every case writes one file into ``tmp_path``, builds a ``files`` config through
:func:`retain.config.load_config` and runs :func:`retain.io.load_inputs`. A case either expects
counts (rows used, rows rejected per reason) or one :class:`retain.io.DataError` naming given
tables, columns, reason codes or settings. Whatever it expects, the accounting holds: rows in =
used + rejected, with rows in counted independently (Python's ``csv`` module or pyarrow), and
every input customer is in the clean table or in the rejects.

Every whole-input error also runs through ``retain features`` against an output root that
already holds an earlier, good features folder of the same config name and date: the command
exits with the data code, prints one line naming the table and column, and leaves every byte
under the root as it was.

Assertions stay on reason codes, counts, column names and exit codes, never on wording a
library might change: the line number of a CSV fault comes from DuckDB's message, so it is
checked only when the message states one (against the line Python's ``csv`` module finds).
"""

from __future__ import annotations

import csv
import hashlib
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from typer.testing import CliRunner

from retain.cli import EXIT_DATA, app
from retain.config import CsvOptions, TableSource, load_config
from retain.contracts import CUSTOMER_ID, NULL_VALUES, TRANSACTIONS
from retain.io import DataError, Inputs, _csv_error, load_inputs, read_table

AS_OF = "2020-12-31"
TX_HEADER = "customer_id,timestamp,amount"
GOOD_TX = f"{TX_HEADER}\nA,2020-01-01,10\nB,2020-02-01,20\n"


@dataclass
class Case:
    """One bad input file and what reading it must give."""

    table: str
    content: str | bytes | pa.Table
    used: int | None = None
    rejected: dict[str, int] = field(default_factory=dict)
    error: tuple[str, ...] = ()
    source: dict[str, Any] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)
    suffix: str = ".csv"
    check: Callable[[Inputs], None] | None = None
    line: Literal["record", "encoding"] | None = None
    """The fault is on one line: of the first misshapen record, or of the first bad byte."""


def _rows(header: str, rows: list[str]) -> str:
    return header + "\n" + "\n".join(rows) + "\n"


def _tx(*rows: str) -> str:
    return _rows(TX_HEADER, list(rows))


def _late_quotes(n_plain: int = 30_000) -> str:
    plain = [f"P{i},2020-01-01,1.5" for i in range(n_plain)]
    return _tx(
        *plain,
        '"Smith, John",2020-01-02,2',
        '"say ""hi""",2020-01-03,3',
        '"multi\nline",2020-01-04,4',
    )


def _parquet(**columns: pa.Array | list) -> pa.Table:
    return pa.table(columns)


def _ts(*days: str) -> pa.Array:
    return pa.array([np.datetime64(d, "us") for d in days], pa.timestamp("us"))


def _clean_ids(inputs: Inputs, table: str) -> list[str]:
    frame = getattr(inputs, table)
    ids = frame[CUSTOMER_ID] if CUSTOMER_ID in frame.columns else frame.index
    return [str(v) for v in ids]


def _values(table: str, column: str, expected: list) -> Callable[[Inputs], None]:
    def check(inputs: Inputs) -> None:
        assert getattr(inputs, table)[column].tolist() == expected

    return check


def _ids(table: str, expected: list[str]) -> Callable[[Inputs], None]:
    def check(inputs: Inputs) -> None:
        assert _clean_ids(inputs, table) == expected

    return check


NULL_ID_ROWS = [f"{spelling},2020-01-01,1" for spelling in NULL_VALUES] + [
    ",2020-01-01,1",
    '"",2020-01-01,1',
    "  NULL  ,2020-01-01,1",
    "ok,2020-01-01,1",
]

CASES: dict[str, Case] = {
    # ------------------------------------------------------------- CSV dialect
    "late_quoted_comma_doubled_quote_newline": Case(
        "transactions",
        _late_quotes(),
        used=30_002,
        rejected={"customer_id_invalid": 1},  # the id with a line break inside its quotes
    ),
    "utf8_bom": Case(
        "transactions",
        b"\xef\xbb\xbf" + GOOD_TX.encode(),
        used=2,
        check=_ids("transactions", ["A", "B"]),
    ),
    "latin1_with_encoding": Case(
        "transactions",
        _tx("José,2020-01-01,1", "Müller,2020-01-02,2").encode("latin-1"),
        used=2,
        source={"csv": {"encoding": "latin-1"}},
        check=_ids("transactions", ["José", "Müller"]),
    ),
    "latin1_without_encoding_is_refused": Case(
        "transactions",
        _tx("A,2020-01-01,1", "José,2020-01-01,1").encode("latin-1"),
        error=("transactions", "data.transactions.csv.encoding"),
        line="encoding",
    ),
    "latin1_header_without_encoding_is_refused": Case(
        "transactions",
        (TX_HEADER + ",Straße\nA,2020-01-01,1,x\n").encode("latin-1"),
        error=("transactions", "line 1", "data.transactions.csv.encoding"),  # read by retain
    ),
    "utf16_with_encoding": Case(
        "transactions",
        _tx("José,2020-01-01,1").encode("utf-16"),
        used=1,
        source={"csv": {"encoding": "utf-16"}},
        check=_ids("transactions", ["José"]),
    ),
    "semicolon_delimiter": Case(
        "transactions",
        "customer_id;timestamp;amount\nA;2020-01-01;1\nB;2020-01-02;2\n",
        used=2,
        source={"csv": {"delimiter": ";"}},
    ),
    "semicolon_file_read_as_comma_names_the_column": Case(
        "transactions",
        "customer_id;timestamp;amount\nA;2020-01-01;1\n",
        error=("transactions", "customer_id", "timestamp", "amount"),
    ),
    "tab_delimiter": Case(
        "transactions",
        "customer_id\ttimestamp\tamount\nA\t2020-01-01\t1\nB, Jr\t2020-01-02\t2\n",
        used=2,
        source={"csv": {"delimiter": "\t"}},
        check=_ids("transactions", ["A", "B, Jr"]),
    ),
    "decimal_comma": Case(
        "transactions",
        "customer_id;timestamp;amount\nA;2020-01-01;12,50\nB;2020-01-02;3\nC;2020-01-03;1.234,50\n",
        used=2,
        rejected={"amount_not_numeric": 1},  # a thousands separator is not guessed
        source={"csv": {"delimiter": ";", "decimal": ","}},
        check=_values("transactions", "amount", [12.5, 3.0]),
    ),
    "decimal_comma_without_the_option": Case(
        "transactions",
        _tx('A,2020-01-01,"12,50"', "B,2020-01-02,7.5"),
        used=1,
        rejected={"amount_not_numeric": 1},
        check=_values("transactions", "amount", [7.5]),
    ),
    "backslash_escape": Case(
        "transactions",
        _tx('"say \\"hi\\"",2020-01-01,1'),
        used=1,
        source={"csv": {"escape": "\\"}},
        check=_ids("transactions", ['say "hi"']),
    ),
    "row_with_an_extra_field": Case(
        "transactions",
        _tx("A,2020-01-01,1", "B,2020-01-01,2,3", "C,2020-01-01,1"),
        error=("transactions", "data.transactions.csv"),
        line="record",
    ),
    "row_with_a_missing_field": Case(
        "transactions",
        _tx("A,2020-01-01,1", "B,2020-01-01"),
        error=("transactions", "data.transactions.csv"),
        line="record",
    ),
    "unterminated_quote": Case(
        "transactions",
        _tx("A,2020-01-01,1", '"B,2020-01-01,1', "C,2020-01-01,1"),
        error=("transactions", "data.transactions.csv"),
        line="record",
    ),
    "blank_lines": Case(
        "transactions",
        TX_HEADER + "\nA,2020-01-01,1\n\n\nB,2020-01-02,2\n\n",
        used=2,
    ),
    "crlf_line_endings": Case(
        "transactions",
        GOOD_TX.replace("\n", "\r\n"),
        used=2,
        check=_values("transactions", "amount", [10.0, 20.0]),
    ),
    "trailing_delimiter_on_every_line": Case(
        "transactions",
        TX_HEADER + ",\nA,2020-01-01,1,\nB,2020-01-02,2,\n",
        used=2,
    ),
    "trailing_delimiter_on_data_rows_only": Case(
        "transactions",
        _tx("A,2020-01-01,1,", "B,2020-01-02,2,"),
        used=2,  # DuckDB reads an empty field after the last column as a line end: right
        check=_values("transactions", "amount", [1.0, 2.0]),
    ),
    "missing_header_column": Case(
        "transactions",
        "customer_id,timestamp\nA,2020-01-01\n",
        error=("transactions", "amount"),
    ),
    "repeated_header_column": Case(
        "transactions",
        "customer_id,timestamp,amount,amount\nA,2020-01-01,1,2\n",
        error=("transactions", "amount"),
    ),
    "empty_file": Case("transactions", "", error=("transactions", "0 rows")),
    "header_only": Case("transactions", TX_HEADER + "\n", error=("transactions", "0 rows")),
    "header_only_with_bom": Case(
        "transactions", b"\xef\xbb\xbf" + TX_HEADER.encode(), error=("transactions", "0 rows")
    ),
    # ------------------------------------------------------------------ ids
    "null_spellings_as_ids": Case(
        "transactions",
        _tx(*NULL_ID_ROWS),
        used=1,
        rejected={"customer_id_missing": len(NULL_ID_ROWS) - 1},
    ),
    "null_values_configured_off": Case(
        "transactions",
        _tx("NULL,2020-01-01,1", "-,2020-01-01,1", ",2020-01-01,1"),
        used=1,
        rejected={"customer_id_missing": 2},
        data={"null_values": ["-"]},
        check=_ids("transactions", ["NULL"]),
    ),
    "very_long_ids": Case(
        "transactions",
        _tx("x" * 256 + ",2020-01-01,1", "y" * 257 + ",2020-01-01,1", "z" * 5000 + ",2020-01-01,1"),
        used=1,
        rejected={"customer_id_invalid": 2},
    ),
    "max_id_length_configured": Case(
        "transactions",
        _tx("abcd,2020-01-01,1", "abcde,2020-01-01,1"),
        used=1,
        rejected={"customer_id_invalid": 1},
        data={"max_id_length": 4},
    ),
    "ids_with_control_characters": Case(
        "transactions",
        _tx(
            '"C1\nC2",2020-01-01,1', '"C\t3",2020-01-01,1', "C\x004,2020-01-01,1", "C5,2020-01-01,1"
        ),
        used=1,
        rejected={"customer_id_invalid": 3},
        check=_ids("transactions", ["C5"]),
    ),
    "ids_with_surrounding_spaces_and_line_breaks": Case(
        "transactions",
        _tx('" C1\n",2020-01-01,1', "C2 ,2020-01-02,1"),
        used=2,
        check=_ids("transactions", ["C1", "C2"]),
    ),
    # -------------------------------------------------------------- amounts
    "huge_amounts": Case(
        "transactions",
        _tx(
            "A,2020-01-01,1e308",
            "B,2020-01-01,-1e308",
            "C,2020-01-01,1000000001",
            "D,2020-01-01,1000000000",
            "E,2020-01-01,inf",
            "F,2020-01-01,1e999",
            "G,2020-01-01,nan",
        ),
        used=1,
        rejected={"amount_out_of_range": 3, "amount_not_numeric": 2, "amount_missing": 1},
    ),
    "max_amount_configured": Case(
        "transactions",
        _tx("A,2020-01-01,150", "B,2020-01-01,100", "C,2020-01-01,-150"),
        used=1,
        rejected={"amount_out_of_range": 2},  # the range check comes before the return check
        data={"max_amount": 100},
    ),
    "quantity_out_of_range_and_not_numeric": Case(
        "transactions",
        _rows(
            TX_HEADER + ",quantity",
            ["A,2020-01-01,1,1e12", "B,2020-01-01,1,inf", "C,2020-01-01,1,2", "D,2020-01-01,1,"],
        ),
        used=2,
        rejected={"quantity_out_of_range": 1, "quantity_not_numeric": 1},
    ),
    # ------------------------------------------------------------ timestamps
    "timestamps_outside_the_supported_range": Case(
        "transactions",
        _tx("A,2999-01-01,1", "B,1500-06-01,1", "C,2020-01-01,1", "D,NULL,1"),
        used=1,
        rejected={"timestamp_out_of_range": 2, "timestamp_missing": 1},
    ),
    "excel_serial_dates": Case(
        "transactions",
        _tx("A,45291,1", "B,45292.5,1", "C,45293,1", "D,45294,1"),
        error=("transactions", "timestamp_format", "45291", "45292.5", "45293"),
    ),
    "excel_style_dates_without_format": Case(
        "transactions",
        _tx("A,12/1/2010 8:26,1", "B,12/13/2010 18:26,1"),
        error=("transactions", "timestamp_format", "12/1/2010 8:26"),
    ),
    "excel_style_dates_with_format": Case(
        "transactions",
        _tx("A,12/1/2010 8:26,1", "B,12/13/2010 18:26,1", "C,2010-12-01,1"),
        used=2,
        rejected={"timestamp_unparseable": 1},
        source={"timestamp_format": "%m/%d/%Y %H:%M"},
        check=_values(
            "transactions",
            "timestamp",
            [pd.Timestamp("2010-12-01 08:26"), pd.Timestamp("2010-12-13 18:26")],
        ),
    ),
    "mixed_time_zones": Case(
        "transactions",
        _tx(
            "A,2020-01-01T10:00:00+01:00,1",
            "B,2020-01-01T10:00:00,1",
            "C,2020-06-01T10:00:00+02:00,1",
        ),
        error=("transactions", "timestamp"),
    ),
    "one_zone_for_all_rows": Case(
        "transactions",
        _tx("A,2020-01-01T10:00:00+02:00,1", "B,2020-01-02T00:30:00+02:00,1"),
        used=2,
        check=_values(
            "transactions",
            "timestamp",
            [pd.Timestamp("2020-01-01 08:00"), pd.Timestamp("2020-01-01 22:30")],
        ),
    ),
    # ---------------------------------------------------- duplicates, returns
    "duplicated_rows": Case(
        "transactions",
        _tx("A,2020-01-01,1", "A,2020-01-01,1", "A,2020-01-01 00:00:00,1.0", "A,2020-01-02,1"),
        used=2,
        rejected={"duplicate": 2},
    ),
    "negative_amounts_returns_drop": Case(
        "transactions",
        _tx("A,2020-01-01,10", "A,2020-01-02,-4", "B,2020-01-01,-1"),
        used=1,
        rejected={"return": 2},
    ),
    "negative_amounts_returns_net": Case(
        "transactions",
        _rows(
            TX_HEADER + ",order_id",
            [
                "A,2020-01-01,10,o1",
                "A,2020-01-02,-4,o1",
                "B,2020-01-01,5,o2",
                "B,2020-01-02,-5,o2",
                "C,2020-01-01,-1,",
                "D,2020-01-01,-1,NULL",
                "E,2020-01-01,3,o3",
            ],
        ),
        used=2,
        rejected={"return_netted": 1, "return_netted_to_zero": 2, "return_unmatched": 2},
        data={"returns": "net"},
        check=_values("transactions", "amount", [6.0, 3.0]),
    ),
    # ---------------------------------------------------------------- events
    "event_values_out_of_range": Case(
        "events",
        _rows(
            "customer_id,timestamp,event_type,value",
            [
                "A,2020-01-01,support_ticket,99",
                "A,2020-01-02,support_ticket,5",
                "A,2020-01-03,support_ticket,0",
                "B,2020-01-01,survey,-3",
                "B,2020-01-02,survey,10",
                "B,2020-01-03,survey,0",
                "C,2020-01-01,session,999",
                "C,2020-01-02,survey,",
            ],
        ),
        used=5,
        rejected={"value_out_of_range": 3},
    ),
    "unknown_and_null_event_types": Case(
        "events",
        _rows(
            "customer_id,timestamp,event_type",
            [
                "A,2020-01-01,Session",
                "A,2020-01-02,page_view",
                "A,2020-01-03,NULL",
                "B,2020-01-01,email_open ",
            ],
        ),
        used=3,
        rejected={"event_type_missing": 1},
    ),
    "events_timestamps_in_year_2999": Case(
        "events",
        _rows(
            "customer_id,timestamp,event_type",
            ["A,2999-01-01,session", "B,2020-01-01,session"],
        ),
        used=1,
        rejected={"timestamp_out_of_range": 1},
    ),
    # ------------------------------------------------------------- customers
    "signup_dates_in_the_future_and_far_future": Case(
        "customers",
        _rows(
            "customer_id,signup_date,acquisition_channel",
            [
                "A,2019-01-01,email",
                "B,2021-06-01,email",
                "C,2999-01-01,email",
                "D,someday,email",
                "E,,N/A",
            ],
        ),
        used=2,
        rejected={
            "signup_date_after_as_of": 1,
            "signup_date_out_of_range": 1,
            "signup_date_unparseable": 1,
        },
        check=_values("customers", "acquisition_channel", ["email", pd.NA]),
    ),
    "customers_repeated_and_null_ids": Case(
        "customers",
        _rows("customer_id,signup_date", ["A,2019-01-01", "A,2019-02-01", "None,2019-01-01"]),
        used=1,
        rejected={"customer_id_duplicate": 1, "customer_id_missing": 1},
    ),
    # --------------------------------------------------------------- Parquet
    "parquet_list_id": Case(
        "transactions",
        _parquet(
            customer_id=pa.array([["C0000000"], ["C0000001"]]),
            timestamp=_ts("2020-01-01", "2020-01-02"),
            amount=[1.0, 2.0],
        ),
        suffix=".parquet",
        error=("transactions", "customer_id"),
    ),
    "parquet_binary_id": Case(
        "transactions",
        _parquet(
            customer_id=pa.array([b"C0", b"C1"], pa.binary()),
            timestamp=_ts("2020-01-01", "2020-01-02"),
            amount=[1.0, 2.0],
        ),
        suffix=".parquet",
        error=("transactions", "customer_id"),
    ),
    "parquet_struct_id": Case(
        "transactions",
        _parquet(
            customer_id=pa.array([{"id": "C0"}, {"id": "C1"}]),
            timestamp=_ts("2020-01-01", "2020-01-02"),
            amount=[1.0, 2.0],
        ),
        suffix=".parquet",
        error=("transactions", "customer_id"),
    ),
    "parquet_list_amount_mapped_from_another_name": Case(
        "transactions",
        _parquet(
            customer_id=["C0", "C1"],
            timestamp=_ts("2020-01-01", "2020-01-02"),
            total=pa.array([[1.0], [2.0]]),
        ),
        suffix=".parquet",
        source={"columns": {"amount": "total"}},
        error=("transactions", "amount", "total"),
    ),
    "parquet_nested_extra_columns_in_duplicate_check": Case(
        "transactions",
        _parquet(
            customer_id=["C0", "C0", "C0", "C1"],
            timestamp=_ts("2020-01-01", "2020-01-01", "2020-01-01", "2020-01-01"),
            amount=[1.0, 1.0, 1.0, 1.0],
            tags=pa.array([["a", "b"], ["a", "b"], ["b", "a"], None]),
            meta=pa.array([{"k": 1}, {"k": 1}, {"k": 1}, {"k": 2}]),
            raw=pa.array([b"x", b"x", b"x", b"y"], pa.binary()),
        ),
        suffix=".parquet",
        used=3,
        rejected={"duplicate": 1},  # rows 0 and 1 agree in every column; row 2's list differs
    ),
    "parquet_timestamps_in_year_2999": Case(
        "transactions",
        _parquet(
            customer_id=["C0", "C1", "C2"],
            timestamp=_ts("2020-01-01", "2999-01-01", "2262-04-12"),
            amount=[1.0, 2.0, 3.0],
        ),
        suffix=".parquet",
        used=1,
        rejected={"timestamp_out_of_range": 2},
    ),
    "parquet_nan_inf_and_huge_amounts": Case(
        "transactions",
        _parquet(
            customer_id=["C0", "C1", "C2", "C3", "C4"],
            timestamp=_ts(*["2020-01-01"] * 5),
            amount=[1.0, float("nan"), float("inf"), -float("inf"), 1e308],
        ),
        suffix=".parquet",
        used=1,
        rejected={"amount_missing": 1, "amount_not_numeric": 2, "amount_out_of_range": 1},
    ),
    "parquet_integer_ids_and_string_null_spellings": Case(
        "transactions",
        _parquet(
            customer_id=["007", "NULL", "nan", "8"],
            timestamp=_ts(*["2020-01-01"] * 4),
            amount=pa.array([1, 2, 3, 4], pa.int64()),
        ),
        suffix=".parquet",
        used=2,
        rejected={"customer_id_missing": 2},
        check=_ids("transactions", ["007", "8"]),
    ),
    "parquet_map_id": Case(
        "transactions",
        _parquet(
            customer_id=pa.array(
                [[("id", "C0")], [("id", "C1")]], pa.map_(pa.string(), pa.string())
            ),
            timestamp=_ts("2020-01-01", "2020-01-02"),
            amount=[1.0, 2.0],
        ),
        suffix=".parquet",
        error=("transactions", "customer_id"),
    ),
    "parquet_fixed_size_list_amount": Case(
        "transactions",
        _parquet(
            customer_id=["C0", "C1"],
            timestamp=_ts("2020-01-01", "2020-01-02"),
            amount=pa.array([[1.0, 2.0], [3.0, 4.0]], pa.list_(pa.float64(), 2)),
        ),
        suffix=".parquet",
        error=("transactions", "amount"),
    ),
    "parquet_without_an_amount_column": Case(
        "transactions",
        _parquet(customer_id=["C0"], timestamp=_ts("2020-01-01"), price=[1.0]),
        suffix=".parquet",
        error=("transactions", "amount", "price"),
    ),
    "parquet_with_no_rows": Case(
        "transactions",
        _parquet(
            customer_id=pa.array([], pa.string()),
            timestamp=_ts(),
            amount=pa.array([], pa.float64()),
        ),
        suffix=".parquet",
        error=("transactions", "0 rows"),
    ),
    "text_file_named_parquet": Case(
        "transactions", GOOD_TX, suffix=".parquet", error=("transactions",)
    ),
    "mapped_source_column_absent": Case(
        "transactions",
        GOOD_TX,
        source={"columns": {"amount": "total"}},
        error=("transactions", "amount", "total"),
    ),
    "every_row_rejected": Case(
        "transactions",
        _tx("NULL,2020-01-01,1", ",2020-01-02,2", "N/A,2020-01-03,3"),
        error=("transactions", "customer_id", "3"),
    ),
    "timestamps_after_the_as_of_date": Case(
        "transactions",
        _tx("A,2020-12-31T23:59:59,1", "B,2021-01-01,1", "C,2021-06-01T00:00:00,1"),
        used=1,
        rejected={"timestamp_after_as_of": 2},
    ),
    "amounts_written_as_text": Case(
        "transactions",
        _tx("A,2020-01-01,ten", "B,2020-01-01,$5", "C,2020-01-01,5 EUR", "D,2020-01-01, 5 "),
        used=1,
        rejected={"amount_not_numeric": 3},
        check=_values("transactions", "amount", [5.0]),
    ),
    "header_names_padded_with_spaces": Case(
        "transactions",
        " customer_id , timestamp ,amount \nA,2020-01-01,1\n",
        used=1,
    ),
    "header_names_in_another_case": Case(
        "transactions",
        "Customer_ID,Timestamp,Amount\nA,2020-01-01,1\n",
        error=("transactions", "customer_id", "timestamp", "amount"),
    ),
    "events_without_an_event_type_column": Case(
        "events",
        _rows("customer_id,timestamp,value", ["A,2020-01-01,1"]),
        error=("events", "event_type"),
    ),
    "events_of_unknown_types_only": Case(
        "events",
        _rows("customer_id,timestamp,event_type", ["A,2020-01-01,click", "B,2020-01-01,visit"]),
        used=2,  # the vocabulary is open: every type is kept
    ),
    "customers_without_a_customer_id_column": Case(
        "customers",
        _rows("id,signup_date", ["A,2019-01-01"]),
        error=("customers", "customer_id"),
    ),
    "customers_signup_dates_in_mixed_zones": Case(
        "customers",
        _rows(
            "customer_id,signup_date",
            ["A,2019-01-01T10:00:00+01:00", "B,2019-01-01T10:00:00", "C,2019-07-01T10:00:00+02:00"],
        ),
        error=("customers", "signup_date"),
    ),
}


# ------------------------------------------------------------------------- runner


def _write(path: Path, content: str | bytes | pa.Table) -> Path:
    if isinstance(content, pa.Table):
        pq.write_table(content, path)
    elif isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8", newline="")
    return path


def _config(tmp_path: Path, case: Case, path: Path) -> Path:
    tables: dict[str, Any] = {case.table: {"path": str(path), **case.source}}
    if case.table != "transactions":
        tables["transactions"] = {"path": str(_write(tmp_path / "tx.csv", GOOD_TX))}
    data = {"source": "files", "observed_until": AS_OF, **tables, **case.data}
    run = {
        "name": "corpus",
        "data": data,
        "clv": {"calibration_end": "2020-06-30", "holdout_end": AS_OF},
    }
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump(run, allow_unicode=True))
    return config


_CODEC = {"utf-8": "utf-8-sig", "utf-16": "utf-16", "latin-1": "latin-1"}


def _python_reader(case: Case, handle) -> Any:
    """Python's ``csv.reader`` with the case's dialect (quote doubled unless an escape is set)."""
    options = CsvOptions(**case.source.get("csv", {}))
    doubled = options.escape == options.quote
    return csv.reader(
        handle,
        delimiter=options.delimiter,
        quotechar=options.quote,
        doublequote=doubled,
        escapechar=None if doubled else options.escape,
    )


def _codec(case: Case) -> str:
    return _CODEC[CsvOptions(**case.source.get("csv", {})).encoding]


def _independent_ids(case: Case, path: Path) -> list[str | None]:
    """The customer id of every data row, read without DuckDB (Python csv or pyarrow)."""
    if isinstance(case.content, pa.Table):
        return [None if v is None else str(v) for v in pq.read_table(path)[CUSTOMER_ID].to_pylist()]
    with path.open(encoding=_codec(case), newline="") as handle:
        reader = _python_reader(case, handle)
        header = [name.strip() for name in next(reader)]
        position = header.index(case.source.get("columns", {}).get(CUSTOMER_ID, CUSTOMER_ID))
        return [row[position] for row in reader if row]


def _expected_line(case: Case, path: Path) -> int:
    """The 1-based line of the fault, found without DuckDB.

    ``record``: where the first record with another number of fields than the header starts
    (Python's ``csv`` module). ``encoding``: the first line whose bytes do not decode.
    """
    if case.line == "encoding":
        with path.open("rb") as handle:
            for number, raw in enumerate(handle, start=1):
                try:
                    raw.decode(_codec(case))
                except UnicodeDecodeError:
                    return number
        raise AssertionError(f"{path.name} decodes as {_codec(case)}")
    with path.open(encoding=_codec(case), newline="") as handle:
        reader = _python_reader(case, handle)
        width = len(next(reader))
        start = reader.line_num + 1
        for row in reader:
            if row and len(row) != width:
                return start
            start = reader.line_num + 1
    raise AssertionError(f"every record of {path.name} has {width} fields")


def _stated_line(message: str, path: Path) -> int | None:
    """The line an error message states for ``path`` (``<path>, line <n>``), if any."""
    found = re.search(re.escape(path.name) + r", line ([\d,]+)", message)
    return int(found.group(1).replace(",", "")) if found else None


def _assert_accounting(case: Case, path: Path, inputs: Inputs) -> None:
    counts = inputs.counts[case.table]
    assert counts["rows_in"] == counts["rows_used"] + counts["rows_rejected"]
    ids = _independent_ids(case, path)
    assert counts["rows_in"] == len(ids)
    null_values = set(case.data.get("null_values", NULL_VALUES))
    named = {i.strip() for i in ids if i is not None and i.strip() and i.strip() not in null_values}
    rejects = inputs.rejects[inputs.rejects["table"] == case.table]
    seen = set(_clean_ids(inputs, case.table)) | {
        str(v).strip() for v in rejects[CUSTOMER_ID].dropna()
    }
    assert named <= seen, sorted(named - seen)[:5]


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input_is_read_right_or_rejected_with_a_reason(name, tmp_path):
    case = CASES[name]
    path = _write(tmp_path / f"{case.table}{case.suffix}", case.content)
    cfg = load_config(_config(tmp_path, case, path))
    if case.error:
        with pytest.raises(DataError) as err:
            load_inputs(cfg, AS_OF)
        message = str(err.value)
        for part in (path.name, *case.error):
            assert part in message, (part, message)
        stated = _stated_line(message, path)
        if case.line is not None and stated is not None:  # DuckDB's to state, Python's to find
            assert stated == _expected_line(case, path), message
        return
    inputs = load_inputs(cfg, AS_OF)
    counts = inputs.counts[case.table]
    assert counts["rows_used"] == case.used
    by_reason = {k.removeprefix("rejected_"): v for k, v in counts.items() if v}
    for key in ("rows_in", "rows_used", "rows_rejected"):
        by_reason.pop(key, None)
    assert by_reason == case.rejected
    _assert_accounting(case, path, inputs)
    if case.check is not None:
        case.check(inputs)


def _fingerprint(case: Case) -> str:
    content = case.content
    if isinstance(content, pa.Table):
        content = f"{content.schema}|{content.to_pydict()}"
    return repr((case.table, case.suffix, content, case.source, case.data))


def test_the_corpus_is_large_enough():
    distinct = {_fingerprint(case) for case in CASES.values()}
    assert len(distinct) == len(CASES) >= 60


def test_csv_error_hints_do_not_hang_on_duckdb_wording(tmp_path):
    """A DuckDB message stating no line and no encoding still gets the right hint."""
    options = CsvOptions()
    strange = duckdb.Error("a message DuckDB has not written before")
    latin = _write(tmp_path / "latin.csv", _tx("José,2020-01-01,1").encode("latin-1"))
    message = str(_csv_error("transactions", latin, options, strange))
    assert latin.name in message and "data.transactions.csv.encoding" in message
    assert _stated_line(message, latin) is None
    plain = _write(tmp_path / "plain.csv", GOOD_TX)
    message = str(_csv_error("transactions", plain, options, strange))
    assert plain.name in message and "data.transactions.csv" in message
    assert "csv.encoding" not in message and _stated_line(message, plain) is None


# ------------------------------------------------------- the late-quote file, value by value


def test_late_quoted_fields_read_as_pythons_csv_module_reads_them(tmp_path):
    path = _write(tmp_path / "late.csv", _late_quotes())
    raw = read_table(TableSource(path=path), TRANSACTIONS)
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        expected = pd.DataFrame(list(reader), columns=header)
    assert list(raw.columns) == header
    assert len(raw) == len(expected) == 30_003
    for column in header:
        assert raw[column].astype(object).tolist() == expected[column].tolist(), column
    assert raw[CUSTOMER_ID].tail(3).tolist() == ["Smith, John", 'say "hi"', "multi\nline"]


# ---------------------------------------------------------------------- through the CLI

ERROR_CASES = sorted(name for name, case in CASES.items() if case.error)
FEATURES_FOLDER = f"corpus/features/as_of={AS_OF}"


def _features(config: Path, root: Path) -> Any:
    args = ["features", "--config", str(config), "--as-of", AS_OF, "--output", str(root)]
    return CliRunner(env={"COLUMNS": "400"}).invoke(app, args)


def _snapshot(root: Path) -> dict[str, str]:
    """Relative path -> SHA-256 of every file under ``root`` (hidden ones too); folders too."""
    return {
        p.relative_to(root).as_posix(): "folder"
        if p.is_dir()
        else hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
    }


@pytest.fixture(scope="module")
def earlier_output(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An output root holding a good ``features`` run of config ``corpus`` as of AS_OF."""
    base = tmp_path_factory.mktemp("earlier")
    good = Case("transactions", GOOD_TX)
    config = _config(base, good, _write(base / "transactions.csv", GOOD_TX))
    root = base / "out"
    result = _features(config, root)
    assert result.exit_code == 0, result.output
    files = _snapshot(root)
    assert {f"{FEATURES_FOLDER}/features.parquet", f"{FEATURES_FOLDER}/rejects.parquet"} <= set(
        files
    )
    assert any(Path(name).name.startswith(".") for name in files)  # the marker: hidden, seen
    return root


@pytest.mark.parametrize("name", ERROR_CASES)
def test_cli_refuses_bad_input_and_leaves_the_earlier_output_alone(name, tmp_path, earlier_output):
    case = CASES[name]
    path = _write(tmp_path / f"{case.table}{case.suffix}", case.content)
    config = _config(tmp_path, case, path)  # the same config name and date: the same folder
    root = tmp_path / "out"
    shutil.copytree(earlier_output, root)
    before = _snapshot(root)

    result = _features(config, root)

    assert result.exit_code == EXIT_DATA, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    for part in (path.name, *case.error):
        assert part in lines[0], (part, lines[0])
    assert _snapshot(root) == before
