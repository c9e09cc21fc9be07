"""The ``score`` step: score every customer as of a date and write the scores atomically.

What it does, in order:

1. Load the config's CLV and churn models (:func:`retain.tracking.load_scoring_models`) by
   alias (``scoring.model_alias``, ``champion`` by default), or by version number / run id
   when given; both are verified and must come from the config's data set.
2. Load and validate the inputs as of the scoring date (:func:`retain.inputs.load_inputs`).
3. :func:`retain.scoring.score_customers`: features, CLV, calibrated churn probability, exact
   SHAP reasons (in chunks of ``scoring.chunk_size``) and the policy (``configs/policy.yaml``).
4. Write ``scores.parquet`` (and ``scores.csv`` on request), ``rejects.parquet``,
   ``manifest.json`` and the summary tables (stage x tier, action plan, first contacts) into
   the date's own folder, ``<output root>/<config name>/scores/
   as_of=YYYY-MM-DD`` (:func:`retain.io.output_folder`). The folder is built beside the old
   one and swapped in only when complete (:func:`retain.io.owned_directory`), so a failed or
   killed run leaves the previous output untouched, other dates are never touched, and a
   folder holding anything retain did not write is refused before any work is done.
5. Log the manifest, the counts, the score distributions, the input data sets and a run
   description to MLflow.

Drift: the scored buyers are compared with the churn model's test cutoff (its reference
profile, :mod:`retain.drift`): per-feature PSI, binned chi-square p-value and missing shares,
and the shift in the predicted churn rate, against ``scoring.drift``. The result is the
manifest's ``drift`` entry (status ``ok``, ``warn``, ``retrain``, or ``skipped`` with a note for
a model saved without a profile), the metrics ``drift_psi_max``, ``drift_churn_rate_shift``,
``drift_retrain`` and ``drift_psi.<feature>``, and the table ``scoring/drift.csv``.

The manifest balances customers: every customer seen in the inputs (clean or rejected rows)
is either scored (one row) or rejected (all of their rows were rejected; counted by reason).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from retain import tracking
from retain.config import (
    ConfigError,
    PolicyConfig,
    RunConfig,
    ScoringConfig,
    SparkConfig,
    load_policy,
)
from retain.contracts import CUSTOMER_ID
from retain.control import check_control_period, group_counts
from retain.drift import (
    DriftCounts,
    drift_summary,
    drift_table,
    merge_counts,
    skipped_summary,
)
from retain.engine.local import (
    PartitionedScores,
    auto_partitions,
    input_rows,
    partition_source,
    read_scores,
    score_partitioned,
)
from retain.engine.workdir import work_folder
from retain.inputs import (
    InputsRecord,
    customer_balance_of,
    customer_counts,
    record_inputs,
)
from retain.io import (
    Inputs,
    check_dates_against_data,
    check_output_folder,
    load_inputs,
    output_folder,
    owned_directory,
    write_json_atomic,
    write_rejects,
    write_sorted_parts_atomic,
    write_table_atomic,
)
from retain.names import (
    ACTION_PLAN_CSV,
    CONTACT_LIST_CSV,
    DRIFT_CHURN_RATE_SHIFT,
    DRIFT_PSI_MAX,
    DRIFT_PSI_PREFIX,
    DRIFT_RETRAIN,
    MANIFEST_DRIFT,
    MANIFEST_FILE,
    REJECTS_FILE,
    SCORES_CSV,
    SCORES_FILE,
    SCORES_KIND,
    SCORING_DISTRIBUTION,
    SCORING_DRIFT,
    SCORING_MANIFEST,
    SCORING_STAGE_BY_TIER,
    STAGE_TIER_CSV,
)
from retain.reporting.summary import (
    action_plan_table,
    contact_list,
    stage_tier_table,
    summary_tables,
)
from retain.scoring import ScoringModels, check_finite, count_by, score_customers
from retain.timeline import day
from retain.tracking import LoadedScoringModels, TrackingSettings

if TYPE_CHECKING:  # pyspark only for engine: spark
    from pyspark.sql import SparkSession

Progress = Callable[[str], None]

COUNT_COLUMNS = (
    "lifecycle_stage",
    "value_tier",
    "retention_action",
    "action_channel",
    "treatment_group",
)


@dataclass(frozen=True)
class ScoreResult:
    """What :func:`score` produced.

    Attributes
    ----------
    run_id : str
        The MLflow run.
    output_dir : Path
        The folder holding scores, rejects and manifest.
    manifest : dict
        The manifest written beside the scores.
    files : list of Path
        The files written.
    warnings : list of str
        The inputs' warnings, and one line when the drift check warns or calls for
        retraining (:func:`drift_warning`); the command ends its summary line with them.
    """

    run_id: str
    output_dir: Path
    manifest: dict[str, Any] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def customer_balance(inputs: Inputs, scores: pd.DataFrame) -> dict[str, Any]:
    """Customers in = scored + rejected, with the rejected customers counted by reason.

    Parameters
    ----------
    inputs : Inputs
        The loaded inputs (clean tables and rejects).
    scores : DataFrame
        The scores (one row per scored customer).

    Returns
    -------
    dict
        ``customers_in``, ``customers_scored``, ``customers_rejected``,
        ``rejected_by_reason`` (each rejected customer under the most frequent reason of their
        rows) and ``balanced``.
    """
    scored = int(scores[CUSTOMER_ID].nunique())
    return customer_balance_of([customer_counts(inputs)], scored, len(scores))


def build_manifest(
    cfg: RunConfig,
    as_of: pd.Timestamp,
    inputs: Inputs,
    scores: pd.DataFrame,
    models: dict[str, dict[str, Any]],
    timings: dict[str, float],
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The manifest written beside the scores.

    Parameters
    ----------
    cfg : RunConfig
        The run config (name and hash).
    as_of : Timestamp
        The scoring date.
    inputs : Inputs
        Loaded inputs (row counts and rejects).
    scores : DataFrame
        The scores.
    models : dict
        Per model: name, version, requested reference, aliases, run id.
    timings : dict
        Seconds per step.
    extra : dict, optional
        Further entries (e.g. tier cut-points).

    Returns
    -------
    dict
        JSON-ready manifest: as-of, config name/hash, input row counts, rejected rows by table
        and reason, the customer balance, models, counts per stage/tier/action/channel/
        treatment group, treatment and control customers per action (``control_groups``),
        totals (``action_cost`` of every action kept by the budget, ``contact_cost`` of the
        customers actually contacted: control customers cost nothing) and timings.
    """
    return manifest_from(
        cfg,
        as_of,
        record_inputs(inputs),
        customer_balance(inputs, scores),
        scores,
        models,
        timings,
        extra,
    )


