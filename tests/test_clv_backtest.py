"""CLV backtests by explicit dates, model selection and the backtest plots."""

from __future__ import annotations

import datetime as dt

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

import retain.clv.backtest as bt
from retain.clv import ClvFitError, ClvModel, fit_auto, run_backtest, run_from_config
from retain.config import ClvConfig
from retain.reporting.clv_plots import plot_cumulative_purchases, plot_frequency_table

CAL, HOLD = "1997-09-30", "1998-06-30"


@pytest.fixture(scope="module")
def result(cdnow_sample: pd.DataFrame) -> bt.BacktestResult:
    return run_backtest(cdnow_sample, CAL, HOLD, ClvModel("bgnbd"))


def test_cdnow_holdout_actual_total_is_1882(result):
    # Fader, Hardie & Lee (2005): 1,882 repeat purchases in weeks 40-78 by the 2,357 customers
    assert result.metrics["total_actual"] == 1882
    assert result.metrics["n_customers"] == 2357
    assert result.metrics["holdout_days"] == 273
    assert result.per_customer["actual_purchases"].sum() == 1882


def test_backtest_metrics_are_consistent_with_tables(result):
    pc = result.per_customer
    err = pc["predicted_purchases"] - pc["actual_purchases"]
    assert result.metrics["mae"] == pytest.approx(err.abs().mean())
    assert result.metrics["rmse"] == pytest.approx(np.sqrt((err**2).mean()))
    assert result.metrics["total_predicted"] == pytest.approx(pc["predicted_purchases"].sum())
    # BG/NBD under-forecasts the CDNOW holdout by roughly 12 % (1,653 vs 1,882 in the literature)
    assert 1600 < result.metrics["total_predicted"] < 1700
    table = result.by_frequency
    assert list(table["frequency"]) == ["0", "1", "2", "3", "4", "5", "6", "7+"]
    assert table["customers"].sum() == 2357
    assert (table["customers"] * table["mean_actual"]).sum() == pytest.approx(1882)
    # mean predicted purchases grow with calibration frequency
    assert table["mean_predicted"].is_monotonic_increasing
    spenders = pc["actual_purchases"] > 0
    assert result.metrics["n_spenders"] == spenders.sum()
    assert result.metrics["mean_actual_spend"] == pytest.approx(
        pc.loc[spenders, "actual_mean_spend"].mean()
    )
    assert pc.loc[~spenders, "actual_mean_spend"].isna().all()


def test_cumulative_series_ends_at_the_totals(result):
    cum = result.cumulative
    assert list(cum["week"]) == list(range(1, 40))
    assert cum["date"].iloc[-1] == pd.Timestamp(HOLD)
    assert cum["actual"].is_monotonic_increasing
    assert cum["predicted"].is_monotonic_increasing
    assert cum["actual"].iloc[-1] == 1882
    assert cum["predicted"].iloc[-1] == pytest.approx(result.metrics["total_predicted"])


def test_split_uses_only_data_up_to_each_date(cdnow_sample, result):
    later = pd.DataFrame(
        {
            "customer_id": pd.array(["0001", "0002", "9999"], dtype="string"),
            "timestamp": pd.to_datetime(["1998-07-01", "1998-08-01", "1998-07-02"]),
            "amount": [10.0, 20.0, 30.0],
            "quantity": [1.0, 1.0, 1.0],
        }
    )
    res = run_backtest(pd.concat([cdnow_sample, later]), CAL, HOLD, ClvModel("bgnbd"))
    pd.testing.assert_frame_equal(res.per_customer, result.per_customer)
    # a purchase on the calibration end day belongs to calibration, the next day to the holdout
    edge = pd.DataFrame(
        {
            "customer_id": pd.array(["0003", "0004"], dtype="string"),
            "timestamp": pd.to_datetime(["1997-09-30 23:00", "1997-10-01 00:00"]),
            "amount": [5.0, 7.0],
            "quantity": [1.0, 1.0],
        }
    )
    res = run_backtest(pd.concat([cdnow_sample, edge]), CAL, HOLD, ClvModel("bgnbd"))
    assert res.per_customer.loc["0003", "frequency"] == 1
    assert res.metrics["total_actual"] == 1883


def test_invalid_window_raises(cdnow_sample):
    with pytest.raises(ValueError, match="after calibration_end"):
        run_backtest(cdnow_sample, HOLD, CAL)


@pytest.mark.parametrize("metric", ["mae", "rmse", "total_abs_error"])
def test_fit_auto_selects_lowest_holdout_error(cdnow_sample, metric):
    auto = fit_auto(cdnow_sample, CAL, HOLD, metric=metric)
    comp = auto.comparison
    assert list(comp.index) == ["bgnbd", "pareto_nbd", "mbgnbd"]
    assert auto.selected == comp[metric].astype(float).idxmin()
    assert comp["selected"].sum() == 1 and comp.loc[auto.selected, "selected"]
    assert (comp["error"] == "").all()
    assert auto.model is auto.best.model
    assert auto.model.purchase_model == auto.selected
    assert (comp["total_actual"] == 1882).all()


