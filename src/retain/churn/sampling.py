"""A cap on the training rows: a seeded sample stratified by cutoff and label.

``churn.max_training_rows`` bounds the stacked training snapshot rows LightGBM trains on (on
the driver). When there are more, :func:`stratified_sample` keeps exactly the cap:

- **Stratified.** The rows are split into cells by (cutoff, label). Each cell keeps its
  share of the cap, ``cap * n_cell / n_total``, rounded down, and the rows still missing to
  reach the cap go one each to the cells with the largest remainders (the largest-remainder
  method; ties to the earlier cell in (cutoff, label) order). So the total is exactly the cap
  and every cell is within one row of its proportional share; the churn rate and the weight
  of every cutoff are those of the full data.
- **Seeded and independent of row order.** Within a cell the rows are ranked by a seeded
  64-bit hash of their key (customer id and cutoff) and the lowest ranks are kept. Which rows
  are kept depends on the data, the cap and the seed only, never on the order the rows come
  in; a different seed gives another sample. The kept rows keep their input order, so the
  same input gives the same training matrix, hence the same model.

Only the training rows are sampled (:func:`cap_training_rows`): the validation rows (early
stopping and the calibrator) and the test rows (the metrics) are always complete, so metrics
stay comparable with and without a cap.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from retain.churn.dataset import LABEL, ChurnDataset
from retain.contracts import CUSTOMER_ID

CUTOFF = "cutoff"
STRATA = (CUTOFF, LABEL)
"""Columns whose value pairs are the sampling cells."""

SAMPLE_KEY = (CUSTOMER_ID, CUTOFF)
"""Columns that identify a snapshot row; the sample ranks rows by their seeded hash."""

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """The splitmix64 finaliser, element-wise on uint64 (a bijection that mixes all bits)."""
    z = x + _GOLDEN
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def row_hash(frame: pd.DataFrame, seed: int, key: Sequence[str] = SAMPLE_KEY) -> np.ndarray:
    """A seeded 64-bit hash of each row's key columns.

    Parameters
    ----------
    frame : DataFrame
        Rows holding the ``key`` columns.
    seed : int
        Seed mixed into every hash: another seed ranks the rows in another order.
    key : sequence of str
        Columns identifying a row.

    Returns
    -------
    ndarray of uint64, shape (len(frame),)
        Depends only on the row's key values and the seed (not on its position or index).
    """
    with np.errstate(over="ignore"):
        base = pd.util.hash_pandas_object(frame[list(key)], index=False).to_numpy(np.uint64)
        salt = _splitmix64(np.array([np.uint64(int(seed) % 2**64)], dtype=np.uint64))
        return _splitmix64(base ^ salt[0])


def allocate(counts: Sequence[int] | np.ndarray, cap: int) -> np.ndarray:
    """Rows each cell keeps: proportional shares of ``cap``, rounded to sum exactly to it.

    Parameters
    ----------
    counts : sequence of int
        Rows per cell, in cell order.
    cap : int
        Rows to keep in total.

    Returns
    -------
    ndarray of int64
        Rows kept per cell: ``floor(cap * n / N)``, plus one for the cells with the largest
        remainders ``cap * n mod N`` (ties to the earlier cell) until the total is ``cap``;
        every cell's count when ``cap >= N``.

    Raises
    ------
    ValueError
        When ``cap`` is not positive or a count is negative.
    """
    n = np.asarray(counts, dtype=np.int64)
    if cap <= 0:
        raise ValueError(f"the cap must be positive, got {cap}")
    if (n < 0).any():
        raise ValueError("cell counts must be non-negative")
    total = int(n.sum())
    if cap >= total:
        return n.copy()
    scaled = [int(cap) * int(k) for k in n]  # exact integers (no float rounding)
    kept = np.array([s // total for s in scaled], dtype=np.int64)
    remainder = np.array([s % total for s in scaled], dtype=np.int64)
    missing = int(cap) - int(kept.sum())
    order = np.lexsort((np.arange(len(n)), -remainder))  # largest remainder, then cell order
    kept[order[:missing]] += 1
    return kept


def stratified_sample(
    frame: pd.DataFrame,
    cap: int | None,
    seed: int,
    by: Sequence[str] = STRATA,
    key: Sequence[str] = SAMPLE_KEY,
) -> pd.DataFrame:
    """At most ``cap`` rows of ``frame``: a seeded sample stratified by the ``by`` columns.

    Parameters
    ----------
    frame : DataFrame
        Rows to sample (e.g. the stacked training snapshots).
    cap : int or None
        Rows to keep; None, or a cap of at least ``len(frame)``, returns ``frame`` itself.
    seed : int
        Seed of the row ranking (the config's ``seed``).
    by : sequence of str
        Columns whose value combinations are the cells (default cutoff and label).
    key : sequence of str
        Columns identifying a row (default customer id and cutoff); rows are ranked within
        their cell by the seeded hash of these (:func:`row_hash`).

    Returns
    -------
    DataFrame
        Exactly ``cap`` rows (or ``frame`` unchanged), each cell within one row of its
        proportional share (:func:`allocate`), in the input's row order with its index.
        Which rows are kept does not depend on the input's row order.

    Raises
    ------
    ValueError
        When ``cap`` is not positive.
    """
    if cap is None:
        return frame
    if cap <= 0:
        raise ValueError(f"the cap must be positive, got {cap}")
    if cap >= len(frame):
        return frame
    cells = frame.groupby(list(by), sort=True, observed=True, dropna=False).ngroup()
    code = cells.to_numpy(dtype=np.int64)
    counts = np.bincount(code)
    quota = allocate(counts, int(cap))
    h = row_hash(frame, seed, key)
    order = np.lexsort((h, code))
    same = (h[order][1:] == h[order][:-1]) & (code[order][1:] == code[order][:-1])
    if same.any():  # a hash collision (or a repeated key): break the tie by the key values
        ties = [pd.factorize(frame[c], sort=True)[0] for c in reversed(list(key))]
        order = np.lexsort((*ties, h, code))
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    sorted_code = code[order]
    rank = np.arange(len(order)) - starts[sorted_code]
    keep = np.zeros(len(frame), dtype=bool)
    keep[order[rank < quota[sorted_code]]] = True
    return frame.iloc[np.flatnonzero(keep)]


def cell_counts(
    before: pd.DataFrame, after: pd.DataFrame, by: Sequence[str] = STRATA
) -> pd.DataFrame:
    """Rows per cell before and after sampling.

    Parameters
    ----------
    before, after : DataFrame
        The full rows and the kept rows.
    by : sequence of str
        The cell columns.

    Returns
    -------
    DataFrame
        The ``by`` columns, ``rows`` (before) and ``kept`` (after), one row per cell in cell
        order.
    """
    cols = list(by)
    rows = before.groupby(cols, sort=True, observed=True, dropna=False).size().rename("rows")
    kept = after.groupby(cols, sort=True, observed=True, dropna=False).size().rename("kept")
    out = pd.concat([rows, kept], axis=1).fillna(0).astype("int64")
    return out.reset_index()


@dataclass(frozen=True)
class TrainingSample:
    """What the training-row cap did: the cap, the seed and the rows per (cutoff, label).

    Attributes
    ----------
    max_rows : int or None
        ``churn.max_training_rows`` (None: no cap).
    seed : int
        Seed of the sample.
    rows_total : int
        Training rows built.
    rows_used : int
        Training rows LightGBM trains on.
    cells : DataFrame
        ``cutoff``, ``churned``, ``rows``, ``kept`` per cell (:func:`cell_counts`).
    """

    max_rows: int | None
    seed: int
    rows_total: int
    rows_used: int
    cells: pd.DataFrame

    @property
    def sampled(self) -> bool:
        """Whether rows were left out."""
        return self.rows_used < self.rows_total

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON data for the run's records (dates as ISO text)."""
        cells = [
            {
                CUTOFF: pd.Timestamp(row[CUTOFF]).date().isoformat(),
                LABEL: int(row[LABEL]),
                "rows": int(row["rows"]),
                "kept": int(row["kept"]),
            }
            for row in self.cells.to_dict("records")
        ]
        return {
            "max_training_rows": self.max_rows,
            "seed": int(self.seed),
            "sampled": self.sampled,
            "stratified_by": list(STRATA),
            "training_rows_total": int(self.rows_total),
            "training_rows_used": int(self.rows_used),
            "cells": cells,
        }


def cap_training_rows(dataset: ChurnDataset, max_rows: int | None, seed: int) -> ChurnDataset:
    """The data set with its training rows capped (validation and test rows untouched).

    Parameters
    ----------
    dataset : ChurnDataset
        Snapshots of a checked time split.
    max_rows : int or None
        ``churn.max_training_rows``; None keeps every row.
    seed : int
        The config's ``seed``.

    Returns
    -------
    ChurnDataset
        A copy whose ``train`` is :func:`stratified_sample` of the training rows (the same
        frame when they fit) and whose ``training_sample`` records the counts; ``validation``
        and ``test`` are the same frames.
    """
    train = stratified_sample(dataset.train, max_rows, seed)
    sample = TrainingSample(
        max_rows=max_rows,
        seed=int(seed),
        rows_total=len(dataset.train),
        rows_used=len(train),
        cells=cell_counts(dataset.train, train),
    )
    return dataclasses.replace(dataset, train=train, training_sample=sample)
