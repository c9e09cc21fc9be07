"""The churn training data set on the local engine, one customer partition at a time.

:func:`build_dataset_partitioned` gives what :func:`retain.churn.train.prepare_dataset` gives
on the whole validated population (the same snapshot rows, labels, features, split, fixed
event types and training-row sample), but validates and featurises one customer partition
(:mod:`retain.engine.partition`) at a time, with the intermediate tables as Parquet files in a
work folder. Working memory is one partition plus the global values, plus the data set itself
(validation and test cutoffs whole, the training cutoffs after ``churn.max_training_rows``).

The passes:

1. **Validate** each partition as of ``data.observed_until``: the inputs' record
   (:func:`retain.inputs.record_inputs`, merged with :func:`retain.inputs.merge_records`), the
   first transaction day (the ``auto`` cutoffs start there), the customers (for the leakage
   check's sample) and the events counted per type slug and day (the generic event types,
   when ``features.event_types`` is not listed, are the most frequent up to the last training
   cutoff: counts summed over partitions). The clean tables go to the work folder.
2. **Per-customer features**: per partition and cutoff, :func:`retain.features.build.
   base_features` (from that cutoff's own validation when returns are netted, as
   ``transactions_at`` does), its point-in-time record checked, and the labels; the RFM score
   value counts and the counted (frequency, recency, tenure) triples are kept per cutoff, and
   the training rows' (cutoff, label) cells and sample hashes
   (:func:`retain.churn.sampling.row_hash`).
3. **Global values** per cutoff: RFM cut points from the merged value counts
   (:func:`retain.features.segments.rfm_cuts`), the purchase model fitted on the concatenated
   triples (:func:`retain.clv.cutoff_features.fit_feature_model`), and the training-row sample:
   each (cutoff, label) cell's quota (:func:`retain.churn.sampling.allocate`) and the hash
   below which its rows are kept.
4. **Finishing** per partition: the kept rows get :func:`retain.features.build.add_rfm` and
   :func:`retain.clv.cutoff_features.feature_columns`; each cutoff's rows of all partitions
   are stacked in customer order.

Each pass is a function of one partition (:func:`check_part`, :func:`part_snapshots`,
:func:`finish_part`) or of the partitions' small results (:func:`plan_dataset`,
:func:`population_values`, :func:`assemble_dataset`): the local engine runs them in a loop
(or, for spilled inputs, in worker processes: :class:`retain.engine.local.PartitionRunner`),
the Spark engine (:mod:`retain.engine.spark_snapshots`) in its tasks, so all build the same
data set. The module is one idea, the partitioned build, hence its length.

The leakage check (:func:`retain.churn.dataset.check_point_in_time`) draws the same seeded
sample of customers as on the whole population (from the merged, sorted customer ids) and
runs on those customers' rows gathered from the partitions (a small table). With netted
returns, its feature function reads the sample's own per-cutoff validation, where
``prepare_dataset`` reads the whole population's: the check passes and fails alike (a
point-in-time feature of the sample's customers), it only costs less.

Differences from ``prepare_dataset``: the sampled ``train`` frame has a fresh 0-based index
(``prepare_dataset`` keeps the row labels of the full stacked frame); rows, order, values and
the recorded sample are the same.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from retain.churn.dataset import (
    LABEL,
    ChurnDataset,
    ChurnFeatures,
    LeakageError,
    TimeSplit,
    _compact,
    check_point_in_time,
    make_time_split,
    resolve_auto_cutoffs,
    select_feature_columns,
)
from retain.churn.sampling import STRATA, TrainingSample, allocate, row_hash
from retain.clv.cutoff_features import feature_columns, fit_feature_model, rfm_triples
from retain.config import ChurnConfig, FeatureConfig, RunConfig
from retain.contracts import CUSTOMER_ID, TIMESTAMP
from retain.engine.local import PartitionRunner, _validate
from retain.engine.partition import MemoryParts, RawPart, SpilledParts
from retain.features.build import (
    PointInTimeError,
    add_rfm,
    base_features,
    rfm_score_counts,
)
from retain.features.build import check_point_in_time as check_record
from retain.features.engagement import _slug_codes
from retain.features.labels import churn_labels
from retain.features.segments import RFM_SCORE_SOURCES, merge_value_counts, rfm_cuts
from retain.inputs import (
    Inputs,
    InputsRecord,
    _RawInputs,
    check_dates_against_data,
    merge_records,
    record_inputs,
)
from retain.inputs import observed_until as check_observed_until
from retain.timeline import day
from retain.validation import check_rows_used

__all__ = [
    "PartInputs",
    "PartStats",
    "PartitionedDataset",
    "Plan",
    "Population",
    "assemble_dataset",
    "build_dataset_partitioned",
    "check_part",
    "check_sample",
    "event_type_day_counts",
    "finish_part",
    "part_snapshots",
    "plan_dataset",
    "population_values",
    "restore_dtypes",
    "top_event_types_from_counts",
]

Progress = Callable[[str], None]


@dataclass
class PartitionedDataset:
    """What :func:`build_dataset_partitioned` gives the training job.

    Attributes
    ----------
    dataset : ChurnDataset
        The snapshots, as :func:`retain.churn.train.prepare_dataset` builds them.
    record : InputsRecord
        The inputs' record (validated as of the last observed day), merged over partitions.
    churn : ChurnConfig
        The churn section with its ``auto`` cutoffs resolved.
    resolved : str
        What was resolved (empty when no cutoff was ``auto``).
    features : FeatureConfig
        The feature settings with the generic event types fixed.
    partitions : int
        The number of customer partitions.
    """

    dataset: ChurnDataset
    record: InputsRecord
    churn: ChurnConfig
    resolved: str
    features: FeatureConfig
    partitions: int


def event_type_day_counts(events: pd.DataFrame | None) -> pd.DataFrame:
    """Events per generic type slug and day (roles and missing types left out).

    Parameters
    ----------
    events : DataFrame or None
        Validated events (of a part of the population).

    Returns
    -------
    DataFrame
        Columns ``slug``, ``day`` (midnight) and ``n``; sum the parts' rows per slug over the
        days up to a cutoff for the counts :func:`retain.features.engagement.top_event_types`
        ranks.
    """
    empty = pd.DataFrame(
        {"slug": pd.Series([], dtype=object), "day": pd.Series([], dtype="datetime64[ns]")}
    ).assign(n=np.array([], dtype=np.int64))
    if events is None or len(events) == 0:
        return empty
    code, slugs = _slug_codes(events["event_type"])
    mine = code >= 0
    if not mine.any():
        return empty
    days = events[TIMESTAMP].to_numpy(dtype="datetime64[ns]")[mine].astype("datetime64[D]")
    frame = pd.DataFrame(
        {"slug": np.asarray(slugs, dtype=object)[code[mine]], "day": days.astype("datetime64[ns]")}
    )
    return frame.value_counts(sort=False).rename("n").reset_index()


def top_event_types_from_counts(
    counts: list[pd.DataFrame], cutoff: pd.Timestamp, n: int
) -> tuple[str, ...]:
    """The ``n`` most frequent slugs on or before ``cutoff`` from the parts' day counts.

    The rule of :func:`retain.features.engagement.top_event_types`: most frequent first, ties
    by slug, types with no event left out.

    Parameters
    ----------
    counts : list of DataFrame
        :func:`event_type_day_counts` of each part.
    cutoff : Timestamp
        The cutoff day (included).
    n : int
        How many types.

    Returns
    -------
    tuple of str
    """
    if n <= 0:
        return ()
    frame = pd.concat(counts, ignore_index=True)
    frame = frame[frame["day"] <= day(cutoff)]
    if frame.empty:
        return ()
    total = frame.groupby("slug")["n"].sum()
    order = sorted(total.index, key=lambda s: (-int(total[s]), s))
    return tuple(str(s) for s in order if total[s] > 0)[:n]


def _raw_part(parts: MemoryParts | SpilledParts, p: int) -> RawPart:
    """Partition ``p``'s raw rows, readable again later (memory parts are not handed over)."""
    if isinstance(parts, MemoryParts):
        return parts.parts[p]
    return parts.take(p)


