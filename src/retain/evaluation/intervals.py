"""Confidence intervals of the treated-versus-control comparisons.

Pure functions of counts and values; every interval is two-sided at ``confidence`` (0.95 by
default), and an interval that the data cannot support comes back as ``(nan, nan)``, never as a
made-up number.

- :func:`wilson_interval`: one proportion, Wilson's score interval.
- :func:`newcombe_difference`: difference of two independent proportions, Newcombe's hybrid
  score interval (his method 10, from the two Wilson intervals; Newcombe 1998, Statistics in
  Medicine 17:873-890). Unlike the normal approximation it stays inside [-1, 1] and behaves
  with rates near 0 or 1.
- :func:`welch_difference`: difference of two means with unequal variances (Welch's t
  interval, Welch-Satterthwaite degrees of freedom), for revenue per customer.
- :func:`relative_reduction`: the relative reduction ``1 - q1 / q0`` of a rate (the save
  rate), with the log-scale interval of the risk ratio (Katz et al. 1978, the delta method on
  ``log(q1 / q0)``), undefined when either group has no events.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

__all__ = [
    "Estimate",
    "newcombe_difference",
    "relative_reduction",
    "welch_difference",
    "wilson_interval",
    "z_value",
]

NAN = float("nan")


@dataclass(frozen=True)
class Estimate:
    """A point estimate and its interval (``nan`` bounds when none can be given).

    Attributes
    ----------
    value : float
        The estimate (``nan`` when undefined).
    low, high : float
        The interval's bounds.
    """

    value: float
    low: float = NAN
    high: float = NAN

    @property
    def has_interval(self) -> bool:
        """Whether both bounds are finite."""
        return math.isfinite(self.low) and math.isfinite(self.high)


def z_value(confidence: float) -> float:
    """The two-sided normal quantile of a confidence level (0.95 -> 1.96).

    Parameters
    ----------
    confidence : float
        In (0, 1).

    Returns
    -------
    float
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    return float(stats.norm.ppf(0.5 + confidence / 2.0))


def _check_count(k: int, n: int) -> None:
    if n < 0 or k < 0 or k > n:
        raise ValueError(f"need 0 <= k <= n, got k={k}, n={n}")


def wilson_interval(k: int, n: int, confidence: float = 0.95) -> Estimate:
    """Wilson's score interval of a proportion ``k / n``.

    Parameters
    ----------
    k : int
        Successes.
    n : int
        Trials (0 gives an undefined estimate).
    confidence : float
        Confidence level.

    Returns
    -------
    Estimate
        ``k / n`` and the interval (within [0, 1]).
    """
    _check_count(k, n)
    if n == 0:
        return Estimate(NAN)
    z = z_value(confidence)
    p = k / n
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return Estimate(p, max(0.0, centre - half), min(1.0, centre + half))


def newcombe_difference(k1: int, n1: int, k0: int, n0: int, confidence: float = 0.95) -> Estimate:
    """Difference of two proportions ``k1/n1 - k0/n0``, Newcombe's hybrid score interval.

    Parameters
    ----------
    k1, n1 : int
        Successes and trials of the first group (treatment).
    k0, n0 : int
        Successes and trials of the second group (control).
    confidence : float
        Confidence level.

    Returns
    -------
    Estimate
        The difference and ``[d - sqrt((p1 - l1)^2 + (u0 - p0)^2),
        d + sqrt((u1 - p1)^2 + (p0 - l0)^2)]`` with ``(l, u)`` each group's Wilson interval.
    """
    a, b = wilson_interval(k1, n1, confidence), wilson_interval(k0, n0, confidence)
    if not (a.has_interval and b.has_interval):
        return Estimate(NAN)
    d = a.value - b.value
    low = d - math.sqrt((a.value - a.low) ** 2 + (b.high - b.value) ** 2)
    high = d + math.sqrt((a.high - a.value) ** 2 + (b.value - b.low) ** 2)
    return Estimate(d, low, high)


def welch_difference(x1: np.ndarray, x0: np.ndarray, confidence: float = 0.95) -> Estimate:
    """Difference of two means ``mean(x1) - mean(x0)`` with Welch's t interval.

    Parameters
    ----------
    x1, x0 : array of float
        The values of each group (finite).
    confidence : float
        Confidence level.

    Returns
    -------
    Estimate
        The difference; the interval needs two values in each group (a group whose values
        are all equal contributes no variance; when both are constant there is no interval:
        a zero-width one would claim a certainty the data cannot give).
    """
    a = np.asarray(x1, dtype=float)
    b = np.asarray(x0, dtype=float)
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError("values must be finite")
    if a.size == 0 or b.size == 0:
        return Estimate(NAN)
    d = float(a.mean() - b.mean())
    if a.size < 2 or b.size < 2:
        return Estimate(d)
    va, vb = a.var(ddof=1) / a.size, b.var(ddof=1) / b.size
    se2 = va + vb
    if se2 == 0.0:
        return Estimate(d)
    df = se2**2 / (va**2 / (a.size - 1) + vb**2 / (b.size - 1))
    t = float(stats.t.ppf(0.5 + confidence / 2.0, df))
    half = t * math.sqrt(se2)
    return Estimate(d, d - half, d + half)


def relative_reduction(e1: int, n1: int, e0: int, n0: int, confidence: float = 0.95) -> Estimate:
    """The relative reduction of a rate, ``1 - (e1/n1) / (e0/n0)``, with a log-scale interval.

    With ``e`` the customers who churned (no purchase in the horizon) this is the save rate:
    the share of the control group's churners whom the action would have kept.

    Parameters
    ----------
    e1, n1 : int
        Events and customers of the treated group.
    e0, n0 : int
        Events and customers of the control group.
    confidence : float
        Confidence level.

    Returns
    -------
    Estimate
        ``1 - RR`` with RR = (e1/n1) / (e0/n0), and ``[1 - RR_high, 1 - RR_low]`` from
        ``log RR +- z * sqrt((1 - q1)/e1 + (1 - q0)/e0)``. Undefined (nan) when the control
        group has no events; without an interval when the treated group has none, or when
        every customer of both groups had one (the log-scale variance vanishes).
    """
    _check_count(e1, n1)
    _check_count(e0, n0)
    if n1 == 0 or n0 == 0 or e0 == 0:
        return Estimate(NAN)
    q1, q0 = e1 / n1, e0 / n0
    value = 1.0 - q1 / q0
    if e1 == 0:
        return Estimate(value)
    z = z_value(confidence)
    log_rr = math.log(q1 / q0)
    se = math.sqrt((1 - q1) / e1 + (1 - q0) / e0)
    if se == 0.0:  # everyone churned in both groups: the log scale gives no width
        return Estimate(value)
    rr_low, rr_high = math.exp(log_rr - z * se), math.exp(log_rr + z * se)
    return Estimate(value, 1.0 - rr_high, 1.0 - rr_low)
