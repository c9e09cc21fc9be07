"""The value model's data and evaluation: its time split, snapshots, and the test comparison.

Time split
----------
The value label looks ``H`` = the CLV horizon (``clv.horizon_months`` in days, 365 for 12
months) after each cutoff, usually longer than the churn horizon, so the value model has its own
cutoffs, held to the churn split's rules (:func:`retain.churn.dataset.make_time_split`: every
label window inside the data, training windows clear of the test window). Cutoffs left
``auto`` follow :func:`value_split`: test = last day - H; validation = test - H / 2 (its window
overlaps the test window, which only early stopping and the choice of loss see); training
cutoffs a quarter apart, the last one ``test - H``, going back while 91 days of data precede
them (at most six). Data too short for a training cutoff are refused as a data error (exit
3) naming the longest horizon that fits: the automatic split needs ``2 x H + 91`` days, so a
12-month value model needs 821 days of data.

Evaluation
----------
On the test cutoff the value model is compared with the BTYD + Gamma-Gamma CLV fitted on the
RFM summary as of that cutoff only (the purchase model of ``clv.purchase_model``, bgnbd when it
is ``auto``), predicting the same horizon with the same discount, and a naive baseline: the
customer's past spend rate (total spend / tenure, over the horizon, discounted alike). All
three are measured on the same customers: the test rows where every prediction is finite (the
BTYD CLV has none for a repeat buyer without a mean spend); the rows each one lacks are counted
apart (``test_<method>_rows_missing``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from retain.churn.dataset import (
    ChurnDataset,
    TimeSplit,
    build_churn_dataset,
    cutoffs_back,
    make_time_split,
)
from retain.clv.cutoff_features import weekly_summary
from retain.clv.ml import ValueModel, train_value_model
from retain.clv.model import ClvModel
from retain.clv.value_metrics import decile_table, value_metrics
from retain.contracts import DataError
from retain.features.labels import SPEND_LABEL
from retain.timeline import DateLike, horizon_days
from retain.timeline import day as _day

TRAIN_STEP_DAYS = 91
"""Days between automatic training cutoffs of the value model (a quarter)."""

MIN_HISTORY = 91
"""Days of data before the first automatic training cutoff: a quarter, so that the BTYD
purchase-model features of the earliest cutoff have repeat purchases to fit on."""

MAX_TRAIN_CUTOFFS = 6
"""At most this many automatic training cutoffs (the most recent ones)."""

METHODS = ("ml", "btyd", "naive")
"""The value predictions compared on the test cutoff."""


def value_split(
    first_day: DateLike,
    last_day: DateLike,
    horizon: int,
    *,
    train_cutoffs: Sequence[DateLike] | None = None,
    validation_cutoff: DateLike | None = None,
    test_cutoff: DateLike | None = None,
) -> TimeSplit:
    """The value model's cutoffs (module notes), checked by the churn split's rules.

    Parameters
    ----------
    first_day, last_day : date
        First and last day of the data.
    horizon : int
        Label window in days (the CLV horizon).
    train_cutoffs, validation_cutoff, test_cutoff : optional
        Configured dates, kept instead of the automatic ones.

    Returns
    -------
    TimeSplit

    Raises
    ------
    retain.contracts.DataError
        When the data leave no room for a training cutoff (saying which horizon would fit).
    retain.churn.LeakageError
        When configured cutoffs break the split's rules.
    """
    first, last = _day(first_day), _day(last_day)
    h = pd.Timedelta(days=int(horizon))
    test = _day(test_cutoff) if test_cutoff is not None else last - h
    validation = (
        _day(validation_cutoff)
        if validation_cutoff is not None
        else test - pd.Timedelta(days=int(horizon) // 2)
    )
    if train_cutoffs is None:
        latest = min(test - h, validation - pd.Timedelta(days=1))
        earliest = first + pd.Timedelta(days=MIN_HISTORY)
        found = cutoffs_back(latest, earliest, TRAIN_STEP_DAYS, MAX_TRAIN_CUTOFFS)
        if not found:
            raise DataError(
                _too_short(
                    first,
                    last,
                    int(horizon),
                    latest,
                    earliest,
                    test_cutoff is None and validation_cutoff is None,
                )
            )
        train_cutoffs = found
    return make_time_split(train_cutoffs, validation, test, int(horizon), last)


def longest_horizon_months(span_days: int) -> int:
    """The longest CLV horizon, in whole months, whose automatic value split fits the span.

    The automatic split needs ``2 x H + MIN_HISTORY`` days: a test window and a training
    window of ``H`` days each and :data:`MIN_HISTORY` days before the first training cutoff.

    Parameters
    ----------
    span_days : int
        Days from the first to the last day of the data.

    Returns
    -------
    int
        0 when not even a one-month horizon fits.
    """
    months = 0
    while 2 * horizon_days(months + 1) + MIN_HISTORY <= int(span_days):
        months += 1
    return months


def _too_short(
    first: pd.Timestamp,
    last: pd.Timestamp,
    horizon: int,
    latest: pd.Timestamp,
    earliest: pd.Timestamp,
    auto_test: bool,
) -> str:
    """What is wrong and what to do when no training cutoff fits (:func:`value_split`)."""
    span = int((last - first).days)
    if not auto_test:
        return (
            f"the value model's latest training cutoff would be {latest.date()}, before "
            f"{earliest.date()} ({MIN_HISTORY} days after the data's first day): move "
            "clv.ml.test_cutoff (and clv.ml.validation_cutoff) later, or shorten "
            "clv.horizon_months"
        )
    need = 2 * horizon + MIN_HISTORY
    months = longest_horizon_months(span)
    what = (
        f"set clv.horizon_months to {months} or less"
        if months
        else f"no value horizon fits (one month needs {2 * horizon_days(1) + MIN_HISTORY} days); "
        "use clv.method: btyd"
    )
    return (
        f"the data span {span} days ({first.date()} to {last.date()}); a value model with a "
        f"{horizon}-day horizon needs {need} (a training and a test window of that length and "
        f"{MIN_HISTORY} days of history before the first training cutoff): {what}"
    )


def configured_value_split(clv: Any, first_day: DateLike, last_day: DateLike) -> TimeSplit:
    """:func:`value_split` of the ``clv`` section: its horizon, and its cutoffs unless ``auto``.

    Parameters
    ----------
    clv : ClvConfig
        The ``clv`` section (``horizon_months`` and the ``ml`` cutoffs).
    first_day, last_day : date
        First and last day of the data.

    Returns
    -------
    TimeSplit

    Raises
    ------
    retain.contracts.DataError, retain.churn.LeakageError
        As :func:`value_split`.
    """
    ml = clv.ml
    return value_split(
        first_day,
        last_day,
        horizon_days(clv.horizon_months),
        train_cutoffs=None if ml.train_cutoffs == "auto" else ml.train_cutoffs,
        validation_cutoff=None if ml.validation_cutoff == "auto" else ml.validation_cutoff,
        test_cutoff=None if ml.test_cutoff == "auto" else ml.test_cutoff,
    )


def prepare_value_dataset(
    transactions: pd.DataFrame,
    clv: Any,
    split: TimeSplit,
    events: pd.DataFrame | None = None,
    *,
    feature_config: Any | None = None,
    purchase_model: str = "bgnbd",
    seed: int = 0,
) -> ChurnDataset:
    """The value snapshots: the churn snapshots of the value split, with ``future_spend``.

    Parameters
    ----------
    transactions : DataFrame
        Validated transactions.
    clv : ClvConfig
        The ``clv`` section (``discount_rate_monthly``, ``ml.leakage_check_customers``).
    split : TimeSplit
        The value model's cutoffs (:func:`configured_value_split`).
    events : DataFrame, optional
        Validated engagement events.
    feature_config : FeatureConfig, optional
        Feature windows.
    purchase_model : str
        BTYD model of the purchase-model features (the churn model's).
    seed : int
        Seed of the leakage-check sample.

    Returns
    -------
    ChurnDataset
        With the value label ``future_spend`` in every part.

    Raises
    ------
    retain.churn.LeakageError
        As :func:`retain.churn.dataset.build_churn_dataset`.
    """
    return build_churn_dataset(
        transactions,
        split,
        events,
        feature_config=feature_config,
        purchase_model=purchase_model,
        leakage_check_customers=clv.ml.leakage_check_customers,
        seed=seed,
        spend_discount=clv.discount_rate_monthly,
    )


def discount_factor(horizon_months: int, discount_rate_monthly: float) -> float:
    """Mean discount over the horizon's months, ``mean_k (1 + d)^-k`` for k = 1..H."""
    k = np.arange(1, int(horizon_months) + 1)
    return float(np.mean((1.0 + float(discount_rate_monthly)) ** -k))


def naive_value(features: pd.DataFrame, horizon: int, discount: float) -> np.ndarray:
    """Past spend rate over the horizon: ``total_spend / tenure x horizon x discount``.

    Parameters
    ----------
    features : DataFrame
        ``total_spend`` and ``tenure_days`` as of the cutoff.
    horizon : int
        Days.
    discount : float
        :func:`discount_factor`.

    Returns
    -------
    ndarray of float
        Tenure counts at least one day (a first purchase on the cutoff day).
    """
    spend = features["total_spend"].to_numpy(dtype=float)
    tenure = np.maximum(features["tenure_days"].to_numpy(dtype=float), 1.0)
    return np.clip(spend, 0.0, None) / tenure * horizon * discount


def btyd_value(
    features: pd.DataFrame, clv: Any, horizon_months: int, purchase_model: str = "bgnbd"
) -> np.ndarray:
    """BTYD + Gamma-Gamma ``clv`` fitted on one cutoff's RFM summary only.

    Parameters
    ----------
    features : DataFrame
        One cutoff's features (``frequency``, ``recency_days``, ``tenure_days``,
        ``monetary_value``).
    clv : ClvConfig
        Penalizers and discount rate.
    horizon_months : int
        Months predicted.
    purchase_model : str
        Used when ``clv.purchase_model`` is ``auto``.

    Returns
    -------
    ndarray of float
        Each row's discounted expected spend (NaN where the spend model cannot say).
    """
    name = clv.purchase_model if clv.purchase_model != "auto" else purchase_model
    model = ClvModel(
        purchase_model=name,
        spend_model=clv.spend_model,
        penalizer=clv.penalizer,
        purchase_penalizer=clv.purchase_penalizer,
        spend_penalizer=clv.spend_penalizer,
        time_unit="W",
        discount_rate=clv.discount_rate_monthly,
        horizon=int(horizon_months),
    )
    summary = weekly_summary(features)
    model.fit(summary)
    return model.predict(summary)["clv"].to_numpy(dtype=float)


@dataclass
class ValueFit:
    """One value-model training run (pure data, no tracking).

    Attributes
    ----------
    dataset : ChurnDataset
        The value snapshots.
    model : ValueModel
        The chosen model, its ``holdout`` figures filled.
    metrics : dict
        Counts, validation figures of each candidate, ``test_<method>_<metric>`` of the model,
        the BTYD CLV and the naive baseline on the same rows (:func:`evaluate_values`), and
        ``test_ml_minus_btyd_top20_capture``.
    test_values : dict
        Test-cutoff arrays, one per row of ``dataset.test``: ``actual`` and one per method of
        :data:`METHODS` (NaN where a method cannot say).
    deciles : dict
        :func:`retain.clv.value_metrics.decile_table` per method, on the compared rows.
    compared : ndarray of bool
        The test rows every figure is measured on (:func:`compared_rows`).
    """

    dataset: ChurnDataset
    model: ValueModel
    metrics: dict[str, float]
    test_values: dict[str, np.ndarray]
    deciles: dict[str, pd.DataFrame]
    compared: np.ndarray


def compared_rows(actual: np.ndarray, predictions: Mapping[str, np.ndarray]) -> np.ndarray:
    """The rows every prediction (and the actual value) is finite on: the common footing.

    Parameters
    ----------
    actual : array of float
        Each customer's actual value.
    predictions : mapping of str to array
        Method to predicted values, aligned with ``actual``.

    Returns
    -------
    ndarray of bool
    """
    ok = np.isfinite(np.asarray(actual, dtype=float))
    for pred in predictions.values():
        ok &= np.isfinite(np.asarray(pred, dtype=float))
    return ok


def evaluate_values(
    actual: np.ndarray, predictions: Mapping[str, np.ndarray]
) -> tuple[dict[str, float], dict[str, pd.DataFrame]]:
    """``test_<method>_<metric>`` and the decile table of every prediction, on the same rows.

    Every method is measured on the rows where all of them are finite
    (:func:`compared_rows`), so the figures compare the methods on the same customers (a BTYD
    CLV without a spend estimate for some rows must not be measured on a different, easier
    population than the ML one). ``test_rows_compared`` counts those rows, and
    ``test_<method>_rows_missing`` the rows each prediction could not say.

    Raises
    ------
    retain.contracts.DataError
        When no row has every prediction.
    """
    ok = compared_rows(actual, predictions)
    metrics: dict[str, float] = {"test_rows_compared": float(ok.sum())}
    for method, pred in predictions.items():
        missing = ~np.isfinite(np.asarray(pred, dtype=float))
        metrics[f"test_{method}_rows_missing"] = float(missing.sum())
    if not ok.any():
        lacking = [m for m in predictions if metrics[f"test_{m}_rows_missing"] > 0]
        raise DataError(
            f"no test customer of the value model has every prediction ({', '.join(lacking)} "
            f"missing for {len(ok)} rows): check the transactions' amounts (the BTYD spend "
            "model needs each repeat buyer's mean spend), or set clv.method: btyd"
        )
    a = np.asarray(actual, dtype=float)[ok]
    tables: dict[str, pd.DataFrame] = {}
    for method, pred in predictions.items():
        p = np.asarray(pred, dtype=float)[ok]
        figures = value_metrics(a, p)
        metrics.update({f"test_{method}_{k}": v for k, v in figures.items()})
        tables[method] = decile_table(a, p)
    return metrics, tables


def fit_value_model(
    dataset: ChurnDataset, clv: Any, *, purchase_model: str = "bgnbd", seed: int = 0
) -> ValueFit:
    """Train the value model and compare it with BTYD and the naive baseline on the test cutoff.

    Parameters
    ----------
    dataset : ChurnDataset
        :func:`prepare_value_dataset` output.
    clv : ClvConfig
        The ``clv`` section.
    purchase_model : str
        BTYD model of the features (kept with the model; also the baseline's when
        ``clv.purchase_model`` is ``auto``).
    seed : int
        LightGBM seed.

    Returns
    -------
    ValueFit
    """
    ml = clv.ml
    result = train_value_model(
        dataset,
        horizon_months=clv.horizon_months,
        discount_rate_monthly=clv.discount_rate_monthly,
        objective=ml.objective,
        params=ml.lightgbm,
        num_boost_round=ml.num_boost_round,
        early_stopping_rounds=ml.early_stopping_rounds,
        seed=seed,
        clv_feature_model=purchase_model,
    )
    model = result.model
    test = dataset.test
    actual = test[SPEND_LABEL].to_numpy(dtype=float)
    horizon = dataset.split.horizon_days
    values = {
        "ml": model.predict(test),
        "btyd": btyd_value(test, clv, clv.horizon_months, purchase_model),
        "naive": naive_value(
            test, horizon, discount_factor(clv.horizon_months, clv.discount_rate_monthly)
        ),
    }
    metrics: dict[str, float] = {}
    for part in ("train", "validation", "test"):
        frame = getattr(dataset, part)
        metrics[f"{part}_rows"] = float(len(frame))
        metrics[f"{part}_spend_share"] = float((frame[SPEND_LABEL] > 0).mean())
    metrics.update(result.metrics)
    figures, tables = evaluate_values(actual, values)
    metrics.update(figures)
    metrics["test_ml_minus_btyd_top20_capture"] = (
        figures["test_ml_top20_capture"] - figures["test_btyd_top20_capture"]
    )
    metrics["n_features"] = float(len(model.feature_names))
    model.holdout = {
        k[len("test_") :]: v
        for k, v in figures.items()
        if k.startswith(("test_ml_", "test_btyd_")) and np.isfinite(v)
    }
    return ValueFit(
        dataset,
        model,
        metrics,
        {"actual": actual, **values},
        tables,
        compared_rows(actual, values),
    )


def choose_method(method: str, holdout: Mapping[str, float]) -> str:
    """The ``clv`` a scoring run uses: ``btyd`` or ``ml``.

    Parameters
    ----------
    method : {"btyd", "ml", "auto"}
        ``clv.method``.
    holdout : mapping
        The value model's recorded test figures (:attr:`ValueModel.holdout`); ``auto`` picks
        ``ml`` when its ``ml_top20_capture`` is at least ``btyd_top20_capture``.

    Returns
    -------
    str

    Raises
    ------
    ValueError
        When ``auto`` finds no finite recorded figures to compare.
    """
    if method in ("btyd", "ml"):
        return method
    if method != "auto":
        raise ValueError(f"unknown clv.method {method!r}")
    keys = ("ml_top20_capture", "btyd_top20_capture")
    lacking = [k for k in keys if not np.isfinite(float(holdout.get(k, np.nan)))]
    if lacking:
        raise ValueError(
            f"clv.method auto compares the recorded test figures {list(keys)}, and the model "
            f"has no {' or '.join(lacking)}"
        )
    ml, btyd = (float(holdout[k]) for k in keys)
    return "ml" if ml >= btyd else "btyd"