def _sample_ids(ids: list[pa.Array], n: int, seed: int) -> np.ndarray:
    """The leakage check's customers: :func:`retain.churn.dataset._sample_customers` on all.

    The customer partitions are disjoint, so the sorted union of their ids is the sorted
    population; the seeded draw of ranks is the one ``Generator.choice`` makes on it.
    """
    chunked = pa.chunked_array(ids, type=pa.string()) if ids else pa.chunked_array([], pa.string())
    everyone = chunked.combine_chunks()
    order = pc.sort_indices(everyone)
    if len(everyone) <= n:
        return np.asarray(everyone.take(order).to_pylist(), dtype=object)
    rng = np.random.default_rng(seed)
    ranks = np.sort(rng.choice(len(everyone), size=n, replace=False))
    picked = everyone.take(order.take(pa.array(ranks)))
    return np.sort(np.asarray(picked.to_pylist(), dtype=object))


def _cutoff_files(work: Path, c: int, p: int) -> Path:
    return work / f"snapshot-base-{c}-{p}.parquet"


# ------------------------------------------------------- the passes, one partition at a time
# Pure functions of one partition (or of the merged per-partition results): the local engine
# below and the Spark engine (:mod:`retain.engine.spark_snapshots`) run the same ones.


@dataclass
class PartInputs:
    """Pass 1 of one partition: what the global choices need.

    Attributes
    ----------
    record : InputsRecord
        The partition's inputs' record, validated as of the last observed day.
    customers : DataFrame
        The partition's customers with transactions (one column, ``customer_id``).
    event_counts : DataFrame or None
        :func:`event_type_day_counts` of its events; None when the source has no events.
    """

    record: InputsRecord
    customers: pd.DataFrame
    event_counts: pd.DataFrame | None

    def as_tuple(self) -> tuple[object, ...]:
        """The fields in order (what :mod:`retain.engine.wire` sends)."""
        return (self.record, self.customers, self.event_counts)


