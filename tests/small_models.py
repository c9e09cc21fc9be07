"""A small churn model, a BG/NBD CLV model and a value model for scoring tests (not a test
module)."""

from __future__ import annotations

from collections.abc import Sequence

import lightgbm as lgb
import pandas as pd

from retain.churn import ChurnModel
from retain.churn.calibration import fit_calibration
from retain.churn.dataset import feature_matrix, select_feature_columns
from retain.clv import ClvModel
from retain.clv.ml import ValueModel
from retain.clv.value_fit import configured_value_split, fit_value_model, prepare_value_dataset
from retain.config import ClvConfig
from retain.features.build import build_features
from retain.features.labels import churn_labels
from retain.scoring import ScoringModels, model_features


def small_scoring_models(
    tx: pd.DataFrame,
    events: pd.DataFrame | None,
    train_cut: str | pd.Timestamp,
    label_end: str | pd.Timestamp,
    *,
    extra_features: Sequence[str] = (),
    rounds: int = 30,
    versions: tuple[str, str] = ("1", "2"),
) -> ScoringModels:
    """Churn model (8 leaves, depth 3, sigmoid calibration, 90-day horizon) trained at
    ``train_cut`` on the features of that day plus ``extra_features`` (purchase-model
    columns), and a BG/NBD CLV model fitted on the same day's RFM summary in weeks."""
    cut = pd.Timestamp(train_cut)
    feats = build_features(tx, cut, events)
    names, _ = select_feature_columns(feats.reset_index())
    names = [c for c in names if c != "customer_id"] + list(extra_features)
    churn = ChurnModel(None, names, {}, horizon_days=90)
    models = ScoringModels(clv=None, churn=churn)
    inputs = model_features(feats, models)
    y = churn_labels(tx, cut, 90, pd.Timestamp(label_end)).reindex(inputs.index).astype(int)
    X = feature_matrix(inputs, names)
    params = {"objective": "binary", "verbose": -1, "num_leaves": 8, "max_depth": 3, "seed": 0}
    churn.booster = lgb.train(params, lgb.Dataset(X, y.to_numpy()), rounds)
    raw = churn.booster.predict(X, raw_score=True)
    churn.calibrator = fit_calibration(raw, y.to_numpy(), "sigmoid")
    summary = pd.DataFrame(
        {
            "frequency": feats["frequency"],
            "recency_weeks": feats["recency_days"] / 7,
            "tenure_weeks": feats["tenure_days"] / 7,
            "monetary_value": feats["monetary_value"],
        }
    )
    models.clv = ClvModel(purchase_model="bgnbd", time_unit="W").fit(summary)
    models.clv_version, models.churn_version = versions
    return models


def small_value_model(
    tx: pd.DataFrame,
    events: pd.DataFrame | None,
    first_day: str,
    last_day: str,
    *,
    rounds: int = 30,
    early_stopping_rounds: int = 10,
) -> ValueModel:
    """Tweedie value model with a 4-month horizon on the automatic value split of the data
    from ``first_day`` to ``last_day`` (BG/NBD purchase-model features, no leakage check,
    one thread, seed 3)."""
    clv = ClvConfig.model_validate(
        {
            "calibration_end": "2023-06-30",
            "holdout_end": last_day,
            "purchase_model": "bgnbd",
            "horizon_months": 4,
            "ml": {
                "objective": "tweedie",
                "num_boost_round": rounds,
                "early_stopping_rounds": early_stopping_rounds,
                "leakage_check_customers": 0,
                "lightgbm": {"min_data_in_leaf": 20, "num_threads": 1},
            },
        }
    )
    split = configured_value_split(clv, first_day, last_day)
    dataset = prepare_value_dataset(tx, clv, split, events)
    return fit_value_model(dataset, clv, seed=3).model
