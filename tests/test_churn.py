"""Churn model: split and leakage guards, calibration, metrics, CDNOW and synthetic accuracy,
determinism, and the train-churn job.

Accuracy tests use the shipped CDNOW master file and a seeded synthetic data set with known
latent state. Synthetic size: 20,000 customers gives 20,000 test-cutoff customers with a churn
rate of about 0.86, so the Hanley-McNeil standard error of each test AUC (about 0.95) is about
0.0015; the 0.02 tolerance to the oracle is more than 10 standard errors, and the model/oracle
difference on the same customers has a smaller error still.
"""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib
import mlflow
import numpy as np
import pandas as pd
import pytest
from scipy import integrate, stats
from scipy.special import expit, logit

from retain.churn import (
    ChurnFeatures,
    LeakageError,
    apply_calibration,
    build_churn_dataset,
    check_point_in_time,
    expected_calibration_error,
    feature_matrix,
    fit_calibration,
    make_time_split,
    probability_no_purchase,
    train_and_evaluate,
    train_churn_model,
)
from retain.churn.evaluate import (
    auc_standard_error,
    best_baseline,
    log_loss,
    ranking_metrics,
    top_fraction_lift,
)
from retain.config import load_config
from retain.contracts import CUSTOMER_ID, TIMESTAMP
from retain.datasets import CDNOW_OBSERVED_UNTIL

matplotlib.use("Agg")

CDNOW_CONFIG = "configs/cdnow.yaml"
SYNTHETIC_CONFIG = "configs/synthetic.yaml"
ONE_THREAD = {"learning_rate": 0.02, "num_leaves": 7, "min_data_in_leaf": 500, "lambda_l2": 10.0}


def _cdnow_cfg(**overrides):
    base = {"churn.leakage_check_customers": 300}
    base.update(overrides)
    return load_config(CDNOW_CONFIG, base)


# ------------------------------------------------------------------------- time split


def test_training_window_overlapping_test_window_is_rejected():
    # 1997-07-31 + 182 days = 1998-01-29 > test cutoff 1997-12-29
    with pytest.raises(LeakageError, match="overlaps the test window"):
        make_time_split(
            ["1997-03-31", "1997-07-31"], "1997-09-30", "1997-12-29", 182, CDNOW_OBSERVED_UNTIL
        )
    # the last allowed training cutoff is exactly test cutoff - H
    split = make_time_split(
        ["1997-03-31", "1997-06-30"], "1997-09-30", "1997-12-29", 182, CDNOW_OBSERVED_UNTIL
    )
    assert split.label_window_end(split.train_cutoffs[-1]) == split.test_cutoff


def test_validation_overlap_is_reported_and_optionally_forbidden():
    args = (["1997-03-31"], "1997-09-30", "1997-12-29", 182, CDNOW_OBSERVED_UNTIL)
    split = make_time_split(*args)
    assert split.validation_test_overlap_days == 92  # 1998-03-31 - 1997-12-29
    with pytest.raises(LeakageError, match="validation label window overlaps"):
        make_time_split(*args, strict_validation=True)


def test_label_window_past_the_data_and_bad_order_are_rejected():
    with pytest.raises(LeakageError, match="after the last observed day"):
        make_time_split(["1997-03-31"], "1997-06-30", "1998-01-31", 182, CDNOW_OBSERVED_UNTIL)
    with pytest.raises(LeakageError, match="after the last training cutoff"):
        make_time_split(["1997-06-30"], "1997-05-31", "1997-12-29", 182, CDNOW_OBSERVED_UNTIL)


def test_shipped_configs_have_valid_splits():
    for path, until in ((CDNOW_CONFIG, CDNOW_OBSERVED_UNTIL), (SYNTHETIC_CONFIG, "2024-12-31")):
        c = load_config(path).churn
        split = make_time_split(
            c.train_cutoffs, c.validation_cutoff, c.test_cutoff, c.horizon_days, until
        )
        assert split.label_window_end(split.test_cutoff) <= pd.Timestamp(until)


# ------------------------------------------------------------------------ calibration


