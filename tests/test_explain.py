"""Explanations: compiled TreeSHAP equals LightGBM pred_contrib; reasons follow SHAP values."""

from __future__ import annotations

import re

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

from retain.explain import (
    REASON_COLUMNS,
    compile_tree_shap,
    reason_texts,
    shap_and_raw_scores,
    shap_contributions,
    top_contributions,
)
from retain.explain.reasons import PROTECTIVE, ReasonCandidates, top_positive_contributions
from retain.features.build import build_features
from retain.features.catalogue import reason_text


def _data(n: int = 3000, p: int = 16, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p)).astype(np.float32)
    X[rng.random((n, p)) < 0.05] = np.nan  # missing values take the default branch
    X[: n // 5, 3] = 0.0  # exact zeros (zero_as_missing)
    X[:, 5] = np.round(X[:, 5])  # ties at thresholds
    X[:, 6] = rng.normal(size=n)  # no missing values in training: NaN later reads as 0
    z = np.nan_to_num(X)
    logit = 1.2 * z[:, 0] - 0.5 * z[:, 1] ** 2 + np.sin(2 * z[:, 2]) + 0.8 * z[:, 3] * z[:, 4]
    logit += 0.3 * z[:, 5:].sum(axis=1)
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return X, y


SHAPES = {
    "shallow": {"num_leaves": 8, "max_depth": 3},
    "depth4": {"num_leaves": 15, "max_depth": 4},
    "default": {"num_leaves": 31},
    "deep_paths": {"num_leaves": 63, "min_data_in_leaf": 5},  # > 10 features on some paths
    "zero_missing": {"num_leaves": 15, "zero_as_missing": True},
}


@pytest.mark.parametrize("shape", list(SHAPES))
def test_compiled_shap_equals_lightgbm_pred_contrib(shape: str) -> None:
    X, y = _data()
    params = {"objective": "binary", "verbose": -1, "num_threads": 1, "seed": 1}
    params.update({"min_data_in_leaf": 20, "learning_rate": 0.1, **SHAPES[shape]})
    booster = lgb.train(params, lgb.Dataset(X, y), num_boost_round=40)
    X = X.copy()
    X[::7, 6] = np.nan  # scoring data may miss a value training never missed
    X[::11, 6] = 0.0
    reference = booster.predict(X, pred_contrib=True)
    expected_raw = booster.predict(X, raw_score=True)
    for cells in (True, False):
        tables = compile_tree_shap(booster, cells=cells)
        ours = shap_contributions(booster, X, tables=tables, n_threads=2)
        np.testing.assert_allclose(ours, reference, rtol=0, atol=1e-10)
        both, raw = shap_and_raw_scores(booster, X, tables=tables, n_threads=2)
        np.testing.assert_array_equal(both, ours)
        # the leaves' values added as LightGBM adds them: the same raw scores to the last bit
        np.testing.assert_array_equal(raw, expected_raw)
    np.testing.assert_allclose(ours.sum(axis=1), booster.predict(X, raw_score=True), atol=1e-10)
    if shape == "deep_paths":
        assert tables.max_dim > 10  # the direct (untabled) path was exercised
    if shape == "shallow":
        assert compile_tree_shap(booster).n_cached_trees == booster.num_trees()


def test_lightgbm_method_is_the_reference() -> None:
    X, y = _data(500)
    booster = lgb.train({"objective": "binary", "verbose": -1}, lgb.Dataset(X, y), 5)
    np.testing.assert_array_equal(
        shap_contributions(booster, X, method="lightgbm"), booster.predict(X, pred_contrib=True)
    )


def test_top_contributions_orders_by_absolute_value() -> None:
    contrib = np.array([[0.1, -0.5, 0.3, 0.0, 9.0], [0.0, 0.0, 0.2, 0.0, 9.0]])
    index, value = top_contributions(contrib, 3)
    assert index.tolist() == [[1, 2, 0], [2, -1, -1]]
    assert value.tolist() == [[-0.5, 0.3, 0.1], [0.2, 0.0, 0.0]]


@pytest.fixture(scope="module")
def cdnow_model(cdnow_sample: pd.DataFrame):
    cutoff = pd.Timestamp("1997-09-30")
    feats = build_features(cdnow_sample, cutoff)
    later = cdnow_sample[
        (cdnow_sample["timestamp"] > cutoff + pd.Timedelta(days=1))
        & (cdnow_sample["timestamp"] < cutoff + pd.Timedelta(days=183))
    ]
    churned = ~feats.index.isin(later["customer_id"].unique())
    names = [c for c in feats.columns if pd.api.types.is_numeric_dtype(feats[c])]
    X = feats[names].to_numpy(dtype=np.float32, na_value=np.nan)
    params = {"objective": "binary", "verbose": -1, "num_leaves": 8, "max_depth": 3, "seed": 0}
    booster = lgb.train(params, lgb.Dataset(X, churned.astype(int)), 30)
    return feats, names, X, booster


def test_reason_texts_match_shap_signs_and_values(cdnow_model) -> None:
    feats, names, X, booster = cdnow_model
    contrib = shap_contributions(booster, X)
    reasons = reason_texts(contrib, feats, names)
    assert list(reasons.columns) == list(REASON_COLUMNS)
    assert reasons.index.equals(feats.index)
    assert reasons["reason_1"].notna().all()  # every customer gets a reason
    index, value = top_contributions(contrib, 3)
    rng = np.random.default_rng(0)
    pattern = re.compile(
        r"^(.*): (raises|lowers) churn risk compared with a typical customer "
        r"\(([+-]\d+\.\d\d)\)$"
    )
    for i in rng.choice(len(feats), 40, replace=False):
        row = feats.iloc[i]
        for k in range(3):
            text = reasons.iloc[i, k]
            if index[i, k] < 0:
                assert pd.isna(text)
                continue
            name = names[index[i, k]]
            match = pattern.match(text)
            assert match is not None, text
            body, direction, number = match.groups()
            assert body == reason_text(name, row)  # the catalogue text with own values
            assert direction == ("raises" if value[i, k] > 0 else "lowers")
            assert float(number) == pytest.approx(value[i, k], abs=0.005)
        # reasons come in order of absolute contribution
        assert np.all(np.diff(np.abs(value[i][index[i] >= 0])) <= 0)


def test_every_reason_body_is_the_catalogue_text_of_its_row(cdnow_model) -> None:
    """Texts are made once per distinct value and shared: each must still be its row's own."""
    feats, names, X, booster = cdnow_model
    feats = pd.concat([feats, feats.iloc[:200]], ignore_index=True)  # repeated rows
    X = np.vstack([X, X[:200]])
    for col in ("spend_trend", "frequency_trend"):
        if col in feats.columns:  # a negative zero formats as "-0.00", a zero as "+0.00"
            feats.loc[feats.index[::3], col] = -0.0
    contrib = shap_contributions(booster, X)
    reasons = reason_texts(contrib, feats, names)
    index, _ = top_contributions(contrib, 3)
    checked = 0
    for i in range(len(feats)):
        row = feats.iloc[i]
        for k in range(3):
            if index[i, k] < 0:
                continue
            body = reasons.iloc[i, k].rsplit(": ", 1)[0]
            assert body == reason_text(names[index[i, k]], row), (i, k)
            checked += 1
    assert checked > 2 * len(feats)


def test_reason_example_days_since_last_purchase(cdnow_model) -> None:
    feats, names, X, booster = cdnow_model
    contrib = shap_contributions(booster, X)
    j = names.index("days_since_last_purchase")
    # a repeat buyer whose largest contribution is the purchase gap
    top = np.argmax(np.abs(contrib[:, :-1]), axis=1)
    rows = np.flatnonzero((top == j) & feats["mean_gap_days"].notna().to_numpy())
    assert len(rows) > 0
    i = rows[0]
    text = reason_texts(contrib[[i]], feats.iloc[[i]], names)["reason_1"].iloc[0]
    days = feats["days_since_last_purchase"].iloc[i]
    gap = feats["mean_gap_days"].iloc[i]
    assert text.startswith(f"no purchase for {days:.0f} days (usual gap {gap:.0f} days): ")


def test_reasons_for_purchase_model_features_and_unknown_columns() -> None:
    feats = pd.DataFrame({"p_alive": [0.25, 0.9], "mystery_score": [1.5, np.nan]})
    contrib = np.array([[0.5, -0.1, 0.0], [-0.2, 0.3, 0.0]])
    reasons = reason_texts(contrib, feats, ["p_alive", "mystery_score"], k=2)
    assert reasons.loc[0, "reason_1"] == (
        "25% chance of still being an active customer: raises churn risk compared with a "
        "typical customer (+0.50)"
    )
    assert reasons.loc[0, "reason_2"] == (
        "mystery score 1.5: lowers churn risk compared with a typical customer (-0.10)"
    )
    assert reasons.loc[1, "reason_1"] == (
        "mystery score: not available: raises churn risk compared with a typical customer (+0.30)"
    )
    # a catalogue feature with a missing value uses the catalogue's own text for it
    gaps = pd.DataFrame({"gap_ratio": [np.nan], "days_since_last_purchase": [40.0]})
    one = reason_texts(np.array([[0.4, 0.0, 0.0]]), gaps, ["gap_ratio", "days_since_last_purchase"])
    assert one.loc[0, "reason_1"] == (
        "only one purchase so far, no usual gap yet: raises churn risk compared with a typical "
        "customer (+0.40)"
    )


def test_top_positive_contributions() -> None:
    contrib = np.array([[0.1, -0.5, 0.3, 0.0, 9.0], [-0.1, 0.0, -0.2, 0.0, 9.0]])
    index, value = top_positive_contributions(contrib, 3)
    assert index.tolist() == [[2, 0, -1], [-1, -1, -1]]
    assert value.tolist() == [[0.3, 0.1, 0.0], [0.0, 0.0, 0.0]]


def test_risk_first_rows_list_raising_factors_then_protective_ones_marked() -> None:
    feats = pd.DataFrame({"a": [1.0, 1.0, 1.0], "b": [2.0, 2.0, 2.0], "c": [3.0, 3.0, 3.0]})
    contrib = np.array(
        [
            [-0.9, 0.2, 0.1, 0.0],  # two raise the risk, one protective (the largest |value|)
            [-0.9, 0.2, 0.1, 0.0],  # same contributions, not risk first
            [-0.3, -0.5, 0.0, 0.0],  # nothing raises the risk: protective ones only
        ]
    )
    risk = np.array([True, False, True])
    cands = ReasonCandidates.from_contributions(contrib, 3)
    index, value, protective = cands.choose(risk)
    assert index.tolist() == [[1, 2, 0], [0, 1, 2], [1, 0, -1]]
    assert protective.tolist() == [[False, False, True], [False] * 3, [True, True, False]]
    reasons = reason_texts(contrib, feats, ["a", "b", "c"], risk_first=risk)
    assert reasons.loc[0, "reason_1"].startswith("b 2: raises churn risk compared with")
    assert reasons.loc[0, "reason_3"].startswith(PROTECTIVE + "a 1: lowers churn risk")
    assert reasons.loc[1, "reason_1"].startswith("a 1: lowers churn risk")  # by |value|
    assert reasons.loc[2, "reason_1"].startswith(PROTECTIVE + "b 2: lowers")
    assert pd.isna(reasons.loc[2, "reason_3"])
    # without risk_first the texts are those of the |value| order, as before
    plain = reason_texts(contrib, feats, ["a", "b", "c"])
    assert plain.loc[0].tolist() == reasons.loc[1].tolist()
    # candidates split in parts and joined give the same choice
    joined = ReasonCandidates.concat([cands.take(slice(0, 1)), cands.take(slice(1, 3))])
    for got, want in zip(joined.choose(risk), (index, value, protective), strict=True):
        np.testing.assert_array_equal(got, want)


def test_texts_made_once_per_distinct_row_equal_a_per_row_loop() -> None:
    from retain.explain.reasons import _format_each

    v = np.array([0.0, -0.0, 0.0, 1.5, -0.0, 2.5, 2.5, 1e-300], dtype=np.float32).astype(float)
    gap = np.array([1, 2, 1, 2, 2, 3, 3, 1], dtype=np.int64)
    fmt = "{0:+.0f} ({1:.0f})".format
    out = _format_each(fmt, [v, gap])
    assert list(out) == [fmt(a, b) for a, b in zip(v.tolist(), gap.tolist(), strict=True)]
    assert out[0] != out[1]  # "+0 (1)" and "-0 (2)": a negative zero is its own value
