"""Scoring on a small synthetic population: every customer once, valid values, chunk-invariant."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from small_models import small_scoring_models

from retain.churn.calibration import apply_calibration
from retain.churn.dataset import feature_matrix
from retain.config import STAGES, TIERS, load_policy
from retain.explain import REASON_COLUMNS
from retain.features.build import build_features
from retain.policy import FIVE_DEGREES
from retain.scoring import (
    OUTPUT_COLUMNS,
    RISK_STAGES,
    known_prospects,
    last_purchase_gap_days,
    model_features,
    score_customers,
)
from retain.synthetic import generate_synthetic

POLICY = Path(__file__).resolve().parents[1] / "configs" / "policy.yaml"
AS_OF = pd.Timestamp("2023-12-31")


@pytest.fixture(scope="module")
def world():
    data = generate_synthetic(800, "2022-01-01", "2023-12-31", seed=11, with_events=True)
    tx, events = data.transactions, data.events
    models = small_scoring_models(tx, events, "2023-03-31", AS_OF, rounds=40, versions=("3", "7"))
    # prospects: known from events or sign-up, no purchase
    customers = pd.DataFrame(
        {
            "customer_id": pd.array(["p_signup", "p_future", data.transactions.iloc[0, 0]]),
            "signup_date": pd.to_datetime(["2023-06-01", "2024-06-01", "2022-01-05"]),
        }
    )
    extra_event = pd.DataFrame(
        {
            "customer_id": pd.array(["p_event"], dtype="string"),
            "timestamp": pd.to_datetime(["2023-10-01"]),
            "event_type": pd.array(["session"], dtype="string"),
            "value": [np.nan],
        }
    )
    events = pd.concat([events, extra_event[events.columns]], ignore_index=True)
    return tx, events, customers, models


def test_scores_every_customer_once_with_valid_values(world) -> None:
    tx, events, customers, models = world
    policy = load_policy(POLICY)
    timings: dict[str, float] = {}
    out = score_customers(
        tx,
        AS_OF,
        models,
        policy,
        events=events,
        customers=customers,
        chunk_size=150,
        timings=timings,
    )
    assert list(out.columns) == list(OUTPUT_COLUMNS)
    buyers = pd.Index(tx.loc[tx["timestamp"] < AS_OF + pd.Timedelta(days=1), "customer_id"])
    expected = set(buyers.unique()) | {"p_signup", "p_event"}
    assert out["customer_id"].is_unique
    assert set(out["customer_id"]) == expected  # p_future signed up after the as-of date
    assert set(timings) == {"features", "clv", "churn_and_reasons", "policy"}

    prospects = out[out["lifecycle_stage"] == "prospect"]
    assert set(prospects["customer_id"]) == {"p_signup", "p_event"}
    assert prospects[["frequency", "clv", "churn_probability"]].isna().all().all()
    bought = out[out["lifecycle_stage"] != "prospect"]
    assert bought["churn_probability"].between(0, 1).all()
    assert bought["p_alive"].between(0, 1).all() and (bought["clv"] >= 0).all()
    assert bought["reason_1"].notna().all()
    assert set(out["lifecycle_stage"]) <= set(STAGES)
    assert set(out["value_tier"]) <= set(TIERS)
    assert out["stage_reason"].notna().all() and out["retention_action"].notna().all()
    assert (out["as_of"] == AS_OF).all()
    assert (out["clv_model_version"] == "3").all() and (out["churn_model_version"] == "7").all()
    ev = bought["expected_value_saved"]
    assert np.isfinite(ev).all()
    contacted = out["action_priority"].notna()
    assert sorted(out.loc[contacted, "action_priority"]) == list(range(1, contacted.sum() + 1))
    # engagement data exists, so the engagement degree is filled; it is a 0-1 score
    assert out.loc[bought.index, "engagement"].between(0, 1).all()
    assert set(FIVE_DEGREES) <= set(out.columns)


def test_churn_probability_and_reasons_match_the_model(world) -> None:
    tx, events, customers, models = world
    out = score_customers(tx, AS_OF, models, load_policy(POLICY), events=events, chunk_size=97)
    feats = model_features(build_features(tx, AS_OF, events), models)
    X = feature_matrix(feats, models.feature_names)
    expected = apply_calibration(models.calibrator, models.booster.predict(X, raw_score=True))
    got = out.set_index("customer_id").loc[feats.index, "churn_probability"]
    np.testing.assert_allclose(got.to_numpy(), expected, atol=1e-12)
    contrib = models.booster.predict(X, pred_contrib=True)
    top = np.abs(contrib[:, :-1]).argmax(axis=1)
    pos = contrib[:, :-1].argmax(axis=1)
    by_id = out.set_index("customer_id").loc[feats.index]
    first = by_id["reason_1"]
    risk = by_id["lifecycle_stage"].isin(RISK_STAGES).to_numpy()
    assert risk.any() and not risk.all()
    for i in range(0, len(feats), 10):
        # risk stages: the largest factor raising the risk; others: the largest either way
        j = pos[i] if risk[i] and contrib[i, pos[i]] > 0 else top[i]
        direction = "raises" if contrib[i, j] > 0 else "lowers"
        assert (
            f"{direction} churn risk compared with a typical customer ({contrib[i, j]:+.2f})"
            in first.iloc[i]
        )


def test_result_does_not_depend_on_chunk_size(world) -> None:
    tx, events, customers, models = world
    policy = load_policy(POLICY)
    a = score_customers(tx, AS_OF, models, policy, events=events, chunk_size=10_000)
    b = score_customers(tx, AS_OF, models, policy, events=events, chunk_size=33)
    pd.testing.assert_frame_equal(a, b)


def test_last_purchase_gap_and_prospect_helpers() -> None:
    tx = pd.DataFrame(
        {
            "customer_id": pd.array(["a", "a", "a", "b", "c"], dtype="string"),
            "timestamp": pd.to_datetime(
                ["2024-01-01", "2024-01-11", "2024-03-01", "2024-02-01", "2024-05-01"]
            ),
            "amount": [1.0, 2.0, 3.0, 4.0, 5.0],
        }
    )
    gaps = last_purchase_gap_days(tx, "2024-03-31")
    assert gaps["a"] == 50 and np.isnan(gaps["b"]) and "c" not in gaps.index
    events = pd.DataFrame(
        {
            "customer_id": pd.array(["b", "x", "y"], dtype="string"),
            "timestamp": pd.to_datetime(
                ["2024-01-01 00:00", "2024-03-31 23:00", "2024-04-01 00:00"]
            ),
        }
    )
    prospects = known_prospects(events, None, "2024-03-31", pd.Index(["a", "b"]))
    assert prospects.tolist() == ["x"]


def test_reason_columns_are_strings(world) -> None:
    tx, events, customers, models = world
    out = score_customers(tx, AS_OF, models, load_policy(POLICY), events=events)
    for col in (*REASON_COLUMNS, "stage_reason", "lifecycle_stage", "retention_action"):
        assert isinstance(out[col].dtype, pd.StringDtype)


def test_failed_write_leaves_previous_output_intact(world, tmp_path, monkeypatch) -> None:
    import retain.jobs.score as job
    from retain.io import OutputError, empty_rejects

    tx, events, customers, models = world
    out = score_customers(tx, AS_OF, models, load_policy(POLICY), events=events)
    target = tmp_path / "scores"
    manifest = {"rows_out": len(out)}
    files = job.write_outputs(out, empty_rejects(), manifest, target, csv=True)
    assert [f.name for f in files] == [
        "scores.parquet",
        "scores.csv",
        "rejects.parquet",
        "manifest.json",
    ]
    before = {p.name: p.read_bytes() for p in target.iterdir()}

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(job, "write_json_atomic", boom)  # fails after the scores are written
    with pytest.raises(OutputError, match="disk full"):
        job.write_outputs(out.head(5), empty_rejects(), {"rows_out": 5}, target, csv=True)
    after = {p.name: p.read_bytes() for p in target.iterdir()}
    assert after == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [".retain.lock", "scores"]  # no temp
    assert len(pd.read_parquet(target / "scores.parquet")) == len(out)


def test_manifest_balances_customers_with_rejects(world) -> None:
    from retain.config import load_config
    from retain.io import Inputs, row_counts, validate_transactions
    from retain.jobs.score import build_manifest

    tx, events, customers, models = world
    raw = pd.DataFrame(
        {
            "customer_id": pd.array(
                [*tx["customer_id"].iloc[:50], "bad_only", "bad_only", None], dtype="string"
            ),
            "timestamp": [*tx["timestamp"].astype(str).iloc[:50], "not a date", "2023-01-01", ""],
            "amount": [*tx["amount"].astype(str).iloc[:50], "1.0", "x", "2.0"],
            "quantity": [*tx["quantity"].astype(str).iloc[:50], "1", "1", "1"],
        }
    )
    clean, rejects = validate_transactions(raw, AS_OF)
    counts = {"transactions": row_counts("transactions", len(raw), clean, rejects)}
    inputs = Inputs(clean, events, None, rejects, counts)
    out = score_customers(clean, AS_OF, models, load_policy(POLICY), events=events)
    cfg = load_config(Path(__file__).resolve().parents[1] / "configs" / "synthetic.yaml")
    manifest = build_manifest(cfg, AS_OF, inputs, out, {}, {"features": 1.0})
    c = manifest["customers"]
    assert c["balanced"]
    assert c["customers_rejected"] == 1  # 'bad_only': every row rejected; the id-less row is
    assert c["customers_in"] == c["customers_scored"] + 1  # counted in rows only
    assert sum(c["rejected_by_reason"].values()) == 1
    rows = manifest["rejected_rows_by_reason"]["transactions"]
    assert sum(rows.values()) == len(rejects) == 3
    assert sum(manifest["counts"]["lifecycle_stage"].values()) == len(out)
    assert "config_hash" in json.dumps(manifest)  # plain JSON types only


def test_cli_score_and_report_exit_2_on_config_errors(tmp_path) -> None:
    from typer.testing import CliRunner

    from retain.cli import app

    runner = CliRunner()
    for command in ("score", "report"):
        result = runner.invoke(app, [command, "--config", str(tmp_path / "missing.yaml")])
        assert result.exit_code == 2, result.output
        assert runner.invoke(app, [command, "--help"]).exit_code == 0
    bad = tmp_path / "run.yaml"
    bad.write_text(
        "name: x\nclv: {calibration_end: 2020-01-01, holdout_end: 2020-06-01}\npolicy: p.yaml\n"
        "scoring: {as_of: 2020-06-01}\n"
    )
    (tmp_path / "p.yaml").write_text("actions: []\n")  # no action for any pair
    result = runner.invoke(app, ["score", "--config", str(bad)])
    assert result.exit_code == 2


def test_a_model_needing_events_or_quantity_that_this_run_lacks_is_refused(world) -> None:
    from retain.io import DataError

    tx, events, customers, models = world
    assert "session_count_30d" in models.feature_names  # trained with events
    assert "mean_basket_size" in models.feature_names  # and with quantity
    policy = load_policy(POLICY)
    with pytest.raises(DataError, match=r"need the events table.*--model-version"):
        score_customers(tx, AS_OF, models, policy, events=None)
    with pytest.raises(DataError, match="quantity column of the transactions"):
        score_customers(tx.drop(columns="quantity"), AS_OF, models, policy, events=events)


def test_non_finite_scores_are_found(world) -> None:
    from retain.scoring import non_finite_columns

    tx, events, customers, models = world
    out = score_customers(tx, AS_OF, models, load_policy(POLICY), events=events)
    assert non_finite_columns(out) == {}
    broken = out.copy()
    buyer = broken.index[broken["lifecycle_stage"] != "prospect"][:3]
    broken.loc[buyer[0], "clv"] = np.inf
    broken.loc[buyer[1:], "churn_probability"] = np.nan
    broken.loc[buyer[2], "action_cost"] = -np.inf
    assert non_finite_columns(broken) == {"clv": 1, "churn_probability": 2, "action_cost": 1}
