"""The report's section on an evaluated scoring date: what the actions did, treated vs control.

Pure: it takes what ``retain evaluate-actions`` wrote (``evaluation.json`` and its tables, read
by :mod:`retain.jobs.report`) and fills a :class:`retain.reporting.html.Section`: the overall
comparison, a table and a chart of the retention uplift per action with its interval, the
proposed save rates and how the date's churn probabilities did.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes

from retain.names import (
    EVALUATION_BY_ACTION_CSV,
    EVALUATION_OVERALL_CSV,
    PROPOSED_POLICY_FILE,
    PROPOSED_SAVE_RATES_CSV,
)
from retain.reporting.html import Section
from retain.reporting.summary import format_amount

__all__ = ["evaluation_section", "plot_uplift"]


def _pct(value: Any, signed: bool = False) -> str:
    if value is None or not math.isfinite(float(value)):
        return ""
    return f"{float(value):+.1%}" if signed else f"{float(value):.1%}"


def _interval(low: Any, high: Any, signed: bool = True) -> str:
    lo, hi = _pct(low, signed), _pct(high, signed)
    return f"{lo} to {hi}" if lo and hi else "n/a (group too small)"


def _money(value: Any, currency: str) -> str:
    if value is None or not math.isfinite(float(value)):
        return ""
    return format_amount(float(value), currency, 2)


def plot_uplift(table: pd.DataFrame, ax: Axes | None = None, confidence: float = 0.95) -> Axes:
    """Retention uplift per action with its interval (a dot, and a bar where there is one).

    Parameters
    ----------
    table : DataFrame
        ``by_action.csv``: ``retention_action``, ``retention_uplift`` and its bounds.
    ax : Axes, optional
        Where to draw; a new figure otherwise.
    confidence : float
        The intervals' level (for the legend).

    Returns
    -------
    Axes
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 0.5 * max(len(table), 2) + 1.2))
    y = np.arange(len(table))
    value = table["retention_uplift"].to_numpy(dtype=float)
    low = table["retention_uplift_low"].to_numpy(dtype=float)
    high = table["retention_uplift_high"].to_numpy(dtype=float)
    has = np.isfinite(low) & np.isfinite(high)
    ax.errorbar(
        value[has] * 100,
        y[has],
        xerr=[(value - low)[has] * 100, (high - value)[has] * 100],
        fmt="o",
        capsize=4,
        label=f"uplift, {confidence:.0%} interval",
    )
    if (~has).any():
        ax.plot(value[~has] * 100, y[~has], "x", color="grey", label="too few for an interval")
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_yticks(y, table["retention_action"].astype(str))
    ax.invert_yaxis()
    ax.set_xlabel("retention uplift, treated minus control (percentage points)")
    ax.legend(loc="best", fontsize="small")
    ax.figure.tight_layout()
    return ax


