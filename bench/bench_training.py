"""Wall time and peak memory of ``retain train-churn`` on a large generated data folder.

The data folder comes from ``bench/generate_large.py`` (``transactions.parquet`` and the
``retain.yaml`` beside it, with ``churn.max_training_rows`` set when six training cutoffs would
exceed it). The job runs in a fresh process, its progress messages time-stamped, the resident
memory of its whole process tree sampled (worker processes included): above about 2 million
input rows the local engine builds the snapshots one customer partition at a time
(:func:`retain.engine.snapshots.build_dataset_partitioned`), then samples the training rows and
trains as on one partition. The machine's load average before and after is printed with the
figures (a shared machine slows every step).

Usage::

    .venv/bin/python bench/generate_large.py --customers 1000000 --out /tmp/retain-train-1m
    .venv/bin/python bench/bench_training.py --data /tmp/retain-train-1m
    .venv/bin/python bench/bench_training.py --data /tmp/retain-train-10m --partitions 50
    .venv/bin/python bench/bench_training.py --data /tmp/retain-train-1m --build-only
    .venv/bin/python bench/bench_training.py --data /tmp/retain-train-100k --engine spark \\
        --build-only

``--build-only`` times the data set build alone, in this process, step by step (validation,
per-customer features, population values, finishing) with the peak RSS. ``--engine spark``
builds it on Spark (:func:`retain.engine.spark_snapshots.build_dataset_spark`, master
``--spark-master``, default ``local[2]``); the peak RSS and CPU time are then the driver's
Python process alone (not the JVM nor the Python workers).
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

import yaml

ROOT = Path(__file__).resolve().parents[1]


def build_only(config: Path, tmp: Path) -> dict[str, object]:
    """Build the churn data set partition by partition in this process; seconds per step.

    Parameters
    ----------
    config : Path
        The training config.
    tmp : Path
        A scratch folder (the work folder goes under it).

    Returns
    -------
    dict
        Partitions, rows per part, seconds per step, total wall and CPU seconds, peak RSS (MiB) and
        the load average before and after.
    """
    import resource
    import time

    from retain.config import load_config
    from retain.engine.local import auto_partitions, input_rows, partition_source
    from retain.engine.snapshots import build_dataset_partitioned

    cfg = load_config(config)
    work = tmp / "work"
    work.mkdir()
    timings: dict[str, float] = {}
    load_before = os.getloadavg()
    t0 = time.perf_counter()
    if cfg.engine == "spark":
        from retain.engine.spark_snapshots import build_dataset_spark
        from retain.jobs.score import spark_partitions, spark_session

        spark = spark_session(cfg.spark)
        n = spark_partitions(spark, cfg.partitions)
        timings["spark_session"] = time.perf_counter() - t0
        built = build_dataset_spark(spark, cfg, work, partitions=n, timings=timings)
    else:
        n = auto_partitions(input_rows(cfg), cfg.partitions)
        source, parts = partition_source(cfg, n, work)
        timings["partition"] = time.perf_counter() - t0
        built = build_dataset_partitioned(parts, source, cfg, work, timings=timings)
    wall = time.perf_counter() - t0
    usage = resource.getrusage(resource.RUSAGE_SELF)
    ds = built.dataset
    sample = ds.training_sample
    return {
        "engine": cfg.engine,
        "partitions": n,
        "train_rows_built": sample.rows_total if sample else len(ds.train),
        "train_rows_used": len(ds.train),
        "validation_rows": len(ds.validation),
        "test_rows": len(ds.test),
        "seconds": {k: round(v, 1) for k, v in timings.items()},
        "wall_s": round(wall, 1),
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 1),
        "max_rss_mib": round(usage.ru_maxrss / 1024, 1),
        "load_before": [round(x, 2) for x in load_before],
        "load_after": [round(x, 2) for x in os.getloadavg()],
    }


def main(argv: list[str] | None = None) -> int:
    """Write a training config beside the data, run ``retain train-churn``, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="generate_large.py output")
    parser.add_argument(
        "--partitions", default="auto", help="config 'partitions' (default auto: ~2M rows each)"
    )
    parser.add_argument(
        "--max-training-rows", type=int, default=None, help="override churn.max_training_rows"
    )
    parser.add_argument(
        "--build-only", action="store_true", help="time the partitioned data set build alone"
    )
    parser.add_argument(
        "--engine", choices=("local", "spark"), default="local", help="config 'engine'"
    )
    parser.add_argument(
        "--spark-master", default="local[2]", help="spark.master under --engine spark"
    )
    args = parser.parse_args(argv)
    data = args.data.resolve()
    cfg = yaml.safe_load((data / "retain.yaml").read_text())
    cfg["partitions"] = args.partitions if args.partitions == "auto" else int(args.partitions)
    cfg["engine"] = args.engine
    if args.engine == "spark":  # the Python workers run this interpreter
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
        cfg["spark"] = {"master": args.spark_master, "conf": {"spark.ui.enabled": "false"}}
    if args.max_training_rows is not None:
        cfg["churn"]["max_training_rows"] = args.max_training_rows
    tmp = Path(tempfile.mkdtemp(prefix="retain-bench-training-"))
    cfg["tracking"] = {
        "tracking_uri": f"sqlite:///{tmp / 'mlruns.db'}",
        "experiment_name": "bench-training",
    }
    for key in ("policy", "segments"):  # relative to the data folder
        if key in cfg and not Path(cfg[key]).is_absolute():
            cfg[key] = str(data / cfg[key])
    config = tmp / "retain-train.yaml"
    config.write_text(yaml.safe_dump(cfg, sort_keys=False))
    generated = json.loads((data / "generate.json").read_text())
    if args.build_only:
        print(json.dumps({"customers": generated["customers"], **build_only(config, tmp)}))
        return 0
    load_before = os.getloadavg()
    figures = run_job(config, tmp / "train-churn.log")
    load_after = os.getloadavg()
    summary = {
        "customers": generated["customers"],
        "transactions": generated["transactions"],
        "engine": args.engine,
        "partitions": cfg["partitions"],
        "max_training_rows": cfg["churn"].get("max_training_rows"),
        **figures,
        "load_before": [round(x, 2) for x in load_before],
        "load_after": [round(x, 2) for x in load_after],
        "cpus": os.cpu_count(),
        "log": str(tmp / "train-churn.log"),
    }
    print(json.dumps(summary))
    return 0 if figures["returncode"] == 0 else 1


