"""The local engine: the scoring steps run one customer partition at a time.

The inputs are split by customer hash (:mod:`retain.engine.partition`) and each partition is
validated, featurised, scored and explained on its own, with its intermediate tables kept as
Parquet files in a temporary folder; between the steps, the global values are reduced from
what each partition reports (value counts, counted RFM triples) and the budget is decided
from one sorted stream that DuckDB reads from those files. Working memory is that of one
partition plus the global values (a few numbers per distinct value), not that of the data.
The results are those of :func:`retain.scoring.score_customers` on the whole population,
whatever the number of partitions. When the inputs are spilled to files, the per-partition
passes run in worker processes, one per core, started once per run (:class:`PartitionRunner`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import multiprocessing
import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from retain.clv.cutoff_features import rfm_triples
from retain.config import FeatureConfig, PolicyConfig, RunConfig, SegmentRules
from retain.contracts import CUSTOMER_ID
from retain.drift import DriftCounts, merge_counts
from retain.engine.partition import (
    MemoryParts,
    RawPart,
    SpilledParts,
    spill_tables,
    split_tables,
)
from retain.features.build import rfm_score_counts
from retain.features.segments import merge_value_counts, value_counts
from retain.inputs import (
    CONTRACTS,
    Inputs,
    InputsRecord,
    _RawInputs,
    _read_source,
    customer_balance_of,
    customer_counts,
    file_settings,
    file_sources,
    merge_records,
    record_inputs,
    validate_source,
)
from retain.io.read import read_table_batches
from retain.policy import BudgetRun, degree_counts, tier_cuts_from_counts
from retain.scoring import (
    PartBase,
    PopulationStats,
    ScoringModels,
    check_finite,
    part_actions,
    part_base,
    part_budget,
    part_output,
    part_scores,
    population_stats,
)
from retain.timeline import day
from retain.validation import check_rows_used, table_parts

__all__ = [
    "PartitionRunner",
    "PartitionedScores",
    "auto_partitions",
    "input_rows",
    "partition_source",
    "read_scores",
    "score_partitioned",
]

ROWS_PER_PARTITION = 2_000_000
"""Input rows per partition when ``partitions: auto``."""


def auto_partitions(n_rows: int, setting: int | str = "auto") -> int:
    """The number of customer partitions: the setting, or one per :data:`ROWS_PER_PARTITION`.

    Parameters
    ----------
    n_rows : int
        Input rows (all tables).
    setting : int or "auto"
        The config's ``partitions``.

    Returns
    -------
    int
    """
    if setting != "auto":
        return int(setting)
    return max(1, -(-int(n_rows) // ROWS_PER_PARTITION))


@dataclass
class PartitionedScores:
    """What a partitioned scoring run gives the job.

    Attributes
    ----------
    parts : list of Path
        The scores, one Parquet file per partition (customers sorted within each, disjoint
        between them); :func:`read_scores` reads them as one table.
    record : InputsRecord
        The inputs' record (counts, rejects with their source row numbers, digests).
    balance : dict
        The customer balance (see :func:`retain.jobs.score.customer_balance`).
    partitions : int
        The number of partitions.
    drift : DriftCounts or None
        The population's counts in the churn model's reference bins, summed over the
        partitions (:mod:`retain.drift`); None when the model has no reference profile.
    """

    parts: list[Path]
    record: InputsRecord
    balance: dict[str, Any]
    partitions: int = 1
    drift: DriftCounts | None = None

    def scores(self) -> pd.DataFrame:
        """The scores as one table sorted by customer (for populations that fit in memory)."""
        return read_scores(self.parts)


def read_scores(parts: list[Path], columns: list[str] | None = None) -> pd.DataFrame:
    """Score parts as one table sorted by customer, as :func:`retain.scoring.score_customers`.

    Parameters
    ----------
    parts : list of Path
        :attr:`PartitionedScores.parts`.
    columns : list of str, optional
        Only these columns (``customer_id`` is always read, for the order).

    Returns
    -------
    DataFrame
    """
    frames = [pd.read_parquet(p, columns=columns) for p in parts]
    frames = [f for f in frames if len(f)] or frames[:1]
    scores = pd.concat(frames, ignore_index=True)
    return scores.sort_values(CUSTOMER_ID, kind="stable", ignore_index=True)


def partition_source(
    cfg: RunConfig, n_partitions: int, work: Path, batch_rows: int = 1_000_000
) -> tuple[_RawInputs, MemoryParts | SpilledParts]:
    """The configured source split into customer partitions.

    Files (``data.source: files``) are read a batch at a time and spilled to Parquet in
    ``work`` (memory bounded by a batch); the embedded and generated sources, which are in
    memory anyway, are split in memory.

    Parameters
    ----------
    cfg : RunConfig
        The run configuration.
    n_partitions : int
        Number of partitions.
    work : Path
        Folder for the spilled partitions.
    batch_rows : int
        Rows read at a time from a file.

    Returns
    -------
    (_RawInputs, MemoryParts or SpilledParts)
        The validation settings of the source (no tables) and its partitions.
    """
    data = cfg.data
    if data.source == "files":
        readers = {
            name: None
            if spec is None
            else functools.partial(
                read_table_batches,
                spec,
                CONTRACTS[name],
                null_values=data.null_values,
                batch_rows=batch_rows,
            )
            for name, spec in file_sources(cfg).items()
        }
        parts = spill_tables(readers, n_partitions, work, data.null_values, data.id_normalisation)
        return file_settings(cfg), parts
    raw = _read_source(cfg)
    split = split_tables(raw.tables, n_partitions, data.null_values, data.id_normalisation)
    return dataclasses.replace(raw, tables={}), MemoryParts(split)


def input_rows(cfg: RunConfig) -> int:
    """About how many input rows the configured source has, without reading it.

    Parquet files tell their row count; a CSV file counts as one row per 40 bytes; the
    embedded CDNOW files and the generator are small enough for one partition.
    """
    data = cfg.data
    if data.source != "files":
        return 0
    rows = 0
    for spec in file_sources(cfg).values():
        if spec is None or not Path(spec.path).is_file():
            continue
        if spec.resolved_format == "parquet":
            rows += pq.ParquetFile(spec.path).metadata.num_rows
        else:
            rows += Path(spec.path).stat().st_size // 40
    return rows


def _validate(part: RawPart, source: _RawInputs, cfg: RunConfig, as_of: pd.Timestamp) -> Inputs:
    """Validate one partition; rejects carry their row number in the source."""
    raw = dataclasses.replace(source, tables=part.tables)
    with table_parts():
        inputs = validate_source(raw, cfg, as_of)
    rejects = inputs.rejects
    if len(rejects):
        numbers = rejects["row_number"].to_numpy(dtype=np.int64).copy()
        tables = rejects["table"].astype(str).to_numpy()
        for name, rows in part.rows.items():
            mine = tables == name
            numbers[mine] = rows[numbers[mine]]
        inputs.rejects = rejects.assign(row_number=numbers)
    return inputs


def _known_and_rejected(inputs: Inputs) -> dict[str, Any]:
    """The partition's customers seen, rejected and their reasons (for the balance)."""
    return customer_counts(inputs)


