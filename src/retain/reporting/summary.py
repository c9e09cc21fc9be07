"""The summary tables analysts act on: stage x tier, the action plan, the first contacts.

Pure pandas (no matplotlib): ``retain score`` writes these tables as CSV beside the scores
(:data:`retain.names.SUMMARY_CSVS`) and the report shows the same tables, so both always agree.
Amounts stay numbers here; :func:`format_amount` adds the configured currency for display.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from retain.config import PolicyConfig
from retain.names import ACTION_PLAN_CSV, CONTACT_LIST_CSV, STAGE_TIER_CSV

__all__ = [
    "CONTACT_COLUMNS",
    "action_plan_table",
    "contact_list",
    "format_amount",
    "save_rates",
    "stage_tier_table",
    "summary_tables",
    "to_contact",
]

CONTACT_COLUMNS = [
    "action_priority",
    "customer_id",
    "lifecycle_stage",
    "value_tier",
    "retention_action",
    "action_channel",
    "churn_probability",
    "clv",
    "save_rate",
    "action_cost",
    "expected_value_saved",
    "reason_1",
]
"""Columns of the list of first contacts: the ranking's inputs and its result, per row."""


def format_amount(value: float, currency: str, decimals: int = 2) -> str:
    """An amount with its currency: a symbol before the number, a code after it.

    Parameters
    ----------
    value : float
        The amount (missing values give an empty string).
    currency : str
        ``"$"``, ``"€"``... (written before) or ``"EUR"``, ``"USD"``... (written after).
    decimals : int
        Decimal places.

    Returns
    -------
    str
        E.g. ``"$1,234.50"``, ``"-$3.00"`` or ``"1,234.50 EUR"``.
    """
    if value is None or not np.isfinite(value):
        return ""
    number = f"{abs(value):,.{decimals}f}"
    sign = "-" if value < 0 else ""
    if currency.isalpha():
        return f"{sign}{number} {currency}"
    return f"{sign}{currency}{number}"


def stage_tier_table(scores: pd.DataFrame) -> pd.DataFrame:
    """Customers and total predicted CLV per lifecycle stage and value tier, with totals.

    Parameters
    ----------
    scores : DataFrame
        Output of :func:`retain.scoring.score_customers`.

    Returns
    -------
    DataFrame
        One row per (stage, tier) present plus ``all`` totals, columns ``lifecycle_stage``,
        ``value_tier``, ``customers`` and ``clv`` (a long table: easy to filter in a
        spreadsheet, pivoted by the report).
    """
    frame = scores.assign(
        lifecycle_stage=scores["lifecycle_stage"].astype(str),
        value_tier=scores["value_tier"].astype(str),
    )
    cells = (
        frame.groupby(["lifecycle_stage", "value_tier"])
        .agg(customers=("customer_id", "size"), clv=("clv", "sum"))
        .reset_index()
    )
    by_stage = frame.groupby("lifecycle_stage").agg(
        customers=("customer_id", "size"), clv=("clv", "sum")
    )
    by_tier = frame.groupby("value_tier").agg(customers=("customer_id", "size"), clv=("clv", "sum"))
    totals = [
        by_stage.reset_index().assign(value_tier="all"),
        by_tier.reset_index().assign(lifecycle_stage="all"),
        pd.DataFrame(
            {
                "lifecycle_stage": ["all"],
                "value_tier": ["all"],
                "customers": [len(frame)],
                "clv": [float(frame["clv"].sum())],
            }
        ),
    ]
    out = pd.concat([cells, *totals], ignore_index=True)
    out["customers"] = out["customers"].astype("int64")
    return out[["lifecycle_stage", "value_tier", "customers", "clv"]]


def to_contact(scores: pd.DataFrame) -> pd.Series:
    """Whether each customer is to be contacted.

    ``contact`` when the scores carry it (the treatment group); for older scores without
    control groups, every customer with a contact channel (over-budget customers have none).

    Parameters
    ----------
    scores : DataFrame
        With ``contact`` or ``action_channel``.

    Returns
    -------
    Series of bool
    """
    if "contact" in scores:
        return scores["contact"].fillna(False).astype(bool)
    return scores["action_channel"].astype(str) != "none"