def test_calibrators_fix_a_shifted_score_out_of_sample():
    rng = np.random.default_rng(3)
    n = 40_000
    p_true = rng.beta(2, 2, size=n)
    y = (rng.random(n) < p_true).astype(int)
    raw = 2.0 * logit(p_true) + 1.5  # a miscalibrated margin: too steep and shifted
    fit_idx, eval_idx = np.arange(n // 2), np.arange(n // 2, n)
    before = expected_calibration_error(y[eval_idx], expit(raw[eval_idx]))
    assert before > 0.1
    for method in ("isotonic", "sigmoid"):
        cal = fit_calibration(raw[fit_idx], y[fit_idx], method)
        restored = json.loads(json.dumps(cal))  # plain data: JSON round trip is lossless
        p = apply_calibration(restored, raw[eval_idx])
        np.testing.assert_array_equal(p, apply_calibration(cal, raw[eval_idx]))
        after = expected_calibration_error(y[eval_idx], p)
        # 20,000 rows in 10 bins: sampling noise of the ECE is about 0.005
        assert after < 0.02, (method, after)
        assert np.all((p >= 0) & (p <= 1))


def test_sigmoid_calibration_recovers_platt_parameters():
    rng = np.random.default_rng(5)
    x = rng.normal(size=60_000)
    y = (rng.random(x.size) < expit(1.5 * x - 0.5)).astype(int)
    cal = fit_calibration(x, y, "sigmoid")
    # standard errors of the logistic MLE here are about 0.012 (a) and 0.010 (b)
    assert cal["a"] == pytest.approx(1.5, abs=0.05)
    assert cal["b"] == pytest.approx(-0.5, abs=0.05)


def test_calibration_rejects_bad_input():
    with pytest.raises(ValueError, match="both classes"):
        fit_calibration(np.arange(5.0), np.ones(5, dtype=int))
    with pytest.raises(ValueError, match="unknown calibration method"):
        apply_calibration({"method": "beta"}, np.zeros(3))


def test_lightgbm_params_are_deterministic_and_weighting_is_explicit():
    from retain.churn.train import lightgbm_params

    params = lightgbm_params(
        {"num_leaves": 15, "deterministic": False}, seed=3, scale_pos_weight=0.4
    )
    assert params["deterministic"] is True  # cannot be switched off
    assert params["num_leaves"] == 15 and params["seed"] == 3
    assert params["scale_pos_weight"] == 0.4
    assert "scale_pos_weight" not in lightgbm_params({}, seed=3, scale_pos_weight=None)
    with pytest.raises(ValueError, match="churn.imbalance"):
        lightgbm_params({"is_unbalance": True}, seed=0, scale_pos_weight=None)


# ---------------------------------------------------------------------------- metrics


def test_metric_known_answers():
    y = np.array([0, 0, 1, 1])
    p = np.array([0.1, 0.38, 0.31, 0.8])
    # bins: 0.1 -> bin 1 (y 0), 0.38/0.31 -> bin 3 (mean p 0.345, y 0.5), 0.8 -> bin 8 (y 1)
    expected = (abs(0.1 - 0) + 2 * abs(0.345 - 0.5) + abs(0.8 - 1)) / 4
    assert expected_calibration_error(y, p) == pytest.approx(expected)
    assert ranking_metrics(y, p)["roc_auc"] == pytest.approx(0.75)
    assert log_loss(y, p) == pytest.approx(
        -np.mean([np.log(0.9), np.log(0.62), np.log(0.31), np.log(0.8)])
    )
    y10 = np.array([1, 0, 0, 0, 0, 0, 0, 0, 0, 1])
    score = np.arange(10.0)[::-1]  # row 0 ranked first
    lift, capture = top_fraction_lift(y10, score, 0.1)
    assert lift == pytest.approx(1.0 / 0.2)
    assert capture == pytest.approx(0.5)
    # Hanley-McNeil: AUC 0.5 with 100/100 cases -> about 0.041
    assert auc_standard_error(0.5, 100, 100) == pytest.approx(0.0408, abs=5e-4)
    assert best_baseline({"baseline_a_roc_auc": 0.7, "baseline_b_roc_auc": 0.8}) == ("b", 0.8)


def test_probability_no_purchase_matches_independent_computations(cdnow_sample):
    from lifetimes import ParetoNBDFitter

    from retain.clv import ClvModel
    from retain.features.rfm import rfm_summary

    summary = rfm_summary(cdnow_sample, "1997-09-30", "W").iloc[:150]
    full = rfm_summary(cdnow_sample, "1997-09-30", "W")
    t = 26.0
    # Pareto/NBD: lifetimes' conditional P(0 purchases in t)
    pnbd = ClvModel("pareto_nbd", spend_model=None).fit(full)
    ref = ParetoNBDFitter()
    ref.params_ = pd.Series(pnbd.purchase_params_)
    expected = [
        ref.conditional_probability_of_n_purchases_up_to_time(0, t, x, tx, T)
        for x, tx, T in summary[["frequency", "recency_weeks", "tenure_weeks"]].to_numpy()
    ]
    np.testing.assert_allclose(probability_no_purchase(pnbd, summary, t), expected, rtol=1e-9)
    # BG/NBD: 1 - p_alive + p_alive * E[exp(-lambda t)] with lambda ~ Gamma(r + x, alpha + T)
    bg = ClvModel("bgnbd", spend_model=None).fit(full)
    r, alpha = bg.purchase_params_["r"], bg.purchase_params_["alpha"]
    p_alive = bg.predict(summary, horizon=1)["p_alive"].to_numpy()
    rows = summary[["frequency", "tenure_weeks"]].to_numpy()[:20]
    numeric = []
    for (x, T), pa in zip(rows, p_alive[:20], strict=True):
        post = stats.gamma(a=r + x, scale=1.0 / (alpha + T))
        e, _ = integrate.quad(lambda lam, post=post: np.exp(-lam * t) * post.pdf(lam), 0, np.inf)
        numeric.append(1 - pa + pa * e)
    np.testing.assert_allclose(
        probability_no_purchase(bg, summary.iloc[:20], t), numeric, rtol=1e-6
    )


# ---------------------------------------------------------------------- leakage guard


def _small_split():
    return make_time_split(
        ["1997-03-31", "1997-04-30"], "1997-06-30", "1997-12-29", 182, CDNOW_OBSERVED_UNTIL
    )


def test_feature_from_after_the_cutoff_fails_the_pipeline(cdnow_sample):
    honest = ChurnFeatures(182)

    def leaky(transactions, cutoff, events):
        feats = honest(transactions, cutoff, events)
        # a feature that peeks: all purchases of the customer, including later ones
        total = transactions.groupby(CUSTOMER_ID)["amount"].count()
        return feats.assign(lifetime_rows=total.reindex(feats.index).to_numpy())

    with pytest.raises(LeakageError, match="lifetime_rows"):
        build_churn_dataset(cdnow_sample, _small_split(), feature_fn=leaky)
    # the honest feature function passes the same guard
    check_point_in_time(honest, cdnow_sample, "1997-03-31", n_customers=400)


def test_feature_table_recording_later_data_fails(cdnow_sample, monkeypatch):
    import retain.features.build as build

    real = build.build_features

    def late_record(transactions, cutoff, events=None, config=None):
        feats = real(transactions, cutoff, events)
        feats.attrs[build.POINT_IN_TIME_ATTR] = {
            pd.Timestamp(cutoff).date().isoformat(): "1998-01-05T00:00:00"
        }
        return feats

    monkeypatch.setattr(build, "build_features", late_record)
    with pytest.raises(LeakageError, match="after the cutoff"):
        ChurnFeatures(182)(cdnow_sample, pd.Timestamp("1997-03-31"), None)


def test_customers_appearing_only_later_are_not_scored_at_the_cutoff(cdnow_sample):
    def includes_future_customers(transactions, cutoff, events):
        ids = pd.Index(sorted(transactions[CUSTOMER_ID].unique()), name=CUSTOMER_ID)
        return pd.DataFrame({"x": np.zeros(len(ids))}, index=ids)

    late = pd.DataFrame(
        {
            CUSTOMER_ID: pd.array(["new-later"], dtype="string"),
            TIMESTAMP: [pd.Timestamp("1997-11-01")],
            "amount": [10.0],
            "quantity": [1.0],
        }
    )
    tx = pd.concat([cdnow_sample, late], ignore_index=True)
    with pytest.raises(LeakageError, match="customers depend on later rows"):
        check_point_in_time(includes_future_customers, tx, "1997-03-31", n_customers=10_000)


# ---------------------------------------------------------------- CDNOW end to end


@pytest.fixture(scope="module")
def cdnow_fit(cdnow_master):
    cfg = _cdnow_cfg()
    return train_and_evaluate(
        cdnow_master,
        cfg.churn,
        CDNOW_OBSERVED_UNTIL,
        feature_config=cfg.features,
        seed=cfg.seed,
        params={**cfg.churn.lightgbm, "num_threads": 1},
    )


@pytest.mark.slow
def test_cdnow_model_is_not_worse_than_the_best_btyd_baseline(cdnow_fit):
    m = cdnow_fit.metrics
    for name in ("roc_auc", "pr_auc", "brier", "log_loss", "ece", "top_decile_lift"):
        assert np.isfinite(m[f"test_{name}"]), name
    name, best = best_baseline(m)
    assert 0.78 < best < 0.83, (name, best)  # the BTYD baseline on CDNOW is about 0.80
    assert m["test_roc_auc"] >= best - 0.005, (m["test_roc_auc"], name, best)
    # every BTYD model is a baseline, as P(no purchase) and as -expected purchases
    for model in ("bgnbd", "pareto_nbd", "mbgnbd"):
        assert f"baseline_{model}_p_no_purchase_roc_auc" in m
        assert f"baseline_{model}_neg_expected_purchases_roc_auc" in m
    assert "baseline_days_since_last_purchase_roc_auc" in m
    # calibration fitted on validation improves the class-weighted booster on the test cutoff
    assert m["test_ece"] < m["test_raw_ece"] / 2
    assert m["test_brier"] < m["test_raw_brier"]
    # all customers of the test cutoff, identical rows for model and baselines
    assert m["test_rows"] == 23_570
    # class weights balance the training rows (CDNOW churners are the majority)
    rate = m["train_churn_rate"]
    assert m["scale_pos_weight"] == pytest.approx((1 - rate) / rate)


def test_training_is_deterministic(cdnow_fit):
    ds = cdnow_fit.dataset
    params = {"learning_rate": 0.1, "num_leaves": 15, "bagging_fraction": 0.7, "num_threads": 1}
    runs = [train_churn_model(ds, params=params, seed=11) for _ in range(2)]
    a, b = (r.model.predict_proba(ds.test) for r in runs)
    np.testing.assert_array_equal(a, b)
    assert runs[0].model.booster.model_to_string() == runs[1].model.booster.model_to_string()
    assert runs[0].model.calibrator == runs[1].model.calibrator


def test_scoring_recipe_needs_only_booster_features_and_calibrator(cdnow_fit):
    model = cdnow_fit.model
    meta = json.loads(json.dumps(model.metadata()))
    x = feature_matrix(cdnow_fit.dataset.test, meta["feature_names"])
    p = apply_calibration(meta["calibrator"], model.booster.predict(x, raw_score=True))
    np.testing.assert_array_equal(p, cdnow_fit.test_scores["calibrated"])
    assert "rfm_segment" in cdnow_fit.dataset.dropped_columns
    assert "rfm_segment" not in meta["feature_names"]


def test_plots_return_axes(cdnow_fit):
    from retain.reporting.churn_plots import (
        gain_curve,
        plot_calibration_curve,
        plot_gain,
        plot_precision_recall,
        plot_roc,
    )

    s = cdnow_fit.test_scores
    y = s["y"]
    curves = {"model": s["calibrated"], "recency": s["baseline:days_since_last_purchase"]}
    ax = plot_calibration_curve(y, {"raw": s["raw"], "calibrated": s["calibrated"]})
    assert len(ax.get_lines()) == 3
    for fn in (plot_roc, plot_precision_recall, plot_gain):
        ax = fn(y, curves)
        assert len(ax.get_lines()) >= 3
    targeted, captured = gain_curve(y, s["calibrated"])
    assert captured[0] == 0 and captured[-1] == pytest.approx(1.0)
    assert np.all(np.diff(captured) >= 0)
    k = int(np.ceil(0.1 * len(y)))
    assert captured[k] == pytest.approx(cdnow_fit.metrics["test_top_decile_capture"])


# ------------------------------------------------------------------ synthetic oracle


@pytest.mark.slow
def test_synthetic_model_uses_engagement_and_approaches_the_oracle():
    from retain.synthetic import generate_synthetic, true_churn_probability

    cfg = load_config(SYNTHETIC_CONFIG, {"churn.leakage_check_customers": 300})
    c = cfg.churn
    syn = generate_synthetic(20_000, "2022-01-01", "2024-12-31", seed=7, with_events=True)
    fit = train_and_evaluate(
        syn.transactions,
        c,
        "2024-12-31",
        syn.events,
        feature_config=cfg.features,
        seed=cfg.seed,
        params={**c.lightgbm, "num_threads": 1},
    )
    ds, m = fit.dataset, fit.metrics
    y = ds.test["churned"].to_numpy()
    oracle_p = true_churn_probability(syn.truth, c.test_cutoff, c.horizon_days)
    oracle = ranking_metrics(y, oracle_p.reindex(ds.test[CUSTOMER_ID]).to_numpy())["roc_auc"]
    rfm_only = train_churn_model(
        ds,
        feature_names=["frequency", "recency_days", "tenure_days", "monetary_value"],
        params={"num_threads": 1},
        seed=cfg.seed,
    )
    rfm_auc = ranking_metrics(y, rfm_only.model.predict_raw(ds.test))["roc_auc"]
    _, btyd = best_baseline(m)
    auc = m["test_roc_auc"]
    assert m["test_roc_auc_se"] < 0.003
    assert auc >= oracle - 0.02, (auc, oracle)
    assert auc <= oracle + 3 * m["test_roc_auc_se"]  # nothing beats the latent truth
    assert auc >= rfm_auc + 0.02, (auc, rfm_auc)
    assert auc >= btyd + 0.02, (auc, btyd)
    assert any(f.startswith("session_count") for f in fit.model.feature_names)
    # the data follow BG/NBD, so its P(no purchase) baseline is calibrated
    assert m["baseline_bgnbd_p_no_purchase_ece"] < 0.02


# --------------------------------------------------------------------------------- job


@pytest.mark.slow
def test_train_churn_job_registers_a_challenger_that_scores_without_pickle(tmp_path, monkeypatch):
    from retain.jobs.train_churn import train_churn
    from retain.tracking import load_churn_model, registered_name

    db = tmp_path / "mlruns.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{db}")
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    cfg = _cdnow_cfg(
        **{
            "data.source": "cdnow_sample",
            "churn.lightgbm": {**ONE_THREAD, "min_data_in_leaf": 100, "num_threads": 1},
            "churn.baseline_models": ["bgnbd"],
            "churn.optuna": {"n_trials": 2},
        }
    )
    messages: list[str] = []
    result = train_churn(cfg, progress=messages.append)
    assert messages and result.model_version == "1"
    assert result.metrics["test_rows"] == 2357
    loaded, version = load_churn_model("challenger", registered_name(cfg, "churn"))
    assert version.run_id == result.run_id
    assert loaded.feature_names == result.feature_names
    assert loaded.training["config_name"] == cfg.name
    # score the test cutoff again from the registry: features -> booster -> calibrator
    from retain.datasets import load_cdnow
    from retain.features.labels import churn_labels

    tx = load_cdnow("sample")
    feats = ChurnFeatures(cfg.churn.horizon_days, cfg.features)(
        tx, pd.Timestamp(cfg.churn.test_cutoff), None
    )
    x = feature_matrix(feats, loaded.feature_names)
    p = apply_calibration(loaded.calibrator, loaded.booster.predict(x, raw_score=True))
    y = churn_labels(tx, cfg.churn.test_cutoff, cfg.churn.horizon_days, CDNOW_OBSERVED_UNTIL)
    auc = ranking_metrics(y.reindex(feats.index).to_numpy(), p)["roc_auc"]
    assert auc == pytest.approx(result.metrics["test_roc_auc"], abs=1e-6)
    from mlflow import MlflowClient

    run = MlflowClient(tracking_uri=f"sqlite:///{db}").get_run(result.run_id)
    for key in ("test_roc_auc", "test_pr_auc", "test_brier", "test_log_loss", "test_ece"):
        assert key in run.data.metrics
    assert "baseline_bgnbd_p_no_purchase_roc_auc" in run.data.metrics
    # the paired DeLong interval of model - baseline, on the run and on the version (the gate's)
    diff = run.data.metrics["auc_diff_vs_bgnbd_p_no_purchase"]
    assert diff == pytest.approx(
        result.metrics["test_roc_auc"] - result.metrics["baseline_bgnbd_p_no_purchase_roc_auc"]
    )
    low = run.data.metrics["auc_diff_vs_bgnbd_p_no_purchase_ci_low"]
    assert low < diff < run.data.metrics["auc_diff_vs_bgnbd_p_no_purchase_ci_high"]
    assert "metric.auc_diff_vs_bgnbd_p_no_purchase_ci_high" in version.tags
    catalogue = json.loads(
        Path(
            mlflow.artifacts.download_artifacts(
                run_id=result.run_id,
                artifact_path="churn_model/catalogue.json",
                tracking_uri=f"sqlite:///{db}",
            )
        ).read_text()
    )
    assert catalogue["recency_days"]["unit"] and catalogue["p_alive"]["meaning"]
    assert run.data.params["split.validation_test_overlap_days"] == "92"
    # the run holds its SHAP plots, its input table and a description of what ran on what
    plots = {
        f.path
        for f in MlflowClient(tracking_uri=f"sqlite:///{db}").list_artifacts(result.run_id, "plots")
    }
    assert {"plots/shap_bar.png", "plots/shap_beeswarm.png"} <= plots
    assert [d.dataset.name for d in run.inputs.dataset_inputs] == [f"{cfg.name}.transactions"]
    assert run.data.tags["mlflow.note.content"].startswith(
        "Churn model trained on cdnow_sample (6,919 transactions, 2,357 customers) with cutoffs "
    )
    # the optuna search ran on the validation cutoff and its best trial was used and logged
    assert run.data.metrics["optuna_trials"] == 2
    best_lr = float(run.data.params["optuna.best.learning_rate"])
    assert float(run.data.params["lgbm.learning_rate"]) == pytest.approx(best_lr)
    assert run.data.metrics["optuna_best_validation_roc_auc"] == pytest.approx(
        result.metrics["validation_roc_auc"]
    )


