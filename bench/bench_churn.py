"""Benchmark the churn training path: synthetic data -> snapshots -> LightGBM -> evaluation.

Stages, each timed with its peak resident memory (``VmRSS`` sampled every 50 ms):

1. ``generate``: synthetic customers (BG/NBD + Gamma-Gamma, no events) with a target number of
   transaction rows per customer (default 10, so 1M customers give about 10M rows);
2. ``snapshots``: point-in-time features + CLV outputs + labels at the six training cutoffs, the
   validation and the test cutoff of ``configs/synthetic.yaml`` (with the leakage guard);
3. ``train``: LightGBM on the stacked training snapshots with early stopping on validation,
   then the calibrator;
4. ``evaluate``: test metrics and the BTYD/recency baselines.

Usage::

    .venv/bin/python bench/bench_churn.py --customers 50000
    .venv/bin/python bench/bench_churn.py --customers 1000000 --markdown bench/figures_churn.md
"""

from __future__ import annotations

import argparse
import os
import resource
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from retain.churn.dataset import LABEL, build_churn_dataset, make_time_split
from retain.churn.evaluate import best_baseline, btyd_baselines, evaluate_scores
from retain.churn.train import train_churn_model
from retain.config import load_config
from retain.synthetic import generate_synthetic

ROOT = Path(__file__).resolve().parents[1]


def _rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


class Stage:
    """Wall time, CPU time and peak RSS of one stage."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.seconds = 0.0
        self.cpu_seconds = 0.0
        self.peak_mb = 0.0
        self.start_mb = 0.0


@contextmanager
def measure(stages: list[Stage], name: str):
    stage = Stage(name)
    stage.start_mb = _rss_mb()
    stage.peak_mb = stage.start_mb
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            stage.peak_mb = max(stage.peak_mb, _rss_mb())
            stop.wait(0.05)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    t0, c0 = time.perf_counter(), time.process_time()
    try:
        yield stage
    finally:
        stage.seconds = time.perf_counter() - t0
        stage.cpu_seconds = time.process_time() - c0
        stop.set()
        thread.join()
        stage.peak_mb = max(stage.peak_mb, _rss_mb())
        stages.append(stage)
        print(
            f"{name:10s} {stage.seconds:8.1f} s  cpu {stage.cpu_seconds:8.1f} s  "
            f"peak RSS {stage.peak_mb:8.0f} MB",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=1_000_000, help="Synthetic customers.")
    parser.add_argument(
        "--transactions-per-customer",
        type=float,
        default=10.0,
        help="Target transaction rows per customer (10 -> 10M rows for 1M customers).",
    )
    parser.add_argument("--threads", type=int, default=2, help="LightGBM num_threads.")
    parser.add_argument("--seed", type=int, default=0, help="Generator and LightGBM seed.")
    parser.add_argument(
        "--baselines",
        nargs="*",
        default=["bgnbd", "pareto_nbd", "mbgnbd"],
        help="BTYD baseline models fitted at the test cutoff.",
    )
    parser.add_argument("--markdown", type=Path, help="Append a markdown table to this file.")
    args = parser.parse_args()

    cfg = load_config(ROOT / "configs" / "synthetic.yaml")
    churn, start, end = cfg.churn, cfg.data.synthetic.start, cfg.data.synthetic.end
    stages: list[Stage] = []
    t_total = time.perf_counter()
    with measure(stages, "generate"):
        syn = generate_synthetic(
            args.customers,
            start,
            end,
            args.seed,
            with_events=False,
            transactions_per_customer=args.transactions_per_customer,
        )
        tx = syn.transactions
        del syn
    n_tx = len(tx)
    print(f"{args.customers:,} customers, {n_tx:,} transactions", flush=True)
    split = make_time_split(
        churn.train_cutoffs, churn.validation_cutoff, churn.test_cutoff, churn.horizon_days, end
    )
    with measure(stages, "snapshots"):
        ds = build_churn_dataset(
            tx,
            split,
            None,
            feature_config=cfg.features,
            purchase_model=churn.clv_feature_model,
            leakage_check_customers=churn.leakage_check_customers,
            seed=args.seed,
        )
    print(
        f"train rows {len(ds.train):,}, validation {len(ds.validation):,}, test "
        f"{len(ds.test):,}, features {len(ds.feature_names)}",
        flush=True,
    )
    with measure(stages, "train"):
        result = train_churn_model(
            ds,
            params={**churn.lightgbm, "num_threads": args.threads},
            num_boost_round=churn.num_boost_round,
            early_stopping_rounds=churn.early_stopping_rounds,
            calibration=churn.calibration,
            imbalance=churn.imbalance,
            seed=args.seed,
        )
    with measure(stages, "evaluate"):
        model = result.model
        raw = model.predict_raw(ds.test)
        prob = model.predict_proba(ds.test)
        baselines = btyd_baselines(ds.test, split.horizon_days, tuple(args.baselines))
        metrics = evaluate_scores(ds.test[LABEL].to_numpy(), raw, prob, baselines)
    total = time.perf_counter() - t_total
    best_name, best_auc = best_baseline(metrics)
    print(
        f"total {total:.1f} s; best_iteration {result.metrics['best_iteration']:.0f}; test AUC "
        f"{metrics['test_roc_auc']:.4f} vs {best_name} {best_auc:.4f}; peak RSS "
        f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB; load "
        f"{os.getloadavg()}",
        flush=True,
    )
    if args.markdown:
        lines = [
            "",
            f"### {args.customers:,} customers, {n_tx:,} transactions, "
            f"{len(ds.train):,} training rows x {len(ds.feature_names)} features, "
            f"{args.threads} LightGBM threads",
            "",
            "| stage | wall s | CPU s | peak RSS MB |",
            "| --- | --- | --- | --- |",
            *(
                f"| {s.name} | {s.seconds:.1f} | {s.cpu_seconds:.1f} | {s.peak_mb:,.0f} |"
                for s in stages
            ),
            f"| **total** | **{total:.1f}** | | |",
            "",
            f"best iteration {result.metrics['best_iteration']:.0f}; test AUC "
            f"{metrics['test_roc_auc']:.4f} (best baseline {best_name} {best_auc:.4f}); "
            f"load average during the run {np.round(os.getloadavg(), 1).tolist()}",
            "",
        ]
        with args.markdown.open("a") as fh:
            fh.write("\n".join(lines))


if __name__ == "__main__":
    main()
