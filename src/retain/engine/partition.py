"""Customer hash partitions: every row of a customer, in every table, lands in one partition.

The partition of a row is a stable hash of its customer id *as validation will read it*
(stripped, missing markers removed, ``data.id_normalisation`` applied), so two spellings of
one customer never end up in different partitions. Rows whose id is missing go to partition
0, where validation rejects them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from retain.contracts import CUSTOMER_ID
from retain.validation import IdNormalisation, _clean_text, normalise_ids

__all__ = ["RawPart", "customer_partition", "split_tables"]


def customer_partition(
    raw_ids: pd.Series,
    n_partitions: int,
    null_values: Sequence[str] = (),
    id_normalisation: IdNormalisation = "none",
) -> np.ndarray:
    """The partition (0 .. n-1) of each row from its raw customer id.

    Parameters
    ----------
    raw_ids : Series
        Customer ids as read.
    n_partitions : int
        Number of partitions.
    null_values : sequence of str
        ``data.null_values``.
    id_normalisation : {"none", "integer_text"}
        ``data.id_normalisation``.

    Returns
    -------
    ndarray of int64
    """
    if n_partitions == 1:
        return np.zeros(len(raw_ids), dtype=np.int64)
    ids = normalise_ids(_clean_text(raw_ids, null_values), id_normalisation)
    text = ids.fillna("").to_numpy(dtype=object)
    hashed = pd.util.hash_array(text, categorize=True)
    return (hashed % np.uint64(n_partitions)).astype(np.int64)


@dataclass
class RawPart:
    """The raw rows of one partition's customers, per table, with their row numbers in the source.

    Attributes
    ----------
    tables : dict
        Table name to its rows (a fresh RangeIndex), or None when the source lacks the table.
    rows : dict
        Table name to the 0-based source row number of each row (rejects are reported with it).
    """

    tables: dict[str, pd.DataFrame | None] = field(default_factory=dict)
    rows: dict[str, np.ndarray] = field(default_factory=dict)


def split_tables(
    tables: dict[str, pd.DataFrame | None],
    n_partitions: int,
    null_values: Sequence[str] = (),
    id_normalisation: IdNormalisation = "none",
) -> list[RawPart]:
    """Split raw tables held in memory into customer partitions.

    Parameters
    ----------
    tables : dict
        Table name to its raw rows (or None).
    n_partitions : int
        Number of partitions.
    null_values, id_normalisation
        As for :func:`customer_partition`.

    Returns
    -------
    list of RawPart
        One per partition, in partition order.
    """
    parts = [RawPart() for _ in range(n_partitions)]
    for name, frame in tables.items():
        if frame is None:
            for part in parts:
                part.tables[name] = None
            continue
        ids = frame[CUSTOMER_ID] if CUSTOMER_ID in frame.columns else frame.index.to_series()
        which = customer_partition(ids, n_partitions, null_values, id_normalisation)
        order = np.argsort(which, kind="stable")
        bounds = np.searchsorted(which[order], np.arange(n_partitions + 1))
        for p, part in enumerate(parts):
            rows = order[bounds[p] : bounds[p + 1]]
            part.tables[name] = frame.iloc[rows].reset_index(drop=True)
            part.rows[name] = rows.astype(np.int64)
    return parts
