"""Models load without unpickling: tampered, pickled or unverifiable versions are refused.

Every test logs real models into a temporary SQLite MLflow store (``mlflow_tmp``), then edits
the files where MLflow's artifact store keeps them (asked from MLflow, not guessed) and checks
that :func:`retain.tracking.load_churn_model` / :func:`retain.tracking.load_clv_model` refuse
with one :class:`retain.tracking.TrackingError` line.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import pathlib
import pickle
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit
from urllib.request import url2pathname

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
import yaml
from mlflow.entities.model_registry import ModelVersion
from typer.testing import CliRunner

from retain import tracking
from retain.churn import ChurnModel
from retain.cli import EXIT_MODEL, app
from retain.clv import ClvModel
from retain.config import TrackingConfig
from retain.features.rfm import rfm_summary

FEATURES = ["recency_days", "frequency", "f3"]
CALIBRATOR = {"method": "sigmoid", "a": 1.5, "b": -0.2}


def _train(seed: int, rounds: int = 5) -> lgb.Booster:
    rng = np.random.default_rng(seed)
    x = pd.DataFrame(rng.normal(size=(300, 3)), columns=FEATURES)
    y = (x["recency_days"] + rng.normal(scale=0.5, size=300) > 0).astype(int)
    params = {"objective": "binary", "verbose": -1, "seed": seed, "num_threads": 1}
    return lgb.train(params, lgb.Dataset(x, y), num_boost_round=rounds)


@pytest.fixture(autouse=True)
def _restore_pickle_switch() -> Iterator[None]:
    """configure() sets MLflow's pickle switch; give the other test modules their own state."""
    saved = os.environ.pop(tracking.PICKLE_ENV, None)
    try:
        yield
    finally:
        os.environ.pop(tracking.PICKLE_ENV, None)
        if saved is not None:
            os.environ[tracking.PICKLE_ENV] = saved


@pytest.fixture(scope="module")
def booster() -> lgb.Booster:
    return _train(0)


@pytest.fixture(scope="module")
def clv_fitted(cdnow_sample: pd.DataFrame) -> tuple[ClvModel, pd.DataFrame]:
    summary = rfm_summary(cdnow_sample, "1997-09-30", "W")
    return ClvModel("bgnbd", time_unit="W").fit(summary), summary


@pytest.fixture
def x() -> pd.DataFrame:
    return pd.DataFrame(np.random.default_rng(1).normal(size=(50, 3)), columns=FEATURES)


def _log_churn(booster: lgb.Booster, x: pd.DataFrame, name: str = "churn") -> ModelVersion:
    settings = tracking.configure(TrackingConfig(experiment_name="safety"))
    model = ChurnModel(booster, FEATURES, CALIBRATOR, horizon_days=90)
    with tracking.start_run(settings, "churn"):
        return tracking.log_churn_model(model, x, model_name=name)


def _log_clv(model: ClvModel, summary: pd.DataFrame, name: str = "clv") -> ModelVersion:
    settings = tracking.configure(TrackingConfig(experiment_name="safety"))
    with tracking.start_run(settings, "clv"):
        return tracking.log_clv_model(model, summary.head(5), model_name=name)


def _stored_dir(store, version: ModelVersion) -> Path:
    """Where the artifact store keeps the version's files, as MLflow reports it."""
    uri = tracking.client().get_model_version_download_uri(version.name, version.version)
    parts = urlsplit(uri)
    assert parts.scheme == "file", uri
    path = Path(url2pathname(parts.path))
    assert path.is_relative_to(store.artifact_root) and (path / "MLmodel").is_file()
    return path


def _unpickles_with_mlflow(
    version: ModelVersion, marker: Path, monkeypatch: pytest.MonkeyPatch
) -> bool:
    """Control: does MLflow's own loader, pickle allowed, run the payload in this store?

    Proves the tampered version carries a live payload, so ``not marker.exists()`` after
    retain's refusal means something. The switch is set through ``monkeypatch`` and restored.
    """
    import mlflow.pyfunc

    assert not marker.exists()
    monkeypatch.setenv(tracking.PICKLE_ENV, "true")
    try:
        # the payload unpickles to None, so the loader fails after running it
        with contextlib.suppress(Exception):
            mlflow.pyfunc.load_model(f"models:/{version.name}/{version.version}")
    finally:
        monkeypatch.delenv(tracking.PICKLE_ENV)
    return marker.exists()


def _message(exc: pytest.ExceptionInfo[tracking.TrackingError]) -> str:
    text = str(exc.value)
    assert "\n" not in text
    return text


# ---------------------------------------------------------------------- round trips


