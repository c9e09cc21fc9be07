"""Time and peak memory of rfm_summary + behaviour features against lifetimes.

Usage::

    .venv/bin/python bench/bench_features.py --customers 20000
    .venv/bin/python bench/bench_features.py --customers 875000 --transactions-per-customer 11.43
    .venv/bin/python bench/bench_features.py --customers 2600000 --transactions-per-customer 11.54 \
        --lifetimes-customers 875000

Data: :func:`retain.synthetic.generate_synthetic` (no events), ordered by timestamp like a
transaction log, cached as Parquet under ``--cache-dir`` (default: the system temp folder), so
that it is generated once per size.

Each measured step runs in a fresh Python process that reads the Parquet file, notes its resident
set size (RSS), runs the step once and reports its wall time and its peak RSS
(``resource.getrusage(RUSAGE_SELF).ru_maxrss``). Steps:

``load``
    Read the data only: the memory floor every step shares.
``retain``
    :func:`retain.features.rfm.occasion_arrays` once, then the RFM summary (days) and all
    behaviour features from it, as :func:`retain.features.build.build_features` does.
``retain_separate``
    The public :func:`retain.features.rfm.rfm_summary` and
    :func:`retain.features.behaviour.behaviour_features` called one after the other (each
    merges the purchase occasions itself).
``lifetimes``
    ``lifetimes.utils.summary_data_from_transaction_data(..., freq="D")`` (RFM summary only).

With ``--lifetimes-customers N`` lifetimes runs on the transactions of the first N customers
(sorted ids) of the same data instead of all of them, and ``retain`` is also measured on that
subset so that the comparison is like for like. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

START, END = "2022-01-01", "2024-12-31"
CUTOFF = END


def _peak_rss_mb() -> float:
    """Peak resident set size of this process in MB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _cpu_seconds() -> float:
    """User plus system CPU time of this process (robust to other load on the machine)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _rss_mb() -> float:
    """Current resident set size of this process in MB."""
    with open("/proc/self/statm") as fh:
        pages = int(fh.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def data_path(cache_dir: Path, customers: int, per_customer: float | None, seed: int) -> Path:
    """Cache file name of one data size."""
    tag = "default" if per_customer is None else f"{per_customer:g}"
    return cache_dir / f"retain-bench-features-{customers}-{tag}-{seed}.parquet"


def generate(path: Path, customers: int, per_customer: float | None, seed: int) -> None:
    """Generate the transactions and write them as Parquet, ordered by timestamp."""
    import pandas as pd

    from retain.synthetic import generate_synthetic

    data = generate_synthetic(
        customers,
        START,
        END,
        seed,
        with_events=False,
        transactions_per_customer=per_customer,
    )
    tx = data.transactions[["customer_id", "timestamp", "amount", "quantity"]]
    del data
    tx = tx.sort_values("timestamp", kind="stable", ignore_index=True)
    tmp = path.with_suffix(".tmp")
    tx.to_parquet(tmp, index=False)
    tmp.replace(path)
    _ = pd  # the import above keeps pyarrow's string type available


def run_step(step: str, path: Path, subset: int | None) -> dict:
    """Run one step in this process and return its figures."""
    import pandas as pd

    t0 = time.perf_counter()
    tx = pd.read_parquet(path)
    if subset is not None:
        ids = tx["customer_id"].drop_duplicates().sort_values().iloc[:subset]
        tx = tx[tx["customer_id"].isin(ids)].reset_index(drop=True)
        del ids
    load_seconds = time.perf_counter() - t0
    rss_after_load = _rss_mb()
    n_rows = len(tx)
    # Imports first: module loading is not part of the measured work.
    if step in ("retain", "retain_separate"):
        from retain.features.behaviour import behaviour_features, behaviour_from_arrays
        from retain.features.rfm import occasion_arrays, rfm_summary, summary_from_arrays
    elif step == "lifetimes":
        from lifetimes.utils import summary_data_from_transaction_data
    cpu0 = _cpu_seconds()
    t0 = time.perf_counter()
    if step == "load":
        n_customers = tx["customer_id"].nunique()
    elif step == "retain":
        occ = occasion_arrays(tx, CUTOFF)
        summary = summary_from_arrays(occ, CUTOFF, "D")
        behaviour = behaviour_from_arrays(occ, CUTOFF)
        n_customers = len(summary)
        assert len(behaviour) == n_customers
    elif step == "retain_separate":
        summary = rfm_summary(tx, CUTOFF, "D")
        behaviour = behaviour_features(tx, CUTOFF)
        n_customers = len(summary)
    elif step == "lifetimes":
        summary = summary_data_from_transaction_data(
            tx,
            "customer_id",
            "timestamp",
            monetary_value_col="amount",
            observation_period_end=CUTOFF,
            freq="D",
        )
        n_customers = len(summary)
    else:
        raise ValueError(f"unknown step {step!r}")
    seconds = time.perf_counter() - t0
    cpu = _cpu_seconds() - cpu0
    return {
        "step": step,
        "rows": n_rows,
        "customers": int(n_customers),
        "load_seconds": round(load_seconds, 2),
        "seconds": round(seconds, 2),
        "cpu_seconds": round(cpu, 2),
        "rss_after_load_mb": round(rss_after_load),
        "peak_rss_mb": round(_peak_rss_mb()),
    }


def in_subprocess(args: list[str]) -> dict:
    """Run this script with ``args`` in a fresh interpreter and parse its JSON answer."""
    cmd = [sys.executable, __file__, *args]
    done = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    """Generate (or reuse) the data, measure every step in its own process, print a table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=20_000, help="number of customers")
    parser.add_argument(
        "--transactions-per-customer",
        type=float,
        default=None,
        help="target expected transaction rows per customer (default: generator defaults)",
    )
    parser.add_argument("--seed", type=int, default=0, help="generator seed")
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=Path(tempfile.gettempdir()),
        help="folder for the cached Parquet data",
    )
    parser.add_argument(
        "--steps",
        default="load,retain,retain_separate,lifetimes",
        help="comma-separated steps to measure",
    )
    parser.add_argument(
        "--lifetimes-customers",
        type=int,
        default=None,
        help="run lifetimes (and retain again) on this many customers only",
    )
    parser.add_argument("--_step", help=argparse.SUPPRESS)
    parser.add_argument("--_data", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--_subset", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--_generate", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args._generate:
        generate(args._data, args.customers, args.transactions_per_customer, args.seed)
        print(json.dumps({"generated": str(args._data)}))
        return 0
    if args._step:
        print(json.dumps(run_step(args._step, args._data, args._subset)))
        return 0

    path = data_path(args.cache_dir, args.customers, args.transactions_per_customer, args.seed)
    if not path.exists():
        t0 = time.perf_counter()
        gen_args = ["--_generate", "--_data", str(path), "--customers", str(args.customers)]
        if args.transactions_per_customer is not None:
            gen_args += ["--transactions-per-customer", str(args.transactions_per_customer)]
        in_subprocess([*gen_args, "--seed", str(args.seed)])
        print(f"generated {path} in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    rows = []
    for step in args.steps.split(","):
        subset = args.lifetimes_customers if step == "lifetimes" else None
        rows.append(
            in_subprocess(["--_step", step, "--_data", str(path)])
            if subset is None
            else in_subprocess(["--_step", step, "--_data", str(path), "--_subset", str(subset)])
        )
        print(json.dumps(rows[-1]), file=sys.stderr)
    if args.lifetimes_customers is not None and "lifetimes" in args.steps:
        for step in ("load", "retain"):
            row = in_subprocess(
                ["--_step", step, "--_data", str(path), "--_subset", str(args.lifetimes_customers)]
            )
            row["step"] = f"{step} (subset)"
            rows.append(row)
            print(json.dumps(row), file=sys.stderr)

    print(f"\nload average: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f}")
    print(
        "| step | rows | customers | wall s | CPU s | peak RSS MB | RSS after load MB "
        "| peak - after load MB |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        print(
            f"| {r['step']} | {r['rows']:,} | {r['customers']:,} | {r['seconds']} | "
            f"{r['cpu_seconds']} | {r['peak_rss_mb']:,} | {r['rss_after_load_mb']:,} | "
            f"{r['peak_rss_mb'] - r['rss_after_load_mb']:,} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