def test_fit_auto_records_failed_candidates_and_refits(cdnow_sample, monkeypatch):
    real = bt.run_backtest

    def failing(transactions, cal, hold, model, **kwargs):
        if model.purchase_model == "mbgnbd":
            raise ClvFitError("MBG/NBD: did not converge")
        return real(transactions, cal, hold, model, **kwargs)

    monkeypatch.setattr(bt, "run_backtest", failing)
    auto = fit_auto(cdnow_sample, CAL, HOLD, purchase_models=("bgnbd", "mbgnbd"), final_cutoff=HOLD)
    assert auto.selected == "bgnbd"
    assert "did not converge" in auto.comparison.loc["mbgnbd", "error"]
    assert np.isnan(auto.comparison.loc["mbgnbd", "mae"])
    assert auto.model.n_customers_ == 2357  # the sample's customers all start in 1997 Q1
    assert auto.model.purchase_params_ != auto.best.model.purchase_params_

    def all_fail(*args, **kwargs):
        raise ClvFitError("nope")

    monkeypatch.setattr(bt, "run_backtest", all_fail)
    with pytest.raises(ClvFitError, match="no purchase model could be fitted"):
        fit_auto(cdnow_sample, CAL, HOLD)


def test_run_from_config_single_model(cdnow_sample):
    cfg = ClvConfig(
        purchase_model="pareto_nbd",
        calibration_end=dt.date(1997, 9, 30),
        holdout_end=dt.date(1998, 6, 30),
        discount_rate_monthly=0.02,
        horizon_months=6,
        selection_metric="rmse",
    )
    auto = run_from_config(cdnow_sample, cfg)
    assert list(auto.comparison.index) == ["pareto_nbd"]
    assert auto.selected == "pareto_nbd"
    assert auto.metric == "rmse"
    assert auto.model.get_params()["discount_rate"] == 0.02
    assert auto.model.get_params()["horizon"] == 6


def test_run_from_config_separate_penalizers(cdnow_sample):
    window = {"calibration_end": dt.date(1997, 9, 30), "holdout_end": dt.date(1998, 6, 30)}
    # one penalizer of 0.01 for both: Gamma-Gamma's q falls below 1 and the fit is refused
    with pytest.raises(ClvFitError, match=r"Gamma-Gamma: q .*from clv\.penalizer"):
        run_from_config(cdnow_sample, ClvConfig(purchase_model="bgnbd", penalizer=0.01, **window))
    cfg = ClvConfig(purchase_model="bgnbd", penalizer=0.01, spend_penalizer=0.0, **window)
    params = run_from_config(cdnow_sample, cfg).model.get_params()
    assert (params["penalizer"], params["purchase_penalizer"], params["spend_penalizer"]) == (
        0.01,
        None,
        0.0,
    )
    with pytest.raises(ValueError, match="spend_penalizer"):
        ClvConfig(spend_penalizer=-0.1, **window)


def test_plots_return_axes_and_draw_the_series(result):
    fig, axes = plt.subplots(1, 2)
    try:
        ax = plot_cumulative_purchases(result.cumulative, ax=axes[0])
        assert ax is axes[0]
        lines = ax.get_lines()
        assert len(lines) == 2
        np.testing.assert_array_equal(lines[0].get_ydata(), result.cumulative["actual"])
        ax = plot_frequency_table(result, ax=axes[1])  # the result object works too
        assert ax is axes[1]
        assert len(ax.patches) == 2 * len(result.by_frequency)
        assert plt.fignum_exists(fig.number)  # nothing closed behind the caller's back
    finally:
        plt.close(fig)
    ax = plot_cumulative_purchases(result)
    try:
        assert ax.get_xlabel().startswith("week")
    finally:
        plt.close(ax.figure)
    with pytest.raises(ValueError, match="missing"):
        plot_frequency_table(result.cumulative)


def test_the_calibration_summary_can_come_from_the_transactions_known_at_its_end(cdnow_sample):
    from retain.clv.backtest import fit_auto

    cal, hold = "1997-09-30", "1998-06-30"
    full = fit_auto(cdnow_sample, cal, hold, purchase_models=("bgnbd",), spend_model=None)
    # a calibration view with one purchase fewer (say, cancelled later): the fit sees it
    known = cdnow_sample.drop(index=cdnow_sample.index[0])
    seen = fit_auto(
        cdnow_sample,
        cal,
        hold,
        purchase_models=("bgnbd",),
        spend_model=None,
        calibration_transactions=known,
    )
    assert seen.model.n_customers_ <= full.model.n_customers_
    assert seen.model.purchase_params_ != full.model.purchase_params_
