"""The MLproject's `main` entry point runs the whole chain offline, each step its own run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from mlflow import MlflowClient

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_mlflow_run_main_chains_every_step(tmp_path, mlflow_tmp):
    cfg = yaml.safe_load((ROOT / "configs" / "cdnow_sample.yaml").read_text())
    cfg["scoring"]["output_dir"] = str(tmp_path / "out")
    cfg["policy"] = str(ROOT / "configs" / "policy.yaml")
    cfg["segments"] = str(ROOT / "configs" / "segments.yaml")
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump(cfg))
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    before = set(os.listdir(ROOT))
    proc = subprocess.run(
        [
            Path(sys.executable).parent / "mlflow",
            "run",
            str(ROOT),
            "-e",
            "main",
            "--env-manager",
            "local",
            "-P",
            f"config={config}",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "retain: done." in proc.stdout
    assert set(os.listdir(ROOT)) == before  # nothing written into the project

    client = MlflowClient(mlflow_tmp.tracking_uri)
    # `mlflow run` without --experiment-name puts the parent in the default experiment; every
    # step follows its parent there
    runs = client.search_runs(["0"])
    steps = sorted(r.data.tags.get("step", "") for r in runs)
    assert steps.count("promote") == 2
    for step in ("main", "train_clv", "train_churn", "score", "report"):
        assert step in steps, steps
    parent = next(r for r in runs if r.data.tags.get("step") == "main")
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert len(children) == 6
    assert all(r.info.status == "FINISHED" for r in runs)
    for kind in ("clv", "churn"):
        name = f"{cfg['name']}-{kind}"  # registered names belong to the config's data set
        assert str(client.get_model_version_by_alias(name, "champion").version) == "1"

    day = f"as_of={cfg['scoring']['as_of']}"
    scores = pd.read_parquet(tmp_path / "out" / cfg["name"] / "scores" / day / "scores.parquet")
    assert len(scores) == 2357 and scores["customer_id"].is_unique
    report = tmp_path / "out" / cfg["name"] / "report" / day / "report.html"
    assert report.stat().st_size > 100_000
