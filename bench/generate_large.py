"""Write a large synthetic data set as Parquet, chunk by chunk, with a retain config beside it.

For the scale-out benchmarks: ``N`` customers with about ``N x 10`` transactions (and, with
``--events``, their engagement events) are written to ``OUT/transactions.parquet`` (and
``OUT/events.parquet``), with ``OUT/retain.yaml`` pointing ``data.source: files`` at them.

The behaviour is BTYD-like, from :func:`retain.synthetic.iter_synthetic` (the project's
generator, unchanged): births (first purchases) uniform over the first third of the window;
per customer a Poisson purchase rate drawn from a Gamma distribution (heterogeneity) and a
Beta-distributed dropout probability after each repeat purchase (BG/NBD); Gamma-Gamma spend;
``--transactions-per-customer`` rescales the purchase rate so that the expected number of rows
per customer is that target. With ``--events``, sessions, emails, tickets, surveys and
referrals driven by the same latent state (about 80 events per customer).

Memory is bounded by the chunk: the generator is consumed ``--chunk-customers`` customers at a
time (vectorised numpy per block of 4,096 customers, no Python loop per customer) and each
chunk is appended to the Parquet files as row groups of up to 1M rows
(``pyarrow.parquet.ParquetWriter``) before the next is made. The default chunk is 1M customers,
or 125k with ``--events`` (about 10M rows of either table per chunk). The output depends on
``--seed`` only, not on the chunk size (the generator draws each 4,096-customer block from its
own seed stream).

Columns: transactions ``customer_id`` (string, ``C0000042``), ``timestamp`` (microseconds,
no time zone), ``amount`` (rounded to cents) and ``quantity``; events ``customer_id``,
``timestamp``, ``event_type``, ``value``. Timestamps are written in microseconds, which every
Parquet reader takes (Spark refuses nanoseconds by default).

Usage::

    .venv/bin/python bench/generate_large.py --customers 1000000 --out /tmp/retain-large-1m
    .venv/bin/python bench/generate_large.py --customers 10000000 --out /tmp/retain-large-10m \\
        --events --seed 0 --chunk-customers 1000000
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from retain.churn.dataset import MAX_AUTO_TRAIN_CUTOFFS
from retain.config import load_config
from retain.synthetic import iter_synthetic

ROOT = Path(__file__).resolve().parents[1]

TRANSACTIONS_SCHEMA = pa.schema(
    [
        ("customer_id", pa.string()),
        ("timestamp", pa.timestamp("us")),
        ("amount", pa.float64()),
        ("quantity", pa.float64()),
    ]
)
EVENTS_SCHEMA = pa.schema(
    [
        ("customer_id", pa.string()),
        ("timestamp", pa.timestamp("us")),
        ("event_type", pa.string()),
        ("value", pa.float64()),
    ]
)
ROW_GROUP_ROWS = 1_000_000
CHUNK_CUSTOMERS = 1_000_000
"""Customers per chunk by default: about 10M transaction rows, about 1 GB of frames."""
EVENTS_CHUNK_CUSTOMERS = 125_000
"""Customers per chunk with ``--events``: about 10M event rows (1M customers' 80M events
would take about 10 GB at once)."""
CHURN_HORIZON_DAYS = 90


def to_table(frame: pd.DataFrame, schema: pa.Schema) -> pa.Table:
    """The schema's columns of ``frame`` as an Arrow table of exactly that schema.

    Parameters
    ----------
    frame : DataFrame
        One chunk of the generator's transactions or events.
    schema : pyarrow.Schema
        The file's schema; timestamps are truncated to microseconds.

    Returns
    -------
    pyarrow.Table
    """
    arrays = []
    for f in schema:
        values = frame[f.name]
        if f.name == "amount":
            values = values.round(2)
        arr = pa.array(values, from_pandas=True)
        arrays.append(arr.cast(f.type, safe=False))
    return pa.Table.from_arrays(arrays, schema=schema)


def write_frame(writer: pq.ParquetWriter, frame: pd.DataFrame, schema: pa.Schema) -> None:
    """Append ``frame`` to ``writer`` as row groups of :data:`ROW_GROUP_ROWS` rows.

    Each row group is converted to Arrow on its own, so the conversion adds the memory of
    one row group, not of the whole chunk.

    Parameters
    ----------
    writer : pyarrow.parquet.ParquetWriter
        The open file.
    frame : DataFrame
        One chunk of the generator's transactions or events.
    schema : pyarrow.Schema
        The file's schema.
    """
    for lo in range(0, len(frame), ROW_GROUP_ROWS):
        writer.write_table(to_table(frame.iloc[lo : lo + ROW_GROUP_ROWS], schema))


def write_config(
    out: Path,
    customers: int,
    start: dt.date,
    end: dt.date,
    events: bool,
    seed: int,
    max_training_rows: int,
) -> Path:
    """Write ``out/retain.yaml``: files source on the Parquet files, dates that fit the window.

    - ``data.observed_until`` and ``scoring.as_of``: the last day;
    - CLV: BG/NBD (the generating model) in weeks, holdout the last quarter of the window;
    - churn: a 90-day horizon with ``auto`` cutoffs (resolved from the data at run time: test
      cutoff ``end - 90`` days, validation 45 days earlier, six training cutoffs 90 days
      apart), the BG/NBD baseline only, and ``max_training_rows`` when six training cutoffs of
      every customer would exceed it;
    - ``policy.yaml`` and ``segments.yaml`` copied from ``configs/`` beside it; MLflow store and
      outputs inside ``out``.

    Parameters
    ----------
    out : Path
        The data folder (absolute paths are written, so the config works from anywhere).
    customers : int
        Customers generated.
    start, end : date
        The window.
    events : bool
        Whether ``events.parquet`` was written.
    seed : int
        The run seed.
    max_training_rows : int
        Cap on churn training rows written when the training rows would exceed it.

    Returns
    -------
    Path
        The config file (checked with :func:`retain.config.load_config`).
    """
    span = (end - start).days
    calibration_end = end - dt.timedelta(days=round(span / 4))
    data: dict[str, Any] = {
        "source": "files",
        "observed_until": end,
        "transactions": {"path": str(out / "transactions.parquet")},
    }
    if events:
        data["events"] = {"path": str(out / "events.parquet")}
    cap = max_training_rows if customers * MAX_AUTO_TRAIN_CUTOFFS > max_training_rows else None
    config = {
        "name": f"large-{customers}",
        "seed": seed,
        "data": data,
        "clv": {
            "purchase_model": "bgnbd",
            "time_unit": "W",
            "calibration_end": calibration_end,
            "holdout_end": end,
        },
        "churn": {
            "horizon_days": CHURN_HORIZON_DAYS,
            "train_cutoffs": "auto",
            "validation_cutoff": "auto",
            "test_cutoff": "auto",
            "baseline_models": ["bgnbd"],
            "lightgbm": {"learning_rate": 0.1},
            "num_boost_round": 1000,
            "early_stopping_rounds": 30,
            "max_training_rows": cap,
        },
        "scoring": {"as_of": end, "output_dir": str(out / "outputs")},
        "tracking": {
            "tracking_uri": f"sqlite:///{out / 'mlruns.db'}",
            "experiment_name": "retain-large",
        },
        "policy": "policy.yaml",
        "segments": "segments.yaml",
    }
    for name in ("policy.yaml", "segments.yaml"):
        shutil.copyfile(ROOT / "configs" / name, out / name)
    path = out / "retain.yaml"
    header = (
        f"# {customers:,} synthetic customers {start}..{end}, written by bench/generate_large.py\n"
    )
    dumper = type("NoAliases", (yaml.SafeDumper,), {"ignore_aliases": lambda self, data: True})
    path.write_text(header + yaml.dump(config, Dumper=dumper, sort_keys=False))
    load_config(path)
    return path


def main(argv: list[str] | None = None) -> int:
    """Generate, write and describe the data set; print one summary line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=10_000_000, help="number of customers")
    parser.add_argument(
        "--transactions-per-customer",
        type=float,
        default=10.0,
        help="expected transaction rows per customer (rescales the purchase rate)",
    )
    parser.add_argument("--out", type=Path, required=True, help="output folder (created)")
    parser.add_argument("--events", action="store_true", help="also write events.parquet")
    parser.add_argument("--seed", type=int, default=0, help="generator seed")
    parser.add_argument(
        "--chunk-customers",
        type=int,
        default=None,
        help="customers generated at a time (default 1,000,000; 125,000 with --events, "
        "whose chunks hold about 80 event rows per customer)",
    )
    parser.add_argument("--start", type=dt.date.fromisoformat, default=dt.date(2022, 1, 1))
    parser.add_argument("--end", type=dt.date.fromisoformat, default=dt.date(2024, 12, 31))
    parser.add_argument(
        "--max-training-rows",
        type=int,
        default=6_000_000,
        help="churn.max_training_rows written to the config when the training rows exceed it",
    )
    args = parser.parse_args(argv)
    if args.chunk_customers is None:
        args.chunk_customers = EVENTS_CHUNK_CUSTOMERS if args.events else CHUNK_CUSTOMERS
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)

    t0 = time.perf_counter()
    n_tx = n_ev = 0
    tx_writer = pq.ParquetWriter(out / "transactions.parquet", TRANSACTIONS_SCHEMA)
    ev_writer = pq.ParquetWriter(out / "events.parquet", EVENTS_SCHEMA) if args.events else None
    try:
        chunks = iter_synthetic(
            args.customers,
            args.start,
            args.end,
            args.seed,
            with_events=args.events,
            transactions_per_customer=args.transactions_per_customer,
            chunk_size=args.chunk_customers,
        )
        done = 0
        for chunk in chunks:
            done += len(chunk.customers)
            write_frame(tx_writer, chunk.transactions, TRANSACTIONS_SCHEMA)
            n_tx += len(chunk.transactions)
            if ev_writer is not None and chunk.events is not None:
                write_frame(ev_writer, chunk.events, EVENTS_SCHEMA)
                n_ev += len(chunk.events)
            del chunk
            print(
                f"{done:,} customers, {n_tx:,} transactions, {n_ev:,} events "
                f"({time.perf_counter() - t0:.1f} s)",
                file=sys.stderr,
                flush=True,
            )
    finally:
        tx_writer.close()
        if ev_writer is not None:
            ev_writer.close()
    config = write_config(
        out, args.customers, args.start, args.end, args.events, args.seed, args.max_training_rows
    )
    seconds = time.perf_counter() - t0
    summary = {
        "customers": args.customers,
        "transactions": n_tx,
        "events": n_ev,
        "seed": args.seed,
        "transactions_per_customer": args.transactions_per_customer,
        "start": args.start.isoformat(),
        "end": args.end.isoformat(),
        "chunk_customers": args.chunk_customers,
        "seconds": round(seconds, 1),
        "transactions_bytes": (out / "transactions.parquet").stat().st_size,
        "events_bytes": (out / "events.parquet").stat().st_size if args.events else 0,
        "config": str(config),
    }
    (out / "generate.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
