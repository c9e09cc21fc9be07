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
The module runs past ~600 lines because the id encoding, the sort and the reductions are one
algorithm whose memory bounds (chunked passes, freed temporaries) only hold together.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from retain.contracts import CUSTOMER_ID, TIMESTAMP
from retain.timeline import UNIT_DAYS, cutoff_end

TimeUnit = Literal["D", "W"]
UNIT_NAMES: dict[str, str] = {"D": "days", "W": "weeks"}

_EPOCH_DAY = np.datetime64("1970-01-01", "D")
_NS_PER_DAY = 86_400 * 10**9
_CHUNK = 1 << 20  # rows per block in the chunked passes (bounds temporary memory)


def cutoff_day(cutoff: dt.date | str | pd.Timestamp) -> int:
    """The cutoff as whole days since 1970-01-01 (the cutoff day itself is included)."""
    return int((np.datetime64(pd.Timestamp(cutoff).date(), "D") - _EPOCH_DAY).astype(np.int64))


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


def _fixed_width_bytes(ids: pd.Series) -> np.ndarray | None:
    """The bytes of Arrow string ids of one byte length up to 8, one row per byte position.

    Returns a ``(8, n)`` uint8 array whose row ``j`` holds byte ``j`` of every id (zero-padded
    to 8 bytes), or None when the ids are not Arrow strings of one length from 1 to 8. For ids
    of equal length, comparing these bytes as a big-endian number is comparing the strings
    (UTF-8 byte order is code point order), so they can stand in for the ids: they pack, hash
    and sort much faster than strings.
    """
    dtype = ids.dtype
    if not (isinstance(dtype, pd.StringDtype) and dtype.storage == "pyarrow") or ids.hasnans:
        return None
    arrow = pa.chunked_array(ids.array.__arrow_array__())
    out = np.zeros((8, len(ids)), dtype=np.uint8)
    width = None
    pos = 0
    for chunk in arrow.chunks:
        if len(chunk) == 0:
            continue
        offset_type = np.int64 if pa.types.is_large_string(chunk.type) else np.int32
        offsets = np.frombuffer(chunk.buffers()[1], dtype=offset_type)
        offsets = offsets[chunk.offset : chunk.offset + len(chunk) + 1]
        w = int(offsets[1] - offsets[0])
        if w == 0 or w > 8 or (width is not None and w != width):
            return None
        if (np.diff(offsets) != w).any():
            return None
        width = w
        raw = np.frombuffer(chunk.buffers()[2], dtype=np.uint8)[offsets[0] : offsets[-1]]
        out[:w, pos : pos + len(chunk)] = raw.reshape(-1, w).T
        pos += len(chunk)
    return out if width is not None else None


def _bytes_to_keys(rows: np.ndarray) -> np.ndarray:
    """The ``(8, n)`` bytes of :func:`_fixed_width_bytes` as big-endian uint64 numbers."""
    keys = np.zeros(rows.shape[1], dtype=np.uint64)
    for row in rows:
        keys <<= np.uint64(8)
        keys |= row
    return keys


def _keys_to_ids(keys: np.ndarray) -> pd.Index:
    """Inverse of :func:`_bytes_to_keys` for the distinct keys."""
    raw = pa.array(keys.astype(">u8").view("S8"), type=pa.binary())
    return pd.Index(pd.array(raw.cast(pa.string()), dtype="string"), name=CUSTOMER_ID)


