"""Against a real ``mlflow server`` over HTTP: train, register, promote, check via MlflowClient."""

from __future__ import annotations

import os
from pathlib import Path

import mlflow
import pytest
from mlflow import MlflowClient

from retain import tracking
from retain.config import RunConfig
from retain.features.rfm import rfm_summary
from retain.jobs.promote import run_promotion
from retain.jobs.train_clv import train_clv

CONFIG = {
    "name": "server-test",
    "data": {"source": "cdnow_sample"},
    "clv": {
        "purchase_model": "bgnbd",
        "time_unit": "W",
        "calibration_end": "1997-09-30",
        "holdout_end": "1998-06-30",
    },
    # the config points elsewhere: MLFLOW_TRACKING_URI (set by the fixture) must win
    "tracking": {"tracking_uri": "sqlite:///never-created.db", "experiment_name": "retain-http"},
}


def test_train_and_promote_over_http(
    mlflow_http, cdnow_sample, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = RunConfig.model_validate(CONFIG)
    monkeypatch.chdir(tmp_path)  # a relative sqlite path would land here if the override failed
    result = train_clv(cfg)
    promoted = run_promotion(cfg, "clv")
    assert not (tmp_path / "never-created.db").exists()
    assert result.tracking_uri == mlflow_http.tracking_uri

    client = MlflowClient(tracking_uri=mlflow_http.tracking_uri)
    experiment = client.get_experiment_by_name("retain-http")
    assert experiment is not None
    # artifacts go through the server's proxy, into its --artifacts-destination
    assert experiment.artifact_location.startswith("mlflow-artifacts:")
    runs = client.search_runs([experiment.experiment_id], order_by=["attributes.start_time ASC"])
    assert [r.data.tags["step"] for r in runs] == ["train_clv", "promote"]
    train_run = client.get_run(result.run_id)
    assert train_run.info.status == "FINISHED"
    assert train_run.data.metrics["holdout_total_actual"] == 1882
    assert {f.path for f in client.list_artifacts(result.run_id, "plots")} == {
        "plots/backtest_cumulative_purchases.png",
        "plots/backtest_by_frequency.png",
    }
    assert any(mlflow_http.artifact_root.rglob("clv_model.json"))

    versions = client.search_model_versions("name='clv'")
    assert [str(v.version) for v in versions] == [result.model_version]
    assert versions[0].run_id == result.run_id
    assert promoted.decision.accepted, promoted.decision.reason
    model = client.get_registered_model("clv")
    assert model.aliases == {"challenger": result.model_version, "champion": result.model_version}
    assert client.get_run(promoted.run_id).data.tags["promotion.accepted"] == "true"

    # the champion loads back over HTTP and predicts
    loaded, version = tracking.load_clv_model("champion")
    assert str(version.version) == result.model_version
    summary = rfm_summary(cdnow_sample, "1998-06-30", "W")
    assert loaded.predict(summary)["clv"].notna().all()
    pyfunc = mlflow.pyfunc.load_model("models:/clv@champion")
    columns = tracking.clv_input_columns("W")
    assert len(pyfunc.predict(summary[columns].head(10).reset_index(drop=True))) == 10


def test_wrong_server_path_is_a_clear_error(mlflow_http) -> None:
    cfg = RunConfig.model_validate(CONFIG)
    os.environ["MLFLOW_TRACKING_URI"] = mlflow_http.tracking_uri + "/wrong-prefix"
    with pytest.raises(tracking.TrackingError, match="answered HTTP 404"):
        tracking.configure(cfg.tracking)
