"""Scoring on Spark gives exactly the scores of :func:`retain.scoring.score_customers`.

On the CDNOW sample (a churn model reading the purchase-model features, so the population's
BG/NBD fit is broadcast) and on synthetic data with events and prospects (a small budget, so
the budget stream decides), for a few partition counts; with a reference profile, the same
drift counts too.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from small_models import small_scoring_models

from retain.config import PolicyConfig, load_config, load_policy
from retain.contracts import DataError
from retain.drift import DriftCounts, fit_profile
from retain.engine.local import partition_source, score_partitioned
from retain.engine.spark import _task_errors, score_customers_spark, score_source_spark
from retain.features.build import build_features
from retain.scoring import ScoringModels, model_features, score_customers
from retain.synthetic import generate_synthetic

POLICY = Path(__file__).resolve().parents[1] / "configs" / "policy.yaml"
CONFIG = Path(__file__).resolve().parents[1] / "configs" / "synthetic.yaml"


def _with_budget(policy: PolicyConfig, budget: dict[str, dict[str, float]]) -> PolicyConfig:
    return PolicyConfig.model_validate({**policy.model_dump(), "budget": budget})


def assert_same_scores(got: pd.DataFrame, expected: pd.DataFrame) -> None:
    """Same columns, dtypes and customers; numbers to 1e-9 with NaN in the same places."""
    assert list(got.columns) == list(expected.columns)
    assert got.dtypes.to_dict() == expected.dtypes.to_dict()
    assert isinstance(got.index, pd.RangeIndex) and len(got) == len(expected)
    assert got["customer_id"].is_unique
    assert got["customer_id"].tolist() == expected["customer_id"].tolist()
    for col in expected.columns:
        a, b = expected[col], got[col]
        if pd.api.types.is_float_dtype(a.dtype):
            x, y = a.to_numpy(dtype=float), b.to_numpy(dtype=float)
            np.testing.assert_array_equal(np.isnan(y), np.isnan(x), err_msg=col)
            np.testing.assert_allclose(y, x, rtol=0, atol=1e-9, equal_nan=True, err_msg=col)
        else:
            pd.testing.assert_series_equal(b, a, obj=col)


@pytest.fixture(scope="module")
def cdnow_case(cdnow_sample: pd.DataFrame) -> tuple[pd.DataFrame, ScoringModels]:
    tx = cdnow_sample
    models = small_scoring_models(
        tx,
        None,
        "1997-12-31",
        "1998-06-30",
        extra_features=("p_alive", "expected_purchases_horizon"),
        versions=("3", "7"),
    )
    return tx, models


@pytest.fixture(scope="module")
def synthetic_case() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, ScoringModels]:
    data = generate_synthetic(400, "2022-01-01", "2023-12-31", seed=5, with_events=True)
    tx, events = data.transactions, data.events
    models = small_scoring_models(tx, events, "2023-03-31", "2023-12-31", versions=("3", "7"))
    # prospects: known from a sign-up or an event, without a purchase
    customers = pd.DataFrame(
        {
            "customer_id": pd.array(["p_signup", "p_future", tx.iloc[0, 0]], dtype="string"),
            "signup_date": pd.to_datetime(["2023-06-01", "2024-06-01", "2022-01-05"]),
        }
    )
    extra = pd.DataFrame(
        {
            "customer_id": pd.array(["p_event"], dtype="string"),
            "timestamp": pd.to_datetime(["2023-10-01"]),
            "event_type": pd.array(["session"], dtype="string"),
            "value": [np.nan],
        }
    )
    events = pd.concat([events, extra[events.columns]], ignore_index=True)
    return tx, events, customers, models


def _with_profile(models: ScoringModels, tx: pd.DataFrame, events: pd.DataFrame) -> ScoringModels:
    """The models with a reference profile of the training cutoff's buyers."""
    inputs = model_features(build_features(tx, "2023-03-31", events), models)
    prob = models.churn.predict_proba(inputs)
    profile = fit_profile(inputs, models.feature_names, prob, "2023-03-31")
    churn = dataclasses.replace(models.churn, reference_profile=profile)
    return dataclasses.replace(models, churn=churn)


def _plain(counts: DriftCounts) -> dict:
    return {**counts.to_dict(), "counts": {k: v.tolist() for k, v in counts.counts.items()}}


@pytest.mark.parametrize("budget", [{}, {"email": {"max_contacts": 150}}])
def test_cdnow_scores_on_spark_equal_the_pandas_scores(spark, cdnow_case, budget) -> None:
    tx, models = cdnow_case
    policy = _with_budget(load_policy(POLICY), budget)
    expected = score_customers(tx, "1998-06-30", models, policy)
    none: list[DriftCounts] = []  # a model without a reference profile: no drift counts
    got = score_customers_spark(spark, tx, "1998-06-30", models, policy, partitions=4, drift=none)
    assert_same_scores(got, expected)
    assert none == []
    assert got["p_alive"].notna().all()


