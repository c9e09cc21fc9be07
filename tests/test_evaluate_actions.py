"""`retain evaluate-actions`, and a planted treatment effect measured back within its interval."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from retain.cli import EXIT_DATA, app
from retain.config import load_policy
from retain.evaluation.actions import compare_groups, contacted
from retain.io import owned_directory, write_json_atomic, write_table_atomic
from retain.names import (
    EVALUATION_BY_ACTION_CSV,
    EVALUATION_FILE,
    EVALUATION_KIND,
    MANIFEST_FILE,
    PROPOSED_POLICY_FILE,
    PROPOSED_SAVE_RATES_CSV,
    SCORES_FILE,
    SCORES_KIND,
    WRITTEN_BY,
)
from retain.outcomes import horizon_outcomes
from retain.synthetic import generate_synthetic, true_churn_probability
from retain.synthetic_effects import SAVED_COLUMN, plant_save_effect

POLICY = Path(__file__).resolve().parents[1] / "configs" / "policy.yaml"
START, END = "2022-01-01", "2023-12-31"
D, H = "2023-06-30", 90
runner = CliRunner()


def _assign(ids: pd.Index, seed: int, control_share: float, actions: list[str]) -> pd.DataFrame:
    """Actions and groups drawn at random, as a scoring with control groups gives them."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "customer_id": ids.astype(str),
            "retention_action": np.asarray(actions)[rng.integers(0, len(actions), len(ids))],
            "treatment_group": np.where(
                rng.random(len(ids)) < control_share, "control", "treatment"
            ),
        }
    )


# ------------------------------------------------------------------ planted effect recovery


def test_a_planted_save_rate_is_recovered_within_its_interval():
    data = generate_synthetic(24_000, START, END, seed=3, with_events=False)
    scored = data.truth.index[data.truth["first_purchase"] < pd.Timestamp("2023-07-01")]
    planted = {"call": 0.30, "offer": 0.10, "nudge": 0.0}
    groups = _assign(scored, 1, 0.5, list(planted))
    treated = data_with_effect = plant_save_effect(data, groups, D, H, planted, seed=5)

    # only treated customers who bought nothing in the window gained a purchase
    saved = treated.truth[SAVED_COLUMN].dropna()
    before = horizon_outcomes(data.transactions, groups["customer_id"], D, H, END)
    by_id = groups.set_index("customer_id")
    assert (by_id.loc[saved.index, "treatment_group"] == "treatment").all()
    assert not before.loc[saved.index, "purchased"].any()
    assert set(by_id.loc[saved.index, "retention_action"]) == {"call", "offer"}
    assert len(data_with_effect.transactions) == len(data.transactions) + len(saved)

    scores = groups.assign(
        action_channel="email", action_cost=1.0, lifecycle_stage="at_risk", value_tier="low"
    )
    after = horizon_outcomes(treated.transactions, scores["customer_id"], D, H, END)
    table = compare_groups(contacted(scores, after), ["retention_action"]).set_index(
        "retention_action"
    )
    for action, rate in planted.items():
        row = table.loc[action]
        assert row["save_rate_low"] <= rate <= row["save_rate_high"], (action, row["save_rate"])
        assert row["save_rate_high"] - row["save_rate_low"] < 0.1  # informative, not vague
    nudge = table.loc["nudge"]
    assert nudge["retention_uplift_low"] <= 0.0 <= nudge["retention_uplift_high"]
    assert table.loc["call", "revenue_uplift_low"] > 0  # saved customers spend
    # reproducible: the same seed plants the same purchases
    again = plant_save_effect(data, groups, D, H, planted, seed=5)
    pd.testing.assert_frame_equal(again.transactions, treated.transactions)


def test_save_rate_intervals_cover_the_planted_rate_as_often_as_they_claim():
    # 20 random assignments x 3 actions = 60 intervals at 95%: fewer than 50 covering the
    # planted rate has probability < 1e-3 if the intervals are honest
    data = generate_synthetic(9000, START, END, seed=8, with_events=False)
    scored = data.truth.index[data.truth["first_purchase"] < pd.Timestamp("2023-07-01")]
    planted = {"call": 0.25, "offer": 0.10, "nudge": 0.0}
    covered = total = 0
    for rep in range(20):
        groups = _assign(scored, 100 + rep, 0.5, list(planted))
        treated = plant_save_effect(data, groups, D, H, planted, seed=200 + rep)
        scores = groups.assign(
            action_channel="email", action_cost=1.0, lifecycle_stage="at_risk", value_tier="low"
        )
        after = horizon_outcomes(treated.transactions, scores["customer_id"], D, H, END)
        table = compare_groups(contacted(scores, after), ["retention_action"])
        for row in table.itertuples():
            covered += row.save_rate_low <= planted[row.retention_action] <= row.save_rate_high
            total += 1
    assert total == 60
    assert covered >= 50, covered


# --------------------------------------------------------------------------- the command


