"""Fit time and peak memory of the CLV models: retain.clv vs a plain lifetimes fit.

Usage::

    .venv/bin/python bench/bench_clv.py --customers 100000
    .venv/bin/python bench/bench_clv.py --customers 100000 1000000 --plain-max-customers 100000

For each size, synthetic customers are simulated from BG/NBD + Gamma-Gamma
(:func:`retain.synthetic.generate_synthetic`, 3 years, first purchases in the first year) and
summarised in weeks with :func:`retain.features.rfm.rfm_summary`. Each fit then runs in its own
child process that only loads the summary (Parquet in a temporary folder). ``peak_mb`` is the
fit's own peak: the child resets its peak-RSS mark (``/proc/self/clear_refs``) after loading and
reports ``VmHWM - VmRSS`` at the end. Both wall-clock and CPU seconds are reported; the speed-up
uses CPU time, which is far less sensitive than wall time to other jobs on a shared machine.
Fits compared:

- ``retain``: :class:`retain.clv.ClvModel` sub-model fits (collapsed rows with weights, analytic
  gradients, warm start; Pareto/NBD with the stable likelihood). The Gamma-Gamma time excludes
  the purchase model.
- ``lifetimes``: ``BetaGeoFitter().fit``, ``ParetoNBDFitter().fit`` and
  ``GammaGammaFitter().fit`` on the raw per-customer arrays with their default settings.
  Plain Pareto/NBD runs only up to ``--plain-pareto-max-customers`` (it takes minutes) and any
  plain fit is stopped after ``--plain-timeout`` seconds.

The agreement column is the largest relative difference of the parameters; ``ll_diff`` is our
log-likelihood minus lifetimes' (both evaluated with our likelihood), positive when our estimate
is the better maximum. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

START, END, ACQUISITION_END = "2021-01-01", "2023-12-31", "2021-12-31"
MODELS = ("bgnbd", "pareto_nbd", "gamma_gamma")


def _status_mb(field: str) -> float:
    """A memory field of /proc/self/status (VmRSS, VmHWM) in MB."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024.0
    raise RuntimeError(f"{field} not in /proc/self/status")