def test_budget_decisions_stream_through_the_driver_in_batches(
    spark, cdnow_case, monkeypatch
) -> None:
    """The contacted customers reach the driver a batch at a time, from several sorted files."""
    import retain.engine.spark as engine
    from retain.policy import BudgetRun

    tx, models = cdnow_case
    budget = {"email": {"max_contacts": 150}, "phone": {"max_cost": 40.0}}
    policy = _with_budget(load_policy(POLICY), budget)
    expected = score_customers(tx, "1998-06-30", models, policy)
    assert (expected["retention_action"] == "none (over budget)").any()
    sizes: list[int] = []
    decide = BudgetRun.decide

    def counted(self, channel, cost, ev):
        sizes.append(len(channel))
        return decide(self, channel, cost, ev)

    monkeypatch.setattr(engine, "_STREAM_ROWS", 97)
    monkeypatch.setattr(BudgetRun, "decide", counted)
    got = score_customers_spark(spark, tx, "1998-06-30", models, policy, partitions=5)
    assert_same_scores(got, expected)
    assert len(sizes) > 2 and max(sizes) <= 97


def test_synthetic_scores_with_events_prospects_and_budget_on_spark(spark, synthetic_case) -> None:
    """The same scores, and the same drift counts as the one-part run."""
    tx, events, customers, plain_models = synthetic_case
    models = _with_profile(plain_models, tx, events)
    policy = _with_budget(
        load_policy(POLICY), {"email": {"max_contacts": 10}, "phone": {"max_cost": 20.0}}
    )
    whole: list[DriftCounts] = []
    expected = score_customers(
        tx, "2023-12-31", models, policy, events=events, customers=customers, drift=whole
    )
    assert (expected["retention_action"] == "none (over budget)").any()
    assert (expected["lifecycle_stage"] == "prospect").sum() == 2
    assert len(whole) == 1 and whole[0].n == (expected["lifecycle_stage"] != "prospect").sum()
    for partitions in (3, 7):
        drift: list[DriftCounts] = []
        got = score_customers_spark(
            spark,
            tx,
            "2023-12-31",
            models,
            policy,
            events=events,
            customers=customers,
            partitions=partitions,
            chunk_size=50,
            drift=drift,
        )
        assert_same_scores(got, expected)
        assert len(drift) == 1  # the tasks' counts, summed on the driver
        assert _plain(drift[0]) == _plain(whole[0])


@pytest.mark.slow
def test_spark_engine_from_the_generated_source_equals_the_local_engine(
    spark, synthetic_case, tmp_path: Path
) -> None:
    """The embedded source's raw tables (transactions, events, customers) on Spark: the
    same scores, inputs' record and customer balance as the local engine's partitions."""
    _tx, _events, _customers, models = synthetic_case
    cfg = load_config(
        CONFIG,
        {
            "data.source": "synthetic",
            "data.synthetic": {
                "n_customers": 400,
                "start": "2022-01-01",
                "end": "2023-12-31",
                "seed": 5,
                "with_events": True,
            },
        },
    )
    policy = _with_budget(load_policy(POLICY), {"email": {"max_contacts": 10}})
    (tmp_path / "local").mkdir()
    source, parts = partition_source(cfg, 3, tmp_path / "local")
    local = score_partitioned(
        parts, source, cfg, "2023-12-31", models, policy, tmp_path / "local", chunk_size=50
    )
    got = score_source_spark(
        spark, cfg, "2023-12-31", models, policy, tmp_path / "spark", partitions=3, chunk_size=50
    )
    assert_same_scores(got.scores(), local.scores())
    assert got.balance == local.balance and got.balance["balanced"]
    assert got.record.counts == local.record.counts
    assert got.record.first_day == local.record.first_day
    assert got.record.customers == local.record.customers
    for name, table in local.record.tables.items():
        assert got.record.tables[name].digest.hexdigest() == table.digest.hexdigest(), name
    key = ["table", "row_number", "reason"]
    pd.testing.assert_frame_equal(
        got.record.rejects[key].sort_values(key, ignore_index=True),
        local.record.rejects[key].sort_values(key, ignore_index=True),
    )


def test_a_data_error_raised_in_a_task_is_raised_on_the_driver() -> None:
    failure = RuntimeError(
        "Traceback (most recent call last):\n  ...\n"
        "retain.contracts.DataError: scores hold non-finite values in clv\n\tat org.apache"
    )
    with pytest.raises(DataError, match="^scores hold non-finite values in clv$"):
        with _task_errors():
            raise failure
