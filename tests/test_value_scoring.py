"""Scoring with the value model: both CLVs, the chosen one in ``clv``, value reasons, and the
same scores whatever the partition count."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from small_models import small_scoring_models, small_value_model

from retain.config import load_config, load_policy
from retain.engine.local import score_partitioned
from retain.engine.partition import MemoryParts, split_tables
from retain.explain.reasons import VALUE_REASON_COLUMNS
from retain.inputs import _RawInputs, validate_source
from retain.scoring import OUTPUT_COLUMNS, VALUE_COLUMNS, score_customers
from retain.synthetic import generate_synthetic

ROOT = Path(__file__).resolve().parents[1]
AS_OF = "2023-12-31"


@pytest.fixture(scope="module")
def world():
    data = generate_synthetic(700, "2022-01-01", AS_OF, seed=11, with_events=True)
    value = small_value_model(
        data.transactions,
        data.events,
        "2022-01-01",
        AS_OF,
        rounds=30,
        early_stopping_rounds=10,
    )
    models = small_scoring_models(data.transactions, data.events, "2023-03-31", AS_OF)
    models.clv.horizon = 4
    source = _RawInputs()
    source.tables = {"transactions": data.transactions, "events": data.events, "customers": None}
    cfg = load_config(ROOT / "configs" / "cdnow.yaml")
    inputs = validate_source(source, cfg, AS_OF)
    return source, cfg, inputs, models, value


def _score(inputs, models, policy):
    return score_customers(inputs.transactions, AS_OF, models, policy, events=inputs.events)


def test_both_clvs_and_the_chosen_one(world) -> None:
    _, _, inputs, models, value = world
    policy = load_policy(ROOT / "configs" / "policy.yaml")
    plain = _score(inputs, models, policy)
    models.value, models.value_version, models.chosen_method = value, "9", "ml"
    try:
        got = _score(inputs, models, policy)
    finally:
        models.value, models.value_version, models.chosen_method = None, "", "btyd"
    assert list(got.columns) == [*OUTPUT_COLUMNS, *VALUE_COLUMNS]
    np.testing.assert_allclose(got["clv_btyd"], plain["clv"], rtol=1e-12, equal_nan=True)
    np.testing.assert_array_equal(got["clv"].to_numpy(), got["clv_ml"].to_numpy())
    assert (got["clv_method"] == "ml").all() and (got["value_model_version"] == "9").all()
    assert got[list(VALUE_REASON_COLUMNS)].notna().all().all()
    assert got["value_reason_1"].str.contains("predicted value").all()
    # the tiers follow the chosen clv: the top-tier customers have the highest clv_ml
    vip = got["value_tier"] == "vip"
    assert vip.any() and got.loc[vip, "clv_ml"].min() >= got.loc[~vip, "clv_ml"].max()
    # a value model applied with BTYD chosen (auto, when the recorded test figures say so):
    # both CLVs, the BTYD one in clv; the choice is made at load, so scoring reads no figures
    models.value, models.chosen_method = value, "btyd"
    saved, value.holdout = value.holdout, {}
    try:
        auto = _score(inputs, models, policy)
    finally:
        models.value, value.holdout = None, saved
    np.testing.assert_allclose(auto["clv"], auto["clv_btyd"], rtol=0, equal_nan=True)
    np.testing.assert_array_equal(auto["clv_ml"].to_numpy(), got["clv_ml"].to_numpy())
    assert (auto["clv_method"] == "btyd").all()


def test_partitions_give_the_same_scores_with_the_value_model(world, tmp_path) -> None:
    source, cfg, inputs, models, value = world
    policy = load_policy(ROOT / "configs" / "policy.yaml")
    models.value, models.value_version, models.chosen_method = value, "9", "ml"
    try:
        want = _score(inputs, models, policy)
        for partitions in (1, 3):
            parts = MemoryParts(
                split_tables(source.tables, partitions, cfg.data.null_values, "none")
            )
            work = tmp_path / str(partitions)
            work.mkdir()
            got = score_partitioned(parts, source, cfg, AS_OF, models, policy, work).scores()
            assert list(got.columns) == list(want.columns)
            for col in want.columns:
                a, b = got[col], want[col]
                if pd.api.types.is_float_dtype(b.dtype):
                    np.testing.assert_allclose(
                        a.to_numpy(dtype=float, na_value=np.nan),
                        b.to_numpy(dtype=float, na_value=np.nan),
                        rtol=0,
                        atol=1e-9,
                        err_msg=col,
                    )
                else:
                    pd.testing.assert_series_equal(a, b, check_dtype=False, obj=col)
    finally:
        models.value, models.value_version, models.chosen_method = None, "", "btyd"


@pytest.mark.slow  # a Spark session and Python workers: about a minute on two cores
def test_spark_scores_with_the_value_model_equal_the_pandas_scores(world, spark) -> None:
    from retain.engine.spark import score_customers_spark

    _, _, inputs, models, value = world
    policy = load_policy(ROOT / "configs" / "policy.yaml")
    models.value, models.value_version, models.chosen_method = value, "9", "ml"
    try:
        want = _score(inputs, models, policy)
        got = score_customers_spark(
            spark, inputs.transactions, AS_OF, models, policy, events=inputs.events, partitions=3
        )
    finally:
        models.value, models.value_version, models.chosen_method = None, "", "btyd"
    assert list(got.columns) == list(want.columns)
    for col in want.columns:
        if pd.api.types.is_float_dtype(want[col].dtype):
            np.testing.assert_allclose(
                got[col].to_numpy(dtype=float),
                want[col].to_numpy(dtype=float),
                atol=1e-9,
                rtol=0,
                equal_nan=True,
                err_msg=col,
            )
        else:
            pd.testing.assert_series_equal(got[col], want[col], check_dtype=False, obj=col)
