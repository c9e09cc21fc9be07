"""What ``retain init`` sees in a user's files, and the config it proposes. Pure: no I/O.

- :func:`inspect_table` profiles a sample of one table (read as text): per column its type,
  null share and examples, and the role each column is guessed to play (``customer_id``,
  ``timestamp``, ``amount`` or ``quantity`` x unit price, ``order_id``, ``item_id``,
  ``event_type``, ``value``, ``signup_date``, ``acquisition_channel``), by name first and
  checked by content (a timestamp must parse, an amount must be numeric).
- :func:`detect_timestamp_format` finds the strftime format that parses every value; when a
  day-first and a month-first format both do (no day above 12 in the sample), the month-first
  one is chosen and a note asks the question.
- :func:`propose_split` places the churn horizon, the churn cutoffs, the CLV backtest window and
  the scoring date inside the data's span, by the one rule of
  :func:`retain.churn.dataset.auto_cutoffs` (what ``churn.train_cutoffs: auto`` resolves to).

Every decision carries its reason (:class:`Decision`), so that ``init`` can print what it chose
and why, and write the same reasons as comments into the config.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from retain.churn.dataset import auto_cutoffs, horizon_for_span
from retain.validation import float_formatted_ids

__all__ = [
    "ColumnProfile",
    "Decision",
    "SetupError",
    "TableProfile",
    "detect_timestamp_format",
    "inspect_table",
    "propose_split",
]


class SetupError(ValueError):
    """The files cannot be mapped to a config without the user's help (the message says how)."""


@dataclass(frozen=True)
class Decision:
    """One choice of ``init``: the config key, the value written and why."""

    key: str
    value: str
    why: str

    def line(self) -> str:
        """``key = value: why``, one line for the terminal."""
        return f"{self.key} = {self.value}: {self.why}"


@dataclass(frozen=True)
class ColumnProfile:
    """One column of a sample.

    Attributes
    ----------
    name : str
        The column's name in the file.
    kind : str
        ``empty``, ``integer``, ``number``, ``timestamp`` or ``text``.
    null_share : float
        Share of rows that are blank or missing.
    examples : tuple of str
        Up to three distinct present values, as written.
    n_distinct : int
        Distinct present values in the sample.
    timestamp_format : str or None
        For ``timestamp`` columns: the strftime format (None: ISO 8601).
    note : str or None
        For ``timestamp`` columns: the ambiguity left open (day-first vs month-first).
    """

    name: str
    kind: str
    null_share: float
    examples: tuple[str, ...]
    n_distinct: int
    timestamp_format: str | None = None
    note: str | None = None


@dataclass
class TableProfile:
    """What a sample of one table holds and the roles its columns are guessed to play.

    Attributes
    ----------
    name : str
        ``transactions``, ``events`` or ``customers``.
    n_rows : int
        Rows in the sample.
    columns : dict of str to ColumnProfile
        Per source column, in file order.
    roles : dict of str to str
        Contract name to source column, or to an expression for a derived numeric column
        (``amount: Quantity * UnitPrice``).
    decisions : list of Decision
        Why each role was given (and what was looked for but not found).
    currency_columns : list of str
        Numeric columns that look like money (by name, or values with two decimals).
    negative_amounts : int
        Sample rows whose amount is below zero (returns, cancellations).
    cancellation_orders : bool
        Whether the negative rows have order ids of their own (an ``order_id`` no purchase
        row shares, e.g. ``C536379``) rather than sharing their order with its purchases.
    integer_text_ids : bool
        Whether the customer ids are integers written as floats (``17850.0``).
    event_types : dict of str to int
        For events: rows per event type in the sample.
    """

    name: str
    n_rows: int
    columns: dict[str, ColumnProfile] = field(default_factory=dict)
    roles: dict[str, str] = field(default_factory=dict)
    decisions: list[Decision] = field(default_factory=list)
    currency_columns: list[str] = field(default_factory=list)
    negative_amounts: int = 0
    cancellation_orders: bool = False
    integer_text_ids: bool = False
    event_types: dict[str, int] = field(default_factory=dict)

    @property
    def timestamp_column(self) -> ColumnProfile | None:
        """The profile of the column playing ``timestamp`` (``signup_date`` for customers)."""
        role = "signup_date" if self.name == "customers" else "timestamp"
        column = self.roles.get(role)
        return self.columns.get(column) if column else None


