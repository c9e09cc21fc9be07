"""ClvModel: published CDNOW estimates, collapsing, Pareto/NBD edge case, CLV units, errors."""

from __future__ import annotations

import json
import re
import warnings

import numpy as np
import pandas as pd
import pytest
from lifetimes.datasets import load_cdnow_summary_data_with_monetary_value
from scipy.special import gammaln, hyp2f1

from retain.clv import (
    DAYS_PER_MONTH,
    PREDICTION_COLUMNS,
    ClvFitError,
    ClvModel,
    NotFittedError,
    SpendCorrelationWarning,
    ZeroSpendWarning,
    month_length,
)
from retain.clv.mle import penalizer_advice
from retain.clv.model import _fit_purchase, collapse_rfm
from retain.clv.purchase import PURCHASE_MODELS, ParetoNbd, RfmArrays
from retain.clv.spend import GAMMA_GAMMA, SpendArrays
from retain.features.rfm import rfm_summary

CUTOFF = "1997-09-30"

# Published maximum-likelihood estimates for the CDNOW sample (2,357 customers, weeks, 39-week
# calibration period ending 1997-09-30):
PUBLISHED = {
    # Fader, Hardie & Lee (2005), "Counting your customers the easy way", Marketing Science
    "bgnbd": {"r": 0.2426, "alpha": 4.414, "a": 0.7930, "b": 2.426},
    # Fader, Hardie & Lee (2005), "A note on implementing the Pareto/NBD model in MATLAB"
    # (brucehardie.com/notes/008); lifetimes' test_params_out_is_close_to_Hardie_paper
    "pareto_nbd": {"r": 0.5533, "alpha": 10.5776, "s": 0.6061, "beta": 11.6650},
    # BTYDplus (Platzer) mbgcnbd on CDNOW; lifetimes' test_params_out_is_close_to_BTYDplus
    "mbgnbd": {"r": 0.525, "alpha": 6.183, "a": 0.891, "b": 1.614},
}
# Fader & Hardie (2013), "The Gamma-Gamma model of monetary value" (brucehardie.com/notes/025):
# 946 repeat customers of the sample, mean spend of their calibration repeat purchases.
PUBLISHED_GAMMA_GAMMA = {"p": 6.25, "q": 3.74, "v": 15.44}


def _same_3_significant(estimate: float, published: float) -> bool:
    return f"{estimate:.3g}" == f"{published:.3g}"


@pytest.fixture(scope="module")
def summary_weeks(cdnow_sample: pd.DataFrame) -> pd.DataFrame:
    return rfm_summary(cdnow_sample, CUTOFF, "W")


@pytest.fixture(scope="module")
def fitted(summary_weeks: pd.DataFrame) -> dict[str, ClvModel]:
    return {name: ClvModel(name).fit(summary_weeks) for name in PUBLISHED}


@pytest.mark.parametrize("name", list(PUBLISHED))
def test_cdnow_purchase_models_match_published_estimates(fitted, name):
    params = fitted[name].purchase_params_
    assert set(params) == set(PUBLISHED[name])
    for key, value in PUBLISHED[name].items():
        assert _same_3_significant(params[key], value), (name, key, params[key], value)
        assert params[key] == pytest.approx(value, rel=2e-3), (name, key)
    assert np.isfinite(fitted[name].log_likelihood_)
    assert fitted[name].n_customers_ == 2357
    assert fitted[name].n_rows_ < 2357  # collapsed


def test_cdnow_gamma_gamma_matches_published_estimates(fitted, summary_weeks):
    # the data of note 025 / lifetimes' test: its monetary values are ours rounded to cents
    lt = load_cdnow_summary_data_with_monetary_value()
    ours = summary_weeks["monetary_value"].to_numpy()
    assert np.abs(ours - lt["monetary_value"].to_numpy()).max() <= 0.005 + 1e-9
    model = fitted["bgnbd"]
    assert model.n_spend_customers_ == 946
    for key, value in PUBLISHED_GAMMA_GAMMA.items():
        assert _same_3_significant(model.spend_params_[key], value), (key, model.spend_params_)
    assert abs(model.spend_frequency_corr_) < 0.3  # CDNOW: about 0.11


