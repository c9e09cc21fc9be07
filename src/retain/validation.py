"""Validation at the boundary: pure row checks and quarantine per contract.

:func:`validate_transactions`, :func:`validate_events` and :func:`validate_customers` turn a raw
table into a clean table in the contract of :mod:`retain.contracts` plus a rejects table
(``table, row_number, customer_id, reason``). Nothing is lost silently: every input row is either
used or rejected with one reason (see :data:`retain.contracts.REJECT_REASONS`; the order of the
checks per table is :data:`TABLE_REASONS`), and ``rows_in == rows_used + rows_rejected`` is
checked every time. Problems with the input as a whole (no rows, a missing required column,
every row bad, mixed time zones) raise one :class:`retain.contracts.DataError` naming the table,
the column, the problem, the row counts and, where a setting fixes it, the setting.

Time zones: a timestamp column whose values all carry the same UTC offset is converted to UTC
and the zone is dropped; all timestamps downstream are tz-naive. A column that mixes zone-aware
and naive values, or different offsets, is refused (a zone observing daylight saving time shows
two offsets: convert such data to UTC before loading).

The functions here read and write nothing: frames in, frames out. The module is longer than
~600 lines because it is one idea, the row checks of the three contracts: they share the value
parsers, the id and timestamp checks and :class:`_Quarantine`, and half of its lines are the
docstrings that state each table's checks in order.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

import numpy as np
import pandas as pd

from retain.contracts import (
    CUSTOMER_ID,
    CUSTOMERS,
    EVENT_VALUE_RANGES,
    EVENTS,
    MAX_AMOUNT,
    MAX_ID_LENGTH,
    NS_RANGE,
    NULL_VALUES,
    REJECT_COLUMNS,
    REJECT_REASONS,
    TIMESTAMP,
    TRANSACTIONS,
    Contract,
    DataError,
    event_role_renames,
)
from retain.timeline import DateLike, cutoff_end

ReturnsPolicy = Literal["drop", "net", "net_earlier"]
DuplicatesPolicy = Literal["drop", "keep"]
IdNormalisation = Literal["none", "integer_text"]

TABLE_REASONS: dict[str, tuple[str, ...]] = {
    TRANSACTIONS.name: (
        "customer_id_missing",
        "customer_id_invalid",
        "timestamp_missing",
        "timestamp_unparseable",
        "timestamp_out_of_range",
        "amount_missing",
        "amount_not_numeric",
        "amount_out_of_range",
        "quantity_not_numeric",
        "quantity_out_of_range",
        "timestamp_after_as_of",
        "duplicate",
        "return",
        "return_unmatched",
        "return_netted_to_zero",
        "return_netted",
    ),
    EVENTS.name: (
        "customer_id_missing",
        "customer_id_invalid",
        "timestamp_missing",
        "timestamp_unparseable",
        "timestamp_out_of_range",
        "event_type_missing",
        "value_not_numeric",
        "value_out_of_range",
        "timestamp_after_as_of",
        "duplicate",
    ),
    CUSTOMERS.name: (
        "customer_id_missing",
        "customer_id_invalid",
        "signup_date_unparseable",
        "signup_date_out_of_range",
        "signup_date_after_as_of",
        "customer_id_duplicate",
    ),
}
"""The reasons each table can reject a row for, in the order the checks run (first wins)."""

__all__ = [
    "TABLE_REASONS",
    "DateLike",
    "DuplicatesPolicy",
    "ReturnsPolicy",
    "IdNormalisation",
    "empty_rejects",
    "float_formatted_ids",
    "normalise_ids",
    "rejected_share_warnings",
    "row_counts",
    "validate_customers",
    "validate_events",
    "validate_transactions",
]

_NS_FIRST = pd.Timestamp(NS_RANGE[0])
_NS_MAX = pd.Timestamp.max
_RETURN_TOLERANCE = 1e-9

# ------------------------------------------------------------------- value parsing


def _as_string(values: pd.Series) -> pd.Series:
    """Values as the pandas ``string`` dtype (NA where missing), by position.

    Integral floats (ids read from a numeric column with gaps) lose their ``.0``.
    """
    values = values.reset_index(drop=True)
    if pd.api.types.is_float_dtype(values.dtype):
        finite = values.dropna().to_numpy(dtype=float)
        if len(finite) and np.isfinite(finite).all() and (np.mod(finite, 1) == 0).all():
            values = values.astype("Int64")
    return values.astype("string")


def _clean_text(values: pd.Series, null_values: Sequence[str] = ()) -> pd.Series:
    """Stripped text, NA for missing or blank values and for any of ``null_values``."""
    text = _as_string(values).str.strip()
    absent = text.eq("") | text.isin(list(null_values)) if null_values else text.eq("")
    return text.mask(absent.fillna(False).astype(bool))


def _parse_numbers(
    values: pd.Series, null_values: Sequence[str] = (), decimal: str = "."
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Floats from raw values: (values, missing, not_numeric); non-finite counts as bad.

    With ``decimal=","`` text such as ``12,50`` is read as 12.5 and text holding a ``.`` is
    not numeric (it would be a thousands separator, and guessing it is the error this option
    exists to avoid). Numeric columns (Parquet) are taken as they are.
    """
    if pd.api.types.is_numeric_dtype(values.dtype) and not pd.api.types.is_bool_dtype(values.dtype):
        out = values.to_numpy(dtype=float, na_value=np.nan)
        missing = np.isnan(out)
        bad = ~missing & ~np.isfinite(out)
    else:
        text = _clean_text(values, null_values)
        missing = text.isna().to_numpy(dtype=bool)
        bad = np.zeros(len(text), dtype=bool)
        if decimal != ".":
            bad = text.str.contains(".", regex=False).fillna(False).to_numpy(dtype=bool)
            text = text.str.replace(decimal, ".", regex=False)
        out = pd.to_numeric(text, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        bad = ~missing & (bad | ~np.isfinite(out))
    out = np.where(bad | ~np.isfinite(out), np.nan, out)
    return out, missing, bad


_CONTROL = r"[\x00-\x1f\x7f-\x9f\u2028\u2029]"


def _invalid_ids(cid: pd.Series, max_id_length: int) -> np.ndarray:
    """Ids (already stripped) holding a control character or longer than ``max_id_length``."""
    bad = cid.str.contains(_CONTROL, regex=True) | cid.str.len().gt(max_id_length)
    return bad.fillna(False).to_numpy(dtype=bool)


def _out_of_range(values: np.ndarray, limit: float) -> np.ndarray:
    """Finite values whose absolute value exceeds ``limit`` (NaN is not out of range)."""
    with np.errstate(invalid="ignore"):
        return np.abs(values) > limit


_TZ_PATTERN = r"\d{1,2}:\d{2}(?::\d{2}(?:[.,]\d*)?)?\s*(?P<tz>Z|UTC|GMT|[+-]\d{2}(?::?\d{2})?)$"


def _zone_counts(text: pd.Series, fmt: str | None) -> pd.Series:
    """Rows per UTC offset (``naive`` for none) among the parseable timestamp strings."""
    parseable = pd.to_datetime(text, format=fmt or "ISO8601", errors="coerce", utc=True).notna()
    tz = text[parseable.to_numpy(dtype=bool)].str.extract(_TZ_PATTERN, expand=False)
    digits = tz.replace({"Z": "+00:00", "UTC": "+00:00", "GMT": "+00:00"})
    digits = digits.str.replace(":", "", regex=False)
    hours_only = digits.str.len().eq(3).fillna(False).astype(bool)
    digits = digits.mask(hours_only, digits + "00")
    label = (digits.str.slice(0, 3) + ":" + digits.str.slice(3, 5)).fillna("naive")
    return label.replace("-00:00", "+00:00").value_counts()


def _rows(n: int) -> str:
    return f"{n:,} row" if n == 1 else f"{n:,} rows"


def _mixed_zone_error(table: str, column: str, counts: pd.Series) -> DataError:
    parts = [
        f"{_rows(n)} without a time zone" if zone == "naive" else f"{_rows(n)} at UTC{zone}"
        for zone, n in sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    ]
    return DataError(
        f"{table}: column {column!r} mixes time zones ({', '.join(parts)}); "
        "convert the timestamps to one zone (e.g. UTC) before loading"
    )


def _parse_timestamps(
    values: pd.Series,
    table: str,
    column: str,
    fmt: str | None,
    null_values: Sequence[str] = (),
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Timestamps from raw values: (datetime64[ns] with NaT, missing, unparseable, out_of_range).

    Naive values are kept; values that all carry one UTC offset are converted to UTC and the
    zone is dropped. Mixed zones raise :class:`DataError`. A value that parses but falls
    outside :data:`retain.contracts.NS_RANGE` (a year 2999 placeholder, say) is out of range,
    not unparseable; it becomes NaT in the returned values.
    """
    values = values.reset_index(drop=True)
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        parsed = values.dt.tz_convert("UTC").dt.tz_localize(None)
        missing = parsed.isna().to_numpy(dtype=bool)
    elif pd.api.types.is_datetime64_dtype(values.dtype):
        parsed = values
        missing = parsed.isna().to_numpy(dtype=bool)
    else:
        text = _clean_text(values, null_values)
        missing = text.isna().to_numpy(dtype=bool)
        try:
            parsed = pd.to_datetime(text, format=fmt or "ISO8601", errors="coerce")
        except (ValueError, TypeError) as exc:
            counts = _zone_counts(text, fmt)
            if len(counts) > 1:
                raise _mixed_zone_error(table, column, counts) from exc
            if "naive" in counts:
                raise DataError(f"{table}: column {column!r} cannot be parsed: {exc}") from exc
            # one offset written in different ways (``Z`` and ``+00:00``)
            parsed = pd.to_datetime(text, format=fmt or "ISO8601", errors="coerce", utc=True)
        if isinstance(parsed.dtype, pd.DatetimeTZDtype):
            parsed = parsed.dt.tz_convert("UTC").dt.tz_localize(None)
    found = parsed.notna().to_numpy(dtype=bool)
    in_range = ((parsed >= _NS_FIRST) & (parsed <= _NS_MAX)).fillna(False).astype(bool)
    parsed = parsed.where(in_range)
    out = parsed.to_numpy(dtype="datetime64[ns]")
    out_of_range = found & ~in_range.to_numpy(dtype=bool)
    unparseable = ~missing & ~found
    return out, missing, unparseable, out_of_range


# -------------------------------------------------------------------- quarantine


_HINTS = {
    "timestamp_unparseable": "set data.{table}.timestamp_format to the strftime format of the "
    "file (e.g. '%m/%d/%Y %H:%M' for 12/1/2010 8:26; the values did not match the format in "
    "use: that key if set, else ISO 8601); a plain number is an Excel serial date: export the "
    "column as text dates",
    "signup_date_unparseable": "set data.{table}.timestamp_format to the strftime format of "
    "the file (e.g. '%m/%d/%Y'); without it dates must be ISO 8601",
    "amount_not_numeric": "check data.{table}.csv.decimal ('.' or ',') against the file",
    "amount_out_of_range": "amounts larger than data.max_amount are refused; raise it if "
    "they are real",
}
"""What to do when every row of a table is rejected, for the reasons a setting can fix."""


_WHOLE_TABLE: contextvars.ContextVar[bool] = contextvars.ContextVar("whole_table", default=True)


@contextlib.contextmanager
def table_parts() -> Iterator[None]:
    """Validate parts of tables (a partition of the customers): a part whose rows are all
    rejected is no error there; the caller checks the whole table (:func:`check_rows_used`)."""
    token = _WHOLE_TABLE.set(False)
    try:
        yield
    finally:
        _WHOLE_TABLE.reset(token)


def check_rows_used(counts: dict[str, dict[str, int]]) -> None:
    """Raise when a whole table had rows and none was used (the check of a table's parts).

    Parameters
    ----------
    counts : dict
        Per table, :func:`row_counts` summed over the parts.

    Raises
    ------
    DataError
        Naming the table and its reasons with their counts.
    """
    for table, c in counts.items():
        if c.get("rows_in", 0) and not c.get("rows_used", 0):
            found = [
                f"{REJECT_REASONS[r]} {c['rejected_' + r]:,}"
                for r in TABLE_REASONS[table]
                if c.get("rejected_" + r)
            ]
            hints = [
                _HINTS[r].format(table=table)
                for r in TABLE_REASONS[table]
                if c.get("rejected_" + r) and r in _HINTS
            ]
            advice = "".join(f"; {hint}" for hint in hints)
            raise DataError(
                f"{table}: all {c['rows_in']:,} rows were rejected ({'; '.join(found)}){advice}"
            )


class _Quarantine:
    """One reject code per row; the first reason that applies wins."""

    def __init__(self, table: str, n_rows: int) -> None:
        self.table = table
        self.reasons = TABLE_REASONS[table]
        self.code = np.zeros(n_rows, dtype=np.int16)
        self.examples: dict[str, list[str]] = {}

    @property
    def ok(self) -> np.ndarray:
        return self.code == 0

    def reject(
        self, mask: np.ndarray | pd.Series, reason: str, values: pd.Series | None = None
    ) -> None:
        """Reject the ``mask`` rows not yet rejected; keep up to 3 of their raw ``values``."""
        m = np.asarray(mask, dtype=bool) & (self.code == 0)
        self.code[m] = self.reasons.index(reason) + 1
        if values is not None and m.any():
            shown = values.reset_index(drop=True)[m].astype("string").drop_duplicates()
            self.examples[reason] = [repr(str(v)) for v in shown.head(3)]

    def rejects(self, raw_ids: pd.Series) -> pd.DataFrame:
        rows = np.flatnonzero(self.code)
        reason_names = np.array(("",) + self.reasons, dtype=object)
        return pd.DataFrame(
            {
                "table": pd.array([self.table] * len(rows), dtype="string"),
                "row_number": rows.astype(np.int64),
                CUSTOMER_ID: _as_string(raw_ids.iloc[rows]),
                "reason": pd.array(reason_names[self.code[rows]], dtype="string"),
            }
        )

    def finish(self, rows_in: int, clean: pd.DataFrame, rejects: pd.DataFrame) -> None:
        counts = row_counts(self.table, rows_in, clean, rejects)
        if counts["rows_in"] != counts["rows_used"] + counts["rows_rejected"]:
            raise AssertionError(
                f"{self.table}: row balance broken: {counts['rows_in']} in, "
                f"{counts['rows_used']} used, {counts['rows_rejected']} rejected"
            )
        if counts["rows_used"] == 0 and _WHOLE_TABLE.get():
            found = [r for r in self.reasons if counts["rejected_" + r]]
            parts = []
            for r in found:
                part = f"{REJECT_REASONS[r]} {counts['rejected_' + r]:,}"
                if r in self.examples:
                    part += f", e.g. {', '.join(self.examples[r])}"
                parts.append(part)
            hints = [_HINTS[r].format(table=self.table) for r in found if r in _HINTS]
            advice = "".join(f"; {hint}" for hint in hints)
            raise DataError(
                f"{self.table}: all {rows_in:,} rows were rejected ({'; '.join(parts)}){advice}"
            )


def empty_rejects() -> pd.DataFrame:
    """A rejects table with no rows and the contract's columns and dtypes.

    Returns
    -------
    DataFrame
        Columns ``table``, ``row_number``, ``customer_id``, ``reason``.
    """
    return pd.DataFrame(
        {
            "table": pd.array([], dtype="string"),
            "row_number": np.array([], dtype=np.int64),
            CUSTOMER_ID: pd.array([], dtype="string"),
            "reason": pd.array([], dtype="string"),
        }
    )[list(REJECT_COLUMNS)]


def row_counts(
    table: str, rows_in: int, clean: pd.DataFrame, rejects: pd.DataFrame
) -> dict[str, int]:
    """Row accounting for one validated table.

    Parameters
    ----------
    table : str
        ``transactions``, ``events`` or ``customers``.
    rows_in : int
        Number of raw input rows.
    clean : DataFrame
        The clean table returned by validation.
    rejects : DataFrame
        The rejects table returned by validation (rows of other tables are ignored).

    Returns
    -------
    dict
        ``rows_in``, ``rows_used``, ``rows_rejected`` and ``rejected_<reason>`` for every
        reason the table can reject for (zeros included, so the keys are stable).
    """
    mine = rejects.loc[rejects["table"] == table, "reason"]
    by_reason = mine.value_counts()
    counts = {"rows_in": int(rows_in), "rows_used": len(clean), "rows_rejected": len(mine)}
    for reason in TABLE_REASONS.get(table, ()):
        counts["rejected_" + reason] = int(by_reason.get(reason, 0))
    for reason, n in by_reason.items():
        counts.setdefault("rejected_" + str(reason), int(n))
    return counts


NOT_A_DATA_PROBLEM: tuple[str, ...] = ("timestamp_after_as_of", "return_netted")
"""Reject reasons that are no loss of usable data, left out of :func:`rejected_share_warnings`:
rows after the as-of date belong to a later run, and a netted return lives on in its order."""


def rejected_share_warnings(
    counts: Mapping[str, Mapping[str, int]], threshold: float = 0.05
) -> list[str]:
    """One warning per table whose share of rejected rows is above ``threshold``.

    The share is the rows rejected for a data problem over the rows the run could have used:
    rows rejected as :data:`NOT_A_DATA_PROBLEM` (after the as-of date, netted returns) count
    in neither. Tables are taken in the order given; reasons by count, largest first (ties by
    name), each as a share of the same rows.

    Parameters
    ----------
    counts : mapping
        Table name to its :func:`row_counts` dict (``Inputs.counts``).
    threshold : float
        Largest share (0-1) of rejected rows that passes without a warning
        (``data.max_rejected_share``).

    Returns
    -------
    list of str
        E.g. ``["events: 73.2% of rows rejected (7,320 of 10,000: value_out_of_range 70.1%,
        duplicate 3.1%)"]``; empty when every table is within the threshold.
    """
    out = []
    for table, c in counts.items():
        by_reason = {
            key[len("rejected_") :]: int(n)
            for key, n in c.items()
            if key.startswith("rejected_") and n
        }
        exempt = sum(by_reason.pop(r, 0) for r in NOT_A_DATA_PROBLEM)
        rows = int(c.get("rows_in", 0)) - exempt
        rejected = sum(by_reason.values())
        if rows <= 0 or rejected / rows <= threshold:
            continue
        parts = ", ".join(
            f"{reason} {n / rows:.1%}"
            for reason, n in sorted(by_reason.items(), key=lambda kv: (-kv[1], kv[0]))
        )
        out.append(
            f"{table}: {rejected / rows:.1%} of rows rejected ({rejected:,} of {rows:,}: {parts})"
        )
    return out


def _check_input(raw: pd.DataFrame, contract: Contract) -> None:
    if not isinstance(raw, pd.DataFrame):
        raise TypeError(f"{contract.name}: expected a DataFrame, got {type(raw).__name__}")
    missing = [c for c in contract.required if c not in raw.columns]
    if missing:
        kind = "required column" if len(missing) == 1 else "required columns"
        raise DataError(
            f"{contract.name}: {kind} {', '.join(missing)} missing; columns present: "
            f"{', '.join(map(str, raw.columns))}"
        )
    if len(raw) == 0:
        if _WHOLE_TABLE.get():
            raise DataError(f"{contract.name}: the input is empty (0 rows)")


def _codes(values: pd.Series | np.ndarray) -> np.ndarray:
    """Integer codes: equal values get equal codes, missing values -1."""
    codes, _ = pd.factorize(values, use_na_sentinel=True)
    return np.asarray(codes, dtype=np.int64)


def _stable_text(value: object) -> str:
    """A text form equal for equal nested values: arrays as lists, mappings in key order."""
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, dict):
        items = sorted(value.items(), key=lambda kv: str(kv[0]))
        return "{" + ", ".join(f"{k!r}: {_stable_text(v)}" for k, v in items) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_stable_text(v) for v in value) + "]"
    return repr(value)


def _stable_codes(values: pd.Series) -> np.ndarray:
    """Integer codes of any column; unhashable (nested) values are coded by their text form."""
    try:
        return _codes(values)
    except TypeError:
        return _codes(values.map(_stable_text, na_action="ignore"))


def _duplicated(
    parsed: pd.DataFrame,
    raw: pd.DataFrame,
    contract: Contract,
    ok: np.ndarray,
    codes: dict[str, np.ndarray],
) -> np.ndarray:
    """Rows (among ``ok``) identical to an earlier ok row in every column.

    Contract columns are compared after parsing; other columns of the input as they are, and
    a nested one (lists, structs, maps, as Parquet stores them) through a stable text form
    (see :func:`_stable_text`). Text columns are compared through integer codes (``codes``
    holds the ones already made).
    """
    key: dict[str, np.ndarray] = {}
    for col in parsed.columns:
        values = parsed[col]
        if col in codes:
            key[col] = codes[col]
        elif pd.api.types.is_numeric_dtype(values.dtype):
            key[col] = values.to_numpy()
        elif pd.api.types.is_datetime64_dtype(values.dtype):
            key[col] = values.to_numpy(dtype="datetime64[ns]").view(np.int64)
        else:
            key[col] = _codes(values)
    for col in raw.columns:
        if col not in contract.columns:
            key[f"extra:{col}"] = _stable_codes(raw[col].reset_index(drop=True))
    frame = pd.DataFrame(key)
    if ok.all():
        return frame.duplicated(keep="first").to_numpy(dtype=bool)
    dup = np.zeros(len(parsed), dtype=bool)
    dup[ok] = frame.loc[ok].duplicated(keep="first").to_numpy(dtype=bool)
    return dup


def _kept(parsed: pd.DataFrame, ok: np.ndarray) -> pd.DataFrame:
    """The rows of ``parsed`` where ``ok``, with a fresh RangeIndex (no copy when all are)."""
    if ok.all():
        return parsed
    return parsed.loc[ok].reset_index(drop=True)


def _end_ns(as_of: DateLike) -> np.datetime64:
    # as_unit raises for a day outside the nanosecond range instead of wrapping around
    return np.datetime64(cutoff_end(as_of).as_unit("ns").value, "ns")


_FLOAT_TEXT = r"[+-]?(?:\d+\.\d*|\.\d+|\d+(?:\.\d*)?[eE][+-]?\d+|\.\d+[eE][+-]?\d+)"
"""An id written as a float: with a decimal point or an exponent (``17850.0``, ``1.785e4``)."""

_MAX_ID_DIGITS = 64
"""A float-formatted id with more integer digits than this is kept as written."""


def _integer_text(text: str) -> str:
    """``text`` as the integer's digits when it is an exact integer, else unchanged."""
    try:
        number = Decimal(text)
    except InvalidOperation:  # pragma: no cover - the pattern admits only numbers
        return text
    if number.adjusted() >= _MAX_ID_DIGITS or number != number.to_integral_value():
        return text
    return str(int(number))


def normalise_ids(ids: pd.Series, how: IdNormalisation = "none") -> pd.Series:
    """Customer ids (stripped text, NA where missing) normalised as ``data.id_normalisation``.

    ``none`` keeps them as written. ``integer_text`` writes an id that is an exact integer
    in float form (``17850.0``, ``17850.00``, ``1.785e4``, ``+17850.``) as the integer's
    digits (``17850``), exactly (no rounding through a float, so long ids stay whole); any
    other id (``17850.5``, ``A-17``, ``017850``) is kept as written.

    Parameters
    ----------
    ids : Series
        ``string`` dtype ids.
    how : {"none", "integer_text"}
        The normalisation.

    Returns
    -------
    Series
        The ids, same index and dtype.
    """
    if how == "none":
        return ids
    if how != "integer_text":
        raise ValueError(f"id_normalisation must be 'none' or 'integer_text', got {how!r}")
    candidate = ids.str.fullmatch(_FLOAT_TEXT).fillna(False).to_numpy(dtype=bool)
    if not candidate.any():
        return ids
    out = ids.copy()
    values = ids[candidate]
    mapping = {v: _integer_text(v) for v in values.unique()}
    out[candidate] = values.map(mapping).astype(ids.dtype)
    return out


def float_formatted_ids(ids: pd.Series) -> bool:
    """Whether ids look like integers written as floats (``17850.0``): every present id an
    exact integer in float form, at least one of them written with a point or an exponent.

    What ``init`` looks for before proposing ``data.id_normalisation: integer_text``.
    """
    text = _clean_text(ids).dropna()
    if text.empty:
        return False
    floaty = text.str.fullmatch(_FLOAT_TEXT).fillna(False)
    if not floaty.any():
        return False
    normalised = normalise_ids(text, "integer_text")
    return bool(normalised.str.fullmatch(r"[+-]?\d+").fillna(False).all())


def _check_ids(
    q: _Quarantine,
    raw_ids: pd.Series,
    null_values: Sequence[str],
    max_id_length: int,
    id_normalisation: IdNormalisation = "none",
) -> pd.Series:
    """Stripped (and normalised) ids; rejects missing (``customer_id_missing``) and invalid ones."""
    cid = normalise_ids(_clean_text(raw_ids, null_values), id_normalisation)
    q.reject(cid.isna().to_numpy(dtype=bool), "customer_id_missing")
    q.reject(_invalid_ids(cid, max_id_length), "customer_id_invalid")
    return cid


def _check_timestamps(
    q: _Quarantine,
    values: pd.Series,
    column: str,
    fmt: str | None,
    null_values: Sequence[str],
) -> np.ndarray:
    """Parsed timestamps; rejects missing, unparseable and out-of-range ones (with examples)."""
    ts, missing, bad, far = _parse_timestamps(values, q.table, column, fmt, null_values)
    q.reject(missing, f"{column}_missing")
    q.reject(bad, f"{column}_unparseable", values)
    q.reject(far, f"{column}_out_of_range", values)
    return ts


def _value_out_of_range(event_type: pd.Series, value: np.ndarray) -> np.ndarray:
    """Event values outside the documented range of their type (missing values are not)."""
    out = np.zeros(len(value), dtype=bool)
    types = event_type.to_numpy(dtype=object, na_value=None)
    for name, (low, high) in EVENT_VALUE_RANGES.items():
        rows = types == name
        with np.errstate(invalid="ignore"):
            out |= rows & ((value < low) | (value > high))
    return out


# ------------------------------------------------------------------- transactions


def _net_returns(
    parsed: pd.DataFrame, q: _Quarantine, codes: dict[str, np.ndarray], earlier: bool = False
) -> np.ndarray:
    """Apply returns to their orders (and, when ``earlier``, the loose ones to earlier
    purchases, see :func:`_net_earlier`); returns the (possibly reduced) amounts."""
    amount = parsed["amount"].to_numpy(dtype=float, copy=True)
    ok = q.ok
    neg = ok & (amount < 0)
    if not neg.any():
        return amount
    if "order_id" not in parsed:
        loose = neg
    else:
        order = codes["order_id"]
        has_order = ok & (order >= 0)
        loose = neg & ~has_order
        rows = np.flatnonzero(has_order)
        key = codes[CUSTOMER_ID][rows] * (int(order.max()) + 1) + order[rows]
        group = _codes(key)
        a = amount[rows]
        is_return = a < 0
        purchased = np.bincount(group, weights=np.where(is_return, 0.0, a))
        n_purchases = np.bincount(group, weights=(~is_return).astype(float))
        returned = np.bincount(group, weights=np.where(is_return, a, 0.0))
        has_return = returned < 0
        unmatched = has_return & (n_purchases == 0)
        net = purchased + returned
        to_zero = has_return & ~unmatched & (net <= _RETURN_TOLERANCE * purchased)
        netted = has_return & ~unmatched & ~to_zero

        def full(mask: np.ndarray) -> np.ndarray:
            out = np.zeros(len(amount), dtype=bool)
            out[rows[mask]] = True
            return out

        loose = loose | full(unmatched[group])
        q.reject(full(to_zero[group]), "return_netted_to_zero")
        q.reject(full(netted[group] & is_return), "return_netted")
        scaled = netted[group] & ~is_return
        factor = np.divide(net, purchased, out=np.ones_like(net), where=netted)
        amount[rows[scaled]] = a[scaled] * factor[group[scaled]]
    if earlier and loose.any():
        _net_earlier(parsed, q, amount, loose, codes)
    q.reject(loose, "return_unmatched")
    return amount


def _order_keys(parsed: pd.DataFrame, codes: dict[str, np.ndarray], ts: np.ndarray) -> np.ndarray:
    """An order code per row: its ``order_id``, else (no id) its timestamp."""
    by_time = _codes(ts)
    if "order_id" not in codes:
        return by_time
    order = codes["order_id"]
    return np.where(order >= 0, order, int(order.max()) + 1 + by_time)


def _net_earlier(
    parsed: pd.DataFrame,
    q: _Quarantine,
    amount: np.ndarray,
    loose: np.ndarray,
    codes: dict[str, np.ndarray],
) -> None:
    """Net the ``loose`` returns (no order of their own with a purchase) against the same
    customer's earlier purchases; ``amount`` is reduced in place.

    One return at a time, by timestamp then row: first the customer's purchases of the same
    ``item_id`` at or before the return, latest first, until the returned amount is used up
    (what is left beyond them is not carried to other items); with no such purchase (or no
    ``item_id``), the customer's latest order at or before the return, scaled down in
    proportion (its rows at or before the return; an order is an ``order_id``, or one
    timestamp for rows without one). A purchase reduced to zero or less is rejected as
    ``return_netted_to_zero``, a return that reduced something as ``return_netted``; the
    others are left for the caller (``return_unmatched``). The loop runs over the returns
    only; the purchases are searched through sorted arrays.
    """
    ts = parsed[TIMESTAMP].to_numpy(dtype="datetime64[ns]").view(np.int64)
    cust = codes[CUSTOMER_ID]
    ret = np.flatnonzero(loose)
    ret = ret[np.lexsort((ret, ts[ret]))]
    buys = np.flatnonzero(q.ok & (amount > 0) & np.isin(cust, cust[ret]))
    if not buys.size:
        return
    floor = amount * _RETURN_TOLERANCE  # a purchase at or below this is netted to zero
    item = codes.get("item_id")
    if item is not None:
        ib = buys[item[buys] >= 0]
        ib = ib[np.lexsort((ib, ts[ib], item[ib], cust[ib]))]
        n_items = int(item.max()) + 1
        ikey, its = cust[ib] * n_items + item[ib], ts[ib]
    ob = buys[np.lexsort((buys, ts[buys], cust[buys]))]
    ocust, ots = cust[ob], ts[ob]
    order = _order_keys(parsed, codes, ts)
    n_orders = int(order.max()) + 1
    gb = buys[np.lexsort((buys, order[buys], cust[buys]))]
    gkey = cust[gb] * n_orders + order[gb]
    netted = np.zeros(len(amount), dtype=bool)
    for r in ret.tolist():
        need, c, t = -amount[r], cust[r], ts[r]
        if item is not None and item[r] >= 0:
            lo = int(np.searchsorted(ikey, c * n_items + item[r], side="left"))
            hi = int(np.searchsorted(ikey, c * n_items + item[r], side="right"))
            end = lo + int(np.searchsorted(its[lo:hi], t, side="right"))
            for p in ib[lo:end][::-1].tolist():
                if need <= 0:
                    break
                if amount[p] <= 0:
                    continue
                take = min(amount[p], need)
                amount[p] = 0.0 if amount[p] - take <= floor[p] else amount[p] - take
                need -= take
                netted[r] = True
        if netted[r]:
            continue
        lo = int(np.searchsorted(ocust, c, side="left"))
        hi = int(np.searchsorted(ocust, c, side="right"))
        j = lo + int(np.searchsorted(ots[lo:hi], t, side="right")) - 1
        while j >= lo and amount[ob[j]] <= 0:
            j -= 1
        if j < lo:
            continue
        g = cust[ob[j]] * n_orders + order[ob[j]]
        rows = gb[np.searchsorted(gkey, g, side="left") : np.searchsorted(gkey, g, side="right")]
        rows = rows[(ts[rows] <= t) & (amount[rows] > 0)]
        total = amount[rows].sum()
        left = total - need
        if left <= _RETURN_TOLERANCE * total:
            amount[rows] = 0.0
        else:
            amount[rows] *= left / total
        netted[r] = True
    q.reject(netted, "return_netted")
    zeroed = np.zeros(len(amount), dtype=bool)
    zeroed[buys[amount[buys] <= 0]] = True
    q.reject(zeroed, "return_netted_to_zero")


def validate_transactions(
    raw: pd.DataFrame,
    as_of: DateLike,
    returns: ReturnsPolicy = "drop",
    *,
    timestamp_format: str | None = None,
    duplicates: DuplicatesPolicy = "drop",
    null_values: Sequence[str] = NULL_VALUES,
    max_amount: float = MAX_AMOUNT,
    max_id_length: int = MAX_ID_LENGTH,
    decimal: str = ".",
    id_normalisation: IdNormalisation = "none",
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Validate raw transactions; quarantine the rows that cannot be used.

    Checks, in order (a row gets the first reason that applies): missing, blank or null-text
    ``customer_id``; an id with a control character or longer than ``max_id_length``; missing,
    unparseable or out-of-range ``timestamp`` (see :data:`retain.contracts.NS_RANGE`); missing,
    non-numeric (``inf`` included) or out-of-range ``amount`` (``|amount| > max_amount``);
    non-numeric or out-of-range ``quantity`` (the same limit); timestamp after the as-of date
    (the as-of day is included); exact duplicate of an earlier row (the first copy is kept;
    contract columns compared after parsing, any other input column as is); returns
    (negative amounts):

    - ``returns="drop"``: each return is rejected as ``return``;
    - ``returns="net"``: returns are netted against the purchases of the same customer and
      ``order_id``. The order's purchase rows are scaled down in proportion so that they sum
      to the net amount, and the return rows are rejected as ``return_netted`` (their amount
      lives on in the order). An order whose net is <= 0 loses all its rows
      (``return_netted_to_zero``); a return with no order id or no purchase in its order is
      ``return_unmatched``. ``quantity`` is left unchanged.
    - ``returns="net_earlier"``: as ``net``; then each return without an order of its own
      holding a purchase (a cancellation with its own invoice number, or no ``order_id``) is
      netted against the same customer's purchases at or before it: those of the same
      ``item_id``, latest first, until the returned amount is used up; without one (or
      without ``item_id``), the customer's latest such order, scaled down in proportion.
      The return is rejected as ``return_netted``, a purchase reduced to zero or less as
      ``return_netted_to_zero``; a return with no earlier purchase stays ``return_unmatched``.
      A returned amount beyond the purchases it matched is dropped (spend never goes below
      zero).

    Zero amounts are kept (free items are purchases).

    Parameters
    ----------
    raw : DataFrame
        Columns ``customer_id``, ``timestamp``, ``amount`` and optionally ``quantity``,
        ``order_id`` and ``item_id``, of any dtype (text from CSV, typed from Parquet).
    as_of : date or str
        The as-of date; rows after this day are not used.
    returns : {"drop", "net", "net_earlier"}
        How negative amounts are handled (``data.returns`` in the config).
    timestamp_format : str, optional
        A ``strftime`` format for text timestamps; ISO 8601 when omitted.
    duplicates : {"drop", "keep"}
        ``keep`` turns the duplicate check off, for sources whose identical rows are known to
        be separate purchases (CDNOW has no transaction id; its identical lines are counted as
        separate purchases in the published analyses of that data).
    null_values : sequence of str
        Text read as missing in every text column (exact match after stripping); a blank
        value is always missing. ``data.null_values``.
    max_amount : float
        Largest absolute ``amount`` and ``quantity`` of a row (``data.max_amount``).
    max_id_length : int
        Longest ``customer_id`` in characters (``data.max_id_length``).
    decimal : {".", ","}
        Decimal separator of text numbers (``data.<table>.csv.decimal``).
    id_normalisation : {"none", "integer_text"}
        ``integer_text`` writes ids such as ``17850.0`` as ``17850`` before any check, so the
        same customer matches across tables (``data.id_normalisation``; see
        :func:`normalise_ids`).

    Returns
    -------
    clean : DataFrame
        The usable rows in input order: ``customer_id`` (string, stripped), ``timestamp``
        (datetime64[ns], tz-naive: input in one time zone is converted to UTC first),
        ``amount`` (float64) and, when given, ``quantity`` (float64), ``order_id`` and
        ``item_id`` (string). Other input columns are dropped. Fresh RangeIndex.
    rejects : DataFrame
        One row per rejected input row: ``table``, ``row_number`` (0-based position in
        ``raw``), ``customer_id`` (as in the input), ``reason``.

    Raises
    ------
    DataError
        A required column is missing, the input is empty, every row is rejected, or the
        timestamps mix time zones.
    """
    if returns not in ("drop", "net", "net_earlier"):
        raise ValueError(f"returns must be 'drop', 'net' or 'net_earlier', got {returns!r}")
    contract = TRANSACTIONS
    table = contract.name
    _check_input(raw, contract)
    n = len(raw)
    q = _Quarantine(table, n)
    cid = _check_ids(q, raw[CUSTOMER_ID], null_values, max_id_length, id_normalisation)
    ts = _check_timestamps(q, raw[TIMESTAMP], TIMESTAMP, timestamp_format, null_values)
    amount, amount_missing, amount_bad = _parse_numbers(raw["amount"], null_values, decimal)
    q.reject(amount_missing, "amount_missing")
    q.reject(amount_bad, "amount_not_numeric", raw["amount"])
    q.reject(_out_of_range(amount, max_amount), "amount_out_of_range", raw["amount"])
    columns: dict[str, Any] = {CUSTOMER_ID: cid, TIMESTAMP: ts, "amount": amount}
    if "quantity" in raw:
        quantity, _, quantity_bad = _parse_numbers(raw["quantity"], null_values, decimal)
        q.reject(quantity_bad, "quantity_not_numeric")
        q.reject(_out_of_range(quantity, max_amount), "quantity_out_of_range")
        columns["quantity"] = quantity
    for col in ("order_id", "item_id"):
        if col in raw:
            columns[col] = _clean_text(raw[col], null_values)
    q.reject(ts >= _end_ns(as_of), "timestamp_after_as_of")
    parsed = pd.DataFrame(columns)
    keys = (CUSTOMER_ID, "order_id", "item_id")
    codes = {col: _codes(parsed[col]) for col in keys if col in parsed}
    if duplicates == "drop":
        q.reject(_duplicated(parsed, raw, contract, q.ok, codes), "duplicate")
    elif duplicates != "keep":
        raise ValueError(f"duplicates must be 'drop' or 'keep', got {duplicates!r}")
    if returns == "drop":
        q.reject(q.ok & (amount < 0), "return")
    else:
        parsed["amount"] = _net_returns(parsed, q, codes, earlier=returns == "net_earlier")
    clean = _kept(parsed, q.ok)
    rejects = q.rejects(raw[CUSTOMER_ID])
    q.finish(n, clean, rejects)
    return clean, rejects


# ------------------------------------------------------------------------- events


def validate_events(
    raw: pd.DataFrame,
    as_of: DateLike,
    *,
    roles: Mapping[str, str | Sequence[str]] | None = None,
    timestamp_format: str | None = None,
    null_values: Sequence[str] = NULL_VALUES,
    max_id_length: int = MAX_ID_LENGTH,
    decimal: str = ".",
    id_normalisation: IdNormalisation = "none",
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Validate raw engagement events; quarantine the rows that cannot be used.

    Checks, in order: missing, blank or null-text ``customer_id``; an id with a control
    character or longer than ``max_id_length``; missing, unparseable or out-of-range
    ``timestamp``; missing (blank or null-text) ``event_type``; non-numeric ``value``; a
    ``value`` outside the range of its role (:data:`retain.contracts.EVENT_VALUE_RANGES`:
    support_ticket 1-5, survey 0-10; a missing value is kept); timestamp after the as-of date
    (day included); exact duplicate of an earlier row (the first copy is kept).

    The vocabulary is open: every event type is accepted. Types are stripped and lower-cased,
    then the source's names of the roles (``roles``) are renamed to the role
    (:data:`retain.contracts.EVENT_ROLES`); any other type keeps its own name.

    Parameters
    ----------
    raw : DataFrame
        Columns ``customer_id``, ``timestamp``, ``event_type`` and optionally ``value``.
    as_of : date or str
        The as-of date; rows after this day are not used.
    roles : mapping, optional
        Role to the source's type name (or list of names) for the roles the source spells
        differently, e.g. ``{"session": "web_session"}`` (``data.events.roles``; see
        :func:`retain.contracts.event_role_renames`). Default: every role is its own name.
    timestamp_format : str, optional
        A ``strftime`` format for text timestamps; ISO 8601 when omitted.
    null_values : sequence of str
        Text read as missing in every text column (``data.null_values``).
    max_id_length : int
        Longest ``customer_id`` in characters (``data.max_id_length``).
    decimal : {".", ","}
        Decimal separator of text values (``data.events.csv.decimal``).
    id_normalisation : {"none", "integer_text"}
        ``integer_text`` writes ids such as ``17850.0`` as ``17850`` before any check, so the
        same customer matches across tables (``data.id_normalisation``; see
        :func:`normalise_ids`).

    Returns
    -------
    clean : DataFrame
        ``customer_id`` (string), ``timestamp`` (datetime64[ns]), ``event_type`` (string,
        stripped, lower case, role names for the mapped types) and, when given, ``value``
        (float64); input order, fresh RangeIndex.
    rejects : DataFrame
        ``table``, ``row_number``, ``customer_id``, ``reason``.

    Raises
    ------
    DataError
        A required column is missing, the input is empty, every row is rejected, or the
        timestamps mix time zones.
    """
    renames = event_role_renames(roles)
    contract = EVENTS
    table = contract.name
    _check_input(raw, contract)
    n = len(raw)
    q = _Quarantine(table, n)
    cid = _check_ids(q, raw[CUSTOMER_ID], null_values, max_id_length, id_normalisation)
    ts = _check_timestamps(q, raw[TIMESTAMP], TIMESTAMP, timestamp_format, null_values)
    event_type = _clean_text(raw["event_type"], null_values).str.lower()
    if renames:
        event_type = event_type.replace(renames)
    q.reject(event_type.isna().to_numpy(dtype=bool), "event_type_missing")
    columns: dict[str, Any] = {CUSTOMER_ID: cid, TIMESTAMP: ts, "event_type": event_type}
    if "value" in raw:
        value, _, value_bad = _parse_numbers(raw["value"], null_values, decimal)
        q.reject(value_bad, "value_not_numeric")
        q.reject(_value_out_of_range(event_type, value), "value_out_of_range", raw["value"])
        columns["value"] = value
    q.reject(ts >= _end_ns(as_of), "timestamp_after_as_of")
    parsed = pd.DataFrame(columns)
    codes = {CUSTOMER_ID: _codes(parsed[CUSTOMER_ID])}
    q.reject(_duplicated(parsed, raw, contract, q.ok, codes), "duplicate")
    clean = _kept(parsed, q.ok)
    rejects = q.rejects(raw[CUSTOMER_ID])
    q.finish(n, clean, rejects)
    return clean, rejects


# ---------------------------------------------------------------------- customers


def validate_customers(
    raw: pd.DataFrame,
    as_of: DateLike,
    *,
    timestamp_format: str | None = None,
    null_values: Sequence[str] = NULL_VALUES,
    max_id_length: int = MAX_ID_LENGTH,
    id_normalisation: IdNormalisation = "none",
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Validate raw customer attributes; quarantine the rows that cannot be used.

    Checks, in order: missing, blank or null-text ``customer_id``; an id with a control
    character or longer than ``max_id_length``; unparseable or out-of-range ``signup_date``
    (a missing one is kept as NaT); signup after the as-of date (that customer is not known
    yet); a ``customer_id`` already seen in an earlier usable row (the first is kept).

    Parameters
    ----------
    raw : DataFrame
        Column ``customer_id``, optionally ``signup_date``, ``acquisition_channel`` and any
        other attribute columns (kept as they are).
    as_of : date or str
        The as-of date.
    timestamp_format : str, optional
        A ``strftime`` format for text dates; ISO 8601 when omitted.
    null_values : sequence of str
        Text read as missing in ``customer_id``, ``signup_date`` and ``acquisition_channel``
        (``data.null_values``).
    max_id_length : int
        Longest ``customer_id`` in characters (``data.max_id_length``).
    id_normalisation : {"none", "integer_text"}
        ``integer_text`` writes ids such as ``17850.0`` as ``17850`` before any check, so the
        same customer matches across tables (``data.id_normalisation``; see
        :func:`normalise_ids`).

    Returns
    -------
    clean : DataFrame
        Indexed by ``customer_id`` (string): ``signup_date`` (datetime64[ns]) and
        ``acquisition_channel`` (string) when given, then the other attribute columns.
    rejects : DataFrame
        ``table``, ``row_number``, ``customer_id``, ``reason``.

    Raises
    ------
    DataError
        ``customer_id`` is missing, the input is empty, every row is rejected, or the signup
        dates mix time zones.
    """
    contract = CUSTOMERS
    table = contract.name
    _check_input(raw, contract)
    n = len(raw)
    q = _Quarantine(table, n)
    cid = _check_ids(q, raw[CUSTOMER_ID], null_values, max_id_length, id_normalisation)
    columns: dict[str, Any] = {CUSTOMER_ID: cid}
    if "signup_date" in raw:
        signup, _, signup_bad, signup_far = _parse_timestamps(
            raw["signup_date"], table, "signup_date", timestamp_format, null_values
        )
        q.reject(signup_bad, "signup_date_unparseable", raw["signup_date"])
        q.reject(signup_far, "signup_date_out_of_range", raw["signup_date"])
        q.reject(signup >= _end_ns(as_of), "signup_date_after_as_of")
        columns["signup_date"] = signup
    if "acquisition_channel" in raw:
        columns["acquisition_channel"] = _clean_text(raw["acquisition_channel"], null_values)
    for col in raw.columns:
        if col not in columns:
            columns[col] = raw[col].to_numpy()
    parsed = pd.DataFrame(columns)
    ok = q.ok
    dup = np.zeros(n, dtype=bool)
    dup[ok] = cid[ok].duplicated(keep="first").to_numpy(dtype=bool)
    q.reject(dup, "customer_id_duplicate")
    clean = parsed.loc[q.ok].set_index(CUSTOMER_ID)
    rejects = q.rejects(raw[CUSTOMER_ID])
    q.finish(n, clean, rejects)
    return clean, rejects
