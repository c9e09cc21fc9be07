"""Retention policy: lifecycle stage, value tier, retention action and priority.

Everything here is a pure function of a per-customer table and a validated
:class:`~retain.config.PolicyConfig` (``configs/policy.yaml``); no I/O, no global state.

The input table is indexed by ``customer_id`` and carries, per customer:

- ``frequency`` (repeat purchase occasions), ``recency_days``, ``tenure_days`` and
  ``monetary_value`` from :func:`retain.features.rfm.rfm_summary` (missing for prospects, who
  have no purchase yet);
- ``p_alive`` and ``clv`` from the CLV model and ``churn_probability`` from the calibrated churn
  model (missing for prospects);
- optionally ``last_gap_days``: the gap between the last two purchase occasions, used to
  recognise reactivated customers (without it no customer is ``reactivated``).

Stage rules are a table (``_STAGE_RULES``) of small predicates applied in a fixed order, and the
first that matches decides (see the comment at the top of ``configs/policy.yaml``): prospect,
new, lost, dormant, reactivated, at_risk, loyal, growing, active. Every customer gets a
``stage_reason`` naming the rule and its deciding values.

Why one module past 600 lines: stages, tiers, actions, budgets and the five degrees are the one
decision "what to do with this customer", applied together by :func:`apply_policy`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from retain.config import (
    CHANNELS,
    FIVE_DEGREES,
    STAGES,
    TIERS,
    PolicyConfig,
    StageRules,
    TierRules,
)
from retain.features.segments import order_statistic, value_counts

__all__ = [
    "CHANNELS",
    "FIVE_DEGREES",
    "OVER_BUDGET",
    "STAGES",
    "STAGE_FIVE_F",
    "STAGE_PHASE",
    "TIERS",
    "action_priority",
    "apply_budget",
    "apply_policy",
    "assign_actions",
    "assign_stages",
    "assign_tiers",
    "five_degrees",
    "tier_cut_points",
]

OVER_BUDGET = "none (over budget)"
"""The ``retention_action`` of customers whose channel budget ran out."""

STAGE_PHASE: dict[str, str] = {
    "prospect": "identification",
    "new": "acquisition",
    "active": "maintenance",
    "growing": "maintenance",
    "loyal": "maintenance",
    "at_risk": "retention: churn warning",
    "dormant": "retention: reactivation",
    "lost": "retention: win-back or let go",
    "reactivated": "retention: reactivation",
}
"""Lifecycle phase of each stage (customer-lifecycle management)."""

STAGE_FIVE_F: dict[str, str | None] = {
    "prospect": "Find",
    "new": "Focus",
    "active": "Frequent",
    "growing": "Foster",
    "loyal": "Fidelity",
    "at_risk": None,
    "dormant": None,
    "lost": None,
    "reactivated": None,
}
"""The 5F step (Find, Focus, Frequent, Foster, Fidelity) of each stage; retention stages have
none."""

REQUIRED = ("frequency", "recency_days", "tenure_days", "monetary_value", "p_alive", "clv")


def _num(frame: pd.DataFrame, col: str) -> np.ndarray:
    if col not in frame:
        return np.full(len(frame), np.nan)
    return pd.to_numeric(frame[col], errors="coerce").to_numpy(dtype=float, na_value=np.nan)


def _fmt(values: np.ndarray, spec: str) -> list[str]:
    return [format(v, spec) for v in values.tolist()]


@dataclass(frozen=True)
class _StageFacts:
    """What the stage rules read, per customer: the scores and the values derived from them.

    ``since_last`` is the time since the last purchase occasion, ``usual_gap`` the mean gap
    between occasions (``default_gap_days`` without a repeat purchase), ``hist_value`` the
    historical spend rate over the CLV horizon (``value_horizon_days``) and ``dormant_limit``
    the inactivity beyond which a customer is dormant.
    """

    frequency: np.ndarray
    tenure: np.ndarray
    p_alive: np.ndarray
    clv: np.ndarray
    churn: np.ndarray
    last_gap: np.ndarray
    since_last: np.ndarray
    usual_gap: np.ndarray
    hist_value: np.ndarray
    dormant_limit: np.ndarray
    value_horizon_days: int


def _stage_facts(scores: pd.DataFrame, r: StageRules, value_horizon_days: int) -> _StageFacts:
    freq = _num(scores, "frequency")
    recency = _num(scores, "recency_days")
    tenure = _num(scores, "tenure_days")
    monetary = _num(scores, "monetary_value")
    with np.errstate(divide="ignore", invalid="ignore"):
        usual_gap = np.where(
            freq >= 1, recency / np.where(freq >= 1, freq, 1.0), r.default_gap_days
        )
        hist_value = monetary * freq / tenure * value_horizon_days
    return _StageFacts(
        frequency=freq,
        tenure=tenure,
        p_alive=_num(scores, "p_alive"),
        clv=_num(scores, "clv"),
        churn=_num(scores, "churn_probability"),
        last_gap=_num(scores, "last_gap_days"),
        since_last=tenure - recency,
        usual_gap=usual_gap,
        hist_value=np.where(tenure > 0, hist_value, 0.0),
        dormant_limit=np.maximum(r.dormant_gap_multiple * usual_gap, r.dormant_min_inactive_days),
        value_horizon_days=value_horizon_days,
    )


# Each stage has a predicate (which customers it takes) and a reason (the text for the rows it
# took, ``rows`` being their positions). The rules run in the order of ``_STAGE_RULES``.


def _is_prospect(f: _StageFacts, r: StageRules) -> np.ndarray:
    return np.isnan(f.tenure)


def _why_prospect(f: _StageFacts, r: StageRules, rows: np.ndarray) -> list[str]:
    return ["prospect: known customer without a purchase by the as-of date"] * len(rows)


def _is_new(f: _StageFacts, r: StageRules) -> np.ndarray:
    return f.tenure <= r.new_customer_days


def _why_new(f: _StageFacts, r: StageRules, rows: np.ndarray) -> list[str]:
    return [
        f"new: first purchase {t} days ago (<= {r.new_customer_days})"
        for t in _fmt(f.tenure[rows], ".0f")
    ]


def _is_lost(f: _StageFacts, r: StageRules) -> np.ndarray:
    return (f.p_alive < r.lost_p_alive) | (f.since_last > r.lost_inactive_days)


def _why_lost(f: _StageFacts, r: StageRules, rows: np.ndarray) -> list[str]:
    texts = []
    for pa, idle in zip(f.p_alive[rows].tolist(), f.since_last[rows].tolist(), strict=True):
        if pa < r.lost_p_alive:
            texts.append(f"lost: P(alive) {pa:.3g} < {r.lost_p_alive:g}")
        else:
            texts.append(f"lost: no purchase for {idle:.0f} days (> {r.lost_inactive_days})")
    return texts


def _is_dormant(f: _StageFacts, r: StageRules) -> np.ndarray:
    return (f.p_alive < r.dormant_p_alive) | (f.since_last > f.dormant_limit)


def _why_dormant(f: _StageFacts, r: StageRules, rows: np.ndarray) -> list[str]:
    texts = []
    for pa, idle, gap, limit in zip(
        f.p_alive[rows].tolist(),
        f.since_last[rows].tolist(),
        f.usual_gap[rows].tolist(),
        f.dormant_limit[rows].tolist(),
        strict=True,
    ):
        if pa < r.dormant_p_alive:
            texts.append(f"dormant: P(alive) {pa:.3g} < {r.dormant_p_alive:g}")
        else:
            texts.append(
                f"dormant: no purchase for {idle:.0f} days (> {limit:.0f} = max("
                f"{r.dormant_gap_multiple:g} x usual gap {gap:.0f} days, "
                f"{r.dormant_min_inactive_days}))"
            )
    return texts


def _is_reactivated(f: _StageFacts, r: StageRules) -> np.ndarray:
    return (f.last_gap >= r.reactivated_min_gap_days) & (f.since_last <= r.reactivated_window_days)


def _why_reactivated(f: _StageFacts, r: StageRules, rows: np.ndarray) -> list[str]:
    return [
        f"reactivated: bought {idle:.0f} days ago (<= {r.reactivated_window_days}) after a "
        f"{gap:.0f}-day gap (>= {r.reactivated_min_gap_days})"
        for idle, gap in zip(f.since_last[rows].tolist(), f.last_gap[rows].tolist(), strict=True)
    ]


def _is_at_risk(f: _StageFacts, r: StageRules) -> np.ndarray:
    return f.churn >= r.at_risk_churn_probability


def _why_at_risk(f: _StageFacts, r: StageRules, rows: np.ndarray) -> list[str]:
    return [
        f"at_risk: churn probability {p} >= {r.at_risk_churn_probability:g}"
        for p in _fmt(f.churn[rows], ".3g")
    ]


def _is_loyal(f: _StageFacts, r: StageRules) -> np.ndarray:
    return (
        (f.tenure >= r.loyal_min_tenure_days)
        & (f.frequency >= r.loyal_min_frequency)
        & (f.churn < r.loyal_max_churn_probability)
    )


def _why_loyal(f: _StageFacts, r: StageRules, rows: np.ndarray) -> list[str]:
    return [
        f"loyal: tenure {t:.0f} days (>= {r.loyal_min_tenure_days}), {n:.0f} repeat "
        f"purchases (>= {r.loyal_min_frequency}), churn probability {p:.3g} "
        f"(< {r.loyal_max_churn_probability:g})"
        for t, n, p in zip(
            f.tenure[rows].tolist(),
            f.frequency[rows].tolist(),
            f.churn[rows].tolist(),
            strict=True,
        )
    ]


def _is_growing(f: _StageFacts, r: StageRules) -> np.ndarray:
    return (f.frequency >= 1) & (f.clv >= r.growing_value_ratio * f.hist_value)


def _why_growing(f: _StageFacts, r: StageRules, rows: np.ndarray) -> list[str]:
    return [
        f"growing: predicted value {c:.2f} >= {r.growing_value_ratio:g} x historical value "
        f"{h:.2f} over {f.value_horizon_days} days"
        for c, h in zip(f.clv[rows].tolist(), f.hist_value[rows].tolist(), strict=True)
    ]


def _is_active(f: _StageFacts, r: StageRules) -> np.ndarray:
    return np.ones(len(f.tenure), dtype=bool)


def _why_active(f: _StageFacts, r: StageRules, rows: np.ndarray) -> list[str]:
    return [
        f"active: buying, churn probability {p} < {r.at_risk_churn_probability:g}, "
        f"predicted value {c:.2f} < {r.growing_value_ratio:g} x historical value {h:.2f}"
        for p, c, h in zip(
            _fmt(f.churn[rows], ".3g"),
            f.clv[rows].tolist(),
            f.hist_value[rows].tolist(),
            strict=True,
        )
    ]


@dataclass(frozen=True)
class _StageRule:
    """One lifecycle stage: which customers it takes, and the reason text it gives them."""

    stage: str
    applies: Callable[[_StageFacts, StageRules], np.ndarray]
    reason: Callable[[_StageFacts, StageRules, np.ndarray], list[str]]


_STAGE_RULES: tuple[_StageRule, ...] = (
    _StageRule("prospect", _is_prospect, _why_prospect),
    _StageRule("new", _is_new, _why_new),
    _StageRule("lost", _is_lost, _why_lost),
    _StageRule("dormant", _is_dormant, _why_dormant),
    _StageRule("reactivated", _is_reactivated, _why_reactivated),
    _StageRule("at_risk", _is_at_risk, _why_at_risk),
    _StageRule("loyal", _is_loyal, _why_loyal),
    _StageRule("growing", _is_growing, _why_growing),
    _StageRule("active", _is_active, _why_active),
)
"""The stage rules in the order they are tried: the first that applies decides; ``active``
takes everyone left."""


def assign_stages(scores: pd.DataFrame, rules: StageRules, value_horizon_days: int) -> pd.DataFrame:
    """Lifecycle stage of every customer, with the rule and values that decided it.

    The rules of :data:`_STAGE_RULES` are tried in order and the first that applies decides.

    Parameters
    ----------
    scores : DataFrame
        Indexed by ``customer_id`` with ``frequency``, ``recency_days``, ``tenure_days``,
        ``monetary_value``, ``p_alive``, ``clv``, ``churn_probability`` and optionally
        ``last_gap_days``. A missing ``tenure_days`` marks a prospect (no purchase yet).
    rules : StageRules
        Thresholds from ``configs/policy.yaml``.
    value_horizon_days : int
        The CLV horizon in days (:func:`retain.timeline.horizon_days` of the CLV model's
        months): ``growing`` compares the predicted CLV with the historical spend over it.

    Returns
    -------
    DataFrame
        Same index; columns ``lifecycle_stage`` (one of :data:`STAGES`), ``stage_reason``
        (plain text), ``lifecycle_phase`` and ``five_f`` (missing for retention stages).
    """
    missing = [c for c in (*REQUIRED, "churn_probability") if c not in scores]
    if missing:
        raise ValueError(f"assign_stages: missing columns {missing}")
    facts = _stage_facts(scores, rules, value_horizon_days)
    code = np.select(
        [rule.applies(facts, rules) for rule in _STAGE_RULES],
        list(range(len(_STAGE_RULES))),
        default=len(_STAGE_RULES) - 1,
    )
    stage = np.asarray([rule.stage for rule in _STAGE_RULES], dtype=object)[code]
    reason = np.empty(len(scores), dtype=object)
    for i, rule in enumerate(_STAGE_RULES):
        rows = np.flatnonzero(code == i)
        reason[rows] = rule.reason(facts, rules, rows)
    out = pd.DataFrame(
        {
            "lifecycle_stage": pd.array(stage, dtype="string"),
            "stage_reason": pd.array(reason, dtype="string"),
        },
        index=scores.index,
    )
    out["lifecycle_phase"] = out["lifecycle_stage"].map(STAGE_PHASE).astype("string")
    out["five_f"] = out["lifecycle_stage"].map(STAGE_FIVE_F).astype("string")
    return out


def tier_cut_points(clv: pd.Series | np.ndarray, tiers: TierRules) -> dict[str, float]:
    """Minimum CLV of the vip, high and medium tiers.

    Parameters
    ----------
    clv : Series or ndarray
        Predicted CLV of the scored customers (missing values are ignored).
    tiers : TierRules
        ``quantile``: the tiers hold the top ``vip``, next ``high`` and next ``medium`` shares
        of customers; ``absolute``: the cut-points are the configured amounts.

    Returns
    -------
    dict
        ``{"vip": a, "high": b, "medium": c}`` with ``a >= b >= c``; a customer belongs to the
        best tier whose cut-point their CLV reaches. Customers tied at a cut-point share the
        better tier.
    """
    values = np.asarray(clv, dtype=float)
    return tier_cuts_from_counts(*value_counts(values[~np.isnan(values)]), tiers)


def tier_cuts_from_counts(
    values: np.ndarray, counts: np.ndarray, tiers: TierRules
) -> dict[str, float]:
    """:func:`tier_cut_points` from the value counts of the population's CLV.

    Parameters
    ----------
    values, counts : ndarray
        Sorted distinct CLV values (no NaN) and their counts
        (:func:`retain.features.segments.value_counts`, merged over the parts of a
        population with :func:`retain.features.segments.merge_value_counts`).
    tiers : TierRules
        The tier rules.

    Returns
    -------
    dict
        As :func:`tier_cut_points`.
    """
    if tiers.method == "absolute":
        return {"vip": tiers.vip, "high": tiers.high, "medium": tiers.medium}
    n = int(np.sum(counts))
    cuts: dict[str, float] = {}
    share = 0.0
    for name in ("vip", "high", "medium"):
        share += getattr(tiers, name)
        k = min(int(np.ceil(share * n)), n)  # the k-th largest value
        cuts[name] = order_statistic(values, counts, n - k + 1) if k >= 1 else np.inf
    return cuts


def assign_tiers(clv: pd.Series, cut_points: dict[str, float]) -> pd.Series:
    """Value tier from predicted CLV and the cut-points of :func:`tier_cut_points`.

    Parameters
    ----------
    clv : Series
        Predicted CLV; missing (prospects) gives ``low``.
    cut_points : dict
        Minimum CLV of ``vip``, ``high`` and ``medium``.

    Returns
    -------
    Series
        ``value_tier`` (string dtype), same index.
    """
    values = pd.to_numeric(clv, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    tier = np.select(
        [values >= cut_points["vip"], values >= cut_points["high"], values >= cut_points["medium"]],
        ["vip", "high", "medium"],
        default="low",
    )
    return pd.Series(pd.array(tier, dtype="string"), index=clv.index, name="value_tier")


def assign_actions(
    stages: pd.Series,
    tiers: pd.Series,
    churn_probability: pd.Series,
    clv: pd.Series,
    policy: PolicyConfig,
) -> pd.DataFrame:
    """Retention action of every customer from the (stage, tier) action table.

    Parameters
    ----------
    stages, tiers : Series
        ``lifecycle_stage`` and ``value_tier``, same index.
    churn_probability, clv : Series
        Calibrated churn probability and predicted CLV (missing for prospects).
    policy : PolicyConfig
        The validated policy with its action table.

    Returns
    -------
    DataFrame
        Columns ``retention_action``, ``action_channel``, ``action_offer``, ``action_cost``,
        ``save_rate`` and ``expected_value_saved`` = churn_probability x clv x save_rate - cost
        (missing when churn probability or CLV is missing).
    """
    table = pd.DataFrame(
        [
            {"lifecycle_stage": s, "value_tier": t, **policy.resolve(s, t).model_dump()}
            for s in STAGES
            for t in TIERS
        ]
    ).drop(columns=["stage", "tier"])
    keys = pd.MultiIndex.from_arrays([stages.astype(str).to_numpy(), tiers.astype(str).to_numpy()])
    table_index = pd.MultiIndex.from_frame(table[["lifecycle_stage", "value_tier"]])
    pos = table_index.get_indexer(keys)
    if (pos < 0).any():
        bad = keys[pos < 0][0]
        raise ValueError(f"assign_actions: unknown (stage, tier) {bad}")
    rows = table.iloc[pos]
    cost = rows["unit_cost"].to_numpy(dtype=float)
    save = rows["save_rate"].to_numpy(dtype=float)
    p = pd.to_numeric(churn_probability, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    v = pd.to_numeric(clv, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    return pd.DataFrame(
        {
            "retention_action": pd.array(rows["action"].to_numpy(), dtype="string"),
            "action_channel": pd.array(rows["channel"].to_numpy(), dtype="string"),
            "action_offer": pd.array(rows["offer"].to_numpy(), dtype="string"),
            "action_cost": cost,
            "save_rate": save,
            "expected_value_saved": p * v * save - cost,
        },
        index=stages.index,
    )


def _best_first(ev: np.ndarray) -> np.ndarray:
    """Positions sorted by expected value, best first; missing last; ties keep input order."""
    key = np.where(np.isnan(ev), -np.inf, ev)
    return np.argsort(-key, kind="stable")


@dataclass
class BudgetRun:
    """What the budget has used so far while contacted customers are taken best first.

    :meth:`decide` takes the customers with a contact channel in the order of
    :func:`_best_first` (over the whole population: expected value saved, best first,
    missing last, ties by customer), one batch after another, so a population too large
    for memory can be decided from a sorted stream; :func:`apply_budget` and
    :func:`action_priority` are the same decision over one table.
    """

    policy: PolicyConfig
    contacts: dict[str, int] = field(default_factory=dict)
    cost: dict[str, float] = field(default_factory=dict)
    closed: dict[str, bool] = field(default_factory=dict)
    ranked: int = 0

    def decide(
        self, channel: np.ndarray, cost: np.ndarray, ev: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Over-budget flags and priorities of the next customers in best-first order.

        Parameters
        ----------
        channel : ndarray of str
            ``action_channel`` (never ``none``).
        cost : ndarray of float
            ``action_cost``.
        ev : ndarray of float
            ``expected_value_saved`` (NaN when unknown).

        Returns
        -------
        (ndarray of bool, ndarray of int64)
            ``over_budget``; ``action_priority`` (0 where there is none: over budget or no
            expected value).
        """
        channel = np.asarray(channel, dtype=object).astype(str)
        cost = np.asarray(cost, dtype=float)
        ev = np.asarray(ev, dtype=float)
        over = np.zeros(len(channel), dtype=bool)
        for name, budget in self.policy.budget.items():
            idx = np.flatnonzero(channel == name)
            if len(idx) == 0:
                continue
            if self.closed.get(name, False):
                over[idx] = True
                continue
            done = self.contacts.get(name, 0)
            keep = np.ones(len(idx), dtype=bool)
            if budget.max_contacts is not None:
                keep &= done + np.arange(1, len(idx) + 1) <= budget.max_contacts
            # one running sum from the first customer on, as np.cumsum over the whole channel
            running = np.cumsum(np.concatenate([[self.cost.get(name, 0.0)], cost[idx]]))[1:]
            if budget.max_cost is not None:
                keep &= running <= budget.max_cost + 1e-9
            # keep a best-first prefix: once a customer is over budget, all later ones are too
            keep = np.logical_and.accumulate(keep)
            over[idx[~keep]] = True
            self.contacts[name] = done + len(idx)
            self.cost[name] = float(running[-1])
            self.closed[name] = not bool(keep.all())
        ranked = ~over & ~np.isnan(ev)
        priority = np.zeros(len(channel), dtype=np.int64)
        priority[ranked] = self.ranked + np.arange(1, int(ranked.sum()) + 1)
        self.ranked += int(ranked.sum())
        return over, priority


