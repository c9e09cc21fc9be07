"""The analyst report: one self-contained HTML file with its images embedded."""

from __future__ import annotations

import base64
import re
from pathlib import Path
from types import SimpleNamespace

import lightgbm as lgb
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from retain.churn import ChurnModel
from retain.churn.calibration import fit_calibration
from retain.churn.dataset import feature_matrix, select_feature_columns
from retain.clv import ClvModel
from retain.config import TrackingConfig, load_policy
from retain.features.build import build_features
from retain.features.labels import churn_labels
from retain.io import write_text_atomic
from retain.reporting.html import Report, table_html
from retain.reporting.report import build_report
from retain.scoring import ScoringModels, model_features, score_customers
from retain.synthetic import generate_synthetic

POLICY = Path(__file__).resolve().parents[1] / "configs" / "policy.yaml"
AS_OF = pd.Timestamp("2023-12-31")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def scored():
    data = generate_synthetic(600, "2022-01-01", "2023-12-31", seed=5, with_events=True)
    tx, events = data.transactions, data.events
    cut = pd.Timestamp("2023-03-31")
    feats = build_features(tx, cut, events)
    names = [c for c in select_feature_columns(feats.reset_index())[0] if c != "customer_id"]
    churn = ChurnModel(None, names, {}, horizon_days=90)  # the booster comes below
    models = ScoringModels(None, churn, clv_version="1")
    inputs = model_features(feats, models)
    y = churn_labels(tx, cut, 90, AS_OF).reindex(inputs.index).astype(int).to_numpy()
    X = feature_matrix(inputs, names)
    params = {"objective": "binary", "verbose": -1, "num_leaves": 8, "max_depth": 3, "seed": 0}
    churn.booster = lgb.train(params, lgb.Dataset(X, y), 30)
    churn.calibrator = fit_calibration(churn.booster.predict(X, raw_score=True), y, "sigmoid")
    summary = pd.DataFrame(
        {
            "frequency": feats["frequency"],
            "recency_weeks": feats["recency_days"] / 7,
            "tenure_weeks": feats["tenure_days"] / 7,
            "monetary_value": feats["monetary_value"],
        }
    )
    models.clv = ClvModel(purchase_model="bgnbd", time_unit="W").fit(summary)
    models.churn_version = "2"
    scores = score_customers(tx, AS_OF, models, load_policy(POLICY), events=events)
    now = model_features(build_features(tx, AS_OF, events), models)
    return scores, now, models


def test_report_is_self_contained_with_embedded_images(scored, tmp_path: Path) -> None:
    scores, inputs, models = scored
    weeks = np.arange(1, 11)
    backtest = {
        "cumulative": pd.DataFrame(
            {
                "week": weeks,
                "date": pd.date_range("2023-01-07", periods=10, freq="7D"),
                "actual": np.cumsum(weeks),
                "predicted": np.cumsum(weeks) * 1.05,
            }
        ),
        "by_frequency": pd.DataFrame(
            {
                "frequency": ["0", "1", "2+"],
                "customers": [100, 50, 20],
                "mean_actual": [0.2, 0.8, 2.0],
                "mean_predicted": [0.25, 0.7, 2.1],
            }
        ),
    }
    before = set(plt.get_fignums())
    rep = build_report(
        scores,
        inputs,
        models,
        churn_metrics={"test_roc_auc": 0.8, "baseline_recency_roc_auc": 0.7},
        clv_metrics={"holdout_mae": 1.2, "baseline_naive_rate_holdout_mae": 1.5},
        backtest=backtest,
        sample_size=300,
    )
    assert set(plt.get_fignums()) == before  # every figure was closed
    path = tmp_path / "out" / "report.html"
    write_text_atomic(rep.render(), path)
    text = path.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>")
    sources = re.findall(r'<img alt="[^"]*" src="([^"]+)"', text)
    # bar, beeswarm, 4 dependence, 2 group heatmaps, >= 1 waterfall, 2 backtest charts
    assert len(sources) >= 11 and len(sources) == rep.n_images
    for src in sources:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1])[:8] == PNG_MAGIC
    assert not re.search(r"(src|href)=\"(https?:|//|file:)", text)  # opens offline
    for heading in (
        "Model metrics against baselines",
        "Global SHAP importance",
        "Dependence plots",
        "Mean |SHAP| by lifecycle stage and value tier",
        "Example customers",
        "Lifecycle stage x value tier",
        "Action plan",
        "CLV backtest",
    ):
        assert heading in text
    assert "log-odds of the uncalibrated" in text
    assert "baseline_recency_roc_auc" in text
    first_reason = scores.loc[scores["action_priority"] == 1, "reason_1"].iloc[0]
    assert first_reason.split(":")[0] in text


def test_html_escapes_values() -> None:
    rep = Report("t")
    rep.section("s").text("<script>").table(pd.DataFrame({"a": ["<b>"]}))
    html = rep.render()
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "&lt;b&gt;" in table_html(pd.DataFrame({"a": ["<b>"]}))


# ------------------------------------------------------- artifacts of the training runs


def _version_of(run_id: str) -> SimpleNamespace:
    return SimpleNamespace(run_id=run_id, name="report-test-clv", version="7")


def test_a_missing_backtest_table_is_an_error_naming_run_and_artifact(mlflow_tmp):
    from retain import names, tracking
    from retain.jobs.report import _backtest_tables, _churn_images

    settings = tracking.configure(TrackingConfig(experiment_name="report-artifacts"))
    table = pd.DataFrame({"date": ["1997-01-01"], "actual": [1.0], "predicted": [1.0]})
    with tracking.start_run(settings, "clv", {"step": "train_clv"}) as run:
        tracking.log_table(table, names.BACKTEST_CUMULATIVE, index=False)
    run_id = run.info.run_id
    with pytest.raises(tracking.TrackingError) as exc:
        _backtest_tables(_version_of(run_id))
    message = str(exc.value)
    assert run_id in message and names.BACKTEST_BY_FREQUENCY in message
    assert "report-test-clv version 7" in message

    with tracking.start_run(settings, "churn", {"step": "train_churn"}) as run:
        pass
    with pytest.raises(tracking.TrackingError, match=names.PLOT_ROC):
        _churn_images(_version_of(run.info.run_id))


def test_backtest_tables_of_a_complete_run_and_of_a_version_that_logged_none(mlflow_tmp):
    from retain import names, tracking
    from retain.jobs.report import _backtest_tables

    settings = tracking.configure(TrackingConfig(experiment_name="report-artifacts"))
    cumulative = pd.DataFrame({"date": ["1997-01-01"], "actual": [1.0], "predicted": [1.0]})
    by_frequency = pd.DataFrame({"frequency": [0], "actual": [1.0], "predicted": [1.0]})
    with tracking.start_run(settings, "clv", {"step": "train_clv"}) as run:
        tracking.log_table(cumulative, names.BACKTEST_CUMULATIVE, index=False)
        tracking.log_table(by_frequency, names.BACKTEST_BY_FREQUENCY, index=False)
    tables = _backtest_tables(_version_of(run.info.run_id))
    assert set(tables) == {"cumulative", "by_frequency"}
    assert pd.api.types.is_datetime64_any_dtype(tables["cumulative"]["date"])
    # a version logged outside the training job has no backtest tables: the report notes it
    with tracking.start_run(settings, "elsewhere") as other:
        pass
    assert _backtest_tables(_version_of(other.info.run_id)) == {}
    assert _backtest_tables(_version_of(None)) == {}