def test_published_bgnbd_conditional_expectation(fitted):
    # Fader-Hardie spreadsheet: x=2, t_x=30.43, T=38.86 -> 1.226 purchases in the next 39 weeks
    one = pd.DataFrame(
        {"frequency": [2], "recency_weeks": [30.43], "tenure_weeks": [38.86], "monetary_value": [1]}
    )
    assert fitted["bgnbd"].expected_purchases(one, 39).iloc[0] == pytest.approx(1.226, abs=1e-3)


@pytest.mark.parametrize("name", list(PUBLISHED))
def test_collapsed_weighted_fit_equals_plain_fit(summary_weeks, name):
    model = PURCHASE_MODELS[name]
    x = summary_weeks["frequency"].to_numpy(float)
    t_x = summary_weeks["recency_weeks"].to_numpy()
    T = summary_weeks["tenure_weeks"].to_numpy()
    plain = _fit_purchase(model, RfmArrays(x, t_x, T), 0.0)
    collapsed, inverse = collapse_rfm(x, t_x, T)
    assert len(collapsed) < len(x) / 2
    assert collapsed.weights.sum() == len(x)
    np.testing.assert_array_equal(collapsed.x[inverse], x)
    weighted = _fit_purchase(model, collapsed, 0.0)
    np.testing.assert_allclose(weighted.params, plain.params, rtol=1e-6)
    assert weighted.log_likelihood == pytest.approx(plain.log_likelihood, rel=1e-9)


@pytest.mark.parametrize("name", ["bgnbd", "mbgnbd"])  # Pareto/NBD: numerical gradient
def test_loglik_gradient_matches_finite_differences(summary_weeks, name):
    model = PURCHASE_MODELS[name]
    assert model.analytic_gradient
    d = RfmArrays(
        summary_weeks["frequency"], summary_weeks["recency_weeks"], summary_weeks["tenure_weeks"]
    )
    params = 1.3 * np.array(list(PUBLISHED[name].values()))  # away from the optimum
    _, grad = model.loglik(params, d, True)
    for i in range(4):
        step = np.zeros(4)
        step[i] = 1e-5 * params[i]
        up = model.loglik(params + step, d, False)[0]
        down = model.loglik(params - step, d, False)[0]
        np.testing.assert_allclose(grad[:, i], (up - down) / (2 * step[i]), rtol=1e-5, atol=1e-7)


def test_gamma_gamma_gradient_matches_finite_differences(summary_weeks):
    repeat = summary_weeks["frequency"] > 0
    d = SpendArrays(
        summary_weeks.loc[repeat, "frequency"], summary_weeks.loc[repeat, "monetary_value"]
    )
    params = np.array([8.0, 3.0, 20.0])
    _, grad = GAMMA_GAMMA.loglik(params, d, True)
    for i in range(3):
        step = np.zeros(3)
        step[i] = 1e-5 * params[i]
        up = GAMMA_GAMMA.loglik(params + step, d, False)[0]
        down = GAMMA_GAMMA.loglik(params - step, d, False)[0]
        np.testing.assert_allclose(grad[:, i], (up - down) / (2 * step[i]), rtol=1e-5, atol=1e-7)


# ------------------------------------------------------------------ Pareto/NBD edge case


def test_pareto_loglik_finite_when_recency_equals_tenure():
    # large frequency with recency == tenure: lifetimes computes logsumexp([a, a], b=[1, -1]),
    # which is NaN on scipy >= 1.16 instead of -inf; the likelihood then reduces exactly to
    # A1 + B (the A0 term vanishes).
    params = np.array([10.465, 7.98565181e-03, 3.0516, 2.820])
    x = np.array([400.0, 500.0, 500.0, 500.0, 3.0])
    t_x = np.array([6.0, 37.0, 4.0, 20.0, 10.0])
    T = np.array([6.0, 37.0, 37.0, 20.0, 10.0])
    d = RfmArrays(x, t_x, T)
    ll, _ = ParetoNbd().loglik(params, d, False)
    assert np.all(np.isfinite(ll))
    r, alpha, s, beta = params
    closed = (
        gammaln(r + x)
        - gammaln(r)
        + r * np.log(alpha)
        + s * np.log(beta)
        - (r + x) * np.log(alpha + T)
        - s * np.log(beta + T)
    )
    at_end = t_x == T
    np.testing.assert_allclose(ll[at_end], closed[at_end], rtol=1e-12)
    assert np.all(ll[~at_end] > closed[~at_end])  # the A0 term adds probability
    # continuous as t_x -> T
    near = RfmArrays(x[at_end], T[at_end] * (1 - 1e-9), T[at_end])
    np.testing.assert_allclose(ParetoNbd().loglik(params, near, False)[0], ll[at_end], rtol=1e-6)
    p_alive = ParetoNbd().p_alive(params, d)
    assert np.all((p_alive >= 0) & (p_alive <= 1))
    np.testing.assert_allclose(p_alive[at_end], 1.0)
    assert np.all(np.isfinite(ParetoNbd().expected_purchases(params, 52.0, d)))