def check_part(
    raw: RawPart, source: _RawInputs, cfg: RunConfig, until: pd.Timestamp
) -> tuple[Inputs, PartInputs]:
    """Pass 1: validate a partition as of ``until``; its inputs and what the plan needs.

    Parameters
    ----------
    raw : RawPart
        The partition's raw rows.
    source : _RawInputs
        The source's validation settings.
    cfg : RunConfig
        The run configuration.
    until : Timestamp
        ``data.observed_until``.

    Returns
    -------
    inputs : Inputs
        The validated inputs.
    part : PartInputs
    """
    inputs = _validate(raw, source, cfg, until)
    check_observed_until(cfg, inputs)
    ids = pd.unique(inputs.transactions[CUSTOMER_ID].to_numpy(dtype=object))
    customers = pd.DataFrame({CUSTOMER_ID: pd.array(ids, dtype="string")})
    counts = event_type_day_counts(inputs.events) if inputs.events is not None else None
    return inputs, PartInputs(record_inputs(inputs), customers, counts)


@dataclass(frozen=True)
class Plan:
    """The global choices made from every partition's :class:`PartInputs`.

    Attributes
    ----------
    record : InputsRecord
        The inputs' record merged over partitions.
    churn : ChurnConfig
        The churn section with its ``auto`` cutoffs resolved.
    resolved : str
        What was resolved (empty when no cutoff was ``auto``).
    split : TimeSplit
        The checked time split.
    features : FeatureConfig
        The feature settings with the generic event types fixed.
    sample : ndarray
        The leakage check's customers (sorted ids; empty when the check is off).
    until : Timestamp
        ``data.observed_until``.
    has_events : bool
        Whether the source has events.
    """

    record: InputsRecord
    churn: ChurnConfig
    resolved: str
    split: TimeSplit
    features: FeatureConfig
    sample: np.ndarray
    until: pd.Timestamp
    has_events: bool


def plan_dataset(
    parts: list[PartInputs], cfg: RunConfig, churn: ChurnConfig, until: pd.Timestamp
) -> Plan:
    """The global choices: merged record, cutoffs, split, event types, leakage sample.

    Parameters
    ----------
    parts : list of PartInputs
        Pass 1 of every partition (any order).
    cfg : RunConfig
        The run configuration.
    churn : ChurnConfig
        The churn section (``auto`` cutoffs resolved here).
    until : Timestamp
        ``data.observed_until``.

    Returns
    -------
    Plan

    Raises
    ------
    retain.churn.LeakageError
        When the data leave no room for the cutoffs.
    retain.io.DataError
        When too many rows were rejected or none is usable.
    """
    record = merge_records([p.record for p in parts], cfg.data.max_rejected_share)
    check_rows_used(record.counts)
    churn, resolved = resolve_auto_cutoffs(churn, record.first_day, until)
    check_dates_against_data(cfg.model_copy(update={"churn": churn}), record.first_day, ("churn",))
    split = make_time_split(
        churn.train_cutoffs,
        churn.validation_cutoff,
        churn.test_cutoff,
        churn.horizon_days,
        until,
        strict_validation=churn.strict_validation,
    )
    counts = [p.event_counts for p in parts if p.event_counts is not None]
    has_events = any(p.event_counts is not None for p in parts)
    features = cfg.features
    if features.event_types is None:
        types = (
            top_event_types_from_counts(
                counts, max(split.train_cutoffs), features.event_types_top_n
            )
            if has_events
            else ()
        )
        features = features.model_copy(update={"event_types": types})
    n_check = churn.leakage_check_customers
    ids = [
        pa.array(p.customers[CUSTOMER_ID].to_numpy(dtype=object), type=pa.string()) for p in parts
    ]
    sample = _sample_ids(ids, n_check, cfg.seed) if n_check > 0 else np.array([], dtype=object)
    return Plan(record, churn, resolved, split, features, sample, until, has_events)


