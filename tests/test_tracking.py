"""Tracking: URI resolution, fail-fast servers, logging helpers, model round trips, promotion."""

from __future__ import annotations

import json
import os
import shutil
import socket
import time
from pathlib import Path

import lightgbm as lgb
import matplotlib
import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import mlflow

from retain import tracking
from retain.churn import ChurnModel
from retain.cli import EXIT_PROMOTION, app
from retain.clv import ClvModel
from retain.config import PromotionConfig, RunConfig, TrackingConfig
from retain.features.rfm import rfm_summary

CONFIG = {
    "name": "tracking-test",
    "data": {"source": "cdnow_sample"},
    "clv": {"calibration_end": "1997-09-30", "holdout_end": "1998-06-30"},
    "tracking": {"experiment_name": "retain-test"},
}


@pytest.fixture(scope="module")
def clv_fitted(cdnow_sample: pd.DataFrame) -> tuple[ClvModel, pd.DataFrame]:
    summary = rfm_summary(cdnow_sample, "1997-09-30", "W")
    return ClvModel("bgnbd", time_unit="W").fit(summary), summary


@pytest.fixture(scope="module")
def booster() -> lgb.Booster:
    rng = np.random.default_rng(0)
    x = pd.DataFrame(rng.normal(size=(300, 3)), columns=["recency_days", "frequency", "f3"])
    y = (x["recency_days"] + rng.normal(scale=0.5, size=300) > 0).astype(int)
    params = {"objective": "binary", "verbose": -1, "seed": 0, "num_threads": 1}
    return lgb.train(params, lgb.Dataset(x, y), num_boost_round=5)


def _cfg(**tracking: object) -> RunConfig:
    data = json.loads(json.dumps(CONFIG))
    data["tracking"].update(tracking)
    return RunConfig.model_validate(data)


# --------------------------------------------------------------------------- URIs


def test_relative_sqlite_uri_resolves_against_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert tracking.resolve_uri("sqlite:///a/mlruns.db") == f"sqlite:///{tmp_path}/a/mlruns.db"
    assert tracking.resolve_uri("sqlite:////abs/x.db") == "sqlite:////abs/x.db"
    assert tracking.resolve_uri("http://host:5000") == "http://host:5000"


def test_env_var_overrides_config_uri(mlflow_tmp, tmp_path: Path) -> None:
    other = tmp_path / "other" / "ignored.db"
    settings = tracking.configure(TrackingConfig(tracking_uri=f"sqlite:///{other}"))
    assert settings.tracking_uri == mlflow_tmp.tracking_uri
    assert settings.registry_uri == mlflow_tmp.tracking_uri
    assert mlflow.get_tracking_uri() == mlflow_tmp.tracking_uri
    assert not other.exists()
    # artifacts beside the database, not in the working directory
    assert settings.artifact_location.startswith(mlflow_tmp.artifact_root.as_uri())


