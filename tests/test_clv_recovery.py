"""Parameter recovery on data simulated from known BG/NBD (or MBG/NBD) + Gamma-Gamma processes.

Tolerance: maximum-likelihood estimates are asymptotically normal around the true values with
standard errors from the observed information (``*_standard_errors_``, from the Hessian of the
log-likelihood). With 6,000 customers the asymptotics are good, so each estimate must lie within
4 standard errors of the truth (two-sided probability ~6e-5 per parameter under the model). The
seed is fixed, so the test is deterministic; the relative standard errors are also checked to be
small, so that the test has power to detect a biased fitter.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from retain.clv import ClvModel
from retain.features.rfm import rfm_summary
from retain.synthetic import generate_synthetic

START, END = "2022-01-01", "2023-12-31"
N = 6000


def _check(estimates: dict, errors: dict, truth: dict, max_rel_se: float) -> None:
    for name, true in truth.items():
        est, se = estimates[name], errors[name]
        assert np.isfinite(se) and 0 < se < max_rel_se * true, (name, se)
        assert abs(est - true) < 4 * se, (name, est, true, se)


@pytest.mark.parametrize(("dropout_at_first", "model"), [(False, "bgnbd"), (True, "mbgnbd")])
def test_recovers_purchase_and_spend_parameters(dropout_at_first, model):
    data = generate_synthetic(
        N, START, END, seed=20240607, with_events=False, dropout_at_first_purchase=dropout_at_first
    )
    summary = rfm_summary(data.transactions, END, "D")
    fitted = ClvModel(model, time_unit="D").fit(summary)
    truth = dataclasses.asdict(data.params["purchase"])
    _check(fitted.purchase_params_, fitted.purchase_standard_errors_, truth, max_rel_se=0.2)
    spend = dataclasses.asdict(data.params["spend"])
    _check(fitted.spend_params_, fitted.spend_standard_errors_, spend, max_rel_se=0.2)


def test_weekly_fit_of_daily_process_scales_alpha_by_seven():
    data = generate_synthetic(N, START, END, seed=7, with_events=False)
    daily = ClvModel("bgnbd", time_unit="D").fit(rfm_summary(data.transactions, END, "D"))
    weekly = ClvModel("bgnbd", time_unit="W").fit(rfm_summary(data.transactions, END, "W"))
    assert weekly.purchase_params_["alpha"] * 7 == pytest.approx(
        daily.purchase_params_["alpha"], rel=1e-5
    )
    for name in ("r", "a", "b"):
        assert weekly.purchase_params_[name] == pytest.approx(
            daily.purchase_params_[name], rel=1e-5
        )
