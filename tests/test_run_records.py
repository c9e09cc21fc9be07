"""What each run records: its input tables (mlflow.log_input), a description, the SHAP plots.

Real MLflow (the ``mlflow_tmp`` store) and the CDNOW sample with a fast LightGBM, as in
``test_skew.py``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from retain import names, tracking
from retain.config import load_config
from retain.inputs import Inputs
from retain.jobs.promote import promotion_description
from retain.jobs.score import score_description
from retain.promotion import PromotionDecision

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "cdnow_sample.yaml"
FAST = {
    "clv.purchase_model": "bgnbd",
    "churn.lightgbm": {"num_leaves": 7, "min_data_in_leaf": 100, "num_threads": 1},
    "churn.baseline_models": ["bgnbd"],
    "churn.leakage_check_customers": 0,
}


def _inputs(run_id: str) -> dict[str, tuple[object, dict[str, str]]]:
    """Dataset name -> (dataset, input tags) of a run."""
    run = tracking.client().get_run(run_id)
    return {
        d.dataset.name: (d.dataset, {t.key: t.value for t in d.tags})
        for d in run.inputs.dataset_inputs
    }


def _description(run_id: str) -> str:
    return tracking.client().get_run(run_id).data.tags.get(tracking.DESCRIPTION_TAG, "")


# ------------------------------------------------------------------------------ pure parts


def _frame(n: int) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "customer_id": pd.array([f"c{i % 997}" for i in range(n)], dtype="string"),
            "timestamp": pd.Timestamp("1997-01-01") + pd.to_timedelta(rng.integers(0, 500, n), "D"),
            "amount": rng.gamma(2.0, 20.0, n).round(2),
        }
    )


def test_table_digest_is_stable_and_sees_every_row() -> None:
    frame = _frame(50_000)
    digest = tracking.table_digest(frame)
    assert len(digest) == 16 and int(digest, 16) >= 0
    # the same content gives the same digest, whatever the chunking or the copy
    assert tracking.table_digest(frame.copy()) == digest
    assert tracking.table_digest(frame, chunk_rows=7_001) == digest
    # one value in the last row (MLflow's pandas digest hashes only the first 10,000 rows)
    changed = frame.copy()
    changed.loc[len(changed) - 1, "amount"] += 0.01
    changed_id = frame.copy()
    changed_id.loc[40_000, "customer_id"] = "someone else"
    variants = [
        changed,
        changed_id,
        frame.iloc[:-1],
        pd.concat([frame, frame.iloc[[0]]], ignore_index=True),
        frame.rename(columns={"amount": "value"}),
        frame.astype({"amount": "float32"}),
    ]
    digests = {tracking.table_digest(v) for v in variants}
    assert digest not in digests and len(digests) == len(variants)
    # row order is not content: the same rows in another order, or split in parts, are the
    # same data (how customer partitions of one table compose)
    assert tracking.table_digest(frame.iloc[::-1].reset_index(drop=True)) == digest
    from retain.digests import TableDigest

    halves = (
        TableDigest(frame)
        .update(frame.iloc[::2])
        .merge(TableDigest(frame).update(frame.iloc[1::2]))
    )
    assert halves.hexdigest() == digest
    # an unnamed index is row positions, not content; a named one (customers) is content
    assert tracking.table_digest(frame.set_axis(frame.index + 5)) == digest
    keyed = frame.drop_duplicates("customer_id").set_index("customer_id")
    other = keyed.rename(index={"c1": "c1x"})
    assert tracking.table_digest(keyed) != tracking.table_digest(other)


def test_data_label_and_descriptions() -> None:
    cfg = load_config(CONFIG)
    tx = _frame(1_000)
    inputs = Inputs(tx, None, None, pd.DataFrame(), {})
    assert tracking.data_label(cfg, inputs) == "cdnow_sample (1,000 transactions, 997 customers)"
    events = pd.DataFrame({"customer_id": ["c1"] * 3})
    with_events = Inputs(tx, events, None, pd.DataFrame(), {})
    assert "1,000 transactions, 3 events, 997 customers" in tracking.data_label(cfg, with_events)

    manifest = {
        "as_of": "1998-06-30",
        "customers": {"customers_scored": 2357, "customers_rejected": 0},
    }
    params = {"clv_version": "1", "churn_version": "2", "output_dir": "out/x"}
    assert score_description("cdnow_sample (6,919 transactions)", manifest, params) == (
        "Scored 2,357 customers of cdnow_sample (6,919 transactions) as of 1998-06-30 with CLV "
        "version 1 and churn version 2; 0 customers rejected. Scores in out/x."
    )
    decision = PromotionDecision(False, "AUC below the champion's", "3", "2", "cdnow-churn")
    assert promotion_description(decision, "cdnow_master") == (
        "Promotion gate for cdnow-churn (data set cdnow_master): challenger version 3 refused "
        "against champion version 2. AUC below the champion's."
    )
    first = PromotionDecision(True, "", "1", None, "cdnow-clv")
    assert promotion_description(first, "cdnow_master").endswith(
        "challenger version 1 accepted against no champion."
    )


def test_every_tracked_run_starts_with_a_description(mlflow_tmp) -> None:
    cfg = load_config(CONFIG)
    with tracking.tracked_run(cfg, "report") as run:
        pass
    assert _description(run.info.run_id) == (
        "report of config cdnow-sample on data set cdnow_sample."
    )


# ------------------------------------------------------------------------------ the jobs


@pytest.mark.slow
def test_job_runs_record_inputs_descriptions_and_shap_plots(mlflow_tmp, tmp_path: Path) -> None:
    from retain.jobs.promote import run_promotion
    from retain.jobs.score import score
    from retain.jobs.train_churn import train_churn
    from retain.jobs.train_clv import train_clv

    cfg = load_config(CONFIG, {**FAST, "scoring.output_dir": str(tmp_path / "out")})
    tx_name = f"{cfg.name}.transactions"

    clv = train_clv(cfg)
    clv_inputs = _inputs(clv.run_id)
    assert set(clv_inputs) == {tx_name}  # the CDNOW sample has no events or customers
    dataset, tags = clv_inputs[tx_name]
    assert tags["mlflow.data.context"] == tracking.TRAINING
    assert tags["rows_in"] == tags["rows_used"] == "6919" and tags["rows_rejected"] == "0"
    assert tags["as_of"] == "1998-06-30"
    assert dataset.source_type == "code"
    assert json.loads(dataset.source)["tags"]["retain.source"] == "cdnow_sample"
    assert json.loads(dataset.profile)["num_rows"] == 6919
    schema = {c["name"]: c["type"] for c in json.loads(dataset.schema)["mlflow_colspec"]}
    assert schema == {
        "customer_id": "string",
        "timestamp": "datetime",
        "amount": "double",
        "quantity": "double",
    }
    run_metrics = tracking.client().get_run(clv.run_id).data.metrics
    assert run_metrics["input_transactions_rows_in"] == 6919  # counts by reason as metrics
    assert (
        run_metrics["input_transactions_rows_used"]
        + run_metrics["input_transactions_rows_rejected"]
        == run_metrics["input_transactions_rows_in"]
    )
    text = _description(clv.run_id)
    assert text.startswith(
        "CLV model bgnbd + gamma_gamma fitted on cdnow_sample (6,919 transactions, 2,357 "
        "customers) up to 1998-06-30, selected on a backtest calibrated to 1997-09-30; "
        "holdout MAE "
    )

    # the same data gives the same digest; other data (an earlier as-of date) another one
    again = train_clv(cfg)
    assert _inputs(again.run_id)[tx_name][0].digest == dataset.digest
    earlier = load_config(CONFIG, {**FAST, "clv.holdout_end": "1998-03-31"})
    other = _inputs(train_clv(earlier).run_id)[tx_name]
    assert other[1]["as_of"] == "1998-03-31" and int(other[1]["rows_used"]) < 6919
    assert other[0].digest != dataset.digest

    churn = train_churn(cfg)
    churn_inputs = _inputs(churn.run_id)
    assert set(churn_inputs) == {tx_name}
    assert churn_inputs[tx_name][1]["mlflow.data.context"] == tracking.TRAINING
    assert churn_inputs[tx_name][0].digest == dataset.digest  # observed until = holdout end
    auc = churn.metrics[names.TEST_ROC_AUC]
    assert _description(churn.run_id) == (
        "Churn model trained on cdnow_sample (6,919 transactions, 2,357 customers) with cutoffs "
        f"1997-03-31..1997-12-29, horizon 182 days; test AUC {auc:.2f} vs best baseline "
        f"{churn.metrics[names.baseline_metric(churn.best_baseline, names.ROC_AUC)]:.2f} "
        f"({churn.best_baseline})."
    )
    plots = set(tracking.list_artifacts(churn.run_id, "plots"))
    assert {names.PLOT_SHAP_BAR, names.PLOT_SHAP_BEESWARM} <= plots
    for plot in (names.PLOT_SHAP_BAR, names.PLOT_SHAP_BEESWARM):
        png = tracking.download_artifact(churn.run_id, plot, tmp_path / "dl").read_bytes()
        assert png.startswith(b"\x89PNG") and len(png) > 10_000

    decision = run_promotion(cfg, "churn")
    assert _description(decision.run_id).startswith(
        f"Promotion gate for {cfg.name}-churn (data set cdnow_sample): challenger version 1 "
        "accepted against no champion."
    )

    result = score(cfg, model_version="challenger", clv_version="challenger")
    scored, tags = _inputs(result.run_id)[tx_name]
    assert tags["mlflow.data.context"] == tracking.SCORING
    assert scored.digest == dataset.digest and tags["as_of"] == "1998-06-30"
    assert _description(result.run_id).startswith(
        "Scored 2,357 customers of cdnow_sample (6,919 transactions, 2,357 customers) as of "
        "1998-06-30 with CLV version 3 and churn version 1; 0 customers rejected."
    )
