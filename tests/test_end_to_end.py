"""END-TO-END on CDNOW master: train CLV + churn, promote both, score every customer, report.

This is the slow test of the suite (marked ``slow``; it still runs in ``make test``): it uses
the real jobs, a temporary MLflow store and the full CDNOW master file (23,570 customers).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from retain.config import STAGES, TIERS, load_config
from retain.scoring import OUTPUT_COLUMNS

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "cdnow.yaml"


@pytest.mark.slow
def test_cdnow_train_promote_score_report(mlflow_tmp, tmp_path: Path, cdnow_master) -> None:
    from retain.jobs.promote import run_promotion
    from retain.jobs.report import report
    from retain.jobs.score import MANIFEST_FILE, SCORES_FILE, score
    from retain.jobs.train_churn import train_churn
    from retain.jobs.train_clv import train_clv

    out = tmp_path / "out"
    out.mkdir()
    # the output root may hold the user's own files: retain writes beside them, never over them
    (out / "run.yaml").write_text("name: mine\n")
    (out / "orders.csv").write_text("customer_id,timestamp,amount\n1,1997-01-01,10\n")
    users = {p.name: p.read_bytes() for p in out.iterdir()}
    cfg = load_config(CONFIG, {"scoring.output_dir": str(out)})
    train_clv(cfg)
    train_churn(cfg)
    assert run_promotion(cfg, "clv").decision.accepted
    assert run_promotion(cfg, "churn").decision.accepted

    result = score(cfg, csv=True)
    assert result.output_dir == out / cfg.name / "scores" / f"as_of={cfg.scoring.as_of}"
    scores = pd.read_parquet(result.output_dir / SCORES_FILE)
    manifest = json.loads((result.output_dir / MANIFEST_FILE).read_text())
    assert result.manifest["customers"] == manifest["customers"]

    # every customer exactly once; the manifest balances
    assert list(scores.columns) == list(OUTPUT_COLUMNS)
    assert scores["customer_id"].is_unique
    assert set(scores["customer_id"]) == set(cdnow_master["customer_id"].unique())
    c = manifest["customers"]
    assert c["balanced"] and c["customers_in"] == c["customers_scored"] + c["customers_rejected"]
    assert c["customers_scored"] == len(scores) == manifest["rows_out"]
    assert sum(manifest["counts"]["lifecycle_stage"].values()) == len(scores)
    assert "champion" in manifest["models"]["churn"]["aliases"]
    assert (result.output_dir / "scores.csv").is_file()

    # the summary tables analysts open first, written beside the scores
    from retain.names import ACTION_PLAN_CSV, CONTACT_LIST_CSV, STAGE_TIER_CSV

    stage_tier = pd.read_csv(result.output_dir / STAGE_TIER_CSV)
    total = stage_tier.query("lifecycle_stage == 'all' and value_tier == 'all'")
    assert int(total["customers"].iloc[0]) == len(scores)
    plan = pd.read_csv(result.output_dir / ACTION_PLAN_CSV)
    assert plan["customers"].sum() == len(scores)
    contacts = pd.read_csv(result.output_dir / CONTACT_LIST_CSV)
    assert len(contacts) == cfg.report.top_n
    assert contacts["action_priority"].is_monotonic_increasing
    assert {"churn_probability", "clv", "save_rate", "action_cost"} <= set(contacts.columns)
    assert {STAGE_TIER_CSV, ACTION_PLAN_CSV, CONTACT_LIST_CSV} <= set(manifest["files"])

    # valid values
    assert scores["churn_probability"].between(0, 1).all()
    assert scores["p_alive"].between(0, 1).all() and (scores["clv"] >= 0).all()
    assert set(scores["lifecycle_stage"]) <= set(STAGES) and set(scores["value_tier"]) <= set(TIERS)
    assert scores["reason_1"].notna().all() and scores["stage_reason"].notna().all()
    assert np.isfinite(scores["expected_value_saved"]).all()
    tiers = scores["value_tier"].value_counts(normalize=True)
    assert tiers.get("vip", 0) == pytest.approx(0.05, abs=0.01)
    assert scores["lifecycle_stage"].nunique() >= 3
    assert (scores["as_of"] == pd.Timestamp(cfg.scoring.as_of)).all()

    rep = report(cfg, sample_size=1000)
    assert rep.path.parent == out / cfg.name / "report" / f"as_of={cfg.scoring.as_of}"
    from retain import tracking

    note = tracking.client().get_run(rep.run_id).data.tags["mlflow.note.content"]
    assert note.startswith(f"Report on the {len(scores):,} customers {cfg.name} scored")
    html = rep.path.read_text(encoding="utf-8")
    images = re.findall(r'src="(data:image/png;base64,[^"]+)"', html)
    assert rep.n_images == len(images) >= 11
    assert "CLV backtest" in html and "No backtest tables" not in html

    # another date gets its own folder; the first date's files stay byte-identical
    first = {p.name: p.read_bytes() for p in result.output_dir.iterdir()}
    earlier = score(cfg, as_of="1998-03-31")
    assert earlier.output_dir != result.output_dir
    assert (
        pd.read_parquet(earlier.output_dir / SCORES_FILE)["as_of"] == pd.Timestamp("1998-03-31")
    ).all()
    assert {p.name: p.read_bytes() for p in result.output_dir.iterdir()} == first
    assert rep.path.is_file()
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == users

    # with an earlier date in the history, the report shows how the customers moved since
    later = report(cfg, sample_size=200)
    assert "Customer movements since 1998-03-31" in later.path.read_text(encoding="utf-8")
    from retain.jobs.compare import compare

    moved = compare(cfg, "1998-03-31", cfg.scoring.as_of)
    counts = moved.transitions.counts
    everyone = counts["in_both"] + counts["only_from"] + counts["only_to"]
    assert counts["customers_to"] == len(scores)
    assert moved.transitions.stages["customers"].sum() == everyone

    # a damaged scores file is reported as such, never re-scored in silence
    from retain.io import OutputError

    damaged = earlier.output_dir / SCORES_FILE
    damaged.write_bytes(damaged.read_bytes()[:1000])
    with pytest.raises(OutputError, match="damaged"):
        report(cfg, as_of="1998-03-31", sample_size=200)
    with pytest.raises(OutputError, match="no scores as of 1998-02-28"):
        report(cfg, as_of="1998-02-28", sample_size=200)
    (result.output_dir / MANIFEST_FILE).write_text('{"as_of": "1998-06-30", "models": []}')
    with pytest.raises(OutputError, match="score --as-of 1998-06-30"):
        report(cfg, sample_size=200)