def manifest_from(
    cfg: RunConfig,
    as_of: pd.Timestamp,
    record: InputsRecord,
    balance: dict[str, Any],
    view: pd.DataFrame,
    models: dict[str, dict[str, Any]],
    timings: dict[str, float],
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The manifest from the inputs' record, the customer balance and the scores' columns.

    Parameters
    ----------
    cfg, as_of, models, timings, extra
        As for :func:`build_manifest`.
    record : InputsRecord
        The inputs' record (row counts, rejects).
    balance : dict
        The customer balance (:func:`customer_balance`).
    view : DataFrame
        Every scored row, sorted by customer, with at least the columns counted
        (:data:`COUNT_COLUMNS`) and totalled (:data:`VIEW_COLUMNS`).

    Returns
    -------
    dict
        See :func:`build_manifest`.
    """
    rejects = record.rejects
    rejected_rows = {
        str(table): {str(r): int(n) for r, n in grp["reason"].value_counts().items()}
        for table, grp in rejects.groupby("table", observed=True)
    }
    return {
        "as_of": as_of.date().isoformat(),
        "created_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "config_name": cfg.name,
        "config_hash": cfg.config_hash(),
        "input_rows": record.counts,
        "rejected_rows_by_reason": rejected_rows,
        "customers": balance,
        "rows_out": int(len(view)),
        "models": models,
        "counts": count_by(view, COUNT_COLUMNS),
        "control_groups": group_counts(view),
        "totals": {
            "clv": float(np.nansum(view["clv"])),
            "expected_value_saved": float(np.nansum(view["expected_value_saved"])),
            "action_cost": float(np.nansum(view["action_cost"])),
            "contact_cost": float(np.nansum(view["action_cost"].where(view["contact"], 0.0))),
            "mean_churn_probability": float(np.nanmean(view["churn_probability"]))
            if view["churn_probability"].notna().any()
            else None,
        },
        "timings_seconds": {k: round(v, 3) for k, v in timings.items()},
        **(extra or {}),
    }


def write_outputs(
    scores: pd.DataFrame | Sequence[Path],
    rejects: pd.DataFrame,
    manifest: dict[str, Any],
    output_dir: str | Path,
    csv: bool = False,
    tables: Mapping[str, pd.DataFrame] | None = None,
    work: Path | None = None,
) -> list[Path]:
    """Write scores, rejects and manifest into ``output_dir`` all at once or not at all.

    Parameters
    ----------
    scores : DataFrame or sequence of Path
        The scores, or the Parquet parts of a partitioned run (written as one table sorted
        by customer, a batch at a time: :func:`retain.io.write_sorted_parts_atomic`).
    rejects : DataFrame
        The rejected input rows.
    manifest : dict
        The manifest (its ``files`` entry is filled in here).
    output_dir : str or Path
        The date's output folder (:func:`retain.io.output_folder`); an existing one is replaced
        only after the new one is complete, and only if retain wrote it.
    csv : bool
        Also write ``scores.csv``.
    tables : mapping of str to DataFrame, optional
        Further tables by file name (the summary CSVs, :data:`retain.names.SUMMARY_CSVS`),
        written in the same folder and in the same all-or-nothing step.
    work : Path, optional
        Scratch folder for sorting the parts.

    Returns
    -------
    list of Path
        The final paths of the files written.
    """
    output_dir = Path(output_dir)
    tables = dict(tables or {})
    names = [SCORES_FILE, *([SCORES_CSV] if csv else []), *tables, REJECTS_FILE, MANIFEST_FILE]
    manifest["files"] = names
    info = {"as_of": manifest.get("as_of"), "config_name": manifest.get("config_name")}
    with owned_directory(output_dir, SCORES_KIND, info) as tmp:
        t0 = time.perf_counter()
        for name in [SCORES_FILE, *([SCORES_CSV] if csv else [])]:
            if isinstance(scores, pd.DataFrame):
                write_table_atomic(scores, tmp / name)
            else:
                write_sorted_parts_atomic(list(scores), tmp / name, CUSTOMER_ID, work=work)
        for name, table in tables.items():
            write_table_atomic(table, tmp / name)
        write_rejects(rejects, tmp / REJECTS_FILE)
        timings = manifest.setdefault("timings_seconds", {})
        timings["write_tables"] = round(time.perf_counter() - t0, 3)
        write_json_atomic(manifest, tmp / MANIFEST_FILE)
    return [output_dir / n for n in names]


def _model_entry(version: Any, requested: str) -> dict[str, Any]:
    return {
        "name": version.name,
        "version": str(version.version),
        "requested": requested,
        "aliases": sorted(getattr(version, "aliases", []) or []),
        "run_id": version.run_id,
    }


def score(
    cfg: RunConfig,
    *,
    as_of: dt.date | str | None = None,
    output_dir: str | Path | None = None,
    model_version: str | None = None,
    clv_version: str | None = None,
    csv: bool | None = None,
    allow_other_dataset: bool = False,
    progress: Progress | None = None,
    value_version: str | None = None,
) -> ScoreResult:
    """Score every customer as of a date with the registered models; write and log the result.

    Parameters
    ----------
    cfg : RunConfig
        Run config with a ``scoring`` section.
    as_of : date or str, optional
        Scoring date; default ``scoring.as_of``.
    output_dir : str or Path, optional
        Output root; default ``scoring.output_dir``. The scores go to
        ``<root>/<config name>/scores/as_of=YYYY-MM-DD``.
    model_version : str, optional
        Churn model alias, version or run id; default ``scoring.model_alias``.
    clv_version : str, optional
        CLV model alias, version or run id; default ``scoring.model_alias``.
    value_version : str, optional
        Value model alias, version or run id (read with ``clv.method`` ``ml`` or ``auto``
        only); default ``scoring.model_alias``.
    csv : bool, optional
        Also write CSV; default ``scoring.write_csv``.
    allow_other_dataset : bool
        Score with models trained on another data set than the config's.
    progress : callable, optional
        Called with a short message before each stage.

    Returns
    -------
    ScoreResult
        Run id, output folder, manifest and files.

    Raises
    ------
    ConfigError
        Without a ``scoring`` section, or with an invalid policy file.
    retain.io.DataError
        When the inputs fail validation.
    retain.tracking.TrackingError
        When the store is unreachable or a model reference does not exist.
    retain.io.OutputError
        When the date's output folder holds anything retain did not write, or cannot be
        written.
    """
    note = progress or (lambda _m: None)
    if cfg.scoring is None:
        raise ConfigError(f"config {cfg.name!r} has no 'scoring' section")
    sc = cfg.scoring
    when = day(as_of or sc.as_of)
    out_dir = output_folder(output_dir or sc.output_dir, cfg.name, SCORES_KIND, when.date())
    check_output_folder(out_dir, SCORES_KIND)
    write_csv = sc.write_csv if csv is None else csv
    policy = load_policy(cfg.policy_path)
    timings: dict[str, float] = {}
    churn_ref = model_version or sc.model_alias
    clv_ref = clv_version or sc.model_alias
    value_ref = value_version or sc.model_alias

    settings, loaded = _load_models(
        cfg, clv_ref, churn_ref, allow_other_dataset, timings, note, value_ref
    )
    models = loaded.models
    check_control_period(policy.control, models.horizon_days, str(cfg.policy_path))
    model_info = models_entry(loaded, str(clv_ref), str(churn_ref), str(value_ref))
    partitions = auto_partitions(input_rows(cfg), cfg.partitions)
    record: Inputs | InputsRecord
    if cfg.engine == "spark" or partitions > 1:
        with work_folder("retain-score-") as work:
            if cfg.engine == "spark":
                run = _run_spark(cfg, when, models, policy, timings, work, note)
            else:
                run = _run_local(cfg, when, models, policy, timings, partitions, work, note)
            manifest, files, view, record = _score_in_partitions(
                cfg,
                when,
                run,
                cfg.engine,
                policy,
                model_info,
                timings,
                out_dir,
                write_csv,
                note,
                work,
                drift_entry(models, run.drift, sc),
            )
        warnings = record.warnings
    else:
        inputs = _load_inputs(cfg, sc, when, timings, note)
        drift_parts: list[DriftCounts] = []
        view = score_customers(
            inputs.transactions,
            when,
            models,
            policy,
            events=inputs.events,
            customers=inputs.customers,
            segment_rules=cfg.segment_rules(),
            chunk_size=sc.chunk_size,
            timings=timings,
            progress=note,
            drift=drift_parts,
        )
        check_finite(view)
        drift = merge_counts(drift_parts) if drift_parts else None
        extra = {MANIFEST_DRIFT: drift_entry(models, drift, sc)}
        manifest, files = _write(
            cfg, when, inputs, view, model_info, timings, out_dir, write_csv, note, extra
        )
        record, warnings = inputs, inputs.warnings

    note("logging to MLflow")
    with tracking.tracked_run(cfg, "score", settings=settings) as run:
        params = score_params(when, models, out_dir, output_dir or sc.output_dir)
        _log(cfg, record, view, manifest, params)
        run_id = run.info.run_id
    alarm = drift_warning(manifest[MANIFEST_DRIFT])
    return ScoreResult(run_id, out_dir, manifest, files, [*warnings, *([alarm] if alarm else [])])


VIEW_COLUMNS = [
    CUSTOMER_ID,
    *COUNT_COLUMNS,
    "retention_action",
    "clv",
    "p_alive",
    "churn_probability",
    "expected_value_saved",
    "action_cost",
    "contact",
]
"""The score columns a partitioned run reads back whole for the manifest, summaries and log."""


def _run_local(
    cfg: RunConfig,
    when: pd.Timestamp,
    models: ScoringModels,
    policy: PolicyConfig,
    timings: dict[str, float],
    partitions: int,
    work: Path,
    note: Progress,
) -> PartitionedScores:
    """Score on the local engine, one customer partition at a time (files in ``work``)."""
    sc = cfg.scoring
    assert sc is not None
    t0 = time.perf_counter()
    note(f"splitting the inputs into {partitions} customer partitions")
    source, parts = partition_source(cfg, partitions, work)
    timings["partition"] = time.perf_counter() - t0
    return score_partitioned(
        parts,
        source,
        cfg,
        when,
        models,
        policy,
        work,
        segment_rules=cfg.segment_rules(),
        chunk_size=sc.chunk_size,
        timings=timings,
        progress=note,
    )


SPARK_DEFAULTS = {
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.sql.session.timeZone": "UTC",
}
"""Settings of a session the job creates (``spark.conf`` entries override them)."""


def spark_session(settings: SparkConfig) -> SparkSession:
    """The Spark session of an ``engine: spark`` run: the active one, or a new one.

    A new session gets ``spark.master`` (unless the process runs inside ``spark-submit``,
    which set the master), ``spark.app_name``, :data:`SPARK_DEFAULTS` and every
    ``spark.conf`` entry; an active session gets the ``spark.conf`` entries that can change
    at run time. Arrow is on and the log level is ERROR either way.

    Parameters
    ----------
    settings : SparkConfig
        The config's ``spark`` section.

    Returns
    -------
    SparkSession
    """
    from pyspark.sql import SparkSession

    session = SparkSession.getActiveSession()
    if session is None:
        builder = SparkSession.builder.appName(settings.app_name)
        if "PYSPARK_GATEWAY_PORT" not in os.environ:  # not launched by spark-submit
            builder = builder.master(settings.master)
        for key, value in {**SPARK_DEFAULTS, **settings.conf}.items():
            builder = builder.config(key, value)
        session = builder.getOrCreate()
    else:
        for key, value in settings.conf.items():
            with contextlib.suppress(Exception):  # static settings stay as they are
                session.conf.set(key, value)
    session.conf.set("spark.sql.execution.arrow.pyspark.enabled", "true")
    session.sparkContext.setLogLevel("ERROR")
    return session


def spark_partitions(spark: SparkSession, setting: int | str) -> int:
    """The Spark partitions of a run: ``partitions``, or twice the default parallelism (auto).

    Parameters
    ----------
    spark : SparkSession
        The session.
    setting : int or "auto"
        The config's ``partitions``.

    Returns
    -------
    int
    """
    if setting == "auto":
        return int(spark.sparkContext.defaultParallelism) * 2
    return int(setting)


def _run_spark(
    cfg: RunConfig,
    when: pd.Timestamp,
    models: ScoringModels,
    policy: PolicyConfig,
    timings: dict[str, float],
    work: Path,
    note: Progress,
) -> PartitionedScores:
    """Score on the Spark engine (``partitions: auto`` is twice the default parallelism)."""
    from retain.engine.spark import score_source_spark

    sc = cfg.scoring
    assert sc is not None
    t0 = time.perf_counter()
    note("starting Spark")
    spark = spark_session(cfg.spark)
    timings["spark_session"] = time.perf_counter() - t0
    partitions = spark_partitions(spark, cfg.partitions)
    return score_source_spark(
        spark,
        cfg,
        when,
        models,
        policy,
        work,
        partitions=partitions,
        segment_rules=cfg.segment_rules(),
        chunk_size=sc.chunk_size,
        timings=timings,
        progress=note,
    )


def _score_in_partitions(
    cfg: RunConfig,
    when: pd.Timestamp,
    run: PartitionedScores,
    engine: str,
    policy: PolicyConfig,
    model_info: dict[str, Any],
    timings: dict[str, float],
    out_dir: Path,
    write_csv: bool,
    note: Progress,
    work: Path,
    drift: dict[str, Any],
) -> tuple[dict[str, Any], list[Path], pd.DataFrame, InputsRecord]:
    """Write the folder of a partitioned run (local or Spark engine) from its score parts.

    ``drift`` is the manifest's drift entry (:func:`drift_entry`). Returns the manifest, the
    files written, the scores' :data:`VIEW_COLUMNS` and the inputs' record.
    """
    sc = cfg.scoring
    assert sc is not None
    dated = cfg.model_copy(update={"scoring": sc.model_copy(update={"as_of": when.date()})})
    check_dates_against_data(dated, run.record.first_day, ("scoring",))
    t0 = time.perf_counter()
    view = read_scores(run.parts, list(dict.fromkeys(VIEW_COLUMNS)))
    extra = {"engine": {"name": engine, "partitions": run.partitions}, MANIFEST_DRIFT: drift}
    manifest = manifest_from(cfg, when, run.record, run.balance, view, model_info, timings, extra)
    if not manifest["customers"]["balanced"]:
        raise RuntimeError(f"customer counts do not balance: {manifest['customers']}")
    first = [first_contacts(p, cfg.report.top_n) for p in run.parts]
    top = cfg.report.top_n
    tables = {
        STAGE_TIER_CSV: stage_tier_table(view),
        ACTION_PLAN_CSV: action_plan_table(view),
        CONTACT_LIST_CSV: contact_list(pd.concat(first, ignore_index=True), policy, top),
    }
    note(f"writing {len(view):,} rows to {out_dir}")
    files = write_outputs(run.parts, run.record.rejects, manifest, out_dir, write_csv, tables, work)
    manifest["timings_seconds"]["write"] = round(time.perf_counter() - t0, 3)
    return manifest, files, view, run.record


def first_contacts(part: Path, top_n: int) -> pd.DataFrame:
    """The rows of a score part that can be among the first ``top_n`` customers to contact.

    The control group keeps its priorities, so the ``top_n`` lowest priorities of the
    customers to contact are found from two columns first, then only those rows are read.
    """
    ranks = pd.read_parquet(part, columns=["action_priority", "contact"])
    mine = ranks.loc[ranks["contact"].fillna(False).astype(bool), "action_priority"].dropna()
    if mine.empty:
        return pd.read_parquet(part, filters=[("action_priority", "<", 1)])
    last = int(mine.nsmallest(top_n).max())
    return pd.read_parquet(part, filters=[("action_priority", "<=", last), ("contact", "==", True)])


def _load_models(
    cfg: RunConfig,
    clv_ref: str,
    churn_ref: str,
    allow_other_dataset: bool,
    timings: dict[str, float],
    note: Progress,
    value_ref: str = "champion",
) -> tuple[TrackingSettings, LoadedScoringModels]:
    """Configure the tracking store and load the models by reference (timed)."""
    t0 = time.perf_counter()
    note("loading models")
    settings = tracking.configure(cfg.tracking)
    loaded = tracking.load_scoring_models(
        cfg, clv_ref, churn_ref, allow_other_dataset=allow_other_dataset, value_ref=value_ref
    )
    timings["load_models"] = time.perf_counter() - t0
    return settings, loaded


def _load_inputs(
    cfg: RunConfig,
    sc: ScoringConfig,
    when: pd.Timestamp,
    timings: dict[str, float],
    note: Progress,
) -> Inputs:
    """Load and validate the inputs as of the scoring date (timed)."""
    t0 = time.perf_counter()
    note(f"loading inputs as of {when.date()}")
    inputs = load_inputs(cfg, when)
    dated = cfg.model_copy(update={"scoring": sc.model_copy(update={"as_of": when.date()})})
    check_dates_against_data(dated, inputs.transactions, ("scoring",))
    timings["load_inputs"] = time.perf_counter() - t0
    return inputs


def models_entry(
    loaded: LoadedScoringModels, clv_ref: str, churn_ref: str, value_ref: str = "champion"
) -> dict[str, Any]:
    """The manifest's ``models`` entry: the versions, as requested and as resolved (the value
    model's with ``clv.method`` ``ml`` or ``auto`` only, with the method chosen)."""
    models = loaded.models
    entry = {
        "clv": _model_entry(loaded.clv_version, clv_ref),
        "churn": {
            **_model_entry(loaded.churn_version, churn_ref),
            "horizon_days": models.horizon_days,
            "clv_feature_model": models.purchase_model,
        },
    }
    if loaded.value_version is not None:
        entry["value"] = {
            **_model_entry(loaded.value_version, value_ref),
            "clv_method": models.clv_method,
            "chosen": models.chosen_method,
        }
    return entry


def _write(
    cfg: RunConfig,
    when: pd.Timestamp,
    inputs: Inputs,
    scores: pd.DataFrame,
    model_info: dict[str, Any],
    timings: dict[str, float],
    out_dir: Path,
    write_csv: bool,
    note: Progress,
    extra: dict[str, Any] | None = None,
) -> tuple[dict[str, Any], list[Path]]:
    """Build the manifest, check the customer balance and write the date's folder (timed).

    ``extra`` holds further manifest entries (the drift entry).

    The summary tables (stage x tier, action plan, first ``report.top_n`` contacts) are
    written as CSV beside the scores, always: they are small and what analysts open first.
    """
    t0 = time.perf_counter()
    note(f"writing {len(scores):,} rows to {out_dir}")
    manifest = build_manifest(cfg, when, inputs, scores, model_info, timings, extra)
    if not manifest["customers"]["balanced"]:
        raise RuntimeError(f"customer counts do not balance: {manifest['customers']}")
    tables = summary_tables(scores, load_policy(cfg.policy_path), cfg.report.top_n)
    files = write_outputs(scores, inputs.rejects, manifest, out_dir, write_csv, tables)
    manifest["timings_seconds"]["write"] = round(time.perf_counter() - t0, 3)  # MLflow copy
    return manifest, files


def drift_entry(
    models: ScoringModels, counts: DriftCounts | None, scoring: ScoringConfig
) -> dict[str, Any]:
    """The manifest's drift entry: the scored population against the churn model's reference.

    Parameters
    ----------
    models : ScoringModels
        The churn model, with its reference profile (or None for an older saved model).
    counts : DriftCounts or None
        The scored buyers' counts (:func:`retain.drift.merge_counts` of the parts).
    scoring : ScoringConfig
        Gives the thresholds (``scoring.drift``).

    Returns
    -------
    dict
        :func:`retain.drift.drift_summary`, or :func:`retain.drift.skipped_summary` with its
        note when the model has no profile or nobody with a churn probability was scored.
    """
    profile = models.churn.reference_profile
    if profile is None:
        return skipped_summary()
    if counts is None or counts.n == 0:
        return skipped_summary("no customer with a purchase was scored; nothing to compare")
    return drift_summary(profile, counts, scoring.drift)


def drift_metrics(entry: Mapping[str, Any]) -> dict[str, float | None]:
    """The run's drift metrics from the manifest's drift entry (none when it was skipped).

    ``drift_psi_max``, ``drift_churn_rate_shift``, ``drift_retrain`` (1 or 0) and
    ``drift_psi.<feature>`` per feature.
    """
    if entry.get("status") == "skipped":
        return {}
    out: dict[str, float | None] = {
        DRIFT_PSI_MAX: entry.get("psi_max"),
        DRIFT_CHURN_RATE_SHIFT: entry.get("churn_rate_shift"),
        DRIFT_RETRAIN: 1.0 if entry.get("retrain") else 0.0,
    }
    for name, figures in (entry.get("features") or {}).items():
        out[DRIFT_PSI_PREFIX + name] = figures.get("psi")
    return out


def drift_warning(entry: Mapping[str, Any]) -> str | None:
    """One line for the command's summary when the drift check warns or calls for retraining.

    Returns
    -------
    str or None
        E.g. "drift: retrain the churn model (recency_days PSI 0.412 >= 0.25; 2 more)";
        None when the status is ``ok`` or ``skipped``.
    """
    status = entry.get("status")
    if status not in ("warn", "retrain"):
        return None
    reasons = list(entry.get("reasons") or [])
    head = "retrain the churn model" if status == "retrain" else "the population has shifted"
    more = f"; {len(reasons) - 1} more" if len(reasons) > 1 else ""
    detail = f" ({reasons[0]}{more})" if reasons else ""
    return f"drift: {head}{detail}; see the manifest's drift entry"


def score_params(
    when: pd.Timestamp, models: ScoringModels, out_dir: Path, root: str | Path
) -> dict[str, Any]:
    """The run's ``score.*`` parameters: date, model versions and folders."""
    return {
        "as_of": when.date().isoformat(),
        "clv_version": models.clv_version,
        "churn_version": models.churn_version,
        "output_dir": str(out_dir),
        "output_root": str(root),
    }


def score_metrics(manifest: dict[str, Any], rows_out: int) -> dict[str, float | int | None]:
    """The run's metrics: rows, rejected customers, totals, timings and counts per value.

    Counts per stage, tier, action and channel are named ``n_<column>_<value>``, with every
    character of the value that is not alphanumeric replaced by ``_``.
    """
    metrics: dict[str, float | int | None] = {
        "rows_out": rows_out,
        "customers_rejected": manifest["customers"]["customers_rejected"],
        **{f"total_{k}": v for k, v in manifest["totals"].items()},
        **{f"seconds_{k}": v for k, v in manifest["timings_seconds"].items()},
    }
    for col, counts in manifest["counts"].items():
        for value, n in counts.items():
            key = "".join(ch if ch.isalnum() else "_" for ch in value)
            metrics[f"n_{col}_{key}"] = n
    return metrics


def score_distribution(scores: pd.DataFrame) -> pd.DataFrame:
    """Summary statistics (``describe``) of the numeric score columns, one row per column."""
    numeric = ["clv", "churn_probability", "p_alive", "expected_value_saved"]
    return scores[numeric].describe().T


def stage_by_tier(scores: pd.DataFrame) -> pd.DataFrame:
    """Customers and CLV per lifecycle stage (rows) and value tier (``count_*``, ``sum_*``)."""
    by_stage = scores.pivot_table(
        index="lifecycle_stage",
        columns="value_tier",
        values="clv",
        aggfunc=["count", "sum"],
        observed=True,
    )
    by_stage.columns = [f"{a}_{b}" for a, b in by_stage.columns]
    return by_stage


def _log(
    cfg: RunConfig,
    inputs: Inputs | InputsRecord,
    scores: pd.DataFrame,
    manifest: dict[str, Any],
    params: dict[str, Any],
) -> None:
    """Log the input tables, parameters, manifest, metrics, score tables and a description."""
    tracking.log_inputs(cfg, inputs, tracking.SCORING)
    tracking.log_params_flat(params, prefix="score.")
    tracking.log_dict(manifest, SCORING_MANIFEST)
    tracking.log_metrics(score_metrics(manifest, int(manifest["rows_out"])))
    tracking.log_table(score_distribution(scores), SCORING_DISTRIBUTION)
    tracking.log_table(stage_by_tier(scores), SCORING_STAGE_BY_TIER)
    drift = manifest.get(MANIFEST_DRIFT) or skipped_summary()
    tracking.log_metrics(drift_metrics(drift))
    tracking.log_table(drift_table(drift), SCORING_DRIFT, index=False)
    tracking.describe_run(score_description(tracking.data_label(cfg, inputs), manifest, params))


def score_description(data: str, manifest: dict[str, Any], params: dict[str, Any]) -> str:
    """The run's description: who was scored as of when, with which models, and where to.

    Parameters
    ----------
    data : str
        The data in a few words (:func:`retain.tracking.data_label`).
    manifest : dict
        The manifest (:func:`build_manifest`).
    params : dict
        The run's ``score.*`` parameters (:func:`score_params`).

    Returns
    -------
    str
        E.g. "Scored 2,357 customers of cdnow_sample (6,919 transactions, 2,357 customers)
        as of 1998-06-30 with CLV version 1 and churn version 1; 0 customers rejected. Scores
        in outputs/cdnow-sample/scores/as_of=1998-06-30."
    """
    customers = manifest["customers"]
    return (
        f"Scored {customers['customers_scored']:,} customers of {data} as of "
        f"{manifest['as_of']} with CLV version {params['clv_version']} and churn version "
        f"{params['churn_version']}; {customers['customers_rejected']:,} customers rejected. "
        f"Scores in {params['output_dir']}."
    )