def _budget_order(actions: pd.DataFrame) -> np.ndarray:
    """Positions of the customers with a contact channel, best first (see :class:`BudgetRun`)."""
    channel = actions["action_channel"].astype(str).to_numpy()
    idx = np.flatnonzero(channel != "none")
    ev = actions["expected_value_saved"].to_numpy(dtype=float)
    return idx[_best_first(ev[idx])]


def apply_budget(actions: pd.DataFrame, policy: PolicyConfig) -> pd.DataFrame:
    """Keep the best customers of each budgeted channel; mark the rest over budget.

    Parameters
    ----------
    actions : DataFrame
        Output of :func:`assign_actions`.
    policy : PolicyConfig
        ``policy.budget`` maps a channel to ``max_contacts`` and/or ``max_cost``.

    Returns
    -------
    DataFrame
        A copy in which, per budgeted channel, customers are taken in order of
        ``expected_value_saved`` (best first, missing last) while both limits hold; the others
        get ``retention_action`` ``"none (over budget)"``, channel ``none``, no offer, cost 0
        and expected value saved 0.
    """
    out = actions.copy()
    if not policy.budget:
        return out
    order = _budget_order(out)
    over, _ = BudgetRun(policy).decide(
        out["action_channel"].astype(str).to_numpy()[order],
        out["action_cost"].to_numpy(dtype=float)[order],
        out["expected_value_saved"].to_numpy(dtype=float)[order],
    )
    drop = np.zeros(len(out), dtype=bool)
    drop[order[over]] = True
    return mark_over_budget(out, drop)


