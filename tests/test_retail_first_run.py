"""A new user's first run on a retail export, no hand edits: init, train, promote, score, report.

The file is shaped like the "Online Retail" export (``Quantity x UnitPrice``, ``12/1/2010 8:26``
dates, ids written ``17850.0`` and blanks, cancellations with invoices of their own) and made
from simulated customers (:mod:`retain.retail_export`).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from retain.cli import EXIT_PROMOTION, app
from retain.retail_export import write_online_retail

ENV = {"COLUMNS": "400"}


@pytest.mark.slow
def test_init_to_report_on_a_retail_export(tmp_path: Path, mlflow_tmp, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    data = write_online_retail(
        tmp_path / "online_retail.csv",
        n_customers=3000,
        start="2010-12-01",
        end="2011-12-09",
        seed=7,
    )
    config = tmp_path / "retail.yaml"
    runner = CliRunner()

    def run(*args: str) -> str:
        result = runner.invoke(app, list(args), env=ENV)
        assert result.exit_code == 0, (args, result.output)
        return result.output

    out = run("init", str(data), "--config", str(config))
    assert "QUESTION" not in out
    text = config.read_text()
    for chosen in ("Quantity * UnitPrice", "integer_text", "net_earlier", "%m/%d/%Y %H:%M"):
        assert chosen in text, chosen

    run("train-clv", "--config", str(config))
    run("train-churn", "--config", str(config))
    run("promote", "--config", str(config), "--model", "clv")
    churn = runner.invoke(app, ["promote", "--config", str(config), "--model", "churn"], env=ENV)
    if churn.exit_code == EXIT_PROMOTION:  # refused with no champion: the exact next step
        assert "--model-version challenger" in churn.output
        score_args = ["--model-version", "challenger"]
    else:
        assert churn.exit_code == 0, churn.output
        score_args = []
    out = run("score", "--config", str(config), *score_args)
    assert len(out.strip().splitlines()) == 1

    folders = list(tmp_path.glob("outputs/*/scores/as_of=*"))
    assert len(folders) == 1
    scores = pd.read_parquet(folders[0] / "scores.parquet")
    assert scores["customer_id"].is_unique
    # ids written 17850.0 are one customer, named 17850
    assert not scores["customer_id"].str.endswith(".0").any()
    raw = pd.read_csv(data, dtype=str, keep_default_na=False)
    known = {c[:-2] for c in raw["CustomerID"] if c}
    assert set(scores["customer_id"]) <= known
    report = run("report", "--config", str(config))
    assert "report.html" in report
