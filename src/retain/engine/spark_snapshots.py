"""The churn training data set on Spark: the passes of :mod:`retain.engine.snapshots` in tasks.

:func:`build_dataset_spark` gives what :func:`retain.engine.snapshots.build_dataset_partitioned`
(and :func:`retain.churn.train.prepare_dataset` on the whole population) gives, with the same
functions of one partition running in ``mapInPandas`` tasks:

1. The raw tables are read and spread over the partitions by customer as for scoring
   (:func:`retain.engine.spark.customer_rows`, persisted); each task validates its customers'
   rows as of ``data.observed_until`` (:func:`retain.engine.snapshots.check_part`) and sends
   its inputs' record, customers and event counts per type and day to the driver, which makes
   the global choices (:func:`retain.engine.snapshots.plan_dataset`: cutoffs, split, event
   types, the leakage check's customers).
2. Each task validates its rows again (and as of every cutoff when returns are netted) and
   runs :func:`retain.engine.snapshots.part_snapshots`: its base features and labels per
   cutoff stay on Spark (one Parquet blob per partition and cutoff, persisted); its RFM value
   counts, counted (frequency, recency, tenure) triples, the training rows' sample hashes and
   the leakage sample's rows go to the driver.
3. The driver runs the leakage check on the sample and reduces the global values exactly
   (:func:`retain.engine.snapshots.population_values`: RFM cut points, the purchase model per
   cutoff, the sample's thresholds per (cutoff, label)).
4. Each task finishes its rows (:func:`retain.engine.snapshots.finish_part`: the training
   rows the ``churn.max_training_rows`` sample keeps, RFM scores, purchase-model features);
   the finished rows come to the driver one partition and cutoff at a time
   (``toLocalIterator``) and are stacked in customer order
   (:func:`retain.engine.snapshots.assemble_dataset`).

Everything a task sends travels as plain data (:mod:`retain.engine.wire`: JSON with ``.npy``
arrays and Parquet tables, each table's dtypes restored from its schema), never pickle; the
plan and the global values reach the tasks in the closures of the mapped functions, as the
scoring engine's population statistics do. LightGBM, calibration and evaluation then run on
the driver (:mod:`retain.jobs.train_churn`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from retain.config import ChurnConfig, ConfigError, RunConfig
from retain.engine import wire
from retain.engine.local import _validate
from retain.engine.snapshots import (
    PartInputs,
    PartitionedDataset,
    PartStats,
    assemble_dataset,
    check_part,
    check_sample,
    finish_part,
    part_snapshots,
    plan_dataset,
    population_values,
    restore_dtypes,
)
from retain.engine.spark import (
    _gather,
    _per_part,
    _raw_tables,
    _unpersisting,
    customer_rows,
    engine_run,
    task_raw_part,
)
from retain.inputs import observed_until as check_observed_until

if TYPE_CHECKING:
    from pyspark.sql import DataFrame as SparkFrame
    from pyspark.sql import SparkSession

__all__ = ["build_dataset_spark"]

Progress = Callable[[str], None]

_CUTOFF = "cutoff"
_BLOB = "blob"
_STATS = -1
"""The :data:`_CUTOFF` of a task's :class:`retain.engine.snapshots.PartStats` row."""


def _table_blob(table: pd.DataFrame) -> bytes:
    """A table and its schema (exact dtypes) as plain bytes."""
    return wire.dumps((table, table.iloc[:0]))


def _table_of(blob: bytes) -> pd.DataFrame:
    """The table :func:`_table_blob` sent, with its dtypes (categorical columns keep theirs:
    Parquet keeps their categories, the schema only their kind)."""
    table, schema = wire.loads(blob)
    dtypes = schema.dtypes
    plain = [not isinstance(t, pd.CategoricalDtype) for t in dtypes]
    return restore_dtypes(table, schema.index.dtype, dtypes[plain])


def build_dataset_spark(
    spark: SparkSession,
    cfg: RunConfig,
    work: Path,
    *,
    partitions: int,
    churn: ChurnConfig | None = None,
    progress: Progress | None = None,
    timings: dict[str, float] | None = None,
) -> PartitionedDataset:
    """The churn training data set of ``cfg``, its per-customer passes on Spark.

    Parameters
    ----------
    spark : SparkSession
        The session (tasks must see ``work`` for the embedded sources: a local master, or a
        shared file system).
    cfg : RunConfig
        The run configuration (``data``, ``features``, ``seed``).
    work : Path
        A folder for the intermediate files (the caller's to remove).
    partitions : int
        Spark partitions of the per-customer passes.
    churn : ChurnConfig, optional
        The churn section (default ``cfg.churn``); ``auto`` cutoffs are resolved from the
        data's first transaction day.
    progress : callable, optional
        Called with a short message per step.
    timings : dict, optional
        Filled with seconds per step.

    Returns
    -------
    PartitionedDataset
        As :func:`retain.engine.snapshots.build_dataset_partitioned` (``partitions`` the
        Spark partitions).

    Raises
    ------
    retain.churn.LeakageError
        When the split or a feature breaks the point-in-time rules.
    retain.io.DataError
        When the inputs fail validation (also when raised in a task).
    ConfigError
        A column mapping names no contract column.
    """
    churn = churn if churn is not None else cfg.churn
    if churn is None:
        raise ConfigError(f"config {cfg.name!r} has no 'churn' section")
    with engine_run(spark):
        return _build(
            spark,
            cfg,
            churn,
            work,
            partitions,
            progress or (lambda _m: None),
            timings if timings is not None else {},
        )


