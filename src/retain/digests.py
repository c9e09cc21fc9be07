"""Content digests of tables that do not depend on how the rows are split or ordered.

A table's digest is a SHA-256 over its columns, dtypes, named index, row count and two
64-bit sums of its row hashes (:func:`pandas.util.hash_pandas_object`, deterministic across
processes): the same rows give the same digest whether they were read whole, in chunks, or
in customer partitions on several machines, and any changed, added or removed row changes
it. Row order is not content: every result of retain is the same for the same rows in
another order.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pandas as pd

__all__ = ["DIGEST_CHUNK_ROWS", "TableDigest", "table_digest"]

DIGEST_CHUNK_ROWS = 1_000_000
"""Rows hashed at a time (memory stays bounded)."""

_DIGEST_HEX = 16


class TableDigest:
    """A table's digest, accumulated over parts of its rows (chunks, partitions).

    Parameters
    ----------
    like : DataFrame
        A frame with the table's columns, dtypes and index name (e.g. the first part); its
        rows are not added.
    """

    def __init__(self, like: pd.DataFrame) -> None:
        self.with_index = like.index.name is not None
        self.header = {
            "columns": [str(c) for c in like.columns],
            "dtypes": [str(t) for t in like.dtypes],
            "index": [str(like.index.name), str(like.index.dtype)] if self.with_index else None,
        }
        self.rows = 0
        self.sums = np.zeros(2, dtype=np.uint64)

    def empty_copy(self) -> TableDigest:
        """A digest of the same table shape that has seen no rows (to merge parts into)."""
        copy = TableDigest(pd.DataFrame())
        copy.with_index, copy.header = self.with_index, dict(self.header)
        return copy

    def update(self, frame: pd.DataFrame, chunk_rows: int = DIGEST_CHUNK_ROWS) -> TableDigest:
        """Add rows (a part of the table with the same columns and dtypes).

        Parameters
        ----------
        frame : DataFrame
            The rows.
        chunk_rows : int
            Rows hashed at a time.

        Returns
        -------
        TableDigest
            ``self``.
        """
        with np.errstate(over="ignore"):
            for start in range(0, len(frame), max(1, int(chunk_rows))):
                chunk = frame.iloc[start : start + chunk_rows]
                rows = pd.util.hash_pandas_object(chunk, index=self.with_index)
                h = rows.to_numpy(dtype=np.uint64)
                mixed = pd.util.hash_array(h)
                self.sums += np.array([h.sum(), mixed.sum()], dtype=np.uint64)
                self.rows += len(chunk)
        return self

    def merge(self, other: TableDigest) -> TableDigest:
        """Add the rows another part's digest has seen.

        Parameters
        ----------
        other : TableDigest
            The digest of another part of the same table.

        Returns
        -------
        TableDigest
            ``self``.
        """
        with np.errstate(over="ignore"):
            self.sums += other.sums
        self.rows += other.rows
        return self

    def hexdigest(self) -> str:
        """The digest: 16 hexadecimal characters."""
        payload = {**self.header, "rows": self.rows, "sums": [int(s) for s in self.sums]}
        return hashlib.sha256(json.dumps(payload).encode()).hexdigest()[:_DIGEST_HEX]


def table_digest(frame: pd.DataFrame, chunk_rows: int = DIGEST_CHUNK_ROWS) -> str:
    """A stable digest of a table's content (see the module docstring).

    Parameters
    ----------
    frame : DataFrame
        The table. A named index (``customers`` is indexed by ``customer_id``) is part of the
        row; an unnamed one (row positions) is not.
    chunk_rows : int
        Rows hashed at a time.

    Returns
    -------
    str
        16 hexadecimal characters.
    """
    return TableDigest(frame).update(frame, chunk_rows).hexdigest()