@dataclass
class PartStats:
    """Pass 2 of one partition: what the global values and the leakage check need.

    Attributes
    ----------
    counts : list of dict
        Per cutoff, :func:`retain.features.build.rfm_score_counts` of its base features.
    triples : list of DataFrame
        Per cutoff, the counted (frequency, recency, tenure) triples
        (:func:`retain.clv.cutoff_features.rfm_triples`).
    cells : dict
        Per (training cutoff index, label), the sample hashes of its rows
        (:func:`retain.churn.sampling.row_hash`).
    sample_tx, sample_ev : DataFrame or None
        The leakage sample's transactions and events (None when the check is off or there are
        no events).
    sample_at : list of DataFrame
        Per cutoff, the sample's transactions validated on that day (netted returns only).
    """

    counts: list[dict[str, tuple[np.ndarray, np.ndarray]]]
    triples: list[pd.DataFrame]
    cells: dict[tuple[int, int], np.ndarray]
    sample_tx: pd.DataFrame | None
    sample_ev: pd.DataFrame | None
    sample_at: list[pd.DataFrame]

    def as_tuple(self) -> tuple[object, ...]:
        """The fields in order (what :mod:`retain.engine.wire` sends)."""
        fields = (self.counts, self.triples, self.cells, self.sample_tx, self.sample_ev)
        return (*fields, self.sample_at)


def part_snapshots(
    transactions: pd.DataFrame,
    events: pd.DataFrame | None,
    raw: RawPart | None,
    source: _RawInputs,
    cfg: RunConfig,
    plan: Plan,
    keep: Callable[[int, pd.DataFrame], None],
) -> PartStats:
    """Pass 2: a partition's base features and labels at every cutoff.

    Parameters
    ----------
    transactions, events : DataFrame
        The partition's transactions and events (or None) validated as of the last observed
        day (:func:`check_part`).
    raw : RawPart or None
        Its raw rows, validated again as of each cutoff when returns are netted (None when
        they are dropped).
    source : _RawInputs
        The source's validation settings.
    cfg : RunConfig
        The run configuration.
    plan : Plan
        The global choices.
    keep : callable
        Called with each cutoff's index and base features (indexed by customer, the label in
        column :data:`retain.churn.dataset.LABEL`), in cutoff order.

    Returns
    -------
    PartStats

    Raises
    ------
    retain.churn.LeakageError
        When a feature's record is not point-in-time.
    """
    split, features, sample = plan.split, plan.features, plan.sample
    tx = transactions
    cutoffs = split.all_cutoffs
    n_train = len(split.train_cutoffs)
    stats = PartStats([], [], {}, None, None, [])
    if len(sample):
        stats.sample_tx = tx[tx[CUSTOMER_ID].isin(sample)]
        if events is not None:
            stats.sample_ev = events[events[CUSTOMER_ID].isin(sample)]
    for c, cutoff in enumerate(cutoffs):
        seen = tx
        if raw is not None:
            seen = _validate(raw, source, cfg, cutoff).transactions
            if len(sample):
                stats.sample_at.append(seen[seen[CUSTOMER_ID].isin(sample)])
        base = base_features(seen, cutoff, events, features)
        try:
            check_record(base, cutoff)
        except PointInTimeError as exc:
            raise LeakageError(str(exc)) from exc
        labels = churn_labels(tx, cutoff, split.horizon_days, plan.until).reindex(base.index)
        if labels.isna().any():
            raise ValueError(
                f"cutoff {cutoff.date()}: {int(labels.isna().sum())} customers lack a label"
            )
        label = labels.to_numpy().astype(np.int8)
        stats.counts.append(rfm_score_counts(base))
        stats.triples.append(rfm_triples(base))
        base = base.assign(**{LABEL: label})
        if c < n_train:
            keys = pd.DataFrame({CUSTOMER_ID: base.index.to_numpy(), "cutoff": cutoff})
            h = row_hash(keys, cfg.seed)
            for value in (0, 1):
                stats.cells[(c, value)] = h[label == value]
        keep(c, base)
        del base, seen
    return stats


