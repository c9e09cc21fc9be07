"""Scoring end to end (features, CLV, churn, reasons, policy, write): time and peak memory.

Usage::

    .venv/bin/python bench/bench_scoring.py --customers 20000            # develop
    .venv/bin/python bench/bench_scoring.py --customers 1000000 --figures bench/figures_scoring.md

Steps, each in a fresh Python process (peak RSS = ``ru_maxrss`` of that process):

``prepare`` (not timed)
    :func:`retain.synthetic.generate_synthetic` (no events, window 2022-01-01 .. 2024-12-31)
    written as Parquet under ``--cache-dir``; then two churn models are trained on the first
    ``--train-customers`` customers with the same features as scoring
    (:class:`retain.churn.dataset.ChurnFeatures`, horizon 90 days): train cutoff 2024-03-31,
    early stopping and calibration on 2024-06-30, test AUC on 2024-09-30. Shapes: ``default``
    (the churn defaults, 31 leaves, no depth limit) and ``compact`` (15 leaves, depth 4), each
    early-stopped and with a fixed 200 trees (``*_200``, the size of the issue's figures). A
    BG/NBD + Gamma-Gamma CLV model is fitted on the same customers. Models are stored as plain
    text/JSON beside the data.
``shap``
    The SHAP options on ``--shap-rows`` customers of the scoring date, for both shapes:
    LightGBM ``pred_contrib`` (1 and 2 threads), the compiled per-leaf tables (2 threads) and
    the tables with the per-cell cache (2 threads), with their build time; all checked equal to
    ``pred_contrib``; seconds per 1M rows extrapolated linearly.
``score``
    Read the transactions, :func:`retain.scoring.score_customers` on every customer as of
    2024-12-31 in chunks of ``--chunk-size``, then :func:`retain.jobs.score.write_outputs`
    (Parquet + manifest, atomically) into a temporary folder. Wall time per step, CPU time and
    peak RSS.
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
AS_OF = "2024-12-31"
TRAIN_CUT, VALID_CUT, TEST_CUT = "2024-03-31", "2024-06-30", "2024-09-30"
HORIZON = 90
SHAPES = {  # LightGBM overrides; "rounds": fixed number of trees instead of early stopping
    "default": {},
    "compact": {"num_leaves": 15, "max_depth": 4},
    "default_200": {"rounds": 200},
    "compact_200": {"num_leaves": 15, "max_depth": 4, "rounds": 200},
}


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def paths(cache_dir: Path, customers: int, seed: int) -> dict[str, Path]:
    """Cache files of one size."""
    stem = cache_dir / f"retain-bench-scoring-{customers}-{seed}"
    return {
        "data": stem.with_suffix(".parquet"),
        "models": Path(f"{stem}-models"),
    }


def prepare(customers: int, seed: int, train_customers: int, cache_dir: Path) -> dict:
    """Generate the data and train the models (cached)."""
    import lightgbm as lgb
    import numpy as np
    import pandas as pd

    from retain.churn.calibration import apply_calibration, fit_calibration
    from retain.churn.dataset import ChurnFeatures, feature_matrix, select_feature_columns
    from retain.churn.evaluate import ranking_metrics
    from retain.churn.train import DEFAULT_PARAMS
    from retain.clv import ClvModel
    from retain.features.labels import churn_labels
    from retain.synthetic import generate_synthetic

    p = paths(cache_dir, customers, seed)
    if not p["data"].exists():
        data = generate_synthetic(customers, START, END, seed, with_events=False)
        tx = data.transactions[["customer_id", "timestamp", "amount"]]
        del data
        tmp = p["data"].with_suffix(".tmp")
        tx.to_parquet(tmp, index=False)
        tmp.replace(p["data"])
    info_path = p["models"] / "info.json"
    if info_path.exists():
        return json.loads(info_path.read_text())
    tx = pd.read_parquet(p["data"])
    ids = np.sort(tx["customer_id"].unique())[:train_customers]
    tx = tx[tx["customer_id"].isin(ids)]
    fn = ChurnFeatures(HORIZON)
    frames = {c: fn(tx, pd.Timestamp(c), None) for c in (TRAIN_CUT, VALID_CUT, TEST_CUT)}
    names = [
        c for c in select_feature_columns(frames[TRAIN_CUT].reset_index())[0] if c != "customer_id"
    ]

    def xy(c: str) -> tuple[np.ndarray, np.ndarray]:
        y = churn_labels(tx, c, HORIZON, END).reindex(frames[c].index).astype(int).to_numpy()
        return feature_matrix(frames[c], names), y

    (Xtr, ytr), (Xva, yva), (Xte, yte) = xy(TRAIN_CUT), xy(VALID_CUT), xy(TEST_CUT)
    p["models"].mkdir(parents=True, exist_ok=True)
    info: dict = {"train_customers": int(len(ids)), "features": names, "shapes": {}}
    for shape, spec in SHAPES.items():
        extra = {k: v for k, v in spec.items() if k != "rounds"}
        params = {**DEFAULT_PARAMS, **extra, "seed": seed, "deterministic": True}
        params["scale_pos_weight"] = float((ytr == 0).sum() / max(1, (ytr == 1).sum()))
        if "rounds" in spec:
            booster = lgb.train(params, lgb.Dataset(Xtr, ytr), num_boost_round=spec["rounds"])
        else:
            booster = lgb.train(
                params,
                lgb.Dataset(Xtr, ytr),
                num_boost_round=500,
                valid_sets=[lgb.Dataset(Xva, yva)],
                callbacks=[lgb.early_stopping(50, verbose=False)],
            )
            booster = lgb.Booster(
                model_str=booster.model_to_string(num_iteration=booster.best_iteration)
            )
        calibrator = fit_calibration(booster.predict(Xva, raw_score=True), yva, "isotonic")
        prob = apply_calibration(calibrator, booster.predict(Xte, raw_score=True))
        auc = ranking_metrics(yte, prob)
        (p["models"] / f"churn-{shape}.txt").write_text(booster.model_to_string())
        (p["models"] / f"calibrator-{shape}.json").write_text(json.dumps(calibrator))
        info["shapes"][shape] = {
            "params": spec,
            "trees": booster.num_trees(),
            "test_roc_auc": float(auc.get("roc_auc", float("nan"))),
        }
    feats = frames[TEST_CUT]
    summary = pd.DataFrame(
        {
            "frequency": feats["frequency"],
            "recency_weeks": feats["recency_days"] / 7,
            "tenure_weeks": feats["tenure_days"] / 7,
            "monetary_value": feats["monetary_value"],
        }
    )
    clv = ClvModel(purchase_model="bgnbd", time_unit="W").fit(summary)
    (p["models"] / "clv.json").write_text(json.dumps(clv.to_dict()))
    info_path.write_text(json.dumps(info, indent=1))
    return info


def _models(models_dir: Path, shape: str):
    import lightgbm as lgb

    from retain.churn import ChurnModel
    from retain.clv import ClvModel
    from retain.scoring import ScoringModels

    info = json.loads((models_dir / "info.json").read_text())
    churn = ChurnModel(
        booster=lgb.Booster(model_file=str(models_dir / f"churn-{shape}.txt")),
        feature_names=info["features"],
        calibrator=json.loads((models_dir / f"calibrator-{shape}.json").read_text()),
        horizon_days=HORIZON,
    )
    return ScoringModels(
        clv=ClvModel.from_dict(json.loads((models_dir / "clv.json").read_text())),
        churn=churn,
        clv_version="bench",
        churn_version=f"bench-{shape}",
    )


def run_shap(data: Path, models_dir: Path, rows: int) -> dict:
    """Time the SHAP options on ``rows`` customers for both shapes."""
    import numpy as np
    import pandas as pd

    from retain.churn.dataset import ChurnFeatures, feature_matrix
    from retain.explain import compile_tree_shap, shap_contributions

    tx = pd.read_parquet(data)
    ids = np.sort(tx["customer_id"].unique())[:rows]
    feats = ChurnFeatures(HORIZON)(tx[tx["customer_id"].isin(ids)], pd.Timestamp(AS_OF), None)
    out: dict = {"rows": len(feats)}
    for shape in SHAPES:
        models = _models(models_dir, shape)
        X = feature_matrix(feats, models.feature_names)
        res: dict = {}
        t0, c0 = time.perf_counter(), time.process_time()
        ref = models.booster.predict(X, pred_contrib=True, num_threads=1)
        res["lightgbm_1_thread"] = time.perf_counter() - t0
        res["lightgbm_1_thread_cpu"] = time.process_time() - c0
        t0, c0 = time.perf_counter(), time.process_time()
        models.booster.predict(X, pred_contrib=True, num_threads=2)
        res["lightgbm_2_threads"] = time.perf_counter() - t0
        res["lightgbm_2_threads_cpu"] = time.process_time() - c0
        t0, c0 = time.perf_counter(), time.process_time()
        models.booster.predict(X, raw_score=True, num_threads=2)
        res["predict_only_2_threads"] = time.perf_counter() - t0
        res["predict_only_2_threads_cpu"] = time.process_time() - c0
        for label, cells in (("tables", False), ("tables_cells", True)):
            t0 = time.perf_counter()
            tables = compile_tree_shap(models.booster, cells=cells)
            res[f"{label}_build"] = time.perf_counter() - t0
            shap_contributions(models.booster, X[:50], tables=tables, n_threads=2)  # JIT warm-up
            t0, c0 = time.perf_counter(), time.process_time()
            ours = shap_contributions(models.booster, X, tables=tables, n_threads=2)
            res[f"{label}_2_threads"] = time.perf_counter() - t0
            res[f"{label}_2_threads_cpu"] = time.process_time() - c0
            res[f"{label}_max_abs_diff"] = float(np.abs(ours - ref).max())
            res[f"{label}_cached_trees"] = tables.n_cached_trees
            res[f"{label}_mb"] = tables.table_bytes / 2**20
        res["trees"] = models.booster.num_trees()
        out[shape] = res
    return out


def run_score(data: Path, models_dir: Path, shape: str, chunk_size: int) -> dict:
    """Score every customer and write the outputs; report times and peak memory."""
    import pandas as pd

    from retain.config import load_policy
    from retain.io import empty_rejects
    from retain.jobs.score import write_outputs
    from retain.scoring import count_by, score_customers

    policy = load_policy(Path(__file__).resolve().parents[1] / "configs" / "policy.yaml")
    models = _models(models_dir, shape)
    models.tables()  # build once (part of the timed total below)
    cpu0 = _cpu_seconds()
    t_all = time.perf_counter()
    t0 = time.perf_counter()
    tx = pd.read_parquet(data)
    timings: dict[str, float] = {"read": time.perf_counter() - t0}
    t0 = time.perf_counter()
    models.shap_tables = None
    models.tables()
    timings["shap_tables"] = time.perf_counter() - t0
    scores = score_customers(
        tx, AS_OF, models, policy, chunk_size=chunk_size, n_threads=2, timings=timings
    )
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        write_outputs(scores, empty_rejects(), {"rows_out": len(scores)}, Path(tmp) / "out")
        size = sum(f.stat().st_size for f in (Path(tmp) / "out").iterdir())
    timings["write"] = time.perf_counter() - t0
    total = time.perf_counter() - t_all
    return {
        "shape": shape,
        "customers": len(scores),
        "transactions": len(tx),
        "seconds_total": total,
        "cpu_seconds": _cpu_seconds() - cpu0,
        "timings": timings,
        "peak_rss_mb": _peak_rss_mb(),
        "output_mb": size / 2**20,
        "stages": count_by(scores, ["lifecycle_stage"])["lifecycle_stage"],
    }


def in_subprocess(args: list[str]) -> dict:
    """Run this script with ``args`` in a fresh process; return its JSON result."""
    cmd = [sys.executable, __file__, *args]
    done = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def _markdown(
    args: argparse.Namespace, info: dict, shap: dict, scores: list[dict], load: str
) -> str:
    per = 1e6 / shap["rows"]
    lines = [
        "# Scoring: time and peak memory",
        "",
        f"Command: `.venv/bin/python bench/bench_scoring.py --customers {args.customers} "
        f"--chunk-size {args.chunk_size} --shape {args.shape}`  ",
        f"Machine: 2 cores shared with other jobs; `uptime` load average at the start: {load}.",
        "",
        "## Model shape (churn model on the first "
        f"{info['train_customers']:,} customers, horizon {HORIZON} days)",
        "",
        "| shape | params | trees | test ROC AUC |",
        "| --- | --- | --- | --- |",
    ]
    for shape, s in info["shapes"].items():
        lines.append(
            f"| {shape} | {s['params'] or 'churn defaults'} | {s['trees']} | "
            f"{s['test_roc_auc']:.4f} |"
        )
    lines += [
        "",
        f"## SHAP options ({shap['rows']:,} customers; seconds, and per 1M rows extrapolated)",
        "",
        "| shape | option | seconds | s per 1M | CPU s per 1M | max abs diff vs pred_contrib "
        "| cached trees |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for shape in SHAPES:
        r = shap[shape]
        for opt in (
            "predict_only_2_threads",
            "lightgbm_1_thread",
            "lightgbm_2_threads",
            "tables_2_threads",
            "tables_cells_2_threads",
        ):
            base = opt.replace("_2_threads", "")
            diff = r.get(f"{base}_max_abs_diff", "")
            diff = (
                f"{diff:.1e}"
                if isinstance(diff, float)
                else "(reference)"
                if "lightgbm" in opt
                else ""
            )
            cached = r.get(f"{base}_cached_trees", "")
            cached = f"{cached}/{r['trees']}" if cached != "" else ""
            lines.append(
                f"| {shape} | {opt} | {r[opt]:.2f} | {r[opt] * per:,.0f} | "
                f"{r[opt + '_cpu'] * per:,.0f} | {diff} | {cached} |"
            )
        lines.append(
            f"| {shape} | build tables / tables+cells | {r['tables_build']:.2f} / "
            f"{r['tables_cells_build']:.2f} | | | {r['tables_mb']:.1f} / "
            f"{r['tables_cells_mb']:.1f} MB | |"
        )
    for sc in scores:
        lines += [
            "",
            f"## End to end ({sc['customers']:,} customers, {sc['transactions']:,} "
            f"transactions, shape {sc['shape']}, chunk size {args.chunk_size:,})",
            "",
            "| step | seconds |",
            "| --- | --- |",
            *[f"| {k} | {v:.1f} |" for k, v in sc["timings"].items()],
            f"| **total (wall)** | **{sc['seconds_total']:.1f}** |",
            f"| CPU (user+sys) | {sc['cpu_seconds']:.1f} |",
            "",
            f"Peak RSS: **{sc['peak_rss_mb']:,.0f} MB**; output {sc['output_mb']:.0f} MB. "
            f"Stages: {sc['stages']}.",
            "",
        ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=20_000, help="Customers to score.")
    parser.add_argument(
        "--train-customers", type=int, default=50_000, help="Customers to train on."
    )
    parser.add_argument("--chunk-size", type=int, default=250_000, help="Customers per chunk.")
    parser.add_argument(
        "--shape", default="compact", help=f"Scored model(s), comma-separated: {list(SHAPES)}."
    )
    parser.add_argument("--shap-rows", type=int, default=20_000, help="Rows for the SHAP options.")
    parser.add_argument("--seed", type=int, default=0, help="Data seed.")
    parser.add_argument("--cache-dir", type=Path, default=Path(tempfile.gettempdir()))
    parser.add_argument("--figures", type=Path, default=None, help="Write the Markdown here.")
    parser.add_argument("--worker", nargs="+", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    p = paths(args.cache_dir, args.customers, args.seed)
    if args.worker:
        kind = args.worker[0]
        if kind == "prepare":
            res = prepare(args.customers, args.seed, args.train_customers, args.cache_dir)
        elif kind == "shap":
            res = run_shap(p["data"], p["models"], args.shap_rows)
        else:
            res = run_score(p["data"], p["models"], args.shape, args.chunk_size)
        print(json.dumps(res))
        return 0
    load = os.popen("uptime").read().strip().split("load average:")[-1].strip()
    common = [
        "--customers",
        str(args.customers),
        "--seed",
        str(args.seed),
        "--cache-dir",
        str(args.cache_dir),
        "--chunk-size",
        str(args.chunk_size),
        "--train-customers",
        str(args.train_customers),
        "--shap-rows",
        str(args.shap_rows),
        "--shape",
        args.shape,
    ]
    info = in_subprocess([*common, "--worker", "prepare"])
    shap = in_subprocess([*common, "--worker", "shap"])
    scores = []
    for shape in args.shape.split(","):
        run = [*common[:-1], shape, "--worker", "score"]
        scores.append(in_subprocess(run))
    text = _markdown(args, info, shap, scores, load)
    print(text)
    if args.figures:
        args.figures.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
