"""Reasons read the right way: at-risk customers' first reason raises their churn risk.

On the synthetic world of ``tests/test_scoring.py`` and on the CDNOW sample (a small model
trained on the cutoffs of ``configs/cdnow_sample.yaml``). The check is on the sign of the
contribution of the feature reason_1 names, recomputed with :func:`shap_contributions`, not on
the wording. The new CLV columns (``expected_next_purchase_date``, ``p_purchase_30d``) are
checked on both as well.
"""

from __future__ import annotations

from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

from retain.churn import ChurnModel
from retain.churn.calibration import fit_calibration
from retain.churn.dataset import feature_matrix, select_feature_columns
from retain.clv import ClvModel
from retain.config import load_config, load_policy
from retain.explain import shap_contributions
from retain.explain.reasons import LOWERS, PROTECTIVE
from retain.features.build import build_features
from retain.features.catalogue import reason_text
from retain.features.labels import churn_labels
from retain.scoring import RISK_STAGES, ScoringModels, model_features, score_customers
from retain.synthetic import generate_synthetic

ROOT = Path(__file__).resolve().parents[1]
POLICY = ROOT / "configs" / "policy.yaml"
PARAMS = {"objective": "binary", "verbose": -1, "num_leaves": 8, "max_depth": 3, "seed": 0}


def _train(
    tx: pd.DataFrame,
    cutoffs: list[pd.Timestamp],
    horizon: int,
    observed_until: pd.Timestamp,
    clv_cut: pd.Timestamp,
    events: pd.DataFrame | None = None,
) -> ScoringModels:
    """A small churn model stacked over ``cutoffs`` and a BG/NBD CLV model (weeks)."""
    feats = [build_features(tx, c, events) for c in cutoffs]
    names, _ = select_feature_columns(feats[0].reset_index())
    names = [c for c in names if c != "customer_id"]
    churn = ChurnModel(None, names, {}, horizon_days=horizon)
    models = ScoringModels(clv=None, churn=churn)
    Xs, ys = [], []
    for cut, f in zip(cutoffs, feats, strict=True):
        inputs = model_features(f, models)
        ys.append(churn_labels(tx, cut, horizon, observed_until).reindex(inputs.index))
        Xs.append(feature_matrix(inputs, names))
    X, y = np.vstack(Xs), pd.concat(ys).astype(int).to_numpy()
    booster = lgb.train(PARAMS, lgb.Dataset(X, y), 40)
    churn.booster = booster
    churn.calibrator = fit_calibration(booster.predict(X, raw_score=True), y, "sigmoid")
    cal = build_features(tx, clv_cut)
    summary = pd.DataFrame(
        {
            "frequency": cal["frequency"],
            "recency_weeks": cal["recency_days"] / 7,
            "tenure_weeks": cal["tenure_days"] / 7,
            "monetary_value": cal["monetary_value"],
        }
    )
    models.clv = ClvModel(purchase_model="bgnbd", time_unit="W").fit(summary)
    return models


@pytest.fixture(scope="module")
def synthetic_scored():
    data = generate_synthetic(800, "2022-01-01", "2023-12-31", seed=11, with_events=True)
    tx, events = data.transactions, data.events
    as_of = pd.Timestamp("2023-12-31")
    cut = pd.Timestamp("2023-03-31")
    models = _train(tx, [cut], 90, as_of, cut, events)
    customers = pd.DataFrame(
        {"customer_id": pd.array(["p_signup"]), "signup_date": pd.to_datetime(["2023-06-01"])}
    )
    out = score_customers(
        tx, as_of, models, load_policy(POLICY), events=events, customers=customers, chunk_size=97
    )
    return tx, events, models, out, as_of


@pytest.fixture(scope="module")
def cdnow_scored(cdnow_sample: pd.DataFrame):
    cfg = load_config(ROOT / "configs" / "cdnow_sample.yaml")
    tx = cdnow_sample
    observed = tx["timestamp"].max().normalize()
    cutoffs = [pd.Timestamp(c) for c in cfg.churn.train_cutoffs]
    models = _train(
        tx, cutoffs, cfg.churn.horizon_days, observed, pd.Timestamp(cfg.clv.calibration_end)
    )
    as_of = pd.Timestamp(cfg.scoring.as_of)
    out = score_customers(tx, as_of, models, load_policy(cfg.policy_path), chunk_size=500)
    return tx, None, models, out, as_of


