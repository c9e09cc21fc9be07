"""RFM summary: frequency, recency, tenure and monetary value as of a cutoff.

Definitions (the CDNOW convention used throughout the BTYD literature):

- a *purchase occasion* is a (customer, calendar day) with at least one transaction; same-day
  transactions merge into one occasion whose value is their sum;
- ``frequency`` is the number of repeat occasions (occasions after the first);
- ``recency`` is the time from the first to the last occasion;
- ``tenure`` (T) is the time from the first occasion to the cutoff;
- ``monetary_value`` is the mean value of the repeat occasions (0 when there are none).

The cutoff day is included: a transaction at any time on the cutoff date counts.

The work is done on plain numpy arrays (:class:`OccasionArrays`): customer ids are encoded once
as integer codes, occasions are found by one sort of ``code * span + day`` keys, and per-customer
quantities are segment reductions over the sorted occasions. No Python loop runs over customers.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
import pyarrow as pa

from retain.contracts import CUSTOMER_ID, TIMESTAMP

TimeUnit = Literal["D", "W"]
UNIT_DAYS: dict[str, float] = {"D": 1.0, "W": 7.0}
UNIT_NAMES: dict[str, str] = {"D": "days", "W": "weeks"}

_EPOCH_DAY = np.datetime64("1970-01-01", "D")
_NS_PER_DAY = 86_400 * 10**9


def cutoff_day(cutoff: dt.date | str | pd.Timestamp) -> int:
    """The cutoff as whole days since 1970-01-01 (the cutoff day itself is included)."""
    return int((np.datetime64(pd.Timestamp(cutoff).date(), "D") - _EPOCH_DAY).astype(np.int64))


def cutoff_end(cutoff: dt.date | str | pd.Timestamp) -> pd.Timestamp:
    """The first instant after the cutoff day: rows strictly before it are 'as of' the cutoff."""
    return pd.Timestamp(pd.Timestamp(cutoff).date()) + pd.Timedelta(days=1)


def epoch_days(timestamps: pd.Series | np.ndarray) -> np.ndarray:
    """Calendar day of each timestamp as int64 days since 1970-01-01 (floor, also before 1970)."""
    ns = np.asarray(timestamps, dtype="datetime64[ns]").view(np.int64)
    return np.floor_divide(ns, _NS_PER_DAY)


@dataclass(frozen=True)
class OccasionArrays:
    """Purchase occasions as aligned arrays, sorted by customer then day.

    Attributes
    ----------
    customers : Index
        Sorted ids of the customers with at least one occasion (``customer_id``, string).
    code : ndarray of int64
        Per occasion, the position of its customer in ``customers`` (non-decreasing).
    day : ndarray of int64
        Per occasion, days since 1970-01-01 (increasing within a customer).
    amount : ndarray of float64
        Per occasion, the summed amount of the day's transactions.
    quantity : ndarray of float64 or None
        Per occasion, the summed quantity (missing quantities count 0); None when the
        transactions carry no ``quantity`` column or it was not asked for.
    starts : ndarray of int64
        Position of each customer's first occasion.
    counts : ndarray of int64
        Number of occasions per customer.
    max_timestamp : Timestamp or None
        The latest transaction timestamp used (None when there are none).
    quantity_total : ndarray of float64 or None
        Per customer, the summed quantity; None without a ``quantity`` column.
    """

    customers: pd.Index
    code: np.ndarray
    day: np.ndarray
    amount: np.ndarray
    quantity: np.ndarray | None
    starts: np.ndarray
    counts: np.ndarray
    max_timestamp: pd.Timestamp | None
    quantity_total: np.ndarray | None = None

    @property
    def ends(self) -> np.ndarray:
        """Position of each customer's last occasion."""
        return self.starts + self.counts - 1