def _decisions_file(work: Path, p: int) -> Path:
    """Partition ``p``'s budget decisions (written by :func:`_budget_stream`)."""
    return work / f"decisions-{p}.parquet"


def _budget_stream(files: list[Path], policy: PolicyConfig, work: Path) -> list[Path]:
    """Over-budget flags and priorities of every contacted customer, one file per partition.

    DuckDB sorts the contacted customers of every partition file by expected value saved
    (missing last), best first, ties by customer id, and streams them through one
    :class:`retain.policy.BudgetRun`; each decided batch goes to its partition's file, so
    memory is bounded by a batch.
    """
    names = {str(path): p for p, path in enumerate(files)}
    sql = f"""
        SELECT filename, {CUSTOMER_ID}, action_channel, action_cost, expected_value_saved
        FROM read_parquet(?, filename = true)
        WHERE action_channel <> 'none'
        ORDER BY (expected_value_saved IS NULL OR isnan(expected_value_saved)),
                 expected_value_saved DESC, {CUSTOMER_ID}
    """
    run = BudgetRun(policy)
    out = [_decisions_file(work, p) for p in range(len(files))]
    schema = pa.schema(
        [(CUSTOMER_ID, pa.large_string()), ("over_budget", pa.bool_()), ("priority", pa.int64())]
    )
    writers = [pq.ParquetWriter(path, schema) for path in out]
    con = duckdb.connect()
    try:
        con.execute(f"SET temp_directory = '{work}'")
        reader = con.sql(sql, params=[[str(f) for f in files]]).to_arrow_reader(1_000_000)
        for batch in reader:
            chunk = batch.to_pandas()
            over, priority = run.decide(
                chunk["action_channel"].to_numpy(dtype=object),
                chunk["action_cost"].to_numpy(dtype=float, na_value=np.nan),
                chunk["expected_value_saved"].to_numpy(dtype=float, na_value=np.nan),
            )
            ids = chunk[CUSTOMER_ID].to_numpy(dtype=object)
            part_of = chunk["filename"].map(names).to_numpy()
            for p in np.unique(part_of):
                mine = part_of == p
                table = pa.table(
                    [pa.array(ids[mine], pa.large_string()), over[mine], priority[mine]],
                    schema=schema,
                )
                writers[int(p)].write_table(table)
    finally:
        con.close()
        for writer in writers:
            writer.close()
    return out