def _scores_folder(root: Path, name: str, day: str, scores: pd.DataFrame) -> None:
    folder = root / name / SCORES_KIND / f"as_of={day}"
    manifest = {
        "as_of": day,
        "config_name": name,
        "models": {
            "clv": {"version": "1"},
            "churn": {"version": "1", "horizon_days": H},
        },
    }
    with owned_directory(folder, SCORES_KIND, {"as_of": day, "config_name": name}) as tmp:
        write_table_atomic(scores, tmp / SCORES_FILE)
        write_json_atomic(manifest, tmp / MANIFEST_FILE)


@pytest.fixture(scope="module")
def loop(tmp_path_factory) -> dict[str, object]:
    """Synthetic customers scored at D with control groups, a planted effect, files on disk."""
    tmp = tmp_path_factory.mktemp("loop")
    data = generate_synthetic(6000, START, END, seed=11, with_events=False)
    policy = load_policy(POLICY)
    prob = true_churn_probability(data.truth, D, H)
    rng = np.random.default_rng(2)
    tiers = np.asarray(["vip", "high", "low"])[rng.integers(0, 3, len(prob))]
    stages = np.where(prob.to_numpy() > 0.999, "lost", "at_risk")
    rules = [policy.resolve(s, t) for s, t in zip(stages, tiers, strict=True)]
    channel = np.asarray([r.channel for r in rules])
    group = np.where(rng.random(len(prob)) < 0.3, "control", "treatment")
    group = np.where(channel == "none", None, group)
    scores = pd.DataFrame(
        {
            "customer_id": prob.index.astype(str),
            "as_of": pd.Timestamp(D),
            "lifecycle_stage": stages,
            "value_tier": tiers,
            "retention_action": [r.action for r in rules],
            "action_channel": channel,
            "action_cost": [r.unit_cost for r in rules],
            "action_save_rate": [r.save_rate for r in rules],
            "clv": 100.0,
            "churn_probability": prob.to_numpy(),
            "expected_value_saved": 0.0,
            "treatment_group": pd.array(group, dtype="string"),
            "contact": group == "treatment",
        }
    )
    planted = {"personal call": 0.4, "retention offer": 0.2, "retention reminder": 0.1}
    treated = plant_save_effect(data, scores, D, H, planted, seed=4)
    tx_path = tmp / "transactions.parquet"
    treated.transactions.to_parquet(tx_path, index=False)
    out = tmp / "out"
    config = {
        "name": "loop",
        "data": {
            "source": "files",
            "transactions": {"path": str(tx_path)},
            "observed_until": END,
        },
        "clv": {"calibration_end": "2023-03-31", "holdout_end": END},
        "churn": {
            "horizon_days": H,
            "train_cutoffs": ["2023-01-31"],
            "validation_cutoff": "2023-03-31",
            "test_cutoff": "2023-06-30",
        },
        "scoring": {"as_of": D, "output_dir": str(out)},
        "evaluation": {"min_group_size": 30},
        "policy": str(POLICY),
    }
    path = tmp / "loop.yaml"
    path.write_text(yaml.safe_dump(config))
    _scores_folder(out, "loop", D, scores)
    _scores_folder(out, "loop", "2023-05-31", scores.drop(columns=["treatment_group", "contact"]))
    return {"config": path, "out": out, "planted": planted}


def test_evaluate_actions_end_to_end(loop, mlflow_tmp):
    from retain import tracking

    args = ["evaluate-actions", "--config", str(loop["config"]), "--scores-date", D]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert result.output.startswith("evaluate-actions: scores as of 2023-06-30")
    folder = loop["out"] / "loop" / EVALUATION_KIND / f"as_of={D}"
    summary = json.loads((folder / EVALUATION_FILE).read_text())
    assert summary["window"] == {"first_day": "2023-07-01", "last_day": "2023-09-28"}
    assert summary["customers"]["control"] > 0 and summary["customers"]["treatment"] > 0
    assert summary["realised"]["not_contacted_roc_auc"] > 0.7  # oracle probabilities

    proposals = pd.read_csv(folder / PROPOSED_SAVE_RATES_CSV).set_index("action")
    for action, rate in loop["planted"].items():
        row = proposals.loc[action]
        assert row["status"] == "measured", action
        assert row["save_rate_low"] <= rate <= row["save_rate_high"], action
    adopted = load_policy(folder / PROPOSED_POLICY_FILE)
    assert adopted.resolve("at_risk", "vip").save_rate == pytest.approx(
        proposals.loc["personal call", "proposed_save_rate"]
    )
    by_action = pd.read_csv(folder / EVALUATION_BY_ACTION_CSV)
    assert "no contact" not in set(by_action["retention_action"])

    run = tracking.client().get_run(result.output.strip().rsplit("run ", 1)[1])
    assert run.data.tags["step"] == "evaluate_actions"
    assert "overall_retention_uplift" in run.data.metrics
    logged = set(tracking.list_artifacts(run.info.run_id, "evaluation"))
    assert set(WRITTEN_BY["evaluate_actions"]) <= logged

    # a second run replaces the folder (retain owns it)
    assert runner.invoke(app, args).exit_code == 0


