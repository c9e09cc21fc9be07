"""Same data + config + seed gives the same models and the same scores, to the last bit."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from retain.config import load_config
from retain.jobs.score import SCORES_FILE, score
from retain.jobs.train_churn import train_churn
from retain.jobs.train_clv import train_clv
from retain.tracking import load_scoring_models

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "cdnow_sample.yaml"


@pytest.mark.slow
def test_training_twice_gives_identical_models_and_scores(mlflow_tmp, tmp_path: Path) -> None:
    cfg = load_config(CONFIG, {"churn.leakage_check_customers": 200})
    scores = []
    for run in ("1", "2"):
        train_clv(cfg)
        train_churn(cfg)
        result = score(cfg, output_dir=tmp_path / f"out{run}", model_version=run, clv_version=run)
        scores.append(pd.read_parquet(result.output_dir / SCORES_FILE))
    first = load_scoring_models(cfg, "1", "1").models
    second = load_scoring_models(cfg, "2", "2").models
    assert first.churn.to_dict() == second.churn.to_dict()
    assert first.clv.to_dict() == second.clv.to_dict()
    versions = ["clv_model_version", "churn_model_version"]
    assert (scores[0]["churn_model_version"] == "1").all()
    assert (scores[1]["churn_model_version"] == "2").all()
    pd.testing.assert_frame_equal(
        scores[0].drop(columns=versions), scores[1].drop(columns=versions), check_exact=True
    )