@dataclass(frozen=True)
class _FeatureTask:
    """What validating and featurising a partition needs (sent to worker processes)."""

    parts: MemoryParts | SpilledParts
    source: _RawInputs
    cfg: RunConfig
    when: pd.Timestamp
    settings: FeatureConfig
    work: Path


@dataclass(frozen=True)
class _Featurised:
    """What a partition's first step reports back: its summaries, not its rows."""

    record: InputsRecord
    counts: dict[str, Any]
    rfm_counts: dict[str, tuple[np.ndarray, np.ndarray]]
    triples: pd.DataFrame
    seconds: dict[str, float]


def _featurise(task: _FeatureTask, p: int) -> _Featurised:
    """Validate partition ``p`` and write its per-customer features (:func:`part_base`)."""
    t0 = time.perf_counter()
    inputs = _validate(task.parts.take(p), task.source, task.cfg, task.when)
    record, counts = record_inputs(inputs), customer_counts(inputs)
    t1 = time.perf_counter()
    pb = part_base(inputs.transactions, task.when, task.settings, inputs.events, inputs.customers)
    del inputs
    pb.base.to_parquet(task.work / f"base-{p}.parquet")
    pd.DataFrame({CUSTOMER_ID: pb.prospects}).to_parquet(task.work / f"prospects-{p}.parquet")
    seconds = {"load_inputs": t1 - t0, "features": time.perf_counter() - t1}
    return _Featurised(record, counts, rfm_score_counts(pb.base), rfm_triples(pb.base), seconds)


def _featurised(
    task: _FeatureTask, run: PartitionRunner, note: Callable[[str], None]
) -> Iterator[tuple[int, _Featurised]]:
    """Every partition's first step, in partition order.

    Spilled partitions are read from their files by the run's worker processes (the step is
    single-threaded pandas and numpy); partitions held in memory, or a single core, run here.
    """
    for p, done in enumerate(run.map(functools.partial(_featurise, task))):
        note(f"partition {p + 1} of {run.n}: validated and featurised")
        yield p, done