# --------------------------------------------------------------------------- timestamps

_TIMES = ("%H:%M:%S", "%H:%M", "")
_MONTH_FIRST = tuple(f"%m/%d/%Y {t}".strip() for t in _TIMES) + tuple(
    f"%m/%d/%y {t}".strip() for t in _TIMES
)
_DAY_FIRST = tuple(f"%d/%m/%Y {t}".strip() for t in _TIMES) + tuple(
    f"%d/%m/%y {t}".strip() for t in _TIMES
)
_DAY_FIRST_OTHER = tuple(f"%d.%m.%Y {t}".strip() for t in _TIMES) + tuple(
    f"%d-%m-%Y {t}".strip() for t in _TIMES
)
_OTHER = ("%Y/%m/%d %H:%M:%S", "%Y/%m/%d %H:%M", "%Y/%m/%d", "%Y%m%d")


def _parses_all(values: pd.Series, fmt: str) -> bool:
    parsed = pd.to_datetime(values, format=fmt, errors="coerce")
    return bool(parsed.notna().all())


def detect_timestamp_format(values: Sequence[str] | pd.Series) -> tuple[str | None, str | None]:
    """The strftime format that parses every present value, and the ambiguity left open.

    Tried in order: ISO 8601 (the default: any ``YYYY-MM-DD[ HH:MM[:SS]]`` with or without a
    ``T`` or a zone), then month-first and day-first ``/`` dates with a 4- or 2-digit year,
    with seconds, minutes or no time (``%m/%d/%Y %H:%M`` reads ``12/1/2010 8:26``), day-first
    ``.`` and ``-`` dates, and ``%Y/%m/%d``. A value with a day above 12 in the first place
    rules month-first out, and in the second place day-first out. When both parse every
    value, the month-first format is returned with a note asking the question.

    Parameters
    ----------
    values : sequence of str
        Timestamps as written (blanks are ignored).

    Returns
    -------
    format : str or None
        The format; None for ISO 8601 (``timestamp_format`` left out) or when nothing parses.
    note : str or None
        None when the format is certain; else the question (both orders parse), or why no
        format was found.
    """
    text = pd.Series(pd.unique(pd.Series(values, dtype="object").dropna().astype(str).str.strip()))
    text = text[text != ""]
    if text.empty:
        return None, "no values to read a format from"
    iso = pd.to_datetime(text, format="ISO8601", errors="coerce")
    if iso.notna().all() and text.str.match(r"^\d{4}-\d{2}-\d{2}").all():
        return None, None
    month_first = next((f for f in _MONTH_FIRST if _parses_all(text, f)), None)
    day_first = next((f for f in _DAY_FIRST if _parses_all(text, f)), None)
    if month_first and day_first:
        example = text.iloc[0]
        return month_first, (
            f"every date here reads both month-first and day-first (e.g. {example!r}: no day "
            f"above 12 in the sample); month-first ({month_first}) was chosen. If the file is "
            f"day-first, set timestamp_format to {day_first!r}"
        )
    if month_first or day_first:
        return month_first or day_first, None
    for fmt in (*_DAY_FIRST_OTHER, *_OTHER):
        if _parses_all(text, fmt):
            return fmt, None
    example = text.iloc[0]
    return None, f"no known format reads every value (e.g. {example!r}); set timestamp_format"


# ------------------------------------------------------------------------------ columns


