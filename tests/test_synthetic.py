"""The synthetic generator: reproducibility, contracts, and that the data follow the process.

Statistical checks compare a realised quantity with its expectation under the generating
process and accept |z| < 4 (a false alarm rate of about 6e-5 per check); with fixed seeds the
outcome is deterministic, the tolerance only says the comparison is not cherry-picked.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from lifetimes import BetaGeoFitter, ModifiedBetaGeoFitter

from retain.contracts import CUSTOMERS, EVENT_TYPES, EVENTS, TRANSACTIONS
from retain.features.rfm import rfm_summary
from retain.synthetic import (
    SEED_BLOCK,
    BgNbdParams,
    GammaGammaParams,
    expected_transactions_per_customer,
    generate_synthetic,
    scale_purchase_rate,
    true_churn_probability,
)

START, END = "2022-01-01", "2024-12-31"
Z_MAX = 4.0


def _z(observed: float, expected: float, se: float) -> float:
    return abs(observed - expected) / se


@pytest.fixture(scope="module")
def small():
    """A small data set with events (about 6k customers, two seed blocks)."""
    return generate_synthetic(SEED_BLOCK + 2000, START, END, seed=11)


@pytest.fixture(scope="module")
def large():
    """40k customers without events, for the statistical checks."""
    return generate_synthetic(40_000, START, END, seed=5, with_events=False)


def _frames(data):
    return [data.transactions, data.events, data.customers, data.truth]


def test_same_seed_same_data_and_different_seed_differs(small):
    again = generate_synthetic(SEED_BLOCK + 2000, START, END, seed=11)
    for a, b in zip(_frames(small), _frames(again), strict=True):
        pd.testing.assert_frame_equal(a, b)
    other = generate_synthetic(SEED_BLOCK + 2000, START, END, seed=12)
    assert not np.allclose(
        other.truth["purchase_rate_per_day"], small.truth["purchase_rate_per_day"]
    )
    assert len(other.transactions) != len(small.transactions) or not np.allclose(
        other.transactions["amount"], small.transactions["amount"]
    )


def test_chunk_size_does_not_change_the_data(small):
    chunked = generate_synthetic(SEED_BLOCK + 2000, START, END, seed=11, chunk_size=1000)
    for a, b in zip(_frames(small), _frames(chunked), strict=True):
        pd.testing.assert_frame_equal(a, b)


def test_events_switch_leaves_transactions_and_truth_unchanged(small):
    plain = generate_synthetic(SEED_BLOCK + 2000, START, END, seed=11, with_events=False)
    assert plain.events is None
    pd.testing.assert_frame_equal(plain.transactions, small.transactions)
    pd.testing.assert_frame_equal(plain.truth, small.truth)


def test_contract_dtypes_and_event_types(small):
    for frame, contract in (
        (small.transactions, TRANSACTIONS),
        (small.events, EVENTS),
        (small.customers, CUSTOMERS),
    ):
        # every contract column but item_id (the generator draws spend per purchase, no items)
        expected = [c for c in contract.columns if c != "item_id"]
        assert list(frame.columns) == expected
        for col, dtype in {**contract.required, **contract.optional}.items():
            if col in expected:
                assert frame[col].dtype == dtype, (contract.name, col, frame[col].dtype)
    assert small.truth.index.dtype == "string"
    assert small.truth.index.is_unique
    assert set(small.events["event_type"].unique()) <= set(EVENT_TYPES)
    assert set(small.events["event_type"].unique()) == set(EVENT_TYPES)
    ev = small.events
    tickets = ev.loc[ev["event_type"] == "support_ticket", "value"]
    surveys = ev.loc[ev["event_type"] == "survey", "value"]
    assert tickets.between(1, 5).all() and (tickets == tickets.round()).all()
    assert surveys.between(0, 10).all() and (surveys == surveys.round()).all()
    assert ev.loc[~ev["event_type"].isin(["support_ticket", "survey"]), "value"].isna().all()
    end = pd.Timestamp(END) + pd.Timedelta(days=1)
    for frame in (small.transactions, small.events):
        assert frame["timestamp"].min() >= pd.Timestamp(START)
        assert frame["timestamp"].max() < end
    # timestamps carry a time of day
    assert (small.transactions["timestamp"].dt.hour != 0).mean() > 0.5


def test_transactions_match_truth(small):
    tx, truth = small.transactions, small.truth
    assert (tx["amount"] > 0).all() and (tx["quantity"] >= 1).all()
    # one order per occasion; split rows share the order id and the day
    orders = tx.assign(day=tx["timestamp"].dt.normalize()).groupby("order_id", sort=False)
    orders = orders.agg(
        customer_id=("customer_id", "first"),
        first_day=("day", "min"),
        last_day=("day", "max"),
        rows=("amount", "size"),
    )
    assert (orders["first_day"] == orders["last_day"]).all()
    assert (orders["rows"] > 1).any()
    per_customer = orders.groupby("customer_id").size()
    pd.testing.assert_series_equal(
        per_customer.reindex(truth.index), truth["n_occasions"], check_names=False
    )
    first = tx.groupby("customer_id")["timestamp"].min()
    pd.testing.assert_series_equal(
        first.reindex(truth.index), truth["first_purchase"], check_names=False
    )
    # no purchase after death; the last purchase of a dead customer is the death
    last = tx.groupby("customer_id")["timestamp"].max().reindex(truth.index)
    dead = truth["death_time"].notna()
    assert (last[dead] == truth.loc[dead, "death_time"]).all()
    signup = small.customers.set_index("customer_id")["signup_date"]
    assert (signup == truth["first_purchase"].dt.normalize()).all()


def test_purchase_rate_matches_lambda_over_alive_time(large):
    """Wald's identity: E[repeats - lambda * alive time] = 0 for the stopped Poisson process."""
    truth = large.truth
    end = truth["observed_until"].iloc[0] + pd.Timedelta(days=1)
    alive_until = truth["death_time"].fillna(end)
    exposure = (alive_until - truth["first_purchase"]) / pd.Timedelta(days=1)
    # purchase times are rounded down to the second: at most 1/86400 day of bias per purchase
    d = (truth["n_occasions"] - 1) - truth["purchase_rate_per_day"] * exposure
    assert _z(d.mean(), 0.0, d.std() / np.sqrt(len(d))) < Z_MAX
    p = large.params["purchase"]
    lam = truth["purchase_rate_per_day"]
    assert _z(lam.mean(), p.r / p.alpha, np.sqrt(p.r) / p.alpha / np.sqrt(len(lam))) < Z_MAX