_T = TypeVar("_T")
_WARNINGS_ENV = "PYTHONWARNINGS"
_WORKER_WARNINGS = "ignore::Warning:lifetimes.utils"
"""lifetimes sets a pandas option that pandas 3 deprecates when it is imported."""


@dataclass(frozen=True)
class _ScoreTask:
    """What scoring a partition needs (sent to worker processes)."""

    stats: PopulationStats
    models: ScoringModels
    policy: PolicyConfig
    when: pd.Timestamp
    segment_rules: SegmentRules | None
    chunk_size: int
    work: Path
    n_threads: int | None = None


@dataclass(frozen=True)
class _Scored:
    """What a partition's scoring step reports back: CLV value counts, drift counts, timings."""

    clv_counts: tuple[np.ndarray, np.ndarray]
    seconds: dict[str, float]
    drift: DriftCounts | None = None


def _score_part(task: _ScoreTask, p: int) -> _Scored:
    """Score and explain partition ``p`` (:func:`part_scores`) and write its table."""
    base = pd.read_parquet(task.work / f"base-{p}.parquet")
    prospects = pd.Index(
        pd.read_parquet(task.work / f"prospects-{p}.parquet")[CUSTOMER_ID], name=CUSTOMER_ID
    )
    clock: dict[str, float] = {}
    drift: list[DriftCounts] = []
    table = part_scores(
        PartBase(base, prospects),
        task.stats,
        task.models,
        task.policy,
        task.when,
        segment_rules=task.segment_rules,
        chunk_size=task.chunk_size,
        n_threads=task.n_threads,
        clock=clock,
        drift=drift,
    )
    clv = table["clv"].to_numpy(dtype=float)
    table.to_parquet(task.work / f"scores-{p}.parquet")
    return _Scored(value_counts(clv[~np.isnan(clv)]), clock, drift[0] if drift else None)


def _scored(
    task: _ScoreTask, run: PartitionRunner, note: Callable[[str], None]
) -> Iterator[_Scored]:
    """Every partition's scoring step, in partition order.

    In worker processes (large, spilled inputs), one per core scores whole partitions with one
    thread each: the reason texts and the CLV are single-threaded, so this keeps both cores
    busy; each result is the same as with more threads (a customer's numbers never depend on
    the threads).
    """
    if run.parallel:
        task = dataclasses.replace(task, n_threads=1)
    for p, done in enumerate(run.map(functools.partial(_score_part, task))):
        note(f"partition {p + 1} of {run.n}: scored and explained")
        yield done


class PartitionRunner:
    """Runs a function of each partition, here or in worker processes kept for the whole run.

    With ``parallel`` and more than one core, spawned worker processes (one per core) run the
    functions; they are started once, when the runner is entered, so every pass of a run
    shares them (each worker imports retain and loads the models' compiled tables once).
    Otherwise the functions run here, one partition after another. The results are the same
    either way: a partition's work never depends on another's.

    Parameters
    ----------
    n : int
        Number of partitions.
    parallel : bool
        Whether worker processes may run the passes (large, spilled inputs).
    """

    def __init__(self, n: int, parallel: bool) -> None:
        self.n = n
        self.parallel = parallel and min(n, os.cpu_count() or 1) > 1
        self._stack = contextlib.ExitStack()
        self._pool: ProcessPoolExecutor | None = None

    def __enter__(self) -> PartitionRunner:
        if self.parallel:
            self._pool = self._stack.enter_context(_worker_pool(min(self.n, os.cpu_count() or 1)))
        return self

    def __exit__(self, *exc: object) -> None:
        self._pool = None
        self._stack.close()

    def map(self, fn: Callable[[int], _T]) -> Iterator[_T]:
        """``fn(p)`` for every partition ``p``, in partition order.

        In worker processes ``fn`` must be picklable: a module-level function, or a
        ``functools.partial`` of one with picklable arguments.
        """
        if self._pool is None:
            for p in range(self.n):
                yield fn(p)
            return
        yield from self._pool.map(fn, range(self.n))


