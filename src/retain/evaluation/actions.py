"""Treated versus control: what each retention action did, measured after its horizon.

The scores of a date D hold, for every customer given a contact action, a ``treatment_group``
(``treatment``: contacted; ``control``: held out at random, the action recorded but not
carried out). Once the churn horizon H has passed, the outcomes of
:func:`retain.outcomes.horizon_outcomes` are joined to them and each group of customers (an
action, a (stage, tier) cell, everyone contacted) is compared:

- **retention rate**: share of customers with a purchase in days D + 1 .. D + H; the
  **churn rate** is one minus it (for a customer who had bought by D, exactly the churn label);
- **retention uplift**: treated minus control retention rate, with Newcombe's hybrid score
  interval (:func:`retain.evaluation.intervals.newcombe_difference`);
- **revenue uplift**: treated minus control mean revenue per customer in the window, with
  Welch's t interval;
- **cost**: the ``action_cost`` of the treated customers (the control group is not
  contacted); **incremental revenue** = revenue uplift x treated customers; **ROI** =
  (incremental revenue - cost) / cost, the return on the contact budget (its interval follows
  from the revenue uplift's, the cost being known);
- **save rate**: ``(churn_control - churn_treatment) / churn_control``, the share of would-be
  churners kept by the action, which is what the policy's ``save_rate`` means in
  ``expected_value_saved = churn_probability x clv x save_rate - cost``; its interval is the
  log-scale interval of the churn-rate ratio
  (:func:`retain.evaluation.intervals.relative_reduction`).

A group with fewer than ``min_group_size`` treated or control customers gets its counts and
point estimates but no intervals (nor ROI interval): a small cell gives no usable evidence.

**Groups that mix control shares (standardisation).** The control share is set per action
rule, so a group pooling rules (everyone, an action given by several rules) can hold a 5%
control in one rule and a 50% control in another; the control group then over-represents the
high-share rules and a plain treated-minus-control difference compares different customers
(Simpson's paradox), even when the action does nothing. Given a ``strata`` column (customers
whose rules have the same control share form one stratum, see
:func:`retain.evaluation.proposal.control_strata`), a group spanning several strata is
compared stratum by stratum and the differences combined with weights ``w_s`` = the treated
customers of stratum ``s`` (standardised to the treated: the effect on the customers
contacted):

- retention and revenue: the control rate (mean) is ``sum w_s x control_s / sum w_s`` (the
  treated one is the plain treated rate), the uplift ``sum w_s (treated_s - control_s) /
  sum w_s``, with variance ``sum (w_s / W)^2 (var_treated_s / n1_s + var_control_s / n0_s)``
  and a normal interval (binomial variances for retention, sample variances for revenue);
- save rate: ``1 - q1 / q0`` with both churn rates standardised to the treated, and the delta
  method on ``log(q1 / q0)``: ``var = var(q1) / q1^2 + var(q0) / q0^2`` (``var(q) = sum
  (w_s / W)^2 q_s (1 - q_s) / n_s``), the same log-scale interval as an unmixed group's.

Customers of a stratum with no treated or no control customer in the group cannot be
compared and are left out of it (``n_unmatched``); ``n_treatment`` and ``n_control`` count
those compared. A group inside one stratum (one control share) is compared plainly, as above:
within it the split is one random draw with one probability, so the plain difference is
unbiased. ``strata`` gives the number of strata combined.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from retain.contracts import CUSTOMER_ID, DataError
from retain.control import CONTROL, TREATMENT
from retain.evaluation.intervals import (
    Estimate,
    newcombe_difference,
    relative_reduction,
    welch_difference,
    z_value,
)

__all__ = [
    "ALL",
    "COMPARISON_COLUMNS",
    "CONTROL",
    "GROUP_COLUMN",
    "STRATUM",
    "TREATMENT",
    "compare_groups",
    "contacted",
    "require_control_groups",
]

GROUP_COLUMN = "treatment_group"
"""The scores' column naming a contacted customer's group (null for the others)."""
ALL = "all"
"""The key of the row comparing every contacted customer together."""
STRATUM = "stratum"
"""The column of the control-share stratum of a customer (:func:`compare_groups`)."""

COMPARISON_COLUMNS = (
    "n_treatment",
    "n_control",
    "retention_treatment",
    "retention_control",
    "retention_uplift",
    "retention_uplift_low",
    "retention_uplift_high",
    "churn_treatment",
    "churn_control",
    "save_rate",
    "save_rate_low",
    "save_rate_high",
    "revenue_treatment",
    "revenue_control",
    "revenue_uplift",
    "revenue_uplift_low",
    "revenue_uplift_high",
    "cost",
    "incremental_revenue",
    "roi",
    "roi_low",
    "roi_high",
    "strata",
    "n_unmatched",
)
"""The measures of :func:`compare_groups`, after the grouping columns."""


def require_control_groups(scores: pd.DataFrame, where: str) -> None:
    """Refuse scores written without control groups.

    Parameters
    ----------
    scores : DataFrame
        The scores of one date.
    where : str
        Their folder or date, for the message.

    Raises
    ------
    DataError
        When ``treatment_group`` is missing, or holds other values than ``treatment``,
        ``control`` and null.
    """
    if GROUP_COLUMN not in scores.columns:
        raise DataError(
            f"these scores were written without control groups: {where} has no "
            f"{GROUP_COLUMN} column; score again with a version of retain that assigns them, "
            "contact the treatment group only, and evaluate that date after its horizon"
        )
    values = set(scores[GROUP_COLUMN].dropna().astype(str).unique())
    odd = sorted(values - {TREATMENT, CONTROL})
    if odd:
        raise DataError(
            f"{where}: {GROUP_COLUMN} holds {', '.join(map(repr, odd[:3]))}; expected "
            f"{TREATMENT!r}, {CONTROL!r} or empty"
        )


def contacted(scores: pd.DataFrame, outcomes: pd.DataFrame) -> pd.DataFrame:
    """The customers in a treatment or control group, with their outcomes.

    Parameters
    ----------
    scores : DataFrame
        Scores with ``customer_id``, ``treatment_group``, ``retention_action``,
        ``action_channel``, ``lifecycle_stage``, ``value_tier``, ``action_cost`` and the
        other score columns.
    outcomes : DataFrame
        :func:`retain.outcomes.horizon_outcomes` of the same customers (index
        ``customer_id``).

    Returns
    -------
    DataFrame
        One row per customer with a group: the score columns plus ``purchased``,
        ``churned``, ``revenue`` and ``occasions``; ``action_cost`` is 0 in the control group
        (nobody was contacted).
    """
    require_control_groups(scores, "the scores")
    grouped = scores[scores[GROUP_COLUMN].notna()].copy()
    grouped[GROUP_COLUMN] = grouped[GROUP_COLUMN].astype(str)
    ids = grouped[CUSTOMER_ID].astype("string")
    missing = ~ids.isin(outcomes.index)
    if missing.any():
        raise DataError(
            f"{int(missing.sum())} scored customers have no outcome (e.g. {ids[missing].iloc[0]}); "
            "the outcomes must cover every scored customer"
        )
    out = outcomes.reindex(ids.to_numpy())
    for col in out.columns:
        grouped[col] = out[col].to_numpy()
    cost = pd.to_numeric(grouped["action_cost"], errors="coerce").fillna(0.0)
    grouped["action_cost"] = cost.where(grouped[GROUP_COLUMN] == TREATMENT, 0.0)
    return grouped.reset_index(drop=True)


def _measures(
    treated: pd.DataFrame, control: pd.DataFrame, min_group_size: int, confidence: float
) -> dict[str, float]:
    """The :data:`COMPARISON_COLUMNS` of one group of customers."""
    n1, n0 = len(treated), len(control)
    k1 = int(treated["purchased"].sum())
    k0 = int(control["purchased"].sum())
    rev1 = treated["revenue"].to_numpy(dtype=float)
    rev0 = control["revenue"].to_numpy(dtype=float)
    retention = newcombe_difference(k1, n1, k0, n0, confidence)
    save = relative_reduction(n1 - k1, n1, n0 - k0, n0, confidence)
    revenue = welch_difference(rev1, rev0, confidence)
    if min(n1, n0) < min_group_size:  # counts and points, no intervals
        retention, save, revenue = (Estimate(e.value) for e in (retention, save, revenue))
    cost = float(treated["action_cost"].sum())
    incremental = revenue.value * n1
    roi = (incremental - cost) / cost if cost > 0 else np.nan
    roi_low = (revenue.low * n1 - cost) / cost if cost > 0 else np.nan
    roi_high = (revenue.high * n1 - cost) / cost if cost > 0 else np.nan
    rate = lambda k, n: k / n if n else np.nan  # noqa: E731
    return {
        "n_treatment": n1,
        "n_control": n0,
        "retention_treatment": rate(k1, n1),
        "retention_control": rate(k0, n0),
        "retention_uplift": retention.value,
        "retention_uplift_low": retention.low,
        "retention_uplift_high": retention.high,
        "churn_treatment": rate(n1 - k1, n1),
        "churn_control": rate(n0 - k0, n0),
        "save_rate": save.value,
        "save_rate_low": save.low,
        "save_rate_high": save.high,
        "revenue_treatment": float(rev1.mean()) if n1 else np.nan,
        "revenue_control": float(rev0.mean()) if n0 else np.nan,
        "revenue_uplift": revenue.value,
        "revenue_uplift_low": revenue.low,
        "revenue_uplift_high": revenue.high,
        "cost": cost,
        "incremental_revenue": incremental,
        "roi": roi,
        "roi_low": roi_low,
        "roi_high": roi_high,
        "strata": 1,
        "n_unmatched": 0,
    }


def _standardised(
    treated: pd.DataFrame,
    control: pd.DataFrame,
    strata: str,
    min_group_size: int,
    confidence: float,
) -> dict[str, float]:
    """The :data:`COMPARISON_COLUMNS` of a group spanning several strata (module docstring)."""
    stats_of = {}
    for name, part in (("t", treated), ("c", control)):
        grouped = part.groupby(strata, sort=True, observed=True)
        stats_of[name] = pd.DataFrame(
            {
                "n": grouped.size(),
                "kept": grouped["purchased"].sum().astype(float),
                "rev_mean": grouped["revenue"].mean(),
                "rev_var": grouped["revenue"].var(ddof=1),
                "cost": grouped["action_cost"].sum(),
            }
        )
    t, c = stats_of["t"], stats_of["c"]
    matched = t.index.intersection(c.index)
    n_all = len(treated) + len(control)
    t, c = t.loc[matched], c.loc[matched]
    n1, n0 = int(t["n"].sum()), int(c["n"].sum())
    out: dict[str, float] = dict.fromkeys(COMPARISON_COLUMNS, np.nan)
    out.update(
        n_treatment=n1, n_control=n0, strata=len(matched), n_unmatched=n_all - n1 - n0, cost=0.0
    )
    if not len(matched):
        return out
    w = (t["n"] / n1).to_numpy(dtype=float)
    m1, m0 = t["n"].to_numpy(dtype=float), c["n"].to_numpy(dtype=float)
    p1, p0 = t["kept"].to_numpy() / m1, c["kept"].to_numpy() / m0
    r1, r0 = float(w @ p1), float(w @ p0)
    var_p = float(np.sum(w**2 * (p1 * (1 - p1) / m1 + p0 * (1 - p0) / m0)))
    q1, q0 = 1.0 - r1, 1.0 - r0
    var_q1 = float(np.sum(w**2 * p1 * (1 - p1) / m1))
    var_q0 = float(np.sum(w**2 * p0 * (1 - p0) / m0))
    rev1, rev0 = t["rev_mean"].to_numpy(dtype=float), c["rev_mean"].to_numpy(dtype=float)
    rev_d = float(w @ (rev1 - rev0))
    v1, v0 = t["rev_var"].to_numpy(dtype=float), c["rev_var"].to_numpy(dtype=float)
    var_rev = float(np.sum(w**2 * (v1 / m1 + v0 / m0)))  # NaN with a single-customer side
    z = z_value(confidence)
    intervals = min(n1, n0) >= min_group_size

    def normal(value: float, var: float) -> Estimate:
        if not intervals or not math.isfinite(var) or var <= 0.0:
            return Estimate(value)
        half = z * math.sqrt(var)
        return Estimate(value, value - half, value + half)

    retention = normal(r1 - r0, var_p)
    revenue = normal(rev_d, var_rev)
    save = Estimate(np.nan)
    if q0 > 0:
        save = Estimate(1.0 - q1 / q0)
        if intervals and q1 > 0:
            se = math.sqrt(var_q1 / q1**2 + var_q0 / q0**2)
            if se > 0:
                log_rr = math.log(q1 / q0)
                save = Estimate(
                    save.value, 1.0 - math.exp(log_rr + z * se), 1.0 - math.exp(log_rr - z * se)
                )
    cost = float(t["cost"].sum())
    incremental = revenue.value * n1
    ratio = lambda v: (v * n1 - cost) / cost if cost > 0 else np.nan  # noqa: E731
    out.update(
        retention_treatment=r1,
        retention_control=r0,
        retention_uplift=retention.value,
        retention_uplift_low=retention.low,
        retention_uplift_high=retention.high,
        churn_treatment=q1,
        churn_control=q0,
        save_rate=save.value,
        save_rate_low=save.low,
        save_rate_high=save.high,
        revenue_treatment=float(w @ rev1),
        revenue_control=float(w @ rev0),
        revenue_uplift=revenue.value,
        revenue_uplift_low=revenue.low,
        revenue_uplift_high=revenue.high,
        cost=cost,
        incremental_revenue=incremental,
        roi=ratio(revenue.value),
        roi_low=ratio(revenue.low),
        roi_high=ratio(revenue.high),
    )
    return out


def compare_groups(
    frame: pd.DataFrame,
    by: Sequence[str] = (),
    *,
    strata: str | None = None,
    min_group_size: int = 30,
    confidence: float = 0.95,
) -> pd.DataFrame:
    """Treated versus control, per group of customers (see the module docstring).

    Parameters
    ----------
    frame : DataFrame
        :func:`contacted`: one row per customer with ``treatment_group``, ``purchased``,
        ``revenue``, ``action_cost`` and the columns in ``by``.
    by : sequence of str
        Grouping columns (e.g. ``["retention_action"]`` or ``["lifecycle_stage",
        "value_tier"]``); empty compares everyone at once (one row, keyed ``all``).
    strata : str, optional
        A column of ``frame`` naming each customer's control-share stratum (e.g.
        :data:`STRATUM`); a group spanning several is standardised to its treated customers
        (see the module docstring). Without it every group is compared plainly.
    min_group_size : int
        Treated and control customers a group needs for intervals.
    confidence : float
        Confidence level of the intervals.

    Returns
    -------
    DataFrame
        One row per group (sorted by the keys), the ``by`` columns (or ``group`` = ``all``)
        then :data:`COMPARISON_COLUMNS`. Intervals are NaN where not given.
    """
    if min_group_size < 2:
        raise ValueError(f"min_group_size must be at least 2, got {min_group_size}")
    keys = list(by)
    rows = []
    groups = frame.groupby(keys, sort=True, observed=True) if keys else [(ALL, frame)]
    for key, part in groups:
        values = key if isinstance(key, tuple) else (key,)
        is_treated = part[GROUP_COLUMN].to_numpy() == TREATMENT
        is_control = part[GROUP_COLUMN].to_numpy() == CONTROL
        if strata is not None and part[strata].nunique(dropna=False) > 1:
            measures = _standardised(
                part[is_treated], part[is_control], strata, min_group_size, confidence
            )
        else:
            measures = _measures(part[is_treated], part[is_control], min_group_size, confidence)
        rows.append({**dict(zip(keys or ["group"], values, strict=True)), **measures})
    columns = [*(keys or ["group"]), *COMPARISON_COLUMNS]
    table = pd.DataFrame(rows, columns=columns)
    for col in ("n_treatment", "n_control", "strata", "n_unmatched"):
        table[col] = table[col].astype(np.int64)
    return table
