"""LightGBM churn model: deterministic training, early stopping, class weights, calibration.

Class imbalance is handled explicitly with ``scale_pos_weight = n_negative / n_positive`` of the
training rows (``imbalance="balanced"``), so both classes carry the same total weight in the
gradient. The weighting shifts the booster's probability scale; the calibrator fitted on the
validation cutoff (:mod:`retain.churn.calibration`) maps the raw score back to a probability,
which is what the metrics and scoring use. ``imbalance="none"`` trains unweighted.

Determinism: ``seed`` (which also seeds bagging, feature fraction and data sampling),
``deterministic=True``, ``force_col_wise=True`` and a fixed ``num_threads`` make two runs on the
same data and config produce the same trees, hence identical predictions.

Early stopping watches the ROC AUC on the validation cutoff (unweighted, so the class weights
do not change the stopping point). The stored booster keeps exactly the best iteration's trees.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import lightgbm as lgb
import numpy as np
import pandas as pd
from scipy.special import expit

from retain.churn.calibration import CalibrationMethod, apply_calibration, fit_calibration
from retain.churn.dataset import (
    LABEL,
    ChurnDataset,
    ChurnFeatures,
    build_churn_dataset,
    feature_matrix,
    make_time_split,
)
from retain.churn.evaluate import (
    btyd_baselines,
    evaluate_scores,
    probability_metrics,
    ranking_metrics,
)
from retain.churn.sampling import cap_training_rows
from retain.config import FeatureConfig
from retain.drift import ReferenceProfile, fit_profile

Imbalance = Literal["balanced", "none"]

TREE_PARAMS: dict[str, Any] = {
    "learning_rate": 0.05,
    "num_leaves": 15,
    "max_depth": 4,
    "min_data_in_leaf": 100,
    "feature_fraction": 0.9,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "lambda_l2": 1.0,
    "num_threads": 2,
    "verbosity": -1,
}
"""The shallow-tree LightGBM defaults of every retain booster (churn and value models)."""

DEFAULT_PARAMS: dict[str, Any] = {"objective": "binary", "metric": "auc", **TREE_PARAMS}
"""LightGBM defaults; ``churn.lightgbm`` in the config overrides any of them.

