"""Churn model plots: calibration curve, ROC and precision-recall curves, gain chart.

Every function takes the observed outcomes, one or more named scores, and an optional
matplotlib Axes (a new figure is made when ``ax`` is None), and returns the Axes.
"""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from sklearn.metrics import precision_recall_curve, roc_curve

from retain.churn.evaluate import calibration_table, ranking_metrics

Scores = Mapping[str, np.ndarray]


def _axes(ax: Axes | None) -> Axes:
    if ax is None:
        _, ax = plt.subplots(figsize=(5.5, 5.6), layout="constrained")
    return ax


def _legend_below(ax: Axes) -> None:
    """The legend under the axes, where it cannot cover a curve."""
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.13), fontsize=8, frameon=False)


def plot_calibration_curve(
    y: np.ndarray, probabilities: Scores, n_bins: int = 10, ax: Axes | None = None
) -> Axes:
    """Observed churn rate against mean predicted probability per bin.

    Parameters
    ----------
    y : array of {0, 1}
        Observed outcomes.
    probabilities : mapping of str to array
        Label (e.g. ``"raw"``, ``"calibrated"``) to predicted probabilities in [0, 1].
    n_bins : int
        Equal-width bins.
    ax : Axes, optional
        Where to draw.

    Returns
    -------
    Axes
        The plot, with the diagonal of perfect calibration.
    """
    ax = _axes(ax)
    ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=1, label="perfect")
    for name, prob in probabilities.items():
        table = calibration_table(y, prob, n_bins)
        ax.plot(table["mean_predicted"], table["observed_rate"], marker="o", label=name)
    ax.set(
        xlim=(0, 1),
        ylim=(0, 1),
        xlabel="mean predicted churn probability",
        ylabel="observed churn rate",
        title="Calibration",
    )
    _legend_below(ax)
    return ax


def plot_roc(y: np.ndarray, scores: Scores, ax: Axes | None = None) -> Axes:
    """ROC curves with the AUC of each score in the legend.

    Parameters
    ----------
    y : array of {0, 1}
        Observed outcomes.
    scores : mapping of str to array
        Label to score (higher = more likely to churn).
    ax : Axes, optional
        Where to draw.

    Returns
    -------
    Axes
        The plot.
    """
    ax = _axes(ax)
    ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=1)
    for name, score in scores.items():
        fpr, tpr, _ = roc_curve(y, score)
        auc = ranking_metrics(y, score)["roc_auc"]
        ax.plot(fpr, tpr, label=f"{name} (AUC {auc:.3f})")
    ax.set(
        xlim=(0, 1),
        ylim=(0, 1),
        xlabel="false positive rate",
        ylabel="true positive rate",
        title="ROC",
    )
    _legend_below(ax)
    return ax


def plot_precision_recall(y: np.ndarray, scores: Scores, ax: Axes | None = None) -> Axes:
    """Precision-recall curves with the average precision in the legend.

    Parameters
    ----------
    y : array of {0, 1}
        Observed outcomes.
    scores : mapping of str to array
        Label to score (higher = more likely to churn).
    ax : Axes, optional
        Where to draw.

    Returns
    -------
    Axes
        The plot, with the churn rate as the no-skill line.
    """
    ax = _axes(ax)
    ax.axhline(float(np.mean(y)), ls="--", color="grey", lw=1, label="churn rate")
    for name, score in scores.items():
        precision, recall, _ = precision_recall_curve(y, score)
        ap = ranking_metrics(y, score)["pr_auc"]
        ax.plot(recall, precision, label=f"{name} (AP {ap:.3f})")
    ax.set(
        xlim=(0, 1), ylim=(0, 1.02), xlabel="recall", ylabel="precision", title="Precision-recall"
    )
    _legend_below(ax)
    return ax


def gain_curve(y: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative share of churners captured against the share of customers targeted.

    Parameters
    ----------
    y : array of {0, 1}
        Observed outcomes.
    score : array of float
        Higher = targeted first (stable order on ties).

    Returns
    -------
    targeted, captured : ndarray
        Both start at 0 and end at 1.
    """
    y = np.asarray(y, dtype=float)
    order = np.argsort(-np.asarray(score, dtype=float), kind="stable")
    captured = np.r_[0.0, np.cumsum(y[order]) / max(y.sum(), 1.0)]
    targeted = np.arange(y.size + 1) / y.size
    return targeted, captured


def plot_gain(y: np.ndarray, scores: Scores, ax: Axes | None = None) -> Axes:
    """Cumulative gain chart (share of churners reached when contacting the top x%).

    Parameters
    ----------
    y : array of {0, 1}
        Observed outcomes.
    scores : mapping of str to array
        Label to score (higher = more likely to churn).
    ax : Axes, optional
        Where to draw.

    Returns
    -------
    Axes
        The plot, with the random-targeting diagonal, the best possible curve and the top
        decile marked. When most customers churn (a high base rate) even a perfect ranking
        stays close to the diagonal: the best curve shows how much room there was.
    """
    ax = _axes(ax)
    rate = float(np.mean(y)) if len(y) else 0.0
    ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=1, label="random")
    if rate > 0:
        ax.plot(
            [0, rate, 1],
            [0, 1, 1],
            ls=":",
            color="black",
            lw=1,
            label=f"best possible (churn rate {rate:.0%})",
        )
    for name, score in scores.items():
        targeted, captured = gain_curve(y, score)
        ax.plot(targeted, captured, label=name)
    ax.axvline(0.1, color="grey", lw=0.8, ls=":")
    ax.set(
        xlim=(0, 1),
        ylim=(0, 1),
        xlabel="share of customers contacted (by score)",
        ylabel="share of churners reached",
        title="Gain",
    )
    _legend_below(ax)
    return ax
