"""The value model: its label, no leakage, its split, determinism and saved form."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from retain.churn.dataset import select_feature_columns
from retain.clv.ml import ValueModel, train_value_model
from retain.clv.value_fit import (
    choose_method,
    configured_value_split,
    evaluate_values,
    fit_value_model,
    longest_horizon_months,
    prepare_value_dataset,
    value_split,
)
from retain.clv.value_metrics import value_metrics
from retain.config import ClvConfig
from retain.contracts import DataError
from retain.features.labels import SPEND_LABEL, spend_labels
from retain.synthetic import generate_synthetic


def _tx(rows: list[tuple[str, str, float]]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": pd.array([r[0] for r in rows], dtype="string"),
            "timestamp": pd.to_datetime([r[1] for r in rows], format="ISO8601"),
            "amount": [r[2] for r in rows],
        }
    )


def test_spend_label_by_hand() -> None:
    tx = _tx(
        [
            ("a", "2023-01-01 09:00", 10.0),
            ("a", "2023-01-31 23:00", 99.0),  # the cutoff day: history, not label
            ("a", "2023-02-01 00:00", 20.0),  # day 0 of the window: month 1
            ("a", "2023-03-05 12:00", 30.0),  # 32.5 days after: month 2
            ("b", "2023-01-10", 5.0),
            ("b", "2023-04-01 18:00", 7.0),  # cutoff + 60 days, the window's last day: inside
            ("b", "2023-04-02", 50.0),  # past cutoff + 60: outside
            ("c", "2023-02-02", 40.0),  # first purchase after the cutoff: no row
        ]
    )
    plain = spend_labels(tx, "2023-01-31", 60, "2023-06-30")
    assert plain.index.tolist() == ["a", "b"]
    assert plain.tolist() == pytest.approx([50.0, 7.0])
    disc = spend_labels(tx, "2023-01-31", 60, "2023-06-30", 0.1)
    assert disc["a"] == pytest.approx(20 / 1.1 + 30 / 1.1**2)
    assert disc["b"] == pytest.approx(7 / 1.1**2)
    with pytest.raises(ValueError, match="past the end"):
        spend_labels(tx, "2023-06-01", 60, "2023-06-30")


@pytest.fixture(scope="module")
def data():
    return generate_synthetic(600, "2022-01-01", "2023-12-31", 3)


@pytest.fixture(scope="module")
def clv() -> ClvConfig:
    return ClvConfig.model_validate(
        {
            "calibration_end": "2023-06-30",
            "holdout_end": "2023-12-31",
            "purchase_model": "bgnbd",
            "horizon_months": 4,
            "ml": {
                "num_boost_round": 40,
                "early_stopping_rounds": 10,
                "leakage_check_customers": 400,
                "lightgbm": {"min_data_in_leaf": 20, "num_threads": 1},
            },
        }
    )


@pytest.fixture(scope="module")
def dataset(data, clv):
    split = configured_value_split(clv, "2022-01-01", "2023-12-31")
    return prepare_value_dataset(data.transactions, clv, split, data.events, seed=1)


@pytest.fixture(scope="module")
def fit(dataset, clv):
    return fit_value_model(dataset, clv, seed=5)


def test_split_rules_and_refusal() -> None:
    split = value_split("2022-01-01", "2024-12-31", 365)
    assert split.test_cutoff == pd.Timestamp("2024-01-01")
    assert all(c + pd.Timedelta(days=365) <= split.test_cutoff for c in split.train_cutoffs)
    assert len(split.train_cutoffs) > 1
    # 547 days: 2 x 365 + 91 do not fit; 7 months do (2 x 213 + 91 = 517), 8 not (579)
    with pytest.raises(DataError, match="horizon_months to 7 or less"):
        value_split("2023-01-01", "2024-07-01", 365)
    assert longest_horizon_months(517) == 7 and longest_horizon_months(516) == 6
    assert longest_horizon_months(100) == 0
    with pytest.raises(DataError, match="btyd"):
        value_split("2024-01-01", "2024-04-01", 31)
    # configured cutoffs too early: what to move, not a horizon
    with pytest.raises(DataError, match="test_cutoff"):
        value_split("2022-01-01", "2024-12-31", 365, test_cutoff="2023-03-01")


def test_no_leakage_from_later_rows(data, clv, dataset) -> None:
    # rows after every label window change neither a feature nor a label
    test_cut = dataset.split.test_cutoff
    end = dataset.split.label_window_end(test_cut)
    later = data.transactions.iloc[:200].copy()
    later["timestamp"] = end + pd.Timedelta(days=3)
    more = pd.concat([data.transactions, later], ignore_index=True)
    other = prepare_value_dataset(more, clv, dataset.split, data.events, seed=1).test
    assert other[SPEND_LABEL].equals(dataset.test[SPEND_LABEL])
    names = dataset.feature_names
    pd.testing.assert_frame_equal(other[names], dataset.test[names])
    # the label is not a feature, and is the spend of (cutoff, cutoff + H] only
    assert SPEND_LABEL not in select_feature_columns(dataset.test)[0]
    assert SPEND_LABEL not in dataset.feature_names
    direct = spend_labels(
        data.transactions, test_cut, dataset.split.horizon_days, "2023-12-31", 0.01
    )
    got = dataset.test.set_index("customer_id")[SPEND_LABEL]
    np.testing.assert_allclose(got.to_numpy(), direct.reindex(got.index).to_numpy(), rtol=1e-6)


def test_fit_is_deterministic_and_reported(fit, dataset, clv) -> None:
    again = fit_value_model(dataset, clv, seed=5)
    assert again.model.kind == fit.model.kind
    np.testing.assert_array_equal(again.test_values["ml"], fit.test_values["ml"])
    for method in ("ml", "btyd", "naive"):
        assert 0 < fit.metrics[f"test_{method}_top20_capture"] <= 1
    assert {"tweedie_top20_capture", "hurdle_top20_capture"} <= set(fit.model.candidates)
    assert set(fit.model.holdout) >= {"ml_top20_capture", "btyd_top20_capture"}
    assert (fit.test_values["ml"] >= 0).all()


def test_saved_form_round_trip(fit, dataset) -> None:
    text = json.dumps(fit.model.to_dict())
    back = ValueModel.from_dict(json.loads(text))
    np.testing.assert_array_equal(back.predict(dataset.test), fit.model.predict(dataset.test))
    assert back.holdout == fit.model.holdout and back.kind == fit.model.kind
    bad = json.loads(text)
    bad["feature_names"] = list(reversed(bad["feature_names"]))
    with pytest.raises(ValueError, match="feature list"):
        ValueModel.from_dict(bad)
    with pytest.raises(ValueError, match="not a retain value model"):
        ValueModel.from_dict({**json.loads(text), "model_type": "x"})


def test_choose_method() -> None:
    holdout = {"ml_top20_capture": 0.8, "btyd_top20_capture": 0.78}
    assert choose_method("auto", holdout) == "ml"
    assert choose_method("auto", {**holdout, "btyd_top20_capture": 0.81}) == "btyd"
    assert choose_method("btyd", holdout) == "btyd"
    with pytest.raises(ValueError, match="btyd_top20_capture"):
        choose_method("auto", {"ml_top20_capture": 0.8})
    with pytest.raises(ValueError, match="ml_top20_capture"):
        choose_method("auto", {**holdout, "ml_top20_capture": float("nan")})
    assert choose_method("ml", {}) == "ml"


def test_snapshots_without_spend_are_a_data_error(dataset, clv) -> None:
    no_spend = replace(dataset, train=dataset.train.assign(**{SPEND_LABEL: 0.0}))
    with pytest.raises(DataError, match="training snapshots"):
        train_value_model(no_spend, horizon_months=4, discount_rate_monthly=0.01)
    all_spend = replace(dataset, validation=dataset.validation.assign(**{SPEND_LABEL: 1.0}))
    with pytest.raises(DataError, match="validation snapshots"):
        train_value_model(all_spend, horizon_months=4, discount_rate_monthly=0.01)


def test_methods_are_compared_on_the_same_rows() -> None:
    rng = np.random.default_rng(4)
    actual = rng.gamma(0.5, 50.0, 200) * (rng.random(200) < 0.4)
    ml = actual + rng.normal(0, 20, 200)
    btyd = actual + rng.normal(0, 30, 200)
    # BTYD cannot say for the 30 most valuable customers: measured apart, ML would look
    # better only for being measured on them too
    top = np.argsort(-actual)[:30]
    btyd[top] = np.nan
    ok = np.ones(200, dtype=bool)
    ok[top] = False
    metrics, tables = evaluate_values(actual, {"ml": ml, "btyd": btyd})
    assert metrics["test_rows_compared"] == 170
    assert metrics["test_btyd_rows_missing"] == 30 and metrics["test_ml_rows_missing"] == 0
    for method, pred in (("ml", ml), ("btyd", btyd)):
        same = value_metrics(actual[ok], pred[ok])
        for key, value in same.items():
            assert metrics[f"test_{method}_{key}"] == value, (method, key)
        assert tables[method]["customers"].sum() == 170
    assert metrics["test_ml_top20_capture"] != value_metrics(actual, ml)["top20_capture"]
    with pytest.raises(DataError, match="btyd"):
        evaluate_values(actual, {"ml": ml, "btyd": np.full(200, np.nan)})


def test_fit_marks_the_compared_rows(fit) -> None:
    values = fit.test_values
    assert fit.compared.shape == values["actual"].shape
    assert fit.metrics["test_rows_compared"] == fit.compared.sum()
    for method in ("ml", "btyd", "naive"):
        assert np.isfinite(values[method][fit.compared]).all()
