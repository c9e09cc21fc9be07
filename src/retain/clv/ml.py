"""A machine-learned CLV: LightGBM on the churn model's snapshots, labelled with future spend.

The label of a snapshot row at cutoff ``c`` is the customer's spend in the CLV horizon after
it, discounted month by month as the BTYD ``clv`` is (:func:`retain.features.labels.
spend_labels`), so the two predict the same quantity. The features are the churn model's
(feature pipeline plus the BTYD purchase-model outputs at each cutoff, computed over the CLV
horizon).

Two losses made for many zeros and a long tail are trained and the better kept:

- ``tweedie``: one booster with the Tweedie objective (variance power 1.5, log link); its
  prediction is the expected spend.
- ``hurdle``: a classifier of P(any spend) times a regressor of E[spend | spend > 0] with the
  Gamma objective (log link, fitted on the buyers only); the prediction is their product.

The choice is made on the validation cutoff by the top-20% capture
(:func:`retain.clv.value_metrics.top_capture`: does the model's top fifth hold the value?),
and both candidates' figures are kept with the model. A zero-inflated lognormal (Wang et al.
2019) would need a custom LightGBM loss with three outputs per row; the hurdle model is the
same idea (a zero part times a positive part) with LightGBM's own objectives.

Determinism as in :mod:`retain.churn.train`: ``seed``, ``deterministic=True``,
``force_col_wise=True`` and a fixed ``num_threads``. Each booster keeps its best iteration
only (early stopping on the validation cutoff: Tweedie or Gamma deviance, ROC AUC for the
classifier).

Reasons (:meth:`ValueModel.contribution_boosters`): the exact TreeSHAP contributions of the
booster(s) in their raw (log) scale. For ``tweedie`` they add up to the log of the predicted
value; for ``hurdle`` to ``logit P(spend) + log E[spend | spend]``, which moves the same way
as the predicted value.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import lightgbm as lgb
import numpy as np
import pandas as pd

from retain.churn.dataset import ChurnDataset, feature_matrix
from retain.churn.train import (
    FIXED_PARAMS,
    TREE_PARAMS,
    _default_feature_settings,
    _plain,
    train_early_stopped,
)
from retain.clv.value_metrics import top_capture, value_metrics
from retain.contracts import DataError
from retain.features.labels import SPEND_LABEL

ValueKind = Literal["tweedie", "hurdle"]
VALUE_KINDS: tuple[ValueKind, ...] = ("tweedie", "hurdle")

VALUE_MODEL_TYPE = "retain.value"
VALUE_FORMAT_VERSION = 1

SELECTION_FRACTION = 0.2
"""Top fraction whose validation capture chooses between the candidates (vip + high)."""

DEFAULT_PARAMS: dict[str, Any] = dict(TREE_PARAMS)
"""LightGBM defaults shared by every booster; ``clv.ml.lightgbm`` overrides any of them.
Shallow trees as the churn model's: exact SHAP reasons stay cheap."""

OBJECTIVES: dict[str, dict[str, Any]] = {
    "value": {"objective": "tweedie", "tweedie_variance_power": 1.5, "metric": "tweedie"},
    "purchase": {"objective": "binary", "metric": "auc"},
    "spend": {"objective": "gamma", "metric": "gamma"},
}
"""Objective and early-stopping metric of each booster: ``value`` (tweedie), ``purchase`` and
``spend`` (the two parts of the hurdle)."""

BOOSTERS: dict[ValueKind, tuple[str, ...]] = {
    "tweedie": ("value",),
    "hurdle": ("purchase", "spend"),
}


def value_params(overrides: Mapping[str, Any] | None, seed: int, part: str) -> dict[str, Any]:
    """The full LightGBM parameters of one booster.

    Parameters
    ----------
    overrides : mapping, optional
        ``clv.ml.lightgbm``; may not set the objective or the metric (the model chooses them).
    seed : int
        LightGBM seed.
    part : {"value", "purchase", "spend"}
        Which booster (:data:`OBJECTIVES`).

    Returns
    -------
    dict

    Raises
    ------
    ValueError
        When the overrides set the objective or metric.
    """
    overrides = dict(overrides or {})
    clash = sorted({"objective", "metric"} & set(overrides))
    if clash:
        raise ValueError(f"clv.ml.lightgbm may not set {clash}: use clv.ml.objective")
    return {**DEFAULT_PARAMS, **overrides, **OBJECTIVES[part], **FIXED_PARAMS, "seed": int(seed)}