def test_dropout_after_first_repeat_purchase_is_mean_p(large):
    """BG/NBD: nobody dies at the first purchase; P(death at first repeat) = a / (a + b)."""
    truth = large.truth
    p = large.params["purchase"]
    dead = truth["death_time"].notna()
    assert not (dead & (truth["n_occasions"] == 1)).any()
    with_repeat = truth["n_occasions"] >= 2
    frac = (dead & (truth["n_occasions"] == 2))[with_repeat].mean()
    mean_p = p.a / (p.a + p.b)
    n = with_repeat.sum()
    assert _z(frac, mean_p, np.sqrt(mean_p * (1 - mean_p) / n)) < Z_MAX
    # p keeps its Beta marginal; satisfaction is lower for likely leavers
    var_p = p.a * p.b / ((p.a + p.b) ** 2 * (p.a + p.b + 1))
    dp = truth["dropout_probability"]
    assert _z(dp.mean(), mean_p, np.sqrt(var_p / len(dp))) < Z_MAX


def test_mbgnbd_option_drops_out_after_first_purchase():
    data = generate_synthetic(
        20_000, START, END, seed=3, with_events=False, dropout_at_first_purchase=True
    )
    truth = data.truth
    p = data.params["purchase"]
    died_at_first = (truth["death_time"].notna() & (truth["n_occasions"] == 1)).mean()
    mean_p = p.a / (p.a + p.b)
    assert _z(died_at_first, mean_p, np.sqrt(mean_p * (1 - mean_p) / len(truth))) < Z_MAX