def test_pareto_fit_and_predictions_robust_with_recency_equal_tenure(summary_weeks):
    extra = pd.DataFrame(
        {
            "frequency": [60, 80, 120, 40],
            "recency_weeks": [38.857143, 30.0, 20.0, 38.857143],
            "tenure_weeks": [38.857143, 30.0, 20.0, 38.857143],
            "monetary_value": [20.0, 25.0, 30.0, 15.0],
        },
        index=pd.Index(["x1", "x2", "x3", "x4"], dtype="string", name="customer_id"),
    )
    data = pd.concat([summary_weeks, extra])
    model = ClvModel("pareto_nbd").fit(data)
    assert all(np.isfinite(v) and v > 0 for v in model.purchase_params_.values())
    pred = model.predict(data)
    assert np.all(np.isfinite(pred.to_numpy()))
    assert pred.loc[["x1", "x2", "x3", "x4"], "p_alive"].gt(0.99).all()


# ------------------------------------------------------------------ CLV and units


def test_month_length_convention():
    assert DAYS_PER_MONTH == 30.4375
    assert month_length("D") == 30.4375
    assert month_length("W") == pytest.approx(4.348214285714286, rel=1e-15)


def _bgnbd_expected(params: dict, t: float, x: float, t_x: float, T: float) -> float:
    """Fader, Hardie & Lee (2005) eq. 10, written out independently of the package."""
    r, alpha, a, b = params["r"], params["alpha"], params["a"], params["b"]
    hyp = hyp2f1(r + x, b + x, a + b + x - 1, t / (alpha + T + t))
    num = (a + b + x - 1) / (a - 1) * (1 - ((alpha + T) / (alpha + T + t)) ** (r + x) * hyp)
    den = 1 + (x > 0) * a / (b + x - 1) * ((alpha + T) / (alpha + t_x)) ** (r + x)
    return num / den


def test_clv_discounting_against_hand_computation(fitted):
    model = fitted["bgnbd"]
    model = ClvModel.from_dict({**model.to_dict(), "params": {**model.get_params(), "horizon": 3}})
    one = pd.DataFrame(
        {
            "frequency": [4],
            "recency_weeks": [30.0],
            "tenure_weeks": [38.0],
            "monetary_value": [42.0],
        }
    )
    pred = model.predict(one).iloc[0]
    month_weeks = 365.25 / 12 / 7
    cumulative = [
        _bgnbd_expected(model.purchase_params_, k * month_weeks, 4, 30, 38) for k in range(4)
    ]
    p, q, v = (model.spend_params_[k] for k in "pqv")
    value = (q - 1) / (p * 4 + q - 1) * (p * v / (q - 1)) + p * 4 / (p * 4 + q - 1) * 42.0
    hand = sum((cumulative[k] - cumulative[k - 1]) * value / 1.01**k for k in (1, 2, 3))
    assert pred["expected_avg_value"] == pytest.approx(value, rel=1e-12)
    assert pred["expected_purchases"] == pytest.approx(cumulative[3], rel=1e-10)
    assert pred["clv"] == pytest.approx(hand, rel=1e-10)
    # without discounting, CLV is expected purchases times expected value
    flat = ClvModel.from_dict(
        {**model.to_dict(), "params": {**model.get_params(), "discount_rate": 0.0}}
    ).predict(one)
    assert flat["clv"].iloc[0] == pytest.approx(cumulative[3] * value, rel=1e-10)
    assert pred["clv"] < flat["clv"].iloc[0]