def _build(
    spark: SparkSession,
    cfg: RunConfig,
    churn: ChurnConfig,
    work: Path,
    partitions: int,
    note: Progress,
    clock: dict[str, float],
) -> PartitionedDataset:
    """:func:`build_dataset_spark` inside the engine's session settings."""
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    t0 = time.perf_counter()
    until = check_observed_until(cfg)
    data = cfg.data
    null_values, seed = data.null_values, cfg.seed
    netted = data.returns != "drop"
    work.mkdir(parents=True, exist_ok=True)
    note(f"reading the inputs into {partitions} Spark partitions")
    source, tables = _raw_tables(spark, cfg, work)
    if "transactions" not in tables:  # pragma: no cover - the config requires it
        raise ConfigError("data.transactions: no transactions table configured")
    metas, spread = customer_rows(tables, partitions, null_values, data.id_normalisation)
    schema = T.StructType(
        [
            T.StructField(_CUTOFF, T.LongType(), False),
            T.StructField(_BLOB, T.BinaryType(), False),
        ]
    )
    persisted: list[SparkFrame] = []
    with _unpersisting(persisted):
        rows = spread.persist()
        persisted.append(rows)

        # 1. validation as of the last observed day; the global choices on the driver
        note("validating on Spark")

        def check_step(frame: pd.DataFrame) -> tuple[Any, ...]:
            raw = task_raw_part(frame, metas, null_values)
            return check_part(raw, source, cfg, until)[1].as_tuple()

        checked = [PartInputs(*t) for t in _per_part(rows, check_step)]
        plan = plan_dataset(checked, cfg, churn, until)
        del checked
        if plan.resolved:
            note(plan.resolved)
        clock["load_inputs"] = clock.get("load_inputs", 0.0) + time.perf_counter() - t0

        # 2. base features and labels per partition and cutoff
        t0 = time.perf_counter()
        cutoffs = plan.split.all_cutoffs
        note(f"point-in-time features at {len(cutoffs)} cutoffs on Spark")

        def snapshots_step(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
            frame = _gather(batches)
            if frame is None:
                return
            raw = task_raw_part(frame, metas, null_values)
            inputs = _validate(raw, source, cfg, until)
            out: list[tuple[int, bytes]] = []

            def keep(c: int, base: pd.DataFrame) -> None:
                out.append((c, _table_blob(base)))

            stats = part_snapshots(
                inputs.transactions, inputs.events, raw if netted else None, source, cfg, plan, keep
            )
            out.append((_STATS, wire.dumps(stats.as_tuple())))
            yield pd.DataFrame({_CUTOFF: [c for c, _ in out], _BLOB: [b for _, b in out]})

        snapshots = rows.mapInPandas(snapshots_step, schema).persist()
        persisted.append(snapshots)
        cutoff_col = F.col(_CUTOFF)
        stats = [
            PartStats(*wire.loads(r[0]))
            for r in snapshots.where(cutoff_col == _STATS).select(_BLOB).collect()
        ]
        rows.unpersist()
        clock["features"] = clock.get("features", 0.0) + time.perf_counter() - t0

        # 3. the leakage check and the global values, on the driver
        t0 = time.perf_counter()
        if len(plan.sample):
            note(f"leakage check on {len(plan.sample):,} customers")
        check_sample(stats, plan, cfg)
        population = population_values(stats, plan)
        del stats
        clock["population"] = clock.get("population", 0.0) + time.perf_counter() - t0

        # 4. finishing per partition and cutoff; each cutoff's rows stacked on the driver
        t0 = time.perf_counter()
        note("RFM scores and purchase-model features on Spark")

        def finish_step(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
            for batch in batches:
                for c, blob in zip(batch[_CUTOFF], batch[_BLOB], strict=True):
                    done = finish_part(_table_of(blob), int(c), plan, population, seed)
                    yield pd.DataFrame({_CUTOFF: [int(c)], _BLOB: [_table_blob(done)]})

        finished = snapshots.where(cutoff_col != _STATS).mapInPandas(finish_step, schema)
        pieces: list[list[pd.DataFrame]] = [[] for _ in cutoffs]
        for row in finished.toLocalIterator():
            pieces[int(row[_CUTOFF])].append(_table_of(row[_BLOB]))
        dataset = assemble_dataset(pieces, plan, population, seed)
        clock["finishing"] = clock.get("finishing", 0.0) + time.perf_counter() - t0
    return PartitionedDataset(
        dataset, plan.record, plan.churn, plan.resolved, plan.features, partitions
    )