def test_spend_per_occasion_matches_gamma_gamma(large):
    tx = large.transactions
    occasion = tx.groupby("order_id", sort=False).agg(
        customer_id=("customer_id", "first"), amount=("amount", "sum")
    )
    # the first occasion of each customer: one independent draw per customer
    first = occasion.groupby("customer_id")["amount"].first()
    spend: GammaGammaParams = large.params["spend"]
    se = first.std() / np.sqrt(len(first))
    assert _z(first.mean(), spend.p * spend.v / (spend.q - 1), se) < Z_MAX  # population mean
    # per customer, the conditional mean is p / nu (truth)
    ratio = first / large.truth["expected_spend_per_occasion"].reindex(first.index)
    # z / (p / nu) ~ Gamma(p, rate p): mean 1, variance 1 / p
    assert _z(ratio.mean(), 1.0, np.sqrt(1 / spend.p / len(ratio))) < Z_MAX


def test_true_churn_probability_matches_realised_churn(large):
    cutoff, horizon = pd.Timestamp("2023-06-30"), 180
    prob = true_churn_probability(large.truth, cutoff, horizon)
    truth = large.truth
    acquired = truth["first_purchase"] < cutoff + pd.Timedelta(days=1)
    assert prob.index.equals(truth.index[acquired])
    dead = truth["death_time"] < cutoff + pd.Timedelta(days=1)
    assert (prob[dead.reindex(prob.index)] == 1.0).all()
    alive = prob[~dead.reindex(prob.index)]
    assert ((alive > 0) & (alive < 1)).all()
    # realised labels from the transactions: no purchase in days cutoff+1 .. cutoff+H
    tx = large.transactions
    ts = tx["timestamp"]
    in_h = (ts >= cutoff + pd.Timedelta(days=1)) & (ts < cutoff + pd.Timedelta(days=horizon + 1))
    bought = pd.Index(tx.loc[in_h, "customer_id"].unique())
    churned = (~prob.index.isin(bought)).astype(float)
    se = np.sqrt((prob * (1 - prob)).sum()) / len(prob)
    assert _z(churned.mean(), prob.mean(), se) < Z_MAX
    # the oracle ranks well: dead customers never buy
    assert churned[dead.reindex(prob.index).to_numpy()].min() == 1.0
    with pytest.raises(ValueError, match="after the simulated window"):
        true_churn_probability(truth, "2025-01-01", 30)


def test_engagement_tracks_the_alive_state(small):
    ev, truth = small.events, small.truth
    death = ev["customer_id"].map(truth["death_time"])
    after = death.notna() & (ev["timestamp"] > death)
    params = small.params["events"]
    # after death: opens at the low background rate, no referrals, surveys only about the last
    # purchase (within 7 days) and tickets only as the complaint within 14 days
    sent_after = (after & (ev["event_type"] == "email_sent")).sum()
    opens_after = (after & (ev["event_type"] == "email_open")).sum()
    # an open up to a few hours after a send right before death may count as "after"
    rate = opens_after / sent_after
    q = params.open_prob_dead
    assert _z(rate, q, np.sqrt(q * (1 - q) / sent_after)) < Z_MAX + 2
    assert not (after & (ev["event_type"] == "referral")).any()
    week = after & (ev["timestamp"] > death + pd.Timedelta(days=7))
    assert not (week & (ev["event_type"] == "survey")).any()
    late = after & (ev["timestamp"] > death + pd.Timedelta(days=14))
    assert not (late & (ev["event_type"] == "support_ticket")).any()
    # sessions in the last 90 days of the window are Poisson given the latent state: rate
    # e * (k * lambda + floor) for customers alive throughout, e * background for the dead
    end = pd.Timestamp(END) + pd.Timedelta(days=1)
    window_start = end - pd.Timedelta(days=90)
    recent = ev[(ev["event_type"] == "session") & (ev["timestamp"] >= window_start)]
    counts = recent.groupby("customer_id").size().reindex(truth.index, fill_value=0)
    e, lam = truth["engagement_propensity"], truth["purchase_rate_per_day"]
    alive = truth["death_time"].isna()
    dead = truth["death_time"] < window_start
    expected_alive = (e * (params.sessions_per_purchase * lam + params.session_floor_per_day) * 90)[
        alive
    ]
    expected_dead = (e * params.dead_session_rate_per_day * 90)[dead]
    for mask, expected in ((alive, expected_alive), (dead, expected_dead)):
        observed = counts[mask].sum()
        assert _z(observed, expected.sum(), np.sqrt(expected.sum())) < Z_MAX
    # so a recent session separates alive from dead far better than chance
    assert (counts[alive] > 0).mean() > 0.5 > 0.25 > (counts[dead] > 0).mean()


