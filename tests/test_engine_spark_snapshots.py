"""The churn training data set built on Spark equals the whole one's and the local engine's.

The reference is :func:`retain.churn.train.prepare_dataset` on the whole validated population,
as in ``tests/test_engine_snapshots.py`` (whose checks the Spark build goes through):
:func:`retain.engine.spark_snapshots.build_dataset_spark` must give the same rows, keys,
labels, features (to 1e-9, NaN in the same places), split, event types, training-row sample
and inputs' record, on the CDNOW sample (embedded source) and on synthetic data with events
and netted returns read from Parquet files with unusable rows. ``retain train-churn`` under
``engine: spark`` trains the local engine's model.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_engine_snapshots import _cdnow_cfg, _check, _synthetic_cfg

from retain.config import RunConfig, load_config
from retain.engine.snapshots import PartitionedDataset
from retain.engine.spark_snapshots import build_dataset_spark
from retain.features.engagement import EVENT_ROLES
from retain.inputs import _read_source, observed_until

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "cdnow_sample.yaml"


def _accounted(built: PartitionedDataset) -> None:
    """Every table's rows in are its rows used plus its rows rejected."""
    for table, counts in built.record.counts.items():
        assert counts["rows_in"] == counts["rows_used"] + counts["rows_rejected"], table


def _on_spark(spark, kept: list[PartitionedDataset] | None = None):
    def build(cfg: RunConfig, source, n: int, tmp_path: Path) -> PartitionedDataset:
        built = build_dataset_spark(spark, cfg, tmp_path / f"spark-{n}", partitions=n)
        assert built.partitions == n
        _accounted(built)
        if kept is not None:
            kept.append(built)
        return built

    return build


def test_cdnow_sample_with_training_cap(spark, tmp_path: Path) -> None:
    cfg = _cdnow_cfg(max_training_rows=1500, leakage_check_customers=50)
    _check(cfg, _read_source(cfg), tmp_path, counts=(3,), build=_on_spark(spark))


def _synthetic_files(tmp_path: Path) -> RunConfig:
    """Synthetic customers with events and a few returns, as Parquet files with bad rows."""
    cfg = _synthetic_cfg(150, max_training_rows=400, leakage_check_customers=40)
    source = _read_source(cfg)
    tx = source.tables["transactions"]
    assert tx is not None
    returns = tx.iloc[::37].copy()
    returns["timestamp"] = returns["timestamp"] + pd.Timedelta(days=20)
    returns["amount"] = -returns["amount"] / 2
    bad = tx.iloc[:3].copy()
    bad["customer_id"] = [None, "", None]  # no customer: rejected
    tx = pd.concat([tx.iloc[:50], bad, tx.iloc[50:], returns], ignore_index=True)
    us = {"index": False, "coerce_timestamps": "us"}  # Spark reads no nanosecond timestamps
    tx.to_parquet(tmp_path / "transactions.parquet", **us)
    events = source.tables["events"]
    assert events is not None and len(events)
    events.to_parquet(tmp_path / "events.parquet", **us)
    data = cfg.data.model_dump(exclude={"synthetic", "source"})
    data.update(
        observed_until=observed_until(cfg).date(),
        source="files",
        returns="net",
        transactions={"path": str(tmp_path / "transactions.parquet")},
        events={"path": str(tmp_path / "events.parquet")},
    )
    return cfg.model_copy(update={"data": type(cfg.data).model_validate(data)})


def test_synthetic_with_events_netted_returns_from_files(spark, tmp_path: Path) -> None:
    cfg = _synthetic_files(tmp_path)
    source = _read_source(cfg)
    kept: list[PartitionedDataset] = []
    _check(cfg, source, tmp_path, counts=(4,), build=_on_spark(spark, kept))
    (built,) = kept
    assert built.record.counts["transactions"]["rejected_customer_id_missing"] == 3
    role_counts = [f"{role}_count_90d" for role in EVENT_ROLES]
    assert built.dataset.train[role_counts].to_numpy().sum() > 0  # features from the events


@pytest.mark.slow
def test_train_churn_on_spark_trains_the_local_engines_model(
    spark, mlflow_tmp, tmp_path: Path
) -> None:
    from mlflow import MlflowClient

    from retain.jobs.train_churn import train_churn
    from retain.tracking import registered_name
    from retain.tracking.registry import load_churn_model

    overrides = {"churn.leakage_check_customers": 0, "churn.max_training_rows": 5000}
    results, models = {}, {}
    for engine in ("local", "spark"):
        cfg = load_config(
            CONFIG,
            {**overrides, "engine": engine, "partitions": 3, "spark": {"master": "local[2]"}},
        )
        messages: list[str] = []
        results[engine] = train_churn(cfg, progress=messages.append)
        if engine == "spark":
            assert any("on Spark" in m for m in messages)
        version = results[engine].model_version
        models[engine] = load_churn_model(version, registered_name(cfg, "churn")).model
    local, on_spark = results["local"], results["spark"]
    assert on_spark.feature_names == local.feature_names
    assert on_spark.metrics.keys() == local.metrics.keys()
    for key, value in local.metrics.items():
        assert on_spark.metrics[key] == pytest.approx(value, rel=1e-9, abs=1e-12), key
    # the same trees: the same test predictions
    cfg = load_config(CONFIG, overrides)
    test = build_dataset_spark(spark, cfg, tmp_path / "work", partitions=2).dataset.test
    a = models["local"].predict_proba(test)
    b = models["spark"].predict_proba(test)
    np.testing.assert_allclose(b, a, rtol=1e-9, atol=1e-12)
    client = MlflowClient(tracking_uri=mlflow_tmp.tracking_uri)
    params = client.get_run(on_spark.run_id).data.params
    assert params["engine"] == "spark"
    assert params["engine.partitions"] == "3"
    metrics = client.get_run(on_spark.run_id).data.metrics
    assert metrics["training_rows_used"] == 5000
