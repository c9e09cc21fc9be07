"""The train_clv job on the CDNOW sample into a temporary SQLite store."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from retain import names, tracking
from retain.cli import EXIT_DATA, app
from retain.clv import naive_rate_errors
from retain.config import RunConfig
from retain.features.rfm import rfm_summary
from retain.io import DataError
from retain.jobs.train_clv import train_clv

CONFIG = {
    "name": "clv-job-test",
    "data": {"source": "cdnow_sample"},
    "clv": {
        "purchase_model": "auto",
        "time_unit": "W",
        "calibration_end": "1997-09-30",
        "holdout_end": "1998-06-30",
    },
    "tracking": {"experiment_name": "retain-clv-job"},
}


def test_train_clv_logs_backtest_and_registers_challenger(mlflow_tmp, cdnow_sample) -> None:
    cfg = RunConfig.model_validate(CONFIG)
    messages: list[str] = []
    result = train_clv(cfg, progress=messages.append)
    assert messages[0] == "loading inputs" and messages[-1].startswith("registering")

    # the comparison covers the three purchase models and the selection minimises the MAE
    comparison = result.comparison
    assert set(comparison.index) == {"bgnbd", "pareto_nbd", "mbgnbd"}
    assert result.purchase_model == comparison["mae"].astype(float).idxmin()

    run = tracking.client().get_run(result.run_id)
    m = run.data.metrics
    # the published holdout total for the CDNOW sample (issue #3)
    assert m["holdout_total_actual"] == 1882
    for key in ("holdout_mae", "holdout_rmse", "holdout_total_abs_error", "log_likelihood"):
        assert np.isfinite(m[key])
    assert m["holdout_mae"] == m[f"{result.purchase_model}_holdout_mae"]
    # the BTYD model beats the naive rate-extrapolation baseline on this data
    assert m["holdout_mae"] < m["baseline_naive_rate_holdout_mae"]
    assert m["rows_used"] == len(cdnow_sample) and m["n_customers_total"] == 2357
    p = run.data.params
    assert p["window.first_transaction"] == "1997-01-01"
    assert p["window.observed_until"] == "1998-06-30"
    assert (
        p["clv.purchase_model"] == "auto" and p["selected_purchase_model"] == result.purchase_model
    )
    assert run.data.tags["config_hash"] == cfg.config_hash()
    # what ran on what: the input table as an MLflow dataset, and a description
    (logged,) = run.inputs.dataset_inputs
    assert logged.dataset.name == "clv-job-test.transactions"
    assert logged.dataset.digest == tracking.table_digest(cdnow_sample)
    assert {t.key: t.value for t in logged.tags}["mlflow.data.context"] == "training"
    description = run.data.tags[tracking.DESCRIPTION_TAG]
    assert description.startswith(f"CLV model {result.purchase_model} + gamma_gamma fitted on ")
    assert f"holdout MAE {m['holdout_mae']:.2f}" in description

    artifacts = {f.path for f in tracking.client().list_artifacts(result.run_id, "plots")}
    assert artifacts == {
        "plots/backtest_cumulative_purchases.png",
        "plots/backtest_by_frequency.png",
    }
    local = Path(
        mlflow.artifacts.download_artifacts(run_id=result.run_id, artifact_path="backtest")
    )
    table = pd.read_csv(local / "comparison.csv").set_index("purchase_model")
    assert table["selected"].sum() == 1
    # every artifact the catalogue says train_clv writes is in the run (the report reads some)
    logged = {
        f.path
        for folder in ("backtest", "plots", "data", "model")
        for f in tracking.client().list_artifacts(result.run_id, folder)
    }
    assert set(names.WRITTEN_BY["train_clv"]) <= logged

    # registered as clv@challenger; the production model is refitted on data to holdout_end
    version = tracking.resolve_version("clv-job-test-clv", "challenger")
    assert str(version.version) == result.model_version
    assert version.run_id == result.run_id
    assert float(version.tags["metric.holdout_mae"]) == pytest.approx(m["holdout_mae"])
    loaded, _ = tracking.load_clv_model("challenger", "clv-job-test-clv")
    assert loaded.purchase_model == result.purchase_model
    assert loaded.n_customers_ == 2357
    full = rfm_summary(cdnow_sample, "1998-06-30", "W")
    pred = loaded.predict(full)
    assert list(pred.columns) == [
        "p_alive",
        "expected_purchases",
        "expected_avg_value",
        "clv",
        "expected_next_purchase_days",
    ]
    assert pred["clv"].notna().all() and (pred["p_alive"].between(0, 1)).all()

    # the gate accepts the first challenger (it beats its baseline)
    decision = tracking.promote("clv-job-test-clv", cfg.promotion)
    assert decision.accepted, decision.reason


def test_naive_rate_errors_by_hand() -> None:
    summary = pd.DataFrame(
        {"frequency": [2, 0, 1], "tenure_weeks": [10.0, 0.0, 4.0]},
        index=pd.Index(["a", "b", "c"], name="customer_id"),
    )
    actual = pd.Series([1, 0, 3], index=summary.index)
    # rates per week 0.2, 0, 0.25 over 28 days (4 weeks): predictions 0.8, 0, 1.0
    out = naive_rate_errors(summary, actual, 28.0)
    assert out["mae"] == pytest.approx((0.2 + 0 + 2.0) / 3)
    assert out["rmse"] == pytest.approx(np.sqrt((0.04 + 4.0) / 3))
    assert out["total_abs_error"] == pytest.approx(abs(1.8 - 4))


def test_holdout_past_observed_data_is_a_data_error(mlflow_tmp, tmp_path: Path) -> None:
    data = json.loads(json.dumps(CONFIG))
    data["clv"]["holdout_end"] = "1998-12-31"
    cfg = RunConfig.model_validate(data)
    with pytest.raises(DataError, match="after the last observed day 1998-06-30"):
        train_clv(cfg)
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(data))
    result = CliRunner().invoke(app, ["train-clv", "--config", str(path)])
    assert result.exit_code == EXIT_DATA
    assert "after the last observed day" in result.output
