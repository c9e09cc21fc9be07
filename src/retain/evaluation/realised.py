"""How the churn probabilities of a scoring date did, once their horizon has passed.

The churn model predicts whether a customer who had bought by the scoring date makes no
purchase in the next H days *without an action*. Contacting customers changes that outcome,
so the scores are judged on the customers who were **not contacted** (the control groups and
the customers without a contact action); the same measures on every customer are given beside
them. Measures (:mod:`retain.churn.evaluate`): ROC AUC, Brier score, realised and mean
predicted churn rate, and a calibration table by deciles of the predicted probability.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from retain.churn.evaluate import probability_metrics, ranking_metrics
from retain.contracts import CUSTOMER_ID
from retain.evaluation.actions import GROUP_COLUMN, TREATMENT
from retain.features.labels import LABEL

__all__ = ["POPULATIONS", "decile_calibration", "realised_performance"]

NOT_CONTACTED = "not_contacted"
EVERYONE = "all"
POPULATIONS = (NOT_CONTACTED, EVERYONE)
"""The populations the scores are judged on, the first one being the fair one."""


def decile_calibration(y: np.ndarray, prob: np.ndarray, n_bins: int = 10) -> pd.DataFrame:
    """Mean predicted probability and realised rate per quantile bin of the prediction.

    Parameters
    ----------
    y : array of {0, 1}
        Realised churn.
    prob : array of float
        Predicted churn probability.
    n_bins : int
        Bins of (nearly) equal counts, customers sorted by prediction (ties in input order).

    Returns
    -------
    DataFrame
        ``decile`` (1 = lowest predictions), ``n``, ``mean_predicted``, ``realised_rate``.
    """
    y = np.asarray(y, dtype=float)
    p = np.asarray(prob, dtype=float)
    order = np.argsort(p, kind="stable")
    parts = np.array_split(order, min(n_bins, len(order)))
    rows = [
        {
            "decile": i + 1,
            "n": len(idx),
            "mean_predicted": float(p[idx].mean()),
            "realised_rate": float(y[idx].mean()),
        }
        for i, idx in enumerate(parts)
        if len(idx)
    ]
    return pd.DataFrame(rows, columns=["decile", "n", "mean_predicted", "realised_rate"])


def realised_performance(
    scores: pd.DataFrame, outcomes: pd.DataFrame, n_bins: int = 10
) -> tuple[dict[str, float], pd.DataFrame]:
    """The realised performance of a date's churn probabilities.

    Parameters
    ----------
    scores : DataFrame
        ``customer_id``, ``churn_probability`` and ``treatment_group``.
    outcomes : DataFrame
        :func:`retain.outcomes.horizon_outcomes` (``churned`` per customer, missing for those
        without a purchase by the scoring date).
    n_bins : int
        Calibration bins.

    Returns
    -------
    metrics : dict
        Per population (``not_contacted``, ``all``): ``<population>_n``, ``_churn_rate``
        (realised), ``_predicted_churn_rate`` (mean prediction), ``_roc_auc`` (missing when
        only one outcome occurred), ``_brier``.
    calibration : DataFrame
        :func:`decile_calibration` per population (column ``population``).
    """
    ids = scores[CUSTOMER_ID].astype("string").to_numpy()
    label = outcomes[LABEL].reindex(ids).to_numpy(dtype=float, na_value=np.nan)
    prob = pd.to_numeric(scores["churn_probability"], errors="coerce").to_numpy(dtype=float)
    treated = scores[GROUP_COLUMN].astype("string").fillna("").to_numpy() == TREATMENT
    known = np.isfinite(label) & np.isfinite(prob)
    metrics: dict[str, float] = {}
    tables = []
    for population, keep in ((NOT_CONTACTED, known & ~treated), (EVERYONE, known)):
        y, p = label[keep].astype(int), prob[keep]
        metrics[f"{population}_n"] = int(keep.sum())
        if not keep.any():
            continue
        metrics[f"{population}_churn_rate"] = float(y.mean())
        metrics[f"{population}_predicted_churn_rate"] = float(p.mean())
        metrics[f"{population}_brier"] = probability_metrics(y, p)["brier"]
        if np.unique(y).size == 2:
            metrics[f"{population}_roc_auc"] = ranking_metrics(y, p)["roc_auc"]
        tables.append(decile_calibration(y, p, n_bins).assign(population=population))
    columns = ["population", "decile", "n", "mean_predicted", "realised_rate"]
    calibration = (
        pd.concat(tables, ignore_index=True)[columns] if tables else pd.DataFrame(columns=columns)
    )
    return metrics, calibration