def _fixed_width_keys(ids: pd.Series) -> np.ndarray | None:
    """Ids as big-endian uint64 when they are Arrow strings of one byte length up to 8.

    For ids of equal length, comparing the big-endian integers of their (zero-padded) UTF-8
    bytes is comparing the strings, so the integers can stand in for the ids: they hash and
    sort much faster. Returns None when the fast path does not apply.
    """
    dtype = ids.dtype
    if not (isinstance(dtype, pd.StringDtype) and dtype.storage == "pyarrow") or ids.hasnans:
        return None
    arrow = pa.chunked_array(ids.array.__arrow_array__())
    parts = []
    width = None
    for chunk in arrow.chunks:
        if len(chunk) == 0:
            continue
        offset_type = np.int64 if pa.types.is_large_string(chunk.type) else np.int32
        offsets = np.frombuffer(chunk.buffers()[1], dtype=offset_type)
        offsets = offsets[chunk.offset : chunk.offset + len(chunk) + 1]
        lengths = np.diff(offsets)
        w = int(lengths[0])
        if w == 0 or w > 8 or (lengths != w).any() or (width is not None and w != width):
            return None
        width = w
        raw = np.frombuffer(chunk.buffers()[2], dtype=np.uint8)[offsets[0] : offsets[-1]]
        if w == 8:
            parts.append(raw.view(">u8").astype(np.uint64))  # big-endian order = string order
            continue
        padded = np.zeros((len(chunk), 8), dtype=np.uint8)
        padded[:, :w] = raw.reshape(-1, w)
        keys = padded.view(np.uint64).ravel()
        if np.little_endian:
            keys.byteswap(inplace=True)  # big-endian order = string order
        parts.append(keys)
    if not parts:
        return None
    return np.concatenate(parts) if len(parts) > 1 else parts[0]


def _keys_to_ids(keys: np.ndarray) -> pd.Index:
    """Inverse of :func:`_fixed_width_keys` for the distinct keys."""
    raw = pa.array(keys.astype(">u8").view("S8"), type=pa.binary())
    return pd.Index(pd.array(raw.cast(pa.string()), dtype="string"), name=CUSTOMER_ID)


