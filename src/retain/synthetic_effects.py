"""A known treatment effect planted in synthetic data, to check that it is measured back.

:func:`plant_save_effect` takes data from :func:`retain.synthetic.generate_synthetic`, a
scoring date D, the churn horizon H and, per customer, the action and group a scoring gave
(``retention_action``, ``treatment_group``), and changes what the **treated** customers do
after D. The truth it plants, per action ``a`` with planted rate ``s_a``:

    a treated customer of action ``a`` who made no purchase in days D + 1 .. D + H (who would
    have churned) is *saved* with probability ``s_a``, independently of everything else: one
    purchase occasion is added at a uniform time in that window.

Control customers and customers without a group are left as they are. Since the groups are
assigned at random, the churn rate of the treated group of ``a`` is then in expectation
``(1 - s_a)`` times that of its control group, so the save rate measured by
:func:`retain.evaluation.actions.compare_groups`, ``(churn_control - churn_treatment) /
churn_control``, has target exactly ``s_a``: the quantity the policy's ``save_rate`` stands
for (the share of would-be churners kept by the action).

The added purchase's amount is a draw of the customer's own Gamma-Gamma spend (shape
``p`` of the generator's spend parameters, the customer's rate ``nu`` from the truth table),
so the revenue uplift is positive where the save rate is. Nothing else changes (later
behaviour, events): the effect is on the window only, which is all the evaluation looks at.

Pure and reproducible: the draws come from ``numpy.random.default_rng(seed)`` in the order of
the sorted customer ids.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

import numpy as np
import pandas as pd

from retain.contracts import CUSTOMER_ID, TIMESTAMP
from retain.synthetic import GammaGammaParams, SyntheticData
from retain.timeline import DateLike, cutoff_end

__all__ = ["SAVED_COLUMN", "plant_save_effect"]

SAVED_COLUMN = "saved_at"
"""Truth column: when the planted effect added a purchase (NaT for everyone else)."""

_NS_PER_DAY = 86_400 * 10**9


def plant_save_effect(
    data: SyntheticData,
    assignment: pd.DataFrame,
    scoring_date: DateLike,
    horizon_days: int,
    save_rates: Mapping[str, float],
    seed: int,
) -> SyntheticData:
    """Plant a known save rate per action on the treated customers (see the module docstring).

    Parameters
    ----------
    data : SyntheticData
        From :func:`retain.synthetic.generate_synthetic`; its window must cover D + H.
    assignment : DataFrame
        ``customer_id``, ``retention_action`` and ``treatment_group`` (``treatment``,
        ``control`` or null) of the scored customers.
    scoring_date : date, str or Timestamp
        The scoring date D.
    horizon_days : int
        The churn horizon H in days.
    save_rates : mapping of str to float
        Planted save rate per action name, each in [0, 1]; actions not listed get none.
    seed : int
        Seed of the draws.

    Returns
    -------
    SyntheticData
        A copy with the added purchases in ``transactions`` (order id
        ``<customer>-saved``, sorted by customer then time) and ``truth`` gaining
        ``saved_at`` (the added purchase's time, NaT for the others) and ``planted_save_rate``
        (the rate that applied to the customer, 0 for the untreated).
    """
    for action, rate in save_rates.items():
        if not 0.0 <= float(rate) <= 1.0:
            raise ValueError(f"save rate of {action!r} must be in [0, 1], got {rate}")
    if int(horizon_days) <= 0:
        raise ValueError(f"horizon_days must be positive, got {horizon_days}")
    start = cutoff_end(scoring_date)
    stop = start + pd.Timedelta(days=int(horizon_days))
    observed = data.truth["observed_until"].max()
    if stop > cutoff_end(observed):
        raise ValueError(
            f"the window of {pd.Timestamp(scoring_date).date()} runs past the simulated "
            f"data ({observed.date()})"
        )
    tx = data.transactions
    ts = tx[TIMESTAMP]
    buyers = set(tx.loc[(ts >= start) & (ts < stop), CUSTOMER_ID].astype(str))

    groups = assignment[[CUSTOMER_ID, "retention_action", "treatment_group"]].copy()
    groups[CUSTOMER_ID] = groups[CUSTOMER_ID].astype(str)
    groups = groups.sort_values(CUSTOMER_ID, kind="stable").reset_index(drop=True)
    treated = groups["treatment_group"].astype("string").fillna("").to_numpy() == "treatment"
    rate = groups["retention_action"].astype(str).map(lambda a: float(save_rates.get(a, 0.0)))
    rate = np.where(treated, rate.to_numpy(dtype=float), 0.0)

    rng = np.random.default_rng(seed)
    n = len(groups)
    u = rng.random(n)
    offset = rng.random(n) * int(horizon_days)
    spend_shape = data.params.get("spend", GammaGammaParams()).p
    nu = data.truth["spend_rate"].reindex(groups[CUSTOMER_ID]).to_numpy(dtype=float)
    amount = rng.gamma(spend_shape, 1.0, n) / np.where(np.isfinite(nu) & (nu > 0), nu, 1.0)

    would_churn = ~groups[CUSTOMER_ID].isin(buyers).to_numpy()
    saved = treated & would_churn & (u < rate)
    when = start + pd.to_timedelta(np.round(offset * _NS_PER_DAY).astype(np.int64), unit="ns")
    ids = groups[CUSTOMER_ID].to_numpy()[saved]
    added = pd.DataFrame(
        {
            CUSTOMER_ID: pd.array(ids, dtype=tx[CUSTOMER_ID].dtype),
            TIMESTAMP: pd.DatetimeIndex(when[saved]).astype(ts.dtype),
            "amount": np.round(amount[saved], 2).astype(tx["amount"].dtype),
            "quantity": np.ones(int(saved.sum()), dtype=tx["quantity"].dtype),
            "order_id": pd.array([f"{c}-saved" for c in ids], dtype=tx["order_id"].dtype),
        }
    )
    transactions = (
        pd.concat([tx, added[tx.columns]], ignore_index=True)
        .sort_values([CUSTOMER_ID, TIMESTAMP], kind="stable")
        .reset_index(drop=True)
    )
    truth = data.truth.copy()
    saved_at = pd.Series(pd.NaT, index=truth.index, dtype="datetime64[ns]")
    saved_at.loc[pd.Index(ids, dtype=truth.index.dtype)] = when[saved].to_numpy()
    truth[SAVED_COLUMN] = saved_at
    planted = pd.Series(rate, index=pd.Index(groups[CUSTOMER_ID], dtype=truth.index.dtype))
    truth["planted_save_rate"] = planted.reindex(truth.index).fillna(0.0).to_numpy()
    return replace(data, transactions=transactions, truth=truth)
