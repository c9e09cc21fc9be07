"""Churn model: time-split snapshots, LightGBM, calibration, evaluation against BTYD baselines.

- :mod:`retain.churn.dataset`: :func:`make_time_split` (raises :class:`LeakageError` when a
  training label window overlaps the test window), point-in-time features per cutoff with the
  CLV outputs, the leakage guard :func:`check_point_in_time`, :func:`build_churn_dataset`;
- :mod:`retain.churn.train`: :func:`train_churn_model` (deterministic LightGBM with early
  stopping and class weights, calibrated on the validation cutoff), :class:`ChurnModel`,
  :func:`train_and_evaluate` (the whole pure pipeline);
- :mod:`retain.churn.calibration`: calibrators as plain data, :func:`apply_calibration`;
- :mod:`retain.churn.evaluate`: metrics (AUC, PR AUC, Brier, log loss, ECE, lift, capture) and
  the BTYD / recency baselines.

Scoring a trained model needs no pickle::

    X = feature_matrix(features, feature_names)          # float32, model column order
    p = apply_calibration(calibrator, booster.predict(X, raw_score=True))
"""

from retain.churn.calibration import apply_calibration, fit_calibration
from retain.churn.dataset import (
    ChurnDataset,
    ChurnFeatures,
    LeakageError,
    TimeSplit,
    build_churn_dataset,
    check_point_in_time,
    feature_matrix,
    make_time_split,
)
from retain.churn.evaluate import (
    btyd_baselines,
    classification_metrics,
    evaluate_scores,
    expected_calibration_error,
)
from retain.churn.train import (
    ChurnFit,
    ChurnModel,
    TrainResult,
    train_and_evaluate,
    train_churn_model,
)
from retain.clv.cutoff_features import CLV_FEATURES, clv_features, probability_no_purchase

__all__ = [
    "CLV_FEATURES",
    "ChurnDataset",
    "ChurnFeatures",
    "ChurnFit",
    "ChurnModel",
    "LeakageError",
    "TimeSplit",
    "TrainResult",
    "apply_calibration",
    "btyd_baselines",
    "build_churn_dataset",
    "check_point_in_time",
    "classification_metrics",
    "clv_features",
    "evaluate_scores",
    "expected_calibration_error",
    "feature_matrix",
    "fit_calibration",
    "make_time_split",
    "probability_no_purchase",
    "train_and_evaluate",
    "train_churn_model",
]
