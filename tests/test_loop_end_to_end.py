"""The loop on real jobs: train, `retain score` (control groups by hash), export, evaluate.

Small synthetic files, small fast models (few boosting rounds, no tuning), a temporary MLflow
store. The groups come from the real scoring (:mod:`retain.control`), the contact list from
`retain export`, a known save effect is planted on the treated customers after the scoring
date, and `retain evaluate-actions` measures it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from retain.cli import app
from retain.config import load_config
from retain.names import (
    EVALUATION_FILE,
    EVALUATION_KIND,
    EXPORT_KIND,
    PROPOSED_POLICY_FILE,
    SCORES_FILE,
    WRITTEN_BY,
)
from retain.synthetic import generate_synthetic
from retain.synthetic_effects import plant_save_effect

POLICY = Path(__file__).resolve().parents[1] / "configs" / "policy.yaml"
START, END, D, H = "2021-01-01", "2023-12-31", "2023-06-30", 90
runner = CliRunner()


@pytest.mark.slow
def test_score_export_evaluate_on_real_jobs(mlflow_tmp, tmp_path: Path) -> None:
    from retain.jobs.score import score
    from retain.jobs.train_churn import train_churn
    from retain.jobs.train_clv import train_clv

    data = generate_synthetic(1500, START, END, seed=21, with_events=False)
    tx_path = tmp_path / "transactions.parquet"
    data.transactions.to_parquet(tx_path, index=False)
    out = tmp_path / "out"
    config = {
        "name": "loop-e2e",
        "seed": 1,
        "data": {"source": "files", "transactions": {"path": str(tx_path)}, "observed_until": END},
        "clv": {
            "purchase_model": "bgnbd",
            "calibration_end": "2022-12-31",
            "holdout_end": D,
        },
        "churn": {
            "horizon_days": H,
            "train_cutoffs": ["2022-09-30", "2022-12-31"],
            "validation_cutoff": "2023-01-31",
            "test_cutoff": "2023-03-31",
            "num_boost_round": 20,
            "early_stopping_rounds": 5,
            "calibration": "sigmoid",
            "leakage_check_customers": 0,
        },
        "scoring": {"as_of": D, "output_dir": str(out)},
        "evaluation": {"min_group_size": 5},
        "policy": str(POLICY),
    }
    path = tmp_path / "loop.yaml"
    path.write_text(yaml.safe_dump(config))
    cfg = load_config(path)
    train_clv(cfg)
    train_churn(cfg)
    scored = score(cfg, model_version="challenger", clv_version="challenger")
    scores = pd.read_parquet(scored.output_dir / SCORES_FILE)
    grouped = scores["treatment_group"].notna()
    assert (scores.loc[grouped, "action_channel"] != "none").all()
    assert (scores["contact"] == (scores["treatment_group"] == "treatment")).all()
    assert (scores["treatment_group"] == "control").any()

    # the email list is exactly the scores' email customers to contact, in priority order
    result = runner.invoke(app, ["export", "-c", str(path), "--channel", "email"])
    assert result.exit_code == 0, result.output
    listed = pd.read_csv(out / "loop-e2e" / EXPORT_KIND / f"as_of={D}" / "email.csv", dtype=str)
    email = scores[(scores["action_channel"] == "email") & scores["contact"]].copy()
    email["rank"] = email["action_priority"].astype("Float64").fillna(float("inf"))
    expected = email.sort_values(["rank", "customer_id"])["customer_id"].astype(str)
    assert len(expected) > 0
    assert listed["customer_id"].tolist() == expected.tolist()

    # a known effect after D on the treated customers, then the evaluation of D
    planted = {str(a): 0.3 for a in scores.loc[grouped, "retention_action"].unique()}
    treated = plant_save_effect(data, scores, D, H, planted, seed=3)
    treated.transactions.to_parquet(tx_path, index=False)
    args = ["evaluate-actions", "-c", str(path), "--scores-date", D]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    folder = out / "loop-e2e" / EVALUATION_KIND / f"as_of={D}"
    written = {name.rsplit("/", 1)[-1] for name in WRITTEN_BY["evaluate_actions"]}
    assert written <= {p.name for p in folder.iterdir()}
    assert (folder / PROPOSED_POLICY_FILE).is_file()
    summary = json.loads((folder / EVALUATION_FILE).read_text())
    customers = summary["customers"]
    assert customers["scored"] == len(scores)
    assert customers["treatment"] == int((scores["treatment_group"] == "treatment").sum())
    assert customers["control"] == int((scores["treatment_group"] == "control").sum())
    assert summary["control_groups"]["rotations_in_window"] == []  # the permanent hold-out
    assert summary["overall"]["churn_treatment"] < summary["overall"]["churn_control"]
