"""Time and peak memory of reading and validating transactions (retain.io).

Usage::

    .venv/bin/python bench/bench_io.py --rows 1000000
    .venv/bin/python bench/bench_io.py --rows 1000000 --returns net

Builds messy transactions (about 1% of rows each: blank id, unparseable timestamp, non-numeric
amount, a date after the as-of day, an exact duplicate, a partial return of the previous
order), writes them to CSV and Parquet in a temporary folder, then times
:func:`retain.io.read_table` on each file and :func:`retain.io.validate_transactions` on the CSV
rows (all text, the slow path). Peak memory
is the process's maximum resident set size, so run one configuration per process. Prints one
Markdown table row.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from retain.config import TableSource
from retain.contracts import TRANSACTIONS
from retain.io import read_table, row_counts, validate_transactions

AS_OF = "2024-12-31"


def _peak_rss_mb() -> float:
    """Peak resident set size of this process in MB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def messy_transactions(n_rows: int, seed: int) -> pd.DataFrame:
    """Text transactions with about 1% of rows broken in each of six ways."""
    rng = np.random.default_rng(seed)
    n_customers = max(n_rows // 10, 1)
    cust = rng.integers(0, n_customers, n_rows)
    seconds = rng.integers(0, 3 * 365 * 86_400, n_rows)
    ts = np.datetime64("2022-01-01T00:00:00") + seconds.astype("timedelta64[s]")
    amount = np.round(rng.gamma(2.0, 15.0, n_rows), 2)
    frame = pd.DataFrame(
        {
            "customer_id": pd.Series(cust).map("C{:07d}".format).astype("string"),
            "timestamp": pd.Series(ts).dt.strftime("%Y-%m-%d %H:%M:%S").astype("string"),
            "amount": pd.Series(amount).astype("string"),
            "order_id": pd.Series(np.arange(n_rows)).map("O{:09d}".format).astype("string"),
        }
    )
    kind = rng.integers(0, 100, n_rows)
    frame.loc[kind == 0, "customer_id"] = " "
    frame.loc[kind == 1, "timestamp"] = "not a date"
    frame.loc[kind == 2, "amount"] = "n/a"
    frame.loc[kind == 3, "timestamp"] = "2025-01-01 00:00:00"
    returns = np.flatnonzero(kind[1:] == 4) + 1  # a partial return of the previous row's order
    frame.iloc[returns, [0, 3]] = frame.iloc[returns - 1, [0, 3]].to_numpy()
    frame.iloc[returns, 2] = (-np.round(amount[returns - 1] / 2, 2)).astype(str)
    dup = np.flatnonzero(kind[1:] == 5) + 1
    frame.iloc[dup] = frame.iloc[dup - 1].to_numpy()
    return frame


def main(argv: list[str] | None = None) -> int:
    """Run one configuration and print a Markdown row with the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000, help="number of transaction rows")
    parser.add_argument("--returns", choices=["drop", "net"], default="drop", help="returns")
    parser.add_argument("--seed", type=int, default=0, help="data seed")
    args = parser.parse_args(argv)

    frame = messy_transactions(args.rows, args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        csv_path = Path(tmp) / "tx.csv"
        pq_path = Path(tmp) / "tx.parquet"
        frame.to_csv(csv_path, index=False)
        frame.to_parquet(pq_path, index=False)
        del frame
        base_rss = _peak_rss_mb()
        t0 = time.perf_counter()
        raw = read_table(TableSource(path=csv_path), TRANSACTIONS)
        t_csv = time.perf_counter() - t0
        t0 = time.perf_counter()
        read_table(TableSource(path=pq_path), TRANSACTIONS)
        t_pq = time.perf_counter() - t0
    t0 = time.perf_counter()
    clean, rejects = validate_transactions(raw, AS_OF, returns=args.returns)
    t_val = time.perf_counter() - t0
    counts = row_counts("transactions", len(raw), clean, rejects)
    peak = _peak_rss_mb()
    print(
        "| rows | returns | read CSV s | read Parquet s | validate s | validate rows/s "
        "| rejected | peak RSS MB (above data build) |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    print(
        f"| {args.rows:,} | {args.returns} | {t_csv:.2f} | {t_pq:.2f} | {t_val:.2f} "
        f"| {args.rows / t_val:,.0f} | {counts['rows_rejected']:,} "
        f"| {peak:,.0f} ({peak - base_rss:+,.0f}) |"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
