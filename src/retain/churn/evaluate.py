"""Churn evaluation: ranking and calibration metrics, lift, and the baselines.

All metrics take the observed outcome ``y`` (1 = churned within the horizon) and a score where
higher means more likely to churn. Probability metrics (Brier, log loss, ECE) need scores in
[0, 1]; ranking metrics (ROC AUC, PR AUC, lift, capture) accept any score.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from scipy.special import expit
from scipy.stats import norm, rankdata
from sklearn.metrics import average_precision_score, roc_auc_score

from retain.clv.cutoff_features import clv_features
from retain.clv.mle import ClvFitError
from retain.names import auc_difference_metric

EPS = 1e-15


def _check(y: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y).ravel()
    s = np.asarray(score, dtype=float).ravel()
    if y.shape != s.shape:
        raise ValueError(f"y and score differ in length: {y.size} vs {s.size}")
    if y.size == 0:
        raise ValueError("no rows to evaluate")
    if not np.isin(y, (0, 1)).all():
        raise ValueError("y must be 0 or 1")
    if not np.isfinite(s).all():
        raise ValueError("score contains NaN or infinite values")
    return y.astype(int), s


def expected_calibration_error(y: np.ndarray, prob: np.ndarray, n_bins: int = 10) -> float:
    """Expected calibration error with equal-width probability bins.

    Parameters
    ----------
    y : array of {0, 1}
        Observed outcomes.
    prob : array of float
        Predicted probabilities in [0, 1].
    n_bins : int
        Number of equal-width bins on [0, 1]; the last bin includes 1.

    Returns
    -------
    float
        ``sum_b (n_b / n) * |mean(prob in b) - mean(y in b)|``, in [0, 1].
    """
    y, p = _check(y, prob)
    if (p < 0).any() or (p > 1).any():
        raise ValueError("probabilities must lie in [0, 1]")
    bins = np.minimum((p * n_bins).astype(int), n_bins - 1)
    sum_p = np.bincount(bins, weights=p, minlength=n_bins)
    sum_y = np.bincount(bins, weights=y, minlength=n_bins)
    return float(np.abs(sum_p - sum_y).sum() / y.size)


def calibration_table(y: np.ndarray, prob: np.ndarray, n_bins: int = 10) -> pd.DataFrame:
    """Mean predicted probability and observed rate per equal-width bin (non-empty bins only).

    Parameters
    ----------
    y : array of {0, 1}
        Observed outcomes.
    prob : array of float
        Predicted probabilities in [0, 1].
    n_bins : int
        Number of equal-width bins.

    Returns
    -------
    DataFrame
        Columns ``bin_lower``, ``bin_upper``, ``n``, ``mean_predicted``, ``observed_rate``.
    """
    y, p = _check(y, prob)
    bins = np.minimum((p * n_bins).astype(int), n_bins - 1)
    count = np.bincount(bins, minlength=n_bins)
    sum_p = np.bincount(bins, weights=p, minlength=n_bins)
    sum_y = np.bincount(bins, weights=y, minlength=n_bins)
    keep = count > 0
    edges = np.arange(n_bins + 1) / n_bins
    return pd.DataFrame(
        {
            "bin_lower": edges[:-1][keep],
            "bin_upper": edges[1:][keep],
            "n": count[keep],
            "mean_predicted": sum_p[keep] / count[keep],
            "observed_rate": sum_y[keep] / count[keep],
        }
    )


def top_fraction_lift(
    y: np.ndarray, score: np.ndarray, fraction: float = 0.1
) -> tuple[float, float]:
    """Lift and capture among the highest-scored ``fraction`` of customers.

    Ties at the boundary are broken by a stable sort on the negated score (row order), so the
    selected group has exactly ``ceil(fraction * n)`` rows.

    Parameters
    ----------
    y : array of {0, 1}
        Observed outcomes.
    score : array of float
        Higher means more likely to churn.
    fraction : float
        Share of customers targeted, in (0, 1].

    Returns
    -------
    lift : float
        Churn rate in the selected group divided by the overall churn rate.
    capture : float
        Share of all churners that fall in the selected group.
    """
    y, s = _check(y, score)
    if not 0 < fraction <= 1:
        raise ValueError("fraction must be in (0, 1]")
    k = int(np.ceil(fraction * y.size))
    top = np.argsort(-s, kind="stable")[:k]
    total = y.sum()
    if total == 0:
        return float("nan"), float("nan")
    hits = y[top].sum()
    return float((hits / k) / (total / y.size)), float(hits / total)


def log_loss(y: np.ndarray, prob: np.ndarray) -> float:
    """Mean binary cross-entropy with probabilities clipped to [1e-15, 1 - 1e-15]."""
    y, p = _check(y, prob)
    p = np.clip(p, EPS, 1 - EPS)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log1p(-p)))


def ranking_metrics(y: np.ndarray, score: np.ndarray) -> dict[str, float]:
    """ROC AUC, PR AUC (average precision), top-decile lift and capture of any score.

    Parameters
    ----------
    y : array of {0, 1}
        Observed outcomes.
    score : array of float
        Higher means more likely to churn.

    Returns
    -------
    dict
        Keys ``roc_auc``, ``pr_auc``, ``top_decile_lift``, ``top_decile_capture``.
    """
    y, s = _check(y, score)
    if np.unique(y).size < 2:
        raise ValueError("ranking metrics need both classes in y")
    lift, capture = top_fraction_lift(y, s, 0.1)
    return {
        "roc_auc": float(roc_auc_score(y, s)),
        "pr_auc": float(average_precision_score(y, s)),
        "top_decile_lift": lift,
        "top_decile_capture": capture,
    }


def probability_metrics(y: np.ndarray, prob: np.ndarray, n_bins: int = 10) -> dict[str, float]:
    """Brier score, log loss and ECE of probabilities.

    Parameters
    ----------
    y : array of {0, 1}
        Observed outcomes.
    prob : array of float
        Predicted probabilities in [0, 1].
    n_bins : int
        Bins for the ECE.

    Returns
    -------
    dict
        Keys ``brier``, ``log_loss``, ``ece``.
    """
    y, p = _check(y, prob)
    return {
        "brier": float(np.mean((p - y) ** 2)),
        "log_loss": log_loss(y, p),
        "ece": expected_calibration_error(y, p, n_bins),
    }


def classification_metrics(y: np.ndarray, prob: np.ndarray, n_bins: int = 10) -> dict[str, float]:
    """All churn metrics of a probability: ranking plus probability metrics.

    Parameters
    ----------
    y : array of {0, 1}
        Observed outcomes.
    prob : array of float
        Predicted churn probabilities in [0, 1].
    n_bins : int
        Bins for the ECE.

    Returns
    -------
    dict
        ``roc_auc``, ``pr_auc``, ``top_decile_lift``, ``top_decile_capture``, ``brier``,
        ``log_loss``, ``ece``.
    """
    return {**ranking_metrics(y, prob), **probability_metrics(y, prob, n_bins)}


def auc_standard_error(auc: float, n_pos: int, n_neg: int) -> float:
    """Hanley-McNeil (1982) standard error of a ROC AUC estimate.

    Parameters
    ----------
    auc : float
        The AUC.
    n_pos, n_neg : int
        Number of positive and negative cases.

    Returns
    -------
    float
        The approximate standard error.
    """
    q1 = auc / (2 - auc)
    q2 = 2 * auc**2 / (1 + auc)
    var = (auc * (1 - auc) + (n_pos - 1) * (q1 - auc**2) + (n_neg - 1) * (q2 - auc**2)) / (
        n_pos * n_neg
    )
    return float(np.sqrt(var))


def _structural_components(
    y: np.ndarray, score: np.ndarray
) -> tuple[float, np.ndarray, np.ndarray]:
    """AUC and DeLong's placement values of one score, by midranks (Sun & Xu 2014).

    Returns the AUC, ``v10`` (one per positive: the share of negatives it outranks, ties
    counting one half) and ``v01`` (one per negative: the share of positives that outrank it).
    """
    pos, neg = score[y == 1], score[y == 0]
    m, n = pos.size, neg.size
    rank_all = rankdata(np.concatenate([pos, neg]))  # midranks: ties share their mean rank
    rank_pos, rank_neg = rankdata(pos), rankdata(neg)
    v10 = (rank_all[:m] - rank_pos) / n
    v01 = 1.0 - (rank_all[m:] - rank_neg) / m
    auc = (rank_all[:m].sum() - m * (m + 1) / 2) / (m * n)
    return float(auc), v10, v01


def delong_auc_difference(
    y: np.ndarray, score_a: np.ndarray, score_b: np.ndarray, confidence: float = 0.95
) -> tuple[float, float, float, float]:
    """Paired DeLong test of two correlated ROC AUCs on the same rows: AUC(a) - AUC(b).

    DeLong, DeLong & Clarke-Pearson (1988), computed with Sun & Xu's (2014) fast algorithm:
    midranks give every row's placement value in O(n log n); the variance of the difference
    is that of the paired placement differences over the positives plus over the negatives.
    The interval is the normal one, ``diff +/- z * se``; bounds are not clipped to [-1, 1].

    Parameters
    ----------
    y : array of {0, 1}
        Observed outcomes; at least two positives and two negatives.
    score_a, score_b : array of float
        Two scores of the same rows (higher means more likely positive).
    confidence : float
        Two-sided confidence level of the interval, in (0, 1).

    Returns
    -------
    diff : float
        ``AUC(score_a) - AUC(score_b)``.
    se : float
        DeLong standard error of the difference (0 when the two scores rank alike).
    ci_low, ci_high : float
        The interval at ``confidence``.

    Raises
    ------
    ValueError
        On scores of another length than ``y``, non-finite scores, a ``y`` outside {0, 1},
        fewer than two rows of either class, or a confidence outside (0, 1).
    """
    y, a = _check(y, score_a)
    _, b = _check(y, score_b)
    if not 0 < confidence < 1:
        raise ValueError("confidence must be in (0, 1)")
    m = int(y.sum())
    n = y.size - m
    if m < 2 or n < 2:
        raise ValueError("the DeLong test needs at least two rows of each class")
    auc_a, v10_a, v01_a = _structural_components(y, a)
    auc_b, v10_b, v01_b = _structural_components(y, b)
    diff = auc_a - auc_b
    var = np.var(v10_a - v10_b, ddof=1) / m + np.var(v01_a - v01_b, ddof=1) / n
    se = float(np.sqrt(max(var, 0.0)))
    z = float(norm.ppf(0.5 + confidence / 2))
    return float(diff), se, float(diff - z * se), float(diff + z * se)


def baseline_auc_differences(
    y: np.ndarray,
    score: np.ndarray,
    baselines: Mapping[str, np.ndarray],
    confidence: float = 0.95,
) -> dict[str, float]:
    """The model's test AUC minus each baseline's, with DeLong standard error and interval.

    Parameters
    ----------
    y : array of {0, 1}
        Observed outcomes of the test rows.
    score : array of float
        The model's score of the same rows (the one ``test_roc_auc`` is computed from).
    baselines : mapping
        Baseline name to score, aligned with ``y`` (see :func:`btyd_baselines`).
    confidence : float
        Level of the interval (the promotion gate reads it as 95%).

    Returns
    -------
    dict
        For each baseline the four keys of :func:`retain.names.auc_difference_metric`:
        ``auc_diff_vs_<name>``, ``..._se``, ``..._ci_low``, ``..._ci_high``.
    """
    out: dict[str, float] = {}
    for name, base in baselines.items():
        values = delong_auc_difference(y, score, base, confidence)
        for part, value in zip(("", "se", "ci_low", "ci_high"), values, strict=True):
            out[auc_difference_metric(name, part)] = value
    return out


def baseline_metrics(y: np.ndarray, baselines: Mapping[str, np.ndarray]) -> dict[str, float]:
    """Metrics of each baseline score, named ``baseline_<name>_<metric>``.

    Probability metrics (Brier, log loss, ECE) are added for baselines whose name ends with
    ``_p_no_purchase`` (true probabilities); the others are rankings only.

    Parameters
    ----------
    y : array of {0, 1}
        Observed outcomes.
    baselines : mapping of str to array
        Baseline name to score (higher = more likely to churn).

    Returns
    -------
    dict
        Flat metric dict; :func:`best_baseline` picks the best one by ROC AUC.
    """
    out: dict[str, float] = {}
    for name, score in baselines.items():
        metrics = ranking_metrics(y, score)
        s = np.asarray(score, dtype=float)
        if name.endswith(PROBABILITY_BASELINE_SUFFIX):
            metrics.update(probability_metrics(y, s))
        out.update({f"baseline_{name}_{k}": v for k, v in metrics.items()})
    return out


def best_baseline(metrics: Mapping[str, float]) -> tuple[str, float]:
    """The baseline with the highest ROC AUC in a dict from :func:`baseline_metrics`.

    Parameters
    ----------
    metrics : mapping
        Metric names to values.

    Returns
    -------
    name : str
        The baseline name (without the ``baseline_`` prefix).
    auc : float
        Its ROC AUC.
    """
    aucs = {
        k[len("baseline_") : -len("_roc_auc")]: v
        for k, v in metrics.items()
        if k.startswith("baseline_") and k.endswith("_roc_auc")
    }
    if not aucs:
        raise ValueError("no baseline_<name>_roc_auc metrics given")
    name = max(aucs, key=lambda k: (aucs[k], k))
    return name, float(aucs[name])


def btyd_baselines(
    test: pd.DataFrame,
    horizon_days: int,
    purchase_models: tuple[str, ...] = ("bgnbd", "pareto_nbd", "mbgnbd"),
) -> dict[str, np.ndarray]:
    """Baseline churn scores on the test cutoff's customers.

    For every BTYD purchase model, fitted on the test cutoff's RFM summary only: the
    probability of no purchase in the horizon (``<model>_p_no_purchase``) and the negative
    expected number of purchases (``<model>_neg_expected_purchases``). Plus the days since the
    last purchase (``days_since_last_purchase``). A model that fails to fit is left out.

    Parameters
    ----------
    test : DataFrame
        The test snapshot (one cutoff) with RFM columns in days.
    horizon_days : int
        Churn horizon H.
    purchase_models : tuple of str
        BTYD models to fit.

    Returns
    -------
    dict
        Baseline name to score (higher = more likely to churn), aligned with ``test`` rows.
    """
    if test["cutoff"].nunique() != 1:
        raise ValueError("baselines are computed on one cutoff")
    out: dict[str, np.ndarray] = {}
    for name in purchase_models:
        try:
            clv = clv_features(test, horizon_days, name)
        except ClvFitError:
            continue
        out[f"{name}_p_no_purchase"] = clv["p_no_purchase_horizon"].to_numpy(dtype=float)
        out[f"{name}_neg_expected_purchases"] = -clv["expected_purchases_horizon"].to_numpy(
            dtype=float
        )
    if "days_since_last_purchase" in test:
        days = test["days_since_last_purchase"].to_numpy(dtype=float)
    else:
        days = (test["tenure_days"] - test["recency_days"]).to_numpy(dtype=float)
    out["days_since_last_purchase"] = days
    return out


PROBABILITY_BASELINE_SUFFIX = "_p_no_purchase"


def evaluate_scores(
    y: np.ndarray,
    raw_scores: np.ndarray,
    probabilities: np.ndarray,
    baselines: Mapping[str, np.ndarray] | None = None,
    prefix: str = "test",
) -> dict[str, float]:
    """All metrics of a churn model on one cutoff, with its baselines.

    Parameters
    ----------
    y : array of {0, 1}
        Observed outcomes.
    raw_scores : array of float
        The booster's raw log-odds margins (uncalibrated).
    probabilities : array of float
        Calibrated churn probabilities.
    baselines : mapping, optional
        Baseline scores (see :func:`btyd_baselines`).
    prefix : str
        Metric name prefix.

    Returns
    -------
    dict
        ``<prefix>_roc_auc``, ``_pr_auc``, ``_brier``, ``_log_loss``, ``_ece``,
        ``_top_decile_lift``, ``_top_decile_capture`` of the calibrated probabilities;
        ``<prefix>_raw_roc_auc``, ``_raw_brier``, ``_raw_log_loss``, ``_raw_ece`` of the
        uncalibrated probabilities (calibration before/after); ``<prefix>_rows``,
        ``<prefix>_churn_rate``, ``<prefix>_roc_auc_se`` (Hanley-McNeil); and
        ``baseline_<name>_<metric>`` for each baseline.
    """
    y = np.asarray(y).astype(int)
    out = {f"{prefix}_{k}": v for k, v in classification_metrics(y, probabilities).items()}
    raw_p = expit(np.asarray(raw_scores, dtype=float))
    out[f"{prefix}_raw_roc_auc"] = ranking_metrics(y, raw_scores)["roc_auc"]
    out.update({f"{prefix}_raw_{k}": v for k, v in probability_metrics(y, raw_p).items()})
    n_pos = int(y.sum())
    out[f"{prefix}_rows"] = float(y.size)
    out[f"{prefix}_churn_rate"] = n_pos / y.size
    out[f"{prefix}_roc_auc_se"] = auc_standard_error(
        out[f"{prefix}_roc_auc"], n_pos, y.size - n_pos
    )
    if baselines:
        out.update(baseline_metrics(y, baselines))
    return out
