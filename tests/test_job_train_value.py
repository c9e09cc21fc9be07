"""The train_value job on the CDNOW sample into a temporary SQLite store."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from retain import names, tracking
from retain.cli import EXIT_DATA, app
from retain.config import RunConfig
from retain.contracts import DataError
from retain.jobs.promote import run_promotion
from retain.jobs.train_value import train_value

CONFIG = {
    "name": "value-job-test",
    "data": {"source": "cdnow_sample"},
    "clv": {
        "purchase_model": "bgnbd",
        "calibration_end": "1997-09-30",
        "holdout_end": "1998-06-30",
        "horizon_months": 6,
        "ml": {
            "num_boost_round": 60,
            "early_stopping_rounds": 15,
            "leakage_check_customers": 500,
            "lightgbm": {"min_data_in_leaf": 30},
        },
    },
    "tracking": {"experiment_name": "retain-value-job"},
}


def test_train_value_registers_a_verifiable_challenger(mlflow_tmp, cdnow_sample) -> None:
    cfg = RunConfig.model_validate(CONFIG)
    result = train_value(cfg)
    run = tracking.client().get_run(result.run_id)
    m = run.data.metrics
    for method in ("ml", "btyd", "naive"):
        for metric in ("gini", "top5_capture", "top20_capture", "total_error"):
            assert np.isfinite(m[f"test_{method}_{metric}"])
    assert np.isfinite(m["validation_tweedie_top20_capture"])
    assert np.isfinite(m["validation_hurdle_top20_capture"])
    assert run.data.params["split.horizon_days"] == "183"
    logged = {a.path for a in tracking.client().list_artifacts(result.run_id, "plots")}
    assert {names.PLOT_VALUE_CAPTURE, names.PLOT_VALUE_DECILES} <= logged

    # the registered saved form is the model, its test figures with it
    loaded = tracking.load_value_model("challenger", "value-job-test-value")
    assert loaded.model.kind == result.kind
    assert loaded.model.holdout["ml_top20_capture"] == pytest.approx(m["test_ml_top20_capture"])
    assert loaded.version.tags["metric.test_ml_top20_capture"]
    digests = json.loads(loaded.version.tags[tracking.DIGEST_TAG])
    assert f"data/{names.VALUE_MODEL_FILE}" in digests

    decision = run_promotion(cfg, "value").decision
    assert decision.accepted and "no champion" in decision.reason
    champion = tracking.load_value_model("champion", "value-job-test-value")
    assert str(champion.version.version) == result.model_version


def test_train_value_refuses_a_horizon_longer_than_the_data_allow(mlflow_tmp, tmp_path) -> None:
    # CDNOW spans 545 days: a 12-month value model needs 2 x 365 + 91; 7 months fit
    # (2 x 213 + 91 = 517), 8 do not (2 x 244 + 91 = 579)
    cfg = {**CONFIG, "clv": {**CONFIG["clv"], "horizon_months": 12}}
    with pytest.raises(DataError, match="clv.horizon_months to 7 or less"):
        train_value(RunConfig.model_validate(cfg))
    # the command says it is a data error (exit 3), not a leakage one
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(cfg))
    result = CliRunner().invoke(app, ["train-value", "--config", str(path)])
    assert result.exit_code == EXIT_DATA
    assert result.output.lstrip().startswith("data error:")
    assert "leakage" not in result.output
