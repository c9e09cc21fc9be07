"""Scoring on Spark: the steps of :mod:`retain.scoring` run per customer partition.

:func:`score_customers_spark` gives exactly :func:`retain.scoring.score_customers`' output, but
the per-customer steps run in ``mapInPandas`` tasks:

1. the input tables (transactions, events, customer attributes) are unioned into one Spark
   DataFrame with a table tag and prefixed columns, repartitioned by ``customer_id`` so that
   every customer's rows meet in one partition, and :func:`retain.scoring.part_base` runs on
   each whole partition (base features plus the part's prospects);
2. the parts' RFM value counts and counted RFM triples are collected (small) and
   :func:`retain.scoring.population_stats` is built on the driver; it travels to the tasks in
   the closure of the mapped function (pickled in-process, never loaded from a file);
3. :func:`retain.scoring.part_scores` (each task also sends its part's drift counts,
   :mod:`retain.drift`, summed on the driver), then :func:`retain.scoring.part_actions` with
   the tier cuts from the CLV value counts (a Spark ``groupBy(clv).count()``);
4. the contacted customers are sorted on Spark (expected value saved, best first, missing
   last, ties by customer) and written to Parquet; the driver streams them a batch at a time
   through one :class:`retain.policy.BudgetRun` (its memory is one batch, whatever the
   population) and writes the decisions to Parquet, which are joined back, and
   :func:`retain.scoring.part_budget` runs per partition;
5. the degree counts are merged over the parts and :func:`retain.scoring.part_output` runs
   per partition; the result is collected, sorted by customer and given the dtypes of
   :func:`retain.scoring.score_customers`.

:func:`score_source_spark` is ``engine: spark`` of ``retain score``: it starts from the raw
source instead (files read by Spark: CSV as text with the stated dialect, row numbers from the
task offsets; Parquet with its ``_metadata.row_index``; the embedded sources via Parquet in the
work folder), spreads the rows by a hash of the customer id as validation reads it
(:func:`retain.engine.partition.customer_partition`), validates each partition in its task as
the local engine does and runs step 1 there too; the inputs' records and customer counts come
back to the driver (small) and are merged. Steps 2 to 5 are the same, and the tasks write the
output rows as Parquet parts (pandas dtypes) for the job to assemble.

Tables cross Spark as plain columns (double, bigint, string, boolean, timestamp without time
zone); their pandas dtypes are taken from a run of the same steps on a few customers on the
driver and restored in every task. Missing floats (NaN) become nulls in Spark and NaN again in
pandas.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import os
import re
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from retain.churn.dataset import LeakageError
from retain.clv.cutoff_features import rfm_triples
from retain.config import (
    ConfigError,
    CsvOptions,
    PolicyConfig,
    RunConfig,
    SegmentRules,
    TableSource,
)
from retain.contracts import CUSTOMER_ID, Contract, DataError
from retain.drift import DriftCounts, merge_counts
from retain.engine import wire
from retain.engine.local import PartitionedScores, _validate
from retain.engine.partition import RawPart, customer_partition
from retain.features.build import rfm_score_counts
from retain.features.segments import merge_value_counts
from retain.inputs import (
    CONTRACTS,
    _RawInputs,
    _read_source,
    customer_balance_of,
    customer_counts,
    file_settings,
    file_sources,
    merge_records,
    record_inputs,
)
from retain.io.read import _compute, _csv_header, _projection, _resolve, check_source_file
from retain.policy import BudgetRun, degree_counts, tier_cuts_from_counts
from retain.scoring import (
    PartBase,
    PopulationStats,
    ScoringModels,
    budget_over_table,
    check_finite,
    part_actions,
    part_base,
    part_budget,
    part_output,
    part_scores,
    population_stats,
)
from retain.timeline import day
from retain.validation import check_rows_used

if TYPE_CHECKING:
    from pyspark.sql import DataFrame as SparkFrame
    from pyspark.sql import SparkSession
    from pyspark.sql.types import DataType, StructType

__all__ = ["score_customers_spark", "score_source_spark"]

_TABLE = "__table"
_ROW = "__row"
_PROSPECT = "__prospect"
_OVER = "__over"
_PRIORITY = "__priority"
_SAMPLE_CUSTOMERS = 40
_PREFIX = {"transactions": "t__", "events": "e__", "customers": "c__"}


def _spark_type(dtype: Any) -> DataType:
    """The Spark type a pandas column of ``dtype`` travels as."""
    from pyspark.sql import types as T

    if pd.api.types.is_bool_dtype(dtype):
        return T.BooleanType()
    if pd.api.types.is_integer_dtype(dtype):
        return T.LongType()
    if pd.api.types.is_float_dtype(dtype):
        return T.DoubleType()
    if pd.api.types.is_datetime64_dtype(dtype):
        return T.TimestampNTZType()
    return T.StringType()


@dataclass(frozen=True)
class _Layout:
    """The pandas dtypes of a table and how it travels as Spark columns.

    Attributes
    ----------
    dtypes : dict
        Column name to pandas dtype, in order (``customer_id`` included).
    indexed : bool
        Whether the pandas table holds ``customer_id`` as its index (True) or as a column.
    """

    dtypes: dict[str, Any]
    indexed: bool

    @classmethod
    def of(cls, table: pd.DataFrame, indexed: bool) -> _Layout:
        """The layout of ``table`` (indexed by ``customer_id`` when ``indexed``)."""
        frame = table.reset_index() if indexed else table
        return cls({str(c): frame[c].dtype for c in frame.columns}, indexed)

    def fields(self, prefix: str = "") -> list[Any]:
        """Spark fields of the columns (names prefixed with ``prefix``), all nullable."""
        from pyspark.sql import types as T

        return [T.StructField(prefix + c, _spark_type(d), True) for c, d in self.dtypes.items()]

    def schema(self, *extra: Any) -> StructType:
        """Spark schema of the columns plus ``extra`` fields."""
        from pyspark.sql import types as T

        return T.StructType([*self.fields(), *extra])

    def encode(self, table: pd.DataFrame, prefix: str = "") -> pd.DataFrame:
        """``table`` as plain columns Spark takes (nullable ints and bools, object strings)."""
        frame = table.reset_index() if self.indexed else table
        missing = [c for c in self.dtypes if c not in frame.columns]
        if missing:
            raise ValueError(f"a part's table lacks the columns {missing[:5]}")
        out = {}
        for col, dtype in self.dtypes.items():
            s = frame[col]
            if pd.api.types.is_bool_dtype(dtype):
                s = s.astype("boolean")
            elif pd.api.types.is_integer_dtype(dtype):
                s = s.astype("Int64")
            elif pd.api.types.is_float_dtype(dtype):
                s = s.astype(float)
            elif pd.api.types.is_datetime64_dtype(dtype):
                s = s.astype("datetime64[us]")
            else:
                values = s.astype(object).to_numpy(copy=True)
                values[s.isna().to_numpy(dtype=bool)] = None
                s = pd.Series(values, index=s.index, dtype=object)
            out[prefix + col] = s.reset_index(drop=True)
        return pd.DataFrame(out)

    def decode(self, frame: pd.DataFrame, prefix: str = "") -> pd.DataFrame:
        """The pandas table back from Spark's columns, with the recorded dtypes."""
        cols = {}
        for col, dtype in self.dtypes.items():
            s = frame[prefix + col].reset_index(drop=True)
            if pd.api.types.is_datetime64_dtype(dtype):
                s = pd.to_datetime(s).astype(dtype)
            else:
                s = s.astype(dtype)
            cols[col] = s
        table = pd.DataFrame(cols)
        if self.indexed:
            table = table.set_index(CUSTOMER_ID).sort_index()
        return table


