"""The churn training data set built one customer partition at a time equals the whole one's.

The reference is :func:`retain.churn.train.prepare_dataset` on the whole validated population,
with the generic event types fixed at the last training cutoff and ``auto`` cutoffs resolved
from the data, as ``retain train-churn`` does; the partitioned build
(:func:`retain.engine.snapshots.build_dataset_partitioned`) must give the same rows, labels,
features (to 1e-9, NaN in the same places), split, event types and training-row sample for
any number of partitions.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from retain.churn.train import prepare_dataset
from retain.config import RunConfig, load_config
from retain.engine.partition import MemoryParts, spill_tables, split_tables
from retain.engine.snapshots import build_dataset_partitioned
from retain.features.build import fix_event_types
from retain.inputs import _read_source, record_inputs, validate_source
from retain.inputs import observed_until as data_until
from retain.jobs.train_churn import resolve_cutoffs

ROOT = Path(__file__).resolve().parents[1]


def _cdnow_cfg(**churn: object) -> RunConfig:
    cfg = load_config(ROOT / "configs" / "cdnow.yaml")
    cfg = cfg.model_copy(update={"data": cfg.data.model_copy(update={"source": "cdnow_sample"})})
    assert cfg.churn is not None
    return cfg.model_copy(update={"churn": cfg.churn.model_copy(update=churn)})


def _synthetic_cfg(n: int = 500, **churn: object) -> RunConfig:
    """``configs/synthetic.yaml`` on ``n`` customers (engagement events), ``auto`` cutoffs."""
    cfg = load_config(ROOT / "configs" / "synthetic.yaml")
    assert cfg.churn is not None and cfg.data.synthetic is not None
    update: dict[str, object] = {
        "train_cutoffs": "auto",
        "validation_cutoff": "auto",
        "test_cutoff": "auto",
        **churn,
    }
    synthetic = cfg.data.synthetic.model_copy(update={"n_customers": n})
    return cfg.model_copy(
        update={
            "churn": cfg.churn.model_copy(update=update),
            "data": cfg.data.model_copy(update={"synthetic": synthetic}),
        }
    )


def _synthetic_source(cfg: RunConfig):
    return _read_source(cfg)


def _reference(cfg: RunConfig, source):
    until = data_until(cfg)
    inputs = validate_source(source, cfg, until)
    churn, _ = resolve_cutoffs(cfg.churn, inputs.transactions, until)
    features = fix_event_types(cfg.features, inputs.events, max(churn.train_cutoffs))
    as_of = None
    if cfg.data.returns != "drop":
        whole = source

        def as_of(cutoff):  # the job's _as_of, on this source
            return validate_source(whole, cfg, cutoff).transactions

    dataset = prepare_dataset(
        inputs.transactions,
        churn,
        until,
        inputs.events,
        feature_config=features,
        seed=cfg.seed,
        transactions_at=as_of,
    )
    return dataset, features, record_inputs(inputs)


def _partitioned(cfg: RunConfig, source, n: int, tmp_path: Path):
    parts = MemoryParts(split_tables(source.tables, n, cfg.data.null_values))
    work = tmp_path / f"work-{n}"
    return build_dataset_partitioned(parts, source, cfg, work)


def _spilled(cfg: RunConfig, source, n: int, tmp_path: Path):
    """The build from partitions spilled to files, run by worker processes (one per core)."""
    folder = tmp_path / f"spill-{n}"
    folder.mkdir()

    def batches(table: pd.DataFrame, size: int = 997):
        return lambda: (table.iloc[i : i + size] for i in range(0, len(table), size))

    readers = {k: None if t is None else batches(t) for k, t in source.tables.items()}
    parts = spill_tables(readers, n, folder, cfg.data.null_values)
    return build_dataset_partitioned(parts, source, cfg, tmp_path / f"work-spilled-{n}")


def _same_frame(a: pd.DataFrame, b: pd.DataFrame) -> None:
    assert list(a.columns) == list(b.columns)
    assert len(a) == len(b)
    a = a.reset_index(drop=True)
    b = b.reset_index(drop=True)
    for col in a.columns:
        x, y = a[col], b[col]
        assert x.dtype == y.dtype, col
        if col in ("cutoff", "customer_id", "churned") or not pd.api.types.is_numeric_dtype(x):
            pd.testing.assert_series_equal(x, y, check_names=False, obj=col)
            continue
        xv = x.to_numpy(dtype=float, na_value=np.nan)
        yv = y.to_numpy(dtype=float, na_value=np.nan)
        np.testing.assert_array_equal(np.isnan(xv), np.isnan(yv), err_msg=col)
        np.testing.assert_allclose(xv, yv, rtol=1e-9, atol=0, equal_nan=True, err_msg=col)


def _check(cfg: RunConfig, source, tmp_path: Path, counts=(1, 2, 7), build=None) -> None:
    """The data set of every partition count equals the reference (``build`` defaults to the
    local engine's: ``build(cfg, source, n, tmp_path)``)."""
    expected, features, record = _reference(cfg, source)
    for n in counts:
        got = (build or _partitioned)(cfg, source, n, tmp_path)
        ds = got.dataset
        assert got.partitions == n
        assert got.features == features
        assert ds.split == expected.split
        assert ds.feature_names == expected.feature_names
        assert ds.dropped_columns == expected.dropped_columns
        for part in ("train", "validation", "test"):
            _same_frame(getattr(ds, part), getattr(expected, part))
        a, b = ds.training_sample, expected.training_sample
        assert a is not None and b is not None
        assert a.as_dict() == b.as_dict()
        pd.testing.assert_frame_equal(a.cells, b.cells)
        assert got.record.counts == record.counts
        assert got.record.customers == record.customers
        assert got.record.first_day == record.first_day
        got_digest = got.record.tables["transactions"].digest.hexdigest()
        assert got_digest == record.tables["transactions"].digest.hexdigest()


def test_cdnow_sample_any_partition_count(tmp_path: Path) -> None:
    cfg = _cdnow_cfg()
    _check(cfg, _read_source(cfg), tmp_path)


def test_cdnow_sample_with_training_cap(tmp_path: Path) -> None:
    cfg = _cdnow_cfg(max_training_rows=1500)
    _check(cfg, _read_source(cfg), tmp_path, counts=(3,))


def test_synthetic_with_events_auto_cutoffs(tmp_path: Path) -> None:
    cfg = _synthetic_cfg(300, max_training_rows=600)
    assert cfg.data.synthetic is not None and cfg.data.synthetic.with_events
    _check(cfg, _synthetic_source(cfg), tmp_path)


def _with_returns(n: int, every: int, days: int, share: float) -> tuple[RunConfig, object]:
    """Synthetic data of ``n`` customers with netted returns: every ``every``-th purchase is
    returned ``days`` later for ``share`` of its amount."""
    cfg = _synthetic_cfg(n, **({"max_training_rows": 600} if n >= 300 else {}))
    cfg = cfg.model_copy(update={"data": cfg.data.model_copy(update={"returns": "net"})})
    source = _synthetic_source(cfg)
    tx = source.tables["transactions"]
    returns = tx.iloc[::every].copy()
    returns["timestamp"] = returns["timestamp"] + pd.Timedelta(days=days)
    returns["amount"] = -returns["amount"] * share
    source.tables["transactions"] = pd.concat([tx, returns], ignore_index=True)
    return cfg, source


def test_spilled_partitions_in_worker_processes(tmp_path: Path) -> None:
    """Spilled parts go through the worker pool (with more than one core) and give the same."""
    cfg, source = _with_returns(300, every=29, days=15, share=1 / 3)
    _check(cfg, source, tmp_path, counts=(3,), build=_spilled)


def test_synthetic_netted_returns(tmp_path: Path) -> None:
    cfg, source = _with_returns(200, every=37, days=20, share=1 / 2)
    _check(cfg, source, tmp_path, counts=(3,))


@pytest.mark.parametrize("n", [2])
def test_leakage_check_runs_on_the_sample(tmp_path: Path, n: int) -> None:
    cfg = _cdnow_cfg(leakage_check_customers=50)
    got = _partitioned(cfg, _read_source(cfg), n, tmp_path)
    assert len(got.dataset.test)


def test_train_churn_builds_partitioned_on_the_local_engine(mlflow_tmp) -> None:
    from mlflow import MlflowClient

    from retain.jobs.train_churn import train_churn

    cfg = _cdnow_cfg(max_training_rows=5000).model_copy(update={"partitions": 3})
    messages: list[str] = []
    result = train_churn(cfg, progress=messages.append)
    assert any("3 customer partitions" in m for m in messages)
    assert any("5,000 of 11,847" in m for m in messages)
    run = MlflowClient(tracking_uri=mlflow_tmp.tracking_uri).get_run(result.run_id)
    assert run.data.params["engine.partitions"] == "3"
    assert run.data.metrics["training_rows_total"] == 11_847
    assert run.data.metrics["training_rows_used"] == 5000
    assert run.data.metrics["validation_rows"] == run.data.metrics["test_rows"] == 2357
