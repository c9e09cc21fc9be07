"""``retain init`` end to end on a small Online-Retail-shaped file: inspect, write, load, run."""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from retain.cli import app
from retain.config import load_config
from retain.jobs.init import init_config, sniff_csv


def write_online_retail(path: Path, rows: int = 2000, seed: int = 0) -> Path:
    """An "Online Retail" export: ``12/1/2010 8:26`` dates over 12 months, CustomerID written
    ``17850.0`` or blank, Quantity x UnitPrice, cancellations ``C...`` with negative quantity."""
    rng = np.random.default_rng(seed)
    start = np.datetime64("2010-12-01T08:00")
    minutes = np.sort(rng.integers(0, 373 * 24 * 60, rows))
    customers = rng.integers(12000, 12150, rows)
    with path.open("w", newline="", encoding="utf-8") as handle:
        out = csv.writer(handle)
        out.writerow(
            [
                "InvoiceNo",
                "StockCode",
                "Description",
                "Quantity",
                "InvoiceDate",
                "UnitPrice",
                "CustomerID",
                "Country",
            ]
        )
        invoice = 536365
        for i in range(rows):
            when = (start + np.timedelta64(int(minutes[i]), "m")).astype(object)
            stamp = f"{when.month}/{when.day}/{when.year} {when.hour}:{when.minute:02d}"
            cancel = rng.random() < 0.03
            quantity = int(rng.integers(1, 13)) * (-1 if cancel else 1)
            customer = "" if rng.random() < 0.1 else f"{customers[i]}.0"
            invoice += int(rng.random() < 0.5)
            number = f"C{invoice + 900000}" if cancel else str(invoice)
            item = f"{rng.integers(20000, 23000)}"
            price = f"{rng.choice([0.85, 1.25, 2.55, 3.39, 4.95]):.2f}"
            out.writerow(
                [
                    number,
                    item,
                    "WHITE HANGING HEART, T-LIGHT",
                    quantity,
                    stamp,
                    price,
                    customer,
                    "United Kingdom",
                ]
            )
    return path


@pytest.fixture()
def retail(tmp_path: Path) -> Path:
    return write_online_retail(tmp_path / "online_retail.csv")


def test_init_writes_a_config_that_loads_and_runs(
    retail: Path, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "configs" / "retail.yaml"
    runner = CliRunner()
    result = runner.invoke(app, ["init", str(retail), "--config", str(out)])
    assert result.exit_code == 0, result.output
    assert "init: wrote" in result.output
    assert "QUESTION" not in result.output

    cfg = load_config(out)
    tx = cfg.data.transactions
    assert tx is not None
    assert tx.columns["customer_id"] == "CustomerID"
    assert tx.columns["timestamp"] == "InvoiceDate"
    assert tx.columns["amount"] == "Quantity * UnitPrice"
    assert tx.columns["order_id"] == "InvoiceNo"
    assert tx.timestamp_format == "%m/%d/%Y %H:%M"
    assert cfg.data.id_normalisation == "integer_text"
    assert cfg.data.returns == "net_earlier"  # cancellations have invoices of their own
    assert cfg.data.observed_until is not None
    assert dt.date(2011, 12, 1) <= cfg.data.observed_until <= dt.date(2011, 12, 9)
    assert cfg.churn is not None and cfg.churn.horizon_days == 90
    assert cfg.scoring is not None and cfg.scoring.as_of == cfg.data.observed_until
    assert not [ln for ln in out.read_text().splitlines() if ln.lstrip().startswith("# QUESTION")]

    ran = runner.invoke(app, ["features", "--config", str(out)])
    assert ran.exit_code == 0, ran.output
    assert "features: wrote" in ran.output


def test_init_refuses_to_overwrite_without_force(retail: Path, tmp_path: Path) -> None:
    out = tmp_path / "retail.yaml"
    out.write_text("keep me\n")
    runner = CliRunner()
    refused = runner.invoke(app, ["init", str(retail), "--config", str(out)])
    assert refused.exit_code == 2
    assert out.read_text() == "keep me\n"
    forced = runner.invoke(app, ["init", str(retail), "--config", str(out), "--force"])
    assert forced.exit_code == 0, forced.output
    assert load_config(out).name == "online_retail"


def test_ambiguous_dates_become_a_question(tmp_path: Path) -> None:
    path = tmp_path / "orders.csv"
    lines = ["customer_id;ordered;total"]
    for i in range(400):
        month, day = i % 12 + 1, i % 12 + 1  # never a day above 12
        lines.append(f"{i % 40};{day:02d}/{month:02d}/{2020 + i // 200};{i % 7 + 1},50")
    path.write_text("\n".join(lines) + "\n", encoding="latin-1")
    assert sniff_csv(path).delimiter == ";"
    result = init_config(path, tmp_path / "orders.yaml")
    text = (tmp_path / "orders.yaml").read_text()
    assert "\n    # QUESTION:" in text and "day-first" in text
    assert result.questions
    cfg = load_config(tmp_path / "orders.yaml")
    tx = cfg.data.transactions
    assert tx is not None and tx.timestamp_format == "%m/%d/%Y"
    assert tx.csv.delimiter == ";" and tx.csv.decimal == ","
    assert tx.columns["amount"] == "total"


def test_a_latin1_byte_late_in_the_file_makes_it_latin1(tmp_path: Path) -> None:
    path = tmp_path / "late.csv"
    body = "".join(f"c{i},2020-01-{i % 28 + 1:02d},1.5\n" for i in range(5000))
    path.write_bytes(
        b"customer_id,timestamp,amount\n"
        + body.encode()
        + "c1,2020-02-01,2\xe9\n".encode("latin-1")
    )
    assert sniff_csv(path).encoding == "latin-1"
    assert sniff_csv(retail_path(tmp_path)).encoding == "utf-8"


def retail_path(folder: Path) -> Path:
    return write_online_retail(folder / "retail.csv", rows=50)


def test_thousands_separators_with_a_decimal_comma_become_a_question(tmp_path: Path) -> None:
    path = tmp_path / "orders.csv"
    lines = ["customer_id;ordered;total"]
    for i in range(400):
        total = f"1.{i % 900 + 100},50" if i % 4 == 0 else f"{i % 7 + 1},50"
        lines.append(f"c{i % 40};2020-{i % 12 + 1:02d}-{i % 28 + 1:02d};{total}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = init_config(path, tmp_path / "orders.yaml")
    text = (tmp_path / "orders.yaml").read_text()
    assert "between thousands" in text
    assert any("data.transactions.csv" in q for q in result.questions)
    assert load_config(tmp_path / "orders.yaml").data.transactions.csv.decimal == ","
