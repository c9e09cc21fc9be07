"""SHAP plots for the churn model: global bar, beeswarm, dependence, by group, waterfall.

Contributions are in log-odds of the uncalibrated booster (the output of
:func:`retain.explain.shap_contributions`: one column per feature plus the expected value).
Functions that draw on one Axes take ``ax=None`` and return the Axes; the beeswarm, drawn by
shap itself, returns its Figure. The caller owns and closes every figure; nothing is shown.
shap's own plotting is used for the beeswarm and waterfall plots, with a plain matplotlib
fallback when shap's plotting fails; the dependence plot is drawn here, on a quantile-clipped
axis with missing values apart (shap's own puts them, unlabelled, left of the axis).
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

LOG_ODDS = "SHAP value (log-odds of the uncalibrated churn model)"


def _axes(ax: Axes | None, size: tuple[float, float] = (8, 4.5)) -> Axes:
    if ax is None:
        _, ax = plt.subplots(figsize=size, layout="constrained")
    return ax


def mean_abs_shap(contrib: np.ndarray, feature_names: Sequence[str]) -> pd.Series:
    """Mean absolute contribution per feature, largest first.

    Parameters
    ----------
    contrib : ndarray, shape (n, n_features + 1)
        SHAP contributions with the expected value last.
    feature_names : sequence of str
        Feature names in model order.

    Returns
    -------
    Series
        Indexed by feature name, sorted descending.
    """
    values = np.abs(contrib[:, : len(feature_names)]).mean(axis=0)
    return pd.Series(values, index=list(feature_names)).sort_values(ascending=False)


def plot_shap_bar(
    contrib: np.ndarray,
    feature_names: Sequence[str],
    ax: Axes | None = None,
    max_features: int = 15,
) -> Axes:
    """Global importance: mean |SHAP| per feature (top ``max_features``)."""
    ax = _axes(ax, (8, 0.35 * max_features + 1.5))
    top = mean_abs_shap(contrib, feature_names).head(max_features)[::-1]
    ax.barh(top.index, top.to_numpy(), color="#1f77b4")
    ax.set_xlabel("mean |SHAP| (log-odds of the uncalibrated churn model)")
    ax.set_title("Global feature importance")
    return ax


def plot_beeswarm(
    contrib: np.ndarray, X: np.ndarray, feature_names: Sequence[str], max_features: int = 15
) -> Figure:
    """shap's beeswarm summary (one dot per customer and feature, coloured by value)."""
    import shap  # (b) heavy: only when a SHAP plot is drawn

    fig = plt.figure(figsize=(8, 0.4 * max_features + 1.5))
    try:
        shap.summary_plot(
            contrib[:, : len(feature_names)],
            X,
            feature_names=list(feature_names),
            max_display=max_features,
            show=False,
            plot_size=None,
        )
    except Exception:  # fall back to a plain scatter
        fig.clf()
        ax = fig.add_subplot()
        top = mean_abs_shap(contrib, feature_names).head(max_features).index[::-1]
        rng = np.random.default_rng(0)
        for k, name in enumerate(top):
            j = list(feature_names).index(name)
            vals = X[:, j].astype(float)
            rank = pd.Series(vals).rank(pct=True).to_numpy()
            y = k + rng.uniform(-0.3, 0.3, len(vals))
            ax.scatter(contrib[:, j], y, c=rank, cmap="coolwarm", s=4)
        ax.set_yticks(range(len(top)), top)
    plt.gcf().axes[0].set_xlabel(LOG_ODDS)
    return plt.gcf()


def dependence_axis(
    values: np.ndarray, clip: tuple[float, float] = (0.01, 0.99)
) -> tuple[float, float]:
    """The x range of a dependence plot: the ``clip`` quantiles of the observed values.

    Parameters
    ----------
    values : ndarray
        The feature's values (missing values are ignored).
    clip : tuple of float
        Lower and upper quantile.

    Returns
    -------
    lo, hi : float
        ``lo < hi`` (a constant feature gets a unit-wide range around its value; a feature
        missing everywhere gets ``(0, 1)``).
    """
    finite = values[np.isfinite(values)]
    if not finite.size:
        return 0.0, 1.0
    lo, hi = (float(q) for q in np.quantile(finite, clip))
    if hi <= lo:
        lo, hi = lo - 0.5, hi + 0.5
    return lo, hi