_JOB = """
import json, sys, time
from retain.config import load_config
from retain.jobs.train_churn import train_churn
t0 = time.perf_counter()
def note(message):
    print(f"{time.perf_counter() - t0:9.1f} s  {message}", file=sys.stderr, flush=True)
result = train_churn(load_config(sys.argv[1]), progress=note)
note("done")
keep = ("roc_auc", "brier", "training_rows_used", "training_rows_total", "best_iteration")
print(json.dumps({k: v for k, v in result.metrics.items() if any(w in k for w in keep)}))
"""
"""``retain train-churn``'s job in a fresh process, its progress messages time-stamped."""


def run_job(config: Path, log: Path) -> dict[str, object]:
    """The training job on ``config``: wall seconds, peaks of the whole process tree, metrics.

    The job runs in a fresh interpreter (what ``retain train-churn`` runs, with each progress
    message stamped with the seconds since the start, in ``log``); the resident memory of the
    process and its worker processes is sampled every 0.2 s (``bench_engine.TreeMemory``).

    Returns
    -------
    dict
        ``wall_s``, ``peak_rss_gb`` (whole tree at one moment), ``cpu_s`` (every process of the
        tree), ``returncode``, ``steps`` (seconds at each message) and ``metrics``.
    """
    from bench_engine import TreeMemory

    t0 = time.perf_counter()
    with log.open("w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-c", _JOB, str(config)],
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
        )
        with TreeMemory(proc.pid) as memory:
            out, _ = proc.communicate()
    wall = time.perf_counter() - t0
    steps = [line.strip() for line in log.read_text().splitlines() if " s  " in line]
    metrics = json.loads(out.strip().splitlines()[-1]) if proc.returncode == 0 else {}
    return {
        "wall_s": round(wall, 1),
        "peak_rss_gb": round(memory.peaks["total"] / 1024**3, 2),
        "cpu_s": round(sum(memory.cpu.values()), 1),
        "returncode": proc.returncode,
        "steps": steps,
        "metrics": metrics,
    }


if __name__ == "__main__":
    raise SystemExit(main())
