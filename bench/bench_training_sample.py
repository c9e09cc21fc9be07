"""What training on a sample costs in test AUC: churn.max_training_rows at 100%, 50%, 20%, 5%.

Data: synthetic customers **with engagement events** (``retain.synthetic.generate_synthetic``,
the generator of ``configs/synthetic.yaml``), window 2022-01-01 .. 2024-12-31. Split and model
settings from ``configs/synthetic.yaml`` (six monthly training cutoffs, validation 2024-06-30,
test 2024-09-30, horizon 90 days, 15-leaf trees, learning rate 0.1, early stopping after 30
rounds, isotonic calibration on the validation cutoff).

The snapshots are built once. Then the booster is trained on every training row, and on
stratified samples (:func:`retain.churn.sampling.cap_training_rows`, the path of
``churn.max_training_rows``) of 50%, 20% and 5% of them, each with ``--sample-seeds`` sample
seeds (the LightGBM seed stays the config's). Validation and test rows are always complete, so
every model is scored on the same test customers; the AUC difference to the model trained on
every row is the paired DeLong difference with its 95% interval.

Usage::

    .venv/bin/python bench/bench_training_sample.py --customers 100000
    .venv/bin/python bench/bench_training_sample.py --customers 200000 --fractions 0.5 0.2 0.05
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

from retain.churn.dataset import LABEL, build_churn_dataset, make_time_split
from retain.churn.evaluate import delong_auc_difference, ranking_metrics
from retain.churn.sampling import cap_training_rows
from retain.churn.train import train_churn_model
from retain.config import load_config
from retain.features.build import fix_event_types
from retain.synthetic import generate_synthetic

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    """Build the snapshots once, train with and without caps, print test AUCs."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=100_000, help="Synthetic customers.")
    parser.add_argument(
        "--fractions",
        type=float,
        nargs="*",
        default=[0.5, 0.2, 0.05],
        help="Caps as fractions of the training rows.",
    )
    parser.add_argument(
        "--sample-seeds", type=int, default=3, help="Sample seeds per cap (0, 1, ...)."
    )
    parser.add_argument("--threads", type=int, default=2, help="LightGBM num_threads.")
    parser.add_argument("--seed", type=int, default=0, help="Generator seed.")
    args = parser.parse_args()

    cfg = load_config(ROOT / "configs" / "synthetic.yaml")
    churn, syn_cfg = cfg.churn, cfg.data.synthetic
    t0 = time.perf_counter()
    syn = generate_synthetic(
        args.customers, syn_cfg.start, syn_cfg.end, args.seed, with_events=True
    )
    tx, events = syn.transactions, syn.events
    del syn
    print(
        f"generated {args.customers:,} customers, {len(tx):,} transactions, "
        f"{len(events):,} events in {time.perf_counter() - t0:.1f} s",
        flush=True,
    )
    split = make_time_split(
        churn.train_cutoffs,
        churn.validation_cutoff,
        churn.test_cutoff,
        churn.horizon_days,
        syn_cfg.end,
    )
    features = fix_event_types(cfg.features, events, max(churn.train_cutoffs))
    t0 = time.perf_counter()
    full = build_churn_dataset(
        tx,
        split,
        events,
        feature_config=features,
        purchase_model=churn.clv_feature_model,
        leakage_check_customers=churn.leakage_check_customers,
        seed=cfg.seed,
    )
    n_train = len(full.train)
    print(
        f"snapshots in {time.perf_counter() - t0:.1f} s: train {n_train:,} rows, validation "
        f"{len(full.validation):,}, test {len(full.test):,}, {len(full.feature_names)} features",
        flush=True,
    )
    y_test = full.test[LABEL].to_numpy()
    params = {**churn.lightgbm, "num_threads": args.threads}

    def fit(dataset):
        t = time.perf_counter()
        result = train_churn_model(
            dataset,
            params=params,
            num_boost_round=churn.num_boost_round,
            early_stopping_rounds=churn.early_stopping_rounds,
            calibration=churn.calibration,
            imbalance=churn.imbalance,
            seed=cfg.seed,
        )
        seconds = time.perf_counter() - t
        prob = result.model.predict_proba(dataset.test)
        return result, prob, seconds

    base, base_prob, base_seconds = fit(full)
    base_auc = ranking_metrics(y_test, base_prob)["roc_auc"]
    rows = [
        (
            "all rows",
            "-",
            n_train,
            base_auc,
            "(reference)",
            base_seconds,
            int(base.metrics["best_iteration"]),
        )
    ]
    print(f"all rows: test AUC {base_auc:.4f} ({base_seconds:.1f} s)", flush=True)
    for fraction in args.fractions:
        cap = max(1, round(fraction * n_train))
        for sample_seed in range(args.sample_seeds):
            capped = cap_training_rows(full, cap, sample_seed)
            result, prob, seconds = fit(capped)
            auc = ranking_metrics(y_test, prob)["roc_auc"]
            diff, _se, low, high = delong_auc_difference(y_test, prob, base_prob)
            rows.append(
                (
                    f"{fraction:.0%}",
                    str(sample_seed),
                    cap,
                    auc,
                    f"{diff:+.4f} [{low:+.4f}, {high:+.4f}]",
                    seconds,
                    int(result.metrics["best_iteration"]),
                )
            )
            print(
                f"{fraction:.0%} (sample seed {sample_seed}): {cap:,} rows, test AUC {auc:.4f}, "
                f"vs all rows {diff:+.4f} [{low:+.4f}, {high:+.4f}] ({seconds:.1f} s)",
                flush=True,
            )
    print()
    print(
        "| training rows | sample seed | rows | test ROC AUC | AUC - all rows [95% CI] "
        "| train s | best iteration |"
    )
    print("| --- | --- | ---: | ---: | --- | ---: | ---: |")
    for name, seed, n, auc, diff, seconds, best in rows:
        print(f"| {name} | {seed} | {n:,} | {auc:.4f} | {diff} | {seconds:.1f} | {best} |")
    print()
    print(
        f"test rows {len(y_test):,}, churn rate {y_test.mean():.3f}; load average "
        f"{np.round(os.getloadavg(), 1).tolist()}"
    )


if __name__ == "__main__":
    main()
