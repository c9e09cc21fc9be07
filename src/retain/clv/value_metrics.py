"""How well a value prediction finds the valuable customers: Gini, top-k capture, deciles, error.

Pure functions of two arrays: ``actual`` (each customer's value observed after the cutoff) and
``predicted`` (any score; higher means more valuable). They compare the BTYD + Gamma-Gamma CLV,
the machine-learned CLV (:mod:`retain.clv.ml`) and a naive baseline on one footing.

Ties
----
Customers with the same prediction are in no particular order: every ranking metric here gives
each of them the *mean* actual value of its tie group, i.e. the expected result of a random
order within the group. A constant prediction thus has a Gini of 0 and captures ``k / n`` of
the value, whatever the row order; a prediction with many zeros (the naive baseline for
customers without repeat purchases) is not flattered or punished by where its zeros happen to
sit.

Definitions
-----------
- **Capture** of the top fraction ``f``: the share of the total actual value held by the
  ``ceil(f x n)`` customers with the highest predictions (the value tiers' question: does the
  top 20% hold the value?).
- **Normalised Gini**: the Gini of the actual values ordered by prediction divided by the Gini
  of the actual values ordered by themselves (1 = perfect ranking, 0 = random); with the
  cumulative share ``L_i`` of actual value after the ``i`` best-ranked customers,
  ``G = sum(L_i) / n - (n + 1) / (2 n)``.
- **Decile table**: customers ranked by prediction (best first) and cut into ten groups of
  equal size (``floor(rank x 10 / n)``); per group the mean predicted and mean actual value.
- **Total error**: ``(sum predicted - sum actual) / sum actual``, the relative error of the
  book's total value (positive: over-prediction).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

CAPTURE_FRACTIONS = (0.05, 0.2)
"""Top fractions whose capture is reported (5%: the personal-call list; 20%: vip + high)."""

DECILE_COLUMNS = (
    "decile",
    "customers",
    "mean_predicted",
    "mean_actual",
    "sum_predicted",
    "sum_actual",
)
"""Columns of :func:`decile_table`."""


def _check(actual: np.ndarray, predicted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(actual, dtype=float).ravel()
    p = np.asarray(predicted, dtype=float).ravel()
    if a.shape != p.shape:
        raise ValueError(f"actual and predicted differ in length ({a.size} vs {p.size})")
    if a.size == 0:
        raise ValueError("value metrics need at least one customer")
    for name, x in (("actual", a), ("predicted", p)):
        if not np.isfinite(x).all():
            raise ValueError(f"{name} values must be finite ({int((~np.isfinite(x)).sum())} not)")
    return a, p


def ranked_actual(actual: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """Actual values in order of decreasing prediction, each tie group at its mean.

    Parameters
    ----------
    actual, predicted : array of float
        One value per customer, finite.

    Returns
    -------
    ndarray of float
        ``actual`` sorted by ``predicted`` (highest first); customers sharing a prediction all
        carry their group's mean actual value (see the module notes on ties).
    """
    a, p = _check(actual, predicted)
    order = np.argsort(-p, kind="stable")
    a, p = a[order], p[order]
    starts = np.r_[0, np.flatnonzero(np.diff(p) != 0) + 1]
    sizes = np.diff(np.r_[starts, p.size])
    means = np.add.reduceat(a, starts) / sizes
    return np.repeat(means, sizes)


def capture_curve(actual: np.ndarray, predicted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Share of customers targeted against share of actual value captured.

    Parameters
    ----------
    actual, predicted : array of float
        One value per customer.

    Returns
    -------
    targeted, captured : ndarray
        Both start at 0 and end at 1 (``n + 1`` points); ``captured`` is NaN when the total
        actual value is 0.
    """
    ranked = ranked_actual(actual, predicted)
    total = ranked.sum()
    targeted = np.arange(ranked.size + 1) / ranked.size
    if total == 0:
        return targeted, np.full(ranked.size + 1, np.nan)
    return targeted, np.r_[0.0, np.cumsum(ranked) / total]


