"""The command-line contract: --help everywhere, and exit codes that mean something."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from retain.cli import EXIT_CONFIG, EXIT_DATA, EXIT_MODEL, EXIT_OUTPUT, app

COMMANDS = ("features", "train-clv", "train-churn", "promote", "score", "report", "rollback")
runner = CliRunner()


def _config(tmp_path: Path, **data_section: object) -> Path:
    path = tmp_path / "run.yaml"
    cfg = {
        "name": "cli-test",
        "data": {"source": "cdnow_sample", **data_section},
        "clv": {"calibration_end": "1997-09-30", "holdout_end": "1998-06-30"},
        "scoring": {"as_of": "1998-06-30", "output_dir": str(tmp_path / "out")},
        "policy": str(Path(__file__).resolve().parent.parent / "configs" / "policy.yaml"),
    }
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_every_command_has_help():
    assert runner.invoke(app, ["--help"]).exit_code == 0
    for command in COMMANDS:
        result = runner.invoke(app, [command, "--help"])
        assert result.exit_code == 0, command
        assert "--config" in result.output


@pytest.mark.parametrize("command", COMMANDS)
def test_missing_config_exits_2(command, tmp_path):
    args = [command, "--config", str(tmp_path / "nope.yaml")]
    if command in ("promote", "rollback"):
        args += ["--model", "churn"]
    result = runner.invoke(app, args)
    assert result.exit_code == EXIT_CONFIG
    assert "config file not found" in result.output


def test_unknown_model_name_exits_2(tmp_path):
    result = runner.invoke(app, ["promote", "--config", str(_config(tmp_path)), "-m", "nope"])
    assert result.exit_code == EXIT_CONFIG
    assert "--model must be churn, clv or value" in result.output


def test_bad_input_file_exits_3_naming_the_column(tmp_path):
    csv = tmp_path / "tx.csv"
    pd.DataFrame({"client": ["a", "b"], "when": ["2024-01-01", "2024-01-02"]}).to_csv(
        csv, index=False
    )
    path = tmp_path / "run.yaml"
    cfg = yaml.safe_load(_config(tmp_path).read_text())
    cfg["data"] = {
        "source": "files",
        "observed_until": "2024-12-31",
        "transactions": {
            "path": str(csv),
            "columns": {"customer_id": "client", "timestamp": "when"},
        },
    }
    path.write_text(yaml.safe_dump(cfg))
    result = runner.invoke(
        app, ["features", "--config", str(path), "--output", str(tmp_path / "f")]
    )
    assert result.exit_code == EXIT_DATA
    assert "amount" in result.output
    assert not (tmp_path / "f").exists()


def test_features_writes_every_customer(tmp_path):
    out = tmp_path / "f"
    result = runner.invoke(
        app,
        [
            "features",
            "--config",
            str(_config(tmp_path)),
            "--as-of",
            "1997-09-30",
            "--output",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    folder = out / "cli-test" / "features" / "as_of=1997-09-30"
    table = pd.read_parquet(folder / "features.parquet")
    assert len(table) == 2357 and table["customer_id"].is_unique
    assert (folder / "rejects.parquet").exists()


def test_scoring_without_a_champion_exits_4(tmp_path, mlflow_tmp):
    result = runner.invoke(app, ["score", "--config", str(_config(tmp_path))])
    assert result.exit_code == EXIT_MODEL, result.output
    assert "--clv-version challenger" in result.output  # the next step is named
    assert not (tmp_path / "out").exists()


def test_rollback_without_previous_champion_exits_4(tmp_path, mlflow_tmp):
    result = runner.invoke(app, ["rollback", "--config", str(_config(tmp_path)), "-m", "clv"])
    assert result.exit_code == EXIT_MODEL, result.output
    assert "previous_champion" in result.output


@pytest.mark.parametrize("command", ["features", "score", "report"])
@pytest.mark.parametrize(
    "day",
    ["1998-13-45", "06/05/1998", "1998-6-5", "19980605", "tomorrow", "1600-01-01", "2999-01-01"],
)
def test_dates_on_the_command_line_are_strict_iso(tmp_path, command, day):
    result = runner.invoke(app, [command, "--config", str(_config(tmp_path)), "--as-of", day])
    assert result.exit_code == EXIT_CONFIG, result.output
    assert "YYYY-MM-DD" in result.output or "outside the supported days" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "out").exists()


def test_an_output_root_that_is_a_file_exits_6_before_any_work(tmp_path, mlflow_tmp):
    target = tmp_path / "out"
    target.write_bytes(b"the user's file")
    for command in ("score", "features", "report"):
        result = runner.invoke(app, [command, "--config", str(_config(tmp_path))])
        assert result.exit_code == EXIT_OUTPUT, (command, result.output)
        assert "is a file" in result.output
        assert len(result.output.strip().splitlines()) == 1  # one line
    assert target.read_bytes() == b"the user's file"


def test_an_output_folder_of_user_files_is_refused_with_exit_6(tmp_path):
    folder = tmp_path / "out" / "cli-test" / "features" / "as_of=1997-09-30"
    folder.mkdir(parents=True)
    (folder / "orders.csv").write_text("mine")
    args = ["features", "--config", str(_config(tmp_path)), "--as-of", "1997-09-30"]
    result = runner.invoke(app, args)
    assert result.exit_code == EXIT_OUTPUT, result.output
    assert "orders.csv" in result.output
    assert (folder / "orders.csv").read_text() == "mine"


def test_report_without_scores_for_the_date_exits_6_naming_the_fix(tmp_path, mlflow_tmp):
    args = ["report", "--config", str(_config(tmp_path)), "--as-of", "1998-01-31"]
    result = runner.invoke(app, args)
    assert result.exit_code == EXIT_OUTPUT, result.output
    assert "retain score --as-of 1998-01-31" in result.output


def test_debug_shows_the_traceback(tmp_path):
    (tmp_path / "out").write_text("file")
    args = ["features", "--config", str(_config(tmp_path)), "--as-of", "1997-09-30"]
    quiet = runner.invoke(app, args)
    loud = runner.invoke(app, ["--debug", *args])
    assert quiet.exit_code == loud.exit_code == EXIT_OUTPUT
    assert "Traceback" not in quiet.output
    assert "Traceback" in loud.output


def test_the_configured_segment_rules_are_the_ones_used(tmp_path):
    root = Path(__file__).resolve().parent.parent
    custom = tmp_path / "my_segments.yaml"
    custom.write_text(
        (root / "configs" / "segments.yaml").read_text().replace("Champions", "Stars")
    )
    cfg = yaml.safe_load(_config(tmp_path).read_text())
    cfg["segments"] = str(custom)
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(cfg))
    args = ["features", "--config", str(path), "--as-of", "1997-09-30", "-o", str(tmp_path / "f")]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    folder = tmp_path / "f" / "cli-test" / "features" / "as_of=1997-09-30"
    segments = set(pd.read_parquet(folder / "features.parquet")["rfm_segment"].astype(str))
    assert "Stars" in segments and "Champions" not in segments


def test_a_table_with_many_rejected_rows_warns_in_the_summary_line(tmp_path):
    csv = tmp_path / "tx.csv"
    rows = [("a", "2024-01-01", "10"), ("b", "2024-02-01", "12")] + [("c", "not a date", "1")] * 3
    pd.DataFrame(rows, columns=["customer_id", "timestamp", "amount"]).to_csv(csv, index=False)
    cfg = yaml.safe_load(_config(tmp_path).read_text())
    cfg["data"] = {
        "source": "files",
        "observed_until": "2024-12-31",
        "transactions": {"path": str(csv)},
    }
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(cfg))
    args = ["features", "--config", str(path), "--as-of", "2024-06-30", "-o", str(tmp_path / "f")]
    result = runner.invoke(app, args, env={"COLUMNS": "400"})
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "WARNING transactions: 60.0% of rows rejected" in lines[0]
    assert "timestamp_unparseable" in lines[0]
