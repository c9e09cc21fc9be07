"""``retain score`` on the Spark engine writes the local engine's folder.

The models are trained on the CDNOW sample; the scoring data is the same sample written as a
CSV file (``;`` between fields, the amount derived from a column with a space in its name)
with a few unusable rows. Spark reads the file, spreads its rows over partitions by
customer, validates them in the tasks (rejects at their line in the file) and writes the score
parts; the job writes the folder from them as it does for the local engine. Every file must
equal the local engine's (3 partitions), but the manifest's times and engine.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from retain.config import load_config
from retain.datasets import load_cdnow
from retain.jobs.score import SCORES_FILE, score
from retain.jobs.train_churn import train_churn
from retain.jobs.train_clv import train_clv
from retain.names import MANIFEST_FILE, REJECTS_FILE, SCORES_CSV

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "cdnow_sample.yaml"


def assert_same_table(got: pd.DataFrame, expected: pd.DataFrame) -> None:
    """Same columns, dtypes and rows; floats to 1e-9 with NaN in the same places."""
    assert list(got.columns) == list(expected.columns)
    assert got.dtypes.to_dict() == expected.dtypes.to_dict()
    assert len(got) == len(expected)
    for col in expected.columns:
        a, b = expected[col], got[col]
        if pd.api.types.is_float_dtype(a.dtype):
            x, y = a.to_numpy(dtype=float), b.to_numpy(dtype=float)
            np.testing.assert_array_equal(np.isnan(y), np.isnan(x), err_msg=col)
            np.testing.assert_allclose(y, x, rtol=0, atol=1e-9, equal_nan=True, err_msg=col)
        else:
            pd.testing.assert_series_equal(b, a, obj=col)


@pytest.mark.slow
def test_spark_score_job_writes_the_local_engines_folder(spark, mlflow_tmp, tmp_path: Path) -> None:
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
    data = data.rename(columns={"amount": "Gross Amount"})  # amount derived from it
    path = tmp_path / "transactions.csv"
    data.to_csv(path, index=False, sep=";")
    files = {
        "data.source": "files",
        "data.transactions": {
            "path": str(path),
            "columns": {"amount": '"Gross Amount" * 1'},
            "csv": {"delimiter": ";"},
        },
        "data.observed_until": "1998-06-30",
    }
    folders, manifests = {}, {}
    for engine in ("local", "spark"):
        run_cfg = load_config(
            CONFIG,
            {**files, "engine": engine, "partitions": 3, "spark": {"master": "local[2]"}},
        )
        result = score(
            run_cfg,
            output_dir=tmp_path / engine,
            model_version="challenger",
            clv_version="challenger",
            csv=True,
            allow_other_dataset=True,
        )
        folders[engine] = result.output_dir
        manifests[engine] = json.loads((result.output_dir / MANIFEST_FILE).read_text())
    local, on_spark = folders["local"], folders["spark"]
    assert manifests["spark"]["engine"] == {"name": "spark", "partitions": 3}
    names = sorted(p.name for p in local.iterdir() if not p.name.startswith("."))
    assert names == sorted(p.name for p in on_spark.iterdir() if not p.name.startswith("."))
    assert_same_table(pd.read_parquet(on_spark / SCORES_FILE), pd.read_parquet(local / SCORES_FILE))
    for name in names:
        if name.endswith(".csv"):
            assert (local / name).read_bytes() == (on_spark / name).read_bytes(), name
    assert (on_spark / SCORES_CSV).exists()
    rejects = pd.read_parquet(on_spark / REJECTS_FILE)
    assert {100, 101, 102} <= set(rejects["row_number"])  # at their line in the file
    key = ["table", "row_number", "reason"]
    pd.testing.assert_frame_equal(
        pd.read_parquet(local / REJECTS_FILE)[key].sort_values(key, ignore_index=True),
        rejects[key].sort_values(key, ignore_index=True),
    )
    for m in manifests.values():
        m.pop("created_utc"), m.pop("timings_seconds"), m.pop("engine", None)
    assert manifests["local"] == manifests["spark"]
    assert manifests["spark"]["drift"]["features"]  # drift counted in the Spark tasks
    assert manifests["spark"]["customers"]["balanced"]