def test_evaluate_actions_refuses_before_the_horizon_has_passed(loop, mlflow_tmp):
    args = ["evaluate-actions", "--config", str(loop["config"]), "--scores-date", D]
    result = runner.invoke(app, [*args, "--until", "2023-08-31"])
    assert result.exit_code == EXIT_DATA
    assert "the horizon of 2023-06-30 ends on 2023-09-28; data reaches 2023-08-31" in (
        result.output
    )
    assert len(result.output.strip().splitlines()) == 1


def test_evaluate_actions_refuses_scores_without_control_groups(loop, mlflow_tmp):
    args = ["evaluate-actions", "--config", str(loop["config"]), "--scores-date", "2023-05-31"]
    result = runner.invoke(app, args)
    assert result.exit_code == EXIT_DATA
    assert "these scores were written without control groups" in result.output


def test_the_report_section_shows_the_latest_evaluation(loop, mlflow_tmp):
    from retain.jobs.evaluate_actions import latest_evaluation
    from retain.reporting.evaluation import evaluation_section
    from retain.reporting.html import Report

    args = ["evaluate-actions", "--config", str(loop["config"]), "--scores-date", D]
    assert runner.invoke(app, args).exit_code == 0
    assert latest_evaluation(loop["out"], "loop", "2023-06-29") is None  # only earlier dates
    found = latest_evaluation(loop["out"], "loop", "2023-12-31")
    assert found is not None
    summary, tables = found
    assert summary["scores_date"] == D
    rep = Report("r")
    evaluation_section(rep.section("Actions evaluated"), summary, tables, currency="EUR")
    page = rep.render()
    assert rep.n_images == 1  # the uplift chart
    assert "personal call (phone)" in page and "retention uplift" in page
    assert PROPOSED_POLICY_FILE in page


def test_evaluate_actions_has_help_and_needs_a_scores_date(tmp_path):
    result = runner.invoke(app, ["evaluate-actions", "--help"])
    assert result.exit_code == 0
    assert "--scores-date" in result.output and "--until" in result.output
    result = runner.invoke(app, ["evaluate-actions", "--config", str(tmp_path / "x.yaml")])
    assert result.exit_code == 2  # usage: --scores-date is required


def test_control_customers_contacted_inside_the_window_are_reported(loop, tmp_path, mlflow_tmp):
    import shutil

    # the same scores under another root, rotating groups (91 days), and later scores of a
    # date inside the window in which 25 of D's control customers are to be contacted
    out = tmp_path / "out"
    shutil.copytree(loop["out"] / "loop" / SCORES_KIND, out / "loop" / SCORES_KIND)
    scores = pd.read_parquet(out / "loop" / SCORES_KIND / f"as_of={D}" / SCORES_FILE)
    control = scores.loc[scores["treatment_group"] == "control", "customer_id"]
    later = scores[["customer_id"]].assign(contact=False)
    later.loc[later["customer_id"].isin(control.iloc[:25]), "contact"] = True
    later.loc[later["customer_id"].isin(control.iloc[25:]), "contact"] = False
    treated = scores.loc[scores["treatment_group"] == "treatment", "customer_id"]
    later.loc[later["customer_id"].isin(treated), "contact"] = True  # not control: not counted
    _scores_folder(out, "loop", "2023-07-31", later)
    _scores_folder(out, "loop", "2023-12-31", later.assign(contact=True))  # after the window
    policy = yaml.safe_load(POLICY.read_text())
    policy["control"]["period_days"] = 91
    (tmp_path / "policy.yaml").write_text(yaml.safe_dump(policy))
    config = yaml.safe_load(Path(loop["config"]).read_text())
    config["scoring"]["output_dir"] = str(out)
    config["policy"] = str(tmp_path / "policy.yaml")
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(config))

    args = ["evaluate-actions", "--config", str(tmp_path / "c.yaml"), "--scores-date", D]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    folder = out / "loop" / EVALUATION_KIND / f"as_of={D}"
    groups = json.loads((folder / EVALUATION_FILE).read_text())["control_groups"]
    assert groups["control_contacted_later"] == 25
    assert groups["later_scores_dates"] == ["2023-07-31"]
    assert groups["rotations_in_window"] == ["2023-07-27"]  # day 215 x 91 since 1970-01-01
    assert result.output.count("WARNING") >= 2 and "redrawn on 2023-07-27" in result.output
    # the default permanent hold-out: no redraw, the later contacts still reported
    policy["control"]["period_days"] = None
    (tmp_path / "policy.yaml").write_text(yaml.safe_dump(policy))
    assert runner.invoke(app, args).exit_code == 0
    groups = json.loads((folder / EVALUATION_FILE).read_text())["control_groups"]
    assert groups["rotations_in_window"] == [] and groups["control_contacted_later"] == 25
