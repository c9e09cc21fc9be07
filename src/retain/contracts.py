"""Column contracts and the data errors: the names and types every table in retain is held to.

Loaders map source columns onto these names (see :mod:`retain.io.read`); everything downstream
speaks only these names. Per-customer tables are indexed by ``customer_id`` (string). Input that
cannot be held to its contract as a whole raises :class:`DataError`; single bad rows are
quarantined instead (:mod:`retain.validation`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

CUSTOMER_ID = "customer_id"
TIMESTAMP = "timestamp"


class DataError(ValueError):
    """The input data as a whole cannot be used (missing, empty, malformed or all bad)."""


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
    optional={"quantity": "float64", "order_id": "string", "item_id": "string"},
)

EVENT_ROLES = (
    "session",
    "email_sent",
    "email_open",
    "email_click",
    "support_ticket",
    "survey",
    "referral",
)
"""The semantic roles of engagement events: the types the engagement features give a meaning
(sessions, the e-mail funnel, satisfaction, NPS, referrals). ``support_ticket`` and ``survey``
carry a score in ``value`` (satisfaction 1-5 and NPS 0-10); the others leave ``value`` empty.

The event vocabulary is open: ``data.events.roles`` maps the source's own type names onto these
roles (``session: web_session``; by default each role is its own name), and every other type is
kept under its own name (stripped, lower case) and gets the generic per-type features of
:mod:`retain.features.engagement`. A type spelt like a role name is that role."""

EVENT_TYPES = EVENT_ROLES
"""Former name of :data:`EVENT_ROLES`, kept for the code that still imports it."""


def event_role_renames(roles: Mapping[str, str | Sequence[str]] | None) -> dict[str, str]:
    """Source event type name to role, from a ``data.events.roles`` mapping.

    Parameters
    ----------
    roles : mapping or None
        Role (one of :data:`EVENT_ROLES`) to the source's type name, or a list of names, for
        the roles the source spells differently (``{"session": "web_session"}``). Names are
        compared stripped and in lower case. None or empty: every role is its own name.

    Returns
    -------
    dict
        Only the renames (source name to role); a source name equal to its role is left out.

    Raises
    ------
    ValueError
        A key that is no role, an empty name, or one source name given for two roles.
    """
    out: dict[str, str] = {}
    for role, names in (roles or {}).items():
        if role not in EVENT_ROLES:
            raise ValueError(f"unknown event role {role!r}; the roles are {', '.join(EVENT_ROLES)}")
        for name in [names] if isinstance(names, str) else list(names):
            key = str(name).strip().lower()
            if not key:
                raise ValueError(f"event role {role!r}: empty type name")
            if key in EVENT_ROLES and key != role:
                raise ValueError(
                    f"event role {role!r}: {key!r} is the name of another role and always "
                    "means that role"
                )
            if out.get(key, role) != role:
                raise ValueError(f"event type {key!r} is given for two roles")
            if key != role:
                out[key] = role
    return out


EVENT_VALUE_RANGES: dict[str, tuple[float, float]] = {
    "support_ticket": (1.0, 5.0),
    "survey": (0.0, 10.0),
}
"""The documented range (inclusive) of ``value`` per event role: satisfaction 1-5 on a support
ticket, NPS 0-10 on a survey. A value outside it is rejected as ``value_out_of_range``; it
applies after the source's type names are mapped to roles (``data.events.roles``). Roles and
types not listed here have no range (their ``value`` is not used)."""

NULL_VALUES: tuple[str, ...] = (
    "NULL",
    "null",
    "None",
    "nan",
    "NaN",
    "NA",
    "N/A",
    "#N/A",
    "<NA>",
    "\\N",
)
"""Text values read as missing in every text column of a contract (exact, case-sensitive match
after stripping spaces): the spellings databases, pandas, R and Excel write for "no value".
A blank value is always missing. The default of ``data.null_values``."""

MAX_AMOUNT = 1e9
"""Default of ``data.max_amount``: the largest absolute ``amount`` (and ``quantity``) of one row."""

MAX_ID_LENGTH = 256
"""Default of ``data.max_id_length``: the longest ``customer_id`` accepted, in characters."""

NS_RANGE = ("1677-09-22", "2262-04-11")
"""The days a timestamp may fall on (pandas' nanosecond range, whole days), first and last."""

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
    "customer_id_invalid": "customer_id: control character or too long",
    "customer_id_duplicate": "customer_id: duplicate",
    "timestamp_missing": "timestamp: missing",
    "timestamp_unparseable": "timestamp: unparseable",
    "timestamp_out_of_range": f"timestamp: outside {NS_RANGE[0]} to {NS_RANGE[1]}",
    "timestamp_after_as_of": "timestamp: after the as-of date",
    "amount_missing": "amount: missing",
    "amount_not_numeric": "amount: not numeric",
    "amount_out_of_range": "amount: larger than data.max_amount",
    "quantity_not_numeric": "quantity: not numeric",
    "quantity_out_of_range": "quantity: larger than data.max_amount",
    "event_type_missing": "event_type: missing",
    "value_not_numeric": "value: not numeric",
    "value_out_of_range": "value: outside the range of its event type",
    "signup_date_unparseable": "signup_date: unparseable",
    "signup_date_out_of_range": f"signup_date: outside {NS_RANGE[0]} to {NS_RANGE[1]}",
    "signup_date_after_as_of": "signup_date: after the as-of date",
    "duplicate": "row: exact duplicate of an earlier row",
    "return": "amount: negative (return, dropped)",
    "return_netted": "amount: return netted into its order or earlier purchases",
    "return_netted_to_zero": "amount: purchase netted to zero or less by a return",
    "return_unmatched": "amount: return without a matching order or earlier purchase",
}
"""Every value of the rejects table's ``reason`` column, with a short "column: problem" text
used in messages and reports. Each rejected row carries the first reason that applies, in
this order of checks (missing or invalid id, timestamp, amount/type and their ranges, after
the as-of date, duplicate, return); :data:`retain.validation.TABLE_REASONS` holds the exact
order per table."""
