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
3. :func:`retain.scoring.part_scores`, then :func:`retain.scoring.part_actions` with the tier
   cuts from the CLV value counts (a Spark ``groupBy(clv).count()``);
4. the contacted customers are sorted on Spark (expected value saved, best first, missing
   last, ties by customer), collected and fed once to :class:`retain.policy.BudgetRun`; the
   decisions are joined back and :func:`retain.scoring.part_budget` runs per partition;
5. the degree counts are merged over the parts and :func:`retain.scoring.part_output` runs
   per partition; the result is collected, sorted by customer and given the dtypes of
   :func:`retain.scoring.score_customers`.

Tables cross Spark as plain columns (double, bigint, string, boolean, timestamp without time
zone); their pandas dtypes are taken from a run of the same steps on a few customers on the
driver and restored in every task. Missing floats (NaN) become nulls in Spark and NaN again in
pandas.
"""

from __future__ import annotations

import datetime as dt
import pickle
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from retain.clv.cutoff_features import rfm_triples
from retain.config import PolicyConfig, SegmentRules
from retain.contracts import CUSTOMER_ID
from retain.features.build import rfm_score_counts
from retain.features.segments import merge_value_counts
from retain.policy import BudgetRun, degree_counts, tier_cuts_from_counts
from retain.scoring import (
    PartBase,
    PopulationStats,
    ScoringModels,
    budget_over_table,
    part_actions,
    part_base,
    part_budget,
    part_output,
    part_scores,
    population_stats,
)
from retain.timeline import day

if TYPE_CHECKING:
    from pyspark.sql import DataFrame as SparkFrame
    from pyspark.sql import SparkSession
    from pyspark.sql.types import DataType, StructType

__all__ = ["score_customers_spark"]

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
            yield pd.DataFrame({"blob": [pickle.dumps(fn(frame))]})

    return [pickle.loads(row["blob"]) for row in df.mapInPandas(run, schema).collect()]


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


def _sorted_contacts(actions: SparkFrame) -> pd.DataFrame:
    """The contacted customers in budget order, collected: id, channel, cost, ev."""
    from pyspark.sql import functions as F

    ev = F.col("expected_value_saved")
    key = F.when(ev.isNull() | F.isnan(ev), F.lit(-np.inf)).otherwise(ev + F.lit(0.0))
    channel = F.coalesce(F.col("action_channel"), F.lit("<NA>"))
    return (
        actions.where(channel != F.lit("none"))
        .select(
            CUSTOMER_ID,
            channel.alias("action_channel"),
            "action_cost",
            "expected_value_saved",
            key.alias("__key"),
        )
        .orderBy(F.col("__key").desc(), F.col(CUSTOMER_ID).asc())
        .toPandas()
    )


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
) -> pd.DataFrame:
    """:func:`score_customers_spark` without the warning filters."""
    from pyspark.sql import functions as F
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
    conf = {
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.sql.execution.pandas.convertToArrowArraySafely": "false",
    }
    saved = {key: spark.conf.get(key, None) for key in conf}
    for key, value in conf.items():
        spark.conf.set(key, value)
    persisted: list[SparkFrame] = []
    try:
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
            out = base_layout.encode(part.base)
            out[_PROSPECT] = False
            if len(part.prospects):
                extra = pd.DataFrame(
                    {CUSTOMER_ID: part.prospects.to_numpy(dtype=object), _PROSPECT: True}
                )
                out = pd.concat([out, extra], ignore_index=True)
                for col, dtype in base_layout.dtypes.items():
                    if pd.api.types.is_integer_dtype(dtype):
                        out[col] = out[col].astype("Int64")
            yield out

        prospect_field = T.StructField(_PROSPECT, T.BooleanType(), True)
        base = inputs.mapInPandas(base_step, base_layout.schema(prospect_field)).persist()
        persisted.append(base)

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
            table = part_scores(
                part,
                stats,
                models,
                policy,
                as_of_ts,
                segment_rules=segment_rules,
                chunk_size=chunk_size,
            )
            yield scores_layout.encode(table)

        scores = base.mapInPandas(scores_step, scores_layout.schema()).persist()
        persisted.append(scores)
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
        contacts = _sorted_contacts(actions)
        over, priority = BudgetRun(policy).decide(
            contacts["action_channel"].to_numpy(dtype=object),
            contacts["action_cost"].to_numpy(dtype=float),
            contacts["expected_value_saved"].to_numpy(dtype=float),
        )
        decided_schema = T.StructType(
            [
                T.StructField(CUSTOMER_ID, T.StringType(), False),
                T.StructField(_OVER, T.BooleanType(), False),
                T.StructField(_PRIORITY, T.LongType(), False),
            ]
        )
        decided = spark.createDataFrame(
            pd.DataFrame(
                {
                    CUSTOMER_ID: contacts[CUSTOMER_ID].to_numpy(dtype=object),
                    _OVER: np.asarray(over, dtype=bool),
                    _PRIORITY: np.asarray(priority, dtype=np.int64),
                }
            ),
            decided_schema,
        )
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
        output_layout = layouts.output

        def output_step(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
            for batch in batches:
                if len(batch):
                    table = budget_layout.decode(batch)
                    out = part_output(table, degree_stats, models, policy, as_of_ts)
                    yield output_layout.encode(out)

        result = budget.mapInPandas(output_step, output_layout.schema()).toPandas()
    finally:
        for df in persisted:
            df.unpersist()
        for key, value in saved.items():
            if value is None:
                spark.conf.unset(key)
            else:
                spark.conf.set(key, value)
    result = result.sort_values(CUSTOMER_ID, kind="stable", ignore_index=True)
    return output_layout.decode(result).reset_index(drop=True)
