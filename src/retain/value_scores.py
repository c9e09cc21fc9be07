"""The value model at scoring time: ML CLV and its reasons, one customer at a time.

:func:`value_scores` is what :func:`retain.scoring.part_scores` adds when a value model is
applied (``clv.method`` ``ml`` or ``auto``): a pure per-customer function of a part's features
and the broadcast purchase model, so the scores do not depend on the partition count.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from retain.churn.dataset import feature_matrix
from retain.clv.cutoff_features import CLV_FEATURES, feature_columns
from retain.explain import shap_contributions as _shap
from retain.explain.reasons import (
    VALUE_LOWERS,
    VALUE_RAISES,
    VALUE_REASON_COLUMNS,
    ReasonCandidates,
    render_reasons,
)

if TYPE_CHECKING:
    from retain.scoring import ScoringModels


def value_scores(
    feats: pd.DataFrame,
    feature_model: Any,
    models: ScoringModels,
    chunk_size: int = 250_000,
    n_threads: int | None = None,
) -> pd.DataFrame:
    """Both CLVs of a part's buyers and the value model's reasons (a per-customer function).

    The value model reads the churn model's kind of inputs with its own horizon for the
    purchase-model features (the population's purchase model of
    :func:`retain.scoring.population_stats`, fitted with the same BTYD model). The reasons are
    its exact SHAP contributions in the log of the predicted value (:mod:`retain.clv.ml`),
    largest first.

    Parameters
    ----------
    feats : DataFrame
        The part's features with RFM scores, indexed by ``customer_id``.
    feature_model : retain.clv.ClvModel or None
        The population's purchase model behind the purchase-model features
        (:attr:`retain.scoring.PopulationStats.feature_model`).
    models : ScoringModels
        With a value model.
    chunk_size : int
        Rows explained at a time.
    n_threads : int, optional
        Threads of the booster and SHAP engine.

    Returns
    -------
    DataFrame
        Indexed like ``feats``: ``clv_ml`` and
        :data:`retain.explain.reasons.VALUE_REASON_COLUMNS`.

    Raises
    ------
    ValueError
        When the value model and the CLV model predict other horizons, its purchase-model
        features come from another BTYD model than the churn model's, or its inputs are not
        built (other feature windows): models that :func:`retain.tracking.load_scoring_models`
        refuses before any scoring, so here a bug.
    """
    value = models.value
    if int(value.horizon_months) != int(models.clv.horizon):
        raise ValueError(
            f"the value model predicts {value.horizon_months} months, the CLV model "
            f"{models.clv.horizon}: retrain the value model (retain train-value) with the same "
            "clv.horizon_months"
        )
    inputs = feats
    if any(c in value.feature_names for c in CLV_FEATURES):
        if value.clv_feature_model != models.purchase_model or feature_model is None:
            raise ValueError(
                f"the value model's purchase-model features come from {value.clv_feature_model}, "
                f"the churn model's from {models.purchase_model}: retrain one with the other's "
                "churn.clv_feature_model"
            )
        extra = feature_columns(feature_model, feats, value.horizon_days)
        inputs = pd.concat(
            [feats.drop(columns=list(extra.columns), errors="ignore"), extra], axis=1
        )
    missing = [c for c in value.feature_names if c not in inputs.columns]
    if missing:
        raise ValueError(
            f"the value model's inputs lack {missing}; retrain it (retain train-value)"
        )
    n = len(inputs)
    tables = models.value_tables()
    predicted, reasons = [], []
    for start in range(0, n, chunk_size):
        rows = inputs.iloc[start : start + chunk_size]
        X = feature_matrix(rows, value.feature_names)
        predicted.append(value.predict_matrix(X, n_threads))
        contrib = None
        for booster, table in zip(value.contribution_boosters(), tables, strict=True):
            part = _shap(
                booster,
                X,
                method="tables" if table is not None else "lightgbm",
                tables=table,
                n_threads=n_threads,
            )
            contrib = part if contrib is None else contrib + part
        index, val, _ = ReasonCandidates.from_contributions(
            contrib, len(VALUE_REASON_COLUMNS)
        ).choose()
        reasons.append(
            render_reasons(
                index,
                val,
                rows,
                value.feature_names,
                directions=(VALUE_RAISES, VALUE_LOWERS),
                prefix="value_reason_",
            )
        )
    out = pd.DataFrame(index=inputs.index)
    out["clv_ml"] = np.concatenate(predicted) if predicted else np.empty(0)
    for col in VALUE_REASON_COLUMNS:
        out[col] = (
            pd.concat(reasons)[col].astype("string") if reasons else pd.array([], dtype="string")
        )
    return out
