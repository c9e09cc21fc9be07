"""Benchmark the value model: how well ML CLV, BTYD CLV and a naive rate find valuable customers.

For a config: load and validate its inputs, build the value snapshots (the CLV horizon after
each cutoff), train the value model (Tweedie and hurdle candidates) and compare, on its test
cutoff, the model, the BTYD + Gamma-Gamma CLV fitted at that cutoff and the past spend rate.
On synthetic data two more rankings are shown: by the **true** expected (discounted) spend of
the generating process given each customer's latent state at the cutoff (alive or not, purchase
rate, dropout probability, mean spend), the best a model could do, and by the actual spend
itself (hindsight).

Usage::

    .venv/bin/python bench/bench_value.py configs/synthetic.yaml
    .venv/bin/python bench/bench_value.py configs/cdnow.yaml --set clv.horizon_months=6
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd

from retain.clv.value_fit import configured_value_split, fit_value_model, prepare_value_dataset
from retain.clv.value_metrics import value_metrics
from retain.config import load_config
from retain.contracts import CUSTOMER_ID, TIMESTAMP
from retain.features.build import fix_event_types
from retain.io import load_inputs, observed_until
from retain.timeline import DAYS_PER_MONTH, cutoff_end


def true_value(
    truth: pd.DataFrame, cutoff: pd.Timestamp, months: int, discount: float
) -> pd.Series:
    """Expected discounted spend over ``months`` after ``cutoff`` given the latent state.

    Dead by the cutoff's end: 0. Alive: BG/NBD purchases while alive have
    ``E[N(t)] = (1 - exp(-lambda p t)) / p``; month ``k`` gets ``E[N(k)] - E[N(k - 1)]``,
    discounted by ``(1 + d)^-k`` and valued at the customer's mean spend per occasion.
    """
    end = cutoff_end(cutoff)
    acquired = truth[truth["first_purchase"] < end]
    dead = acquired["death_time"].notna() & (acquired["death_time"] < end)
    lam = acquired["purchase_rate_per_day"].to_numpy(dtype=float)
    p = acquired["dropout_probability"].to_numpy(dtype=float)
    t = np.arange(months + 1)[:, None] * DAYS_PER_MONTH
    cumulative = -np.expm1(-lam[None, :] * p[None, :] * t) / p[None, :]
    per_month = np.diff(cumulative, axis=0)
    weights = (1.0 + discount) ** -np.arange(1, months + 1)
    purchases = np.sum(weights[:, None] * per_month, axis=0)
    value = np.where(dead, 0.0, purchases * acquired["expected_spend_per_occasion"].to_numpy())
    return pd.Series(value, index=acquired.index, name="true_value")


def _row(name: str, actual: np.ndarray, pred: np.ndarray) -> dict[str, float | str]:
    ok = np.isfinite(pred)
    return {"method": name, **value_metrics(actual[ok], pred[ok])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", type=Path)
    parser.add_argument(
        "--set", action="append", default=[], help="config override key=value (repeatable)"
    )
    args = parser.parse_args()
    overrides = {k: int(v) if v.isdigit() else v for k, v in (i.split("=", 1) for i in args.set)}
    cfg = load_config(args.config, overrides)
    t0 = time.perf_counter()
    until = observed_until(cfg)
    inputs = load_inputs(cfg, until)
    tx = inputs.transactions
    first = tx[TIMESTAMP].min()
    purchase_model = cfg.churn.clv_feature_model if cfg.churn is not None else "bgnbd"
    split = configured_value_split(cfg.clv, first, until)
    features = fix_event_types(cfg.features, inputs.events, max(split.train_cutoffs))
    dataset = prepare_value_dataset(
        tx,
        cfg.clv,
        split,
        inputs.events,
        feature_config=features,
        purchase_model=purchase_model,
        seed=cfg.seed,
    )
    built = time.perf_counter() - t0
    fit = fit_value_model(dataset, cfg.clv, purchase_model=purchase_model, seed=cfg.seed)
    trained = time.perf_counter() - t0 - built
    # every row below on the customers all three methods are compared on (as the job does)
    values = {k: v[fit.compared] for k, v in fit.test_values.items()}
    actual = values["actual"]
    rows = [
        _row("ML value model (" + fit.model.kind + ")", actual, values["ml"]),
        _row("BTYD + Gamma-Gamma", actual, values["btyd"]),
        _row("naive past spend rate", actual, values["naive"]),
    ]
    if inputs.truth is not None:
        ids = dataset.test[CUSTOMER_ID].astype(str).to_numpy()[fit.compared]
        truth = true_value(
            inputs.truth, split.test_cutoff, cfg.clv.horizon_months, cfg.clv.discount_rate_monthly
        )
        truth.index = truth.index.astype(str)
        rows.append(_row("truth-ranked (expected value)", actual, truth.reindex(ids).to_numpy()))
    rows.append(_row("hindsight (actual value)", actual, actual))
    table = pd.DataFrame(rows).set_index("method")
    s = split.as_params()
    print(
        f"config {cfg.name}: {len(tx):,} transactions, horizon {s['horizon_days']} days, "
        f"train cutoffs {s['train_cutoffs']}, validation {s['validation_cutoff']}, "
        f"test {s['test_cutoff']} ({len(actual):,} customers compared, "
        f"{float(np.mean(actual > 0)):.1%} with spend; rows without a BTYD CLV "
        f"{fit.metrics['test_btyd_rows_missing']:.0f})"
    )
    cands = fit.model.candidates
    print(
        "validation top-20% capture: tweedie "
        f"{cands.get('tweedie_top20_capture', float('nan')):.4f}, hurdle "
        f"{cands.get('hurdle_top20_capture', float('nan')):.4f} -> kept {fit.model.kind}"
    )
    print(f"snapshots {built:.0f} s, training + evaluation {trained:.0f} s")
    cols = ["gini", "top5_capture", "top20_capture", "total_error", "decile_mae"]
    print("| method | " + " | ".join(cols) + " |")
    print("|---|" + "---:|" * len(cols))
    for name, row in table[cols].iterrows():
        print(f"| {name} | " + " | ".join(f"{row[c]:.4f}" for c in cols) + " |")


if __name__ == "__main__":
    main()
