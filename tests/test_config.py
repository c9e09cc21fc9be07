"""Run configs: every shipped config loads; every kind of mistake gives one clear error."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from retain.cli import EXIT_CONFIG, app
from retain.config import ConfigError, load_config, load_policy, load_segments
from retain.datasets import load_cdnow
from retain.io import check_dates_against_data

CONFIGS = Path(__file__).resolve().parent.parent / "configs"
RUN_CONFIGS = ("cdnow.yaml", "cdnow_sample.yaml", "synthetic.yaml")


def _write(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _base() -> dict:
    return yaml.safe_load((CONFIGS / "cdnow_sample.yaml").read_text())


@pytest.mark.parametrize("name", RUN_CONFIGS)
def test_shipped_configs_load_with_their_policy_and_segments(name):
    cfg = load_config(CONFIGS / name)
    assert cfg.source_path == CONFIGS / name
    load_policy(cfg.policy_path)
    load_segments(cfg.segments_path)
    assert len(cfg.config_hash()) == 16


def test_missing_file_names_it(tmp_path):
    with pytest.raises(ConfigError, match=r"config file not found: .*nope\.yaml"):
        load_config(tmp_path / "nope.yaml")


def test_not_yaml_and_not_a_mapping(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(ConfigError, match="bad.yaml: not valid YAML"):
        load_config(bad)
    bad.write_text("- a list\n")
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_config(bad)


def test_unknown_key_is_named_with_the_file(tmp_path):
    data = _base()
    data["clv"]["purchase_modle"] = "bgnbd"
    path = _write(tmp_path, data)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(path) in str(err.value)
    assert "clv.purchase_modle: unknown key" in str(err.value)


def test_wrong_types_and_impossible_values_name_the_key(tmp_path):
    cases = {
        ("churn", "horizon_days", 0): "churn.horizon_days",
        ("churn", "horizon_days", "soon"): "churn.horizon_days",
        ("clv", "holdout_end", "1997-01-01"): "holdout_end",
        ("clv", "purchase_model", "magic"): "clv.purchase_model",
        ("clv", "discount_rate_monthly", 1.5): "clv.discount_rate_monthly",
        ("churn", "validation_cutoff", "1997-01-31"): "validation_cutoff",
        ("scoring", "chunk_size", -1): "scoring.chunk_size",
    }
    for (section, key, value), expected in cases.items():
        data = _base()
        data[section][key] = value
        with pytest.raises(ConfigError, match="invalid configuration") as err:
            load_config(_write(tmp_path, data))
        assert expected in str(err.value), (section, key, value, str(err.value))


def test_files_source_needs_its_tables_and_data_end(tmp_path):
    data = _base()
    data["data"] = {"source": "files"}
    with pytest.raises(ConfigError, match="transactions"):
        load_config(_write(tmp_path, data))


def test_overrides_replace_dotted_keys(tmp_path):
    cfg = load_config(CONFIGS / "cdnow.yaml", {"scoring.as_of": "1998-01-31", "seed": 3})
    assert str(cfg.scoring.as_of) == "1998-01-31" and cfg.seed == 3
    with pytest.raises(ConfigError, match="not a section"):
        load_config(CONFIGS / "cdnow.yaml", {"seed.x": 1})


def test_cutoff_before_the_data_starts_is_refused(tmp_path):
    data = _base()
    data["churn"]["train_cutoffs"] = ["1996-10-31", *data["churn"]["train_cutoffs"]]
    cfg = load_config(_write(tmp_path, data))
    tx = load_cdnow("sample")
    expected = r"churn.train_cutoffs\[0\] = 1996-10-31: before the data starts \(1997-01-01\)"
    with pytest.raises(ConfigError, match=expected):
        check_dates_against_data(cfg, tx, ("churn",))
    check_dates_against_data(cfg, tx, ("clv", "scoring"))  # those sections are fine
    shipped = load_config(CONFIGS / "cdnow_sample.yaml")
    check_dates_against_data(shipped, tx, ("clv", "churn", "scoring"))
    # the CLI refuses it before any training, as a config error
    result = CliRunner().invoke(app, ["train-churn", "--config", str(tmp_path / "run.yaml")])
    assert result.exit_code == EXIT_CONFIG
    assert "1996-10-31" in result.output


def _files_data(transactions: dict) -> dict:
    data = _base()
    data["data"] = {"source": "files", "observed_until": "1998-06-30", "transactions": transactions}
    return data


def test_csv_options_default_to_rfc4180_and_are_read_per_table(tmp_path):
    cfg = load_config(_write(tmp_path, _files_data({"path": "t.csv"})))
    csv = cfg.data.transactions.csv
    assert (csv.delimiter, csv.quote, csv.escape, csv.encoding, csv.decimal) == (
        ",",
        '"',
        '"',
        "utf-8",
        ".",
    )
    options = {"delimiter": "\t", "quote": "'", "escape": "\\", "encoding": "latin-1"}
    data = _files_data({"path": "t.csv", "csv": {**options, "decimal": ","}})
    csv = load_config(_write(tmp_path, data)).data.transactions.csv
    assert (csv.delimiter, csv.quote, csv.escape, csv.encoding, csv.decimal) == (
        "\t",
        "'",
        "\\",
        "latin-1",
        ",",
    )


def test_data_limits_have_defaults_and_are_checked(tmp_path):
    cfg = load_config(CONFIGS / "cdnow_sample.yaml")
    assert cfg.data.max_amount == 1e9
    assert cfg.data.max_id_length == 256
    assert {"NULL", "None", "nan", "N/A", "\\N", "NaN", "null", "NA", "#N/A", "<NA>"} <= set(
        cfg.data.null_values
    )
    for key, value in (("max_amount", 0), ("max_amount", float("inf")), ("max_id_length", 0)):
        data = _base()
        data["data"][key] = value
        with pytest.raises(ConfigError, match=f"data.{key}: "):
            load_config(_write(tmp_path, data))


@pytest.mark.parametrize(
    ("transactions", "key"),
    [
        ({"path": "t.csv", "delimiter": ";"}, "transactions: .*csv"),  # moved into csv
        ({"path": "t.csv", "csv": {"delimiter": ";;"}}, "transactions.csv.delimiter: "),
        ({"path": "t.csv", "csv": {"delimiter": '"'}}, "transactions.csv: "),
        ({"path": "t.csv", "csv": {"delimiter": "\n"}}, "transactions.csv: "),
        ({"path": "t.csv", "csv": {"encoding": "cp1252"}}, "transactions.csv.encoding: "),
        ({"path": "t.csv", "csv": {"decimal": ";"}}, "transactions.csv.decimal: "),
        ({"path": "t.csv", "csv": {"sep": ";"}}, "transactions.csv.sep: unknown key"),
        ({"path": "t.parquet", "csv": {"delimiter": ";"}}, "transactions: .*parquet"),
    ],
)
def test_bad_csv_options_name_the_key(tmp_path, transactions, key):
    with pytest.raises(ConfigError, match="data." + key):
        load_config(_write(tmp_path, _files_data(transactions)))


def test_an_other_quote_character_is_doubled_by_default_and_read_so(tmp_path):
    from retain.config import TableSource
    from retain.contracts import TRANSACTIONS
    from retain.io import read_table

    data = _files_data({"path": "t.csv", "csv": {"quote": "'"}})
    assert load_config(_write(tmp_path, data)).data.transactions.csv.escape == "'"
    path = tmp_path / "t.csv"
    path.write_text(
        "customer_id,timestamp,amount\n'O\"Brien, x',2024-01-01,1\n'it''s',2024-01-02,2\n"
    )
    source = TableSource(path=path, csv={"quote": "'"})
    ids = read_table(source, TRANSACTIONS)["customer_id"].tolist()
    assert ids == ['O"Brien, x', "it's"]


@pytest.mark.parametrize(
    ("key", "value"),
    [("scoring.as_of", "2999-01-31"), ("clv.calibration_end", "1600-01-01")],
)
def test_dates_outside_the_supported_days_are_refused_naming_the_key(key, value):
    with pytest.raises(ConfigError, match=rf"{key.split('.')[1]}.*outside the supported days"):
        load_config(CONFIGS / "cdnow_sample.yaml", {key: value})


def test_segment_rules_come_from_the_named_file_or_the_built_in_ones(tmp_path):
    data = _base()
    data.pop("segments", None)
    data["policy"] = str(CONFIGS / "policy.yaml")
    assert load_config(_write(tmp_path, data)).segment_rules() is None  # built-in rules
    data["segments"] = "missing.yaml"
    with pytest.raises(ConfigError, match="missing.yaml"):
        load_config(_write(tmp_path, data)).segment_rules()
    shipped = load_config(CONFIGS / "cdnow_sample.yaml").segment_rules()
    from retain.features.segments import DEFAULT_SEGMENT_RULES

    assert shipped == DEFAULT_SEGMENT_RULES


def test_derived_columns_are_parsed_at_load_and_errors_name_the_key(tmp_path):
    mapping = {"amount": "Quantity * UnitPrice", "quantity": "Quantity"}
    cfg = load_config(_write(tmp_path, _files_data({"path": "t.csv", "columns": mapping})))
    assert cfg.data.transactions.columns["amount"] == "Quantity * UnitPrice"
    for value, detail in (
        ("Quantity *", "position 11"),
        ("abs(Quantity)", "function calls are not supported"),
        ("Price (EUR)", "quote it"),
    ):
        data = _files_data({"path": "t.csv", "columns": {"amount": value}})
        with pytest.raises(ConfigError, match=r"data\.transactions\.columns\.amount: ") as err:
            load_config(_write(tmp_path, data))
        assert detail in str(err.value)
    data = _files_data({"path": "t.csv"})
    data["data"]["events"] = {"path": "e.csv", "columns": {"value": "score /"}}
    with pytest.raises(ConfigError, match=r"data\.events\.columns\.value: "):
        load_config(_write(tmp_path, data))


def test_id_and_text_columns_keep_names_with_operator_characters(tmp_path):
    mapping = {"customer_id": "customer-id", "timestamp": "date (UTC)"}
    cfg = load_config(_write(tmp_path, _files_data({"path": "t.csv", "columns": mapping})))
    assert cfg.data.transactions.columns == mapping


def test_id_normalisation_defaults_to_none_and_is_checked(tmp_path):
    assert load_config(CONFIGS / "cdnow_sample.yaml").data.id_normalisation == "none"
    data = _base()
    data["data"]["id_normalisation"] = "integer_text"
    assert load_config(_write(tmp_path, data)).data.id_normalisation == "integer_text"
    data["data"]["id_normalisation"] = "int"
    with pytest.raises(ConfigError, match="data.id_normalisation: "):
        load_config(_write(tmp_path, data))
