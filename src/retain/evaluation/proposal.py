"""The proposed policy: each action rule's save rate as measured, for the user to review.

The policy's action table gives every (stage, tier) pair a rule whose ``save_rate`` is an
assumption until measured. After a scoring date's horizon, the customers each contact rule
was given to (found again by resolving their stage and tier in the current policy, and kept
only when that rule still names the action they were given) are compared treated versus
control (:func:`retain.evaluation.actions.compare_groups`), and the measured save rate
``(churn_control - churn_treatment) / churn_control`` becomes the rule's proposed
``save_rate``, clipped to [0, 1] and rounded to 4 decimals (the raw value and its interval are
kept beside it).

A rule keeps its current save rate, with the reason, when it was given to nobody, when its
treated or control group is below the minimum size, or when the control group had no churner
(nothing to save). :func:`proposed_policy_yaml` writes the policy with the proposed rates and a
comment per rule (sample sizes, interval, status); it validates as a
:class:`retain.config.PolicyConfig`, and nothing is adopted until the user copies it over
their policy file.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd
import yaml

from retain.config import PolicyConfig
from retain.evaluation.actions import compare_groups

__all__ = [
    "MEASURED",
    "PROPOSAL_COLUMNS",
    "assign_rules",
    "control_strata",
    "proposed_policy",
    "proposed_policy_yaml",
    "proposed_save_rates",
]

MEASURED = "measured"
TOO_FEW = "too few customers"
NO_CHURNERS = "no churners in the control group"
NOT_GIVEN = "not given to anyone"
RULE = "rule"
"""The column of :func:`assign_rules`: the position of a customer's rule in the action table."""

PROPOSAL_COLUMNS = (
    RULE,
    "stage",
    "tier",
    "action",
    "channel",
    "current_save_rate",
    "n_treatment",
    "n_control",
    "churn_treatment",
    "churn_control",
    "save_rate",
    "save_rate_low",
    "save_rate_high",
    "proposed_save_rate",
    "status",
)


def assign_rules(frame: pd.DataFrame, policy: PolicyConfig) -> tuple[pd.Series, int]:
    """The action rule of each customer, from their stage and tier in the current policy.

    Parameters
    ----------
    frame : DataFrame
        ``lifecycle_stage``, ``value_tier`` and ``retention_action`` per customer.
    policy : PolicyConfig
        The current policy.

    Returns
    -------
    rules : Series
        Position of the rule in ``policy.actions`` (same index as ``frame``), -1 where the
        rule now resolved names another action than the one given (the policy changed since
        the scores were written).
    changed : int
        How many customers got -1.
    """
    index = {id(rule): i for i, rule in enumerate(policy.actions)}
    cache: dict[tuple[str, str], int] = {}
    positions = np.empty(len(frame), dtype=np.int64)
    stages = frame["lifecycle_stage"].astype(str).to_numpy()
    tiers = frame["value_tier"].astype(str).to_numpy()
    actions = frame["retention_action"].astype(str).to_numpy()
    for i, (stage, tier, action) in enumerate(zip(stages, tiers, actions, strict=True)):
        key = (stage, tier)
        if key not in cache:
            try:
                cache[key] = index[id(policy.resolve(stage, tier))]
            except KeyError:
                cache[key] = -1
        pos = cache[key]
        positions[i] = pos if pos >= 0 and policy.actions[pos].action == action else -1
    rules = pd.Series(positions, index=frame.index, name=RULE)
    return rules, int((positions < 0).sum())


def control_strata(frame: pd.DataFrame, policy: PolicyConfig) -> pd.Series:
    """Each customer's control-share stratum, for :func:`retain.evaluation.actions.compare_groups`.

    Customers whose rules (:func:`assign_rules`) hold out the same ``control_share`` form one
    stratum (``share=<value>``): within it the split was one random draw with one probability.
    A customer whose rule the current policy no longer gives has an unknown share and a
    stratum of their own (stage, tier) cell (``cell=<stage>|<tier>``).

    Parameters
    ----------
    frame : DataFrame
        ``lifecycle_stage``, ``value_tier`` and ``retention_action`` per customer.
    policy : PolicyConfig
        The current policy (the shares the scores were made with, unless it changed since).

    Returns
    -------
    Series of str
        Same index as ``frame``.
    """
    rules, _ = assign_rules(frame, policy)
    shares = np.array([rule.control_share for rule in policy.actions], dtype=float)
    pos = rules.to_numpy()
    known = pos >= 0
    cells = (
        "cell="
        + frame["lifecycle_stage"].astype(str).to_numpy()
        + "|"
        + frame["value_tier"].astype(str).to_numpy()
    )
    share_text = np.array([f"share={v!r}" for v in shares], dtype=object)
    labels = np.where(known, share_text[np.where(known, pos, 0)] if len(shares) else "", cells)
    return pd.Series(labels, index=frame.index, name="stratum", dtype=object)


