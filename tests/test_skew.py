"""Train/serve skew: scoring a cutoff with the registered models gives the training predictions.

The churn model carries everything that shapes its inputs (feature list, horizon, the BTYD model
behind ``p_alive`` and the expected-purchase features, the feature windows); scoring reads them
from the model, never from defaults or tags. Checked for every purchase model, on CDNOW.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from retain import tracking
from retain.churn.dataset import ChurnFeatures
from retain.config import load_config, load_policy
from retain.datasets import load_cdnow
from retain.io import load_inputs
from retain.jobs.train_churn import train_churn
from retain.jobs.train_clv import train_clv
from retain.scoring import ScoringModels, score_customers
from retain.tracking import TrackingError, load_scoring_models

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "cdnow.yaml"
FAST = {
    "data.source": "cdnow_sample",
    "clv.purchase_model": "bgnbd",
    "churn.lightgbm": {"num_leaves": 7, "min_data_in_leaf": 100, "num_threads": 1},
    "churn.baseline_models": ["bgnbd"],
    "churn.leakage_check_customers": 0,
    # windows other than the defaults: scoring must take them from the model
    "features.windows_days": [60, 120],
}


@pytest.mark.slow
@pytest.mark.parametrize("purchase_model", ["bgnbd", "pareto_nbd", "mbgnbd"])
def test_scoring_the_test_cutoff_reproduces_the_training_predictions(mlflow_tmp, purchase_model):
    cfg = load_config(CONFIG, {**FAST, "churn.clv_feature_model": purchase_model})
    train_clv(cfg)
    train_churn(cfg)
    loaded = load_scoring_models(cfg, "challenger", "challenger")
    models = loaded.models
    assert models.purchase_model == purchase_model
    assert list(models.feature_config.windows_days) == [60, 120]
    cutoff = pd.Timestamp(cfg.churn.test_cutoff)

    # the training path's own feature function at the test cutoff
    tx = load_cdnow("sample")
    feats = ChurnFeatures(cfg.churn.horizon_days, cfg.features, purchase_model)(tx, cutoff, None)
    expected = models.churn.predict_proba(feats)

    # scoring, with a config whose feature windows are the defaults: the model's windows win
    plain = load_config(CONFIG, {"data.source": "cdnow_sample"})
    inputs = load_inputs(plain, cutoff)
    policy = load_policy(plain.policy_path)
    scores = score_customers(inputs.transactions, cutoff, models, policy)
    got = scores.set_index("customer_id")["churn_probability"].reindex(feats.index)
    np.testing.assert_array_equal(got.to_numpy(), expected)

    if purchase_model == "bgnbd":  # the same registered names, another data set: refused
        other = load_config(CONFIG, {**FAST, "data.source": "cdnow_master"})
        with pytest.raises(TrackingError, match="cdnow_sample.*cdnow_master.*--allow-other"):
            load_scoring_models(other, "challenger", "challenger")
        assert load_scoring_models(other, "challenger", "challenger", allow_other_dataset=True)

    if purchase_model != "bgnbd":  # the old bug: scored with BG/NBD features whatever trained
        churn = models.churn
        skewed = ScoringModels(
            models.clv, type(churn)(**{**vars(churn), "clv_feature_model": "bgnbd"})
        )
        wrong = score_customers(inputs.transactions, cutoff, skewed, policy)
        assert not np.array_equal(wrong["churn_probability"].to_numpy(), got.to_numpy())


def test_models_of_another_data_set_are_refused_unless_asked(mlflow_tmp):
    cfg = load_config(CONFIG, {**FAST, "churn": None, "name": "shop-a"})
    train_clv(cfg)
    # another config sharing the registered names (tracking.model_name) but not the data
    other = load_config(
        CONFIG,
        {"data.source": "cdnow_master", "name": "shop-b", "tracking.model_name": "shop-a"},
    )
    version = tracking.resolve_version(tracking.registered_name(other, "clv"), "challenger")
    with pytest.raises(TrackingError, match="trained on data set 'cdnow_sample'.*cdnow_master"):
        tracking.check_dataset(version, other)
    tracking.check_dataset(version, other, allow_other=True)  # asked to
    tracking.check_dataset(version, cfg)  # its own data set
    from retain.jobs.promote import run_promotion

    with pytest.raises(TrackingError, match="cdnow_master"):  # nor does it take over its alias
        run_promotion(other, "clv")
    assert run_promotion(cfg, "clv").decision.accepted


def test_the_saved_form_loses_nothing(cdnow_sample):
    import json

    from retain.churn import ChurnModel, train_and_evaluate
    from retain.datasets import CDNOW_OBSERVED_UNTIL

    cfg = load_config(CONFIG, {**FAST, "churn.clv_feature_model": "mbgnbd"})
    fit = train_and_evaluate(
        cdnow_sample, cfg.churn, CDNOW_OBSERVED_UNTIL, feature_config=cfg.features, seed=0
    )
    saved = json.loads(json.dumps(fit.model.to_dict()))  # through text, as the registry stores it
    back = ChurnModel.from_dict(saved)
    assert back.to_dict() == fit.model.to_dict()
    assert back.feature_settings["windows_days"] == [60, 120]
    np.testing.assert_array_equal(
        back.predict_proba(fit.dataset.test), fit.test_scores["calibrated"]
    )
    reordered = {**saved, "feature_names": saved["feature_names"][::-1]}
    with pytest.raises(ValueError, match="not the booster's"):
        ChurnModel.from_dict(reordered)
    with pytest.raises(ValueError, match="feature settings"):
        ChurnModel.from_dict({**saved, "feature_settings": {}})


def test_a_generic_event_type_absent_at_scoring_gives_zero_counts_not_an_error():
    import lightgbm as lgb

    from retain.churn import ChurnModel
    from retain.churn.dataset import feature_matrix, select_feature_columns
    from retain.clv import ClvModel
    from retain.config import FeatureConfig
    from retain.features.build import build_features, fix_event_types
    from retain.features.labels import churn_labels
    from retain.synthetic import generate_synthetic

    data = generate_synthetic(400, "2022-01-01", "2023-12-31", seed=3, with_events=True)
    tx, events = data.transactions, data.events.copy()
    downloads = events["event_type"].eq("session") & (events.index % 3 == 0)
    events.loc[downloads, "event_type"] = "download"  # a type of the user's own
    cut, as_of = pd.Timestamp("2023-03-31"), pd.Timestamp("2023-12-31")
    settings = fix_event_types(FeatureConfig(windows_days=(90,)), events, cut)
    assert list(settings.event_types) == ["download"]
    feats = build_features(tx, cut, events, settings)
    names = [c for c in select_feature_columns(feats.reset_index())[0] if c != "customer_id"]
    assert "events_download_90d" in names
    y = churn_labels(tx, cut, 90, as_of).reindex(feats.index).astype(int)
    params = {"objective": "binary", "verbose": -1, "num_leaves": 4, "seed": 0}
    booster = lgb.train(params, lgb.Dataset(feature_matrix(feats, names), y.to_numpy()), 10)
    churn = ChurnModel(
        booster,
        names,
        {"method": "sigmoid", "a": 1.0, "b": 0.0},
        90,
        feature_settings=settings.model_dump(mode="json"),
    )
    summary = pd.DataFrame(
        {
            "frequency": feats["frequency"],
            "recency_weeks": feats["recency_days"] / 7,
            "tenure_weeks": feats["tenure_days"] / 7,
            "monetary_value": feats["monetary_value"],
        }
    )
    models = ScoringModels(ClvModel(time_unit="W").fit(summary), churn)
    no_downloads = events[events["event_type"] != "download"]
    policy = load_policy(Path(__file__).resolve().parents[1] / "configs" / "policy.yaml")
    scores = score_customers(tx, as_of, models, policy, events=no_downloads)
    assert scores["churn_probability"].notna().any()
    rebuilt = build_features(tx, as_of, no_downloads, models.feature_config)
    assert (rebuilt["events_download_90d"] == 0).all()