# ------------------------------------------------------------ paired AUC interval (DeLong)


def _paired_scores(n: int = 400, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    a = y + rng.normal(size=n)
    b = np.round(0.5 * y + 0.3 * a + rng.normal(size=n), 1)  # correlated with a, with ties
    return y, a, b


def test_delong_difference_is_the_auc_difference_and_agrees_with_a_paired_bootstrap():
    from sklearn.metrics import roc_auc_score

    from retain.churn.evaluate import delong_auc_difference

    y, a, b = _paired_scores()
    diff, se, low, high = delong_auc_difference(y, a, b)
    assert diff == pytest.approx(roc_auc_score(y, a) - roc_auc_score(y, b))
    assert low < diff < high
    assert high - diff == pytest.approx(stats.norm.ppf(0.975) * se)
    # the seeded paired bootstrap: same rows resampled for both scores
    rng = np.random.default_rng(1)
    boot = []
    for _ in range(400):
        i = rng.integers(0, y.size, y.size)
        boot.append(roc_auc_score(y[i], a[i]) - roc_auc_score(y[i], b[i]))
    # 400 resamples estimate a standard deviation to about 4 %: a generous 25 % tolerance
    assert se == pytest.approx(np.std(boot, ddof=1), rel=0.25)
    assert np.mean(boot) == pytest.approx(diff, abs=se / 2)
    # a wider level gives a wider interval around the same difference
    _, _, low99, high99 = delong_auc_difference(y, a, b, confidence=0.99)
    assert low99 < low and high99 > high


def test_delong_hand_checkable_cases():
    from retain.churn.evaluate import delong_auc_difference

    y, a, _ = _paired_scores(50)
    # identical scores: no difference and no uncertainty about it
    assert delong_auc_difference(y, a, a.copy()) == (0.0, 0.0, 0.0, 0.0)
    # perfect ranking vs a constant score (AUC 1 vs 0.5): both rank every pair alike
    diff, se, low, high = delong_auc_difference(y, y.astype(float), np.zeros(y.size))
    assert diff == pytest.approx(0.5) and se == pytest.approx(0.0, abs=1e-12)
    # perfect vs random: the difference is 1 - AUC(random), uncertain by the random one alone
    rng = np.random.default_rng(3)
    noise = rng.normal(size=y.size)
    diff, se, low, high = delong_auc_difference(y, y.astype(float), noise)
    assert diff == pytest.approx(1 - ranking_metrics(y, noise)["roc_auc"])
    assert se > 0 and low < diff < high
    with pytest.raises(ValueError, match="two rows of each class"):
        delong_auc_difference(np.array([1, 0, 0]), np.zeros(3), np.ones(3))
    with pytest.raises(ValueError, match="confidence"):
        delong_auc_difference(y, a, a, confidence=1.0)


def test_baseline_auc_differences_are_named_by_the_catalogue():
    from retain.churn.evaluate import baseline_auc_differences
    from retain.names import auc_difference_metric

    y, a, b = _paired_scores(200)
    out = baseline_auc_differences(y, a, {"recency": b})
    assert set(out) == {
        auc_difference_metric("recency", part) for part in ("", "se", "ci_low", "ci_high")
    }
    assert out["auc_diff_vs_recency_ci_low"] < out["auc_diff_vs_recency_ci_high"]
