"""``retain score`` on the local engine: the same folder, whatever the number of partitions.

The models are trained on the CDNOW sample; the scoring data is the same sample written as a
CSV file with a few unusable rows, so the file is spilled to customer partitions a batch at a
time, validated per partition (rejects keep their line in the file), and the outputs are
assembled sorted by customer. Every file must equal the one-partition run's.
"""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import pandas as pd
import pytest

from retain.config import load_config
from retain.datasets import load_cdnow
from retain.jobs.score import SCORES_FILE, score
from retain.jobs.train_churn import train_churn
from retain.jobs.train_clv import train_clv
from retain.names import MANIFEST_FILE, REJECTS_FILE, SCORES_CSV

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "cdnow_sample.yaml"


@pytest.mark.slow
def test_partitioned_score_job_writes_the_same_folder(mlflow_tmp, tmp_path: Path) -> None:
    cfg = load_config(CONFIG, {"churn.leakage_check_customers": 0})
    train_clv(cfg)
    train_churn(cfg)
    tx = load_cdnow("sample").astype({"timestamp": "string"})
    bad = pd.DataFrame(
        {
            "customer_id": ["", "0001", "9999"],
            "timestamp": ["1997-02-01", "not a date", "1997-02-01"],
            "amount": [1.0, 2.0, -5.0],
            "quantity": [1.0, 1.0, 1.0],
        }
    )
    data = pd.concat([tx.iloc[:100], bad, tx.iloc[100:]], ignore_index=True)
    path = tmp_path / "transactions.csv"
    data.to_csv(path, index=False)
    files = {
        "data.source": "files",
        "data.transactions": {"path": str(path)},
        "data.observed_until": "1998-06-30",
    }
    folders = {}
    for partitions in (1, 3):
        run_cfg = load_config(CONFIG, {**files, "partitions": partitions})
        result = score(
            run_cfg,
            output_dir=tmp_path / f"p{partitions}",
            model_version="challenger",
            clv_version="challenger",
            csv=True,
            allow_other_dataset=True,
        )
        folders[partitions] = result.output_dir
    one, three = folders[1], folders[3]
    names = sorted(p.name for p in one.iterdir() if not p.name.startswith("."))
    assert names == sorted(p.name for p in three.iterdir() if not p.name.startswith("."))
    pd.testing.assert_frame_equal(
        pd.read_parquet(one / SCORES_FILE), pd.read_parquet(three / SCORES_FILE), check_exact=True
    )
    for name in names:
        if name.endswith(".csv"):
            assert (one / name).read_bytes() == (three / name).read_bytes(), name
    rejects = pd.read_parquet(three / REJECTS_FILE)
    assert {100, 101, 102} <= set(rejects["row_number"])  # at their line in the file
    pd.testing.assert_frame_equal(
        pd.read_parquet(one / REJECTS_FILE).sort_values("row_number", ignore_index=True),
        rejects.sort_values("row_number", ignore_index=True),
    )
    first, second = (json.loads((f / MANIFEST_FILE).read_text()) for f in (one, three))
    for m in (first, second):
        m.pop("created_utc"), m.pop("timings_seconds"), m.pop("engine", None)
    assert first == second
    assert second["customers"]["balanced"]
    # drift against the churn model's test cutoff: the same figures, however partitioned
    # (first == second above compares the drift entries too). The status is known: CDNOW is
    # one cohort, every first purchase in Jan-Mar 1997, so scored six months after the test
    # cutoff (1997-12-29) every customer's tenure is longer than any customer's then (462
    # days at least against 362 at most): all of them in the top decile, a PSI far above
    # psi_retrain on 2,357 customers.
    drift = second["drift"]
    assert drift == first["drift"]
    assert drift["status"] == "retrain" and drift["retrain"]
    tenure = drift["features"]["tenure_days"]
    assert tenure["status"] == "retrain" and tenure["psi"] >= drift["thresholds"]["psi_retrain"]
    assert drift["customers"] == 2357 and drift["reference"]["cutoff"] == "1997-12-29"
    assert drift["psi_max"] == max(f["psi"] for f in drift["features"].values())
    alarms = [w for w in result.warnings if w.startswith("drift:")]  # ends the CLI's line
    assert len(alarms) == 1 and alarms[0].startswith("drift: retrain")
    logged = mlflow.get_run(result.run_id).data.metrics
    assert logged["drift_psi_max"] == pytest.approx(drift["psi_max"])
    assert (three / SCORES_CSV).exists()
