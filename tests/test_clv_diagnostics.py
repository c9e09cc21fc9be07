"""ClvModel diagnostics against lifetimes and the BTYD walkthrough's published CDNOW figures.

Every comparison with lifetimes puts our fitted parameters into a lifetimes fitter
(``params_``), so only the formulas are compared, to 1e-6 relative. Published figures are
rounded: they are compared within half a unit of their last digit plus 1e-4 relative (the
walkthrough's own estimates differ from ours in the fifth significant digit).
"""

from __future__ import annotations

import warnings

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from lifetimes import BetaGeoFitter, ModifiedBetaGeoFitter, ParetoNBDFitter
from lifetimes.utils import expected_cumulative_transactions
from scipy import integrate, stats

from retain.clv import (
    ClvModel,
    cohort_tracking,
    expected_purchases_matrix,
    p_alive_history,
    p_alive_matrix,
    period_transactions,
)
from retain.clv.cutoff_features import probability_no_purchase as cutoff_no_purchase
from retain.features.rfm import rfm_summary
from retain.reporting.clv_diagnostics import (
    plot_cohort_tracking,
    plot_frequency_recency_matrix,
    plot_p_alive_history,
    plot_period_transactions,
)

CUTOFF, START, END = "1997-09-30", "1997-01-01", "1998-06-30"
MODELS = ("bgnbd", "mbgnbd", "pareto_nbd")
FITTERS = {"bgnbd": BetaGeoFitter, "mbgnbd": ModifiedBetaGeoFitter, "pareto_nbd": ParetoNBDFitter}
REL = 1e-6

# BTYD walkthrough (Dziurzynski, Wadsworth & McCarthy, "BTYD Walkthrough", CRAN vignette of the
# R package BTYD), Pareto/NBD on the CDNOW sample, weeks 20-25; quoted by lifetimes'
# tests/test_utils.py and pymc-marketing's tests/clv/test_utils.py:
#   cum.tracking[,20:25]  actual 1359 1414 1484 1517 1573 1672
#                         expected 1309 1385 1460 1533 1604 1674
#   inc.tracking[,20:25]  actual 73 55 70 33 56 99
#                         expected 78.31 76.42 74.65 72.98 71.41 69.93
BTYD_CUM_ACTUAL = [1359, 1414, 1484, 1517, 1573, 1672]
BTYD_CUM_EXPECTED = [1309, 1385, 1460, 1533, 1604, 1674]
BTYD_INC_ACTUAL = [73, 55, 70, 33, 56, 99]
BTYD_INC_EXPECTED = [78.31, 76.42, 74.65, 72.98, 71.41, 69.93]
# pnbd.PlotFrequencyInCalibration(params, cal.cbs, 7), bin sizes of freq.0 ... freq.7+
BTYD_FREQUENCY_COUNTS = [1411, 439, 214, 100, 62, 38, 29, 64]


@pytest.fixture(scope="module")
def summary(cdnow_sample: pd.DataFrame) -> pd.DataFrame:
    return rfm_summary(cdnow_sample, CUTOFF, "W")


@pytest.fixture(scope="module")
def fitted(summary: pd.DataFrame) -> dict[str, ClvModel]:
    return {name: ClvModel(name, spend_model=None).fit(summary) for name in MODELS}


def _lifetimes(model: ClvModel, params: dict | None = None):
    fitter = FITTERS[model.purchase_model]()
    fitter.params_ = pd.Series(params or model.purchase_params_)
    return fitter