def test_churn_round_trip_is_exact_and_digests_cover_every_file(mlflow_tmp, booster, x) -> None:
    version = _log_churn(booster, x)
    stored = _stored_dir(mlflow_tmp, version)
    files = sorted(p.relative_to(stored).as_posix() for p in stored.rglob("*") if p.is_file())
    # the saved form is the data of retain's own loader module: no code in the store
    assert {"MLmodel", "data/churn_model.json"} <= set(files)
    assert not [f for f in files if f.endswith((".py", ".pkl", ".pickle", ".lgb"))]
    saved = json.loads((stored / "data/churn_model.json").read_text())
    assert saved["booster"] == booster.model_to_string()  # LightGBM's own text format
    digests = json.loads(version.tags[tracking.DIGEST_TAG])
    assert sorted(digests) == files
    for name, digest in digests.items():
        assert hashlib.sha256((stored / name).read_bytes()).hexdigest() == digest
    assert len(version.tags[tracking.DIGEST_TAG]) < 5000

    loaded, _ = tracking.load_churn_model("challenger")
    np.testing.assert_array_equal(loaded.booster.predict(x), booster.predict(x))
    np.testing.assert_array_equal(
        loaded.booster.predict(x, raw_score=True), booster.predict(x, raw_score=True)
    )
    assert loaded.calibrator == CALIBRATOR and loaded.feature_names == FEATURES
    with pytest.raises(ValueError, match="reserved"):
        settings = tracking.configure(TrackingConfig(experiment_name="safety"))
        with tracking.start_run(settings, "churn"):
            tracking.log_churn_model(
                ChurnModel(booster, FEATURES, CALIBRATOR, 90), x, tags={tracking.DIGEST_TAG: "{}"}
            )


def test_clv_round_trip_is_exact(mlflow_tmp, clv_fitted) -> None:
    model, summary = clv_fitted
    version = _log_clv(model, summary)
    stored = _stored_dir(mlflow_tmp, version)
    digests = json.loads(version.tags[tracking.DIGEST_TAG])
    assert "artifacts/clv_model.json" in digests and "clv_pyfunc.py" in digests
    assert sorted(digests) == sorted(
        p.relative_to(stored).as_posix() for p in stored.rglob("*") if p.is_file()
    )
    loaded, info = tracking.load_clv_model("challenger")
    assert info.version == version.version
    pd.testing.assert_frame_equal(loaded.predict(summary), model.predict(summary))