def _pack_keys(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Order-preserving dense packing of the id bytes of :func:`_fixed_width_bytes`.

    Each byte position is shifted by its smallest value and the positions are combined in
    mixed radix (most significant first), so ids such as ``"C0000001"`` (one constant letter,
    seven digits) pack into ``10**7`` values instead of ``2**64``, in the string order.

    Returns
    -------
    packed : ndarray of int64
        Packed values (all 0 when ``capacity >= 2**62``: then they are unusable).
    lo, radix : ndarray of int64
        Per byte position, the smallest byte and the number of byte values spanned.
    capacity : int
        Number of possible packed values.
    """
    lo = np.array([row.min() for row in rows], dtype=np.int64)
    radix = np.array([row.max() for row in rows], dtype=np.int64) - lo + 1
    capacity = 1
    for r in radix.tolist():
        capacity *= r
    packed = np.zeros(rows.shape[1], dtype=np.int64)
    if capacity >= 2**62:
        return packed, lo, radix, capacity
    offset = 0
    for j in range(8):
        if radix[j] > 1:
            packed *= radix[j]
            packed += rows[j]
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
    rows = _fixed_width_bytes(ids)
    if rows is None and isinstance(ids.dtype, pd.StringDtype) and ids.dtype.storage == "pyarrow":
        if ids.hasnans:
            raise ValueError("customer_id has missing values; validate the input first")
        # Arrow's hash encoding of the strings, then the distinct ids sorted (byte order =
        # code point order, as Python sorts strings) and the codes renumbered by rank.
        encoded = pa.chunked_array(ids.array.__arrow_array__()).dictionary_encode()
        encoded = encoded.combine_chunks() if encoded.num_chunks != 1 else encoded.chunk(0)
        dictionary = encoded.dictionary
        order = pc.sort_indices(dictionary).to_numpy()
        rank = np.empty(len(order), dtype=np.int64)
        rank[order] = np.arange(len(order), dtype=np.int64)
        codes = rank[encoded.indices.to_numpy(zero_copy_only=False)]
        uniques = pd.array(dictionary.take(pa.array(order)), dtype="string")
        return codes, pd.Index(uniques, name=CUSTOMER_ID)
    if rows is None:
        codes, uniques = pd.factorize(ids, sort=True)
        if len(codes) and codes.min() < 0:
            raise ValueError("customer_id has missing values; validate the input first")
        return codes.astype(np.int64, copy=False), pd.Index(
            uniques, dtype="string", name=CUSTOMER_ID
        )
    # Arrow's hash encoding, then the distinct keys sorted and the codes renumbered by rank.
    encoded = pa.array(_bytes_to_keys(rows)).dictionary_encode()
    del rows
    distinct = encoded.dictionary.to_numpy()
    order = np.argsort(distinct)
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order), dtype=np.int64)
    codes = rank[encoded.indices.to_numpy()]
    return codes, _keys_to_ids(distinct[order])


def _no_occasions(has_qty: bool, occasion_quantity: bool) -> OccasionArrays:
    """The occasions of a table with no row up to the cutoff."""
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


@dataclass(frozen=True)
class _CustomerIds:
    """How the customer part of the sort keys turns back into ids.

    Either the keys are packed fixed-width id bytes (``lo`` and ``radix`` unpack them) or dense
    codes into ``customers``; both follow the string order of the ids.
    """

    customers: pd.Index | None
    lo: np.ndarray | None = None
    radix: np.ndarray | None = None

    def of(self, keys: np.ndarray) -> pd.Index:
        """The ids of the distinct customer keys ``keys`` (sorted)."""
        if self.customers is not None:
            if len(keys) != len(self.customers):  # pragma: no cover - codes from used rows only
                raise AssertionError("customer codes out of step with occasions")
            return self.customers
        assert self.lo is not None and self.radix is not None
        return _keys_to_ids(_unpack_keys(keys, self.lo, self.radix))


def _customer_keys(
    ids: pd.Series, span: int, row_bits: int
) -> tuple[np.ndarray, int, _CustomerIds]:
    """Customer key of each row, the number of distinct keys, and how to read them back.

    Packed fixed-width ids when (id, day, row) fits in 63 bits, else dense codes from hashing.
    """
    rows = _fixed_width_bytes(ids)
    if rows is not None:
        key, lo, radix, n_keys = _pack_keys(rows)
        del rows
        if (n_keys * span - 1).bit_length() + row_bits <= 63:
            return key, n_keys, _CustomerIds(None, lo, radix)
        del key, lo, radix
    key, customers = encode_customers(ids)
    return key, len(customers), _CustomerIds(customers)


def _sort_rows(
    key: np.ndarray, n_keys: int, span: int, row_bits: int
) -> tuple[np.ndarray, np.ndarray | None, int]:
    """The (customer, day) keys sorted, same-day rows in input order.

    Returns the sorted keys, the row order and ``row_bits`` 0 when the keys had to be argsorted;
    else the keys sorted in place with the row number packed under each, None and ``row_bits``.
    """
    n_rows = len(key)
    if (n_keys * span - 1).bit_length() + row_bits > 63:  # pragma: no cover - > 2**63 keys
        order_all = np.argsort(key, kind="stable")
        return key[order_all], order_all, 0
    # Pack the row number under the key and sort in place: a fast SIMD sort that keeps the
    # rows of one (customer, day) in input order.
    key <<= row_bits
    for i in range(0, n_rows, _CHUNK):
        key[i : i + _CHUNK] |= np.arange(i, min(i + _CHUNK, n_rows), dtype=np.int64)
    key.sort()
    return key, None, row_bits


def _occasion_starts(key: np.ndarray, row_bits: int) -> np.ndarray:
    """Whether each sorted row starts a new (customer, day) occasion, in chunks."""
    n_rows = len(key)
    new_occ = np.empty(n_rows, dtype=bool)
    new_occ[0] = True
    for i in range(1, n_rows, _CHUNK):
        j = min(i + _CHUNK, n_rows)
        np.not_equal(key[i:j] >> row_bits, key[i - 1 : j - 1] >> row_bits, out=new_occ[i:j])
    return new_occ


def _sum_occasions(
    key: np.ndarray,
    row_bits: int,
    order_all: np.ndarray | None,
    amount_in: np.ndarray,
    qty_in: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Key, amount and quantity of each occasion from the sorted row keys.

    Chunks are cut at occasion boundaries; the amounts of each occasion are gathered and summed
    in input order (np.bincount adds in order from 0, so the sums do not depend on the
    chunking), without an n-row order array.
    """
    n_rows = len(key)
    row_mask = (1 << row_bits) - 1
    new_occ = _occasion_starts(key, row_bits)
    n_occ = int(np.count_nonzero(new_occ))
    occ_key = np.empty(n_occ, dtype=np.int64)
    amount = np.empty(n_occ, dtype=float)
    quantity = np.empty(n_occ, dtype=float) if qty_in is not None else None
    i = a = 0
    while i < n_rows:
        j = min(i + _CHUNK, n_rows)
        if j < n_rows:  # move the cut to the next occasion start
            k = j + int(np.argmax(new_occ[j:]))
            j = k if new_occ[k] else n_rows
        flags = new_occ[i:j]
        segment = np.cumsum(flags, dtype=np.int64)
        segment -= 1
        m = int(segment[-1]) + 1
        block = key[i:j]
        order = block & row_mask if order_all is None else order_all[i:j]
        amount[a : a + m] = np.bincount(segment, weights=np.take(amount_in, order), minlength=m)
        if quantity is not None:
            quantity[a : a + m] = np.bincount(segment, weights=np.take(qty_in, order), minlength=m)
        occ_key[a : a + m] = block[flags] >> row_bits
        a += m
        i = j
    return occ_key, amount, quantity


def _split_customers(
    occ_key: np.ndarray, span: int, dmin: int, ids: _CustomerIds
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, pd.Index]:
    """Day, customer code, customer starts and counts, and customer ids of the occasions.

    ``occ_key`` is consumed (divided in place into the customer part).
    """
    n_occ = len(occ_key)
    day = occ_key % span
    day += dmin
    group = occ_key  # packed id or dense code, non-decreasing
    group //= span
    new_customer = np.empty(n_occ, dtype=bool)
    new_customer[0] = True
    np.not_equal(group[1:], group[:-1], out=new_customer[1:])
    starts = np.flatnonzero(new_customer)
    counts = np.diff(np.r_[starts, n_occ])
    customers = ids.of(group[starts])
    del group
    code = np.cumsum(new_customer, dtype=np.int64)
    code -= 1
    return day, code, starts, counts, customers


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
    are argsorted (stable). Same-day amounts are then summed in input order. The steps free
    their large temporaries as they go (memory is bounded by a few n-row arrays).
    """
    ns = transactions[TIMESTAMP].to_numpy(dtype="datetime64[ns]").view(np.int64)
    end_ns = np.datetime64(cutoff_end(cutoff), "ns").astype(np.int64)
    mask = ns < end_ns
    has_qty = "quantity" in transactions
    if not mask.any():
        return _no_occasions(has_qty, occasion_quantity)
    all_rows = bool(mask.all())
    ns_used = ns if all_rows else ns[mask]
    if ns_used.min() == np.iinfo(np.int64).min:
        raise ValueError("timestamp has missing values (NaT); validate the input first")
    max_ts = pd.Timestamp(int(ns_used.max()))
    dmin = int(ns_used.min() // _NS_PER_DAY)
    span = int(ns_used.max() // _NS_PER_DAY) - dmin + 1
    ids = transactions[CUSTOMER_ID]
    ids = ids if all_rows else ids[mask]
    row_bits = max(1, (len(ids) - 1).bit_length())
    key, n_keys, customer_ids = _customer_keys(ids, span, row_bits)
    del ids
    key *= span
    days = np.floor_divide(ns_used, _NS_PER_DAY)
    del ns_used
    key += days
    key -= dmin
    del days
    amount_in = transactions["amount"].to_numpy(float)
    amount_in = amount_in if all_rows else amount_in[mask]
    qty_in = None
    if has_qty:
        qty_in = transactions["quantity"].to_numpy(float, na_value=0.0)
        qty_in = qty_in if all_rows else qty_in[mask]
    key, order_all, row_bits = _sort_rows(key, n_keys, span, row_bits)
    occ_key, amount, quantity = _sum_occasions(key, row_bits, order_all, amount_in, qty_in)
    del key, amount_in, qty_in, order_all
    day, code, starts, counts, customers = _split_customers(occ_key, span, dmin, customer_ids)
    del occ_key
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