def test_target_transactions_per_customer():
    params = scale_purchase_rate(BgNbdParams(), 10.0, START, END)
    assert expected_transactions_per_customer(params, START, END) == pytest.approx(10.0, 1e-6)
    assert params.r == BgNbdParams().r and params.a == BgNbdParams().a
    data = generate_synthetic(
        30_000, START, END, seed=2, with_events=False, transactions_per_customer=10.0
    )
    rows = data.transactions.groupby("customer_id").size()
    assert _z(rows.mean(), 10.0, rows.std() / np.sqrt(len(rows))) < Z_MAX
    assert data.params["purchase"] == params
    with pytest.raises(ValueError, match="cannot be reached"):
        scale_purchase_rate(BgNbdParams(a=3.0, b=1.0), 50.0, START, END)


def _continuous_rfm(tx: pd.DataFrame, end: str) -> pd.DataFrame:
    """(x, t_x, T) in days from exact purchase times (one occasion per order)."""
    orders = tx.groupby("order_id", sort=False).agg(
        customer_id=("customer_id", "first"), t=("timestamp", "first")
    )
    g = orders.groupby("customer_id")["t"].agg(["min", "max", "size"])
    day = pd.Timedelta(days=1)
    return pd.DataFrame(
        {
            "x": g["size"] - 1,
            "t_x": (g["max"] - g["min"]) / day,
            "T": (pd.Timestamp(end) + day - g["min"]) / day,
        }
    )


@pytest.mark.parametrize("mbg", [False, True])
def test_lifetimes_recovers_bgnbd_parameters(mbg):
    """Sanity check that lifetimes recovers r, alpha, a, b from 20k simulated customers.

    On the exact purchase times (continuous x, t_x, T) the process is exactly the BG/NBD (or
    MBG/NBD), so estimates must lie within 4 asymptotic standard errors (lifetimes'
    ``standard_errors_``, from the Hessian). Through our daily ``rfm_summary`` same-day
    purchases merge (about 1.5% of repeat purchases at the default rates), which thins the
    heavy buyers: at 100k customers that biases r and alpha upwards by 1-7% and a, b by less
    than 2%. The daily fit gets that allowance on top of the 4 standard errors.
    """
    truth_params = BgNbdParams()
    data = generate_synthetic(
        20_000, START, END, seed=21, with_events=False, dropout_at_first_purchase=mbg
    )
    fitter_cls = ModifiedBetaGeoFitter if mbg else BetaGeoFitter
    cont = _continuous_rfm(data.transactions, END)
    exact = fitter_cls().fit(cont["x"], cont["t_x"], cont["T"])
    summary = rfm_summary(data.transactions, END, time_unit="D")
    daily = fitter_cls().fit(summary["frequency"], summary["recency_days"], summary["tenure_days"])
    allowance = {"r": 0.07, "alpha": 0.07, "a": 0.02, "b": 0.02}
    for name in ("r", "alpha", "a", "b"):
        true = getattr(truth_params, name)
        est, se = exact.params_[name], exact.standard_errors_[name]
        assert abs(est - true) < Z_MAX * se, ("exact", name, est, true, se)
        est, se = daily.params_[name], daily.standard_errors_[name]
        assert abs(est - true) < Z_MAX * se + allowance[name] * true, ("daily", name, est, se)


def test_acquisition_window_and_invalid_arguments():
    data = generate_synthetic(
        500, START, END, seed=1, with_events=False, acquisition_end="2022-03-31"
    )
    first = data.truth["first_purchase"]
    assert first.min() >= pd.Timestamp(START)
    assert first.max() < pd.Timestamp("2022-04-01")
    assert (data.truth["observed_until"] == pd.Timestamp(END)).all()
    with pytest.raises(ValueError, match="n_customers"):
        generate_synthetic(0, START, END, seed=1)
    with pytest.raises(ValueError, match="acquisition_end"):
        generate_synthetic(10, START, END, seed=1, acquisition_end="2025-06-30")
    with pytest.raises(ValueError, match="end"):
        generate_synthetic(10, END, START, seed=1)
    with pytest.raises(ValueError, match="alpha"):
        BgNbdParams(alpha=0.0)
    with pytest.raises(ValueError, match="horizon_days"):
        true_churn_probability(data.truth, "2023-01-31", 0)
