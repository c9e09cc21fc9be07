"""Purchase-model features at a cutoff: a BTYD model fitted on that cutoff's RFM only.

The churn model uses the outputs of a BTYD purchase model as features (``p_alive``, the repeat
purchases expected within the churn horizon, and the probability of none); the same functions
give the BTYD churn baselines. The model is fitted at each cutoff on that cutoff's customers, so
nothing after the cutoff is used.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from retain.clv.model import ClvFitError, ClvModel
from retain.timeline import UNIT_DAYS

CLV_FEATURES = ("p_alive", "expected_purchases_horizon", "p_no_purchase_horizon")
"""Purchase-model outputs added to the features at every cutoff."""


def weekly_summary(features: pd.DataFrame) -> pd.DataFrame:
    """The RFM summary in weeks from feature columns in days (``rfm_summary(..., "W")``).

    Parameters
    ----------
    features : DataFrame
        With ``frequency``, ``recency_days``, ``tenure_days`` and ``monetary_value``.

    Returns
    -------
    DataFrame
        ``frequency``, ``recency_weeks``, ``tenure_weeks``, ``monetary_value``; same index.
    """
    return pd.DataFrame(
        {
            "frequency": features["frequency"].to_numpy(dtype=float),
            "recency_weeks": features["recency_days"].to_numpy(dtype=float) / UNIT_DAYS["W"],
            "tenure_weeks": features["tenure_days"].to_numpy(dtype=float) / UNIT_DAYS["W"],
            "monetary_value": features["monetary_value"].to_numpy(dtype=float),
        },
        index=features.index,
    )


def probability_no_purchase(model: ClvModel, summary: pd.DataFrame, t: float) -> np.ndarray:
    """P(no purchase in the next ``t`` time units | history) under a fitted purchase model.

    The churn features' form of :meth:`retain.clv.ClvModel.probability_no_purchase` (one
    implementation, in the purchase models).

    Parameters
    ----------
    model : retain.clv.ClvModel
        A fitted model.
    summary : DataFrame
        RFM summary in the model's time unit.
    t : float
        Window length in the model's time unit.

    Returns
    -------
    ndarray of float
        Probabilities in [0, 1], one per row of ``summary``.
    """
    return model.probability_no_purchase(t, summary).to_numpy(dtype=float)


PENALIZER_LADDER = (0.0, 1e-3, 1e-2)
"""Penalizers tried in turn when a purchase model's plain MLE is degenerate (e.g. early
cutoffs with few repeat purchases drive BG/NBD's ``a`` and ``b`` to zero)."""


def fit_purchase_model(
    summary: pd.DataFrame, purchase_model: str = "bgnbd", weights: np.ndarray | None = None
) -> ClvModel:
    """Fit a BTYD purchase model on a weekly RFM summary, penalising only if needed.

    Parameters
    ----------
    summary : DataFrame
        ``frequency``, ``recency_weeks``, ``tenure_weeks``.
    purchase_model : {"bgnbd", "pareto_nbd", "mbgnbd"}
        The model.
    weights : ndarray, optional
        Customers per row (see :meth:`retain.clv.ClvModel.fit`).

    Returns
    -------
    retain.clv.ClvModel
        Fitted (no spend model) with the first penalizer of :data:`PENALIZER_LADDER` that
        gives a non-degenerate estimate.

    Raises
    ------
    retain.clv.ClvFitError
        When every penalizer fails.
    """
    error: ClvFitError | None = None
    for penalizer in PENALIZER_LADDER:
        model = ClvModel(
            purchase_model=purchase_model, spend_model=None, time_unit="W", penalizer=penalizer
        )
        try:
            return model.fit(summary, weights)
        except ClvFitError as exc:
            error = exc
    assert error is not None
    raise error


def clv_features(
    features: pd.DataFrame, horizon_days: int, purchase_model: str = "bgnbd"
) -> pd.DataFrame:
    """Purchase-model outputs at one cutoff, from a model fitted on that cutoff's RFM only.

    Parameters
    ----------
    features : DataFrame
        One cutoff's features (RFM columns in days), indexed by ``customer_id``.
    horizon_days : int
        Churn horizon H.
    purchase_model : {"bgnbd", "pareto_nbd", "mbgnbd"}
        The BTYD purchase model.

    Returns
    -------
    DataFrame
        Same index; ``p_alive``, ``expected_purchases_horizon`` (repeat purchases expected in
        the next H days) and ``p_no_purchase_horizon`` (see :func:`probability_no_purchase`).
    """
    return feature_columns(
        fit_feature_model(rfm_triples(features), purchase_model), features, horizon_days
    )


RFM_TRIPLE = ("frequency", "recency_days", "tenure_days")
"""The columns whose distinct combinations, counted, are all a purchase model's fit needs."""


def rfm_triples(features: pd.DataFrame) -> pd.DataFrame:
    """Distinct (frequency, recency, tenure) rows of (a part of) a population, counted.

    Parameters
    ----------
    features : DataFrame
        With the :data:`RFM_TRIPLE` columns (days).

    Returns
    -------
    DataFrame
        The :data:`RFM_TRIPLE` columns (float) and ``n`` (int64), one row per distinct
        triple. Concatenate the parts of a population and fit with
        :func:`fit_feature_model`: the fit is the same as on the whole population.
    """
    frame = pd.DataFrame({c: features[c].to_numpy(dtype=float) for c in RFM_TRIPLE})
    counted = frame.value_counts(sort=False).reset_index(name="n")
    counted["n"] = counted["n"].astype(np.int64)
    return counted


def fit_feature_model(triples: pd.DataFrame, purchase_model: str = "bgnbd") -> ClvModel:
    """The purchase model behind the churn features, fitted on counted RFM triples.

    Parameters
    ----------
    triples : DataFrame
        :func:`rfm_triples` of the population, or of its parts concatenated.
    purchase_model : {"bgnbd", "pareto_nbd", "mbgnbd"}
        The BTYD purchase model.

    Returns
    -------
    retain.clv.ClvModel
        See :func:`fit_purchase_model`.
    """
    summary = weekly_summary(triples.assign(monetary_value=np.nan))
    return fit_purchase_model(summary, purchase_model, triples["n"].to_numpy(dtype=float))


def feature_columns(model: ClvModel, features: pd.DataFrame, horizon_days: int) -> pd.DataFrame:
    """The purchase-model features of each customer under a fitted model.

    Parameters
    ----------
    model : retain.clv.ClvModel
        :func:`fit_feature_model` output.
    features : DataFrame
        RFM columns in days, indexed by ``customer_id``.
    horizon_days : int
        Churn horizon H.

    Returns
    -------
    DataFrame
        See :func:`clv_features`.
    """
    summary = weekly_summary(features)
    t = horizon_days / UNIT_DAYS["W"]
    return pd.DataFrame(
        {
            "p_alive": model.predict(summary, horizon=1)["p_alive"].to_numpy(dtype=float),
            "expected_purchases_horizon": model.expected_purchases(summary, t).to_numpy(),
            "p_no_purchase_horizon": probability_no_purchase(model, summary, t),
        },
        index=features.index,
    )
