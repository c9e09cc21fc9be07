"""``retain score`` on the Spark engine over large files: wall time and peak memory.

Usage::

    .venv/bin/python bench/generate_large.py --customers 1000000 --out /tmp/retain-large-1m
    .venv/bin/python bench/bench_spark.py --data /tmp/retain-large-1m
    .venv/bin/python bench/bench_spark.py --data /tmp/retain-large-1m --master 'local[4]'

Steps, each a command in its own process:

``train`` (once per data folder, not timed)
    As in ``bench/bench_engine.py``: the first ``--train-customers`` customers are copied to
    ``DATA/train/`` and both models trained on them (challenger versions in ``DATA``'s
    registry).
``score`` (timed)
    ``retain score`` with ``engine: spark``, ``spark.master`` (``local[2]`` by default) and
    ``spark.driver.memory`` (``4g``) under ``/usr/bin/time -v``; its maximum resident set is
    that of the largest single process of the tree (the JVM, usually). A sampler reads the
    resident memory of every process of the tree every 0.2 s (``psutil``): the peaks of the
    Python driver, of the JVM, of the Python workers together, and of the whole tree. The scores
    are written into ``DATA/outputs-spark``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_engine import _config, _write_config, run_score, train


def score(data: Path, partitions: str, master: str, driver_memory: str) -> dict:
    """``retain score`` on Spark over every customer, timed and measured."""
    config = _config(data)
    config["engine"] = "spark"
    config["partitions"] = partitions if partitions == "auto" else int(partitions)
    config["spark"] = {
        "master": master,
        "app_name": "retain-bench",
        "conf": {
            "spark.driver.memory": driver_memory,
            "spark.driver.maxResultSize": "2g",
            "spark.local.dir": str(data / "spark-local"),
            "spark.ui.enabled": "false",
        },
    }
    config.setdefault("scoring", {})["output_dir"] = str(data / "outputs-spark")
    cfg = _write_config(config, data / "retain-score-spark.yaml")
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable}
    load_before = os.getloadavg()[0]
    measured, manifest, summary = run_score(data, cfg, data / "outputs-spark", env)
    return {
        "customers_scored": manifest["customers"]["customers_scored"],
        "input_rows": {k: v["rows_in"] for k, v in manifest["input_rows"].items()},
        "engine": manifest.get("engine"),
        "master": master,
        "driver_memory": driver_memory,
        **measured,
        "load_average_1min_at_start": round(load_before, 2),
        "load_average_1min_at_end": round(os.getloadavg()[0], 2),
        "timings_seconds": manifest["timings_seconds"],
        "summary": summary,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="bench/generate_large.py output")
    parser.add_argument("--train-customers", type=int, default=100_000)
    parser.add_argument("--partitions", default="auto", help="partition count or auto")
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--driver-memory", default="4g")
    args = parser.parse_args(argv)
    data = args.data.resolve()
    os.environ.pop("MLFLOW_TRACKING_URI", None)  # the data folder's config names its store
    train(data, args.train_customers)
    result = score(data, args.partitions, args.master, args.driver_memory)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