def check_sample(stats: list[PartStats], plan: Plan, cfg: RunConfig) -> None:
    """The leakage check on the seeded sample of customers, gathered from the partitions.

    Parameters
    ----------
    stats : list of PartStats
        Pass 2 of every partition.
    plan : Plan
        The global choices.
    cfg : RunConfig
        The run configuration.

    Raises
    ------
    retain.churn.LeakageError
        When a feature is not point-in-time.
    """
    if not len(plan.sample):
        return
    churn = plan.churn
    n_check = churn.leakage_check_customers
    fn = ChurnFeatures(plan.split.horizon_days, plan.features, churn.clv_feature_model)
    stx = pd.concat([s.sample_tx for s in stats if s.sample_tx is not None], ignore_index=True)
    evs = [s.sample_ev for s in stats if s.sample_ev is not None]
    sev = pd.concat(evs, ignore_index=True) if evs else None
    for c, cutoff in enumerate(plan.split.all_cutoffs):
        if cfg.data.returns != "drop":
            at = pd.concat([s.sample_at[c] for s in stats], ignore_index=True)
            check_point_in_time(_AsOf(fn, at), stx, cutoff, sev, n_customers=n_check)
        else:
            check_point_in_time(fn, stx, cutoff, sev, n_customers=n_check)


@dataclass(frozen=True)
class Population:
    """The global values per cutoff, reduced exactly from every partition's :class:`PartStats`.

    Attributes
    ----------
    cuts : list
        Per cutoff, the RFM cut points (:func:`retain.features.segments.rfm_cuts`).
    models : list
        Per cutoff, the purchase model of the CLV features
        (:func:`retain.clv.cutoff_features.fit_feature_model`).
    keep_below : dict or None
        Per (training cutoff index, label), the sample's threshold; None when every row is kept.
    cell_rows : dict
        Per (training cutoff index, label), the rows built.
    """

    cuts: list[object]
    models: list[object]
    keep_below: dict[tuple[int, int], _Threshold] | None
    cell_rows: dict[tuple[int, int], int]


def population_values(stats: list[PartStats], plan: Plan) -> Population:
    """Pass 3: RFM cut points, purchase models and the training-row sample's thresholds.

    Parameters
    ----------
    stats : list of PartStats
        Pass 2 of every partition (any order).
    plan : Plan
        The global choices.

    Returns
    -------
    Population
    """
    n_cutoffs = len(plan.split.all_cutoffs)
    cuts = [
        rfm_cuts(
            {k: merge_value_counts([s.counts[c][k] for s in stats]) for k in RFM_SCORE_SOURCES}
        )
        for c in range(n_cutoffs)
    ]
    models = [
        fit_feature_model(
            pd.concat([s.triples[c] for s in stats], ignore_index=True),
            plan.churn.clv_feature_model,
        )
        for c in range(n_cutoffs)
    ]
    cells: dict[tuple[int, int], list[np.ndarray]] = {}
    for s in stats:
        for key, h in s.cells.items():
            cells.setdefault(key, []).append(h)
    keep_below = _sample_thresholds(cells, plan.churn.max_training_rows)
    cell_rows = {k: int(sum(len(h) for h in v)) for k, v in cells.items()}
    return Population(cuts, models, keep_below, cell_rows)


def finish_part(
    base: pd.DataFrame, c: int, plan: Plan, population: Population, seed: int
) -> pd.DataFrame:
    """Pass 4: a partition's rows of cutoff ``c`` the sample keeps, with every feature.

    Parameters
    ----------
    base : DataFrame
        Its base features and label from :func:`part_snapshots`.
    c : int
        The cutoff's index in ``plan.split.all_cutoffs``.
    plan : Plan
        The global choices.
    population : Population
        The global values.
    seed : int
        The run's seed.

    Returns
    -------
    DataFrame
        Columns ``cutoff``, ``customer_id``, the features and the label (compacted as
        :func:`retain.churn.dataset.build_churn_dataset` does); rows in ``base``'s order.
    """
    cutoff = plan.split.all_cutoffs[c]
    if c < len(plan.split.train_cutoffs):
        base = _kept(base, cutoff, seed, population.keep_below, c)
    label = base[LABEL].to_numpy(dtype=np.int8)
    feats = add_rfm(base.drop(columns=[LABEL]), population.cuts[c])
    extra = feature_columns(population.models[c], feats, plan.split.horizon_days)
    part = pd.concat([feats, extra], axis=1).reset_index()
    part.insert(0, "cutoff", cutoff)
    part[LABEL] = label
    return _compact(part)