def _gather(batches: Iterator[pd.DataFrame]) -> pd.DataFrame | None:
    """All batches of a partition as one frame (None when the partition is empty)."""
    frames = [b for b in batches if len(b)]
    if not frames:
        return None
    return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]


def _per_part(df: SparkFrame, fn: Callable[[pd.DataFrame], Any]) -> list[Any]:
    """``fn`` of every non-empty partition of ``df`` (a small result each), on the driver."""
    from pyspark.sql import types as T

    schema = T.StructType([T.StructField("blob", T.BinaryType(), False)])

    def run(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        frame = _gather(batches)
        if frame is not None:
            yield pd.DataFrame({"blob": [wire.dumps(fn(frame))]})

    return [wire.loads(row["blob"]) for row in df.mapInPandas(run, schema).collect()]


@dataclass(frozen=True)
class _Layouts:
    """Layouts of the inputs and of every step's table."""

    inputs: dict[str, _Layout]
    base: _Layout
    scores: _Layout
    actions: _Layout
    budget: _Layout
    output: _Layout


def _sample_layouts(
    tables: dict[str, pd.DataFrame],
    as_of: pd.Timestamp,
    models: ScoringModels,
    policy: PolicyConfig,
    segment_rules: SegmentRules | None,
    chunk_size: int,
) -> _Layouts:
    """The steps' table layouts, from a run on a few customers on the driver."""
    tx = tables["transactions"]
    ids = np.sort(pd.unique(tx[CUSTOMER_ID].astype(object).to_numpy()))[:_SAMPLE_CUSTOMERS]
    small = {name: t[t[CUSTOMER_ID].isin(ids)] for name, t in tables.items()}
    part = part_base(
        small["transactions"], as_of, models, small.get("events"), small.get("customers")
    )
    stats = population_stats([rfm_score_counts(part.base)], [rfm_triples(part.base)], models)
    scores = part_scores(
        part, stats, models, policy, as_of, segment_rules=segment_rules, chunk_size=chunk_size
    )
    clv = scores["clv"].to_numpy(dtype=float)
    values, counts = np.unique(clv[~np.isnan(clv)], return_counts=True)
    actions = part_actions(scores, tier_cuts_from_counts(values, counts, policy.tiers), policy)
    budget = part_budget(actions, *budget_over_table(actions, policy))
    output = part_output(budget, degree_counts(budget, policy), models, policy, as_of)
    return _Layouts(
        {name: _Layout.of(t, indexed=False) for name, t in tables.items()},
        _Layout.of(part.base, indexed=True),
        _Layout.of(scores, indexed=True),
        _Layout.of(actions, indexed=True),
        _Layout.of(budget, indexed=True),
        _Layout.of(output, indexed=False),
    )


def _inputs_frame(
    spark: SparkSession, tables: dict[str, pd.DataFrame], layouts: _Layouts
) -> SparkFrame:
    """The input tables as one Spark DataFrame: table tag, row number, prefixed columns."""
    from pyspark.sql import types as T

    union: SparkFrame | None = None
    for name, table in tables.items():
        layout = layouts.inputs[name]
        frame = layout.encode(table, _PREFIX[name])
        frame.insert(0, CUSTOMER_ID, frame[_PREFIX[name] + CUSTOMER_ID])
        frame.insert(1, _TABLE, name)
        frame.insert(2, _ROW, np.arange(len(frame), dtype=np.int64))
        schema = T.StructType(
            [
                T.StructField(CUSTOMER_ID, T.StringType(), True),
                T.StructField(_TABLE, T.StringType(), False),
                T.StructField(_ROW, T.LongType(), False),
                *layout.fields(_PREFIX[name]),
            ]
        )
        df = spark.createDataFrame(frame, schema)
        union = df if union is None else union.unionByName(df, allowMissingColumns=True)
    assert union is not None
    return union


def _part_of(frame: pd.DataFrame, layout: _Layout) -> PartBase:
    """A part's :class:`retain.scoring.PartBase` from its encoded base rows and prospects."""
    prospect = frame[_PROSPECT].fillna(False).to_numpy(dtype=bool)
    base = layout.decode(frame[~prospect])
    ids = frame.loc[prospect, CUSTOMER_ID]
    prospects = pd.Index(ids.to_numpy(dtype=object), dtype="string", name=CUSTOMER_ID)
    return PartBase(base, prospects.sort_values())


def _encode_base(part: PartBase, layout: _Layout) -> pd.DataFrame:
    """A part's base rows and prospects (flagged :data:`_PROSPECT`) as Spark columns."""
    out = layout.encode(part.base)
    out[_PROSPECT] = False
    if len(part.prospects):
        extra = pd.DataFrame({CUSTOMER_ID: part.prospects.to_numpy(dtype=object), _PROSPECT: True})
        out = pd.concat([out, extra], ignore_index=True)
        for col, dtype in layout.dtypes.items():
            if pd.api.types.is_integer_dtype(dtype):
                out[col] = out[col].astype("Int64")
    return out


_ORDER = "__order"
"""The budget order's key column: expected value saved, missing as minus infinity."""
_STREAM_ROWS = 1_000_000
"""Contacted customers per batch the driver decides at a time (its memory bound)."""


def _decide_budgets(
    spark: SparkSession, actions: SparkFrame, policy: PolicyConfig, folder: Path
) -> SparkFrame:
    """Over-budget flags and priorities of the contacted customers, streamed through the driver.

    Spark sorts the contacted customers (expected value saved, best first, missing last, ties
    by customer) and writes them to ``folder`` as Parquet, one file per range of the order;
    the driver reads the files in that order a batch at a time and feeds one
    :class:`retain.policy.BudgetRun`, writing each batch's decisions to a Parquet file the
    tasks then read. The driver holds one batch, never the contacted population; ``folder``
    must be visible to the driver and the tasks (a local master, or a shared file system).

    Returns
    -------
    pyspark.sql.DataFrame
        ``customer_id``, :data:`_OVER`, :data:`_PRIORITY` of every contacted customer.
    """
    from pyspark.sql import functions as F

    ev = F.col("expected_value_saved")
    key = F.when(ev.isNull() | F.isnan(ev), F.lit(-np.inf)).otherwise(ev + F.lit(0.0))
    channel = F.coalesce(F.col("action_channel"), F.lit("<NA>"))
    folder.mkdir(parents=True, exist_ok=True)
    contacts = folder / "contacts"
    (
        actions.where(channel != F.lit("none"))
        .select(
            CUSTOMER_ID,
            channel.alias("action_channel"),
            "action_cost",
            "expected_value_saved",
            key.alias(_ORDER),
        )
        .orderBy(F.col(_ORDER).desc(), F.col(CUSTOMER_ID).asc())
        .write.mode("overwrite")
        .parquet(str(contacts))
    )
    decided = folder / "decisions.parquet"
    schema = pa.schema(
        [
            pa.field(CUSTOMER_ID, pa.string(), nullable=False),
            pa.field(_OVER, pa.bool_(), nullable=False),
            pa.field(_PRIORITY, pa.int64(), nullable=False),
        ]
    )
    run = BudgetRun(policy)
    last: tuple[float, str] | None = None
    with pq.ParquetWriter(decided, schema) as writer:
        # the writer's files are named by the task's partition number: their order is the sort
        for path in sorted(contacts.glob("part-*.parquet")):
            for batch in pq.ParquetFile(path).iter_batches(batch_size=_STREAM_ROWS):
                chunk = batch.to_pandas()
                if not len(chunk):
                    continue
                # best first: the order key falls, ties by customer id rising
                first = (-float(chunk[_ORDER].iloc[0]), str(chunk[CUSTOMER_ID].iloc[0]))
                if last is not None and first < last:
                    raise RuntimeError(
                        f"budget stream: {path.name} in {contacts} starts before the end of "
                        "the file before it, so the part files do not follow Spark's sort "
                        "order (a custom output committer renaming them?); score with Spark's "
                        "default Parquet committer"
                    )
                last = (-float(chunk[_ORDER].iloc[-1]), str(chunk[CUSTOMER_ID].iloc[-1]))
                over, priority = run.decide(
                    chunk["action_channel"].to_numpy(dtype=object),
                    chunk["action_cost"].to_numpy(dtype=float, na_value=np.nan),
                    chunk["expected_value_saved"].to_numpy(dtype=float, na_value=np.nan),
                )
                writer.write_table(
                    pa.table(
                        [
                            pa.array(chunk[CUSTOMER_ID].to_numpy(dtype=object), pa.string()),
                            pa.array(np.asarray(over, dtype=bool)),
                            pa.array(np.asarray(priority, dtype=np.int64)),
                        ],
                        schema=schema,
                    )
                )
    return spark.read.parquet(str(decided))


_CONF = {
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.sql.execution.pandas.convertToArrowArraySafely": "false",
}
"""Session settings the engine runs with (restored afterwards)."""


@contextlib.contextmanager
def _session_conf(spark: SparkSession) -> Iterator[None]:
    """Arrow on (see :data:`_CONF`) for the block; the previous values restored after."""
    saved = {key: spark.conf.get(key, None) for key in _CONF}
    for key, value in _CONF.items():
        spark.conf.set(key, value)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                spark.conf.unset(key)
            else:
                spark.conf.set(key, value)


@contextlib.contextmanager
def _unpersisting(persisted: list[SparkFrame]) -> Iterator[None]:
    """Unpersist every frame put into ``persisted`` when the block ends."""
    try:
        yield
    finally:
        for df in persisted:
            df.unpersist()


def score_customers_spark(
    spark: SparkSession,
    transactions: pd.DataFrame,
    as_of: dt.date | str,
    models: ScoringModels,
    policy: PolicyConfig,
    *,
    events: pd.DataFrame | None = None,
    customers: pd.DataFrame | None = None,
    segment_rules: SegmentRules | None = None,
    partitions: int = 4,
    chunk_size: int = 250_000,
    drift: list[DriftCounts] | None = None,
) -> pd.DataFrame:
    """Score every customer known at the as-of date, the per-customer steps on Spark.

    Parameters
    ----------
    spark : SparkSession
        The session (Arrow is used for the pandas conversions).
    transactions : DataFrame
        Validated transactions (rows after the as-of day are ignored).
    as_of : date or str
        The scoring date (included).
    models : ScoringModels
        CLV model, churn model and versions (sent to the tasks with the mapped functions).
    policy : PolicyConfig
        Stage rules, tiers, action table, budgets.
    events, customers : DataFrame, optional
        Validated events and customer attributes.
    segment_rules : SegmentRules, optional
        RFM segment rules.
    partitions : int
        Customer partitions of the per-customer steps.
    chunk_size : int
        Customers per churn/explanation chunk within a partition.
    drift : list, optional
        Receives the population's drift counts (the tasks' :func:`retain.drift.part_counts`
        summed, :func:`retain.drift.merge_counts`: those of
        :func:`retain.scoring.score_customers`) when the churn model has a reference profile.

    Returns
    -------
    DataFrame
        As :func:`retain.scoring.score_customers`: one row per customer, columns
        :data:`retain.scoring.OUTPUT_COLUMNS`, sorted by customer, RangeIndex.
    """
    with warnings.catch_warnings():
        # pyspark 4.3 warns on every Arrow conversion that it does not fully support pandas 3
        warnings.filterwarnings("ignore", "PySpark does not yet fully support", FutureWarning)
        warnings.filterwarnings("ignore", "The copy keyword is deprecated")
        return _score(
            spark,
            transactions,
            as_of,
            models,
            policy,
            events=events,
            customers=customers,
            segment_rules=segment_rules,
            partitions=partitions,
            chunk_size=chunk_size,
            drift=drift,
        )


def _score(
    spark: SparkSession,
    transactions: pd.DataFrame,
    as_of: dt.date | str,
    models: ScoringModels,
    policy: PolicyConfig,
    *,
    events: pd.DataFrame | None,
    customers: pd.DataFrame | None,
    segment_rules: SegmentRules | None,
    partitions: int,
    chunk_size: int,
    drift: list[DriftCounts] | None,
) -> pd.DataFrame:
    """:func:`score_customers_spark` without the warning filters."""
    from pyspark.sql import types as T

    as_of_ts = day(as_of)
    tables = {"transactions": transactions}
    if events is not None:
        tables["events"] = events
    if customers is not None:
        tables["customers"] = (
            customers if CUSTOMER_ID in customers.columns else customers.reset_index()
        )
    layouts = _sample_layouts(tables, as_of_ts, models, policy, segment_rules, chunk_size)
    persisted: list[SparkFrame] = []
    with (
        tempfile.TemporaryDirectory(prefix="retain-spark-") as work,
        _session_conf(spark),
        _unpersisting(persisted),
    ):
        inputs = _inputs_frame(spark, tables, layouts).repartition(partitions, CUSTOMER_ID)

        # 1. base features and prospects, per whole partition
        base_layout = layouts.base
        input_layouts = layouts.inputs

        def base_step(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
            frame = _gather(batches)
            if frame is None:
                return
            parts: dict[str, pd.DataFrame | None] = {}
            for name, layout in input_layouts.items():
                rows = frame[frame[_TABLE] == name].sort_values(_ROW)
                parts[name] = layout.decode(rows, _PREFIX[name])
            tx = parts["transactions"]
            assert tx is not None
            part = part_base(tx, as_of_ts, models, parts.get("events"), parts.get("customers"))
            yield _encode_base(part, base_layout)

        prospect_field = T.StructField(_PROSPECT, T.BooleanType(), True)
        base = inputs.mapInPandas(base_step, base_layout.schema(prospect_field)).persist()
        persisted.append(base)

        budget, degree_stats, counted = _policy_steps(
            spark,
            base,
            layouts,
            as_of_ts,
            models,
            policy,
            segment_rules,
            chunk_size,
            persisted,
            Path(work),
        )
        if drift is not None and counted is not None:
            drift.append(counted)
        output_layout = layouts.output
        budget_layout = layouts.budget

        def output_step(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
            for batch in batches:
                if len(batch):
                    table = budget_layout.decode(batch)
                    out = part_output(table, degree_stats, models, policy, as_of_ts)
                    yield output_layout.encode(out)

        result = budget.mapInPandas(output_step, output_layout.schema()).toPandas()
    result = result.sort_values(CUSTOMER_ID, kind="stable", ignore_index=True)
    return output_layout.decode(result).reset_index(drop=True)


def _policy_steps(
    spark: SparkSession,
    base: SparkFrame,
    layouts: _Layouts,
    as_of_ts: pd.Timestamp,
    models: ScoringModels,
    policy: PolicyConfig,
    segment_rules: SegmentRules | None,
    chunk_size: int,
    persisted: list[SparkFrame],
    work: Path,
) -> tuple[SparkFrame, dict[str, Any], DriftCounts | None]:
    """Steps 2 to 5 but the output rows: from the base features to the budget table.

    ``base`` holds the encoded base rows and prospects of every partition
    (:data:`_PROSPECT`); the persisted frames are appended to ``persisted`` (the caller
    unpersists them); the budget decisions go through ``work`` (:func:`_decide_budgets`).
    Returns the budget table (encoded), the merged degree counts
    :func:`retain.scoring.part_output` needs and the population's drift counts (each scoring
    task sends its part's on a row of its own; None without a reference profile).
    """
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    base_layout = layouts.base

    # 2. the population's statistics, on the driver
    def counts_of(frame: pd.DataFrame) -> tuple[Any, Any]:
        part = _part_of(frame, base_layout)
        return rfm_score_counts(part.base), rfm_triples(part.base)

    collected = _per_part(base, counts_of)
    stats: PopulationStats = population_stats(
        [c for c, _ in collected], [t for _, t in collected], models
    )

    # 3. scores, stages and reasons; then tiers and actions
    scores_layout = layouts.scores

    def scores_step(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        frame = _gather(batches)
        if frame is None:
            return
        part = _part_of(frame, base_layout)
        drift: list[DriftCounts] = []
        table = part_scores(
            part,
            stats,
            models,
            policy,
            as_of_ts,
            segment_rules=segment_rules,
            chunk_size=chunk_size,
            drift=drift,
        )
        out = scores_layout.encode(table)
        out[_BLOB] = None
        yield out
        if drift:  # the part's drift counts, on a row of their own
            meta = out.iloc[:0].reindex([0])
            meta[_BLOB] = [wire.dumps(drift[0].to_dict())]
            yield meta

    blob = F.col(_BLOB)
    blob_field = T.StructField(_BLOB, T.BinaryType(), True)
    scored = base.mapInPandas(scores_step, scores_layout.schema(blob_field)).persist()
    persisted.append(scored)
    drift_parts = [
        DriftCounts.from_dict(wire.loads(r[0]))
        for r in scored.where(blob.isNotNull()).select(blob).collect()
    ]
    drift = merge_counts(drift_parts) if drift_parts else None
    scores = scored.where(blob.isNull()).drop(_BLOB)
    clv = F.col("clv")
    clv_counts = scores.where(clv.isNotNull() & ~F.isnan(clv)).groupBy("clv").count().toPandas()
    clv_counts = clv_counts.sort_values("clv")
    cuts = tier_cuts_from_counts(
        clv_counts["clv"].to_numpy(dtype=float),
        clv_counts["count"].to_numpy(dtype=np.int64),
        policy.tiers,
    )
    actions_layout = layouts.actions

    def actions_step(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for batch in batches:
            if len(batch):
                table = part_actions(scores_layout.decode(batch), cuts, policy)
                yield actions_layout.encode(table)

    actions = scores.mapInPandas(actions_step, actions_layout.schema()).persist()
    persisted.append(actions)

    # 4. budgets and priorities: one sorted stream through one BudgetRun
    decided = _decide_budgets(spark, actions, policy, work)
    budget_layout = layouts.budget

    def budget_step(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for batch in batches:
            if not len(batch):
                continue
            table = actions_layout.decode(batch.sort_values(CUSTOMER_ID))
            flags = batch.sort_values(CUSTOMER_ID)
            drop = flags[_OVER].fillna(False).to_numpy(dtype=bool)
            prio = flags[_PRIORITY].fillna(0).to_numpy(dtype=np.int64)
            pr = pd.array(prio, dtype="Int64")
            pr[prio == 0] = pd.NA
            out = part_budget(table, drop, pd.Series(pr, index=table.index))
            yield budget_layout.encode(out)

    joined = actions.join(decided, on=CUSTOMER_ID, how="left")
    budget = joined.mapInPandas(budget_step, budget_layout.schema()).persist()
    persisted.append(budget)

    # 5. five degrees against the population; the output rows
    parts_degrees = _per_part(
        budget, lambda frame: degree_counts(budget_layout.decode(frame), policy)
    )
    names = {name for part in parts_degrees for name in part}
    degree_stats = {
        name: merge_value_counts([part[name] for part in parts_degrees if name in part])
        for name in sorted(names)
    }
    return budget, degree_stats, drift


# --------------------------------------------------------------- from the raw source

_KEY = "__key"
_BLOB = "__blob"
_KEY_BUCKETS = 2**31 - 1
"""Customer hash buckets (:func:`retain.engine.partition.customer_partition`) that Spark's
``repartition`` then spreads over the partitions."""
_SAMPLE_ROWS = 20_000
"""Raw rows per table validated on the driver for the steps' table layouts."""
_ENCODINGS = {"utf-8": "UTF-8", "utf-16": "UTF-16", "latin-1": "ISO-8859-1"}
_TABLES = ("transactions", "events", "customers")


@dataclass(frozen=True)
class _RawTable:
    """One raw input table on Spark, renamed to its contract.

    Attributes
    ----------
    frame : pyspark.sql.DataFrame or None
        The rows as read (contract names, other columns under their source names) plus the
        0-based row number in the source (:data:`_ROW`); None in what the tasks get.
    columns : list of str
        The table's columns (without :data:`_ROW`), in order.
    derived : dict
        Derived contract columns (:mod:`retain.expressions`), computed in the tasks.
    where : dict
        Per source column, its name in ``frame`` (what a derived column is computed from).
    decimal : str
        The decimal separator of the derived columns' text cells.
    """

    frame: SparkFrame | None
    columns: list[str]
    derived: dict[str, Any]
    where: dict[str, str]
    decimal: str = "."


def _frame(table: _RawTable) -> SparkFrame:
    """The table's Spark rows (on the driver)."""
    assert table.frame is not None
    return table.frame


def _spark_name(name: str) -> str:
    """A column name quoted for :func:`pyspark.sql.functions.col` (dots are no struct path)."""
    return "`" + name.replace("`", "``") + "`"


def _csv_frame(spark: SparkSession, path: Path, options: CsvOptions, names: list[str]) -> Any:
    """A CSV file as text columns ``_c0 ..`` read with the stated dialect, and its row numbers.

    The file is read whole per task (``multiLine``: a line break inside quotes is read right,
    as by DuckDB); the row number is the task's offset (rows of the earlier tasks, counted
    once when the file is split) plus the row's position in the task.
    """
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    schema = T.StructType(
        [T.StructField(f"_c{i}", T.StringType(), True) for i in range(len(names))]
    )
    reader = (
        spark.read.schema(schema)
        .option("header", True)
        .option("enforceSchema", True)
        .option("multiLine", True)
        .option("mode", "FAILFAST")
        .option("sep", options.delimiter)
        .option("quote", options.quote)
        .option("escape", (options.escape or options.quote) if options.quote else "\\")
        .option("encoding", _ENCODINGS[options.encoding])
    )
    df = reader.csv(str(path))
    if df.rdd.getNumPartitions() == 1:
        return df, F.monotonically_increasing_id()
    pid = F.spark_partition_id()
    counts = dict(df.groupBy(pid.alias("p")).count().select("p", "count").collect())
    offsets, total = [], 0
    for p in sorted(counts):
        offsets += [F.lit(p), F.lit(total - (p << 33))]
        total += counts[p]
    return df, F.monotonically_increasing_id() + F.element_at(F.create_map(*offsets), pid)


def _read_file(
    spark: SparkSession, spec: TableSource, contract: Contract, null_values: Any
) -> _RawTable:
    """One configured file as a :class:`_RawTable` (checked by
    :func:`retain.io.read.check_source_file`, columns renamed as
    :func:`retain.io.read.read_table_batches` does)."""
    from pyspark.sql import functions as F

    table = contract.name
    path = check_source_file(spec, contract)
    if spec.resolved_format == "parquet":
        df = spark.read.parquet(str(path))
        available = list(df.columns)
        source_col = {name: F.col(_spark_name(name)) for name in available}
        row = F.col("_metadata.row_index")
    else:
        available = _csv_header(path, spec.csv, table)
        df, row = _csv_frame(spark, path, spec.csv, available)
        source_col = {name: F.col(f"_c{i}") for i, name in enumerate(available)}
    plain, derived = _resolve(spec, contract, available)
    _items, where = _projection(spec, contract, plain, derived, available)
    selected = [(name, src) for name, src in plain.items() if src in available]
    used = {src for _, src in selected}
    selected += [(where[col], col) for col in available if col not in used]
    frame = df.select(*[source_col[src].alias(name) for name, src in selected], row.alias(_ROW))
    columns = [name for name, _ in selected]
    return _RawTable(frame, columns, derived, where, spec.csv.decimal)


def _raw_tables(
    spark: SparkSession, cfg: RunConfig, work: Path
) -> tuple[_RawInputs, dict[str, _RawTable]]:
    """The configured source's raw tables on Spark and its validation settings.

    Files are read by Spark; the embedded and generated sources (in memory anyway) are
    written to Parquet in ``work`` with their row numbers and read from there.
    """
    data = cfg.data
    if data.source == "files":
        tables = {
            name: _read_file(spark, spec, CONTRACTS[name], data.null_values)
            for name, spec in file_sources(cfg).items()
            if spec is not None
        }
        return file_settings(cfg), tables
    raw = _read_source(cfg)
    tables = {}
    for name, table in raw.tables.items():
        if table is None:
            continue
        frame = table if CUSTOMER_ID in table.columns else table.reset_index()
        frame = frame.reset_index(drop=True)
        columns = [str(c) for c in frame.columns]
        path = work / f"raw-{name}.parquet"
        frame.assign(**{_ROW: np.arange(len(frame), dtype=np.int64)}).to_parquet(
            path, index=False, coerce_timestamps="us", allow_truncated_timestamps=True
        )
        tables[name] = _RawTable(spark.read.parquet(str(path)), columns, {}, {})
    return dataclasses.replace(raw, tables={}, truth=None), tables


def _raw_part(
    frames: dict[str, pd.DataFrame], tables: dict[str, _RawTable], null_values: Any
) -> RawPart:
    """A :class:`retain.engine.partition.RawPart` from each table's raw rows (any order;
    :data:`_ROW` holds their row numbers): rows in source order, derived columns computed."""
    part = RawPart()
    for name in _TABLES:
        if name not in tables:
            part.tables[name] = None
            continue
        meta = tables[name]
        rows = frames[name].sort_values(_ROW, kind="stable")
        part.rows[name] = rows[_ROW].to_numpy(dtype=np.int64)
        table = rows[meta.columns].reset_index(drop=True)
        if meta.derived:
            table = _compute(
                table, meta.derived, meta.where, CONTRACTS[name], meta.decimal, null_values
            )
        part.tables[name] = table
    return part


def customer_rows(
    tables: dict[str, _RawTable], partitions: int, null_values: Any, how: Any
) -> tuple[dict[str, _RawTable], SparkFrame]:
    """Every raw table's rows in one Spark DataFrame, spread over partitions by customer.

    Each row carries its table (:data:`_TABLE`), its row number in the source, the hash
    bucket of its customer id as validation reads it
    (:func:`retain.engine.partition.customer_partition`) and its table's columns prefixed
    (:data:`_PREFIX`); the frame is repartitioned by the bucket, so every customer's rows of
    every table meet in one partition.

    Parameters
    ----------
    tables : dict
        The raw tables (:func:`_raw_tables`).
    partitions : int
        Spark partitions.
    null_values, how
        ``data.null_values`` and ``data.id_normalisation``.

    Returns
    -------
    metas : dict
        The tables without their Spark frames (what a task needs: :func:`task_raw_part`).
    rows : pyspark.sql.DataFrame
    """
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    metas = {name: dataclasses.replace(t, frame=None) for name, t in tables.items()}

    def bucket(ids: pd.Series) -> pd.Series:
        return pd.Series(customer_partition(ids, _KEY_BUCKETS, null_values, how))

    key = F.pandas_udf(bucket, T.LongType())  # type: ignore[call-overload]
    union: SparkFrame | None = None
    for name, table in tables.items():
        prefix = _PREFIX[name]
        tagged = _frame(table).select(
            F.lit(name).alias(_TABLE),
            F.col(_ROW),
            key(F.col(CUSTOMER_ID)).alias(_KEY),
            *[F.col(_spark_name(c)).alias(prefix + c) for c in table.columns],
        )
        union = tagged if union is None else union.unionByName(tagged, allowMissingColumns=True)
    assert union is not None
    return metas, union.repartition(partitions, _KEY)


def task_raw_part(frame: pd.DataFrame, metas: dict[str, _RawTable], null_values: Any) -> RawPart:
    """In a task, the :class:`retain.engine.partition.RawPart` of its :func:`customer_rows`.

    Parameters
    ----------
    frame : DataFrame
        The task's rows of :func:`customer_rows` (all batches).
    metas : dict
        The tables without their Spark frames.
    null_values
        ``data.null_values``.

    Returns
    -------
    RawPart
    """
    frames = {}
    for name, meta in metas.items():
        mine = frame[frame[_TABLE] == name]
        prefixed = [_PREFIX[name] + c for c in meta.columns]
        frames[name] = mine[[*prefixed, _ROW]].set_axis([*meta.columns, _ROW], axis=1)
    return _raw_part(frames, metas, null_values)


@contextlib.contextmanager
def engine_run(spark: SparkSession) -> Iterator[None]:
    """The block of an engine run from the raw source: its session settings
    (:data:`_CONF`), pandas-on-Arrow warnings of PySpark silenced, and task errors raised
    again as :class:`DataError` or :class:`ConfigError` (:func:`_task_errors`)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "PySpark does not yet fully support", FutureWarning)
        warnings.filterwarnings("ignore", "The copy keyword is deprecated")
        with _session_conf(spark), _task_errors():
            yield


_TASK_ERROR = re.compile(r"retain(?:\.\w+)*\.(DataError|ConfigError|LeakageError): ([^\n]*)")


@contextlib.contextmanager
def _task_errors() -> Iterator[None]:
    """A :class:`DataError`, :class:`ConfigError` or :class:`retain.churn.LeakageError`
    raised in a task raised again here."""
    kinds = {"DataError": DataError, "ConfigError": ConfigError, "LeakageError": LeakageError}
    try:
        yield
    except (DataError, ConfigError, LeakageError):
        raise
    except Exception as exc:
        found = _TASK_ERROR.findall(str(exc))
        if not found:
            raise
        kind, message = found[-1]
        raise kinds[kind](message) from None


def score_source_spark(
    spark: SparkSession,
    cfg: RunConfig,
    as_of: dt.date | str | pd.Timestamp,
    models: ScoringModels,
    policy: PolicyConfig,
    work: Path,
    *,
    partitions: int,
    segment_rules: SegmentRules | None = None,
    chunk_size: int = 250_000,
    timings: dict[str, float] | None = None,
    progress: Callable[[str], None] | None = None,
) -> PartitionedScores:
    """Score the customers of the configured source on Spark, from the raw rows.

    The raw tables (files read by Spark, or the embedded source's tables) are spread over
    ``partitions`` by customer (:func:`retain.engine.partition.customer_partition`, which
    reads an id as validation will); each task validates its customers' rows as the local
    engine does (rejects at their row number in the source), builds their base features and
    sends its inputs' record and customer counts to the driver, where they are merged. The
    remaining steps are those of :func:`score_customers_spark`; the output rows are checked
    (:func:`retain.scoring.check_finite`) and written by the tasks, one Parquet file per
    partition under ``work / "scores"``, with the pandas dtypes of
    :func:`retain.scoring.score_customers`.

    Parameters
    ----------
    spark : SparkSession
        The session (tasks must see ``work``: a local master, or a shared file system).
    cfg : RunConfig
        The run configuration (source and validation settings).
    as_of : date or str
        The scoring day.
    models : ScoringModels
        The loaded models.
    policy : PolicyConfig
        The policy.
    work : Path
        A folder for the intermediate and output files (the caller's to remove).
    partitions : int
        Spark partitions of the per-customer steps.
    segment_rules : SegmentRules, optional
        RFM segment rules.
    chunk_size : int
        Customers per churn/explanation chunk within a partition.
    timings : dict, optional
        Filled with seconds per step.
    progress : callable, optional
        Called with a short message per step.

    Returns
    -------
    PartitionedScores
        As :func:`retain.engine.local.score_partitioned` (parts not sorted by customer).

    Raises
    ------
    retain.io.DataError
        A file cannot be read, a whole table had rows and none was usable, or scores hold
        non-finite values (also when raised in a task).
    ConfigError
        A column mapping names no contract column.
    """
    with engine_run(spark):
        return _score_source(
            spark,
            cfg,
            day(as_of),
            models,
            policy,
            work,
            partitions,
            segment_rules,
            chunk_size,
            timings if timings is not None else {},
            progress or (lambda _m: None),
        )


def _score_source(
    spark: SparkSession,
    cfg: RunConfig,
    as_of_ts: pd.Timestamp,
    models: ScoringModels,
    policy: PolicyConfig,
    work: Path,
    partitions: int,
    segment_rules: SegmentRules | None,
    chunk_size: int,
    clock: dict[str, float],
    note: Callable[[str], None],
) -> PartitionedScores:
    """:func:`score_source_spark` inside its warning filters and session settings."""
    from pyspark import TaskContext
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    t0 = time.perf_counter()
    note(f"reading the inputs into {partitions} Spark partitions")
    data = cfg.data
    null_values, how = data.null_values, data.id_normalisation
    work.mkdir(parents=True, exist_ok=True)
    source, tables = _raw_tables(spark, cfg, work)
    if "transactions" not in tables:  # pragma: no cover - the config requires it
        raise ConfigError("data.transactions: no transactions table configured")

    # the steps' layouts, from the first rows of every table validated on the driver
    sample = _raw_part(
        {name: _frame(t).limit(_SAMPLE_ROWS).toPandas() for name, t in tables.items()},
        tables,
        null_values,
    )
    checked = _validate(sample, source, cfg, as_of_ts)
    validated = {"transactions": checked.transactions}
    if checked.events is not None:
        validated["events"] = checked.events
    if checked.customers is not None:
        frame = checked.customers
        validated["customers"] = frame if CUSTOMER_ID in frame.columns else frame.reset_index()
    if validated["transactions"].empty:
        raise DataError(
            f"transactions: none of the first {_SAMPLE_ROWS:,} rows is usable; "
            "check the file and the column mapping"
        )
    layouts = _sample_layouts(validated, as_of_ts, models, policy, segment_rules, chunk_size)

    # 1. raw rows by customer; validation and base features per partition
    metas, rows = customer_rows(tables, partitions, null_values, how)
    base_layout = layouts.base
    blob_field = T.StructField(_BLOB, T.BinaryType(), True)
    prospect_field = T.StructField(_PROSPECT, T.BooleanType(), True)

    def validate_step(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        frame = _gather(batches)
        if frame is None:
            return
        inputs = _validate(task_raw_part(frame, metas, null_values), source, cfg, as_of_ts)
        piece = (record_inputs(inputs), customer_counts(inputs))
        part = part_base(inputs.transactions, as_of_ts, models, inputs.events, inputs.customers)
        out = _encode_base(part, base_layout)
        out[_BLOB] = None
        yield out
        meta = out.iloc[:0].reindex([0])
        meta[_BLOB] = [wire.dumps(piece)]
        yield meta

    persisted: list[SparkFrame] = []
    with _unpersisting(persisted):
        checked_rows = rows.mapInPandas(
            validate_step, base_layout.schema(prospect_field, blob_field)
        ).persist()
        persisted.append(checked_rows)
        blob = F.col(_BLOB)
        pieces = [
            wire.loads(r[0]) for r in checked_rows.where(blob.isNotNull()).select(blob).collect()
        ]
        record = merge_records([p[0] for p in pieces], data.max_rejected_share)
        check_rows_used(record.counts)
        balances = [p[1] for p in pieces]
        base = checked_rows.where(blob.isNull()).drop(_BLOB)
        clock["load_inputs"] = clock.get("load_inputs", 0.0) + time.perf_counter() - t0

        # 2.-5. population statistics, scores, tiers, budgets, degrees
        t0 = time.perf_counter()
        note("scoring, explaining and deciding on Spark")
        budget, degree_stats, drift = _policy_steps(
            spark,
            base,
            layouts,
            as_of_ts,
            models,
            policy,
            segment_rules,
            chunk_size,
            persisted,
            work / "budget",
        )
        clock["scoring"] = clock.get("scoring", 0.0) + time.perf_counter() - t0

        # the output rows, written by the tasks
        t0 = time.perf_counter()
        note("writing the score parts")
        folder = work / "scores"
        folder.mkdir(parents=True, exist_ok=True)
        budget_layout = layouts.budget
        status = T.StructType(
            [
                T.StructField("path", T.StringType(), False),
                T.StructField("rows", T.LongType(), False),
                T.StructField("customers", T.LongType(), False),
            ]
        )

        def output_step(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
            frame = _gather(batches)
            if frame is None:
                return
            table = budget_layout.decode(frame)
            out = part_output(table, degree_stats, models, policy, as_of_ts)
            check_finite(out)
            context = TaskContext.get()
            number = context.partitionId() if context is not None else 0
            path = folder / f"part-{number:05d}.parquet"
            tmp = folder / f".part-{number:05d}.parquet.tmp"
            out.to_parquet(tmp, index=False)
            os.replace(tmp, path)
            yield pd.DataFrame(
                {"path": [str(path)], "rows": [len(out)], "customers": [out[CUSTOMER_ID].nunique()]}
            )

        written = budget.mapInPandas(output_step, status).toPandas()
    parts = sorted(Path(p) for p in written["path"])
    if not parts:
        empty = folder / "part-empty.parquet"
        layouts.output.decode(pd.DataFrame(columns=list(layouts.output.dtypes))).reset_index(
            drop=True
        ).to_parquet(empty, index=False)
        parts = [empty]
    balance = customer_balance_of(
        balances, int(written["customers"].sum()), int(written["rows"].sum())
    )
    clock["policy"] = clock.get("policy", 0.0) + time.perf_counter() - t0
    return PartitionedScores(parts, record, balance, partitions, drift)