def plot_dependence(
    contrib: np.ndarray,
    X: np.ndarray,
    feature_names: Sequence[str],
    feature: str,
    ax: Axes | None = None,
    clip: tuple[float, float] = (0.01, 0.99),
) -> Axes:
    """SHAP value of one feature against its value (one dot per customer).

    The x axis spans the ``clip`` quantiles of the feature, so that a few extreme customers do
    not squeeze everybody else into one corner; customers beyond them are drawn at the edge
    with their own marker. Customers whose value is missing are drawn apart, left of a dotted
    line, under a "missing" tick. The legend (only when there are clipped or missing values)
    sits below the axes.

    Parameters
    ----------
    contrib : ndarray, shape (n, n_features + 1)
        SHAP contributions with the expected value last.
    X : ndarray, shape (n, n_features)
        The model inputs.
    feature_names : sequence of str
        Feature names in model order.
    feature : str
        The feature drawn.
    ax : Axes, optional
        Where to draw; a new figure when None.
    clip : tuple of float
        Lower and upper quantile of the x axis.

    Returns
    -------
    Axes
    """
    ax = _axes(ax, (6, 4.2))
    j = list(feature_names).index(feature)
    x = np.asarray(X[:, j], dtype=float)
    y = np.asarray(contrib[:, j], dtype=float)
    lo, hi = dependence_axis(x, clip)
    span = hi - lo
    missing = ~np.isfinite(x)
    outside = ~missing & ((x < lo) | (x > hi))
    inside = ~missing & ~outside
    ax.axhline(0.0, color="grey", lw=0.8)
    ax.scatter(x[inside], y[inside], s=7, alpha=0.5, color="tab:blue", linewidths=0)
    if outside.any():
        ax.scatter(
            np.clip(x[outside], lo, hi),
            y[outside],
            s=14,
            marker="|",
            color="tab:orange",
            label=f"beyond the {clip[0]:.0%}-{clip[1]:.0%} quantiles, drawn at the edge "
            f"(n={int(outside.sum()):,})",
        )
    left = lo - 0.03 * span
    ticks = [t for t in MaxNLocator(5).tick_values(lo, hi) if lo - 1e-9 * span <= t <= hi]
    labels = [f"{t:g}" for t in ticks]
    if missing.any():
        at = lo - 0.15 * span
        jitter = np.random.default_rng(0).uniform(-0.02, 0.02, int(missing.sum())) * span
        ax.scatter(
            at + jitter,
            y[missing],
            s=9,
            marker="x",
            color="tab:red",
            alpha=0.6,
            label=f"missing value (n={int(missing.sum()):,})",
        )
        ax.axvline(lo - 0.08 * span, color="grey", lw=0.8, ls=":")
        ticks, labels = [at, *ticks], ["missing", *labels]
        left = lo - 0.22 * span
    ax.set_xlim(left, hi + 0.03 * span)
    ax.set_xticks(ticks, labels)
    ax.set_xlabel(feature)
    ax.set_ylabel("SHAP (log-odds)")
    ax.set_title(f"Dependence: {feature}")
    if outside.any() or missing.any():
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), fontsize=7, frameon=False)
    return ax


def mean_abs_by_group(
    contrib: np.ndarray, feature_names: Sequence[str], groups: pd.Series, max_features: int = 8
) -> pd.DataFrame:
    """Mean |SHAP| of the top features within each group (e.g. lifecycle stage).

    Parameters
    ----------
    contrib : ndarray
        SHAP contributions (rows aligned with ``groups``).
    feature_names : sequence of str
        Feature names.
    groups : Series
        Group label per row.
    max_features : int
        Keep the globally most important features.

    Returns
    -------
    DataFrame
        Index: group; columns: features.
    """
    top = mean_abs_shap(contrib, feature_names).head(max_features).index
    cols = [list(feature_names).index(f) for f in top]
    frame = pd.DataFrame(np.abs(contrib[:, cols]), columns=top)
    frame["group"] = np.asarray(groups)
    return frame.groupby("group", observed=True).mean()


def plot_mean_abs_by_group(table: pd.DataFrame, ax: Axes | None = None, title: str = "") -> Axes:
    """Heatmap of :func:`mean_abs_by_group` (groups by features)."""
    ax = _axes(ax, (9, 0.45 * len(table) + 2))
    im = ax.imshow(table.to_numpy(), aspect="auto", cmap="viridis")
    ax.set_xticks(range(table.shape[1]), table.columns, rotation=40, ha="right")
    ax.set_yticks(range(table.shape[0]), table.index)
    for i in range(table.shape[0]):
        for j in range(table.shape[1]):
            ax.text(j, i, f"{table.iat[i, j]:.2f}", ha="center", va="center", color="w", size=7)
    ax.figure.colorbar(im, ax=ax, label="mean |SHAP| (log-odds)")
    ax.set_title(title or "Mean |SHAP| by group")
    return ax


def plot_waterfall(
    contrib_row: np.ndarray,
    x_row: np.ndarray,
    feature_names: Sequence[str],
    title: str = "",
    max_features: int = 8,
) -> Figure:
    """One customer's explanation: shap's waterfall from the expected value to the score."""
    import shap  # (b) heavy: only when a SHAP plot is drawn

    fig = plt.figure(figsize=(8, 0.45 * max_features + 1.5))
    explanation = shap.Explanation(
        values=contrib_row[: len(feature_names)],
        base_values=float(contrib_row[-1]),
        data=np.asarray(x_row, dtype=float),
        feature_names=list(feature_names),
    )
    try:
        shap.plots.waterfall(explanation, max_display=max_features, show=False)
    except Exception:
        fig.clf()
        ax = fig.add_subplot()
        order = np.argsort(-np.abs(contrib_row[: len(feature_names)]))[:max_features][::-1]
        vals = contrib_row[order]
        ax.barh([feature_names[i] for i in order], vals, color=np.where(vals > 0, "r", "b"))
        ax.set_xlabel(LOG_ODDS)
    fig = plt.gcf()
    if title:
        fig.suptitle(title, fontsize=10)
    return fig