@dataclass
class ValueModel:
    """A trained value model and everything scoring needs to rebuild its inputs.

    Scoring recipe (no pickle): the churn model's features with ``feature_settings``, the
    purchase-model features of ``clv_feature_model`` over ``horizon_days``; then
    :meth:`predict`. The one saved form is :meth:`to_dict` (plain JSON with each booster in
    LightGBM's text format); :meth:`from_dict` is its one loader.

    Attributes
    ----------
    kind : {"tweedie", "hurdle"}
        Which candidate this is.
    boosters : dict
        ``value`` (tweedie) or ``purchase`` and ``spend`` (hurdle), best iterations only.
    feature_names : list of str
        Model columns in order.
    horizon_days : int
        The label window (the CLV horizon in days).
    horizon_months : int
        The CLV horizon in months (``clv.horizon_months`` of training).
    discount_rate_monthly : float
        Discount of the label (``clv.discount_rate_monthly`` of training).
    params : dict
        LightGBM parameters per booster.
    best_iterations : dict
        Boosting rounds kept per booster.
    clv_feature_model : str
        BTYD model fitted at each cutoff for the purchase-model features.
    feature_settings : dict
        Feature windows of training (``FeatureConfig`` as plain data).
    holdout : dict
        Test-cutoff figures of this model and of the BTYD CLV (``ml_top20_capture``,
        ``btyd_top20_capture``, ...): what ``clv.method: auto`` reads.
    candidates : dict
        Validation figures of every candidate trained (``tweedie_top20_capture``, ...).
    training : dict
        Provenance: ``config_name``, ``config_hash``, ``dataset``.
    """

    kind: ValueKind
    boosters: dict[str, lgb.Booster]
    feature_names: list[str]
    horizon_days: int
    horizon_months: int
    discount_rate_monthly: float = 0.0
    params: dict[str, dict[str, Any]] = field(default_factory=dict)
    best_iterations: dict[str, int] = field(default_factory=dict)
    clv_feature_model: str = "bgnbd"
    feature_settings: dict[str, Any] = field(default_factory=lambda: _default_feature_settings())
    holdout: dict[str, float] = field(default_factory=dict)
    candidates: dict[str, float] = field(default_factory=dict)
    training: dict[str, str] = field(default_factory=dict)

    def predict_matrix(self, x: np.ndarray, n_threads: int | None = None) -> np.ndarray:
        """Expected (discounted) spend in the horizon from a model matrix."""
        threads = {} if n_threads is None else {"num_threads": n_threads}
        if self.kind == "tweedie":
            return np.asarray(self.boosters["value"].predict(x, **threads), dtype=float)
        p = np.asarray(self.boosters["purchase"].predict(x, **threads), dtype=float)
        s = np.asarray(self.boosters["spend"].predict(x, **threads), dtype=float)
        return p * s

    def predict(self, features: pd.DataFrame) -> np.ndarray:
        """Expected (discounted) spend in the horizon of each row of ``features``."""
        return self.predict_matrix(feature_matrix(features, self.feature_names))

    def contribution_boosters(self) -> list[lgb.Booster]:
        """The boosters whose raw-scale SHAP contributions, summed, explain a prediction."""
        return [self.boosters[name] for name in BOOSTERS[self.kind]]

    def metadata(self) -> dict[str, Any]:
        """Everything but the boosters, as plain data."""
        return {k: v for k, v in self.to_dict().items() if k != "boosters"}

    def to_dict(self) -> dict[str, Any]:
        """The model as plain JSON data: boosters as LightGBM text, the rest as values."""
        return {
            "model_type": VALUE_MODEL_TYPE,
            "format_version": VALUE_FORMAT_VERSION,
            "kind": self.kind,
            "boosters": {k: b.model_to_string() for k, b in self.boosters.items()},
            "feature_names": list(self.feature_names),
            "horizon_days": int(self.horizon_days),
            "horizon_months": int(self.horizon_months),
            "discount_rate_monthly": float(self.discount_rate_monthly),
            "clv_feature_model": self.clv_feature_model,
            "feature_settings": dict(self.feature_settings),
            "best_iterations": {k: int(v) for k, v in self.best_iterations.items()},
            "params": {k: {n: _plain(v) for n, v in p.items()} for k, p in self.params.items()},
            "holdout": {k: float(v) for k, v in self.holdout.items()},
            "candidates": {k: float(v) for k, v in self.candidates.items()},
            "training": dict(self.training),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ValueModel:
        """Rebuild a model from :meth:`to_dict` output (no pickle).

        Raises
        ------
        ValueError
            When the data is not a value model of a known format, a booster is missing, or a
            booster's features differ from the feature list.
        """
        if data.get("model_type") != VALUE_MODEL_TYPE:
            raise ValueError(f"not a retain value model (model_type {data.get('model_type')!r})")
        if data.get("format_version") != VALUE_FORMAT_VERSION:
            raise ValueError(
                f"value model format {data.get('format_version')!r} is not "
                f"{VALUE_FORMAT_VERSION}; retrain the model with this version of retain"
            )
        kind = data.get("kind")
        if kind not in VALUE_KINDS:
            raise ValueError(f"unknown value model kind {kind!r}")
        names = [str(n) for n in data["feature_names"]]
        saved = dict(data.get("boosters") or {})
        missing = [b for b in BOOSTERS[kind] if b not in saved]
        if missing:
            raise ValueError(f"the saved {kind} value model lacks the booster(s) {missing}")
        boosters = {}
        for name in BOOSTERS[kind]:
            booster = lgb.Booster(model_str=str(saved[name]))
            if booster.num_feature() != len(names) or booster.feature_name() != names:
                raise ValueError(f"booster {name!r} does not read the model's feature list")
            boosters[name] = booster
        if not data.get("feature_settings"):
            raise ValueError("the saved form lacks the feature settings the model was trained with")
        return cls(
            kind=kind,
            boosters=boosters,
            feature_names=names,
            horizon_days=int(data["horizon_days"]),
            horizon_months=int(data["horizon_months"]),
            discount_rate_monthly=float(data.get("discount_rate_monthly") or 0.0),
            params={str(k): dict(v) for k, v in (data.get("params") or {}).items()},
            best_iterations={
                str(k): int(v) for k, v in (data.get("best_iterations") or {}).items()
            },
            clv_feature_model=str(data["clv_feature_model"]),
            feature_settings=dict(data["feature_settings"]),
            holdout={str(k): float(v) for k, v in (data.get("holdout") or {}).items()},
            candidates={str(k): float(v) for k, v in (data.get("candidates") or {}).items()},
            training={str(k): str(v) for k, v in (data.get("training") or {}).items()},
        )


def _train_one(
    part: str,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_valid: np.ndarray,
    y_valid: np.ndarray,
    names: list[str],
    params: Mapping[str, Any] | None,
    seed: int,
    num_boost_round: int,
    early_stopping_rounds: int,
) -> tuple[lgb.Booster, dict[str, Any], int]:
    full = value_params(params, seed, part)
    booster, best = train_early_stopped(
        full,
        x_train,
        y_train,
        x_valid,
        y_valid,
        names,
        num_boost_round=num_boost_round,
        early_stopping_rounds=early_stopping_rounds,
    )
    return booster, full, best


def _labels(frame: pd.DataFrame) -> np.ndarray:
    if SPEND_LABEL not in frame.columns:
        raise ValueError(f"the snapshots lack the value label {SPEND_LABEL!r}")
    return frame[SPEND_LABEL].to_numpy(dtype=float)


@dataclass
class ValueTrainResult:
    """The chosen value model with the validation figures of every candidate.

    Attributes
    ----------
    model : ValueModel
        The candidate with the best validation top-20% capture.
    metrics : dict
        ``validation_<kind>_<metric>`` of each candidate (:func:`retain.clv.value_metrics.
        value_metrics`) and ``best_iteration_<booster>`` of the chosen one.
    """

    model: ValueModel
    metrics: dict[str, float]


def train_value_model(
    dataset: ChurnDataset,
    *,
    horizon_months: int,
    discount_rate_monthly: float,
    objective: Literal["auto", "tweedie", "hurdle"] = "auto",
    params: Mapping[str, Any] | None = None,
    num_boost_round: int = 1000,
    early_stopping_rounds: int = 30,
    seed: int = 0,
    clv_feature_model: str = "bgnbd",
) -> ValueTrainResult:
    """Train the candidates on the training cutoffs and keep the best on validation.

    Parameters
    ----------
    dataset : ChurnDataset
        Value snapshots (with ``future_spend``; :func:`retain.clv.value_fit.prepare_value_dataset`).
    horizon_months : int
        The CLV horizon of the labels, in months.
    discount_rate_monthly : float
        The labels' monthly discount rate.
    objective : {"auto", "tweedie", "hurdle"}
        One candidate, or both (``auto``).
    params : mapping, optional
        LightGBM overrides (``clv.ml.lightgbm``).
    num_boost_round, early_stopping_rounds : int
        Boosting bounds.
    seed : int
        LightGBM seed.
    clv_feature_model : str
        The BTYD model behind the purchase-model features (kept with the model).

    Returns
    -------
    ValueTrainResult

    Raises
    ------
    retain.contracts.DataError
        When the training or validation snapshots have no customer with spend (nothing to
        learn, and no buyer for the hurdle's spend part) or no customer without.
    """
    names = list(dataset.feature_names)
    y_train, y_valid = _labels(dataset.train), _labels(dataset.validation)
    for part, y in (("training", y_train), ("validation", y_valid)):
        buyers = int((y > 0).sum())
        if buyers == 0 or buyers == y.size:
            raise DataError(
                f"the value model's {part} snapshots ({y.size} rows) need customers with and "
                f"without spend in the {int(horizon_months)}-month horizon after their cutoffs, "
                f"and {buyers} spent: check the transactions' amounts and dates, or set "
                "clv.method: btyd"
            )
    x_train = feature_matrix(dataset.train, names)
    x_valid = feature_matrix(dataset.validation, names)
    kinds: tuple[ValueKind, ...] = VALUE_KINDS if objective == "auto" else (objective,)
    fit = dict(
        names=names,
        params=params,
        seed=seed,
        num_boost_round=num_boost_round,
        early_stopping_rounds=early_stopping_rounds,
    )
    models: dict[ValueKind, ValueModel] = {}
    metrics: dict[str, float] = {}
    for kind in kinds:
        boosters, used, best = {}, {}, {}
        if kind == "tweedie":
            boosters["value"], used["value"], best["value"] = _train_one(
                "value", x_train, y_train, x_valid, y_valid, **fit
            )
        else:
            boosters["purchase"], used["purchase"], best["purchase"] = _train_one(
                "purchase",
                x_train,
                (y_train > 0).astype(np.int8),
                x_valid,
                (y_valid > 0).astype(np.int8),
                **fit,
            )
            tb, vb = y_train > 0, y_valid > 0
            boosters["spend"], used["spend"], best["spend"] = _train_one(
                "spend", x_train[tb], y_train[tb], x_valid[vb], y_valid[vb], **fit
            )
        model = ValueModel(
            kind=kind,
            boosters=boosters,
            feature_names=names,
            horizon_days=dataset.split.horizon_days,
            horizon_months=int(horizon_months),
            discount_rate_monthly=float(discount_rate_monthly),
            params=used,
            best_iterations=best,
            clv_feature_model=clv_feature_model,
        )
        pred = model.predict_matrix(x_valid)
        figures = value_metrics(y_valid, pred)
        metrics.update({f"validation_{kind}_{k}": v for k, v in figures.items()})
        models[kind] = model
    chosen = max(
        kinds,
        key=lambda k: (
            top_capture(y_valid, models[k].predict_matrix(x_valid), SELECTION_FRACTION),
            -kinds.index(k),
        ),
    )
    model = models[chosen]
    model.candidates = {
        k[len("validation_") :]: v for k, v in metrics.items() if k.startswith("validation_")
    }
    for name, rounds in model.best_iterations.items():
        metrics[f"best_iteration_{name}"] = float(rounds)
    metrics["value_kind_hurdle"] = float(chosen == "hurdle")
    return ValueTrainResult(model, metrics)
