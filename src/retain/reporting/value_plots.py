"""Charts of value predictions against the actual value: capture curve and decile chart.

Axes in, Axes out; the numbers come from :mod:`retain.clv.value_metrics`.
"""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes

from retain.clv.value_metrics import capture_curve


def _axes(ax: Axes | None) -> Axes:
    if ax is None:
        _, ax = plt.subplots(figsize=(5.5, 5.6), layout="constrained")
    return ax


def plot_value_capture(
    actual: np.ndarray, predictions: Mapping[str, np.ndarray], ax: Axes | None = None
) -> Axes:
    """Share of the actual value captured against the share of customers, best first.

    Parameters
    ----------
    actual : array of float
        Each customer's actual value.
    predictions : mapping of str to array
        Label to predicted value (non-finite rows are left out of that curve).
    ax : Axes, optional
        Where to draw.

    Returns
    -------
    Axes
        One curve per prediction, the hindsight curve (ranking by the actual value itself),
        the random diagonal and the 5% and 20% marks.
    """
    ax = _axes(ax)
    actual = np.asarray(actual, dtype=float)
    ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=1, label="random")
    targeted, captured = capture_curve(actual, actual)
    ax.plot(targeted, captured, ls=":", color="black", lw=1, label="hindsight (actual value)")
    for name, pred in predictions.items():
        pred = np.asarray(pred, dtype=float)
        ok = np.isfinite(pred)
        targeted, captured = capture_curve(actual[ok], pred[ok])
        ax.plot(targeted, captured, label=name)
    for mark in (0.05, 0.2):
        ax.axvline(mark, color="grey", lw=0.8, ls=":")
    ax.set(
        xlim=(0, 1),
        ylim=(0, 1),
        xlabel="share of customers (highest predicted value first)",
        ylabel="share of actual value captured",
        title="Value capture",
    )
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.13), fontsize=8, frameon=False)
    return ax


def plot_value_deciles(tables: Mapping[str, pd.DataFrame], ax: Axes | None = None) -> Axes:
    """Mean predicted and mean actual value per decile of predicted value.

    Parameters
    ----------
    tables : mapping of str to DataFrame
        Label to :func:`retain.clv.value_metrics.decile_table`.
    ax : Axes, optional
        Where to draw.

    Returns
    -------
    Axes
        Bars of the mean actual value and markers of the mean predicted value per decile (1 =
        highest predictions), one group per prediction.
    """
    ax = _axes(ax)
    n = max(len(tables), 1)
    width = 0.8 / n
    for i, (name, table) in enumerate(tables.items()):
        x = table["decile"].to_numpy(dtype=float) + (i - (n - 1) / 2) * width
        bars = ax.bar(x, table["mean_actual"], width=width, alpha=0.6, label=f"{name}: actual")
        ax.plot(
            x,
            table["mean_predicted"],
            marker="o",
            ls="none",
            color=bars.patches[0].get_facecolor() if len(bars.patches) else None,
            markeredgecolor="black",
            label=f"{name}: predicted",
        )
    ax.set(
        xlabel="decile of predicted value (1 = highest)",
        ylabel="mean value per customer",
        title="Decile calibration",
    )
    ax.set_xticks(range(1, 11))
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.13), fontsize=8, frameon=False, ncol=2)
    return ax