def action_plan_table(scores: pd.DataFrame) -> pd.DataFrame:
    """Customers, cost and expected value per action and channel, most valuable first.

    Control customers (:mod:`retain.control`) are counted apart: they are not contacted, so
    the cost and the expected value saved are those of the customers contacted.

    Returns
    -------
    DataFrame
        Columns ``retention_action``, ``action_channel``, ``customers`` (all given the
        action), ``contacted``, ``control``, ``total_cost``, ``expected_value_saved``,
        ``mean_churn_probability``, ``clv``.
    """
    contacted = to_contact(scores).to_numpy(dtype=bool)
    control = (
        (scores["treatment_group"].astype("string") == "control").fillna(False).to_numpy(bool)
        if "treatment_group" in scores
        else np.zeros(len(scores), dtype=bool)
    )
    frame = pd.DataFrame(
        {
            "retention_action": scores["retention_action"].to_numpy(),
            "action_channel": scores["action_channel"].to_numpy(),
            "contacted": contacted.astype("int64"),
            "control": control.astype("int64"),
            "cost": np.where(contacted, scores["action_cost"].to_numpy(dtype=float), 0.0),
            "saved": np.where(
                contacted, scores["expected_value_saved"].to_numpy(dtype=float), 0.0
            ),
            "churn_probability": scores["churn_probability"].to_numpy(dtype=float),
            "clv": scores["clv"].to_numpy(dtype=float),
        }
    )
    plan = (
        frame.groupby(["retention_action", "action_channel"], observed=True)
        .agg(
            customers=("contacted", "size"),
            contacted=("contacted", "sum"),
            control=("control", "sum"),
            total_cost=("cost", "sum"),
            expected_value_saved=("saved", "sum"),
            mean_churn_probability=("churn_probability", "mean"),
            clv=("clv", "sum"),
        )
        .sort_values("expected_value_saved", ascending=False, kind="stable")
        .reset_index()
    )
    for col in ("customers", "contacted", "control"):
        plan[col] = plan[col].astype("int64")
    return plan


def save_rates(scores: pd.DataFrame, policy: PolicyConfig | None = None) -> pd.Series:
    """The save rate assumed for each customer's action.

    The scores carry it (``action_save_rate``, the rate they were computed with); for older
    scores without the column it is looked up in ``policy``. Customers whose action was
    dropped by a channel budget keep no save rate (0, as in :func:`retain.policy.apply_budget`).
    """
    if "action_save_rate" in scores:
        return scores["action_save_rate"].astype(float)
    if policy is None:
        raise ValueError("scores without action_save_rate need the policy for the save rates")
    keys = list(
        zip(scores["lifecycle_stage"].astype(str), scores["value_tier"].astype(str), strict=True)
    )
    rates = {(s, t): policy.resolve(s, t).save_rate for s, t in set(keys)}
    out = pd.Series([rates[k] for k in keys], index=scores.index, dtype=float)
    dropped = scores["retention_action"].astype(str).str.contains("over budget", regex=False)
    return out.mask(dropped, 0.0)


def contact_list(
    scores: pd.DataFrame, policy: PolicyConfig | None = None, top_n: int = 20
) -> pd.DataFrame:
    """The first ``top_n`` customers to contact, with the numbers that rank them.

    Customers are ranked by ``action_priority``, i.e. by expected value saved =
    churn probability x CLV x save rate - action cost. Every factor is a column, so a reader
    can redo the arithmetic on any row. Only customers to contact are listed (the control
    group keeps its priority but is left out, :func:`to_contact`).

    Parameters
    ----------
    scores : DataFrame
        Output of :func:`retain.scoring.score_customers`.
    policy : PolicyConfig, optional
        The policy, for scores that do not carry their save rates (``action_save_rate``).
    top_n : int
        Customers listed.

    Returns
    -------
    DataFrame
        Columns :data:`CONTACT_COLUMNS`.
    """
    ranked = scores["action_priority"].notna() & to_contact(scores)
    first = scores[ranked].sort_values("action_priority").head(top_n)
    first = first.assign(save_rate=save_rates(first, policy))
    first["action_priority"] = first["action_priority"].astype("int64")
    return first[CONTACT_COLUMNS].reset_index(drop=True)


def summary_tables(
    scores: pd.DataFrame, policy: PolicyConfig, top_n: int = 20
) -> dict[str, pd.DataFrame]:
    """The three summary tables by their CSV file name (:data:`retain.names.SUMMARY_CSVS`)."""
    return {
        STAGE_TIER_CSV: stage_tier_table(scores),
        ACTION_PLAN_CSV: action_plan_table(scores),
        CONTACT_LIST_CSV: contact_list(scores, policy, top_n),
    }