def _norm(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


_NAMES: dict[str, tuple[str, ...]] = {
    role: tuple(names.split())
    for role, names in {
        "customer_id": "customerid customer custid customerno customernumber clientid client "
        "userid user memberid accountid buyerid shopperid",
        "order_id": "invoiceno invoice invoiceid invoicenumber orderid orderno order "
        "ordernumber transactionid receiptid receiptno basketid",
        "item_id": "stockcode sku itemid productid product item articleid",
        "amount": "amount total totalamount revenue sales spend ordertotal totalprice "
        "netamount grossamount orderamount orderamt amt",
        "quantity": "quantity qty units numitems itemcount quantityordered",
        "unit_price": "unitprice price itemprice priceeach unitcost saleprice",
        "event_type": "eventtype event type kind action eventname",
        "value": "value score rating nps satisfaction",
        "acquisition_channel": "acquisitionchannel channel source utmsource",
    }.items()
}
"""Column names (lower case, letters and digits only) that give a role, best first."""
_CONTAINS = {"customer_id": ("customer", "client")}
_TIME_WORDS = ("date", "time", "timestamp", "datetime")
_SIGNUP_WORDS = ("signup", "created", "registered", "registration", "joined", "join")
_MONEY_WORDS = ("price", "amount", "total", "revenue", "sales", "spend", "cost", "value", "amt")


def _present(raw: pd.Series, null_values: Sequence[str]) -> pd.Series:
    text = raw.astype("string").str.strip()
    return text[text.notna() & (text != "") & ~text.isin(list(null_values))]


def _numbers(text: pd.Series, decimal: str) -> pd.Series:
    if decimal == ",":
        text = text.str.replace(".", "", regex=False).str.replace(",", ".", regex=False)
    return pd.to_numeric(text, errors="coerce")


def _profile_column(
    name: str, raw: pd.Series, decimal: str, null_values: Sequence[str]
) -> ColumnProfile:
    n = len(raw)
    if pd.api.types.is_datetime64_any_dtype(raw.dtype):
        present = raw.dropna()
        examples = tuple(str(v) for v in present.head(3))
        return ColumnProfile(
            name, "timestamp", 1 - len(present) / n if n else 1.0, examples, present.nunique()
        )
    present = _present(raw, null_values)
    null_share = 1 - len(present) / n if n else 1.0
    examples = tuple(str(v) for v in pd.unique(present)[:3])
    distinct = int(present.nunique())
    if present.empty:
        return ColumnProfile(name, "empty", null_share, examples, distinct)
    numbers = _numbers(present, decimal)
    if numbers.notna().mean() >= 0.99:
        whole = numbers.dropna()
        written_int = present.str.fullmatch(r"[+-]?\d+").fillna(False).all()
        kind = "integer" if written_int and bool((whole == np.round(whole)).all()) else "number"
        return ColumnProfile(name, kind, null_share, examples, distinct)
    if present.str.contains(r"\d[-/.]\d|\d:\d", regex=True).mean() >= 0.99:
        fmt, note = detect_timestamp_format(present)
        if fmt is not None or note is None:
            return ColumnProfile(name, "timestamp", null_share, examples, distinct, fmt, note)
    return ColumnProfile(name, "text", null_share, examples, distinct)


def _by_name(role: str, columns: dict[str, ColumnProfile], kinds: Sequence[str]) -> str | None:
    candidates = [c for c in columns.values() if c.kind in kinds]
    for wanted in _NAMES.get(role, ()):
        for col in candidates:
            if _norm(col.name) == wanted:
                return col.name
    for word in _CONTAINS.get(role, ()):
        for col in candidates:
            if word in _norm(col.name):
                return col.name
    return None


def _quote_name(name: str) -> str:
    """A column name as an expression operand: bare when it is a plain identifier."""
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        return name
    return '"' + name.replace('"', '""') + '"'


def _timestamp_role(columns: dict[str, ColumnProfile], words: Sequence[str]) -> str | None:
    stamps = [c for c in columns.values() if c.kind == "timestamp"]
    for col in stamps:
        if any(w in _norm(col.name) for w in words):
            return col.name
    return stamps[0].name if stamps and words is _TIME_WORDS else None


def inspect_table(
    frame_sample: pd.DataFrame,
    name: str,
    *,
    decimal: str = ".",
    null_values: Sequence[str] = ("NULL", "null", "None", "nan", "NaN", "NA", "N/A", "#N/A"),
) -> TableProfile:
    """Profile a sample of one table and guess the role of its columns.

    Roles are found by the column's name (``CustomerID``, ``customer_id``, ``client`` ...;
    ``InvoiceDate``; ``InvoiceNo``; ``amount``, ``total`` ... or else ``Quantity`` times
    ``UnitPrice``) and checked by content: ids may be any type but a timestamp, the timestamp
    must parse with one format (:func:`detect_timestamp_format`), amounts and quantities must
    be numeric.

    Parameters
    ----------
    frame_sample : DataFrame
        The first rows of the table, every column as text (or Parquet types).
    name : str
        ``transactions``, ``events`` or ``customers``.
    decimal : str
        Decimal separator of the numbers (``.`` or ``,``).
    null_values : sequence of str
        Spellings read as missing.

    Returns
    -------
    TableProfile
        The columns, the guessed roles and the reasons.

    Raises
    ------
    SetupError
        When a required column (customer id; timestamp and amount for transactions; timestamp
        and event type for events) cannot be found.
    """
    columns = {
        str(col): _profile_column(str(col), frame_sample[col], decimal, null_values)
        for col in frame_sample.columns
    }
    profile = TableProfile(name=name, n_rows=len(frame_sample), columns=columns)
    roles, why = profile.roles, profile.decisions
    key = f"data.{name}.columns"
    any_kind = ("integer", "number", "text")
    numeric = ("integer", "number")

    def found(role: str, column: str | None, reason: str) -> None:
        if column is not None:
            roles[role] = column
            why.append(Decision(f"{key}.{role}", column, reason))

    def missing(role: str) -> SetupError:
        seen = ", ".join(f"{c.name} ({c.kind})" for c in columns.values())
        return SetupError(
            f"{name}: no column looks like {role} (columns: {seen}); rename that column "
            f"in the file to {role!r} and run init again"
        )

    cid = _by_name("customer_id", columns, any_kind)
    if cid is None:
        raise missing("customer_id")
    share = columns[cid].null_share
    found(
        "customer_id",
        cid,
        f"by its name; {columns[cid].n_distinct:,} customers in the sample"
        + (
            f", {share:.1%} of rows without one (they are rejected as customer_id_missing)"
            if share > 0
            else ""
        ),
    )
    ids = frame_sample[cid]
    profile.integer_text_ids = not pd.api.types.is_datetime64_any_dtype(ids.dtype) and (
        float_formatted_ids(ids.astype("string"))
    )
    words = _SIGNUP_WORDS if name == "customers" else _TIME_WORDS
    stamp = _timestamp_role(columns, words)
    time_role = "signup_date" if name == "customers" else "timestamp"
    if stamp is None and name != "customers":
        raise missing("timestamp")
    if stamp is not None:
        fmt = columns[stamp].timestamp_format
        found(time_role, stamp, f"parses as {fmt or 'ISO 8601'} in every sampled row")
    if name == "transactions":
        _transaction_roles(profile, frame_sample, decimal, null_values, found)
        if "amount" not in roles:
            raise missing("amount")
    elif name == "events":
        etype = _by_name("event_type", columns, ("text",))
        if etype is None:
            raise missing("event_type")
        counts = _present(frame_sample[etype], null_values).value_counts()
        profile.event_types = {str(k): int(v) for k, v in counts.head(20).items()}
        found("event_type", etype, f"by its name; types: {', '.join(profile.event_types)}")
        found("value", _by_name("value", columns, numeric), "by its name; numeric")
    elif name == "customers":
        found(
            "acquisition_channel",
            _by_name("acquisition_channel", columns, ("text",)),
            "by its name",
        )
    money = [
        c.name
        for c in columns.values()
        if c.kind == "number"
        and (
            any(w in _norm(c.name) for w in _MONEY_WORDS)
            or all(re.fullmatch(r"-?\d+[.,]\d{2}", e) for e in c.examples)
        )
    ]
    profile.currency_columns = money
    return profile


def _transaction_roles(
    profile: TableProfile,
    frame: pd.DataFrame,
    decimal: str,
    null_values: Sequence[str],
    found: Callable[[str, str | None, str], None],
) -> None:
    """Amount (or quantity x unit price), quantity, order id, item id; negatives."""
    columns = profile.columns
    numeric = ("integer", "number")
    amount = _by_name("amount", columns, numeric)
    quantity = _by_name("quantity", columns, numeric)
    price = _by_name("unit_price", columns, numeric)
    if amount is not None:
        found("amount", amount, "by its name; numeric")
        values = _numbers(_present(frame[amount], null_values), decimal)
    elif quantity is not None and price is not None:
        expression = f"{_quote_name(quantity)} * {_quote_name(price)}"
        found("amount", expression, f"no amount column: {quantity} times {price} per row")
        q = _numbers(frame[quantity].astype("string").str.strip(), decimal)
        p = _numbers(frame[price].astype("string").str.strip(), decimal)
        values = (q * p).dropna()
    else:
        return
    if quantity is not None:
        found("quantity", quantity, "by its name; numeric")
    order = _by_name("order_id", columns, ("integer", "number", "text"))
    found("order_id", order, "by its name")
    item = _by_name("item_id", columns, ("integer", "number", "text"))
    found("item_id", item, "by its name")
    negative = values < 0
    profile.negative_amounts = int(negative.sum())
    if profile.negative_amounts and order is not None:
        orders = frame[order].astype("string").str.strip()
        neg_orders = set(orders.loc[negative[negative].index].dropna())
        pos_orders = set(orders.loc[negative[~negative].index].dropna())
        profile.cancellation_orders = not (neg_orders & pos_orders)


# -------------------------------------------------------------------------------- split


def propose_split(
    first_day: dt.date | pd.Timestamp, last_day: dt.date | pd.Timestamp
) -> dict[str, object]:
    """Horizon, churn cutoffs, CLV backtest window and scoring date for the data's span.

    - ``data.observed_until`` and ``scoring.as_of``: the last day of the data;
    - ``churn.horizon_days``: :func:`retain.churn.dataset.horizon_for_span` (the longest of
      182, 90 and 30 days that fits four times into the span: 182 for two years or more, 90
      for about a year, 30 for four months or more);
    - the churn cutoffs: :func:`retain.churn.dataset.auto_cutoffs` (test = last day - H,
      validation half a horizon before it, training cutoffs a horizon apart before that),
      checked with :func:`retain.churn.dataset.make_time_split`;
    - ``clv.holdout_end`` the last day, ``clv.calibration_end`` half the span before it (at
      most a year).

    Parameters
    ----------
    first_day, last_day : date
        First and last day of the data.

    Returns
    -------
    dict
        Dotted config key to value (dates as :class:`datetime.date`, ``train_cutoffs`` a list),
        and ``"decisions"``: a list of :class:`Decision` saying why.

    Raises
    ------
    SetupError
        When the span is too short for a churn model (under 120 days).
    """
    first = pd.Timestamp(first_day).normalize()
    last = pd.Timestamp(last_day).normalize()
    span = int((last - first).days)
    try:
        horizon = horizon_for_span(span)
        split = auto_cutoffs(first, last, horizon)
    except ValueError as exc:
        raise SetupError(str(exc)) from None
    holdout = min(span // 2, 365)
    calibration_end = (last - pd.Timedelta(days=holdout)).date()
    train = [c.date() for c in split.train_cutoffs]
    overlap = split.validation_test_overlap_days
    decisions = [
        Decision(
            "data.observed_until",
            last.date().isoformat(),
            f"the last day of the data (first {first.date()}, {span} days)",
        ),
        Decision(
            "churn.horizon_days",
            str(horizon),
            f"the longest of 182/90/30 days that fits four times into {span} days",
        ),
        Decision(
            "churn.test_cutoff",
            split.test_cutoff.date().isoformat(),
            f"the latest cutoff whose {horizon}-day label window ends inside the data",
        ),
        Decision(
            "churn.validation_cutoff",
            split.validation_cutoff.date().isoformat(),
            f"half a horizon before the test cutoff (windows overlap by {overlap} days, "
            "allowed: it only stops boosting and calibrates)",
        ),
        Decision(
            "churn.train_cutoffs",
            ", ".join(c.isoformat() for c in train),
            "a horizon apart, the last one's window ending on the test cutoff, each after at "
            "least 30 days of data",
        ),
        Decision(
            "clv.calibration_end",
            calibration_end.isoformat(),
            f"a {holdout}-day holdout to the last day (half the span, at most a year)",
        ),
        Decision("scoring.as_of", last.date().isoformat(), "score as of the last day of data"),
    ]
    return {
        "data.observed_until": last.date(),
        "churn.horizon_days": horizon,
        "churn.train_cutoffs": train,
        "churn.validation_cutoff": split.validation_cutoff.date(),
        "churn.test_cutoff": split.test_cutoff.date(),
        "clv.calibration_end": calibration_end,
        "clv.holdout_end": last.date(),
        "scoring.as_of": last.date(),
        "decisions": decisions,
    }