def test_days_and_weeks_give_the_same_clv(fitted, summary_weeks, cdnow_sample):
    weekly = fitted["bgnbd"]
    days = rfm_summary(cdnow_sample, CUTOFF, "D")
    d = weekly.to_dict()
    d["params"] = {**d["params"], "time_unit": "D"}
    d["purchase_params"] = {**d["purchase_params"], "alpha": d["purchase_params"]["alpha"] * 7}
    daily = ClvModel.from_dict(d)
    a, b = weekly.predict(summary_weeks), daily.predict(days)
    cols = ["p_alive", "expected_purchases", "clv", "expected_next_purchase_days"]
    np.testing.assert_allclose(a[cols].to_numpy(), b[cols].to_numpy(), rtol=1e-9)


@pytest.mark.parametrize("name", list(PUBLISHED))
def test_predict_output_contract(fitted, summary_weeks, name):
    pred = fitted[name].predict(summary_weeks)
    assert tuple(pred.columns) == PREDICTION_COLUMNS
    assert pred.index.equals(summary_weeks.index)
    assert pred.index.name == "customer_id"
    assert pred["p_alive"].between(0, 1).all()
    assert (pred["expected_purchases"] >= 0).all()
    assert (pred["clv"] >= 0).all()
    assert (pred["expected_next_purchase_days"] > 0).all()
    longer = fitted[name].predict(summary_weeks, horizon=24)
    assert (longer["expected_purchases"] >= pred["expected_purchases"]).all()
    assert longer["clv"].sum() > pred["clv"].sum()


@pytest.mark.parametrize("name", list(PUBLISHED))
def test_to_dict_json_round_trip_gives_identical_predictions(fitted, summary_weeks, name):
    model = fitted[name]
    text = json.dumps(model.to_dict(), allow_nan=False)
    loaded = ClvModel.from_dict(json.loads(text))
    pd.testing.assert_frame_equal(loaded.predict(summary_weeks), model.predict(summary_weeks))
    data = json.loads(text)
    assert data["params"]["purchase_model"] == name
    assert data["params"]["time_unit"] == "W"
    assert {"numpy", "scipy", "pandas", "lifetimes", "retain"} <= set(data["versions"])


# ------------------------------------------------------------------ fail loudly


def test_wrong_time_unit_is_named(cdnow_sample):
    days = rfm_summary(cdnow_sample, CUTOFF, "D")
    with pytest.raises(ValueError, match=r"time_unit='W'.*recency_weeks.*recency_days"):
        ClvModel(time_unit="W").fit(days)


def test_invalid_summary_values_raise(summary_weeks):
    bad = summary_weeks.copy()
    bad.iloc[0, bad.columns.get_loc("recency_weeks")] = np.nan
    with pytest.raises(ValueError, match="missing"):
        ClvModel().fit(bad)
    bad = summary_weeks.copy()
    bad.iloc[0, bad.columns.get_loc("recency_weeks")] = 100.0
    with pytest.raises(ValueError, match="recency_weeks <= tenure_weeks"):
        ClvModel().fit(bad)


def test_bad_constructor_parameters_raise_at_fit(summary_weeks):
    with pytest.raises(ValueError, match="fit_auto"):
        ClvModel("auto").fit(summary_weeks)
    with pytest.raises(ValueError, match="purchase_model"):
        ClvModel("bg").fit(summary_weeks)
    with pytest.raises(ValueError, match="horizon"):
        ClvModel(horizon=0).fit(summary_weeks)


@pytest.mark.parametrize(("name", "label"), [("bgnbd", "BG/NBD"), ("mbgnbd", "MBG/NBD")])
def test_degenerate_data_raise_fit_error_naming_model_and_penalizer(name, label):
    # every customer buys regularly up to the cutoff: no sign of dropout, the MLE runs off to a
    # boundary of the parameter space
    n = 200
    data = pd.DataFrame(
        {
            "frequency": np.full(n, 5),
            "recency_weeks": np.full(n, 20.0),
            "tenure_weeks": np.full(n, 20.0),
            "monetary_value": np.full(n, 10.0),
        }
    )
    # which check fires first (a parameter on its bound, no convergence, a non-finite
    # likelihood) depends on the CPU's floating-point path; what the error must say does not
    with pytest.raises(
        ClvFitError,
        match=rf"^{re.escape(label)}: .*Try a positive clv\.purchase_penalizer \(e\.g\. 0\.001\)",
    ):
        ClvModel(name, spend_model=None).fit(data)


