"""Customer hash partitions: every row of a customer, in every table, lands in one partition.

The partition of a row is a stable hash of its customer id *as validation will read it*
(stripped, missing markers removed, ``data.id_normalisation`` applied), so two spellings of
one customer never end up in different partitions. Rows whose id is missing go to partition
0, where validation rejects them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from retain.contracts import CUSTOMER_ID
from retain.validation import IdNormalisation, _clean_text, normalise_ids

__all__ = [
    "MemoryParts",
    "RawPart",
    "SpilledParts",
    "customer_partition",
    "spill_tables",
    "split_tables",
]

ROW_COLUMN = "__retain_row"
"""Column holding a spilled row's 0-based row number in its source file."""


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


@dataclass
class MemoryParts:
    """Customer partitions of tables held in memory (:func:`split_tables`)."""

    parts: list[RawPart]

    @property
    def count(self) -> int:
        """Number of partitions."""
        return len(self.parts)

    def take(self, p: int) -> RawPart:
        """Partition ``p``'s rows (handed over once: the partition forgets them)."""
        part, self.parts[p] = self.parts[p], RawPart()
        return part


@dataclass
class SpilledParts:
    """Customer partitions of tables spilled to Parquet files (:func:`spill_tables`)."""

    folder: Path
    count: int
    schemas: dict[str, pa.Schema | None]

    def take(self, p: int) -> RawPart:
        """Partition ``p``'s rows, read from its files."""
        part = RawPart()
        for name, schema in self.schemas.items():
            if schema is None:
                part.tables[name] = None
                continue
            path = self.folder / f"{name}-{p}.parquet"
            table = pq.read_table(path) if path.exists() else schema.empty_table()
            frame = table.to_pandas()
            part.rows[name] = frame.pop(ROW_COLUMN).to_numpy(dtype=np.int64)
            part.tables[name] = frame
        return part


def spill_tables(
    readers: dict[str, Callable[[], Iterator[pd.DataFrame]] | None],
    n_partitions: int,
    folder: Path,
    null_values: Sequence[str] = (),
    id_normalisation: IdNormalisation = "none",
) -> SpilledParts:
    """Split tables read a batch at a time into customer partitions on disk.

    One pass over each table: every batch's rows go to their partition's Parquet file with
    their row number in the source, so memory is bounded by a batch, and each partition is
    later read on its own (:meth:`SpilledParts.take`).

    Parameters
    ----------
    readers : dict
        Table name to a function giving the table's batches in source order
        (:func:`retain.io.read.read_table_batches`), or None when the table is absent.
    n_partitions : int
        Number of partitions.
    folder : Path
        Where the partition files go (a temporary folder of the caller's).
    null_values, id_normalisation
        As for :func:`customer_partition`.

    Returns
    -------
    SpilledParts
    """
    schemas: dict[str, pa.Schema | None] = {}
    for name, reader in readers.items():
        if reader is None:
            schemas[name] = None
            continue
        writers: dict[int, pq.ParquetWriter] = {}
        schema: pa.Schema | None = None
        offset = 0
        try:
            for batch in reader():
                batch = batch.reset_index(drop=True)
                batch[ROW_COLUMN] = np.arange(offset, offset + len(batch), dtype=np.int64)
                offset += len(batch)
                ids = batch[CUSTOMER_ID]
                which = customer_partition(ids, n_partitions, null_values, id_normalisation)
                table = pa.Table.from_pandas(batch, schema=schema, preserve_index=False)
                schema = table.schema if schema is None else schema
                order = np.argsort(which, kind="stable")
                bounds = np.searchsorted(which[order], np.arange(n_partitions + 1))
                for p in range(n_partitions):
                    rows = order[bounds[p] : bounds[p + 1]]
                    if len(rows) == 0:
                        continue
                    if p not in writers:
                        writers[p] = pq.ParquetWriter(folder / f"{name}-{p}.parquet", schema)
                    writers[p].write_table(table.take(pa.array(rows)))
        finally:
            for writer in writers.values():
                writer.close()
        schemas[name] = schema
    return SpilledParts(folder, n_partitions, schemas)
