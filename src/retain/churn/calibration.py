"""Probability calibration stored as plain data.

The churn booster is trained with class weights (see :mod:`retain.churn.train`), so its raw
probabilities are on a shifted scale. A one-dimensional calibrator, fitted on the validation
cutoff and never on the test cutoff, maps the booster's raw score (the log-odds margin,
``Booster.predict(X, raw_score=True)``) to a probability.

A calibrator is a small JSON-ready dict, so scoring needs no pickle:

- isotonic: ``{"method": "isotonic", "x_thresholds": [...], "y_thresholds": [...]}``; the
  probability is the linear interpolation of ``y_thresholds`` at the raw score, clipped to the
  end points (what scikit-learn's ``IsotonicRegression(out_of_bounds="clip").predict`` does
  with its ``X_thresholds_`` and ``y_thresholds_``);
- sigmoid (Platt scaling): ``{"method": "sigmoid", "a": a, "b": b}`` with
  ``p = 1 / (1 + exp(-(a * raw_score + b)))``.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from scipy.optimize import minimize
from scipy.special import expit
from sklearn.isotonic import IsotonicRegression

CalibrationMethod = Literal["isotonic", "sigmoid"]
CALIBRATION_FORMAT_VERSION = 1


def fit_calibration(
    raw_scores: np.ndarray, labels: np.ndarray, method: CalibrationMethod = "isotonic"
) -> dict[str, Any]:
    """Fit a calibrator that maps raw model scores to probabilities.

    Parameters
    ----------
    raw_scores : array of float
        Raw scores (log-odds margins) on the calibration set, i.e. the validation cutoff.
    labels : array of {0, 1}
        Observed outcomes for the same rows (1 = churned).
    method : {"isotonic", "sigmoid"}
        Isotonic regression (non-parametric, monotone) or Platt scaling (two parameters).

    Returns
    -------
    dict
        Plain data (floats and lists) accepted by :func:`apply_calibration`.

    Raises
    ------
    ValueError
        On mismatched lengths, labels other than 0/1, a single class, or an unknown method.
    """
    x = np.asarray(raw_scores, dtype=float).ravel()
    y = np.asarray(labels).ravel()
    if x.shape != y.shape:
        raise ValueError(f"raw_scores and labels differ in length: {x.size} vs {y.size}")
    if not np.isin(y, (0, 1)).all():
        raise ValueError("labels must be 0 or 1")
    if np.unique(y).size < 2:
        raise ValueError("calibration needs both classes in the labels")
    if not np.isfinite(x).all():
        raise ValueError("raw_scores contain NaN or infinite values")
    y = y.astype(float)
    if method == "isotonic":
        iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(x, y)
        return {
            "method": "isotonic",
            "version": CALIBRATION_FORMAT_VERSION,
            "x_thresholds": [float(v) for v in iso.X_thresholds_],
            "y_thresholds": [float(v) for v in iso.y_thresholds_],
        }
    if method == "sigmoid":
        a, b = _fit_platt(x, y)
        return {"method": "sigmoid", "version": CALIBRATION_FORMAT_VERSION, "a": a, "b": b}
    raise ValueError(f"unknown calibration method {method!r}; use 'isotonic' or 'sigmoid'")


def _fit_platt(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Platt scaling with Platt's smoothed targets (as in scikit-learn's sigmoid calibration)."""
    n_pos = y.sum()
    n_neg = y.size - n_pos
    target = np.where(y > 0, (n_pos + 1.0) / (n_pos + 2.0), 1.0 / (n_neg + 2.0))
    scale = max(float(np.std(x)), 1e-12)
    z = x / scale

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        eta = theta[0] * z + theta[1]
        p = expit(eta)
        # binary cross-entropy written with logaddexp for stability
        value = np.sum(np.logaddexp(0.0, eta) - target * eta)
        grad_eta = p - target
        return float(value), np.array([np.dot(grad_eta, z), grad_eta.sum()])

    res = minimize(loss, np.array([1.0, 0.0]), jac=True, method="L-BFGS-B")
    return float(res.x[0] / scale), float(res.x[1])


def apply_calibration(calibrator: dict[str, Any], raw_scores: np.ndarray) -> np.ndarray:
    """Turn raw model scores into calibrated probabilities.

    Parameters
    ----------
    calibrator : dict
        As returned by :func:`fit_calibration` (or read back from its JSON).
    raw_scores : array of float
        Raw scores (log-odds margins) from ``Booster.predict(X, raw_score=True)``.

    Returns
    -------
    ndarray of float
        Probabilities in [0, 1], one per score.

    Raises
    ------
    ValueError
        When the calibrator's method is unknown.
    """
    x = np.asarray(raw_scores, dtype=float)
    method = calibrator.get("method")
    if method == "isotonic":
        xt = np.asarray(calibrator["x_thresholds"], dtype=float)
        yt = np.asarray(calibrator["y_thresholds"], dtype=float)
        return np.clip(np.interp(x, xt, yt), 0.0, 1.0)
    if method == "sigmoid":
        return expit(float(calibrator["a"]) * x + float(calibrator["b"]))
    raise ValueError(f"unknown calibration method {method!r}")