def assemble_dataset(
    pieces: list[list[pd.DataFrame]], plan: Plan, population: Population, seed: int
) -> ChurnDataset:
    """The data set from every partition's finished rows of every cutoff.

    Parameters
    ----------
    pieces : list of list of DataFrame
        Per cutoff, :func:`finish_part` of every partition (any order).
    plan : Plan
        The global choices.
    population : Population
        The global values.
    seed : int
        The run's seed.

    Returns
    -------
    ChurnDataset
        Each cutoff's rows stacked in customer order, the training-row sample recorded.
    """
    split = plan.split
    n_train = len(split.train_cutoffs)
    frames = []
    for parts in pieces:
        # an empty part adds no row (the last one stands in for all-empty)
        kept = [p for p in parts if len(p)] or parts[-1:]
        frame = pd.concat(kept, ignore_index=True) if len(kept) > 1 else kept[0]
        frames.append(frame.sort_values(CUSTOMER_ID, kind="stable", ignore_index=True))
    train = pd.concat(frames[:n_train], ignore_index=True) if n_train > 1 else frames[0]
    validation, test = frames[n_train], frames[n_train + 1]
    names, dropped = select_feature_columns(train)
    dataset = ChurnDataset(split, train, validation, test, names, dropped)
    dataset.training_sample = _training_sample(
        split, population.cell_rows, train, plan.churn.max_training_rows, seed
    )
    return dataset


def build_dataset_partitioned(
    parts: MemoryParts | SpilledParts,
    source: _RawInputs,
    cfg: RunConfig,
    work: Path,
    *,
    churn: ChurnConfig | None = None,
    progress: Progress | None = None,
    timings: dict[str, float] | None = None,
) -> PartitionedDataset:
    """The churn training data set of ``cfg``, built one customer partition at a time.

    Parameters
    ----------
    parts : MemoryParts or SpilledParts
        The raw rows split by customer (:func:`retain.engine.local.partition_source`).
    source : _RawInputs
        The source's validation settings.
    cfg : RunConfig
        The run configuration (``data``, ``features``, ``seed``).
    work : Path
        A folder for the intermediate files (the caller's to remove).
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

    Raises
    ------
    retain.churn.LeakageError
        When the split or a feature breaks the point-in-time rules.
    retain.io.DataError
        When the inputs fail validation.
    """
    note = progress or (lambda _m: None)
    clock = timings if timings is not None else {}
    churn = churn if churn is not None else cfg.churn
    if churn is None:
        raise ValueError(f"config {cfg.name!r} has no 'churn' section")
    until = check_observed_until(cfg)
    n = parts.count
    work.mkdir(parents=True, exist_ok=True)
    # spilled partitions are read from their files by worker processes, one per core, started
    # once for every pass (the passes are single-threaded pandas and numpy); partitions in
    # memory run here
    with PartitionRunner(n, isinstance(parts, SpilledParts)) as run:
        task = _BuildTask(parts, source, cfg, work, until)

        # 1. validate as of the last observed day; what the global choices need
        t0 = time.perf_counter()
        checked: list[PartInputs] = []
        for p, part in enumerate(run.map(functools.partial(_check, task))):
            note(f"partition {p + 1} of {n}: validated")
            checked.append(part)
        plan = plan_dataset(checked, cfg, churn, until)
        del checked
        clock["load_inputs"] = clock.get("load_inputs", 0.0) + time.perf_counter() - t0

        # 2. per partition and cutoff: the per-customer features and labels
        cutoffs = plan.split.all_cutoffs
        task = dataclasses.replace(task, plan=plan)
        dtypes: dict[int, tuple[object, pd.Series]] = {}
        stats: list[PartStats] = []
        t0 = time.perf_counter()
        done = run.map(functools.partial(_snapshots, task))
        for p, (part_stats, part_dtypes) in enumerate(done):
            note(f"partition {p + 1} of {n}: point-in-time features at {len(cutoffs)} cutoffs")
            stats.append(part_stats)
            for c, written in part_dtypes.items():
                dtypes.setdefault(c, written)
        clock["features"] = clock.get("features", 0.0) + time.perf_counter() - t0

        # the leakage check on the seeded sample of customers, gathered from the partitions
        if len(plan.sample):
            note(f"leakage check on {len(plan.sample):,} customers")
        check_sample(stats, plan, cfg)

        # 3. global values per cutoff; the training-row sample's thresholds
        t0 = time.perf_counter()
        population = population_values(stats, plan)
        del stats
        clock["population"] = clock.get("population", 0.0) + time.perf_counter() - t0

        # 4. finishing per partition; each cutoff's rows stacked in customer order
        t0 = time.perf_counter()
        task = dataclasses.replace(task, population=population, dtypes=dtypes)
        pieces: list[list[pd.DataFrame]] = [[] for _ in cutoffs]
        for p, finished in enumerate(run.map(functools.partial(_finish, task))):
            note(f"partition {p + 1} of {n}: RFM scores and purchase-model features")
            for c, frame in enumerate(finished):
                pieces[c].append(frame)
        dataset = assemble_dataset(pieces, plan, population, cfg.seed)
        clock["finishing"] = clock.get("finishing", 0.0) + time.perf_counter() - t0
    return PartitionedDataset(dataset, plan.record, plan.churn, plan.resolved, plan.features, n)


