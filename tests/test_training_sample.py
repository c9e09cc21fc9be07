"""churn.max_training_rows: the stratified, seeded, order-independent sample of training rows.

The sampling tests run on a small stacked frame (four cutoffs, churn rates from 0.2 to 0.9);
the pipeline tests on the CDNOW sample (2,357 customers, six training cutoffs: 11,847 training
rows), where a cap of 5,000 rows must leave the validation and test rows, the calibrator's
input and the logged counts as they should be.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from retain.churn.calibration import fit_calibration
from retain.churn.dataset import LABEL, feature_matrix
from retain.churn.sampling import (
    allocate,
    cap_training_rows,
    cell_counts,
    row_hash,
    stratified_sample,
)
from retain.churn.train import fit_and_evaluate, prepare_dataset
from retain.config import load_config
from retain.contracts import CUSTOMER_ID
from retain.datasets import CDNOW_OBSERVED_UNTIL

CUTOFFS = pd.to_datetime(["2023-01-31", "2023-02-28", "2023-03-31", "2023-04-30"])
CHURN_RATES = (0.2, 0.5, 0.7, 0.9)


def _stacked(customers: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Snapshot-shaped rows: every customer at every cutoff, labels at a per-cutoff rate."""
    rng = np.random.default_rng(seed)
    parts = []
    for cutoff, rate in zip(CUTOFFS, CHURN_RATES, strict=True):
        n = customers - customers // 20 * len(parts)  # later cutoffs: fewer customers
        parts.append(
            pd.DataFrame(
                {
                    "cutoff": cutoff,
                    CUSTOMER_ID: [f"C{i:05d}" for i in range(n)],
                    "x": rng.normal(size=n).astype(np.float32),
                    LABEL: (rng.random(n) < rate).astype(np.int8),
                }
            )
        )
    return pd.concat(parts, ignore_index=True)


def _keys(frame: pd.DataFrame) -> set[tuple[pd.Timestamp, str]]:
    return set(zip(frame["cutoff"], frame[CUSTOMER_ID], strict=True))


@pytest.mark.parametrize("cap", [1, 7, 333, 1000, 3699])
def test_exact_total_and_every_cell_within_one_row_of_its_share(cap):
    frame = _stacked()
    sample = stratified_sample(frame, cap, seed=3)
    assert len(sample) == cap
    assert not sample.duplicated(["cutoff", CUSTOMER_ID]).any()
    counts = cell_counts(frame, sample)
    assert len(counts) == 8 and counts["rows"].sum() == len(frame)
    share = cap * counts["rows"] / len(frame)
    assert ((counts["kept"] - share).abs() < 1).all()
    assert (counts["kept"] <= counts["rows"]).all()
    # the kept rows are rows of the input, unchanged and in the input's order
    assert sample.index.is_monotonic_increasing
    pd.testing.assert_frame_equal(sample, frame.loc[sample.index])


def test_the_same_seed_gives_the_same_sample_and_another_seed_another():
    frame = _stacked()
    a = stratified_sample(frame, 500, seed=11)
    b = stratified_sample(frame.copy(), 500, seed=11)
    pd.testing.assert_frame_equal(a, b)
    c = stratified_sample(frame, 500, seed=12)
    assert len(c) == 500
    # a different seed: other rows, with the same counts per cell (the counts are the shares)
    assert len(_keys(a) & _keys(c)) < 400
    pd.testing.assert_frame_equal(cell_counts(frame, a), cell_counts(frame, c))


def test_which_rows_are_kept_does_not_depend_on_the_row_order():
    frame = _stacked()
    shuffled = frame.sample(frac=1.0, random_state=5).reset_index(drop=True)
    assert not shuffled[CUSTOMER_ID].equals(frame[CUSTOMER_ID])
    a = stratified_sample(frame, 777, seed=2)
    b = stratified_sample(shuffled, 777, seed=2)
    assert _keys(a) == _keys(b)
    # also with the customer ids stored as another dtype (Arrow strings vs Python objects)
    arrow = shuffled.astype({CUSTOMER_ID: "string[pyarrow]"})
    objects = frame.astype({CUSTOMER_ID: object})
    assert _keys(stratified_sample(arrow, 777, seed=2)) == _keys(
        stratified_sample(objects, 777, seed=2)
    )


def test_hash_ties_are_broken_by_the_key_not_the_row_order(monkeypatch):
    import retain.churn.sampling as sampling

    frame = _stacked(200)
    monkeypatch.setattr(sampling, "row_hash", lambda f, seed, key: np.zeros(len(f), np.uint64))
    a = stratified_sample(frame, 100, seed=0)
    b = stratified_sample(frame.iloc[::-1], 100, seed=0)
    assert _keys(a) == _keys(b) and len(a) == 100


def test_row_hash_depends_on_the_key_and_the_seed_only():
    frame = _stacked(300)
    h = row_hash(frame, 1)
    assert np.unique(h).size == len(frame)
    moved = frame.iloc[::-1].reset_index(drop=True)
    np.testing.assert_array_equal(row_hash(moved, 1), h[::-1])
    assert (row_hash(frame, 2) != h).all()


def test_a_cap_at_or_above_the_rows_or_none_returns_the_frame_unchanged():
    frame = _stacked(100)
    for cap in (None, len(frame), len(frame) + 1, 10**9):
        assert stratified_sample(frame, cap, seed=0) is frame
    with pytest.raises(ValueError, match="positive"):
        stratified_sample(frame, 0, seed=0)