def evaluation_section(
    sec: Section,
    summary: Mapping[str, Any],
    tables: Mapping[str, pd.DataFrame],
    currency: str = "$",
) -> Section:
    """Fill the section on an evaluated scoring date.

    Parameters
    ----------
    sec : Section
        The (empty) section.
    summary : mapping
        ``evaluation.json``.
    tables : mapping of str to DataFrame
        The evaluation's tables by file name (``by_action.csv``, ``overall.csv``,
        ``proposed_save_rates.csv``; others are ignored).
    currency : str
        Written with every amount.

    Returns
    -------
    Section
    """
    window = summary.get("window", {})
    level = f"{float(summary.get('confidence', 0.95)):.0%}"
    overall = tables[EVALUATION_OVERALL_CSV].iloc[0]
    sec.text(
        f"The actions given with the scores as of {summary.get('scores_date')}, measured over "
        f"their {summary.get('horizon_days')}-day churn horizon ({window.get('first_day')} to "
        f"{window.get('last_day')}): {int(overall['n_treatment']):,} customers contacted "
        f"(treatment) and {int(overall['n_control']):,} held out at random (control). "
        f"Retention (a purchase in the horizon) {_pct(overall['retention_treatment'])} treated "
        f"vs {_pct(overall['retention_control'])} control: uplift "
        f"{_pct(overall['retention_uplift'], True)} "
        f"({_interval(overall['retention_uplift_low'], overall['retention_uplift_high'])}); "
        f"return on the contact budget {_pct(overall['roi'], True) or 'n/a (no cost)'}."
    )
    by_action = tables[EVALUATION_BY_ACTION_CSV]
    shown = pd.DataFrame(
        {
            "action": by_action["retention_action"].astype(str)
            + " ("
            + by_action["action_channel"].astype(str)
            + ")",
            "treated / control": [
                f"{int(a):,} / {int(b):,}"
                for a, b in zip(by_action["n_treatment"], by_action["n_control"], strict=True)
            ],
            "retention treated / control": [
                f"{_pct(a)} / {_pct(b)}"
                for a, b in zip(
                    by_action["retention_treatment"], by_action["retention_control"], strict=True
                )
            ],
            f"retention uplift ({level} interval)": [
                f"{_pct(v, True)} ({_interval(lo, hi)})"
                for v, lo, hi in zip(
                    by_action["retention_uplift"],
                    by_action["retention_uplift_low"],
                    by_action["retention_uplift_high"],
                    strict=True,
                )
            ],
            "revenue uplift per customer": [
                _money(v, currency) for v in by_action["revenue_uplift"]
            ],
            "cost": [_money(v, currency) for v in by_action["cost"]],
            "ROI": [_pct(v, True) for v in by_action["roi"]],
        }
    )
    sec.howto(
        "treated customers were contacted, control customers (drawn at random among those "
        "given the same action) were not; the uplift is the difference of their retention "
        f"rates, with Newcombe's {level} interval. ROI = (revenue uplift x treated customers - "
        "cost) / cost. A group with fewer customers than evaluation.min_group_size gets no "
        "interval."
    )
    sec.table(shown, index=False, stack=True)
    if len(by_action):
        confidence = float(summary.get("confidence", 0.95))
        sec.figure(plot_uplift(by_action, confidence=confidence).figure, "retention uplift")

    proposals = tables[PROPOSED_SAVE_RATES_CSV]
    given = proposals[proposals["n_treatment"] + proposals["n_control"] > 0]
    if len(given):
        rates = pd.DataFrame(
            {
                "rule (stage, tier)": given["action"].astype(str)
                + " ("
                + given["stage"].astype(str)
                + ", "
                + given["tier"].astype(str)
                + ")",
                "current save rate": [_pct(v) for v in given["current_save_rate"]],
                f"measured ({level} interval)": [
                    f"{_pct(v, True)} ({_interval(lo, hi)})"
                    for v, lo, hi in zip(
                        given["save_rate"],
                        given["save_rate_low"],
                        given["save_rate_high"],
                        strict=True,
                    )
                ],
                "proposed": [_pct(v) for v in given["proposed_save_rate"]],
                "status": given["status"].astype(str),
            }
        )
        sec.text("Save rates measured per action rule:")
        sec.howto(
            "save rate = (churn rate of the control group - churn rate of the treated) / churn "
            "rate of the control group: the share of would-be churners the action kept, as "
            "the policy uses it. The proposal is clipped to [0, 1]; "
            f"{PROPOSED_POLICY_FILE} in the evaluation folder holds the policy with these "
            "rates, to review and adopt."
        )
        sec.table(rates, index=False, stack=True)

    realised = summary.get("realised", {})
    if realised.get("not_contacted_n"):
        auc = realised.get("not_contacted_roc_auc")
        sec.text(
            f"The churn probabilities of that date, judged on the "
            f"{int(realised['not_contacted_n']):,} buying customers not contacted: ROC AUC "
            f"{'n/a' if auc is None else f'{auc:.3f}'}, Brier score "
            f"{realised.get('not_contacted_brier', float('nan')):.3f}, realised churn rate "
            f"{_pct(realised.get('not_contacted_churn_rate'))} against "
            f"{_pct(realised.get('not_contacted_predicted_churn_rate'))} predicted.",
            note=True,
        )
    return sec
