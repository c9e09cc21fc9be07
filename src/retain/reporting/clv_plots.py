"""CLV backtest plots: cumulative purchases by week and the per-frequency chart.

Each function takes a table of :class:`retain.clv.BacktestResult` (or the result itself) and an
optional matplotlib Axes. Without an Axes a new figure is created with pyplot and the caller owns
it (close it with ``plt.close(ax.figure)``); nothing is closed or shown here.
"""

from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes


def _axes(ax: Axes | None) -> Axes:
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 4.5), layout="constrained")
    return ax


def _table(data: Any, attribute: str, columns: tuple[str, ...]) -> pd.DataFrame:
    table = getattr(data, attribute, data)
    missing = [c for c in columns if c not in table]
    if missing:
        raise ValueError(f"the {attribute} table needs columns {list(columns)}, missing {missing}")
    return table


def plot_cumulative_purchases(
    cumulative: pd.DataFrame | Any, ax: Axes | None = None, *, title: str | None = None
) -> Axes:
    """Cumulative actual vs predicted holdout repeat purchases, week by week.

    Parameters
    ----------
    cumulative : DataFrame or BacktestResult
        ``BacktestResult.cumulative`` (columns ``week``, ``actual``, ``predicted``).
    ax : Axes, optional
        Where to draw; a new figure when None.
    title : str, optional
        Axes title (default describes the plot).

    Returns
    -------
    Axes
    """
    table = _table(cumulative, "cumulative", ("week", "actual", "predicted"))
    ax = _axes(ax)
    weeks = table["week"].to_numpy()
    ax.plot(weeks, table["actual"].to_numpy(), color="black", lw=2, label="actual")
    ax.plot(weeks, table["predicted"].to_numpy(), color="tab:blue", ls="--", lw=2, label="model")
    ax.set_xlabel("week of the holdout period")
    ax.set_ylabel("cumulative repeat purchases")
    ax.set_title(title or "Holdout: cumulative repeat purchases, actual vs model")
    ax.set_xlim(left=0)
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left")
    return ax


def plot_frequency_table(
    by_frequency: pd.DataFrame | Any, ax: Axes | None = None, *, title: str | None = None
) -> Axes:
    """Mean holdout purchases, actual vs predicted, by calibration-period frequency.

    Parameters
    ----------
    by_frequency : DataFrame or BacktestResult
        ``BacktestResult.by_frequency`` (columns ``frequency``, ``customers``,
        ``mean_actual``, ``mean_predicted``).
    ax : Axes, optional
        Where to draw; a new figure when None.
    title : str, optional
        Axes title.

    Returns
    -------
    Axes
        Grouped bars; the number of customers per group is written with each label (on one
        rotated line when there are more than eight groups, so that labels never collide).
    """
    table = _table(
        by_frequency, "by_frequency", ("frequency", "customers", "mean_actual", "mean_predicted")
    )
    ax = _axes(ax)
    pos = np.arange(len(table))
    width = 0.4
    ax.bar(pos - width / 2, table["mean_actual"].fillna(0), width, color="0.3", label="actual")
    ax.bar(
        pos + width / 2, table["mean_predicted"].fillna(0), width, color="tab:blue", label="model"
    )
    pairs = list(zip(table["frequency"], table["customers"], strict=True))
    if len(pairs) <= 8:
        ax.set_xticks(pos, [f"{f}\n(n={n:,})" for f, n in pairs], fontsize=8)
    else:  # many groups: one rotated line each, so that neighbours never overlap
        ax.set_xticks(pos, [f"{f} (n={n:,})" for f, n in pairs], fontsize=7, rotation=60)
        for label in ax.get_xticklabels():
            label.set_horizontalalignment("right")
            label.set_rotation_mode("anchor")
    ax.set_xlabel("repeat purchases in the calibration period")
    ax.set_ylabel("mean repeat purchases in the holdout")
    ax.set_title(title or "Holdout purchases by calibration frequency")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(loc="upper left")
    return ax