def test_allocate_known_answers():
    # shares 2.5, 2.5, 5 of 10 -> floors 2, 2, 5 and the one missing row to the earlier tie
    assert allocate([25, 25, 50], 10).tolist() == [3, 2, 5]
    assert allocate([1, 1, 98], 3).tolist() == [0, 0, 3]  # remainders 0.03, 0.03, 0.94
    assert allocate([0, 4, 6], 5).tolist() == [0, 2, 3]
    assert allocate([3, 4], 100).tolist() == [3, 4]


@given(
    st.lists(st.integers(0, 10_000), min_size=1, max_size=20).filter(lambda c: sum(c) > 0),
    st.floats(0.0, 1.0),
)
def test_allocate_sums_to_the_cap_and_stays_within_one_row_of_each_share(counts, fraction):
    total = sum(counts)
    cap = max(1, round(fraction * total))
    kept = allocate(counts, cap)
    assert kept.sum() == min(cap, total)
    assert (kept <= np.asarray(counts)).all() and (kept >= 0).all()
    if cap < total:
        exact = np.asarray(counts) * cap / total
        assert (np.abs(kept - exact) < 1).all()


# ------------------------------------------------------------------ in the training flow


def _cdnow_cfg(**overrides):
    base = {
        "data.source": "cdnow_sample",
        "churn.leakage_check_customers": 100,
        "churn.baseline_models": ["bgnbd"],
        "churn.lightgbm": {"min_data_in_leaf": 100, "num_threads": 1},
    }
    base.update(overrides)
    return load_config("configs/cdnow.yaml", base)


@pytest.fixture(scope="module")
def cdnow_datasets(cdnow_sample):
    full_cfg = _cdnow_cfg()
    capped_cfg = _cdnow_cfg(**{"churn.max_training_rows": 5000})

    def build(cfg):
        return prepare_dataset(
            cdnow_sample,
            cfg.churn,
            CDNOW_OBSERVED_UNTIL,
            feature_config=cfg.features,
            seed=cfg.seed,
        )

    return full_cfg, build(full_cfg), capped_cfg, build(capped_cfg)


def test_only_training_rows_are_sampled(cdnow_datasets):
    _, full, cfg, capped = cdnow_datasets
    assert len(full.train) == 11_847 and full.training_sample is not None
    assert not full.training_sample.sampled
    assert full.counts()["training_rows_total"] == full.counts()["training_rows_used"] == 11_847
    assert len(capped.train) == 5000
    pd.testing.assert_frame_equal(capped.validation, full.validation)
    pd.testing.assert_frame_equal(capped.test, full.test)
    sample = capped.training_sample
    assert sample is not None and sample.sampled and sample.seed == cfg.seed
    assert (sample.rows_total, sample.rows_used) == (11_847, 5000)
    counts = capped.counts()
    assert counts["training_rows_total"] == 11_847 and counts["training_rows_used"] == 5000
    assert counts["validation_rows"] == counts["test_rows"] == 2357
    # the sample is the pure function's, from the config's seed
    expected = stratified_sample(full.train, 5000, cfg.seed)
    pd.testing.assert_frame_equal(capped.train, expected)
    # the churn rate of the sample is the full rate to within the rounding of 12 cells
    assert abs(capped.train[LABEL].mean() - full.train[LABEL].mean()) < 12 / 5000
    # capping an already built data set keeps validation and test as the same frames
    again = cap_training_rows(full, 5000, cfg.seed)
    assert again.validation is full.validation and again.test is full.test


def test_capped_training_calibrates_on_every_validation_row(cdnow_datasets):
    _, _, cfg, capped = cdnow_datasets
    fit = fit_and_evaluate(capped, cfg.churn, seed=cfg.seed)
    model = fit.model
    raw = model.booster.predict(
        feature_matrix(capped.validation, model.feature_names), raw_score=True
    )
    refit = fit_calibration(raw, capped.validation[LABEL].to_numpy(), cfg.churn.calibration)
    assert refit == model.calibrator
    assert fit.metrics["training_rows_used"] == 5000 and fit.metrics["test_rows"] == 2357
    # balanced class weights come from the rows the trees learnt from
    y = capped.train[LABEL].to_numpy()
    assert fit.metrics["scale_pos_weight"] == pytest.approx((y == 0).sum() / (y == 1).sum())


def test_a_capped_training_run_logs_the_cap_and_the_counts(mlflow_tmp):
    from mlflow import MlflowClient

    from retain.jobs.train_churn import train_churn

    cfg = _cdnow_cfg(**{"churn.max_training_rows": 5000})
    messages: list[str] = []
    result = train_churn(cfg, progress=messages.append)
    assert any("5,000 of 11,847" in m for m in messages)
    client = MlflowClient(tracking_uri=mlflow_tmp.tracking_uri)
    run = client.get_run(result.run_id)
    assert run.data.params["churn.max_training_rows"] == "5000"
    assert run.data.metrics["training_rows_total"] == 11_847
    assert run.data.metrics["training_rows_used"] == 5000
    assert run.data.metrics["train_rows"] == 5000
    assert run.data.metrics["validation_rows"] == run.data.metrics["test_rows"] == 2357
    path = client.download_artifacts(
        result.run_id, "churn_model/dataset.json", str(mlflow_tmp.artifact_root.parent / "dl")
    )
    logged = json.loads(Path(path).read_text())["training_sample"]
    assert logged["max_training_rows"] == 5000 and logged["seed"] == cfg.seed
    cells = pd.DataFrame(logged["cells"])
    assert len(cells) == 12 and set(cells["churned"]) == {0, 1}
    assert cells["rows"].sum() == 11_847 and cells["kept"].sum() == 5000
    assert ((cells["kept"] - 5000 * cells["rows"] / 11_847).abs() < 1).all()