def test_config_uri_used_without_env_and_not_shadowed_by_own_export(
    mlflow_tmp, mlflow_template_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    os.environ.pop("MLFLOW_TRACKING_URI")  # mlflow_tmp restores it
    monkeypatch.chdir(tmp_path)
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        shutil.copyfile(mlflow_template_db, tmp_path / name / "mlruns.db")
    first = tracking.configure(TrackingConfig(tracking_uri="sqlite:///a/mlruns.db"))
    assert first.tracking_uri == f"sqlite:///{tmp_path}/a/mlruns.db"
    # mlflow exported the URI to the environment; a second config must still win over it
    second = tracking.configure(TrackingConfig(tracking_uri="sqlite:///b/mlruns.db"))
    assert second.tracking_uri == f"sqlite:///{tmp_path}/b/mlruns.db"
    assert second.artifact_location == (tmp_path / "b" / "mlartifacts" / "retain").as_uri()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_unreachable_http_uri_raises_quickly(mlflow_tmp) -> None:
    uri = f"http://127.0.0.1:{_closed_port()}"
    os.environ["MLFLOW_TRACKING_URI"] = uri
    start = time.monotonic()
    with pytest.raises(tracking.TrackingError, match=uri.replace(".", r"\.")):
        tracking.configure(TrackingConfig(request_timeout_seconds=2))
    assert time.monotonic() - start < 5


def test_silent_http_server_times_out(mlflow_tmp) -> None:
    # accepts connections (kernel backlog) but never answers: the read timeout must fire
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        uri = f"http://127.0.0.1:{sock.getsockname()[1]}"
        os.environ.pop("MLFLOW_TRACKING_URI")  # mlflow_tmp restores it
        start = time.monotonic()
        with pytest.raises(tracking.TrackingError, match="not reachable within 1 s"):
            tracking.configure(TrackingConfig(tracking_uri=uri, request_timeout_seconds=1))
        os.environ["MLFLOW_REGISTRY_URI"] = uri  # a registry server is probed too
        with pytest.raises(tracking.TrackingError, match="not reachable"):
            tracking.configure(
                TrackingConfig(tracking_uri=mlflow_tmp.tracking_uri, request_timeout_seconds=1)
            )
        assert time.monotonic() - start < 5


# ------------------------------------------------------------------------- logging


def test_runs_nest_inside_an_active_run(mlflow_tmp) -> None:
    settings = tracking.configure(_cfg().tracking)
    with tracking.start_run(settings, "parent") as parent:
        with tracking.start_run(settings, "child", {"step": "x"}) as child:
            assert child.info.run_id != parent.info.run_id
    tags = tracking.client().get_run(child.info.run_id).data.tags
    assert tags["mlflow.parentRunId"] == parent.info.run_id
    assert tags["step"] == "x" and tags["retain.version"]


def test_flatten_and_long_params(mlflow_tmp) -> None:
    flat = tracking.flatten({"a": {"b": 1, "c": {"d": [1, 2]}, "e": {}}, "f": None})
    assert flat == {"a.b": 1, "a.c.d": [1, 2], "a.e": {}, "f": None}
    settings = tracking.configure(_cfg().tracking)
    with tracking.start_run(settings, "p"):
        logged = tracking.log_params_flat({"x": {"long": "y" * 7000, "n": None}}, prefix="p.")
    assert logged == {"p.x.long": "y" * 6000, "p.x.n": "null"}


def test_logging_helpers(mlflow_tmp, tmp_path: Path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(CONFIG))
    cfg = RunConfig.model_validate(CONFIG).model_copy(update={"source_path": path})
    with tracking.tracked_run(cfg, "unit") as run:
        tracking.log_metrics({"a": np.float64(1.5), "b": 2, "skipped": None})
        fig, ax = plt.subplots()
        ax.plot([0, 1], [1, 0])
        tracking.log_figure(ax, "plots/line.png")
        assert not plt.fignum_exists(fig.number)
        table = pd.DataFrame({"x": [1, 2]}, index=pd.Index(["u", "v"], name="customer_id"))
        tracking.log_table(table, "tables/t.csv")
        tracking.log_table(table, "tables/t.json")
        tracking.log_dict({"k": [1, 2]}, "extra/d.json")
        with pytest.raises(TypeError, match="'bad'"):
            tracking.log_metrics({"bad": "text"})
    data = tracking.client().get_run(run.info.run_id).data
    assert data.metrics == {"a": 1.5, "b": 2.0}
    assert data.params["clv.time_unit"] == "W"
    assert data.params["clv.calibration_end"] == "1997-09-30"
    assert data.params["features.windows_days"] == "[30, 90, 180, 365]"
    assert data.tags["config_hash"] == cfg.config_hash()
    assert data.tags["step"] == "unit"
    root = Path(mlflow.get_run(run.info.run_id).info.artifact_uri.removeprefix("file://"))
    assert (root / "config" / "run.yaml").read_text() == path.read_text()
    assert json.loads((root / "config" / "resolved.json").read_text())["name"] == "tracking-test"
    assert (root / "plots" / "line.png").stat().st_size > 0
    assert pd.read_csv(root / "tables" / "t.csv")["customer_id"].tolist() == ["u", "v"]
    assert json.loads((root / "tables" / "t.json").read_text())[1] == {"customer_id": "v", "x": 2}
    assert json.loads((root / "extra" / "d.json").read_text()) == {"k": [1, 2]}


def test_log_inputs_records_every_file_with_its_path_digest_and_row_counts(
    mlflow_tmp, tmp_path: Path
) -> None:
    from retain.io import load_inputs

    (tmp_path / "tx.csv").write_text(
        "customer_id,timestamp,amount\n1,2020-01-01,10\n2,2020-01-02,5\n3,2021-08-01,5\n"
    )
    (tmp_path / "ev.csv").write_text("customer_id,timestamp,event_type\n1,2020-01-01,session\n")
    (tmp_path / "cu.csv").write_text("customer_id,signup_date\n1,2019-12-01\n2,2019-12-02\n")
    data = {
        "source": "files",
        "observed_until": "2020-12-31",
        "transactions": {"path": str(tmp_path / "tx.csv")},
        "events": {"path": str(tmp_path / "ev.csv")},
        "customers": {"path": str(tmp_path / "cu.csv")},
    }
    cfg = RunConfig.model_validate({**CONFIG, "name": "files-test", "data": data})
    inputs = load_inputs(cfg, "2020-12-31")
    with tracking.tracked_run(cfg, "unit") as run:
        digests = tracking.log_inputs(cfg, inputs, tracking.SCORING)
    logged = tracking.client().get_run(run.info.run_id).inputs.dataset_inputs
    by_name = {d.dataset.name: d for d in logged}
    assert (
        set(by_name)
        == set(digests)
        == {
            "files-test.transactions",
            "files-test.events",
            "files-test.customers",
        }
    )
    for table, file in (("transactions", "tx"), ("events", "ev"), ("customers", "cu")):
        entry = by_name[f"files-test.{table}"]
        assert entry.dataset.source_type == "local"
        source = json.loads(entry.dataset.source)["uri"]
        assert source == str((tmp_path / f"{file}.csv").resolve())
        assert entry.dataset.digest == digests[entry.dataset.name]
        assert entry.dataset.digest == tracking.table_digest(getattr(inputs, table))
    tags = {t.key: t.value for t in by_name["files-test.transactions"].tags}
    assert tags == {
        "mlflow.data.context": "scoring",
        "rows_in": "3",
        "rows_used": "2",
        "rows_rejected": "1",
        "as_of": "2020-12-31",
    }
    assert json.loads(by_name["files-test.transactions"].dataset.profile)["num_rows"] == 2
    customers = json.loads(by_name["files-test.customers"].dataset.schema)["mlflow_colspec"]
    assert [c["name"] for c in customers][0] == "customer_id"  # the index is part of the table
    assert tracking.data_label(cfg, inputs) == "tx.csv (2 transactions, 1 events, 2 customers)"


def test_tracked_run_reuses_the_settings_of_an_earlier_configure(
    mlflow_tmp, monkeypatch: pytest.MonkeyPatch
) -> None:
    from retain.tracking import runs

    cfg = _cfg()
    settings = tracking.configure(cfg.tracking)
    calls: list[object] = []
    real = runs.configure
    monkeypatch.setattr(runs, "configure", lambda t: calls.append(t) or real(t))
    with tracking.tracked_run(cfg, "reuse", settings=settings) as run:
        tracking.set_tags({"x": 1})
    assert calls == []  # one probe per job: the job's own configure()
    assert tracking.client().get_run(run.info.run_id).data.tags["x"] == "1"
    assert run.info.experiment_id == settings.experiment_id
    # MLflow pointed elsewhere meanwhile, or another experiment: configure again
    other = _cfg(experiment_name="another")
    with tracking.tracked_run(other, "again", settings=settings):
        pass
    assert calls == [other.tracking]
    with tracking.tracked_run(cfg, "plain"):
        pass
    assert calls == [other.tracking, cfg.tracking]


# -------------------------------------------------------------------------- models


def test_clv_round_trip_gives_identical_predictions(mlflow_tmp, clv_fitted, capfd) -> None:
    model, summary = clv_fitted
    settings = tracking.configure(_cfg().tracking)
    capfd.readouterr()
    with tracking.start_run(settings, "clv") as run:
        version = tracking.log_clv_model(
            model, summary.head(20), metrics={"holdout_mae": np.float64(1.0)}
        )
    printed = capfd.readouterr()
    assert "registered" not in printed.err + printed.out  # registering prints nothing
    assert "Created version" not in printed.err + printed.out
    assert version.aliases == ["challenger"]
    assert version.tags["metric.holdout_mae"] == "1.0"
    expected = model.predict(summary)

    for ref in ("challenger", version.version, run.info.run_id):
        loaded, info = tracking.load_clv_model(ref)
        assert str(info.version) == str(version.version)
        pd.testing.assert_frame_equal(loaded.predict(summary), expected, check_exact=True)

    # the pyfunc (model from code + JSON artifact) predicts the same numbers
    pyfunc = mlflow.pyfunc.load_model("models:/clv@challenger")
    columns = tracking.clv_input_columns("W")
    out = pyfunc.predict(summary[columns].reset_index(drop=True))
    np.testing.assert_array_equal(out.to_numpy(), expected.to_numpy())
    out6 = pyfunc.predict(summary[columns].reset_index(drop=True), params={"horizon": 6})
    np.testing.assert_array_equal(out6["clv"], model.predict(summary, horizon=6)["clv"])
    # nothing pickled: the model directory holds JSON and a code file only
    root = Path(mlflow.artifacts.download_artifacts("models:/clv@challenger"))
    assert not list(root.rglob("*.pkl"))
    assert json.loads(next(root.rglob("clv_model.json")).read_text()) == json.loads(
        json.dumps(model.to_dict())
    )

    with pytest.raises(tracking.TrackingError, match="champion"):
        tracking.load_clv_model("champion")


def _churn(booster: lgb.Booster, calibrator: dict | None = None) -> ChurnModel:
    return ChurnModel(
        booster,
        ["recency_days", "frequency", "f3"],
        calibrator or {"method": "sigmoid", "a": 1.0, "b": 0.0},
        horizon_days=90,
        clv_feature_model="pareto_nbd",
        feature_settings={"windows_days": [30, 90], "trend_window_days": 60},
        training={"config_name": "tracking-test", "config_hash": "abc", "dataset": "x"},
    )


def test_churn_round_trip(mlflow_tmp, booster: lgb.Booster) -> None:
    features = ["recency_days", "frequency", "f3"]
    x = pd.DataFrame(np.random.default_rng(1).normal(size=(50, 3)), columns=features)
    calibrator = {"method": "isotonic", "x_thresholds": [0.0, 0.5, 1.0], "y_thresholds": [0, 1, 1]}
    model = _churn(booster, calibrator)
    settings = tracking.configure(_cfg().tracking)
    with tracking.start_run(settings, "churn"):
        version = tracking.log_churn_model(model, x)
    loaded, info = tracking.load_churn_model("challenger")
    assert str(info.version) == str(version.version)
    # one saved form: everything scoring needs comes back exactly
    assert loaded.to_dict() == model.to_dict()
    assert (loaded.horizon_days, loaded.clv_feature_model) == (90, "pareto_nbd")
    assert loaded.feature_settings == {"windows_days": [30, 90], "trend_window_days": 60}
    np.testing.assert_array_equal(loaded.predict_proba(x), model.predict_proba(x))
    np.testing.assert_array_equal(loaded.booster.predict(x), booster.predict(x))
    root = Path(mlflow.artifacts.download_artifacts("models:/churn@challenger"))
    saved = json.loads(next(root.rglob("churn_model.json")).read_text())
    assert saved["booster"].startswith("tree")  # LightGBM's own text format

    # still servable: the pyfunc (retain's loader + LightGBM text + JSON) gives the calibrated
    # probabilities, the numbers scoring writes
    from retain.churn.calibration import apply_calibration

    raw = booster.predict(x, raw_score=True)
    out = mlflow.pyfunc.load_model("models:/churn@challenger").predict(x)
    np.testing.assert_array_equal(np.asarray(out), apply_calibration(calibrator, raw))
    root = Path(mlflow.artifacts.download_artifacts("models:/churn@challenger"))
    assert not list(root.rglob("*.pkl"))


# ----------------------------------------------------------------------- promotion


def _aliases(name: str) -> dict[str, str]:
    model = tracking.client().get_registered_model(name)
    return {alias: str(v) for alias, v in model.aliases.items()}


def test_churn_promotion_accept_and_refuse(mlflow_tmp, booster: lgb.Booster) -> None:
    features = ["recency_days", "frequency", "f3"]
    x = pd.DataFrame(np.zeros((5, 3)), columns=features)
    settings = tracking.configure(_cfg().tracking)
    cfg = PromotionConfig(auc_tolerance=0.005)

    def new_version(auc: float, baseline: float) -> str:
        with tracking.start_run(settings, "churn"):
            # metrics on the source run (not as tags): the gate reads them from there
            tracking.log_metrics({"test_roc_auc": auc, "baseline_recency_days_roc_auc": baseline})
            tracking.log_metrics({"baseline_bgnbd_roc_auc": baseline - 0.02})
            version = tracking.log_churn_model(_churn(booster), x)
        return str(version.version)

    v1 = new_version(0.70, 0.75)
    refused = tracking.promote("churn", cfg)
    assert not refused.accepted
    assert "below the best baseline baseline_recency_days_roc_auc = 0.7500" in refused.reason
    assert "champion" not in _aliases("churn")

    v2 = new_version(0.80, 0.75)
    first = tracking.promote("churn", cfg)
    assert first.accepted and first.champion_version is None and "no champion yet" in first.reason
    assert _aliases("churn") == {"challenger": v2, "champion": v2}

    v3 = new_version(0.797, 0.75)  # within the tolerance of 0.005
    assert tracking.promote("churn", cfg).accepted
    assert _aliases("churn") == {"challenger": v3, "champion": v3, "previous_champion": v2}

    v4 = new_version(0.79, 0.75)  # 0.79 < 0.797 - 0.005
    worse = tracking.promote("churn", cfg)
    assert not worse.accepted
    assert worse.challenger_version == v4 and worse.champion_version == v3
    assert "below champion 0.7970 minus tolerance 0.005" in worse.reason
    assert _aliases("churn")["champion"] == v3
    tags = tracking.client().get_model_version("churn", v4).tags
    assert tags["promotion.decision"] == "refused" and tags["promotion.reason"] == worse.reason
    assert tracking.client().get_model_version("churn", v1).tags["promotion.decision"] == "refused"

    # roll back to the previous champion, and undo it
    assert tracking.rollback("churn") == v2
    assert _aliases("churn") == {"challenger": v4, "champion": v2, "previous_champion": v3}
    assert tracking.rollback("churn") == v3
    assert _aliases("churn")["champion"] == v3


def test_clv_promotion_accept_and_refuse(mlflow_tmp, clv_fitted, tmp_path: Path) -> None:
    model, summary = clv_fitted
    cfg_path = tmp_path / "c.yaml"
    cfg_path.write_text(yaml.safe_dump(CONFIG))
    settings = tracking.configure(_cfg().tracking)

    name = tracking.registered_name(_cfg(), "clv")  # what the CLI promotes
    assert name == "tracking-test-clv"

    def new_version(mae: float, baseline: float | None = None) -> str:
        metrics = {"holdout_mae": mae}
        if baseline is not None:
            metrics["baseline_naive_rate_holdout_mae"] = baseline
        with tracking.start_run(settings, "clv"):
            version = tracking.log_clv_model(
                model,
                summary.head(5),
                metrics=metrics,
                model_name=name,
                tags=tracking.provenance_tags(_cfg()),  # trained on the config's data set
            )
        return str(version.version)

    runner = CliRunner()
    v1 = new_version(1.0, baseline=1.2)
    result = runner.invoke(app, ["promote", "--config", str(cfg_path), "--model", "clv"])
    assert result.exit_code == 0, result.output
    assert _aliases(name)["champion"] == v1

    v2 = new_version(1.02)  # 2 % worse, tolerance 0
    result = runner.invoke(app, ["promote", "--config", str(cfg_path), "--model", "clv"])
    assert result.exit_code == EXIT_PROMOTION
    assert "worse than champion 1.0000" in result.output
    assert _aliases(name)["champion"] == v1
    # the refusal is recorded as a run of the experiment
    runs = mlflow.search_runs(
        experiment_names=["retain-test"], filter_string="tags.step = 'promote'"
    )
    assert sorted(runs["tags.promotion.accepted"]) == ["false", "true"]

    relaxed = PromotionConfig(clv_tolerance=0.05)
    decision = tracking.promote(name, relaxed)
    assert decision.accepted and decision.champion_version == v1
    assert _aliases(name)["champion"] == v2

    new_version(0.9, baseline=0.8)  # better than the champion but worse than its baseline
    refused = tracking.promote(name, relaxed)
    assert not refused.accepted
    assert "worse (higher) than the best baseline baseline_naive_rate_holdout_mae" in refused.reason
    assert _aliases(name)["champion"] == v2

    rmse = tracking.promote(name, PromotionConfig(clv_metric="rmse"))
    assert not rmse.accepted and rmse.reason == "challenger has no holdout_rmse metric"


def test_churn_refusal_without_champion_names_the_next_steps_and_force_goes_on(
    mlflow_tmp, booster: lgb.Booster, tmp_path: Path
) -> None:
    x = pd.DataFrame(np.zeros((5, 3)), columns=["recency_days", "frequency", "f3"])
    cfg_path = tmp_path / "c.yaml"
    cfg_path.write_text(yaml.safe_dump(CONFIG))
    settings = tracking.configure(_cfg().tracking)
    name = tracking.registered_name(_cfg(), "churn")
    # worse than the baseline beyond the paired interval: refused, and there is no champion
    metrics = {
        "test_roc_auc": 0.84,
        "baseline_bgnbd_p_no_purchase_roc_auc": 0.87,
        "auc_diff_vs_bgnbd_p_no_purchase": -0.03,
        "auc_diff_vs_bgnbd_p_no_purchase_ci_low": -0.045,
        "auc_diff_vs_bgnbd_p_no_purchase_ci_high": -0.015,
    }
    with tracking.start_run(settings, "churn"):
        logged = tracking.log_churn_model(
            _churn(booster), x, model_name=name, tags=tracking.provenance_tags(_cfg())
        )
        version = str(logged.version)
        tracking.log_metrics(metrics)

    runner = CliRunner()
    base = ["promote", "--config", str(cfg_path), "--model", "churn"]
    refused = runner.invoke(app, base)
    assert refused.exit_code == EXIT_PROMOTION, refused.output
    text = " ".join(refused.output.split())
    assert "95% DeLong interval [-0.0450, -0.0150]" in text
    assert f'retain promote --config {cfg_path} --model churn --force --reason "..."' in text
    assert text.rstrip().endswith(f"retain score --config {cfg_path} --model-version challenger")
    assert "champion" not in _aliases(name)

    # --force needs a reason (a usage error, before anything is read or moved)
    no_reason = runner.invoke(app, [*base, "--force"])
    assert no_reason.exit_code == 2 and "--force needs --reason" in no_reason.output
    assert runner.invoke(app, [*base, "--reason", "why"]).exit_code == 2
    assert "champion" not in _aliases(name)

    forced = runner.invoke(app, [*base, "--force", "--reason", "first run, gap within noise"])
    assert forced.exit_code == 0, forced.output
    assert "promote: forced" in forced.output
    assert _aliases(name)["champion"] == version
    tags = tracking.client().get_model_version(name, version).tags
    assert tags["promotion.forced"] == "true"
    assert tags["promotion.reason"] == "first run, gap within noise"
    assert tags["promotion.gate_reason"].startswith("refused: ")
    runs = mlflow.search_runs(
        experiment_names=["retain-test"], filter_string="tags.step = 'promote'"
    )
    assert sorted(runs["tags.promotion.forced"]) == ["false", "true"]
    forced_run = runs[runs["tags.promotion.forced"] == "true"].iloc[0]
    assert forced_run["tags.promotion.accepted"] == "true"
    assert "promoted by force" in forced_run["tags.mlflow.note.content"]


def test_promote_without_challenger_is_a_registry_error(mlflow_tmp) -> None:
    tracking.configure(_cfg().tracking)
    with pytest.raises(tracking.TrackingError, match="no 'challenger'"):
        tracking.promote("churn", PromotionConfig())
    with pytest.raises(tracking.TrackingError, match="no promotion rule"):
        tracking.promote("other", PromotionConfig())
    with pytest.raises(tracking.TrackingError, match="to roll back"):
        tracking.rollback("churn")
