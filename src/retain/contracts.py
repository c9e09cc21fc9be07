"""Column contracts: the names and types every table in retain is held to.

Loaders map source columns onto these names (see :mod:`retain.io`); everything downstream
speaks only these names. Per-customer tables are indexed by ``customer_id`` (string).
"""

from __future__ import annotations

from dataclasses import dataclass

CUSTOMER_ID = "customer_id"
TIMESTAMP = "timestamp"


@dataclass(frozen=True)
class Contract:
    """The columns a table must and may carry, with their pandas dtypes.

    Attributes
    ----------
    name : str
        Table name used in messages (``transactions``, ``events``, ...).
    required : dict
        Column name to dtype for the columns that must be present.
    optional : dict
        Column name to dtype for columns that may be present.
    """

    name: str
    required: dict[str, str]
    optional: dict[str, str]

    @property
    def columns(self) -> list[str]:
        """All known columns, required first."""
        return [*self.required, *self.optional]


TRANSACTIONS = Contract(
    name="transactions",
    required={CUSTOMER_ID: "string", TIMESTAMP: "datetime64[ns]", "amount": "float64"},
    optional={"quantity": "float64", "order_id": "string"},
)

EVENT_TYPES = (
    "session",
    "email_sent",
    "email_open",
    "email_click",
    "support_ticket",
    "survey",
    "referral",
)
"""Known engagement event types. ``support_ticket`` and ``survey`` carry a score in
``value`` (satisfaction 1-5 and NPS 0-10); the others leave ``value`` empty."""

EVENTS = Contract(
    name="events",
    required={CUSTOMER_ID: "string", TIMESTAMP: "datetime64[ns]", "event_type": "string"},
    optional={"value": "float64"},
)

CUSTOMERS = Contract(
    name="customers",
    required={CUSTOMER_ID: "string"},
    optional={"signup_date": "datetime64[ns]", "acquisition_channel": "string"},
)

REJECT_COLUMNS = ("table", "row_number", CUSTOMER_ID, "reason")
"""Columns of the rejects table: one row per quarantined input row."""

REJECT_REASONS: dict[str, str] = {
    "customer_id_missing": "customer_id: missing",
    "customer_id_duplicate": "customer_id: duplicate",
    "timestamp_missing": "timestamp: missing",
    "timestamp_unparseable": "timestamp: unparseable",
    "timestamp_after_as_of": "timestamp: after the as-of date",
    "amount_missing": "amount: missing",
    "amount_not_numeric": "amount: not numeric",
    "quantity_not_numeric": "quantity: not numeric",
    "event_type_missing": "event_type: missing",
    "event_type_unknown": "event_type: unknown",
    "value_not_numeric": "value: not numeric",
    "signup_date_unparseable": "signup_date: unparseable",
    "signup_date_after_as_of": "signup_date: after the as-of date",
    "duplicate": "row: exact duplicate of an earlier row",
    "return": "amount: negative (return, dropped)",
    "return_netted": "amount: return netted into its order",
    "return_netted_to_zero": "amount: order netted to zero or less",
    "return_unmatched": "amount: return without a matching order",
}
"""Every value of the rejects table's ``reason`` column, with a short "column: problem" text
used in messages and reports. Each rejected row carries the first reason that applies, in
this order of checks (missing id, timestamp, amount/type, after the as-of date, duplicate,
return)."""