def _arrays(summary: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return (
        summary["frequency"].to_numpy(float),
        summary["recency_weeks"].to_numpy(float),
        summary["tenure_weeks"].to_numpy(float),
    )


# ---------------------------------------------------------------- per-customer probabilities


@pytest.mark.parametrize("name", MODELS)
def test_new_customer_probability_of_n_purchases_matches_lifetimes(fitted, name):
    model = fitted[name]
    lt = _lifetimes(model)
    for t in (1.0, 10.0, 39.0, 78.0):
        for n in range(8):
            ours = model.probability_of_n_purchases(t, n)
            if name == "pareto_nbd":  # lifetimes has only the conditional form: history 0
                ref = float(lt.conditional_probability_of_n_purchases_up_to_time(n, t, 0, 0, 0))
            else:
                ref = float(lt.probability_of_n_purchases_up_to_time(t, n))
            assert ours == pytest.approx(ref, rel=REL), (t, n)
    assert model.probability_of_n_purchases(0.0, 0) == 1.0
    assert model.probability_of_n_purchases(0.0, 2) == 0.0


@pytest.mark.parametrize("name", MODELS)
def test_new_customer_expected_purchases_matches_lifetimes(fitted, name):
    model = fitted[name]
    t = np.array([0.5, 1.0, 10.0, 39.0, 78.0, 520.0])
    ours = model.expected_purchases_new_customer(t)
    np.testing.assert_allclose(
        ours, _lifetimes(model).expected_number_of_purchases_up_to_time(t), rtol=REL
    )
    assert model.expected_purchases_new_customer(0.0) == 0.0
    assert isinstance(model.expected_purchases_new_customer(2.0), float)


def test_pareto_conditional_probability_of_n_purchases_matches_lifetimes(fitted, summary):
    model = fitted["pareto_nbd"]
    lt = _lifetimes(model)
    x, t_x, T = _arrays(summary)
    for n in range(5):
        ours = model.probability_of_n_purchases(39.0, n, summary).to_numpy()
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ref = np.asarray(
                lt.conditional_probability_of_n_purchases_up_to_time(n, 39.0, x, t_x, T)
            )
        finite = np.isfinite(ref)
        assert finite.mean() > 0.9  # lifetimes' NaN where recency equals tenure (README)
        np.testing.assert_allclose(ours[finite], ref[finite], rtol=REL, atol=1e-12)


@pytest.mark.parametrize("name", ["bgnbd", "mbgnbd"])
def test_bg_conditional_probability_of_n_purchases_matches_lifetimes_posterior(
    fitted, summary, name
):
    # lifetimes has no conditional pmf for these; an alive customer's future is the same model
    # with posterior parameters r + x, alpha + T, a, b + x (MBG/NBD: b + x + 1), so
    # P(n | history) = (1 - p_alive) [n = 0] + p_alive * lifetimes' unconditional P(n).
    model = fitted[name]
    p = model.purchase_params_
    rows = summary.drop_duplicates(["frequency", "recency_weeks", "tenure_weeks"]).iloc[::25]
    p_alive = _lifetimes(model).conditional_probability_alive(*_arrays(rows))
    shift = 1.0 if name == "mbgnbd" else 0.0
    for n in range(4):
        ours = model.probability_of_n_purchases(26.0, n, rows).to_numpy()
        ref = []
        for (x, _, T), alive in zip(zip(*_arrays(rows), strict=True), p_alive, strict=True):
            post = {"r": p["r"] + x, "alpha": p["alpha"] + T, "a": p["a"], "b": p["b"] + x + shift}
            alive_pmf = BetaGeoFitter.probability_of_n_purchases_up_to_time(
                _lifetimes(model, post), 26.0, n
            )
            ref.append((1 - alive) * (n == 0) + alive * alive_pmf)
        np.testing.assert_allclose(ours, ref, rtol=REL)


@pytest.mark.parametrize("name", MODELS)
def test_conditional_pmf_sums_to_one_with_lifetimes_mean(fitted, summary, name):
    model = fitted[name]
    rows = summary.iloc[::40]
    pmf = np.array([model.probability_of_n_purchases(39.0, n, rows).to_numpy() for n in range(300)])
    np.testing.assert_allclose(pmf.sum(axis=0), 1.0, rtol=1e-9)
    mean = np.arange(300) @ pmf
    ref = _lifetimes(model).conditional_expected_number_of_purchases_up_to_time(
        39.0, *_arrays(rows)
    )
    np.testing.assert_allclose(mean, ref, rtol=REL)


@pytest.mark.parametrize("name", MODELS)
def test_probability_no_purchase_is_the_one_implementation(fitted, summary, name):
    model = fitted[name]
    ours = model.probability_no_purchase(26.0, summary)
    assert ours.name == "p_no_purchase"
    assert ours.index.equals(summary.index)
    np.testing.assert_allclose(ours, model.probability_of_n_purchases(26.0, 0, summary), rtol=0)
    # the churn features' function (retain.clv.cutoff_features) gives the same numbers
    np.testing.assert_allclose(ours, cutoff_no_purchase(model, summary, 26.0), rtol=1e-9)
    if name != "pareto_nbd":
        p = model.purchase_params_
        x, _, T = _arrays(summary)
        alive = _lifetimes(model).conditional_probability_alive(*_arrays(summary))
        closed = 1 - alive + alive * ((p["alpha"] + T) / (p["alpha"] + T + 26.0)) ** (p["r"] + x)
        np.testing.assert_allclose(ours, closed, rtol=REL)
    assert model.probability_no_purchase(5.0) == model.probability_of_n_purchases(5.0, 0)


def test_pareto_new_customer_pmf_against_independent_integration(fitted):
    # P(X(t) = n) = E[ Poisson(n; lambda min(tau, t)) ], tau ~ Exp(mu): integrate over the death
    # time with scipy's adaptive quadrature (our code uses fixed Gauss-Legendre nodes)
    model = fitted["pareto_nbd"]
    p = model.purchase_params_
    r, alpha, s, beta = p["r"], p["alpha"], p["s"], p["beta"]

    def nbd(n, u):
        return stats.nbinom.pmf(n, r, alpha / (alpha + u))

    for t in (5.0, 39.0):
        for n in (0, 1, 3):
            death, _ = integrate.quad(
                lambda u, n=n: s / beta * (beta / (beta + u)) ** (s + 1) * nbd(n, u),
                0.0,
                t,
                epsabs=1e-14,
                epsrel=1e-12,
            )
            ref = (beta / (beta + t)) ** s * nbd(n, t) + death
            assert model.probability_of_n_purchases(t, n) == pytest.approx(ref, rel=1e-9)


def test_probability_arguments_are_checked(fitted):
    model = fitted["bgnbd"]
    with pytest.raises(ValueError, match="n must be"):
        model.probability_of_n_purchases(1.0, 1.5)
    with pytest.raises(ValueError, match="t must be"):
        model.probability_no_purchase(-1.0)


# ---------------------------------------------------------------- matrices


@pytest.mark.parametrize("name", MODELS)
def test_matrices_match_lifetimes(fitted, name):
    model = fitted[name]
    lt = _lifetimes(model)
    alive = p_alive_matrix(model, max_frequency=12, max_recency=38)
    assert alive.shape == (39, 13)
    assert alive.index.name == "recency_weeks" and alive.columns.name == "frequency"
    possible = (alive.columns.to_numpy()[None, :] > 0) | (alive.index.to_numpy()[:, None] == 0)
    assert np.isnan(alive.to_numpy()[~possible]).all()  # frequency 0 with recency > 0
    expected = expected_purchases_matrix(model, 10.0, max_frequency=12, max_recency=38)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref_alive = np.array(lt.conditional_probability_alive_matrix(12, 38), dtype=float)
        ref_expected = np.array(
            [
                [
                    lt.conditional_expected_number_of_purchases_up_to_time(10.0, f, r, 38)
                    for f in range(13)
                ]
                for r in range(39)
            ],
            dtype=float,
        ).reshape(39, 13)
    for ours, ref in ((alive, ref_alive), (expected, ref_expected)):
        ours = ours.to_numpy()
        check = possible & np.isfinite(ref)
        assert check.sum() >= 0.9 * possible.sum()
        np.testing.assert_allclose(ours[check], ref[check], rtol=REL)


def test_matrix_grid_is_checked(fitted):
    with pytest.raises(ValueError, match="tenure"):
        p_alive_matrix(fitted["bgnbd"], 5, 10, tenure=5)


# ---------------------------------------------------------------- period transactions


@pytest.mark.parametrize("name", MODELS)
def test_period_transactions(fitted, summary, name):
    model = fitted[name]
    table = period_transactions(model, summary, max_frequency=7)
    assert list(table["label"]) == ["0", "1", "2", "3", "4", "5", "6", "7+"]
    assert list(table["actual"]) == BTYD_FREQUENCY_COUNTS
    direct = summary["frequency"].clip(upper=7).value_counts().sort_index()
    assert list(table["actual"]) == list(direct)
    assert table["expected"].sum() == pytest.approx(len(summary), rel=1e-12)
    lt = _lifetimes(model)
    T = summary["tenure_weeks"].to_numpy(float)
    for n in range(7):
        if name == "pareto_nbd":
            pmf = lt.conditional_probability_of_n_purchases_up_to_time
            ref = sum(pmf(n, t, 0, 0, 0) for t in T)
        else:
            ref = sum(lt.probability_of_n_purchases_up_to_time(t, n) for t in T)
        assert table.loc[n, "expected"] == pytest.approx(ref, rel=REL), n


# ---------------------------------------------------------------- cohort tracking


@pytest.fixture(scope="module")
def tracking(fitted, cdnow_sample) -> dict[str, pd.DataFrame]:
    return {name: cohort_tracking(fitted[name], cdnow_sample, START, END) for name in MODELS}


def test_cohort_tracking_matches_the_btyd_walkthrough(tracking):
    weeks = tracking["pareto_nbd"].loc[20:25]
    assert list(weeks["actual_cumulative"]) == BTYD_CUM_ACTUAL
    assert list(weeks["actual"]) == BTYD_INC_ACTUAL
    for ours, published, half_unit in (
        (weeks["expected_cumulative"], BTYD_CUM_EXPECTED, 0.5),
        (weeks["expected"], BTYD_INC_EXPECTED, 0.005),
    ):
        published = np.asarray(published, dtype=float)
        assert np.all(np.abs(ours.to_numpy() - published) <= half_unit + 1e-4 * published)


@pytest.mark.parametrize("name", MODELS)
def test_cohort_tracking_matches_lifetimes(fitted, tracking, cdnow_sample, name):
    ours = tracking[name]
    assert len(ours) == 78
    assert ours["period_end"].iloc[-1] == pd.Timestamp(END)
    ref = expected_cumulative_transactions(
        _lifetimes(fitted[name]),
        cdnow_sample,
        "timestamp",
        "customer_id",
        78 * 7,
        freq="D",
        freq_multiplier=7,
    )
    np.testing.assert_allclose(ours["expected_cumulative"], ref["predicted"], rtol=REL)
    assert list(ours["actual_cumulative"]) == list(ref["actual"])
    np.testing.assert_allclose(ours["expected"].cumsum(), ours["expected_cumulative"], rtol=1e-12)


def test_cohort_tracking_actual_is_a_direct_count(tracking, cdnow_sample):
    occ = cdnow_sample.assign(day=cdnow_sample["timestamp"].dt.normalize())
    occ = occ.drop_duplicates(["customer_id", "day"])
    first = occ.groupby("customer_id")["day"].transform("min")
    repeat = occ[occ["day"] > first]
    week = (repeat["day"] - pd.Timestamp(START)).dt.days // 7 + 1
    counts = week.value_counts().reindex(range(1, 79), fill_value=0)
    assert list(tracking["bgnbd"]["actual"]) == list(counts)
    # FHL (2005): 1,882 repeat purchases in weeks 40-78
    assert tracking["bgnbd"].loc[40:78, "actual"].sum() == 1882


def test_cohort_tracking_refuses_earlier_transactions(fitted, cdnow_sample):
    with pytest.raises(ValueError, match="before start"):
        cohort_tracking(fitted["bgnbd"], cdnow_sample, "1997-02-01", END)


# ---------------------------------------------------------------- P(alive) history


def test_p_alive_history_matches_lifetimes(fitted, cdnow_sample):
    weekly = fitted["bgnbd"]
    # the same model in days: alpha is a time scale
    d = weekly.to_dict()
    d["params"] = {**d["params"], "time_unit": "D"}
    d["purchase_params"] = {**d["purchase_params"], "alpha": d["purchase_params"]["alpha"] * 7}
    daily = ClvModel.from_dict(d)
    busy = cdnow_sample.groupby("customer_id")["timestamp"].nunique().idxmax()
    ours = p_alive_history(daily, cdnow_sample, busy, END)
    rows = cdnow_sample[cdnow_sample["customer_id"] == busy]
    first = rows["timestamp"].min()
    # lifetimes' calculate_alive_path (fillna(method=...)) fails on pandas 3: its steps, with
    # lifetimes' own conditional_probability_alive
    days = (rows["timestamp"].dt.normalize() - first.normalize()).dt.days.unique()
    path = pd.DataFrame({"T": np.arange((pd.Timestamp(END) - first.normalize()).days + 1)})
    path["transactions"] = path["T"].isin(days).astype(int)
    path["frequency"] = path["transactions"].cumsum() - 1
    path["recency"] = path["T"].where(path["transactions"] > 0).ffill().fillna(0)
    ref = _lifetimes(daily).conditional_probability_alive(
        *(path[c].to_numpy(float) for c in ("frequency", "recency", "T"))
    )
    assert len(ours) == len(ref)
    np.testing.assert_allclose(ours["p_alive"], np.asarray(ref, dtype=float), rtol=REL)
    assert ours["purchase"].sum() == rows["timestamp"].dt.normalize().nunique()
    in_weeks = p_alive_history(weekly, cdnow_sample, busy, END)
    np.testing.assert_allclose(in_weeks["p_alive"], ours["p_alive"], rtol=1e-9)
    with pytest.raises(ValueError, match="no transaction"):
        p_alive_history(daily, cdnow_sample, busy, "1990-01-01")


# ---------------------------------------------------------------- plots


def test_plots_take_and_return_axes(fitted, summary, tracking, cdnow_sample):
    model = fitted["bgnbd"]
    history = p_alive_history(model, cdnow_sample, cdnow_sample["customer_id"].iloc[0], END)
    draws = [
        lambda ax: plot_frequency_recency_matrix(p_alive_matrix(model, 10, 38), ax=ax),
        lambda ax: plot_period_transactions(period_transactions(model, summary), ax=ax),
        lambda ax: plot_cohort_tracking(tracking["bgnbd"], ax=ax, calibration_end=CUTOFF),
        lambda ax: plot_cohort_tracking(tracking["bgnbd"], ax=ax, cumulative=False),
        lambda ax: plot_p_alive_history(history, ax=ax),
    ]
    for draw in draws:
        fig, ax = plt.subplots()
        try:
            assert draw(ax) is ax
            assert plt.fignum_exists(fig.number)  # nothing closed behind the caller's back
        finally:
            plt.close(fig)
        ax = draw(None)
        try:
            assert ax.has_data()
        finally:
            plt.close(ax.figure)
    with pytest.raises(ValueError, match="missing"):
        plot_cohort_tracking(pd.DataFrame({"actual": [1]}))
