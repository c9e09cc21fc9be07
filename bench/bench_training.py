"""Wall time and peak memory of ``retain train-churn`` on a large generated data folder.

The data folder comes from ``bench/generate_large.py`` (``transactions.parquet`` and the
``retain.yaml`` beside it, with ``churn.max_training_rows`` set when six training cutoffs would
exceed it). The job runs under ``/usr/bin/time -v`` in a fresh process: above about 2 million
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
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def run_timed(command: list[str], log: Path) -> dict[str, float]:
    """Run ``command`` under ``/usr/bin/time -v``; its wall seconds and peak RSS in MiB.

    Parameters
    ----------
    command : list of str
        The command line.
    log : Path
        Where its standard output and error go.

    Returns
    -------
    dict
        ``wall_s``, ``max_rss_mib``, ``returncode``.
    """
    with log.open("w") as out:
        proc = subprocess.run(
            ["/usr/bin/time", "-v", *command], stdout=out, stderr=subprocess.STDOUT, check=False
        )
    text = log.read_text()
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): ([\d:.]+)", text)
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", text)
    seconds = float("nan")
    if wall:
        parts = [float(x) for x in wall.group(1).split(":")]
        seconds = sum(v * 60**i for i, v in enumerate(reversed(parts)))
    return {
        "wall_s": round(seconds, 1),
        "max_rss_mib": round(int(rss.group(1)) / 1024, 1) if rss else float("nan"),
        "returncode": float(proc.returncode),
    }


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
    retain = str(Path(sys.executable).with_name("retain"))
    figures = run_timed([retain, "train-churn", "-c", str(config)], tmp / "train-churn.log")
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


if __name__ == "__main__":
    raise SystemExit(main())