@dataclass(frozen=True)
class _BuildTask:
    """What a partition's pass needs (sent to worker processes when the parts are spilled)."""

    parts: MemoryParts | SpilledParts
    source: _RawInputs
    cfg: RunConfig
    work: Path
    until: pd.Timestamp
    plan: Plan | None = None
    population: Population | None = None
    dtypes: dict[int, tuple[object, pd.Series]] | None = None


def _check(task: _BuildTask, p: int) -> PartInputs:
    """Pass 1 of partition ``p`` (:func:`check_part`); its clean tables written."""
    inputs, part = check_part(_raw_part(task.parts, p), task.source, task.cfg, task.until)
    inputs.transactions.to_parquet(task.work / f"transactions-{p}.parquet")
    if inputs.events is not None:
        inputs.events.to_parquet(task.work / f"events-{p}.parquet")
    return part


def _snapshots(task: _BuildTask, p: int) -> tuple[PartStats, dict[int, tuple[object, pd.Series]]]:
    """Pass 2 of partition ``p`` (:func:`part_snapshots`); its base tables written.

    Returns
    -------
    stats : PartStats
    dtypes : dict
        Per cutoff, the index dtype and column dtypes its base table was written with.
    """
    plan = task.plan
    if plan is None:
        raise ValueError("pass 2 needs the plan")
    tx = pd.read_parquet(task.work / f"transactions-{p}.parquet")
    events = pd.read_parquet(task.work / f"events-{p}.parquet") if plan.has_events else None
    dtypes: dict[int, tuple[object, pd.Series]] = {}

    def keep(c: int, base: pd.DataFrame) -> None:
        base.to_parquet(_cutoff_files(task.work, c, p))
        dtypes.setdefault(c, (base.index.dtype, base.dtypes))

    raw = _raw_part(task.parts, p) if task.cfg.data.returns != "drop" else None
    stats = part_snapshots(tx, events, raw, task.source, task.cfg, plan, keep)
    return stats, dtypes


def _finish(task: _BuildTask, p: int) -> list[pd.DataFrame]:
    """Pass 4 of partition ``p``: :func:`finish_part` of each cutoff, in cutoff order."""
    plan, population, dtypes = task.plan, task.population, task.dtypes
    if plan is None or population is None or dtypes is None:
        raise ValueError("pass 4 needs the plan and the population values")
    return [
        finish_part(
            _read_base(_cutoff_files(task.work, c, p), *dtypes[c]),
            c,
            plan,
            population,
            task.cfg.seed,
        )
        for c in range(len(plan.split.all_cutoffs))
    ]


def restore_dtypes(base: pd.DataFrame, index_dtype: object, dtypes: pd.Series) -> pd.DataFrame:
    """A per-customer table read back from Parquet, with the dtypes it was written with.

    Parameters
    ----------
    base : DataFrame
        The table as read.
    index_dtype : dtype
        Its index's dtype when written.
    dtypes : Series
        Its columns' dtypes when written.

    Returns
    -------
    DataFrame
    """
    base.index = base.index.astype(index_dtype)
    wrong = {c: t for c, t in dtypes.items() if base[c].dtype != t}
    return base.astype(wrong) if wrong else base