def _pack_keys(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Order-preserving dense packing of :func:`_fixed_width_keys` values.

    Each byte position is shifted by its smallest value and the positions are combined in
    mixed radix (most significant first), so ids such as ``"C0000001"`` (one constant letter,
    seven digits) pack into ``10**7`` values instead of ``2**64``; the order is the string
    order. Returns the packed values (int64), per-position minimum and radix (most significant
    first) and the number of possible packed values.
    """
    # One contiguous row per byte position, most significant first.
    as_bytes = np.ascontiguousarray(keys.view(np.uint8).reshape(-1, 8).T)
    if np.little_endian:
        as_bytes = as_bytes[::-1]
    lo = np.array([row.min() for row in as_bytes], dtype=np.int64)
    radix = np.array([row.max() for row in as_bytes], dtype=np.int64) - lo + 1
    capacity = 1
    for r in radix.tolist():
        capacity *= r
    packed = np.zeros(len(keys), dtype=np.int64)
    if capacity >= 2**62:
        return packed, lo, radix, capacity
    offset = 0
    for j in range(8):
        if radix[j] > 1:
            packed *= radix[j]
            packed += as_bytes[j]
            offset = offset * int(radix[j]) + int(lo[j])
    packed -= offset
    return packed, lo, radix, capacity


def _unpack_keys(packed: np.ndarray, lo: np.ndarray, radix: np.ndarray) -> np.ndarray:
    """Inverse of :func:`_pack_keys`: the uint64 keys of packed values."""
    rest = packed.copy()
    keys = np.zeros(len(packed), dtype=np.uint64)
    for j in range(7, -1, -1):
        digit = rest % radix[j] + lo[j]
        rest //= radix[j]
        keys |= digit.astype(np.uint64) << np.uint64(8 * (7 - j))
    return keys


def encode_customers(ids: pd.Series) -> tuple[np.ndarray, pd.Index]:
    """Integer codes of customer ids into their sorted distinct values.

    Parameters
    ----------
    ids : Series
        Customer ids (string dtype, no missing values).

    Returns
    -------
    codes : ndarray of int64
        Position of each id in ``uniques``.
    uniques : Index
        Sorted distinct ids (``string`` dtype, named ``customer_id``).

    Notes
    -----
    Arrow-backed ids of one byte length up to 8 (``"00001"``, ``"C0000001"``) are encoded
    through their bytes as integers; other ids go through :func:`pandas.factorize`. Both give
    the same result.
    """
    keys = _fixed_width_keys(ids)
    if keys is None:
        codes, uniques = pd.factorize(ids, sort=True)
        if len(codes) and codes.min() < 0:
            raise ValueError("customer_id has missing values; validate the input first")
        return codes.astype(np.int64, copy=False), pd.Index(
            uniques, dtype="string", name=CUSTOMER_ID
        )
    # Arrow's hash encoding, then the distinct keys sorted and the codes renumbered by rank.
    encoded = pa.array(keys).dictionary_encode()
    del keys
    distinct = encoded.dictionary.to_numpy()
    order = np.argsort(distinct)
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order), dtype=np.int64)
    codes = rank[encoded.indices.to_numpy()]
    return codes, _keys_to_ids(distinct[order])


def _segment_sums(values: np.ndarray, order: np.ndarray, segment: np.ndarray) -> np.ndarray:
    """Sums of ``values[order]`` per ``segment`` id, added in input order from 0.

    (``np.add.reduceat`` would group the additions differently and change the last bit.)
    """
    return np.bincount(segment, weights=np.take(values, order))


def occasion_arrays(
    transactions: pd.DataFrame, cutoff: dt.date | str, occasion_quantity: bool = False
) -> OccasionArrays:
    """Merge same-day transactions into purchase occasions, as arrays (see :class:`OccasionArrays`).

    Parameters
    ----------
    transactions : DataFrame
        Transactions in the contract of :data:`retain.contracts.TRANSACTIONS`.
    cutoff : date or str
        The as-of date (required; included). Later rows are ignored.
    occasion_quantity : bool
        Also sum ``quantity`` per occasion (``OccasionArrays.quantity``); the per-customer
        total (``quantity_total``) is always there when the column is.

    Returns
    -------
    OccasionArrays
        The occasions up to and including the cutoff day.

    Notes
    -----
    One sort does the work: each row gets the key ``customer code * span + day``; when the key
    and the row number fit in 63 bits together they are packed into one int64 and sorted in
    place (a fast SIMD sort that also keeps same-day rows in input order), otherwise the keys
    are argsorted (stable). Same-day amounts are then summed in input order.
    """
    ns = transactions[TIMESTAMP].to_numpy(dtype="datetime64[ns]").view(np.int64)
    end_ns = np.datetime64(cutoff_end(cutoff), "ns").astype(np.int64)
    mask = ns < end_ns
    has_qty = "quantity" in transactions
    if not mask.any():
        empty_i = np.array([], dtype=np.int64)
        return OccasionArrays(
            customers=pd.Index([], dtype="string", name=CUSTOMER_ID),
            code=empty_i,
            day=empty_i,
            amount=np.array([], dtype=float),
            quantity=np.array([], dtype=float) if has_qty and occasion_quantity else None,
            starts=empty_i,
            counts=empty_i,
            max_timestamp=None,
            quantity_total=np.array([], dtype=float) if has_qty else None,
        )
    all_rows = bool(mask.all())
    ns_used = ns if all_rows else ns[mask]
    if ns_used.min() == np.iinfo(np.int64).min:
        raise ValueError("timestamp has missing values (NaT); validate the input first")
    max_ts = pd.Timestamp(int(ns_used.max()))
    days = np.floor_divide(ns_used, _NS_PER_DAY)
    del ns_used
    dmin = int(days.min())
    days -= dmin
    span = int(days.max()) + 1
    ids = transactions[CUSTOMER_ID]
    ids = ids if all_rows else ids[mask]
    n_rows = len(ids)
    row_bits = max(1, (n_rows - 1).bit_length())
    # Customer key: packed fixed-width ids when the (id, day, row) triple fits in 63 bits,
    # else dense codes from hashing. Either is in the order of the ids as strings.
    fixed = _fixed_width_keys(ids)
    packed = None
    if fixed is not None:
        packed, lo, radix, capacity = _pack_keys(fixed)
        del fixed
        if (capacity * span - 1).bit_length() + row_bits > 63:
            packed = None
    if packed is not None:
        key = packed
        customers = None
        n_keys = capacity
    else:
        key, customers = encode_customers(ids)
        n_keys = len(customers)
    del ids
    qty = None
    if has_qty:
        qty = transactions["quantity"].to_numpy(float, na_value=0.0)
        qty = qty if all_rows else qty[mask]
    key *= span
    key += days
    del days
    key_bits = max(1, (n_keys * span - 1).bit_length())
    if key_bits + row_bits <= 63:
        key <<= row_bits
        key |= np.arange(n_rows, dtype=np.int64)
        key.sort()
        order = key & ((1 << row_bits) - 1)
        key >>= row_bits
    else:  # pragma: no cover - needs more than 2**63 (customer, day, row) combinations
        order = np.argsort(key, kind="stable")
        key = key[order]
    new_occ = np.empty(n_rows, dtype=bool)
    new_occ[0] = True
    np.not_equal(key[1:], key[:-1], out=new_occ[1:])
    occ_key = key[new_occ]
    del key
    occ_id = np.cumsum(new_occ, dtype=np.int64)
    occ_id -= 1
    del new_occ
    amount_in = transactions["amount"].to_numpy(float)
    amount = _segment_sums(amount_in if all_rows else amount_in[mask], order, occ_id)
    quantity = None
    if qty is not None:
        quantity = _segment_sums(qty, order, occ_id)
    del qty
    del order, occ_id
    group = occ_key // span  # packed id or dense code, non-decreasing
    day = occ_key % span + dmin
    del occ_key
    n_occ = len(group)
    new_customer = np.empty(n_occ, dtype=bool)
    new_customer[0] = True
    np.not_equal(group[1:], group[:-1], out=new_customer[1:])
    starts = np.flatnonzero(new_customer)
    counts = np.diff(np.r_[starts, n_occ])
    if customers is None:
        customers = _keys_to_ids(_unpack_keys(group[starts], lo, radix))
    elif len(starts) != len(customers):  # pragma: no cover - codes come from used rows only
        raise AssertionError("customer codes out of step with occasions")
    del group
    code = np.cumsum(new_customer, dtype=np.int64)
    code -= 1
    del new_customer
    quantity_total = None
    if quantity is not None:
        quantity_total = np.bincount(code, weights=quantity, minlength=len(starts))
        if not occasion_quantity:
            quantity = None
    return OccasionArrays(
        customers=customers,
        code=code,
        day=day,
        amount=amount,
        quantity=quantity,
        starts=starts,
        counts=counts,
        max_timestamp=max_ts,
        quantity_total=quantity_total,
    )


def purchase_occasions(transactions: pd.DataFrame, cutoff: dt.date | str) -> pd.DataFrame:
    """Merge same-day transactions into purchase occasions, up to and including the cutoff.

    Parameters
    ----------
    transactions : DataFrame
        Transactions in the contract of :data:`retain.contracts.TRANSACTIONS`.
    cutoff : date or str
        The as-of date (required; included).

    Returns
    -------
    DataFrame
        Columns ``customer_id`` (str), ``day`` (int, days since 1970-01-01), ``amount`` (sum of
        the day's transactions) and, when present in the input, ``quantity`` (sum). Sorted by
        customer then day, with a fresh RangeIndex.
    """
    occ = occasion_arrays(transactions, cutoff, occasion_quantity=True)
    out = {
        CUSTOMER_ID: pd.array(occ.customers.take(occ.code), dtype="string"),
        "day": occ.day,
        "amount": occ.amount,
    }
    if occ.quantity is not None:
        out["quantity"] = occ.quantity
    return pd.DataFrame(out)


def _summary(
    customers: pd.Index,
    day: np.ndarray,
    amount: np.ndarray,
    starts: np.ndarray,
    ends: np.ndarray,
    cutoff: dt.date | str,
    time_unit: TimeUnit,
) -> pd.DataFrame:
    if time_unit not in UNIT_DAYS:
        raise ValueError(f"time_unit must be 'D' or 'W', got {time_unit!r}")
    unit = UNIT_DAYS[time_unit]
    name = UNIT_NAMES[time_unit]
    if len(starts) == 0:
        empty = pd.DataFrame(
            {"frequency": [], f"recency_{name}": [], f"tenure_{name}": [], "monetary_value": []},
            index=pd.Index([], dtype="string", name=CUSTOMER_ID),
        )
        return empty.astype({"frequency": np.int64})
    frequency = (ends - starts).astype(np.int64)
    totals = np.add.reduceat(amount, starts)
    repeat_total = totals - amount[starts]
    with np.errstate(invalid="ignore", divide="ignore"):
        monetary = np.where(frequency > 0, repeat_total / np.maximum(frequency, 1), 0.0)
    first, last = day[starts], day[ends]
    return pd.DataFrame(
        {
            "frequency": frequency,
            f"recency_{name}": (last - first) / unit,
            f"tenure_{name}": (cutoff_day(cutoff) - first) / unit,
            "monetary_value": monetary,
        },
        index=customers,
        copy=False,
    )


def summary_from_occasions(
    occasions: pd.DataFrame, cutoff: dt.date | str, time_unit: TimeUnit = "D"
) -> pd.DataFrame:
    """RFM summary from the output of :func:`purchase_occasions`.

    Parameters
    ----------
    occasions : DataFrame
        Sorted purchase occasions as returned by :func:`purchase_occasions`.
    cutoff : date or str
        The as-of date used to build ``occasions``.
    time_unit : {"D", "W"}
        Unit of recency and tenure: days or weeks (7 days, fractional).

    Returns
    -------
    DataFrame
        See :func:`rfm_summary`.
    """
    ids = occasions[CUSTOMER_ID].to_numpy()
    n = len(ids)
    starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]]) if n else np.array([], np.int64)
    ends = np.r_[starts[1:], n] - 1 if n else starts
    customers = pd.Index(ids[starts], dtype="string", name=CUSTOMER_ID)
    return _summary(
        customers,
        occasions["day"].to_numpy(np.int64),
        occasions["amount"].to_numpy(float),
        starts,
        ends,
        cutoff,
        time_unit,
    )


def summary_from_arrays(
    occ: OccasionArrays, cutoff: dt.date | str, time_unit: TimeUnit = "D"
) -> pd.DataFrame:
    """RFM summary from :func:`occasion_arrays` (same output as :func:`rfm_summary`).

    Parameters
    ----------
    occ : OccasionArrays
        Occasions built for ``cutoff``.
    cutoff : date or str
        The as-of date used to build ``occ``.
    time_unit : {"D", "W"}
        Unit of recency and tenure.

    Returns
    -------
    DataFrame
        See :func:`rfm_summary`.
    """
    return _summary(occ.customers, occ.day, occ.amount, occ.starts, occ.ends, cutoff, time_unit)


def rfm_summary(
    transactions: pd.DataFrame, cutoff: dt.date | str, time_unit: TimeUnit = "D"
) -> pd.DataFrame:
    """Frequency, recency, tenure and monetary value per customer as of ``cutoff``.

    Parameters
    ----------
    transactions : DataFrame
        Validated transactions (``customer_id``, ``timestamp``, ``amount``, ...).
    cutoff : date or str
        The as-of date, required and included. Later rows are ignored.
    time_unit : {"D", "W"}
        Unit of recency and tenure: days, or weeks of 7 days (fractional).

    Returns
    -------
    DataFrame
        Indexed by ``customer_id`` (sorted), one row per customer with a purchase on or before
        the cutoff, columns ``frequency`` (int), ``recency_<unit>``, ``tenure_<unit>`` and
        ``monetary_value``, where ``<unit>`` is ``days`` or ``weeks``.
    """
    if time_unit not in UNIT_DAYS:
        raise ValueError(f"time_unit must be 'D' or 'W', got {time_unit!r}")
    return summary_from_arrays(occasion_arrays(transactions, cutoff), cutoff, time_unit)
