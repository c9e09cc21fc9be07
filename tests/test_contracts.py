"""Column contracts, and one conformance test run over every data source."""

from __future__ import annotations

import pandas as pd
import pytest

from retain.config import RunConfig
from retain.contracts import (
    CUSTOMER_ID,
    CUSTOMERS,
    EVENT_TYPES,
    EVENT_VALUE_RANGES,
    EVENTS,
    NS_RANGE,
    NULL_VALUES,
    REJECT_COLUMNS,
    REJECT_REASONS,
    TRANSACTIONS,
    Contract,
)
from retain.io import TABLE_REASONS, Inputs, load_inputs


def assert_conforms(frame: pd.DataFrame, contract: Contract, indexed: bool = False) -> None:
    """Every required column present, every known column with the contract's dtype."""
    columns = {str(c): str(t) for c, t in frame.dtypes.items()}
    if indexed:
        assert frame.index.name == CUSTOMER_ID
        assert frame.index.is_unique
        columns[CUSTOMER_ID] = str(frame.index.dtype)
    for name in contract.required:
        assert name in columns, f"{contract.name}: {name} missing"
    for name, dtype in {**contract.required, **contract.optional}.items():
        if name in columns:
            assert columns[name] == dtype, f"{contract.name}.{name}: {columns[name]} != {dtype}"
    assert frame[CUSTOMER_ID].notna().all() if not indexed else frame.index.notna().all()


def test_contracts_are_well_formed():
    for contract in (TRANSACTIONS, EVENTS, CUSTOMERS):
        assert contract.required[CUSTOMER_ID] == "string"
        assert not set(contract.required) & set(contract.optional)
        assert contract.columns[: len(contract.required)] == list(contract.required)
    assert len(set(EVENT_TYPES)) == len(EVENT_TYPES)
    assert all(t == t.strip().lower() for t in EVENT_TYPES)
    assert REJECT_COLUMNS == ("table", "row_number", "customer_id", "reason")


def test_every_reject_reason_is_described_and_used():
    used = {reason for reasons in TABLE_REASONS.values() for reason in reasons}
    assert used == set(REJECT_REASONS)
    for table, reasons in TABLE_REASONS.items():
        assert len(set(reasons)) == len(reasons), table
    for text in REJECT_REASONS.values():
        column, _, problem = text.partition(": ")
        assert column and problem


def config(data: dict) -> RunConfig:
    return RunConfig.model_validate(
        {
            "name": "contracts",
            "data": data,
            "clv": {"calibration_end": "1997-09-30", "holdout_end": "1998-06-30"},
        }
    )


SOURCES = {
    "cdnow_sample": ({"source": "cdnow_sample"}, "1998-06-30"),
    "synthetic": (
        {
            "source": "synthetic",
            "synthetic": {"n_customers": 200, "start": "2022-01-01", "end": "2022-12-31"},
        },
        "2022-09-30",
    ),
}


@pytest.mark.parametrize("source", sorted(SOURCES))
def test_every_source_loads_into_the_contracts(source):
    data, as_of = SOURCES[source]
    inputs: Inputs = load_inputs(config(data), as_of)
    assert_conforms(inputs.transactions, TRANSACTIONS)
    assert (inputs.transactions["timestamp"] < pd.Timestamp(as_of) + pd.Timedelta(days=1)).all()
    if inputs.events is not None:
        assert_conforms(inputs.events, EVENTS)
        assert inputs.events["event_type"].isin(EVENT_TYPES).all()
    if inputs.customers is not None:
        assert_conforms(inputs.customers, CUSTOMERS, indexed=True)
    assert list(inputs.rejects.columns) == list(REJECT_COLUMNS)
    for table, counts in inputs.counts.items():
        assert counts["rows_in"] == counts["rows_used"] + counts["rows_rejected"], table
        assert counts["rows_rejected"] == (inputs.rejects["table"] == table).sum()


def test_value_ranges_and_limits_are_data_about_known_things():
    assert set(EVENT_VALUE_RANGES) <= set(EVENT_TYPES)
    assert EVENT_VALUE_RANGES["support_ticket"] == (1.0, 5.0)
    assert EVENT_VALUE_RANGES["survey"] == (0.0, 10.0)
    for low, high in EVENT_VALUE_RANGES.values():
        assert low < high
    assert all(v == v.strip() and v for v in NULL_VALUES)
    assert len(set(NULL_VALUES)) == len(NULL_VALUES)
    first, last = (pd.Timestamp(day) for day in NS_RANGE)
    assert pd.Timestamp.min < first and last + pd.Timedelta(hours=23) < pd.Timestamp.max


def test_each_table_checks_ids_before_anything_else_and_ranges_after_parsing():
    for table, reasons in TABLE_REASONS.items():
        assert reasons[:2] == ("customer_id_missing", "customer_id_invalid"), table
        for reason in reasons:
            if reason.endswith("_out_of_range"):
                column = reason.removesuffix("_out_of_range")
                parse = (
                    f"{column}_not_numeric"
                    if column in ("amount", "quantity", "value")
                    else (f"{column}_unparseable")
                )
                assert reasons.index(parse) < reasons.index(reason), (table, reason)