def proposed_save_rates(
    frame: pd.DataFrame,
    policy: PolicyConfig,
    *,
    min_group_size: int = 30,
    confidence: float = 0.95,
) -> pd.DataFrame:
    """The measured save rate of every contact rule of the policy, and the proposed value.

    Parameters
    ----------
    frame : DataFrame
        :func:`retain.evaluation.actions.contacted` (customers with a group and their
        outcomes), with ``lifecycle_stage``, ``value_tier``, ``retention_action``.
    policy : PolicyConfig
        The current policy.
    min_group_size : int
        Treated and control customers a rule needs for a proposal.
    confidence : float
        Confidence level of the intervals.

    Returns
    -------
    DataFrame
        One row per rule whose channel is not ``none`` (:data:`PROPOSAL_COLUMNS`): the rule,
        sample sizes, churn rates, the raw save rate and its interval, the proposed save rate
        (clipped to [0, 1] and rounded to 4 decimals, or the current one) and the status
        (``measured`` or why not).
    """
    rules, _ = assign_rules(frame, policy)
    keyed = frame.assign(**{RULE: rules.to_numpy()})
    keyed = keyed[keyed[RULE] >= 0]
    measured = compare_groups(
        keyed, [RULE], min_group_size=min_group_size, confidence=confidence
    ).set_index(RULE)
    rows = []
    for i, rule in enumerate(policy.actions):
        if rule.channel == "none":
            continue
        m = measured.loc[i] if i in measured.index else None
        n1 = int(m["n_treatment"]) if m is not None else 0
        n0 = int(m["n_control"]) if m is not None else 0
        raw = float(m["save_rate"]) if m is not None else math.nan
        low = float(m["save_rate_low"]) if m is not None else math.nan
        high = float(m["save_rate_high"]) if m is not None else math.nan
        if n1 + n0 == 0:
            status = NOT_GIVEN
        elif min(n1, n0) < min_group_size:
            status = TOO_FEW
        elif not math.isfinite(raw):
            status = NO_CHURNERS
        else:
            status = MEASURED
        proposed = round(min(max(raw, 0.0), 1.0), 4) if status == MEASURED else rule.save_rate
        rows.append(
            {
                RULE: i,
                "stage": rule.stage,
                "tier": rule.tier,
                "action": rule.action,
                "channel": rule.channel,
                "current_save_rate": rule.save_rate,
                "n_treatment": n1,
                "n_control": n0,
                "churn_treatment": float(m["churn_treatment"]) if m is not None else math.nan,
                "churn_control": float(m["churn_control"]) if m is not None else math.nan,
                "save_rate": raw,
                "save_rate_low": low,
                "save_rate_high": high,
                "proposed_save_rate": float(proposed),
                "status": status,
            }
        )
    return pd.DataFrame(rows, columns=list(PROPOSAL_COLUMNS))


def proposed_policy(policy: PolicyConfig, proposals: pd.DataFrame) -> PolicyConfig:
    """A copy of ``policy`` whose rules carry their proposed save rates.

    Parameters
    ----------
    policy : PolicyConfig
        The current policy.
    proposals : DataFrame
        :func:`proposed_save_rates`.

    Returns
    -------
    PolicyConfig
        Validated again (a proposal out of [0, 1] would be an error).
    """
    rates = dict(zip(proposals[RULE], proposals["proposed_save_rate"], strict=True))
    actions = [
        rule.model_copy(update={"save_rate": float(rates.get(i, rule.save_rate))})
        for i, rule in enumerate(policy.actions)
    ]
    data = policy.model_dump(mode="json")
    data["actions"] = [a.model_dump(mode="json") for a in actions]
    return PolicyConfig.model_validate(data)


def _pct(value: float) -> str:
    return "n/a" if not math.isfinite(value) else f"{value:.1%}"


def _comment(row: Mapping[str, object], confidence: float) -> str:
    n = f"n treated {row['n_treatment']}, control {row['n_control']}"
    status = str(row["status"])
    if status != MEASURED:
        return f"kept at {row['current_save_rate']}: {status} ({n})"
    raw, low, high = (float(row[k]) for k in ("save_rate", "save_rate_low", "save_rate_high"))  # type: ignore[arg-type]
    interval = (
        f"{confidence:.0%} interval {_pct(low)} to {_pct(high)}"
        if math.isfinite(low) and math.isfinite(high)
        else "no interval"
    )
    return (
        f"was {row['current_save_rate']}; measured {_pct(raw)}, {interval}; churn "
        f"{_pct(float(row['churn_treatment']))} treated vs {_pct(float(row['churn_control']))} "  # type: ignore[arg-type]
        f"control ({n})"
    )


def _flow(value: object) -> str:
    """One YAML scalar or mapping in flow style, on one line."""
    return yaml.safe_dump(value, default_flow_style=True, width=10_000, sort_keys=False).strip()


def proposed_policy_yaml(
    policy: PolicyConfig,
    proposals: pd.DataFrame,
    header: str,
    confidence: float = 0.95,
) -> str:
    """The proposed policy as YAML, one commented line per action rule.

    Parameters
    ----------
    policy : PolicyConfig
        The current policy.
    proposals : DataFrame
        :func:`proposed_save_rates`.
    header : str
        Lines written at the top as comments (where the numbers come from).
    confidence : float
        The intervals' confidence level (for the comments).

    Returns
    -------
    str
        YAML that :func:`retain.config.load_policy` reads as the current policy with the
        proposed ``save_rate`` values; a comment above each measured rule gives the sample
        sizes, the raw save rate and its interval, or why the rate was kept.
    """
    new = proposed_policy(policy, proposals)
    data = new.model_dump(mode="json")
    by_rule = {int(r[RULE]): r for r in proposals.to_dict("records")}
    lines = [f"# {line}".rstrip() for line in header.splitlines()]
    for key, value in data.items():
        if key == "actions":
            lines.append("actions:")
            for i, rule in enumerate(value):
                if i in by_rule:
                    lines.append(f"  # {_comment(by_rule[i], confidence)}")
                lines.append(f"  - {_flow(rule)}")
        else:
            lines.append(yaml.safe_dump({key: value}, sort_keys=False, width=100).rstrip())
    return "\n".join(lines) + "\n"