def top_capture(actual: np.ndarray, predicted: np.ndarray, fraction: float) -> float:
    """Share of the total actual value held by the top ``fraction`` of predictions.

    Parameters
    ----------
    actual, predicted : array of float
        One value per customer.
    fraction : float
        Share of customers, in (0, 1]; the top ``ceil(fraction x n)`` are taken.

    Returns
    -------
    float
        In [0, 1] for non-negative values; NaN when the total actual value is 0.
    """
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    ranked = ranked_actual(actual, predicted)
    total = ranked.sum()
    if total == 0:
        return float("nan")
    k = math.ceil(fraction * ranked.size - 1e-9)
    return float(ranked[:k].sum() / total)


def _gini(ranked: np.ndarray) -> float:
    n = ranked.size
    return float(np.cumsum(ranked).sum() / ranked.sum() / n - (n + 1) / (2 * n))


def normalized_gini(actual: np.ndarray, predicted: np.ndarray) -> float:
    """Gini of the prediction's ranking over the Gini of the perfect ranking.

    Parameters
    ----------
    actual, predicted : array of float
        One value per customer.

    Returns
    -------
    float
        1 for a ranking as good as the actual values' own, 0 for a random (or constant) one;
        NaN when every actual value is the same (nothing to rank).
    """
    a, p = _check(actual, predicted)
    if a.sum() == 0:
        return float("nan")
    best = _gini(ranked_actual(a, a))
    if best == 0:
        return float("nan")
    return _gini(ranked_actual(a, p)) / best


def decile_table(actual: np.ndarray, predicted: np.ndarray, n_bins: int = 10) -> pd.DataFrame:
    """Mean predicted and actual value per group of customers ranked by prediction.

    Parameters
    ----------
    actual, predicted : array of float
        One value per customer.
    n_bins : int
        Number of groups (10: deciles).

    Returns
    -------
    DataFrame
        :data:`DECILE_COLUMNS`, one row per group, ``decile`` 1 holding the highest
        predictions. The rank is the stable order of decreasing prediction; the actual values
        are taken as ranked (tie groups at their mean, see the module notes).
    """
    a, p = _check(actual, predicted)
    if n_bins < 1:
        raise ValueError(f"n_bins must be at least 1, got {n_bins}")
    order = np.argsort(-p, kind="stable")
    pred = p[order]
    act = ranked_actual(a, p)
    group = np.arange(a.size) * n_bins // a.size
    count = np.bincount(group, minlength=n_bins)
    sum_p = np.bincount(group, weights=pred, minlength=n_bins)
    sum_a = np.bincount(group, weights=act, minlength=n_bins)
    keep = count > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        return pd.DataFrame(
            {
                "decile": np.arange(1, n_bins + 1)[keep],
                "customers": count[keep].astype(np.int64),
                "mean_predicted": (sum_p / count)[keep],
                "mean_actual": (sum_a / count)[keep],
                "sum_predicted": sum_p[keep],
                "sum_actual": sum_a[keep],
            }
        )


def total_error(actual: np.ndarray, predicted: np.ndarray) -> float:
    """Relative error of the total: ``(sum predicted - sum actual) / sum actual``.

    Returns
    -------
    float
        NaN when the total actual value is 0.
    """
    a, p = _check(actual, predicted)
    total = a.sum()
    return float((p.sum() - total) / total) if total != 0 else float("nan")


def value_metrics(actual: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """Every figure of one value prediction against the actual values.

    Parameters
    ----------
    actual, predicted : array of float
        One value per customer.

    Returns
    -------
    dict
        ``gini`` (normalised), ``top5_capture``, ``top20_capture`` (see
        :data:`CAPTURE_FRACTIONS`), ``total_error`` (relative), ``mae`` (mean absolute error
        per customer) and ``decile_mae`` (mean absolute gap between mean predicted and mean
        actual value over the deciles: calibration).
    """
    a, p = _check(actual, predicted)
    out = {"gini": normalized_gini(a, p)}
    for fraction in CAPTURE_FRACTIONS:
        out[f"top{round(fraction * 100)}_capture"] = top_capture(a, p, fraction)
    deciles = decile_table(a, p)
    out["total_error"] = total_error(a, p)
    out["mae"] = float(np.mean(np.abs(p - a)))
    out["decile_mae"] = float(np.mean(np.abs(deciles["mean_predicted"] - deciles["mean_actual"])))
    return out