def test_zero_spend_customers_are_left_out_of_the_spend_fit(summary_weeks):
    data = summary_weeks.copy()
    repeat = data.index[data["frequency"] > 0][:3]
    data.loc[repeat, "monetary_value"] = 0.0
    with pytest.warns(ZeroSpendWarning, match="3 of 946"):
        model = ClvModel().fit(data)
    reference = ClvModel().fit(summary_weeks.drop(index=repeat))
    assert model.n_spend_excluded_ == 3
    assert model.n_spend_customers_ == 943
    for name, value in reference.spend_params_.items():
        assert model.spend_params_[name] == pytest.approx(value, rel=1e-6)
    pred = model.predict(data.loc[repeat])
    assert np.isfinite(pred["clv"]).all()
    # shrunk towards their own zero mean: below the population mean spend p v / (q - 1)
    p, q, v = (model.spend_params_[k] for k in ("p", "q", "v"))
    assert (pred["expected_avg_value"] < p * v / (q - 1)).all()


def test_nonfinite_spend_and_not_fitted_raise(summary_weeks):
    bad = summary_weeks.copy()
    repeat = bad.index[bad["frequency"] > 0][:3]
    bad.loc[repeat, "monetary_value"] = np.nan
    with pytest.raises(ValueError, match="monetary_value must be a finite number"):
        ClvModel().fit(bad)
    with pytest.raises(NotFittedError):
        ClvModel().predict(summary_weeks)
    with pytest.raises(NotFittedError):
        ClvModel().to_dict()


def test_spend_frequency_correlation_warns(summary_weeks):
    data = summary_weeks.copy()
    repeat = data["frequency"] > 0
    rng = np.random.default_rng(3)
    # same spend values, re-assigned so that frequent buyers get the larger ones
    key = data.loc[repeat, "frequency"].to_numpy() + rng.normal(0.0, 1.0, int(repeat.sum()))
    spend = np.sort(data.loc[repeat, "monetary_value"].to_numpy())
    data.loc[repeat, "monetary_value"] = spend[np.argsort(np.argsort(key))]
    with pytest.warns(SpendCorrelationWarning, match="correlated"):
        model = ClvModel().fit(data)
    assert model.spend_frequency_corr_ > 0.3
    with warnings.catch_warnings():
        warnings.simplefilter("error", SpendCorrelationWarning)
        ClvModel().fit(summary_weeks)  # CDNOW: no warning


@pytest.mark.parametrize("name", list(PUBLISHED))
def test_warm_start_path_reaches_the_same_estimate(summary_weeks, monkeypatch, name):
    # large data are first fitted on a weighted subsample (then Newton steps for Pareto/NBD);
    # force that path on CDNOW and compare with the direct fit
    direct = ClvModel(name, spend_model=None).fit(summary_weeks)
    monkeypatch.setattr("retain.clv.model.WARM_START_CUSTOMERS", 300)
    warm = ClvModel(name, spend_model=None).fit(summary_weeks)
    for key, value in direct.purchase_params_.items():
        assert warm.purchase_params_[key] == pytest.approx(value, rel=1e-6), key
        assert warm.purchase_standard_errors_[key] == pytest.approx(
            direct.purchase_standard_errors_[key], rel=1e-2
        )


def test_fit_mle_refuses_nan_likelihood():
    from retain.clv.mle import fit_mle

    def nan_loglik(params, grad):
        return np.full(3, np.nan), (np.zeros((3, 2)) if grad else None)

    with pytest.raises(ClvFitError, match=r"Pareto/NBD: the log-likelihood is NaN.*penalizer"):
        fit_mle("Pareto/NBD", nan_loglik, np.ones(3), np.array([1.0, 1.0]))


