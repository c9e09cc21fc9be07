"""``retain score`` on the local engine over large files: wall time and peak memory.

Usage::

    .venv/bin/python bench/generate_large.py --customers 1000000 --out /tmp/retain-large-1m
    .venv/bin/python bench/bench_engine.py --data /tmp/retain-large-1m
    .venv/bin/python bench/bench_engine.py --data /tmp/retain-large-10m --partitions 16

Steps, each a command in its own process:

``train`` (once per data folder, not timed)
    The first ``--train-customers`` customers (by id) are copied to ``DATA/train/`` with DuckDB
    and ``retain train-clv`` / ``retain train-churn`` run on them with the data folder's
    config, so the registry in ``DATA`` holds a challenger of each model. Scoring then uses
    those versions (``--model-version challenger --allow-other-dataset``).
``score`` (timed)
    ``retain score`` on every customer of ``DATA`` with ``partitions`` set, under
    ``/usr/bin/time -v``: wall time and the peak resident memory of the process. The scores are
    written (Parquet, sorted by customer) into ``DATA/outputs``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import duckdb
import psutil
import yaml

ROOT = Path(__file__).resolve().parents[1]
RETAIN = [sys.executable, "-m", "retain.cli"]


def _config(data: Path) -> dict:
    return yaml.safe_load((data / "retain.yaml").read_text())


def _write_config(config: dict, path: Path) -> Path:
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


class TreeMemory:
    """Peak resident memory of a process tree, sampled in a thread.

    Attributes
    ----------
    peaks : dict
        Peak bytes of ``driver`` (the Python process running ``retain``), ``jvm`` (java),
        ``workers`` (every other Python process together) and ``total`` (the whole tree at
        one moment).
    cpu : dict
        Per process seen, its CPU seconds (user + system) at the last sample.
    """

    def __init__(self, root: int, every: float = 0.2) -> None:
        self.root = root
        self.every = every
        self.peaks = {"driver": 0, "jvm": 0, "workers": 0, "total": 0}
        self.cpu: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> TreeMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        try:
            root = psutil.Process(self.root)
            procs = [root, *root.children(recursive=True)]
        except psutil.Error:
            return
        now = {"driver": 0, "jvm": 0, "workers": 0}
        for proc in procs:
            try:
                rss = proc.memory_info().rss
                cmd = " ".join(proc.cmdline())
                times = proc.cpu_times()
            except psutil.Error:
                continue
            self.cpu[proc.pid] = times.user + times.system
            if proc.name() == "time":
                continue
            if "java" in proc.name() or "org.apache.spark" in cmd:
                now["jvm"] += rss
            elif "retain.cli" in cmd:
                now["driver"] += rss
            else:
                now["workers"] += rss
        for key, value in now.items():
            self.peaks[key] = max(self.peaks[key], value)
        self.peaks["total"] = max(self.peaks["total"], sum(now.values()))

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self.every)


def train(data: Path, customers: int) -> None:
    """Copy the first customers to ``DATA/train`` and train both models on them (once)."""
    folder = data / "train"
    done = folder / "trained.json"
    if done.exists():
        return
    folder.mkdir(exist_ok=True)
    config = _config(data)
    con = duckdb.connect()
    tx = data / "transactions.parquet"
    con.execute(
        f"CREATE TABLE ids AS SELECT DISTINCT customer_id FROM read_parquet('{tx}') "
        f"ORDER BY customer_id LIMIT {customers}"
    )
    for name in ("transactions", "events"):
        source = data / f"{name}.parquet"
        if not source.exists():
            continue
        con.execute(
            f"COPY (SELECT * FROM read_parquet('{source}') WHERE customer_id IN "
            f"(SELECT customer_id FROM ids)) TO '{folder / f'{name}.parquet'}' (FORMAT parquet)"
        )
        config["data"][name] = {"path": str(folder / f"{name}.parquet")}
    con.close()
    train_cfg = _write_config(config, data / "retain-train.yaml")
    for step in ("train-clv", "train-churn"):
        subprocess.run([*RETAIN, step, "--config", str(train_cfg)], check=True, cwd=data)
    done.write_text(json.dumps({"customers": customers}))


def run_score(
    data: Path, cfg: Path, outputs: Path, env: dict[str, str] | None = None
) -> tuple[dict, dict, str]:
    """``retain score --config cfg`` with the challengers under ``/usr/bin/time -v``.

    Returns the measurements (wall seconds, the largest single process by ``time -v``, the
    sampled peaks of the whole process tree and its CPU seconds), the manifest written under
    ``outputs`` and the command's summary line.
    """
    command = [
        "/usr/bin/time",
        "-v",
        *RETAIN,
        "score",
        "--config",
        str(cfg),
        "--model-version",
        "challenger",
        "--clv-version",
        "challenger",
        "--allow-other-dataset",
    ]
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=data, env=env
    )
    with TreeMemory(proc.pid) as memory:  # the command and its worker processes together
        out, err = proc.communicate()
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.stderr.write(out + err)
        raise SystemExit(proc.returncode)
    peak_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", err)[1])
    gb = 1024**3
    measured = {
        "wall_seconds": round(wall, 1),
        "time_v_max_rss_gb": round(peak_kb / 1024**2, 2),  # the largest single process
        "peak_rss_gb": {k: round(v / gb, 2) for k, v in memory.peaks.items()},
        "cpu_seconds": round(sum(memory.cpu.values()), 1),
    }
    manifest = json.loads(next(outputs.rglob("manifest.json")).read_text())
    summary = next((line for line in err.splitlines() if line.startswith("score:")), "")
    return measured, manifest, summary


def score(data: Path, partitions: str) -> dict:
    """``retain score`` on the local engine over every customer, timed and measured."""
    config = _config(data)
    config["partitions"] = partitions if partitions == "auto" else int(partitions)
    cfg = _write_config(config, data / "retain-score.yaml")
    measured, manifest, summary = run_score(data, cfg, data / "outputs")
    return {
        "customers_scored": manifest["customers"]["customers_scored"],
        "input_rows": {k: v["rows_in"] for k, v in manifest["input_rows"].items()},
        "partitions": manifest.get("engine", {}).get("partitions", 1),
        **measured,
        "timings_seconds": manifest["timings_seconds"],
        "summary": summary,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="bench/generate_large.py output")
    parser.add_argument("--train-customers", type=int, default=100_000)
    parser.add_argument("--partitions", default="auto", help="partition count or auto")
    args = parser.parse_args(argv)
    data = args.data.resolve()
    os.environ.pop("MLFLOW_TRACKING_URI", None)  # the data folder's config names its store
    train(data, args.train_customers)
    print(json.dumps(score(data, args.partitions), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
