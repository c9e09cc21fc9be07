"""`retain export`: one channel's contacts, in priority order, within the budget, CRM-safe."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from retain.campaign import campaign_list
from retain.cli import EXIT_CONFIG, EXIT_OUTPUT, app
from retain.config import ConfigError, ExportConfig, load_config
from retain.io import output_folder, owned_directory, read_marker, write_table_atomic
from retain.names import EXPORT_KIND, SCORES_FILE, SCORES_KIND
from retain.policy import OVER_BUDGET

runner = CliRunner()
NAME = "export-test"
DAY = "1998-06-30"


def _scores(with_contact: bool = True) -> pd.DataFrame:
    rows = [
        # id, channel, action, priority, contact, offer
        ("c1", "email", "retention offer", 3, True, "15% off"),
        ("c2", "email", "retention offer", 1, True, "=HYPERLINK(\"http://x\")"),
        ("c3", "email", "retention offer", 2, False, "15% off"),  # control
        ("c4", "none", OVER_BUDGET, None, False, ""),  # over budget
        ("c5", "sms", "reactivation offer", 4, True, "20% off"),
        ("c6", "email", "first-purchase nudge", None, True, "first-order discount"),
        ("c7", "none", "no contact", None, False, ""),
    ]
    ids, channel, action, prio, contact, offer = zip(*rows, strict=True)
    frame = pd.DataFrame(
        {
            "customer_id": pd.array(ids, dtype="string"),
            "action_priority": pd.array(prio, dtype="Int64"),
            "action_channel": pd.array(channel, dtype="string"),
            "retention_action": pd.array(action, dtype="string"),
            "action_offer": pd.array(offer, dtype="string"),
            "reason_1": pd.array(["recency up"] * len(ids), dtype="string"),
            "expected_value_saved": [5.0, 9.0, 7.0, 0.0, 3.0, float("nan"), 0.0],
            "clv": [50.0, 90.0, 70.0, 10.0, 30.0, float("nan"), 1.0],
            "churn_probability": [0.6] * len(ids),
            "value_tier": pd.array(["high"] * len(ids), dtype="string"),
            "lifecycle_stage": pd.array(["at_risk"] * len(ids), dtype="string"),
            "treatment_group": pd.array(
                ["treatment", "treatment", "control", None, "treatment", "treatment", None],
                dtype="string",
            ),
            "contact": list(contact),
        }
    )
    return frame if with_contact else frame.drop(columns=["treatment_group", "contact"])


def test_order_budget_and_control_respected() -> None:
    out = campaign_list(_scores(), "email", dt.date(1998, 6, 30), ExportConfig())
    assert out["customer_id"].tolist() == ["c2", "c1", "c6"]  # c3 control, c4 over budget
    assert out["priority"].tolist()[:2] == [1, 3] and pd.isna(out["priority"].iloc[2])
    assert (out["due_date"] == "1998-07-14").all()
    sms = campaign_list(_scores(), "sms", dt.date(1998, 6, 30), ExportConfig(due_days=0))
    assert sms["customer_id"].tolist() == ["c5"] and sms["due_date"].iloc[0] == "1998-06-30"


def test_scores_without_control_groups_list_the_budgets_choice() -> None:
    out = campaign_list(_scores(False), "email", dt.date(1998, 6, 30), ExportConfig())
    assert out["customer_id"].tolist() == ["c2", "c3", "c1", "c6"]


def test_renamed_columns_are_validated() -> None:
    settings = ExportConfig(columns={"customer_id": "Contact ID", "due_date": "Due"})
    out = campaign_list(_scores(), "email", dt.date(1998, 6, 30), settings)
    assert out.columns[1] == "Contact ID" and "Due" in out.columns
    with pytest.raises(ValueError, match="unknown columns"):
        ExportConfig(columns={"email_address": "Email"})
    with pytest.raises(ValueError, match="repeat"):
        ExportConfig(columns={"customer_id": "clv"})


def _config(tmp_path: Path, export: dict | None = None, file: str = "run.yaml") -> Path:
    path = tmp_path / file
    cfg = {
        "name": NAME,
        "data": {"source": "cdnow_sample"},
        "clv": {"calibration_end": "1997-09-30", "holdout_end": "1998-06-30"},
        "scoring": {"as_of": DAY, "output_dir": str(tmp_path / "out")},
        "policy": str(Path(__file__).resolve().parent.parent / "configs" / "policy.yaml"),
        **({"export": export} if export else {}),
    }
    path.write_text(yaml.safe_dump(cfg))
    return path


def _write_scores(root: Path) -> None:
    folder = output_folder(root, NAME, SCORES_KIND, DAY)
    with owned_directory(folder, SCORES_KIND, {"as_of": DAY}) as tmp:
        write_table_atomic(_scores(), tmp / SCORES_FILE)


def test_cli_writes_a_safe_csv_per_channel(tmp_path) -> None:
    cfg = _config(tmp_path, {"columns": {"customer_id": "Contact ID"}, "due_days": 7})
    _write_scores(tmp_path / "out")
    result = runner.invoke(app, ["export", "-c", str(cfg), "--channel", "email"])
    assert result.exit_code == 0, result.output
    assert len(result.output.strip().splitlines()) == 1
    folder = output_folder(tmp_path / "out", NAME, EXPORT_KIND, DAY)
    raw = (folder / "email.csv").read_bytes()
    assert b"\r\n" in raw
    table = pd.read_csv(folder / "email.csv", dtype=str)
    assert table["Contact ID"].tolist() == ["c2", "c1", "c6"]
    assert table["action_offer"].iloc[0].startswith("'=")  # neutralised, not a formula
    assert (table["due_date"] == "1998-07-07").all()
    # a second channel joins the folder; the first list stays
    assert runner.invoke(app, ["export", "-c", str(cfg), "--channel", "sms"]).exit_code == 0
    assert (folder / "email.csv").read_bytes() == raw
    assert set(read_marker(folder)["files"]) == {"email.csv", "sms.csv"}


def test_cli_errors(tmp_path) -> None:
    cfg = str(_config(tmp_path))
    bad = runner.invoke(app, ["export", "-c", cfg, "--channel", "fax"])
    assert bad.exit_code == EXIT_CONFIG and "--channel must be one of" in bad.output
    none = runner.invoke(app, ["export", "-c", cfg, "--channel", "none"])
    assert none.exit_code == EXIT_CONFIG
    missing = runner.invoke(app, ["export", "-c", cfg, "--channel", "email"])
    assert missing.exit_code == EXIT_OUTPUT and f"retain score --as-of {DAY}" in missing.output
    wrong_date = runner.invoke(app, ["export", "-c", cfg, "--channel", "email", "--date", "x"])
    assert wrong_date.exit_code == EXIT_CONFIG
    with pytest.raises(ConfigError, match="export.columns"):
        load_config(_config(tmp_path, {"columns": {"nope": "N"}}, "bad.yaml"))
    # a folder of the user's files is never replaced
    _write_scores(tmp_path / "out")
    folder = output_folder(tmp_path / "out", NAME, EXPORT_KIND, DAY)
    folder.mkdir(parents=True)
    (folder / "mine.csv").write_text("x")
    refused = runner.invoke(app, ["export", "-c", cfg, "--channel", "email"])
    assert refused.exit_code == EXIT_OUTPUT and (folder / "mine.csv").read_text() == "x"


def test_export_has_help():
    result = runner.invoke(app, ["export", "--help"])
    assert result.exit_code == 0 and "--channel" in result.output and "--config" in result.output


def test_an_action_named_like_over_budget_is_still_listed() -> None:
    scores = _scores(False)
    scores["retention_action"] = scores["retention_action"].astype(object)
    scores.loc[scores["customer_id"] == "c1", "retention_action"] = "call unless over budget"
    out = campaign_list(scores, "email", "1998-06-30", ExportConfig())
    assert "c1" in out["customer_id"].tolist()


def test_concurrent_exports_of_two_channels_keep_both_lists(tmp_path, monkeypatch) -> None:
    import threading

    from retain.jobs import export as export_job

    cfg = load_config(_config(tmp_path))
    _write_scores(tmp_path / "out")
    email_writing, sms_started = threading.Event(), threading.Event()
    real_write = export_job.write_table_atomic

    def slow_write(table, path):  # the email export is still writing when the sms one starts
        if path.name == "email.csv":
            email_writing.set()
            sms_started.wait(5)
            threading.Event().wait(0.3)
        return real_write(table, path)

    monkeypatch.setattr(export_job, "write_table_atomic", slow_write)
    errors: list[BaseException] = []

    def run(channel: str) -> None:
        try:
            export_job.export_channel(cfg, channel)
        except BaseException as exc:  # reported below
            errors.append(exc)

    first = threading.Thread(target=run, args=("email",))
    first.start()
    assert email_writing.wait(10)
    second = threading.Thread(target=run, args=("sms",))
    second.start()
    sms_started.set()
    first.join(20)
    second.join(20)
    assert not errors
    folder = output_folder(tmp_path / "out", NAME, EXPORT_KIND, DAY)
    assert set(read_marker(folder)["files"]) == {"email.csv", "sms.csv"}
    assert (folder / "email.csv").is_file() and (folder / "sms.csv").is_file()
