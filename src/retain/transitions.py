"""How the customer base moved between two scoring dates.

Pure functions (no I/O, no tracking) over two score tables, each read with the columns of
:data:`COMPARE_COLUMNS` only. The customers of both dates are joined by ``customer_id`` (a full
outer join): a customer scored on one date and not on the other is never dropped, their
missing side is the stage and tier :data:`ABSENT`.

- The stage transition matrix: customers per (stage at ``from``, stage at ``to``), their share
  of the ``from`` row, and the CLV that moved (the sum of the customers' CLV at ``from`` and
  at ``to``; an absent side counts 0).
- The tier migration matrix, the same for the value tier.
- What became of the customers ``at_risk`` at ``from`` (:func:`at_risk_outcomes`): ``saved``
  (active, growing, loyal or reactivated at ``to``: they bought again), ``still at_risk``,
  ``slipped`` (dormant or lost), ``other`` (any other stage) or ``absent``.
- New customers (only at ``to``) and reactivated ones: scored on both dates, in the stage
  ``reactivated`` at ``to`` and not at ``from`` (a purchase after a long gap: a customer
  who moved from dormant to at_risk without buying is not reactivated).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from retain.config import STAGES, TIERS
from retain.contracts import CUSTOMER_ID

__all__ = [
    "ABSENT",
    "AT_RISK_OUTCOMES",
    "COMPARE_COLUMNS",
    "ORDERS",
    "SAVED_STAGES",
    "SLIPPED_STAGES",
    "Transitions",
    "at_risk_outcomes",
    "compare_scores",
    "display_order",
    "pair_scores",
    "transition_matrix",
]

ABSENT = "(absent)"
"""The stage and tier of a customer on a date they were not scored."""

COMPARE_COLUMNS: tuple[str, ...] = (CUSTOMER_ID, "lifecycle_stage", "value_tier", "clv")
"""The score columns a comparison reads."""

SAVED_STAGES: tuple[str, ...] = ("active", "growing", "loyal", "reactivated")
"""Stages at ``to`` in which an at-risk customer at ``from`` counts as saved."""

SLIPPED_STAGES: tuple[str, ...] = ("dormant", "lost")
"""Stages at ``to`` in which an at-risk customer at ``from`` counts as slipped away."""

REACTIVATED = "reactivated"
"""The stage of a customer who bought again after a long gap (the ``reactivated`` count)."""

ORDERS: dict[str, tuple[str, ...]] = {"stage": STAGES, "tier": TIERS}
"""The display order of the stages and the tiers."""

AT_RISK_OUTCOMES: tuple[str, ...] = ("saved", "still at_risk", "slipped", "other", "absent")
"""What became of the customers at risk at ``from``, in the order reported."""


def _side(scores: pd.DataFrame, name: str) -> pd.DataFrame:
    missing = [c for c in COMPARE_COLUMNS if c not in scores]
    if missing:
        raise ValueError(f"the scores of {name} lack the columns {missing}")
    ids = scores[CUSTOMER_ID].astype("string")
    if ids.isna().any() or ids.duplicated().any():
        raise ValueError(f"the scores of {name} have missing or repeated customer ids")
    return pd.DataFrame(
        {
            CUSTOMER_ID: ids.to_numpy(dtype=object),
            "stage": scores["lifecycle_stage"].astype(str).to_numpy(dtype=object),
            "tier": scores["value_tier"].astype(str).to_numpy(dtype=object),
            "clv": pd.to_numeric(scores["clv"], errors="coerce").to_numpy(
                dtype=float, na_value=np.nan
            ),
        }
    )


def pair_scores(before: pd.DataFrame, after: pd.DataFrame) -> pd.DataFrame:
    """One row per customer scored on either date, with both dates' stage, tier and CLV.

    Parameters
    ----------
    before, after : DataFrame
        The scores of the ``from`` and ``to`` dates (at least :data:`COMPARE_COLUMNS`).

    Returns
    -------
    DataFrame
        Columns ``customer_id``, ``stage_from``, ``stage_to``, ``tier_from``, ``tier_to``
        (:data:`ABSENT` on a date the customer was not scored), ``clv_from``, ``clv_to``
        (0 when absent or unknown), sorted by customer.

    Raises
    ------
    ValueError
        When a table lacks a column or has missing or repeated customer ids.
    """
    merged = _side(before, "from").merge(
        _side(after, "to"), on=CUSTOMER_ID, how="outer", suffixes=("_from", "_to")
    )
    for col in ("stage_from", "stage_to", "tier_from", "tier_to"):
        merged[col] = merged[col].fillna(ABSENT).astype(str)
    for col in ("clv_from", "clv_to"):
        merged[col] = merged[col].fillna(0.0).astype(float)
    cols = [CUSTOMER_ID, "stage_from", "stage_to", "tier_from", "tier_to", "clv_from", "clv_to"]
    return merged[cols].sort_values(CUSTOMER_ID, kind="stable").reset_index(drop=True)


def display_order(values: Sequence[str], order: Sequence[str]) -> list[str]:
    """The labels seen in ``values``: ``order`` first, then others (sorted), :data:`ABSENT` last.

    Parameters
    ----------
    values : sequence of str
        The labels present.
    order : sequence of str
        The known labels in display order (:data:`retain.config.STAGES` or ``TIERS``).

    Returns
    -------
    list of str
    """
    seen = set(values)
    extra = sorted(seen - set(order) - {ABSENT})
    return [*[v for v in order if v in seen], *extra, *([ABSENT] if ABSENT in seen else [])]


def transition_matrix(pairs: pd.DataFrame, what: str, order: Sequence[str]) -> pd.DataFrame:
    """Customers and CLV per (value at ``from``, value at ``to``): a long table.

    Parameters
    ----------
    pairs : DataFrame
        :func:`pair_scores` output.
    what : {"stage", "tier"}
        Which column pair.
    order : sequence of str
        The values in display order (:data:`retain.config.STAGES` or ``TIERS``).

    Returns
    -------
    DataFrame
        One row per (from, to) cell with customers, in display order: ``from_<what>``,
        ``to_<what>``, ``customers``, ``share_of_from`` (of the ``from`` row's customers: the
        shares of a row sum to 1), ``clv_from``, ``clv_to`` (sums) and ``clv_change``.
    """
    src, dst = f"{what}_from", f"{what}_to"
    frame = pairs[[src, dst, "clv_from", "clv_to"]]
    cells = (
        frame.groupby([src, dst], sort=False)
        .agg(customers=("clv_from", "size"), clv_from=("clv_from", "sum"), clv_to=("clv_to", "sum"))
        .reset_index()
    )
    rows = display_order(cells[src].tolist(), order)
    cols = display_order(cells[dst].tolist(), order)
    cells["_r"] = cells[src].map({v: i for i, v in enumerate(rows)})
    cells["_c"] = cells[dst].map({v: i for i, v in enumerate(cols)})
    cells = cells.sort_values(["_r", "_c"], kind="stable").drop(columns=["_r", "_c"])
    totals = cells.groupby(src)["customers"].transform("sum")
    cells.insert(3, "share_of_from", cells["customers"] / totals)
    cells["customers"] = cells["customers"].astype("int64")
    cells["clv_change"] = cells["clv_to"] - cells["clv_from"]
    return cells.rename(columns={src: f"from_{what}", dst: f"to_{what}"}).reset_index(drop=True)


def at_risk_outcomes(pairs: pd.DataFrame) -> pd.DataFrame:
    """What became of the customers at risk at ``from``.

    Parameters
    ----------
    pairs : DataFrame
        :func:`pair_scores` output.

    Returns
    -------
    DataFrame
        One row per outcome of :data:`AT_RISK_OUTCOMES` (all of them, zeros included):
        ``outcome``, ``customers``, ``share`` (of the at-risk customers; 0 when there were
        none), ``clv_from``, ``clv_to``.
    """
    risk = pairs[pairs["stage_from"] == "at_risk"]
    to = risk["stage_to"].to_numpy(dtype=object)
    outcome = np.select(
        [
            np.isin(to, SAVED_STAGES),
            to == "at_risk",
            np.isin(to, SLIPPED_STAGES),
            to == ABSENT,
        ],
        ["saved", "still at_risk", "slipped", "absent"],
        default="other",
    )
    grouped = risk.assign(outcome=outcome).groupby("outcome")
    out = pd.DataFrame({"outcome": list(AT_RISK_OUTCOMES)})
    out["customers"] = out["outcome"].map(grouped.size()).fillna(0).astype("int64")
    total = int(out["customers"].sum())
    out["share"] = out["customers"] / total if total else 0.0
    out["clv_from"] = out["outcome"].map(grouped["clv_from"].sum()).fillna(0.0)
    out["clv_to"] = out["outcome"].map(grouped["clv_to"].sum()).fillna(0.0)
    return out


@dataclass(frozen=True)
class Transitions:
    """The comparison of two scoring dates (:func:`compare_scores`).

    Attributes
    ----------
    date_from, date_to : str
        The dates (``YYYY-MM-DD``).
    stages, tiers : DataFrame
        :func:`transition_matrix` of the lifecycle stage and of the value tier.
    at_risk : DataFrame
        :func:`at_risk_outcomes`.
    counts : dict
        ``customers_from``, ``customers_to``, ``in_both``, ``only_from`` (scored at ``from``
        only), ``only_to`` (= ``new``), ``new``, ``reactivated`` (stage ``reactivated`` at
        ``to``, not at ``from``), ``stage_changed`` and
        ``tier_changed`` (among customers in both), ``clv_from`` and ``clv_to`` (totals).
    """

    date_from: str
    date_to: str
    stages: pd.DataFrame
    tiers: pd.DataFrame
    at_risk: pd.DataFrame
    counts: dict[str, Any]


def compare_scores(
    before: pd.DataFrame, after: pd.DataFrame, date_from: str, date_to: str
) -> Transitions:
    """Compare the scores of two dates: stage and tier matrices, at-risk outcomes, counts.

    Parameters
    ----------
    before, after : DataFrame
        The scores of ``date_from`` and ``date_to`` (at least :data:`COMPARE_COLUMNS`).
    date_from, date_to : str
        The two dates, for the record.

    Returns
    -------
    Transitions
    """
    pairs = pair_scores(before, after)
    in_from = (pairs["stage_from"] != ABSENT).to_numpy()
    in_to = (pairs["stage_to"] != ABSENT).to_numpy()
    both = in_from & in_to
    stage_from = pairs["stage_from"].to_numpy(dtype=object)
    stage_to = pairs["stage_to"].to_numpy(dtype=object)
    reactivated = both & (stage_to == REACTIVATED) & (stage_from != REACTIVATED)
    counts = {
        "customers_from": int(in_from.sum()),
        "customers_to": int(in_to.sum()),
        "in_both": int(both.sum()),
        "only_from": int((in_from & ~in_to).sum()),
        "only_to": int((in_to & ~in_from).sum()),
        "new": int((in_to & ~in_from).sum()),
        "reactivated": int(reactivated.sum()),
        "stage_changed": int((both & (stage_from != stage_to)).sum()),
        "tier_changed": int(
            (both & (pairs["tier_from"].to_numpy() != pairs["tier_to"].to_numpy())).sum()
        ),
        "clv_from": float(pairs["clv_from"].sum()),
        "clv_to": float(pairs["clv_to"].sum()),
    }
    return Transitions(
        date_from,
        date_to,
        transition_matrix(pairs, "stage", ORDERS["stage"]),
        transition_matrix(pairs, "tier", ORDERS["tier"]),
        at_risk_outcomes(pairs),
        counts,
    )