def mark_over_budget(actions: pd.DataFrame, drop: np.ndarray) -> pd.DataFrame:
    """``actions`` with the ``drop`` rows marked over budget (see :func:`apply_budget`).

    Parameters
    ----------
    actions : DataFrame
        Output of :func:`assign_actions` (changed in place and returned).
    drop : ndarray of bool
        The customers over budget.

    Returns
    -------
    DataFrame
    """
    out = actions
    out.loc[drop, "retention_action"] = OVER_BUDGET
    out.loc[drop, "action_channel"] = "none"
    out.loc[drop, "action_offer"] = ""
    out.loc[drop, "action_cost"] = 0.0
    out.loc[drop, "save_rate"] = 0.0
    out.loc[drop, "expected_value_saved"] = 0.0
    return out


def action_priority(actions: pd.DataFrame) -> pd.Series:
    """Rank of each contacted customer by expected value saved (1 = act first).

    Parameters
    ----------
    actions : DataFrame
        With ``action_channel`` and ``expected_value_saved``.

    Returns
    -------
    Series
        ``action_priority`` (nullable Int64): 1..k over customers with a contact channel and a
        known expected value, best first (ties in input order); missing for the others.
    """
    ev = actions["expected_value_saved"].to_numpy(dtype=float)
    contacted = (actions["action_channel"].astype(str).to_numpy() != "none") & ~np.isnan(ev)
    idx = np.flatnonzero(contacted)
    order = idx[_best_first(ev[idx])]
    rank = np.zeros(len(actions), dtype=np.int64)
    rank[order] = np.arange(1, len(order) + 1)
    out = pd.array(rank, dtype="Int64")
    out[~contacted] = pd.NA
    return pd.Series(out, index=actions.index, name="action_priority")