@contextlib.contextmanager
def _worker_pool(workers: int) -> Iterator[ProcessPoolExecutor]:
    """Spawned worker processes (no fork of a process with threads), as quiet as the command."""
    context = multiprocessing.get_context("spawn")
    saved = os.environ.get(_WARNINGS_ENV)
    if saved is None:
        os.environ[_WARNINGS_ENV] = _WORKER_WARNINGS
    try:
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            yield pool
    finally:
        if saved is None:
            os.environ.pop(_WARNINGS_ENV, None)


def score_partitioned(
    parts: MemoryParts | SpilledParts,
    source: _RawInputs,
    cfg: RunConfig,
    as_of: Any,
    models: ScoringModels,
    policy: PolicyConfig,
    work: Path,
    *,
    segment_rules: SegmentRules | None = None,
    chunk_size: int = 250_000,
    timings: dict[str, float] | None = None,
    progress: Callable[[str], None] | None = None,
) -> PartitionedScores:
    """Score the customers of a source one customer partition at a time.

    Parameters
    ----------
    parts : MemoryParts or SpilledParts
        The raw rows split by customer (:func:`retain.engine.partition.split_tables`,
        :func:`retain.engine.partition.spill_tables`).
    source : _RawInputs
        The source's validation settings (formats, decimals, duplicates policy; its tables
        are not read).
    cfg : RunConfig
        The run configuration (validation settings).
    as_of : date or str
        The scoring day.
    models : ScoringModels
        The loaded models.
    policy : PolicyConfig
        The policy.
    work : Path
        A folder for the intermediate and final partition files (the caller's to remove).
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

    Raises
    ------
    retain.io.DataError
        A whole table had rows and none was usable, or scores hold non-finite values.
    """
    note = progress or (lambda _m: None)
    clock = timings if timings is not None else {}
    when = day(as_of)
    n = parts.count
    # one pool of worker processes for every pass (spilled inputs), started once
    with PartitionRunner(n, isinstance(parts, SpilledParts)) as run:
        records: list[InputsRecord] = []
        balances: list[dict[str, Any]] = []
        rfm_counts, triples = [], []
        task = _FeatureTask(parts, source, cfg, when, models.feature_config, work)
        for _p, done in _featurised(task, run, note):
            records.append(done.record)
            balances.append(done.counts)
            rfm_counts.append(done.rfm_counts)
            triples.append(done.triples)
            for key, seconds in done.seconds.items():
                clock[key] = clock.get(key, 0.0) + seconds
        record = merge_records(records, cfg.data.max_rejected_share)
        check_rows_used(record.counts)
        stats = population_stats(rfm_counts, triples, models)

        clv_counts, drift_parts = [], []
        scoring = _ScoreTask(stats, models, policy, when, segment_rules, chunk_size, work)
        for done in _scored(scoring, run, note):
            clv_counts.append(done.clv_counts)
            if done.drift is not None:
                drift_parts.append(done.drift)
            for key, seconds in done.seconds.items():
                clock[key] = clock.get(key, 0.0) + seconds
        t0 = time.perf_counter()
        note("deciding tiers, budgets and priorities")
        cuts = tier_cuts_from_counts(*merge_value_counts(clv_counts), policy.tiers)
        deciding = _PolicyTask(work, policy, models, when, cuts)
        files = list(run.map(functools.partial(_actions_part, deciding)))
        _budget_stream(files, policy, work)  # the files _budget_part reads
        degree_parts = list(run.map(functools.partial(_budget_part, deciding)))
        names = {c for part in degree_parts for c in part}
        degree_stats = {
            c: merge_value_counts([part[c] for part in degree_parts if c in part]) for c in names
        }
        # the population's degree counts (up to one value per customer) go to the workers
        # once, as a file each reads once, not with every partition's task
        _save_value_counts(degree_stats, work / _DEGREE_STATS)
        writing = dataclasses.replace(deciding, degree_stats=work / _DEGREE_STATS)
        outputs = []
        for p, (scored, rows) in enumerate(run.map(functools.partial(_output_part, writing))):
            balances[p]["customers_scored"] = scored
            balances[p]["rows_out"] = rows
            outputs.append(work / f"output-{p}.parquet")
        clock["policy"] = clock.get("policy", 0.0) + time.perf_counter() - t0
    drift = merge_counts(drift_parts) if drift_parts else None
    return PartitionedScores(outputs, record, _balance(balances), n, drift)


