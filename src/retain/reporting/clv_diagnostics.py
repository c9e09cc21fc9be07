"""Plots of the CLV model diagnostics (:mod:`retain.clv.diagnostics`): Axes in, Axes out.

Each function takes the diagnostic table and an optional matplotlib Axes. Without an Axes a new
figure is created with pyplot and the caller owns it (close it with ``plt.close(ax.figure)``);
nothing is closed or shown here.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.ticker import MaxNLocator


def _axes(ax: Axes | None) -> Axes:
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 4.5))
    return ax


def _require(table: pd.DataFrame, columns: tuple[str, ...], what: str) -> None:
    missing = [c for c in columns if c not in table]
    if missing:
        raise ValueError(f"the {what} table needs columns {list(columns)}, missing {missing}")


def plot_frequency_recency_matrix(
    matrix: pd.DataFrame,
    ax: Axes | None = None,
    *,
    title: str | None = None,
    cmap: str = "viridis",
    colorbar: bool = True,
) -> Axes:
    """Heat map of a frequency x recency matrix (P(alive) or expected purchases).

    Parameters
    ----------
    matrix : DataFrame
        :func:`retain.clv.diagnostics.p_alive_matrix` or
        :func:`~retain.clv.diagnostics.expected_purchases_matrix` (rows recency, columns
        frequency; impossible cells NaN, drawn blank).
    ax : Axes, optional
        Where to draw; a new figure when None.
    title : str, optional
        Axes title.
    cmap : str
        Matplotlib colour map.
    colorbar : bool
        Add a colour bar beside the Axes.

    Returns
    -------
    Axes
        Recency grows downwards, frequency to the right (the layout of lifetimes' plots).
    """
    ax = _axes(ax)
    values = matrix.to_numpy(dtype=float)
    image = ax.imshow(np.ma.masked_invalid(values), cmap=cmap, aspect="auto", interpolation="none")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel(f"historical {matrix.columns.name or 'frequency'}")
    ax.set_ylabel(f"historical {(matrix.index.name or 'recency').replace('_', ' ')}")
    ax.set_title(title or "Frequency x recency")
    if colorbar:
        ax.figure.colorbar(image, ax=ax)
    return ax


def plot_period_transactions(
    table: pd.DataFrame, ax: Axes | None = None, *, title: str | None = None
) -> Axes:
    """Customers by number of repeat purchases in the calibration period, actual vs model.

    Parameters
    ----------
    table : DataFrame
        :func:`retain.clv.diagnostics.period_transactions` (``label``, ``actual``,
        ``expected``).
    ax : Axes, optional
        Where to draw; a new figure when None.
    title : str, optional
        Axes title.

    Returns
    -------
    Axes
    """
    _require(table, ("label", "actual", "expected"), "period transactions")
    ax = _axes(ax)
    pos = np.arange(len(table))
    width = 0.4
    ax.bar(pos - width / 2, table["actual"], width, color="0.3", label="actual")
    ax.bar(pos + width / 2, table["expected"], width, color="tab:blue", label="model")
    ax.set_xticks(pos, list(table["label"]))
    ax.set_xlabel("repeat purchases in the calibration period")
    ax.set_ylabel("customers")
    ax.set_title(title or "Frequency of repeat purchases: actual vs model")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(loc="upper right")
    return ax


def plot_cohort_tracking(
    tracking: pd.DataFrame,
    ax: Axes | None = None,
    *,
    cumulative: bool = True,
    calibration_end: pd.Timestamp | str | None = None,
    title: str | None = None,
) -> Axes:
    """Repeat purchases of the cohort per period (or cumulated), actual vs model.

    Parameters
    ----------
    tracking : DataFrame
        :func:`retain.clv.diagnostics.cohort_tracking`.
    ax : Axes, optional
        Where to draw; a new figure when None.
    cumulative : bool
        Cumulative counts (True) or counts per period (False).
    calibration_end : date or str, optional
        Draws a vertical line after the period that contains this day.
    title : str, optional
        Axes title.

    Returns
    -------
    Axes
    """
    _require(
        tracking,
        ("period_end", "actual", "expected", "actual_cumulative", "expected_cumulative"),
        "cohort tracking",
    )
    ax = _axes(ax)
    suffix = "_cumulative" if cumulative else ""
    periods = tracking.index.to_numpy()
    ax.plot(periods, tracking["actual" + suffix], color="black", lw=2, label="actual")
    ax.plot(periods, tracking["expected" + suffix], color="tab:blue", ls="--", lw=2, label="model")
    if calibration_end is not None:
        ends = pd.to_datetime(tracking["period_end"])
        after = int(np.searchsorted(ends.to_numpy(), np.datetime64(pd.Timestamp(calibration_end))))
        if after < len(periods):
            ax.axvline(periods[after], color="0.5", ls=":", label="end of calibration")
    ax.set_xlabel("period")
    ax.set_ylabel(("cumulative " if cumulative else "") + "repeat purchases")
    kind = "cumulative" if cumulative else "per period"
    ax.set_title(title or f"Cohort tracking: repeat purchases {kind}, actual vs model")
    ax.set_xlim(periods.min() - 0.5, periods.max() + 0.5)
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left" if cumulative else "upper right")
    return ax


def plot_p_alive_history(
    history: pd.DataFrame, ax: Axes | None = None, *, title: str | None = None
) -> Axes:
    """One customer's P(alive) day by day, with the purchase days marked.

    Parameters
    ----------
    history : DataFrame
        :func:`retain.clv.diagnostics.p_alive_history` (``purchase``, ``p_alive``; dates as
        index).
    ax : Axes, optional
        Where to draw; a new figure when None.
    title : str, optional
        Axes title.

    Returns
    -------
    Axes
    """
    _require(history, ("purchase", "p_alive"), "P(alive) history")
    ax = _axes(ax)
    dates = history.index
    ax.plot(dates, history["p_alive"], color="tab:blue", lw=2, label="P(alive)")
    bought = dates[history["purchase"].to_numpy(dtype=bool)]
    for i, day in enumerate(bought):
        ax.axvline(day, color="0.3", ls="--", lw=1, label="purchase" if i == 0 else None)
    ax.set_ylim(0, 1.05)
    ax.tick_params(axis="x", labelrotation=30)
    ax.set_ylabel("P(alive)")
    ax.set_title(title or "P(alive) history")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left")
    return ax