def _reset_peak_rss() -> bool:
    """Reset the peak-RSS mark (VmHWM) to the current RSS (Linux >= 4.0)."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


# ----------------------------------------------------------------------------- child process


def _fit_retain(model: str, summary: pd.DataFrame) -> dict:
    from retain.clv import ClvModel
    from retain.clv.model import _fit_purchase, collapse_rfm
    from retain.clv.purchase import PURCHASE_MODELS

    if model == "gamma_gamma":
        spend_only = ClvModel()
        spend_only._fit_spend(summary)  # the Gamma-Gamma fit alone (collapsed (x, m) pairs)
        return dict(spend_only.spend_params_)
    purchase = PURCHASE_MODELS[model]
    collapsed, _ = collapse_rfm(
        summary["frequency"].to_numpy(float),
        summary["recency_weeks"].to_numpy(),
        summary["tenure_weeks"].to_numpy(),
    )
    res = _fit_purchase(purchase, collapsed, 0.0)
    return dict(zip(purchase.param_names, map(float, res.params), strict=True))


def _fit_lifetimes(model: str, summary: pd.DataFrame) -> dict:
    from lifetimes import BetaGeoFitter, GammaGammaFitter, ParetoNBDFitter

    x = summary["frequency"].to_numpy()
    t_x = summary["recency_weeks"].to_numpy()
    T = summary["tenure_weeks"].to_numpy()
    if model == "bgnbd":
        fitter = BetaGeoFitter().fit(x, t_x, T)
    elif model == "pareto_nbd":
        fitter = ParetoNBDFitter().fit(x, t_x, T)
    else:
        rep = x > 0
        fitter = GammaGammaFitter().fit(x[rep], summary["monetary_value"].to_numpy()[rep])
    return {k: float(v) for k, v in fitter.params_.items()}


def _our_loglik(model: str, params: dict, summary: pd.DataFrame) -> float:
    from retain.clv.model import collapse_rfm
    from retain.clv.purchase import PURCHASE_MODELS
    from retain.clv.spend import GAMMA_GAMMA, SpendArrays

    x = summary["frequency"].to_numpy(float)
    if model == "gamma_gamma":
        rep = x > 0
        p = np.array([params[k] for k in GAMMA_GAMMA.param_names])
        data = SpendArrays(x[rep], summary["monetary_value"].to_numpy()[rep])
        ll, _ = GAMMA_GAMMA.loglik(p, data, False)
        return float(ll.sum())
    purchase = PURCHASE_MODELS[model]
    d, _ = collapse_rfm(x, summary["recency_weeks"].to_numpy(), summary["tenure_weeks"].to_numpy())
    p = np.array([params[k] for k in purchase.param_names])
    with np.errstate(all="ignore"):
        ll, _ = purchase.loglik(p, d, False)
    return float(d.weights @ ll)


def _worker(args: argparse.Namespace) -> None:
    import warnings

    import lifetimes  # noqa: F401 - imports are not part of the fit time

    import retain.clv  # noqa: F401

    summary = pd.read_parquet(args.summary)
    reset = _reset_peak_rss()
    before = _status_mb("VmRSS") if reset else 0.0
    t0, c0 = time.perf_counter(), time.process_time()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # lifetimes' own RuntimeWarnings on NaN terms
        if args.impl == "retain":
            params = _fit_retain(args.model, summary)
        else:
            params = _fit_lifetimes(args.model, summary)
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    peak = _status_mb("VmHWM") - before
    ll = _our_loglik(args.model, params, summary)
    out = {"seconds": seconds, "cpu": cpu, "peak_mb": peak, "params": params, "loglik": ll}
    print(json.dumps(out))


# ----------------------------------------------------------------------------- parent process


def _run_child(impl: str, model: str, summary: Path, timeout: float) -> dict | None:
    cmd = [sys.executable, __file__, "--worker", impl, model, str(summary)]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=True)
    except subprocess.TimeoutExpired:
        return None
    except subprocess.CalledProcessError as exc:
        return {"error": exc.stderr.strip().splitlines()[-1] if exc.stderr else "failed"}
    return json.loads(out.stdout.strip().splitlines()[-1])


def _summary(n: int, seed: int, folder: Path) -> tuple[Path, dict]:
    from retain.features.rfm import rfm_summary
    from retain.synthetic import generate_synthetic

    t0 = time.perf_counter()
    data = generate_synthetic(
        n, START, END, seed=seed, with_events=False, acquisition_end=ACQUISITION_END
    )
    summary = rfm_summary(data.transactions, END, "W")
    path = folder / f"summary_{n}.parquet"
    summary.to_parquet(path)
    unique = len(summary[["frequency", "recency_weeks", "tenure_weeks"]].drop_duplicates())
    info = {
        "transactions": len(data.transactions),
        "unique_rows": unique,
        "repeat_customers": int((summary["frequency"] > 0).sum()),
        "prepare_seconds": time.perf_counter() - t0,
    }
    return path, info


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, nargs="+", default=[100_000])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--plain-timeout", type=float, default=900.0)
    parser.add_argument("--plain-pareto-max-customers", type=int, default=100_000)
    parser.add_argument("--worker", nargs=3, metavar=("IMPL", "MODEL", "SUMMARY"))
    args = parser.parse_args()
    if args.worker:
        impl, model, summary = args.worker
        _worker(argparse.Namespace(impl=impl, model=model, summary=summary))
        return

    print(f"uptime: {os.popen('uptime').read().strip()}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.customers:
            path, info = _summary(n, args.seed, Path(tmp))
            print(f"n={n}: {json.dumps(info)}", flush=True)
            for model in args.models:
                ours = _run_child("retain", model, path, timeout=3600)
                plain = None
                skipped = model == "pareto_nbd" and n > args.plain_pareto_max_customers
                if not skipped:
                    plain = _run_child("lifetimes", model, path, timeout=args.plain_timeout)
                rows.append(_row(n, model, info, ours, plain, skipped, args.plain_timeout))
                print(rows[-1], flush=True)
    print()
    print(
        "| customers | distinct rows | model | retain wall s | retain CPU s | retain peak MB | "
        "lifetimes wall s | lifetimes CPU s | lifetimes peak MB | speed-up (CPU) | "
        "max rel. param diff | ll(retain) - ll(lifetimes) |"
    )
    print("|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(r)


def _row(
    n: int,
    model: str,
    info: dict,
    ours: dict | None,
    plain: dict | None,
    skipped: bool,
    timeout: float,
) -> str:
    def fmt(d: dict | None, key: str, spec: str) -> str:
        if d is None or key not in d:
            return "-"
        return format(d[key], spec)

    if skipped:
        plain_s = "not run"
    elif plain is None:
        plain_s = f"> {timeout:.0f} (stopped)"
    elif "error" in plain:
        plain_s = f"error: {plain['error'][:60]}"
    else:
        plain_s = fmt(plain, "seconds", ".2f")
    speedup = diff = lldiff = "-"
    if ours and plain and "error" not in plain and "error" not in ours:
        speedup = f"{plain['cpu'] / ours['cpu']:.1f}x"
        diff = f"{max(abs(ours['params'][k] / plain['params'][k] - 1) for k in ours['params']):.1e}"
        lldiff = f"{ours['loglik'] - plain['loglik']:.2e}"
    distinct = info["unique_rows"] if model != "gamma_gamma" else info["repeat_customers"]
    return (
        f"| {n:,} | {distinct:,} | {model} | {fmt(ours, 'seconds', '.2f')} | "
        f"{fmt(ours, 'cpu', '.2f')} | {fmt(ours, 'peak_mb', '.0f')} | {plain_s} | "
        f"{fmt(plain, 'cpu', '.2f')} | {fmt(plain, 'peak_mb', '.0f')} | "
        f"{speedup} | {diff} | {lldiff} |"
    )


if __name__ == "__main__":
    main()
