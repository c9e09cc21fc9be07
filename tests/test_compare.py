"""`retain compare`: the tables beside the scores, logged to MLflow, and its exit codes."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pandas as pd
import pytest
import yaml
from mlflow import MlflowClient
from typer.testing import CliRunner

from retain.cli import EXIT_CONFIG, EXIT_OUTPUT, app
from retain.io import output_folder, owned_directory, read_marker, write_table_atomic
from retain.jobs.compare import compare_folder, earlier_scores_date
from retain.names import (
    COMPARE_AT_RISK_CSV,
    COMPARE_FOLDER,
    COMPARE_KIND,
    COMPARE_STAGES_CSV,
    COMPARE_SUMMARY,
    COMPARE_TIERS_CSV,
    SCORES_FILE,
    SCORES_KIND,
)
from retain.transitions import ABSENT

runner = CliRunner()
NAME = "compare-test"


def _config(tmp_path: Path) -> Path:
    path = tmp_path / "run.yaml"
    cfg = {
        "name": NAME,
        "data": {"source": "cdnow_sample"},
        "clv": {"calibration_end": "1997-09-30", "holdout_end": "1998-06-30"},
        "scoring": {"as_of": "1998-06-30", "output_dir": str(tmp_path / "out")},
        "policy": str(Path(__file__).resolve().parent.parent / "configs" / "policy.yaml"),
    }
    path.write_text(yaml.safe_dump(cfg))
    return path


def _write_scores(root: Path, day: str, rows: list[tuple[str, str, str, float]]) -> None:
    ids, stages, tiers, clv = zip(*rows, strict=True)
    scores = pd.DataFrame(
        {
            "customer_id": pd.array(ids, dtype="string"),
            "as_of": pd.Timestamp(day),
            "lifecycle_stage": pd.array(stages, dtype="string"),
            "value_tier": pd.array(tiers, dtype="string"),
            "clv": list(clv),
        }
    )
    folder = output_folder(root, NAME, SCORES_KIND, day)
    with owned_directory(folder, SCORES_KIND, {"as_of": day}) as tmp:
        write_table_atomic(scores, tmp / SCORES_FILE)


@pytest.fixture
def history(tmp_path: Path) -> Path:
    root = tmp_path / "out"
    _write_scores(root, "1998-01-31", [("a", "at_risk", "high", 10.0), ("b", "active", "low", 2.0),
                                       ("c", "dormant", "low", 1.0)])  # fmt: skip
    _write_scores(root, "1998-03-31", [("a", "loyal", "vip", 30.0),
                                       ("c", "reactivated", "low", 3.0),
                                       ("d", "new", "medium", 5.0)])  # fmt: skip
    return root


def test_compare_writes_its_folder_and_logs_a_run(tmp_path, history, mlflow_tmp):
    args = ["compare", "-c", str(_config(tmp_path)), "--from", "1998-01-31", "--to", "1998-03-31"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert len(result.output.strip().splitlines()) == 1
    folder = compare_folder(history, NAME, dt.date(1998, 1, 31), dt.date(1998, 3, 31))
    assert folder.name == "from=1998-01-31_to=1998-03-31"
    assert read_marker(folder)["kind"] == COMPARE_KIND
    stages = pd.read_csv(folder / COMPARE_STAGES_CSV)
    cell = stages.set_index(["from_stage", "to_stage"])["customers"]
    assert cell[("at_risk", "loyal")] == 1 and cell[("active", ABSENT)] == 1
    assert cell[(ABSENT, "new")] == 1 and cell[("dormant", "reactivated")] == 1
    assert stages["customers"].sum() == 4  # a, b, c, d: none dropped
    assert pd.read_csv(folder / COMPARE_TIERS_CSV)["customers"].sum() == 4
    risk = pd.read_csv(folder / COMPARE_AT_RISK_CSV).set_index("outcome")["customers"]
    assert risk["saved"] == 1 and risk.sum() == 1
    summary = json.loads((folder / COMPARE_SUMMARY).read_text())
    assert summary["counts"]["new"] == 1 and summary["counts"]["reactivated"] == 1
    assert summary["counts"]["only_from"] == 1

    client = MlflowClient()
    runs = client.search_runs(
        [e.experiment_id for e in client.search_experiments()], "tags.step = 'compare'"
    )
    assert len(runs) == 1
    run = runs[0]
    assert run.data.metrics["compare_new"] == 1 and run.data.params["compare.from"] == "1998-01-31"
    logged = {a.path for a in client.list_artifacts(run.info.run_id, COMPARE_FOLDER)}
    assert f"{COMPARE_FOLDER}/{COMPARE_STAGES_CSV}" in logged

    # run again: retain replaces its own folder
    assert runner.invoke(app, args).exit_code == 0


def test_a_missing_or_damaged_date_exits_6(tmp_path, history, mlflow_tmp):
    cfg = str(_config(tmp_path))
    result = runner.invoke(
        app, ["compare", "-c", cfg, "--from", "1998-02-28", "--to", "1998-03-31"]
    )
    assert result.exit_code == EXIT_OUTPUT, result.output
    assert "retain score --as-of 1998-02-28" in result.output
    assert len(result.output.strip().splitlines()) == 1
    damaged = output_folder(history, NAME, SCORES_KIND, "1998-03-31") / SCORES_FILE
    damaged.write_bytes(b"not parquet")
    result = runner.invoke(
        app, ["compare", "-c", cfg, "--from", "1998-01-31", "--to", "1998-03-31"]
    )
    assert result.exit_code == EXIT_OUTPUT, result.output
    assert "damaged" in result.output


@pytest.mark.parametrize(
    ("start", "end"), [("1998-13-01", "1998-03-31"), ("1998-03-31", "31/01/1998"),
                       ("1998-03-31", "1998-01-31"), ("1998-03-31", "1998-03-31"),
                       ("", "1998-03-31")],
)  # fmt: skip
def test_bad_dates_exit_2(tmp_path, history, start, end):
    result = runner.invoke(app, ["compare", "-c", str(_config(tmp_path)), "--from", start,
                                 "--to", end])  # fmt: skip
    assert result.exit_code == EXIT_CONFIG, result.output
    assert not (history / NAME / COMPARE_KIND).exists()


def test_the_report_finds_the_latest_earlier_scores(history):
    assert earlier_scores_date(history, NAME, dt.date(1998, 3, 31)) == dt.date(1998, 1, 31)
    assert earlier_scores_date(history, NAME, dt.date(1998, 6, 30)) == dt.date(1998, 3, 31)
    assert earlier_scores_date(history, NAME, dt.date(1998, 1, 31)) is None
    # a folder retain did not write is not history
    (history / NAME / SCORES_KIND / "as_of=1998-05-31").mkdir()
    assert earlier_scores_date(history, NAME, dt.date(1998, 6, 30)) == dt.date(1998, 3, 31)


def test_compare_has_help():
    result = runner.invoke(app, ["compare", "--help"])
    assert result.exit_code == 0 and "--from" in result.output and "--to" in result.output