def _check_risk_first(tx, events, models, out: pd.DataFrame, as_of) -> int:
    """Every at-risk customer's reason_1 names a feature with a positive contribution."""
    feats = build_features(tx, as_of, events)
    inputs = model_features(feats, models)
    by_id = out.set_index("customer_id")
    at_risk = by_id.index[by_id["lifecycle_stage"] == "at_risk"]
    assert len(at_risk) > 0
    names = models.feature_names
    X = feature_matrix(inputs.loc[at_risk], names)
    contrib = shap_contributions(models.booster, X)
    checked = 0
    for i, cid in enumerate(at_risk):
        first = by_id.at[cid, "reason_1"]
        row = inputs.loc[cid]
        # the feature reason_1 names: the one whose catalogue text starts it
        hits = [j for j, n in enumerate(names) if first.startswith(reason_text(n, row) + ": ")]
        assert hits, first
        if (contrib[i, :-1] > 0).any():
            assert any(contrib[i, j] > 0 for j in hits), (cid, first)
            assert not first.startswith(PROTECTIVE)
        else:  # nothing raises the risk: a protective reason, said so
            assert first.startswith(PROTECTIVE)
        checked += 1
    # the other retention stages follow the same rule (sign of the first reason only)
    risky = by_id.loc[by_id["lifecycle_stage"].isin(RISK_STAGES), "reason_1"].dropna()
    lowers = risky.str.contains(LOWERS, regex=False)
    assert risky[lowers].str.startswith(PROTECTIVE).all()
    return checked


def _check_next_purchase(out: pd.DataFrame, as_of: pd.Timestamp) -> None:
    buyers = out["lifecycle_stage"] != "prospect"
    date = out["expected_next_purchase_date"]
    p = out["p_purchase_30d"]
    assert pd.api.types.is_datetime64_any_dtype(date.dtype)
    assert date[buyers].notna().all() and (date[buyers] > as_of).all()
    assert np.isfinite(p[buyers]).all() and p[buyers].between(0, 1).all()
    assert date[~buyers].isna().all() and p[~buyers].isna().all()
    # more likely to buy within 30 days when the model expects the next purchase sooner
    rho = pd.Series(p[buyers].to_numpy()).corr(
        pd.Series((date[buyers] - as_of).dt.days.to_numpy(dtype=float)), method="spearman"
    )
    assert rho < 0


def test_at_risk_reason_1_raises_risk_on_synthetic(synthetic_scored) -> None:
    tx, events, models, out, as_of = synthetic_scored
    assert _check_risk_first(tx, events, models, out, as_of) > 0


def test_at_risk_reason_1_raises_risk_on_cdnow(cdnow_scored) -> None:
    tx, events, models, out, as_of = cdnow_scored
    assert _check_risk_first(tx, events, models, out, as_of) > 0


def test_next_purchase_columns_on_synthetic(synthetic_scored) -> None:
    *_, out, as_of = synthetic_scored
    assert (out["lifecycle_stage"] == "prospect").any()
    _check_next_purchase(out, as_of)


def test_next_purchase_columns_on_cdnow(cdnow_scored) -> None:
    *_, out, as_of = cdnow_scored
    _check_next_purchase(out, as_of)


def test_report_names_the_typical_customer_and_the_base_rate(synthetic_scored) -> None:
    from retain.churn.calibration import apply_calibration
    from retain.reporting.report import reasons_explained, shap_sample

    tx, events, models, out, as_of = synthetic_scored
    inputs = model_features(build_features(tx, as_of, events), models)
    sample = shap_sample(out, inputs, models, 50, 0)
    text = reasons_explained(out, models, sample)
    typical = float(apply_calibration(models.calibrator, np.array([sample.contrib[0, -1]]))[0])
    mean = out.loc[out["lifecycle_stage"] != "prospect", "churn_probability"].mean()
    assert "compares the customer with a typical customer" in text
    assert f"a churn probability of {typical:.2f}" in text
    assert f"mean churn probability of {mean:.2f}" in text
    assert "'(protective)'" in text and "at_risk" in text
