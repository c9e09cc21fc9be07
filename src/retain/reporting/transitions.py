"""The report's section on how the customer base moved since an earlier scoring date.

A heat map of the lifecycle-stage transition matrix (rows: stage at the earlier date, columns:
stage now; colour: share of the row, text: customers), the at-risk outcomes, the counts of
new, reactivated and absent customers and the tier migration as a table. Pure: a
:class:`retain.transitions.Transitions` in, a filled :class:`retain.reporting.html.Section`
out; the plot takes an optional Axes as the other plots of :mod:`retain.reporting`.
"""

from __future__ import annotations

from functools import partial

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes

from retain.names import COMPARE_AT_RISK_CSV, COMPARE_STAGES_CSV, COMPARE_TIERS_CSV
from retain.reporting.html import Section
from retain.reporting.summary import format_amount
from retain.transitions import ORDERS, Transitions, display_order

__all__ = ["matrix_grid", "plot_transition_heatmap", "transitions_section"]


def matrix_grid(cells: pd.DataFrame, what: str, value: str) -> pd.DataFrame:
    """A long transition table as a from x to grid (missing cells 0), in the table's order.

    Parameters
    ----------
    cells : DataFrame
        :func:`retain.transitions.transition_matrix` output.
    what : {"stage", "tier"}
        Which matrix.
    value : str
        The column shown in the cells (``customers``, ``share_of_from``, ``clv_change``...).

    Returns
    -------
    DataFrame
        Index: values at ``from``; columns: values at ``to``.
    """
    rows = display_order(cells[f"from_{what}"].tolist(), ORDERS[what])
    cols = display_order(cells[f"to_{what}"].tolist(), ORDERS[what])
    grid = cells.pivot_table(
        index=f"from_{what}", columns=f"to_{what}", values=value, aggfunc="sum", fill_value=0
    )
    return grid.reindex(index=rows, columns=cols, fill_value=0)


def plot_transition_heatmap(
    cells: pd.DataFrame, what: str = "stage", ax: Axes | None = None, *, title: str | None = None
) -> Axes:
    """Heat map of a transition matrix: colour the row share, text the customers.

    Parameters
    ----------
    cells : DataFrame
        :func:`retain.transitions.transition_matrix` output.
    what : {"stage", "tier"}
        Which matrix.
    ax : Axes, optional
        Where to draw; a new figure when None (the caller closes it).
    title : str, optional
        Axes title.

    Returns
    -------
    Axes
    """
    counts = matrix_grid(cells, what, "customers")
    shares = matrix_grid(cells, what, "share_of_from").astype(float)
    if ax is None:
        size = (1.2 + 0.95 * counts.shape[1], 1.0 + 0.6 * counts.shape[0])
        _, ax = plt.subplots(figsize=(max(size[0], 6.0), max(size[1], 3.5)), layout="constrained")
    image = ax.imshow(shares.to_numpy(), cmap="Blues", vmin=0.0, vmax=1.0, aspect="auto")
    for (i, j), n in np.ndenumerate(counts.to_numpy()):
        if n:
            dark = shares.iat[i, j] > 0.6
            ax.text(j, i, f"{int(n):,}", ha="center", va="center", fontsize=8,
                    color="white" if dark else "black")  # fmt: skip
    ax.set_xticks(range(counts.shape[1]), [str(c) for c in counts.columns], rotation=35,
                  ha="right")  # fmt: skip
    ax.set_yticks(range(counts.shape[0]), [str(r) for r in counts.index])
    ax.set_xlabel(f"{what} at the later date")
    ax.set_ylabel(f"{what} at the earlier date")
    ax.set_title(title or f"Customers moving between {what}s (colour: share of the row)")
    ax.figure.colorbar(image, ax=ax, label="share of the row", shrink=0.8)
    return ax


def transitions_section(sec: Section, transitions: Transitions, currency: str = "$") -> Section:
    """Fill the report section on the movements since the earlier date.

    Parameters
    ----------
    sec : Section
        The section to fill.
    transitions : Transitions
        :func:`retain.transitions.compare_scores` of the earlier and the reported date.
    currency : str
        Written with every amount.

    Returns
    -------
    Section
    """
    money = partial(format_amount, currency=currency, decimals=0)
    c = transitions.counts
    sec.text(
        f"From {transitions.date_from} to {transitions.date_to}: {c['customers_from']:,} "
        f"customers scored then, {c['customers_to']:,} now, {c['in_both']:,} on both dates; "
        f"{c['new']:,} new (scored now only), {c['only_from']:,} scored then only (counted as "
        f"'(absent)' now), {c['reactivated']:,} reactivated (in the stage reactivated now, "
        f"not then); {c['stage_changed']:,} changed stage and {c['tier_changed']:,} changed "
        f"tier. Total predicted CLV {money(c['clv_from'])} then, {money(c['clv_to'])} now."
    )
    sec.howto(
        "each row is the stage at the earlier date and each column the stage now; the number "
        "is customers, the colour their share of the row. '(absent)' counts customers scored "
        f"on one date only. Written as {COMPARE_STAGES_CSV} by `retain compare`."
    )
    sec.figure(plot_transition_heatmap(transitions.stages, "stage").figure, "stage transitions")
    risk = transitions.at_risk
    sec.text("What became of the customers at risk at the earlier date:")
    sec.table(
        pd.DataFrame(
            {
                "outcome": risk["outcome"],
                "customers": risk["customers"].map(lambda n: f"{n:,}"),
                "share": risk["share"].map(lambda v: f"{v:.1%}"),
                "CLV then": risk["clv_from"].map(money),
                "CLV now": risk["clv_to"].map(money),
            }
        ),
        index=False,
    )
    sec.howto(
        "saved: active, growing or loyal now; slipped: dormant or lost now; absent: not scored "
        f"now. Written as {COMPARE_AT_RISK_CSV}."
    )
    tiers = matrix_grid(transitions.tiers, "tier", "customers")
    sec.text("Value tier migration (customers; rows: tier then, columns: tier now):")
    sec.table(tiers.map(lambda n: f"{int(n):,}"), index=True)
    sec.text(f"Also written as {COMPARE_TIERS_CSV}.", note=True)
    return sec