def test_penalizer_shrinks_parameters(summary_weeks):
    plain = ClvModel("bgnbd", spend_model=None).fit(summary_weeks)
    shrunk = ClvModel("bgnbd", spend_model=None, penalizer=0.1).fit(summary_weeks)
    before = sum(v**2 for v in plain.purchase_params_.values())
    after = sum(v**2 for v in shrunk.purchase_params_.values())
    assert after < before
    assert shrunk.log_likelihood_ < plain.log_likelihood_


def test_one_penalizer_for_both_pushes_gamma_gamma_q_below_one(summary_weeks):
    # CDNOW: a penalizer of 0.01 suits BG/NBD but pulls Gamma-Gamma's q below 1 (v is in
    # dollars): the fit is refused, naming the parameter and the setting to lower
    inherited = r"clv\.spend_penalizer is 0\.01 \(from clv\.penalizer\) .*: lower it"
    with pytest.raises(ClvFitError, match=rf"^Gamma-Gamma: q reached .*limit 1.*{inherited}"):
        ClvModel("bgnbd", penalizer=0.01).fit(summary_weeks)
    with pytest.raises(ClvFitError, match=r"^Gamma-Gamma: q .*clv\.spend_penalizer is 0\.01 and"):
        ClvModel("bgnbd", penalizer=0.0, spend_penalizer=0.01).fit(summary_weeks)


def test_separate_penalizers_penalise_each_sub_model_alone(summary_weeks):
    both = ClvModel("bgnbd", penalizer=0.01, spend_penalizer=0.0).fit(summary_weeks)
    purchase_only = ClvModel("bgnbd", spend_model=None, penalizer=0.01).fit(summary_weeks)
    plain = ClvModel("bgnbd").fit(summary_weeks)
    for k, v in purchase_only.purchase_params_.items():
        assert both.purchase_params_[k] == pytest.approx(v, rel=1e-9)
    for k, v in plain.spend_params_.items():
        assert both.spend_params_[k] == pytest.approx(v, rel=1e-9)
    # purchase_penalizer overrides penalizer for the purchase model only
    split = ClvModel("bgnbd", penalizer=0.0, purchase_penalizer=0.01).fit(summary_weeks)
    for k, v in purchase_only.purchase_params_.items():
        assert split.purchase_params_[k] == pytest.approx(v, rel=1e-9)
    for k, v in plain.spend_params_.items():
        assert split.spend_params_[k] == pytest.approx(v, rel=1e-9)
    # the saved form keeps them
    data = json.loads(json.dumps(split.to_dict()))
    assert data["params"]["purchase_penalizer"] == 0.01
    assert data["params"]["spend_penalizer"] is None
    assert ClvModel.from_dict(data).get_params() == split.get_params()
    # an older saved form without them still loads
    old = {**data, "params": {k: v for k, v in data["params"].items() if "_penalizer" not in k}}
    assert ClvModel.from_dict(old).spend_penalizer is None
    with pytest.raises(ValueError, match="spend_penalizer must be >= 0"):
        ClvModel(spend_penalizer=-1.0).fit(summary_weeks)


def test_penalizer_advice_texts():
    assert "Try a positive clv.spend_penalizer" in penalizer_advice(
        "Gamma-Gamma", "clv.spend_penalizer", 0.0, shrunk=True
    )
    text = penalizer_advice("BG/NBD", "clv.purchase_penalizer", 0.001, shrunk=False)
    assert text.startswith("clv.purchase_penalizer is 0.001: try a larger value")


def test_missing_spend_gives_missing_value_not_an_invented_one(fitted, summary_weeks):
    data = summary_weeks.copy()
    repeat = data.index[data["frequency"] > 0][0]
    new = data.index[data["frequency"] == 0][0]
    data.loc[[repeat, new], "monetary_value"] = np.nan
    pred = fitted["bgnbd"].predict(data)
    assert np.isnan(pred.loc[repeat, "expected_avg_value"]) and np.isnan(pred.loc[repeat, "clv"])
    # without repeat purchases the population mean is used whatever monetary_value says
    p, q, v = (fitted["bgnbd"].spend_params_[k] for k in "pqv")
    assert pred.loc[new, "expected_avg_value"] == pytest.approx(p * v / (q - 1))
    assert pred.drop(index=repeat).notna().all().all()
