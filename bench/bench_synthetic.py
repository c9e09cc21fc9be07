"""Time and peak memory of the synthetic generator.

Usage::

    .venv/bin/python bench/bench_synthetic.py --customers 1000000 --transactions-per-customer 10
    .venv/bin/python bench/bench_synthetic.py --customers 1000000 --events --stream

``--stream`` consumes :func:`retain.synthetic.iter_synthetic` chunk by chunk (what a writer to
Parquet would do) instead of building the whole frames with ``generate_synthetic``. Peak memory
is the process's maximum resident set size (``resource.getrusage``), so run one configuration
per process. Prints one Markdown table row.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time

from retain.synthetic import generate_synthetic, iter_synthetic


def _peak_rss_mb() -> float:
    """Peak resident set size of this process in MB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main(argv: list[str] | None = None) -> int:
    """Run one configuration and print a Markdown row with the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000, help="number of customers")
    parser.add_argument("--start", default="2022-01-01", help="first day of the window")
    parser.add_argument("--end", default="2024-12-31", help="last day of the window")
    parser.add_argument("--seed", type=int, default=0, help="generator seed")
    parser.add_argument(
        "--transactions-per-customer",
        type=float,
        default=None,
        help="target expected rows per customer (rescales alpha); default: default parameters",
    )
    parser.add_argument("--events", action="store_true", help="also generate engagement events")
    parser.add_argument("--stream", action="store_true", help="consume chunks, keep no frames")
    parser.add_argument("--chunk-size", type=int, default=100_000, help="customers per chunk")
    args = parser.parse_args(argv)

    kwargs = dict(
        with_events=args.events,
        transactions_per_customer=args.transactions_per_customer,
        chunk_size=args.chunk_size,
    )
    base_rss = _peak_rss_mb()
    t0 = time.perf_counter()
    if args.stream:
        n_tx = n_ev = 0
        for chunk in iter_synthetic(args.customers, args.start, args.end, args.seed, **kwargs):
            n_tx += len(chunk.transactions)
            n_ev += 0 if chunk.events is None else len(chunk.events)
            del chunk
    else:
        data = generate_synthetic(args.customers, args.start, args.end, args.seed, **kwargs)
        n_tx = len(data.transactions)
        n_ev = 0 if data.events is None else len(data.events)
    seconds = time.perf_counter() - t0
    peak = _peak_rss_mb()
    mode = "stream" if args.stream else "frames"
    tpc = args.transactions_per_customer or "default"
    print(
        "| customers | tx/customer target | events | mode | transactions | events rows "
        "| seconds | peak RSS MB (after import) |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    print(
        f"| {args.customers:,} | {tpc} | {args.events} | {mode} | {n_tx:,} | {n_ev:,} "
        f"| {seconds:.1f} | {peak:,.0f} ({base_rss:,.0f}) |"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