def _read_base(path: Path, index_dtype: object, dtypes: pd.Series) -> pd.DataFrame:
    """A per-customer table written in pass 2, with the dtypes it was written with."""
    return restore_dtypes(pd.read_parquet(path), index_dtype, dtypes)


@dataclass(frozen=True)
class _AsOf:
    """The leakage check's feature function over the sample's own per-cutoff transactions."""

    base: ChurnFeatures
    transactions: pd.DataFrame

    def __call__(
        self, transactions: pd.DataFrame, cutoff: pd.Timestamp, events: pd.DataFrame | None
    ) -> pd.DataFrame:
        """Features as of ``cutoff`` from the transactions validated on that day."""
        return self.base(self.transactions, cutoff, events)


@dataclass(frozen=True)
class _Threshold:
    """Rows of a cell with a hash below ``below`` are kept; at ``below`` the first ``ties``."""

    below: int
    ties: int
    tied: int


def _sample_thresholds(
    cells: dict[tuple[int, int], list[np.ndarray]], cap: int | None
) -> dict[tuple[int, int], _Threshold] | None:
    """Per (cutoff, label) cell, the hash below which its training rows are kept.

    :func:`retain.churn.sampling.stratified_sample` keeps a cell's ``quota`` lowest hashes
    (:func:`retain.churn.sampling.allocate` of the cells in (cutoff, label) order); None when
    every row is kept.
    """
    keys = sorted(k for k, v in cells.items() if sum(len(h) for h in v))
    total = sum(sum(len(h) for h in cells[k]) for k in keys)
    if cap is None or cap >= total:
        return None
    quota = allocate([sum(len(h) for h in cells[k]) for k in keys], int(cap))
    out = {}
    for k, q in zip(keys, quota, strict=True):
        h = np.concatenate(cells[k])
        if q == 0:
            out[k] = _Threshold(0, 0, 0)
            continue
        thr = np.partition(h, int(q) - 1)[int(q) - 1]
        below = int((h < thr).sum())
        out[k] = _Threshold(int(thr), int(q) - below, int((h == thr).sum()))
    return out


def _kept(
    base: pd.DataFrame,
    cutoff: pd.Timestamp,
    seed: int,
    keep: dict[tuple[int, int], _Threshold] | None,
    c: int,
) -> pd.DataFrame:
    """The rows of a training cutoff's partition the sample keeps."""
    if keep is None:
        return base
    keys = pd.DataFrame({CUSTOMER_ID: base.index.to_numpy(), "cutoff": cutoff})
    h = row_hash(keys, seed)
    label = base[LABEL].to_numpy()
    mask = np.zeros(len(base), dtype=bool)
    for value in (0, 1):
        t = keep.get((c, value))
        if t is None:
            continue
        mine = label == value
        mask |= mine & (h < np.uint64(t.below))
        if t.ties == t.tied:
            mask |= mine & (h == np.uint64(t.below))
        elif t.ties > 0:  # a hash collision at the threshold: not partition-invariant, refuse
            raise NotImplementedError(
                "training-row sample: a 64-bit hash collision at a cell's threshold; "
                "use another seed or build the data set in one partition"
            )
    return base[mask]


def _training_sample(
    split: object,
    cell_rows: dict[tuple[int, int], int],
    train: pd.DataFrame,
    cap: int | None,
    seed: int,
) -> TrainingSample:
    """The :class:`retain.churn.sampling.TrainingSample` of the partitioned sample."""
    keys = sorted(k for k, v in cell_rows.items() if v)
    train_cutoffs = split.train_cutoffs  # type: ignore[attr-defined]
    kept = train.groupby(list(STRATA), sort=True, observed=True).size()
    rows = []
    for c, value in keys:
        cutoff = train_cutoffs[c]
        rows.append((cutoff, value, cell_rows[(c, value)], int(kept.get((cutoff, value), 0))))
    cells = pd.DataFrame(rows, columns=["cutoff", LABEL, "rows", "kept"])
    cells["cutoff"] = pd.to_datetime(cells["cutoff"]).astype(train["cutoff"].dtype)
    cells[LABEL] = cells[LABEL].astype(train[LABEL].dtype)
    cells["rows"] = cells["rows"].astype("int64")
    cells["kept"] = cells["kept"].astype("int64")
    total = sum(cell_rows.values())
    return TrainingSample(
        max_rows=cap, seed=int(seed), rows_total=total, rows_used=len(train), cells=cells
    )
