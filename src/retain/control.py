"""Treatment and control groups of the customers given a contact action.

Every customer whose retention action has a contact channel (``action_channel`` other than
``none``) after the budgets is put in the ``treatment`` group (contacted) or the ``control``
group (held out: the action is recorded, the customer is not contacted), so that the effect
of an action can later be measured as the difference between the two groups.

The split is a pure function of the customer, the policy and the scoring date, never of the
other customers: a customer's uniform draw is a BLAKE2b hash of (``policy.control.seed``,
period, customer id), where the period is the number of days from 1970-01-01 to the scoring
date divided (integer division) by ``policy.control.period_days``. The customer is in
``control`` when the draw is below the ``control_share`` of the action rule that gave them
their action. So

- scores do not depend on how the population is partitioned (local engine, Spark);
- a customer keeps their group for every scoring date inside one period and is drawn afresh
  in the next one;
- the same seed, customer and date always give the same group, on any machine.

The budget is applied first (it selects the customers as without control groups); the split
is made among the customers it kept, and control customers cost nothing because they are not
contacted.
"""

from __future__ import annotations

import datetime as dt
import hashlib

import numpy as np
import pandas as pd

from retain.config import STAGES, TIERS, PolicyConfig

__all__ = [
    "CONTROL",
    "TREATMENT",
    "control_draws",
    "control_groups",
    "control_period",
    "group_counts",
]

TREATMENT = "treatment"
"""The ``treatment_group`` of a customer to contact."""

CONTROL = "control"
"""The ``treatment_group`` of a customer held out: the action is recorded, not carried out."""

_EPOCH = dt.date(1970, 1, 1)
_SCALE = 2.0**-53


def control_period(as_of: dt.date | pd.Timestamp, period_days: int) -> int:
    """The group period of a scoring date: days since 1970-01-01, integer-divided.

    Parameters
    ----------
    as_of : date or Timestamp
        The scoring date.
    period_days : int
        Days a customer keeps their group (``policy.control.period_days``).

    Returns
    -------
    int
    """
    day = pd.Timestamp(as_of).date()
    return (day - _EPOCH).days // int(period_days)


def control_draws(customer_ids: np.ndarray | pd.Series, seed: int, period: int) -> np.ndarray:
    """A stable uniform draw in [0, 1) per customer from (seed, period, customer id).

    Parameters
    ----------
    customer_ids : array-like of str
        Customer ids (missing ids are not expected: scored customers always have one).
    seed : int
        ``policy.control.seed``.
    period : int
        :func:`control_period` of the scoring date.

    Returns
    -------
    ndarray of float
        The first 53 bits of BLAKE2b(``"<seed>|<period>|<id>"``, 8-byte digest, big-endian)
        divided by 2**53: exact in a float, so always below 1.
    """
    prefix = f"{int(seed)}|{int(period)}|"
    blake = hashlib.blake2b
    top = [
        int.from_bytes(blake((prefix + str(cid)).encode("utf-8"), digest_size=8).digest(), "big")
        >> 11
        for cid in np.asarray(customer_ids, dtype=object).tolist()
    ]
    return np.asarray(top, dtype=np.float64) * _SCALE


def _rule_shares(policy: PolicyConfig) -> pd.Series:
    """``control_share`` of the rule resolving each (stage, tier) pair."""
    keys = [(s, t) for s in STAGES for t in TIERS]
    shares = [policy.resolve(s, t).control_share for s, t in keys]
    return pd.Series(shares, index=pd.MultiIndex.from_tuples(keys), dtype=float)


def control_groups(
    table: pd.DataFrame, policy: PolicyConfig, as_of: dt.date | pd.Timestamp
) -> pd.DataFrame:
    """``treatment_group`` and ``contact`` of every customer of a table.

    Parameters
    ----------
    table : DataFrame
        Indexed by ``customer_id``, with ``lifecycle_stage``, ``value_tier`` and
        ``action_channel`` after the budgets (over-budget customers have channel ``none``).
    policy : PolicyConfig
        The ``control_share`` of each action rule and ``policy.control``.
    as_of : date or Timestamp
        The scoring date.

    Returns
    -------
    DataFrame
        Same index; ``treatment_group`` (string: ``treatment`` or ``control`` for customers
        with a contact channel, missing for the others) and ``contact`` (bool: True exactly
        for ``treatment``).
    """
    channel = table["action_channel"].astype(str).to_numpy()
    with_channel = (channel != "none") & table["action_channel"].notna().to_numpy()
    rows = np.flatnonzero(with_channel)
    group = np.full(len(table), None, dtype=object)
    if len(rows):
        keys = pd.MultiIndex.from_arrays(
            [
                table["lifecycle_stage"].astype(str).to_numpy()[rows],
                table["value_tier"].astype(str).to_numpy()[rows],
            ]
        )
        shares = _rule_shares(policy)
        pos = shares.index.get_indexer(keys)
        if (pos < 0).any():
            raise ValueError(f"control_groups: unknown (stage, tier) {keys[pos < 0][0]}")
        period = control_period(as_of, policy.control.period_days)
        draws = control_draws(table.index.to_numpy()[rows], policy.control.seed, period)
        held_out = draws < shares.to_numpy()[pos]
        group[rows] = np.where(held_out, CONTROL, TREATMENT)
    treatment_group = pd.array(group, dtype="string")
    contact = np.zeros(len(table), dtype=bool)
    contact[rows] = group[rows] == TREATMENT
    return pd.DataFrame({"treatment_group": treatment_group, "contact": contact}, index=table.index)


def group_counts(scores: pd.DataFrame) -> dict[str, dict[str, int]]:
    """Customers per treatment group of each action (for the manifest and the log).

    Parameters
    ----------
    scores : DataFrame
        With ``retention_action`` and ``treatment_group``.

    Returns
    -------
    dict
        ``{action: {"treatment": n, "control": m}}`` over the customers with a group (both
        keys always present), actions sorted.
    """
    grouped = scores["treatment_group"].notna().to_numpy(dtype=bool)
    actions = scores["retention_action"].astype(str).to_numpy()[grouped]
    groups = scores["treatment_group"].astype(str).to_numpy()[grouped]
    out: dict[str, dict[str, int]] = {}
    for action in sorted(set(actions.tolist())):
        mine = groups[actions == action]
        out[action] = {g: int(np.sum(mine == g)) for g in (TREATMENT, CONTROL)}
    return out
