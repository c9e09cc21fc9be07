"""A real ``mlflow server`` over HTTP: train, register, promote, score; checks via MlflowClient.

The server (session fixture ``mlflow_server``) has its own SQLite database and proxied
artifact store in a temp dir; the runs below reach it only through ``MLFLOW_TRACKING_URI``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from mlflow import MlflowClient

from retain import tracking
from retain.config import load_config
from retain.features.rfm import rfm_summary
from retain.jobs.promote import PromoteResult, run_promotion
from retain.jobs.train_clv import TrainClvResult, train_clv

CDNOW_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "cdnow.yaml"
EXPERIMENT = "retain-http"
OVERRIDES = {
    "name": "server-test",
    "data.source": "cdnow_sample",
    "clv.purchase_model": "bgnbd",
    # the config points elsewhere: MLFLOW_TRACKING_URI must win
    "tracking.tracking_uri": "sqlite:///never-created.db",
    "tracking.experiment_name": EXPERIMENT,
    # a small, quick churn model on the 2,357 sample customers
    "churn.lightgbm": {"learning_rate": 0.05, "num_leaves": 7, "min_data_in_leaf": 100},
    "churn.baseline_models": ["bgnbd"],
    "churn.leakage_check_customers": 300,
}

_ENV = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "MLFLOW_RUN_ID")


@pytest.fixture(scope="module")
def http_env(mlflow_server) -> Iterator[str]:
    """Point this module's runs at the server via the environment; restore afterwards."""
    saved = {key: os.environ.get(key) for key in _ENV}
    os.environ["MLFLOW_TRACKING_URI"] = mlflow_server.tracking_uri
    os.environ.pop("MLFLOW_REGISTRY_URI", None)
    os.environ.pop("MLFLOW_RUN_ID", None)
    try:
        yield mlflow_server.tracking_uri
    finally:
        mlflow.set_tracking_uri(None)
        mlflow.set_registry_uri(None)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture(scope="module")
def clv_over_http(
    http_env: str, tmp_path_factory: pytest.TempPathFactory
) -> tuple[TrainClvResult, PromoteResult, Path]:
    """train_clv and the clv promotion, run once against the server from an empty folder."""
    cwd = Path.cwd()
    work = tmp_path_factory.mktemp("http-work")
    os.chdir(work)  # a relative sqlite path would land here if the override failed
    try:
        cfg = load_config(CDNOW_CONFIG, {**OVERRIDES, "scoring.output_dir": str(work / "out")})
        return train_clv(cfg), run_promotion(cfg, "clv"), work
    finally:
        os.chdir(cwd)


def test_train_clv_and_promote_over_http(mlflow_server, clv_over_http, cdnow_sample) -> None:
    result, promoted, work = clv_over_http
    assert not (work / "never-created.db").exists()
    assert result.tracking_uri == mlflow_server.tracking_uri

    client = MlflowClient(tracking_uri=mlflow_server.tracking_uri)
    experiment = client.get_experiment_by_name(EXPERIMENT)
    assert experiment is not None
    # artifacts go through the server's proxy, into its --artifacts-destination
    assert experiment.artifact_location.startswith("mlflow-artifacts:")
    runs = client.search_runs([experiment.experiment_id], order_by=["attributes.start_time ASC"])
    steps = [(r.data.tags.get("step"), r.info.run_id) for r in runs]
    assert steps[:2] == [("train_clv", result.run_id), ("promote", promoted.run_id)]
    train_run = client.get_run(result.run_id)
    assert train_run.info.status == "FINISHED"
    assert train_run.data.metrics["holdout_total_actual"] == 1882
    assert {f.path for f in client.list_artifacts(result.run_id, "plots")} == {
        "plots/backtest_cumulative_purchases.png",
        "plots/backtest_by_frequency.png",
    }
    assert any(mlflow_server.artifact_root.rglob("clv_model.json"))

    versions = client.search_model_versions("name='server-test-clv'")
    assert [str(v.version) for v in versions] == [result.model_version]
    assert versions[0].run_id == result.run_id
    assert promoted.decision.accepted, promoted.decision.reason
    model = client.get_registered_model("server-test-clv")
    assert model.aliases == {"challenger": result.model_version, "champion": result.model_version}
    assert client.get_run(promoted.run_id).data.tags["promotion.accepted"] == "true"

    # the champion loads back over HTTP and predicts
    loaded, version = tracking.load_clv_model("champion", "server-test-clv")
    assert str(version.version) == result.model_version
    summary = rfm_summary(cdnow_sample, "1998-06-30", "W")
    assert loaded.predict(summary)["clv"].notna().all()
    pyfunc = mlflow.pyfunc.load_model("models:/server-test-clv@champion")
    columns = tracking.clv_input_columns("W")
    assert len(pyfunc.predict(summary[columns].head(10).reset_index(drop=True))) == 10


def test_train_churn_promote_and_score_over_http(
    mlflow_server, clv_over_http, cdnow_sample
) -> None:
    from retain.jobs.score import SCORES_FILE, score
    from retain.jobs.train_churn import train_churn

    _, _, work = clv_over_http
    cfg = load_config(CDNOW_CONFIG, {**OVERRIDES, "scoring.output_dir": str(work / "out")})
    churn = train_churn(cfg)
    promoted = run_promotion(cfg, "churn")
    assert promoted.decision.accepted, promoted.decision.reason
    scored = score(cfg)

    client = MlflowClient(tracking_uri=mlflow_server.tracking_uri)
    model = client.get_registered_model("server-test-churn")
    assert model.aliases == {"challenger": churn.model_version, "champion": churn.model_version}
    assert client.get_run(churn.run_id).data.metrics["test_roc_auc"] > 0.5
    score_run = client.get_run(scored.run_id)
    assert score_run.info.status == "FINISHED"
    assert score_run.data.tags["step"] == "score"
    scores = pd.read_parquet(scored.output_dir / SCORES_FILE)
    assert set(scores["customer_id"]) == set(cdnow_sample["customer_id"].unique())
    assert scores["churn_probability"].between(0, 1).all()


def test_wrong_server_path_is_a_clear_error(mlflow_http) -> None:
    os.environ["MLFLOW_TRACKING_URI"] = mlflow_http.tracking_uri + "/wrong-prefix"
    cfg = load_config(CDNOW_CONFIG, OVERRIDES)
    with pytest.raises(tracking.TrackingError, match="answered HTTP 404"):
        tracking.configure(cfg.tracking)