def test_configure_turns_mlflow_pickle_loading_off_unless_set(
    mlflow_tmp, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlflow.environment_variables import MLFLOW_ALLOW_PICKLE_DESERIALIZATION

    monkeypatch.delenv(tracking.PICKLE_ENV, raising=False)
    tracking.configure(TrackingConfig(experiment_name="safety"))
    assert MLFLOW_ALLOW_PICKLE_DESERIALIZATION.name == tracking.PICKLE_ENV
    assert MLFLOW_ALLOW_PICKLE_DESERIALIZATION.get() is False
    monkeypatch.setenv(tracking.PICKLE_ENV, "true")  # the user's explicit choice stays
    tracking.configure(TrackingConfig(experiment_name="safety"))
    assert MLFLOW_ALLOW_PICKLE_DESERIALIZATION.get() is True


# ---------------------------------------------------------------------- tampering


@pytest.fixture(params=["churn", "clv"])
def logged(request, mlflow_tmp, booster, x, clv_fitted) -> tuple[ModelVersion, Path, Callable]:
    """A freshly registered churn or CLV version, its stored folder and its loader."""
    if request.param == "churn":
        version = _log_churn(booster, x)
        load: Callable = tracking.load_churn_model
    else:
        version = _log_clv(*clv_fitted)
        load = tracking.load_clv_model
    return version, _stored_dir(mlflow_tmp, version), load


def test_changed_artifact_is_refused_naming_the_file(logged, tmp_path: Path) -> None:
    version, stored, load = logged
    if version.name == "churn":
        name = "data/churn_model.json"
        data = json.loads((stored / name).read_text())
        data["booster"] = _train(seed=7, rounds=8).model_to_string()  # still a valid model
        (stored / name).write_text(json.dumps(data))
    else:
        name = "artifacts/clv_model.json"
        data = json.loads((stored / name).read_text())
        data["purchase_params"]["r"] *= 2  # still a valid model, with other numbers
        (stored / name).write_text(json.dumps(data))
    with pytest.raises(tracking.TrackingError) as exc:
        load("challenger")
    text = _message(exc)
    assert f"model {version.name} version {version.version}" in text
    assert f"{name} changed" in text and "retrain" in text and "restore" in text


def test_added_and_missing_files_are_refused(logged) -> None:
    version, stored, load = logged
    (stored / "artifacts").mkdir(exist_ok=True)  # the churn model keeps its JSON in data/
    (stored / "artifacts" / "notes.txt").write_text("harmless?")
    with pytest.raises(tracking.TrackingError, match=r"artifacts/notes.txt was added"):
        load(version.version)
    (stored / "artifacts" / "notes.txt").unlink()
    (stored / "input_example.json").unlink()
    with pytest.raises(tracking.TrackingError, match=r"input_example.json is missing"):
        load(version.version)


def test_version_without_digest_tag_is_refused(logged) -> None:
    version, _, load = logged
    tracking.client().delete_model_version_tag(version.name, version.version, tracking.DIGEST_TAG)
    with pytest.raises(tracking.TrackingError) as exc:
        load("challenger")
    text = _message(exc)
    assert "registered before integrity checks" in text and "retrain it" in text


class _Payload:
    """Unpickling this object creates ``marker`` (a harmless stand-in for a shell command)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Callable[..., None], tuple[Path]]:
        return (pathlib.Path.touch, (pathlib.Path(self.marker),))


def _pickle_flavour(kind: str) -> dict:
    if kind == "pyfunc-cloudpickle":  # what mlflow.pyfunc.log_model(python_model=obj) writes
        return {
            "python_function": {
                "cloudpickle_version": "3.1.2",
                "loader_module": "mlflow.pyfunc.model",
                "python_model": "python_model.pkl",
                "env": {"conda": "conda.yaml", "virtualenv": "python_env.yaml"},
            }
        }
    return {  # the lightgbm flavour of a scikit-learn API model, edited to cloudpickle
        "lightgbm": {
            "data": "model.pkl",
            "model_class": "lightgbm.sklearn.LGBMClassifier",
            "serialization_format": "cloudpickle",
        },
        "python_function": {"loader_module": "mlflow.lightgbm", "data": "model.pkl"},
    }


@pytest.mark.parametrize("kind", ["pyfunc-cloudpickle", "lightgbm-cloudpickle"])
def test_pickle_flavour_is_refused_before_anything_runs(
    logged, kind, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    version, stored, load = logged
    marker = tmp_path / "MARKER"
    payload = pickle.dumps(_Payload(marker))
    # control: the payload is live (unpickling it elsewhere creates its own marker)
    control = tmp_path / "CONTROL"
    pickle.loads(pickle.dumps(_Payload(control)))
    assert control.exists()

    pkl_name = "python_model.pkl" if kind.startswith("pyfunc") else "model.pkl"
    (stored / pkl_name).write_bytes(payload)
    mlmodel = yaml.safe_load((stored / "MLmodel").read_text())
    mlmodel["flavors"] = _pickle_flavour(kind)
    (stored / "MLmodel").write_text(yaml.safe_dump(mlmodel))

    with pytest.raises(tracking.TrackingError) as exc:
        load("challenger")
    text = _message(exc)
    flavour = "python_function" if kind.startswith("pyfunc") else "lightgbm"
    assert f"MLmodel flavour {flavour!r} is pickle-based" in text
    assert f"model {version.name} version {version.version}" in text
    assert not marker.exists()
    assert _unpickles_with_mlflow(version, marker, monkeypatch)  # the same store, MLflow's loader


def test_foreign_loader_and_stray_pickle_are_refused(logged) -> None:
    version, stored, load = logged
    (stored / "extra.joblib").write_bytes(b"not even a pickle")
    with pytest.raises(tracking.TrackingError, match=r"pickled files \['extra.joblib'\]"):
        load(version.version)
    (stored / "extra.joblib").unlink()
    mlmodel = yaml.safe_load((stored / "MLmodel").read_text())
    mlmodel["flavors"]["python_function"]["loader_module"] = "mlflow.lightgbm"
    (stored / "MLmodel").write_text(yaml.safe_dump(mlmodel))
    with pytest.raises(tracking.TrackingError, match="uses loader 'mlflow.lightgbm'"):
        load(version.version)


# ---------------------------------------------------------------------------- CLI


def test_score_on_tampered_champion_exits_4_with_one_message(
    mlflow_tmp, booster, x, clv_fitted, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clv_version = _log_clv(*clv_fitted, name="safety-clv")  # the names the config scores with
    churn_version = _log_churn(booster, x, name="safety-churn")
    mc = tracking.client()
    mc.set_registered_model_alias("safety-clv", "champion", clv_version.version)
    mc.set_registered_model_alias("safety-churn", "champion", churn_version.version)
    stored = _stored_dir(mlflow_tmp, churn_version)
    marker = tmp_path / "MARKER"
    (stored / "python_model.pkl").write_bytes(pickle.dumps(_Payload(marker)))
    mlmodel = yaml.safe_load((stored / "MLmodel").read_text())
    mlmodel["flavors"] = _pickle_flavour("pyfunc-cloudpickle")
    (stored / "MLmodel").write_text(yaml.safe_dump(mlmodel))

    cfg = tmp_path / "run.yaml"
    cfg.write_text(
        yaml.safe_dump(
            {
                "name": "safety",
                "data": {"source": "cdnow_sample"},
                "clv": {"calibration_end": "1997-09-30", "holdout_end": "1998-06-30"},
                "scoring": {"as_of": "1998-06-30", "output_dir": str(tmp_path / "out")},
                "policy": str(Path(__file__).resolve().parent.parent / "configs/policy.yaml"),
            }
        )
    )
    env = {"COLUMNS": "400", "TERMINAL_WIDTH": "400"}
    result = CliRunner().invoke(app, ["score", "--config", str(cfg)], env=env)
    assert result.exit_code == EXIT_MODEL, result.output
    lines = [line for line in result.output.splitlines() if "error" in line]
    assert len(lines) == 1, result.output
    assert "model safety-churn version 1 is refused" in lines[0] and "pickle-based" in lines[0]
    assert not marker.exists()
    assert not (tmp_path / "out").exists()
    assert _unpickles_with_mlflow(churn_version, marker, monkeypatch)
