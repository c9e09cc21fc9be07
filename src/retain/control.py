"""Treatment and control groups of the customers given a contact action.

Every customer whose retention action has a contact channel (``action_channel`` other than
``none``) after the budgets is put in the ``treatment`` group (contacted) or the ``control``
group (held out: the action is recorded, the customer is not contacted), so that the effect
of an action can later be measured as the difference between the two groups.

The split is a pure function of the customer, the policy and the scoring date, never of the
other customers: a customer's uniform draw is a BLAKE2b hash of (``policy.control.seed``,
customer id) and the customer is in ``control`` when the draw is below the ``control_share``
of the action rule that gave them their action. So

- scores do not depend on how the population is partitioned (local engine, Spark);
- the same seed, customer (and period) always give the same group, on any machine.

**Permanent hold-out (default, ``policy.control.period_days`` null).** The draw never changes:
a control customer stays out of every contact list for as long as the seed is kept, the
"universal hold-out" of CRM practice. This is what keeps the evaluation of a date D clean: its
outcome window D + 1 .. D + H (H the churn horizon) is longer than the time between two
scoring dates, and a control customer of D who was contacted on a later date inside that
window would no longer measure "no contact". (The one draw is compared with the share of the
customer's rule on each date: a customer who moves to a rule with a smaller share can still
change group, which :func:`contacted_later` counts.)

**Rotating groups (``period_days`` set).** The hash takes the period too (days from
1970-01-01 to the scoring date, integer-divided by ``period_days``, see
:func:`control_period`): a customer keeps their group on every scoring date of one period and
is drawn afresh in the next. The period must be at least the churn horizon
(:func:`check_control_period`, a config error at scoring time otherwise); even so, the window
of a date late in a period crosses into the next one, where about ``1 - share`` of its control
customers become treatment: :func:`rotations_in_window` says when it happens and
:func:`contacted_later` counts the control customers contacted inside the window, which
``retain evaluate-actions`` reports.

The budget is applied first (it selects the customers as without control groups); the split
is made among the customers it kept, and control customers cost nothing because they are not
contacted.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd

from retain.config import STAGES, TIERS, ConfigError, ControlConfig, PolicyConfig
from retain.timeline import DateLike, day

__all__ = [
    "CONTROL",
    "TREATMENT",
    "check_control_period",
    "contacted_later",
    "control_draws",
    "control_groups",
    "control_period",
    "group_counts",
    "rotations_in_window",
]

TREATMENT = "treatment"
"""The ``treatment_group`` of a customer to contact."""

CONTROL = "control"
"""The ``treatment_group`` of a customer held out: the action is recorded, not carried out."""

_EPOCH = day("1970-01-01")
_SCALE = 2.0**-53


def control_period(as_of: DateLike, period_days: int | None) -> int | None:
    """The group period of a scoring date: days since 1970-01-01, integer-divided.

    Parameters
    ----------
    as_of : date, str or Timestamp
        The scoring date.
    period_days : int or None
        Days a customer keeps their group (``policy.control.period_days``); None for the
        permanent hold-out.

    Returns
    -------
    int or None
        None when the groups never rotate.
    """
    if period_days is None:
        return None
    return (day(as_of) - _EPOCH).days // int(period_days)


def control_draws(
    customer_ids: np.ndarray | pd.Series, seed: int, period: int | None = None
) -> np.ndarray:
    """A stable uniform draw in [0, 1) per customer from (seed[, period], customer id).

    Parameters
    ----------
    customer_ids : array-like of str
        Customer ids (missing ids are not expected: scored customers always have one).
    seed : int
        ``policy.control.seed``.
    period : int or None
        :func:`control_period` of the scoring date; None for the permanent hold-out.

    Returns
    -------
    ndarray of float
        The first 53 bits of BLAKE2b(``"<seed>|<id>"``, or ``"<seed>|<period>|<id>"`` with a
        period; 8-byte digest, big-endian) divided by 2**53: exact in a float, so always
        below 1.
    """
    prefix = f"{int(seed)}|" if period is None else f"{int(seed)}|{int(period)}|"
    blake = hashlib.blake2b
    top = [
        int.from_bytes(blake((prefix + str(cid)).encode("utf-8"), digest_size=8).digest(), "big")
        >> 11
        for cid in np.asarray(customer_ids, dtype=object).tolist()
    ]
    return np.asarray(top, dtype=np.float64) * _SCALE


def check_control_period(control: ControlConfig, horizon_days: int, where: str = "") -> None:
    """Refuse rotating groups whose period is shorter than the churn horizon.

    A period shorter than the outcome window D + 1 .. D + H guarantees that most control
    customers of every date are contacted inside their own window.

    Parameters
    ----------
    control : ControlConfig
        ``policy.control``.
    horizon_days : int
        The churn model's horizon H.
    where : str
        The policy file, for the message.

    Raises
    ------
    ConfigError
        When ``period_days`` is set and below ``horizon_days``.
    """
    period = control.period_days
    if period is not None and period < horizon_days:
        place = f"{where}: " if where else ""
        raise ConfigError(
            f"{place}control.period_days is {period} but the churn model's horizon is "
            f"{horizon_days} days: control customers would be contacted inside their own "
            f"outcome window; set control.period_days to null (a permanent hold-out, "
            f"recommended) or to at least {horizon_days}"
        )


def rotations_in_window(
    as_of: DateLike, horizon_days: int, period_days: int | None
) -> list[pd.Timestamp]:
    """The first days of new group periods inside the outcome window D + 1 .. D + H.

    Parameters
    ----------
    as_of : date, str or Timestamp
        The scoring date D.
    horizon_days : int
        The churn horizon H.
    period_days : int or None
        ``policy.control.period_days`` (None: never rotates, so no day).

    Returns
    -------
    list of Timestamp
        Each day of the window on which the groups are redrawn (empty for the permanent
        hold-out or a window inside one period).
    """
    if period_days is None:
        return []
    first = day(as_of) + pd.Timedelta(days=1)
    last = day(as_of) + pd.Timedelta(days=int(horizon_days))
    period = int(period_days)
    start = (first - _EPOCH).days // period
    end = (last - _EPOCH).days // period
    return [_EPOCH + pd.Timedelta(days=p * period) for p in range(start + 1, end + 1)]


def contacted_later(control_ids: pd.Series, later: pd.DataFrame) -> int:
    """How many of a date's control customers were contacted in later scores.

    Parameters
    ----------
    control_ids : Series of str
        The ``customer_id`` of the control customers of a date D.
    later : DataFrame
        ``customer_id`` and ``contact`` of the scores of the dates inside D's outcome window
        (concatenated; a customer may appear several times).

    Returns
    -------
    int
        Control customers of D with ``contact`` true in at least one of them.
    """
    if later.empty or "contact" not in later:
        return 0
    contact = later["contact"].fillna(False).to_numpy(dtype=bool)
    reached = set(later["customer_id"].astype(str).to_numpy()[contact].tolist())
    return int(control_ids.astype(str).isin(reached).sum())


def _rule_shares(policy: PolicyConfig) -> pd.Series:
    """``control_share`` of the rule resolving each (stage, tier) pair."""
    keys = [(s, t) for s in STAGES for t in TIERS]
    shares = [policy.resolve(s, t).control_share for s, t in keys]
    return pd.Series(shares, index=pd.MultiIndex.from_tuples(keys), dtype=float)


def control_groups(
    table: pd.DataFrame, policy: PolicyConfig, as_of: DateLike
) -> pd.DataFrame:
    """``treatment_group`` and ``contact`` of every customer of a table.

    Parameters
    ----------
    table : DataFrame
        Indexed by ``customer_id``, with ``lifecycle_stage``, ``value_tier`` and
        ``action_channel`` after the budgets (over-budget customers have channel ``none``).
    policy : PolicyConfig
        The ``control_share`` of each action rule and ``policy.control``.
    as_of : date, str or Timestamp
        The scoring date (only used when the groups rotate).

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
