"""Loading the value model beside the CLV and churn models: the method decided once, models that
do not fit each other refused (exit 4), and the report pinned to the scores' own value model."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml
from small_models import small_scoring_models, small_value_model
from typer.testing import CliRunner

from retain import tracking
from retain.cli import EXIT_MODEL, app
from retain.clv.ml import ValueModel
from retain.clv.value_fit import choose_method
from retain.config import RunConfig, TrackingConfig
from retain.jobs.report import _load_models as report_models
from retain.synthetic import generate_synthetic

ROOT = Path(__file__).resolve().parents[1]
AS_OF = "2023-12-31"
NAME = "value-registry-test"


@pytest.fixture(scope="module")
def trained():
    data = generate_synthetic(500, "2022-01-01", AS_OF, seed=7, with_events=True)
    value = small_value_model(
        data.transactions,
        data.events,
        "2022-01-01",
        AS_OF,
        rounds=20,
        early_stopping_rounds=5,
    )
    models = small_scoring_models(data.transactions, data.events, "2023-03-31", AS_OF, rounds=10)
    models.clv.horizon = 4
    return models, value


def _config_data(tmp_path: Path, method: str) -> dict:
    return {
        "name": NAME,
        "data": {"source": "cdnow_sample"},
        "clv": {
            "calibration_end": "1997-09-30",
            "holdout_end": "1998-06-30",
            "horizon_months": 4,
            "method": method,
        },
        "scoring": {"as_of": "1998-06-30", "output_dir": str(tmp_path / "out")},
        "policy": str(ROOT / "configs" / "policy.yaml"),
        "tracking": {"experiment_name": "value-registry"},
    }


def _config(tmp_path: Path, method: str) -> RunConfig:
    return RunConfig.model_validate(_config_data(tmp_path, method))


def _variant(value: ValueModel, **changes) -> ValueModel:
    return ValueModel.from_dict({**value.to_dict(), **changes})


def _register(cfg: RunConfig, models, values: list[ValueModel]) -> None:
    """The CLV and churn models as version 1, the value models as versions 1, 2, ..."""
    tags = tracking.provenance_tags(cfg)
    example = pd.DataFrame(
        0.0,
        index=range(5),
        columns=list(dict.fromkeys(models.feature_names + values[0].feature_names)),
    )
    summary = pd.DataFrame(
        {"frequency": [1.0], "recency_weeks": [2.0], "tenure_weeks": [5.0], "monetary_value": [9.0]}
    )
    settings = tracking.configure(TrackingConfig(experiment_name="value-registry"))
    with tracking.start_run(settings, "models"):
        tracking.log_clv_model(
            models.clv, summary, model_name=tracking.registered_name(cfg, "clv"), tags=tags
        )
        tracking.log_churn_model(
            models.churn, example, model_name=tracking.registered_name(cfg, "churn"), tags=tags
        )
        for value in values:
            tracking.log_value_model(
                value, example, model_name=tracking.registered_name(cfg, "value"), tags=tags
            )


def test_the_method_is_decided_at_load_and_unfit_value_models_are_refused(
    mlflow_tmp, tmp_path, trained
) -> None:
    models, value = trained
    holdout = dict(value.holdout)
    no_btyd = {k: v for k, v in holdout.items() if not k.startswith("btyd_top20")}
    other_windows = {**value.feature_settings, "windows_days": [60, 120]}
    auto = _config(tmp_path, "auto")
    _register(
        auto,
        models,
        [
            value,  # 1: fits
            _variant(value, holdout=no_btyd),  # 2: auto cannot compare
            _variant(value, feature_settings=other_windows),  # 3: other feature windows
        ],
    )

    loaded = tracking.load_scoring_models(auto, "1", "1", value_ref="1")
    assert loaded.models.value is not None and loaded.models.clv_method == "auto"
    assert loaded.models.chosen_method == choose_method("auto", holdout)
    # clv.method ml needs no recorded figures
    ml = tracking.load_scoring_models(auto, "1", "1", value_ref="2", clv_method="ml")
    assert ml.models.chosen_method == "ml" and str(ml.value_version.version) == "2"
    plain = tracking.load_scoring_models(auto, "1", "1", clv_method="btyd")
    assert plain.models.value is None and plain.value_version is None

    with pytest.raises(tracking.TrackingError, match="btyd_top20_capture.*retrain the value model"):
        tracking.load_scoring_models(auto, "1", "1", value_ref="2")
    with pytest.raises(tracking.TrackingError, match="windows_days.*retrain the value model"):
        tracking.load_scoring_models(auto, "1", "1", value_ref="3", clv_method="ml")

    # through the command: a registry error (exit 4) naming what to do, before any data is read
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(_config_data(tmp_path, "auto")))
    for ref, what in (("2", "set clv.method: btyd"), ("3", "feature settings")):
        result = CliRunner().invoke(
            app,
            [
                "score",
                "--config",
                str(path),
                "--model-version",
                "1",
                "--clv-version",
                "1",
                "--value-version",
                ref,
            ],
        )
        assert result.exit_code == EXIT_MODEL, result.output
        assert result.output.lstrip().startswith("tracking/registry error:")
        assert what in " ".join(result.output.split())


def test_the_report_loads_the_value_model_its_scores_name(mlflow_tmp, tmp_path, trained) -> None:
    models, value = trained
    btyd = _config(tmp_path, "btyd")
    # version 2 is the latest; neither is champion
    _register(btyd, models, [value, _variant(value, holdout={})])
    when = pd.Timestamp("1998-06-30")
    pinned = {"version": "1", "clv_method": "ml", "chosen": "ml"}
    manifest = {"models": {"clv": {"version": "1"}, "churn": {"version": "1"}, "value": pinned}}
    # today's config says btyd: the scores' value model all the same, at their version
    got = report_models(btyd, manifest, when, None, False)
    assert str(got.value_version.version) == "1" and got.models.chosen_method == "ml"
    assert got.models.value.holdout == value.holdout
    # scores without a value model: none, though today's config says auto (and no champion
    # exists, which loading one would have needed)
    del manifest["models"]["value"]
    none = report_models(_config(tmp_path, "auto"), manifest, when, None, False)
    assert none.models.value is None and none.value_version is None
