"""Loading a run's inputs: the configured source, validated, as of a date.

:func:`load_inputs` dispatches on ``cfg.data.source`` (embedded CDNOW, the synthetic generator,
or files read with :func:`retain.io.read.read_table`) and sends every source through the same
validation (:mod:`retain.validation`). The dates a run depends on are checked against the data
(:func:`check_dates_against_data`, :func:`observed_until`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from retain.config import ConfigError, RunConfig
from retain.contracts import CUSTOMER_ID, CUSTOMERS, EVENTS, TIMESTAMP, TRANSACTIONS, DataError
from retain.datasets import CDNOW_OBSERVED_UNTIL, load_cdnow
from retain.digests import TableDigest
from retain.io.read import read_table
from retain.timeline import cutoff_end
from retain.validation import (
    DateLike,
    DuplicatesPolicy,
    _clean_text,
    rejected_share_warnings,
    row_counts,
    validate_customers,
    validate_events,
    validate_transactions,
)

__all__ = [
    "Inputs",
    "InputsRecord",
    "TableRecord",
    "customer_balance_of",
    "customer_counts",
    "merge_records",
    "record_inputs",
    "check_dates_against_data",
    "config_dates",
    "load_inputs",
    "observed_until",
    "rejected_customers",
]


@dataclass
class Inputs:
    """The validated inputs of one run.

    Attributes
    ----------
    transactions : DataFrame
        Clean transactions (see :func:`validate_transactions`).
    events : DataFrame or None
        Clean engagement events, or None when the source has none.
    customers : DataFrame or None
        Clean customer attributes indexed by ``customer_id``, or None.
    rejects : DataFrame
        Every rejected row of every table (``table, row_number, customer_id, reason``).
    counts : dict
        Per table name, the :func:`row_counts` dict.
    as_of : Timestamp or None
        The as-of date the inputs were validated for.
    truth : DataFrame or None
        The generating parameters per customer, for synthetic data only.
    warnings : list of str
        One line per table whose share of rejected rows is above ``data.max_rejected_share``
        (:func:`retain.validation.rejected_share_warnings`).
    """

    transactions: pd.DataFrame
    events: pd.DataFrame | None
    customers: pd.DataFrame | None
    rejects: pd.DataFrame
    counts: dict[str, dict[str, int]]
    as_of: pd.Timestamp | None = None
    truth: pd.DataFrame | None = None
    warnings: list[str] = field(default_factory=list)


@contextlib.contextmanager
def _naming_file(path: Path | None) -> Iterator[None]:
    """Add the file a table came from to a whole-input :class:`DataError` raised inside."""
    try:
        yield
    except DataError as exc:
        if path is None:
            raise
        raise DataError(f"{exc} (file: {path})") from exc


_CDNOW_KIND = {"cdnow_master": "master", "cdnow_sample": "sample"}


@dataclass
class _RawInputs:
    """The tables of a source as read, with what their validation needs to know.

    ``formats`` and ``decimals`` are the configured timestamp formats and decimal separators
    per table, ``paths`` the file each table came from (files only), ``duplicates`` the
    duplicate policy of the source and ``truth`` the synthetic generator's parameters.
    """

    tables: dict[str, pd.DataFrame | None] = field(
        default_factory=lambda: {"events": None, "customers": None}
    )
    formats: dict[str, str | None] = field(
        default_factory=lambda: {"transactions": None, "events": None, "customers": None}
    )
    decimals: dict[str, str] = field(default_factory=lambda: {"transactions": ".", "events": "."})
    paths: dict[str, Path] = field(default_factory=dict)
    duplicates: DuplicatesPolicy = "drop"
    truth: pd.DataFrame | None = None


CONTRACTS = {"transactions": TRANSACTIONS, "events": EVENTS, "customers": CUSTOMERS}
"""The contract of each input table."""


def file_sources(cfg: RunConfig) -> dict[str, Any]:
    """The configured file of each table (``data.source: files``), None for an absent one."""
    data = cfg.data
    return {"transactions": data.transactions, "events": data.events, "customers": data.customers}


def file_settings(cfg: RunConfig) -> _RawInputs:
    """What validating the files of ``data.source: files`` needs besides their rows.

    Parameters
    ----------
    cfg : RunConfig
        The run configuration.

    Returns
    -------
    _RawInputs
        No tables; the timestamp formats, decimal separators and paths of the configured
        files.
    """
    raw = _RawInputs()
    for name, source in file_sources(cfg).items():
        if source is not None:
            raw.formats[name] = source.timestamp_format
            raw.decimals[name] = source.csv.decimal
            raw.paths[name] = Path(source.path)
    return raw


def _read_source(cfg: RunConfig) -> _RawInputs:
    """Read the raw tables of ``cfg.data.source``: embedded CDNOW, the generator, or files."""
    data = cfg.data
    raw = _RawInputs()
    if data.source in _CDNOW_KIND:
        raw.tables["transactions"] = load_cdnow(_CDNOW_KIND[data.source])  # type: ignore[arg-type]
        raw.duplicates = "keep"
    elif data.source == "synthetic":
        # imported here: a run on files or CDNOW never loads the generator, and tests put a
        # stand-in for retain.synthetic into sys.modules
        from retain.synthetic import generate_synthetic  # (b) and (c), see above

        syn = data.synthetic
        assert syn is not None  # guaranteed by DataConfig validation
        generated = generate_synthetic(
            n_customers=syn.n_customers,
            start=syn.start,
            end=syn.end,
            seed=syn.seed,
            with_events=syn.with_events,
        )
        raw.tables["transactions"] = generated.transactions
        raw.tables["events"] = getattr(generated, "events", None)
        raw.tables["customers"] = getattr(generated, "customers", None)
        raw.truth = getattr(generated, "truth", None)
    elif data.source == "files":
        raw = file_settings(cfg)
        for name, source in file_sources(cfg).items():
            if source is not None:
                raw.tables[name] = read_table(source, CONTRACTS[name], null_values=data.null_values)
    else:  # pragma: no cover - the config's Literal forbids it
        raise ConfigError(f"unknown data source {data.source!r}")
    return raw


def load_inputs(cfg: RunConfig, as_of: DateLike) -> Inputs:
    """Load and validate the inputs of a run as of a date.

    Every source goes through the same validation. ``cdnow_master``/``cdnow_sample`` read the
    embedded CDNOW files (transactions only; their identical lines are kept as separate
    purchases, see :func:`validate_transactions`); ``synthetic`` runs the generator with the
    config's parameters; ``files`` reads the configured tables with :func:`read_table`.
    ``data.null_values``, ``data.max_amount``, ``data.max_id_length``,
    ``data.id_normalisation``, each table's ``timestamp_format`` and ``csv.decimal`` and the
    events' ``roles`` are passed to the validation (derived columns, e.g. ``amount: Quantity *
    UnitPrice``, are computed by :func:`read_table`).

    Parameters
    ----------
    cfg : RunConfig
        The run configuration (``cfg.data`` is used).
    as_of : date or str
        The as-of date; later rows are rejected as ``timestamp_after_as_of``.

    Returns
    -------
    Inputs
        Clean tables, all rejects and the row counts per table.

    Raises
    ------
    DataError
        For a whole-input problem in any table.
    """
    return validate_source(_read_source(cfg), cfg, as_of)


def validate_source(source: _RawInputs, cfg: RunConfig, as_of: DateLike) -> Inputs:
    """Validate the raw tables of a source (or of a part of its customers) as of a date.

    Parameters
    ----------
    source : _RawInputs
        The tables as read (:func:`_read_source`, or one customer partition of them).
    cfg : RunConfig
        The run configuration.
    as_of : date or str
        The as-of date.

    Returns
    -------
    Inputs
        As :func:`load_inputs`.
    """
    data = cfg.data
    as_of_ts = pd.Timestamp(as_of)
    raw, formats, decimals, paths = source.tables, source.formats, source.decimals, source.paths
    duplicates, truth = source.duplicates, source.truth
    limits: dict[str, Any] = {
        "null_values": data.null_values,
        "max_id_length": data.max_id_length,
        "id_normalisation": data.id_normalisation,
    }
    raw_tx = raw["transactions"]
    assert raw_tx is not None
    with _naming_file(paths.get("transactions")):
        transactions, tx_rejects = validate_transactions(
            raw_tx,
            as_of_ts,
            returns=data.returns,
            timestamp_format=formats["transactions"],
            duplicates=duplicates,
            max_amount=data.max_amount,
            decimal=decimals["transactions"],
            **limits,
        )
    rejects = [tx_rejects]
    counts = {"transactions": row_counts("transactions", len(raw_tx), transactions, tx_rejects)}
    events = customers = None
    raw_events = raw["events"]
    if raw_events is not None:
        with _naming_file(paths.get("events")):
            events, ev_rejects = validate_events(
                raw_events,
                as_of_ts,
                roles=data.events.roles if data.events is not None else None,
                timestamp_format=formats["events"],
                decimal=decimals["events"],
                **limits,
            )
        rejects.append(ev_rejects)
        counts["events"] = row_counts("events", len(raw_events), events, ev_rejects)
    raw_customers = raw["customers"]
    if raw_customers is not None:
        with _naming_file(paths.get("customers")):
            customers, cu_rejects = validate_customers(
                raw_customers, as_of_ts, timestamp_format=formats["customers"], **limits
            )
        rejects.append(cu_rejects)
        counts["customers"] = row_counts("customers", len(raw_customers), customers, cu_rejects)
    return Inputs(
        transactions=transactions,
        events=events,
        customers=customers,
        rejects=pd.concat(rejects, ignore_index=True),
        counts=counts,
        as_of=as_of_ts,
        truth=truth,
        warnings=rejected_share_warnings(counts, cfg.data.max_rejected_share),
    )


@dataclass
class TableRecord:
    """What a run records of one clean input table.

    Attributes
    ----------
    rows : int
        Clean rows.
    digest : TableDigest
        Content digest (:mod:`retain.digests`).
    like : DataFrame
        No rows: the table's columns, dtypes and index name (its schema).
    """

    rows: int
    digest: TableDigest
    like: pd.DataFrame


@dataclass
class InputsRecord:
    """What a run logs and checks about its inputs, without holding the tables.

    Built from loaded inputs (:func:`record_inputs`) or summed over customer partitions
    (:func:`merge_records`): the same inputs give the same record either way.

    Attributes
    ----------
    counts : dict
        Per table, the :func:`retain.validation.row_counts` dict.
    rejects : DataFrame
        Every rejected row.
    warnings : list of str
        Rejected-share warnings.
    as_of : Timestamp
        The as-of day.
    tables : dict
        Per clean table present, its :class:`TableRecord`.
    first_day : Timestamp or None
        The first clean transaction's day.
    customers : int
        Distinct customers among the clean transactions.
    """

    counts: dict[str, dict[str, int]]
    rejects: pd.DataFrame
    warnings: list[str]
    as_of: pd.Timestamp
    tables: dict[str, TableRecord]
    first_day: pd.Timestamp | None
    customers: int


def _schema_of(frame: pd.DataFrame) -> pd.DataFrame:
    """A frame with no rows and ``frame``'s columns, dtypes and index name, sharing no data.

    (``frame.iloc[:0]`` would keep the whole table alive through its buffers.)
    """
    columns = {c: pd.Series([], dtype=t) for c, t in frame.dtypes.items()}
    index = pd.Index([], dtype=frame.index.dtype, name=frame.index.name)
    return pd.DataFrame(columns, index=index)


def record_inputs(inputs: Inputs) -> InputsRecord:
    """The :class:`InputsRecord` of loaded inputs.

    Parameters
    ----------
    inputs : Inputs
        Loaded inputs.

    Returns
    -------
    InputsRecord
    """
    tables = {}
    for name in ("transactions", "events", "customers"):
        frame = getattr(inputs, name)
        if frame is not None:
            tables[name] = TableRecord(
                len(frame), TableDigest(frame).update(frame), _schema_of(frame)
            )
    tx = inputs.transactions
    return InputsRecord(
        counts=inputs.counts,
        rejects=inputs.rejects,
        warnings=list(inputs.warnings),
        as_of=inputs.as_of,
        tables=tables,
        first_day=None if tx.empty else tx[TIMESTAMP].min().normalize(),
        customers=int(tx[CUSTOMER_ID].nunique()),
    )


def merge_records(parts: Sequence[InputsRecord], max_rejected_share: float) -> InputsRecord:
    """The record of inputs split in customer partitions, from the partitions' records.

    Parameters
    ----------
    parts : sequence of InputsRecord
        One per partition (their customers are disjoint).
    max_rejected_share : float
        ``data.max_rejected_share`` (for the warnings of the whole).

    Returns
    -------
    InputsRecord
    """
    counts: dict[str, dict[str, int]] = {}
    tables: dict[str, TableRecord] = {}
    for part in parts:
        for table, c in part.counts.items():
            into = counts.setdefault(table, {})
            for key, value in c.items():
                into[key] = into.get(key, 0) + int(value)
        for name, rec in part.tables.items():
            if name not in tables:
                tables[name] = TableRecord(0, rec.digest.empty_copy(), rec.like)
            tables[name].rows += rec.rows
            tables[name].digest.merge(rec.digest)
    days = [p.first_day for p in parts if p.first_day is not None]
    return InputsRecord(
        counts=counts,
        rejects=pd.concat([p.rejects for p in parts], ignore_index=True),
        warnings=rejected_share_warnings(counts, max_rejected_share),
        as_of=parts[0].as_of,
        tables=tables,
        first_day=min(days) if days else None,
        customers=sum(p.customers for p in parts),
    )


def customer_counts(inputs: Inputs) -> dict[str, Any]:
    """The customers seen in the inputs and those rejected, counted by reason.

    Parameters
    ----------
    inputs : Inputs
        Loaded inputs (the whole population or one customer partition).

    Returns
    -------
    dict
        ``customers_in`` (every customer in a clean or rejected row of any table),
        ``customers_rejected`` (all of whose rows were rejected) and ``rejected_by_reason``
        (each rejected customer under the most frequent reason of their rows).
    """
    seen: list[pd.Series] = [inputs.transactions[CUSTOMER_ID]]
    if inputs.events is not None:
        seen.append(inputs.events[CUSTOMER_ID])
    if inputs.customers is not None:
        frame = inputs.customers
        ids = frame[CUSTOMER_ID] if CUSTOMER_ID in frame.columns else frame.index
        seen.append(pd.Series(ids))
    rejected = rejected_customers(inputs)
    seen.append(pd.Series(rejected))
    # each table's distinct ids first (a copy of customers, not of rows), then their union
    distinct = [pd.Series(s.dropna().unique()).astype("string") for s in seen]
    known = pd.concat(distinct, ignore_index=True).unique()
    rejects = inputs.rejects.copy()
    rejects[CUSTOMER_ID] = rejects[CUSTOMER_ID].astype("string").str.strip()
    mine = rejects[rejects[CUSTOMER_ID].isin(rejected)]
    reason = (
        mine.groupby([CUSTOMER_ID, "reason"], observed=True)
        .size()
        .reset_index(name="n")
        .sort_values([CUSTOMER_ID, "n"], ascending=[True, False])
        .drop_duplicates(CUSTOMER_ID)
    )
    return {
        "customers_in": int(len(known)),
        "customers_rejected": int(len(rejected)),
        "rejected_by_reason": {str(k): int(v) for k, v in reason["reason"].value_counts().items()},
    }


def customer_balance_of(
    parts: Sequence[dict[str, Any]], scored: int, rows_out: int
) -> dict[str, Any]:
    """Customers in = scored + rejected, from the :func:`customer_counts` of each partition.

    Parameters
    ----------
    parts : sequence of dict
        :func:`customer_counts` of each customer partition (or of the whole population).
    scored : int
        Distinct customers in the scores.
    rows_out : int
        Rows of the scores.

    Returns
    -------
    dict
        ``customers_in``, ``customers_scored``, ``customers_rejected``,
        ``rejected_by_reason`` (sorted by reason) and ``balanced``.
    """
    by_reason: dict[str, int] = {}
    for part in parts:
        for reason, n in part["rejected_by_reason"].items():
            by_reason[reason] = by_reason.get(reason, 0) + n
    known = sum(p["customers_in"] for p in parts)
    rejected = sum(p["customers_rejected"] for p in parts)
    return {
        "customers_in": known,
        "customers_scored": scored,
        "customers_rejected": rejected,
        "rejected_by_reason": dict(sorted(by_reason.items())),
        "balanced": bool(known == scored + rejected and scored == rows_out),
    }


def config_dates(cfg: RunConfig, sections: Sequence[str]) -> dict[str, pd.Timestamp]:
    """The dates of the given config sections that must fall inside the data, by dotted key."""
    dates: dict[str, Any] = {}
    if "clv" in sections:
        dates["clv.calibration_end"] = cfg.clv.calibration_end
        dates["clv.holdout_end"] = cfg.clv.holdout_end
    if "churn" in sections and cfg.churn is not None:
        for i, cutoff in enumerate(cfg.churn.train_cutoffs):
            dates[f"churn.train_cutoffs[{i}]"] = cutoff
        dates["churn.validation_cutoff"] = cfg.churn.validation_cutoff
        dates["churn.test_cutoff"] = cfg.churn.test_cutoff
    if "scoring" in sections and cfg.scoring is not None:
        dates["scoring.as_of"] = cfg.scoring.as_of
    return {key: pd.Timestamp(value) for key, value in dates.items()}


def check_dates_against_data(
    cfg: RunConfig, transactions: pd.DataFrame | pd.Timestamp | None, sections: Sequence[str]
) -> None:
    """Refuse a config whose cutoffs lie before the first transaction of the data.

    A cutoff before the data starts would give empty snapshots or an empty calibration period;
    the error names the key, the file and both dates.

    Parameters
    ----------
    cfg : RunConfig
        The run config.
    transactions : DataFrame, Timestamp or None
        Validated transactions, or the first one's day (None: no transactions).
    sections : sequence of str
        The sections a step uses: ``clv``, ``churn`` and/or ``scoring``.

    Raises
    ------
    ConfigError
        When a configured date is before the first transaction day.
    """
    if isinstance(transactions, pd.DataFrame):
        if transactions.empty:
            return
        first = transactions[TIMESTAMP].min().normalize()
    elif transactions is None:
        return
    else:
        first = pd.Timestamp(transactions).normalize()
    early = {k: v for k, v in config_dates(cfg, sections).items() if v < first}
    if early:
        where = cfg.source_path or "config"
        listed = ", ".join(f"{k} = {v.date()}" for k, v in early.items())
        raise ConfigError(
            f"{where}: {listed}: before the data starts ({first.date()}); "
            "every cutoff must fall inside the data"
        )


def observed_until(cfg: RunConfig, inputs: Inputs | None = None) -> pd.Timestamp:
    """The last day the data covers; churn label windows may not run past it.

    CDNOW knows its own (:data:`retain.datasets.CDNOW_OBSERVED_UNTIL`), synthetic data ends at
    ``synthetic.end``, files need ``data.observed_until``. For the embedded sources an explicit
    ``data.observed_until`` may only shorten the period.

    Parameters
    ----------
    cfg : RunConfig
        The run configuration.
    inputs : Inputs, optional
        When given, checked for consistency: clean transactions may not run past the result.

    Returns
    -------
    Timestamp
        The last covered day (midnight).

    Raises
    ------
    DataError
        ``inputs`` hold transactions dated after the returned day.
    """
    data = cfg.data
    if data.source in _CDNOW_KIND:
        until = pd.Timestamp(CDNOW_OBSERVED_UNTIL)
    elif data.source == "synthetic":
        assert data.synthetic is not None
        until = pd.Timestamp(data.synthetic.end)
    else:
        assert data.observed_until is not None  # guaranteed by DataConfig validation
        until = pd.Timestamp(data.observed_until)
    if data.observed_until is not None:
        until = min(until, pd.Timestamp(data.observed_until))
    until = until.normalize()
    if inputs is not None and len(inputs.transactions):
        last = inputs.transactions[TIMESTAMP].max()
        if last >= cutoff_end(until):
            raise DataError(
                f"transactions: data runs to {last.date()}, after observed_until "
                f"{until.date()}; set data.observed_until to the last day the data covers"
            )
    return until


def rejected_customers(inputs: Inputs, table: str | None = None) -> pd.Index:
    """Customers whose every row was rejected.

    Parameters
    ----------
    inputs : Inputs
        Loaded inputs.
    table : str, optional
        Restrict to one table (e.g. ``"transactions"``: customers without a single usable
        transaction, who may still have events). By default a customer counts only when no
        clean table holds them.

    Returns
    -------
    Index
        Sorted ``customer_id`` values (string; stripped as in the clean tables). Rows
        rejected as ``customer_id_missing`` (a blank id or a null spelling such as ``NULL``)
        name no customer and are left out.
    """
    rejects = inputs.rejects
    if table is not None:
        rejects = rejects[rejects["table"] == table]
    named = rejects["reason"] != "customer_id_missing"  # "NULL", "n/a", ... name no one
    ids = _clean_text(rejects.loc[named, CUSTOMER_ID]).dropna().unique()
    if not len(ids):  # the usual case: no lookup in the clean tables
        return pd.Index([], dtype="string", name=CUSTOMER_ID)
    clean_ids: list[pd.Index] = []
    tables = {
        "transactions": inputs.transactions,
        "events": inputs.events,
        "customers": inputs.customers,
    }
    for name, frame in tables.items():
        if frame is None or (table is not None and name != table):
            continue
        if CUSTOMER_ID in frame.columns:
            clean_ids.append(pd.Index(frame[CUSTOMER_ID].dropna().unique()))
        else:
            clean_ids.append(pd.Index(frame.index.unique()))
    result = pd.Index(ids, dtype="string", name=CUSTOMER_ID)
    for seen in clean_ids:
        # look the few rejected ids up in the many clean ones, not the reverse: pandas'
        # isin against a large set of Arrow strings costs about a second per 200k
        found = seen[seen.isin(result)]
        result = result[~result.isin(found)]
    return result.sort_values()
