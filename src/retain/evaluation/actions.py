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
"""

from __future__ import annotations

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
)

__all__ = [
    "ALL",
    "COMPARISON_COLUMNS",
    "CONTROL",
    "GROUP_COLUMN",
    "TREATMENT",
    "compare_groups",
    "contacted",
    "require_control_groups",
]

GROUP_COLUMN = "treatment_group"
"""The scores' column naming a contacted customer's group (null for the others)."""
ALL = "all"
"""The key of the row comparing every contacted customer together."""

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
    }


def compare_groups(
    frame: pd.DataFrame,
    by: Sequence[str] = (),
    *,
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
        measures = _measures(part[is_treated], part[is_control], min_group_size, confidence)
        rows.append({**dict(zip(keys or ["group"], values, strict=True)), **measures})
    columns = [*(keys or ["group"]), *COMPARISON_COLUMNS]
    table = pd.DataFrame(rows, columns=columns)
    for col in ("n_treatment", "n_control"):
        table[col] = table[col].astype(np.int64)
    return table
