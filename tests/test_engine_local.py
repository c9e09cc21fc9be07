"""The local engine: scoring one customer partition at a time gives the whole-population scores.

The reference is :func:`retain.scoring.score_customers` on the whole validated population;
the engine validates, featurises, scores and decides budgets partition by partition, with the
global values (RFM quintiles, the purchase-model fit, tier cut points, budgets, five-degree
ranks) reduced from the partitions. The results must not depend on the partition count.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from small_models import small_scoring_models

from retain.config import load_config, load_policy
from retain.engine.local import score_partitioned
from retain.engine.partition import MemoryParts, customer_partition, split_tables
from retain.features.segments import quintile_score
from retain.inputs import _RawInputs, _read_source, record_inputs, validate_source
from retain.scoring import score_customers
from retain.synthetic import generate_synthetic

ROOT = Path(__file__).resolve().parents[1]
POLICY = ROOT / "configs" / "policy.yaml"


@pytest.fixture(scope="module")
def synthetic_world():
    data = generate_synthetic(900, "2022-01-01", "2023-12-31", seed=5, with_events=True)
    models = small_scoring_models(data.transactions, data.events, "2023-03-31", "2023-12-31")
    customers = pd.DataFrame(
        {
            "customer_id": pd.array(["p_signup", "p_future", data.transactions.iloc[0, 0]]),
            "signup_date": pd.to_datetime(["2023-06-01", "2024-06-01", "2022-01-05"]),
        }
    )
    source = _RawInputs()
    source.tables = {
        "transactions": data.transactions,
        "events": data.events,
        "customers": customers,
    }
    cfg = load_config(ROOT / "configs" / "cdnow.yaml")
    return source, cfg, models, "2023-12-31"


@pytest.fixture(scope="module")
def cdnow_world():
    cfg = load_config(ROOT / "configs" / "cdnow.yaml")
    source = _read_source(cfg)
    inputs = validate_source(source, cfg, "1998-06-30")
    models = small_scoring_models(inputs.transactions, None, "1997-12-31", "1998-06-30")
    return source, cfg, models, "1998-06-30"


def _budget_policy():
    policy = load_policy(POLICY)
    budget = {"email": {"max_contacts": 40}, "phone": {"max_cost": 60.0}}
    return policy.model_copy(
        update={
            "budget": type(policy).model_validate({**policy.model_dump(), "budget": budget}).budget
        }
    )


def _reference(source, cfg, models, as_of, policy):
    inputs = validate_source(source, cfg, as_of)
    return score_customers(
        inputs.transactions,
        as_of,
        models,
        policy,
        events=inputs.events,
        customers=inputs.customers,
    ), inputs


def _assert_same(got: pd.DataFrame, want: pd.DataFrame) -> None:
    assert list(got.columns) == list(want.columns)
    assert got["customer_id"].is_unique
    pd.testing.assert_series_equal(got["customer_id"], want["customer_id"])
    for col in want.columns:
        a, b = got[col], want[col]
        if pd.api.types.is_float_dtype(b.dtype):
            x = a.to_numpy(dtype=float, na_value=np.nan)
            y = b.to_numpy(dtype=float, na_value=np.nan)
            np.testing.assert_array_equal(np.isnan(x), np.isnan(y), err_msg=col)
            np.testing.assert_allclose(x, y, rtol=0, atol=1e-9, err_msg=col)
        else:
            pd.testing.assert_series_equal(a, b, check_dtype=False, obj=col)


@pytest.mark.parametrize("world", ["synthetic_world", "cdnow_world"])
@pytest.mark.parametrize("budget", [False, True])
def test_partitioned_scores_equal_whole_population_scores(world, budget, request, tmp_path) -> None:
    source, cfg, models, as_of = request.getfixturevalue(world)
    policy = _budget_policy() if budget else load_policy(POLICY)
    want, inputs = _reference(source, cfg, models, as_of, policy)
    if budget:
        assert (want["retention_action"] == "none (over budget)").any()
    for partitions in (1, 2, 7):
        parts = MemoryParts(split_tables(source.tables, partitions, cfg.data.null_values, "none"))
        work = tmp_path / str(partitions)
        work.mkdir()
        run = score_partitioned(parts, source, cfg, as_of, models, policy, work)
        _assert_same(run.scores(), want)
        # accounting: rows in = used + rejected, each customer once in scores or rejects
        assert run.balance["balanced"]
        assert run.record.counts == inputs.counts
        assert run.balance["customers_scored"] == len(want)
        # the same inputs are the same data, however split
        whole = record_inputs(inputs)
        for name, rec in whole.tables.items():
            assert run.record.tables[name].digest.hexdigest() == rec.digest.hexdigest()
        assert (run.record.first_day, run.record.customers) == (whole.first_day, whole.customers)
        rejects = run.record.rejects
        assert len(rejects) == len(inputs.rejects)
        key = ["table", "row_number", "reason"]
        got_rejects = rejects[key].sort_values(key).reset_index(drop=True)
        want_rejects = inputs.rejects[key].sort_values(key).reset_index(drop=True)
        pd.testing.assert_frame_equal(got_rejects, want_rejects, check_dtype=False)


def test_every_customer_lands_in_one_partition_whatever_its_spelling() -> None:
    ids = pd.Series([" 17850", "17850.0", "17850", "A1 ", "A1", None, "NULL"], dtype="string")
    which = customer_partition(ids, 7, ("NULL",), "integer_text")
    assert len(set(which[:3])) == 1 and which[3] == which[4]
    tables = {"transactions": pd.DataFrame({"customer_id": ids, "amount": np.arange(7.0)})}
    parts = split_tables(tables, 3, ("NULL",), "integer_text")
    rows = np.sort(np.concatenate([p.rows["transactions"] for p in parts]))
    np.testing.assert_array_equal(rows, np.arange(7))


def test_quintile_scores_from_cut_points_equal_the_rank_definition() -> None:
    rng = np.random.default_rng(0)
    for trial in range(400):
        n = int(rng.integers(1, 60))
        v = rng.integers(0, 6, n).astype(float) if trial % 2 else rng.normal(size=n)
        for higher in (True, False):
            w = v if higher else -v
            below = np.searchsorted(np.sort(w), w, side="left")
            np.testing.assert_array_equal(
                quintile_score(v, higher), np.minimum(1 + (5 * below) // n, 5)
            )


def test_percentile_ranks_from_value_counts_equal_pandas_rank() -> None:
    from retain.features.segments import value_counts
    from retain.policy import percentile_rank

    rng = np.random.default_rng(1)
    for trial in range(300):
        n = int(rng.integers(1, 50))
        v = rng.integers(0, 5, n).astype(float) if trial % 2 else rng.normal(size=n)
        v[rng.random(n) < 0.2] = np.nan
        got = percentile_rank(v, *value_counts(v[~np.isnan(v)]))
        np.testing.assert_array_equal(got, pd.Series(v).rank(pct=True).to_numpy())