Shallow trees (15 leaves, depth 4) keep exact SHAP explanations of every customer cheap (about
4-5x less work per tree than 31 leaves, see bench/README.md) and cost no test AUC on the
synthetic benchmark data."""

FIXED_PARAMS: dict[str, Any] = {"deterministic": True, "force_col_wise": True}
"""Settings that keep training reproducible; they cannot be overridden."""

_IMBALANCE_KEYS = ("is_unbalance", "scale_pos_weight")


def lightgbm_params(
    overrides: Mapping[str, Any] | None, seed: int, scale_pos_weight: float | None
) -> dict[str, Any]:
    """The full LightGBM parameter dict used for training.

    Parameters
    ----------
    overrides : mapping, optional
        Config values (``churn.lightgbm``) replacing the defaults.
    seed : int
        Master seed (``seed`` parameter of LightGBM).
    scale_pos_weight : float, optional
        Class weight of the positive (churned) class, or None for unweighted.

    Returns
    -------
    dict
        Parameters for :func:`lightgbm.train`.

    Raises
    ------
    ValueError
        When the overrides set the class weighting themselves (use ``imbalance``) or change
        the objective.
    """
    overrides = dict(overrides or {})
    clash = [k for k in _IMBALANCE_KEYS if k in overrides]
    if clash:
        raise ValueError(f"set class weighting with churn.imbalance, not lightgbm {clash}")
    if overrides.get("objective", "binary") != "binary":
        raise ValueError("the churn model needs objective 'binary'")
    params = {**DEFAULT_PARAMS, **overrides, **FIXED_PARAMS, "seed": int(seed)}
    if scale_pos_weight is not None:
        params["scale_pos_weight"] = float(scale_pos_weight)
    return params


CHURN_MODEL_TYPE = "retain.churn"
CHURN_FORMAT_VERSION = 1


@dataclass
class ChurnModel:
    """A trained churn model and everything scoring needs to rebuild its inputs.

    Scoring recipe (no pickle): the features are built with ``feature_settings``, the
    purchase-model features with ``clv_feature_model`` over ``horizon_days``; then
    ``X = feature_matrix(features, model.feature_names)``, ``raw = booster.predict(X,
    raw_score=True)`` and ``p = apply_calibration(calibrator, raw)``. The one saved form is
    :meth:`to_dict` (plain JSON with the booster in LightGBM's text format); :meth:`from_dict`
    is its one loader.

    Attributes
    ----------
    booster : lightgbm.Booster
        Trees of the best iteration only.
    feature_names : list of str
        Model columns in order.
    calibrator : dict
        Plain-data calibrator for :func:`retain.churn.calibration.apply_calibration`.
    horizon_days : int
        Churn horizon H the labels used.
    params : dict
        LightGBM parameters used.
    best_iteration : int
        Number of boosting rounds kept.
    clv_feature_model : str
        BTYD model fitted at each cutoff for the ``p_alive``/expected-purchases features.
    feature_settings : dict
        The feature windows of training (``FeatureConfig`` fields as plain data).
    training : dict
        Provenance: the training config's ``config_name``, ``config_hash`` and ``dataset``.
    reference_profile : ReferenceProfile or None
        The test cutoff's population, what scoring checks drift against
        (:mod:`retain.drift`); None for a model saved before profiles existed.
    """

    booster: lgb.Booster
    feature_names: list[str]
    calibrator: dict[str, Any]
    horizon_days: int
    params: dict[str, Any] = field(default_factory=dict)
    best_iteration: int = 0
    clv_feature_model: str = "bgnbd"
    feature_settings: dict[str, Any] = field(default_factory=lambda: _default_feature_settings())
    training: dict[str, str] = field(default_factory=dict)
    reference_profile: ReferenceProfile | None = None

    def predict_raw(self, features: pd.DataFrame) -> np.ndarray:
        """Raw scores (log-odds margins) of the booster."""
        return self.booster.predict(feature_matrix(features, self.feature_names), raw_score=True)

    def predict_proba(self, features: pd.DataFrame) -> np.ndarray:
        """Calibrated churn probabilities."""
        return apply_calibration(self.calibrator, self.predict_raw(features))

    def metadata(self) -> dict[str, Any]:
        """Everything but the booster, as plain data (logged beside the model for reading)."""
        return {k: v for k, v in self.to_dict().items() if k != "booster"}

    def to_dict(self) -> dict[str, Any]:
        """The model as plain JSON data: the booster as LightGBM text, the rest as values.

        Returns
        -------
        dict
            ``model_type``, ``format_version``, ``booster``, ``feature_names``,
            ``calibrator``, ``horizon_days``, ``clv_feature_model``, ``feature_settings``,
            ``best_iteration``, ``params``, ``training`` and, when the model has one,
            ``reference_profile``.
        """
        out = {
            "model_type": CHURN_MODEL_TYPE,
            "format_version": CHURN_FORMAT_VERSION,
            "booster": self.booster.model_to_string(),
            "feature_names": list(self.feature_names),
            "calibrator": self.calibrator,
            "horizon_days": int(self.horizon_days),
            "clv_feature_model": self.clv_feature_model,
            "feature_settings": dict(self.feature_settings),
            "best_iteration": int(self.best_iteration),
            "params": {k: _plain(v) for k, v in self.params.items()},
            "training": dict(self.training),
        }
        if self.reference_profile is not None:
            out["reference_profile"] = self.reference_profile.to_dict()
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ChurnModel:
        """Rebuild a model from :meth:`to_dict` output (no pickle).

        Parameters
        ----------
        data : mapping
            The saved form.

        Returns
        -------
        ChurnModel

        Raises
        ------
        ValueError
            When the data is not a churn model of a known format version, or the booster's
            number of features differs from the feature list.
        """
        if data.get("model_type") != CHURN_MODEL_TYPE:
            raise ValueError(f"not a retain churn model (model_type {data.get('model_type')!r})")
        if data.get("format_version") != CHURN_FORMAT_VERSION:
            raise ValueError(
                f"churn model format {data.get('format_version')!r} is not "
                f"{CHURN_FORMAT_VERSION}; retrain the model with this version of retain"
            )
        booster = lgb.Booster(model_str=str(data["booster"]))
        names = [str(n) for n in data["feature_names"]]
        if booster.num_feature() != len(names):
            raise ValueError(
                f"the booster reads {booster.num_feature()} features, the list names {len(names)}"
            )
        trained_on = booster.feature_name()
        generic = all(n == f"Column_{i}" for i, n in enumerate(trained_on))
        if not generic and trained_on != names:
            raise ValueError("the feature list is not the booster's (other names or order)")
        if not data.get("feature_settings"):
            raise ValueError("the saved form lacks the feature settings the model was trained with")
        profile = data.get("reference_profile")
        reference = None if profile is None else ReferenceProfile.from_dict(profile)
        if reference is not None:  # saved with sorted keys: back into model order
            if sorted(reference.features) != sorted(names):
                raise ValueError("the reference profile's features are not the model's")
            ordered = {n: reference.features[n] for n in names}
            reference = dataclasses.replace(reference, features=ordered)
        return cls(
            booster=booster,
            feature_names=names,
            calibrator=dict(data["calibrator"]),
            horizon_days=int(data["horizon_days"]),
            params=dict(data.get("params") or {}),
            best_iteration=int(data.get("best_iteration") or 0),
            clv_feature_model=str(data["clv_feature_model"]),
            feature_settings=dict(data["feature_settings"]),
            training={str(k): str(v) for k, v in (data.get("training") or {}).items()},
            reference_profile=reference,
        )


def _default_feature_settings() -> dict[str, Any]:
    """The feature windows of :class:`retain.config.FeatureConfig` by default, as plain data."""
    return FeatureConfig().model_dump(mode="json")


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    return value


@dataclass
class TrainResult:
    """A trained model with its validation figures.

    Attributes
    ----------
    model : ChurnModel
        The calibrated model.
    metrics : dict
        ``validation_*`` metrics (raw and calibrated), ``best_iteration``,
        ``scale_pos_weight``.
    """

    model: ChurnModel
    metrics: dict[str, float]


def train_early_stopped(
    params: Mapping[str, Any],
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_valid: np.ndarray,
    y_valid: np.ndarray,
    names: list[str],
    *,
    num_boost_round: int,
    early_stopping_rounds: int,
) -> tuple[lgb.Booster, int]:
    """Train a LightGBM booster with early stopping on one validation set.

    Stops when the first metric of ``params`` has not improved on the validation rows for
    ``early_stopping_rounds`` rounds and keeps the booster up to its best iteration.

    Parameters
    ----------
    params : mapping
        Full LightGBM parameters (objective, metric, seed, ...).
    x_train, y_train : ndarray
        Training features and labels.
    x_valid, y_valid : ndarray
        Validation features and labels.
    names : list of str
        Feature names (the columns of ``x_train`` and ``x_valid``).
    num_boost_round : int
        Upper bound on boosting rounds.
    early_stopping_rounds : int
        Patience of the early stopping.

    Returns
    -------
    tuple of (Booster, int)
        The booster trimmed to its best iteration, and that iteration.
    """
    train_set = lgb.Dataset(x_train, label=y_train, feature_name=names, free_raw_data=True)
    valid_set = lgb.Dataset(x_valid, label=y_valid, reference=train_set, free_raw_data=True)
    booster = lgb.train(
        dict(params),
        train_set,
        num_boost_round=num_boost_round,
        valid_sets=[valid_set],
        valid_names=["validation"],
        callbacks=[
            lgb.early_stopping(early_stopping_rounds, first_metric_only=True, verbose=False)
        ],
    )
    best = int(booster.best_iteration or booster.current_iteration())
    return lgb.Booster(model_str=booster.model_to_string(num_iteration=best)), best


def train_churn_model(
    dataset: ChurnDataset,
    *,
    params: Mapping[str, Any] | None = None,
    num_boost_round: int = 500,
    early_stopping_rounds: int = 50,
    calibration: CalibrationMethod = "isotonic",
    imbalance: Imbalance = "balanced",
    seed: int = 0,
    feature_names: list[str] | None = None,
) -> TrainResult:
    """Train the booster on the training cutoffs, stop early and calibrate on validation.

    Parameters
    ----------
    dataset : ChurnDataset
        Snapshots of a checked time split.
    params : mapping, optional
        LightGBM overrides (``churn.lightgbm``).
    num_boost_round : int
        Upper bound on boosting rounds.
    early_stopping_rounds : int
        Stop when the validation AUC has not improved for this many rounds.
    calibration : {"isotonic", "sigmoid"}
        Calibrator fitted on the validation cutoff.
    imbalance : {"balanced", "none"}
        Class weighting (see the module notes).
    seed : int
        LightGBM seed.
    feature_names : list of str, optional
        Subset of ``dataset.feature_names`` to use (e.g. an RFM-only comparison model).

    Returns
    -------
    TrainResult
        The model and validation metrics.
    """
    names = list(feature_names or dataset.feature_names)
    y_train = dataset.train[LABEL].to_numpy(dtype=np.int8)
    y_valid = dataset.validation[LABEL].to_numpy(dtype=np.int8)
    for part, y in (("train", y_train), ("validation", y_valid)):
        if np.unique(y).size < 2:
            raise ValueError(f"the {part} snapshots contain a single class")
    n_pos = int(y_train.sum())
    spw = (len(y_train) - n_pos) / n_pos if imbalance == "balanced" else None
    full_params = lightgbm_params(params, seed, spw)
    x_train = feature_matrix(dataset.train, names)
    x_valid = feature_matrix(dataset.validation, names)
    booster, best = train_early_stopped(
        full_params,
        x_train,
        y_train,
        x_valid,
        y_valid,
        names,
        num_boost_round=num_boost_round,
        early_stopping_rounds=early_stopping_rounds,
    )
    raw_valid = booster.predict(x_valid, raw_score=True)
    calibrator = fit_calibration(raw_valid, y_valid, calibration)
    model = ChurnModel(booster, names, calibrator, dataset.split.horizon_days, full_params, best)
    p_raw = expit(raw_valid)
    p_cal = apply_calibration(calibrator, raw_valid)
    metrics: dict[str, float] = {"best_iteration": float(best)}
    if spw is not None:
        metrics["scale_pos_weight"] = float(spw)
    metrics.update({f"validation_{k}": v for k, v in ranking_metrics(y_valid, raw_valid).items()})
    metrics.update(
        {f"validation_raw_{k}": v for k, v in probability_metrics(y_valid, p_raw).items()}
    )
    metrics.update({f"validation_{k}": v for k, v in probability_metrics(y_valid, p_cal).items()})
    return TrainResult(model, metrics)


@dataclass
class ChurnFit:
    """Everything one training run produces (pure data, no tracking).

    Attributes
    ----------
    dataset : ChurnDataset
        The snapshots used.
    model : ChurnModel
        The calibrated model.
    metrics : dict
        Validation and test metrics of the model, ``baseline_<name>_*`` of the baselines and
        the data counts.
    test_scores : dict
        Test-cutoff arrays for plots: ``y``, ``raw`` (uncalibrated probability),
        ``calibrated`` and ``baseline:<name>`` scores.
    """

    dataset: ChurnDataset
    model: ChurnModel
    metrics: dict[str, float]
    test_scores: dict[str, np.ndarray]


def prepare_dataset(
    transactions: pd.DataFrame,
    churn: Any,
    observed_until: Any,
    events: pd.DataFrame | None = None,
    *,
    feature_config: Any | None = None,
    seed: int = 0,
    transactions_at: Callable[[pd.Timestamp], pd.DataFrame] | None = None,
) -> ChurnDataset:
    """Check the time split of a ``churn`` config and build its snapshots.

    Parameters
    ----------
    transactions : DataFrame
        Validated transactions covering every label window.
    churn : ChurnConfig
        The ``churn`` config section.
    observed_until : date
        Last day covered by the data.
    events : DataFrame, optional
        Validated engagement events.
    feature_config : FeatureConfig, optional
        Feature windows.
    seed : int
        Seed of the leakage-check sample and of the training-row sample (the config's
        ``seed``).
    transactions_at : callable, optional
        ``transactions_at(cutoff)``: the transactions as validated as of that cutoff. Needed
        when returns are netted into earlier purchases: a return known only after a cutoff
        must not shrink a purchase in that cutoff's features. Each snapshot's features then
        come from it; the labels from ``transactions``.

    Returns
    -------
    ChurnDataset
        Train, validation and test snapshots. Above ``churn.max_training_rows`` training rows,
        ``train`` is a seeded sample of exactly that many, stratified by cutoff and label
        (:func:`retain.churn.sampling.cap_training_rows`; the counts are in
        ``training_sample``); validation and test keep every row.

    Raises
    ------
    LeakageError
        When the split or a feature breaks the point-in-time rules.
    """
    split = make_time_split(
        churn.train_cutoffs,
        churn.validation_cutoff,
        churn.test_cutoff,
        churn.horizon_days,
        observed_until,
        strict_validation=churn.strict_validation,
    )
    feature_fn = None
    if transactions_at is not None:
        base = ChurnFeatures(split.horizon_days, feature_config, churn.clv_feature_model)
        feature_fn = AsOfFeatures(base, transactions_at)
    dataset = build_churn_dataset(
        transactions,
        split,
        events,
        feature_config=feature_config,
        purchase_model=churn.clv_feature_model,
        leakage_check_customers=churn.leakage_check_customers,
        seed=seed,
        feature_fn=feature_fn,
    )
    return cap_training_rows(dataset, churn.max_training_rows, seed)


@dataclass(frozen=True)
class AsOfFeatures:
    """A feature function that reads each cutoff's own view of the transactions.

    ``base(transactions_at(cutoff), cutoff, events)``: the transactions passed in are ignored,
    so what a cutoff sees is exactly what validation knew on that day (returns netted only
    once they happened).
    """

    base: Callable[[pd.DataFrame, pd.Timestamp, pd.DataFrame | None], pd.DataFrame]
    transactions_at: Callable[[pd.Timestamp], pd.DataFrame]

    def __call__(
        self, transactions: pd.DataFrame, cutoff: pd.Timestamp, events: pd.DataFrame | None
    ) -> pd.DataFrame:
        """Features as of ``cutoff`` from the transactions known on that day."""
        return self.base(self.transactions_at(cutoff), cutoff, events)


def fit_and_evaluate(
    dataset: ChurnDataset,
    churn: Any,
    *,
    seed: int = 0,
    params: Mapping[str, Any] | None = None,
) -> ChurnFit:
    """Train and calibrate on a dataset, then evaluate on its test cutoff with the baselines.

    Parameters
    ----------
    dataset : ChurnDataset
        From :func:`prepare_dataset`.
    churn : ChurnConfig
        The ``churn`` config section.
    seed : int
        LightGBM seed.
    params : mapping, optional
        LightGBM parameters replacing ``churn.lightgbm`` (e.g. with the best optuna trial).

    Returns
    -------
    ChurnFit
        Dataset, model, metrics and test scores. The model carries the test cutoff's
        reference profile (:func:`retain.drift.fit_profile`), what scoring checks drift
        against.
    """
    result = train_churn_model(
        dataset,
        params=churn.lightgbm if params is None else params,
        num_boost_round=churn.num_boost_round,
        early_stopping_rounds=churn.early_stopping_rounds,
        calibration=churn.calibration,
        imbalance=churn.imbalance,
        seed=seed,
    )
    model = result.model
    model.clv_feature_model = churn.clv_feature_model
    y = dataset.test[LABEL].to_numpy(dtype=int)
    raw = model.predict_raw(dataset.test)
    prob = apply_calibration(model.calibrator, raw)
    baselines = btyd_baselines(
        dataset.test, dataset.split.horizon_days, tuple(churn.baseline_models)
    )
    metrics = {**dataset.counts(), **result.metrics}
    metrics.update(evaluate_scores(y, raw, prob, baselines, prefix="test"))
    metrics["n_features"] = float(len(model.feature_names))
    model.reference_profile = fit_profile(
        dataset.test, model.feature_names, prob, dataset.split.test_cutoff
    )
    scores = {"y": y, "raw": expit(raw), "calibrated": prob}
    scores.update({f"baseline:{k}": v for k, v in baselines.items()})
    return ChurnFit(dataset, model, metrics, scores)


def train_and_evaluate(
    transactions: pd.DataFrame,
    churn: Any,
    observed_until: Any,
    events: pd.DataFrame | None = None,
    *,
    feature_config: Any | None = None,
    seed: int = 0,
    params: Mapping[str, Any] | None = None,
) -> ChurnFit:
    """Split, build snapshots, train, calibrate and evaluate on the test cutoff.

    :func:`prepare_dataset` followed by :func:`fit_and_evaluate`.

    Parameters
    ----------
    transactions : DataFrame
        Validated transactions covering every label window.
    churn : ChurnConfig
        The ``churn`` config section.
    observed_until : date
        Last day covered by the data.
    events : DataFrame, optional
        Validated engagement events.
    feature_config : FeatureConfig, optional
        Feature windows.
    seed : int
        LightGBM seed and leakage-check sample seed.
    params : mapping, optional
        LightGBM parameters replacing ``churn.lightgbm``.

    Returns
    -------
    ChurnFit
        Dataset, model, metrics and test scores.

    Raises
    ------
    LeakageError
        When the split or a feature breaks the point-in-time rules.
    """
    dataset = prepare_dataset(
        transactions, churn, observed_until, events, feature_config=feature_config, seed=seed
    )
    fit = fit_and_evaluate(dataset, churn, seed=seed, params=params)
    fit.model.feature_settings = (feature_config or FeatureConfig()).model_dump(mode="json")
    return fit
