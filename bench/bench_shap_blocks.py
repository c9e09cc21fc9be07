"""Seconds of the compiled TreeSHAP kernel by rows per block, on one thread.

Within a block of rows the kernel runs tree after tree, so a tree's tables stay in the CPU
cache for every row of the block; larger blocks reuse them more, until the block's rows and
outputs crowd them out. The churn model is read from its saved form (``churn_model.json`` of
a trained version); the rows are drawn per feature uniformly over the range of the model's
thresholds (plus 10% each side) with 5% missing, so every cell of the trees' grids is visited
(real customers concentrate in fewer cells, so this is the pessimistic case). The values do
not depend on the block size (checked).

Usage::

    .venv/bin/python bench/bench_shap_blocks.py --model PATH/churn_model.json --rows 200000
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from retain.churn.train import ChurnModel
from retain.explain.treeshap import compile_tree_shap, shap_and_raw_scores


def main(argv: list[str] | None = None) -> int:
    """Time the kernel per block size and print one JSON line per size."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, required=True, help="a saved churn_model.json")
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--blocks", default="64,256,1024,4096,8192,16384")
    args = parser.parse_args(argv)
    model = ChurnModel.from_dict(json.loads(args.model.read_text()))
    booster = model.booster
    tables = compile_tree_shap(booster)
    rng = np.random.default_rng(0)
    X = np.zeros((args.rows, tables.n_features))
    for f in range(tables.n_features):
        thr = tables.node_threshold[tables.node_feature == f]
        if len(thr):
            lo, hi = float(thr.min()), float(thr.max())
            span = hi - lo if hi > lo else 1.0
            X[:, f] = rng.uniform(lo - 0.1 * span, hi + 0.1 * span, args.rows)
    X[rng.random(X.shape) < 0.05] = np.nan
    shap_and_raw_scores(booster, X[:1000], tables=tables, n_threads=1)  # compile the kernel
    reference = None
    for block in (int(b) for b in args.blocks.split(",")):
        t0 = time.perf_counter()
        contrib, raw = shap_and_raw_scores(
            booster, X, tables=tables, n_threads=1, block_rows=block
        )
        seconds = time.perf_counter() - t0
        if reference is None:
            reference = (contrib, raw)
        same = np.array_equal(contrib, reference[0]) and np.array_equal(raw, reference[1])
        print(
            json.dumps(
                {
                    "block_rows": block,
                    "seconds": round(seconds, 2),
                    "seconds_per_1m_rows": round(seconds * 1e6 / args.rows, 1),
                    "same_values": bool(same),
                    "trees": booster.num_trees(),
                    "cached_trees": tables.n_cached_trees,
                }
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