@dataclass(frozen=True)
class _PolicyTask:
    """What the per-partition policy passes need (sent to worker processes)."""

    work: Path
    policy: PolicyConfig
    models: ScoringModels
    when: pd.Timestamp
    cuts: Any
    degree_stats: Path | None = None


def _actions_part(task: _PolicyTask, p: int) -> Path:
    """Partition ``p``'s tiers and actions before the budgets (:func:`part_actions`)."""
    table = part_actions(pd.read_parquet(task.work / f"scores-{p}.parquet"), task.cuts, task.policy)
    path = task.work / f"actions-{p}.parquet"
    table.to_parquet(path)
    return path


def _budget_part(task: _PolicyTask, p: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Partition ``p``'s budget decisions applied (:func:`part_budget`); its degree counts."""
    table = pd.read_parquet(task.work / f"actions-{p}.parquet")
    mine = pd.read_parquet(_decisions_file(task.work, p))
    mine = mine.set_index(CUSTOMER_ID).reindex(table.index)
    over = mine["over_budget"].fillna(False).to_numpy(dtype=bool)
    prio = pd.array(mine["priority"].fillna(0).to_numpy(dtype=np.int64), dtype="Int64")
    prio[prio == 0] = pd.NA
    table = part_budget(table, over, pd.Series(prio, index=table.index))
    table.to_parquet(task.work / f"budget-{p}.parquet")
    return degree_counts(table, task.policy)


def _output_part(task: _PolicyTask, p: int) -> tuple[int, int]:
    """Partition ``p``'s output table (:func:`part_output`), checked and written.

    Returns
    -------
    tuple of int
        Customers scored and rows written.
    """
    table = pd.read_parquet(task.work / f"budget-{p}.parquet")
    stats = _load_value_counts(str(task.degree_stats)) if task.degree_stats else {}
    out = part_output(table, stats, task.models, task.policy, task.when)
    check_finite(out)
    out.to_parquet(task.work / f"output-{p}.parquet", index=False)
    return int(out[CUSTOMER_ID].nunique()), len(out)


_DEGREE_STATS = "degree-stats.npz"


def _save_value_counts(counts: dict[str, tuple[np.ndarray, np.ndarray]], path: Path) -> None:
    """Value counts per column as plain arrays in one ``.npz`` file (no pickle)."""
    arrays = {}
    for i, (name, (values, n)) in enumerate(sorted(counts.items())):
        arrays[f"values_{i}"], arrays[f"counts_{i}"] = values, n
        arrays[f"name_{i}"] = np.array(name)
    np.savez(path, **arrays)


@functools.lru_cache(maxsize=1)
def _load_value_counts(path: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """What :func:`_save_value_counts` wrote (read once per process and run)."""
    with np.load(path, allow_pickle=False) as data:
        n = sum(1 for key in data.files if key.startswith("name_"))
        return {
            str(data[f"name_{i}"]): (data[f"values_{i}"], data[f"counts_{i}"]) for i in range(n)
        }


def _balance(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """The customer balance of the whole from each partition's counts (and what it scored)."""
    scored = sum(p["customers_scored"] for p in parts)
    rows = sum(p["rows_out"] for p in parts)
    return customer_balance_of(parts, scored, rows)