def degree_counts(
    table: pd.DataFrame, policy: PolicyConfig
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Value counts of every five-degree source column present in ``table``.

    Parameters
    ----------
    table : DataFrame
        Per-customer scores and features (the population or a part of it).
    policy : PolicyConfig
        ``policy.five_degrees``.

    Returns
    -------
    dict
        Column to :func:`retain.features.segments.value_counts` of its known values; merge
        parts with :func:`retain.features.segments.merge_value_counts`.
    """
    out = {}
    for cols in policy.five_degrees.values():
        for c in cols:
            if c in table and c not in out:
                v = pd.to_numeric(table[c], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
                out[c] = value_counts(v[~np.isnan(v)])
    return out


def percentile_rank(values: np.ndarray, distinct: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Percentile rank within a population given as value counts (pandas ``rank(pct=True)``).

    Ties share the mean of their ranks: ``(number below + (number equal + 1) / 2) / n``.

    Parameters
    ----------
    values : ndarray
        Values to rank (NaN stays NaN).
    distinct, counts : ndarray
        The population's sorted distinct known values and their counts.

    Returns
    -------
    ndarray of float
    """
    v = np.asarray(values, dtype=float)
    out = np.full(len(v), np.nan)
    n = int(np.sum(counts))
    known = ~np.isnan(v)
    if n == 0 or not known.any():
        return out
    pos = np.searchsorted(distinct, v[known])
    below = (np.cumsum(counts) - counts)[pos]
    out[known] = (below + (counts[pos] + 1) / 2) / n
    return out


def five_degrees(
    table: pd.DataFrame,
    policy: PolicyConfig,
    counts: dict[str, tuple[np.ndarray, np.ndarray]] | None = None,
) -> pd.DataFrame:
    """The five degrees (satisfaction, loyalty, value, engagement, referral) as 0-1 scores.

    Each degree is the mean percentile rank, within ``table``, of its configured source columns
    that are present. A degree none of whose columns exists is entirely missing, and a customer
    missing every source value of a degree is missing there: nothing is invented.

    Parameters
    ----------
    table : DataFrame
        Per-customer scores and features.
    policy : PolicyConfig
        ``policy.five_degrees`` maps each degree to its source columns.
    counts : dict, optional
        :func:`degree_counts` of the whole population when ``table`` is a part of it;
        default: those of ``table``.

    Returns
    -------
    DataFrame
        Columns :data:`FIVE_DEGREES` (float, 0-1 or missing), same index.
    """
    if counts is None:
        counts = degree_counts(table, policy)
    out = pd.DataFrame(index=table.index)
    for degree in FIVE_DEGREES:
        cols = [c for c in policy.five_degrees.get(degree, ()) if c in table]
        if not cols:
            out[degree] = np.nan
            continue
        ranks = pd.DataFrame(
            {
                c: percentile_rank(
                    pd.to_numeric(table[c], errors="coerce").to_numpy(dtype=float, na_value=np.nan),
                    *counts[c],
                )
                for c in cols
            },
            index=table.index,
        )
        out[degree] = ranks.mean(axis=1, skipna=True).to_numpy(dtype=float)
    return out


def apply_policy(
    scores: pd.DataFrame, policy: PolicyConfig, value_horizon_days: int
) -> pd.DataFrame:
    """Stage, tier, action, budget, priority and five degrees for a scored population.

    Tier cut-points are quantiles of the whole ``scores`` table, so call this once on every
    scored customer (not per chunk).

    Parameters
    ----------
    scores : DataFrame
        Indexed by ``customer_id``; see :func:`assign_stages` for the columns.
    policy : PolicyConfig
        The validated policy.
    value_horizon_days : int
        The CLV horizon in days (see :func:`assign_stages`).

    Returns
    -------
    DataFrame
        Same index; columns ``lifecycle_stage``, ``stage_reason``, ``lifecycle_phase``,
        ``five_f``, ``value_tier``, ``retention_action``, ``action_channel``, ``action_offer``,
        ``action_cost``, ``expected_value_saved``, ``action_priority`` and the five degrees.
    """
    stages = assign_stages(scores, policy.stages, value_horizon_days)
    cuts = tier_cut_points(scores["clv"], policy.tiers)
    tiers = assign_tiers(scores["clv"], cuts)
    actions = assign_actions(
        stages["lifecycle_stage"], tiers, scores["churn_probability"], scores["clv"], policy
    )
    actions = apply_budget(actions, policy)
    out = pd.concat(
        [stages, tiers, actions.rename(columns={"save_rate": "action_save_rate"})], axis=1
    )
    out["action_priority"] = action_priority(actions)
    degrees = five_degrees(pd.concat([scores, out], axis=1), policy)
    return pd.concat([out, degrees], axis=1)
