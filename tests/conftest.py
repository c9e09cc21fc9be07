"""Shared fixtures: small data, temporary MLflow stores, no writes to the working directory."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import settings
from hypothesis.configuration import set_hypothesis_home_dir

from retain.datasets import load_cdnow

# Property tests keep no example database, and hypothesis' own cache lives in the temp folder:
# the working directory stays clean. Seeded (derandomized) so that a run is reproducible.
set_hypothesis_home_dir(Path(os.environ.get("TMPDIR", "/tmp")) / "retain-tests-hypothesis")
settings.register_profile("retain", database=None, derandomize=True, deadline=None)
settings.load_profile("retain")


@pytest.fixture(scope="session")
def cdnow_sample() -> pd.DataFrame:
    """The CDNOW sample transactions (2,357 customers)."""
    return load_cdnow("sample")


@pytest.fixture(scope="session")
def cdnow_master() -> pd.DataFrame:
    """The full CDNOW master transactions (23,570 customers)."""
    return load_cdnow("master")


# ---------------------------------------------------------------------- MLflow stores

_MLFLOW_ENV = (
    "MLFLOW_TRACKING_URI",
    "MLFLOW_REGISTRY_URI",
    "MLFLOW_HTTP_REQUEST_TIMEOUT",
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES",
    "MLFLOW_EXPERIMENT_ID",
    "MLFLOW_EXPERIMENT_NAME",
    "MLFLOW_RUN_ID",
    "MLFLOW_ALLOW_PICKLE_DESERIALIZATION",
)


@dataclass(frozen=True)
class MlflowStore:
    """A temporary MLflow store: tracking URI, database file and artifact root."""

    tracking_uri: str
    db_path: Path | None
    artifact_root: Path


@pytest.fixture(scope="session")
def mlflow_template_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty, fully migrated MLflow SQLite database (copied per test: migrations take ~8 s)."""
    from mlflow.store.model_registry.sqlalchemy_store import (
        SqlAlchemyStore as RegistryStore,
    )
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    root = tmp_path_factory.mktemp("mlflow-template")
    db = root / "mlruns.db"
    tracking = SqlAlchemyStore(f"sqlite:///{db}", (root / "mlartifacts").as_uri())
    registry = RegistryStore(f"sqlite:///{db}")
    tracking.engine.dispose()
    registry.engine.dispose()
    return db


def _restore_mlflow(saved: dict[str, str | None]) -> None:
    import mlflow

    while mlflow.active_run() is not None:
        mlflow.end_run("FAILED")
    mlflow.set_tracking_uri(None)
    mlflow.set_registry_uri(None)
    mlflow.tracking.fluent._active_experiment_id = None  # set by mlflow.set_experiment
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture
def mlflow_tmp(tmp_path: Path, mlflow_template_db: Path) -> Iterator[MlflowStore]:
    """A fresh SQLite tracking + registry store in tmp_path, selected via MLFLOW_TRACKING_URI.

    Artifacts go to ``<tmp>/mlflow/mlartifacts`` (beside the database, as
    :func:`retain.tracking.configure` arranges). MLflow environment variables and global URIs
    are restored afterwards.
    """
    saved = {key: os.environ.get(key) for key in _MLFLOW_ENV}
    db = tmp_path / "mlflow" / "mlruns.db"
    db.parent.mkdir()
    shutil.copyfile(mlflow_template_db, db)
    uri = f"sqlite:///{db}"
    os.environ["MLFLOW_TRACKING_URI"] = uri
    os.environ.pop("MLFLOW_REGISTRY_URI", None)
    for key in ("MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_RUN_ID"):
        os.environ.pop(key, None)
    try:
        yield MlflowStore(uri, db, db.parent / "mlartifacts")
    finally:
        _restore_mlflow(saved)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def mlflow_server(
    tmp_path_factory: pytest.TempPathFactory, mlflow_template_db: Path
) -> Iterator[MlflowStore]:
    """A real ``mlflow server`` on 127.0.0.1 (free port, SQLite backend, proxied artifacts).

    Everything lives in a temp dir: the database and ``--artifacts-destination``; the
    default artifact root is the proxied ``mlflow-artifacts:/`` so that clients upload over
    HTTP. Waits for ``/health`` (at most 180 s: a loaded 2-core machine is slow) and stops the
    server's process group at the end.
    """
    root = tmp_path_factory.mktemp("mlflow-server")
    db = root / "server.db"
    shutil.copyfile(mlflow_template_db, db)
    artifacts = root / "artifacts"
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = (root / "server.log").open("wb")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
            "--backend-store-uri",
            f"sqlite:///{db}",
            "--artifacts-destination",
            str(artifacts),
            "--default-artifact-root",
            "mlflow-artifacts:/",
        ],
        cwd=root,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 180
        while True:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"mlflow server exited with {proc.returncode}:\n"
                    + (root / "server.log").read_text()[-3000:]
                )
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("mlflow server did not answer /health within 180 s")
            time.sleep(0.3)
        yield MlflowStore(url, db, artifacts)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=5)  # uvicorn may wait for idle keep-alive clients
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
        log.close()


@pytest.fixture
def mlflow_http(mlflow_server: MlflowStore) -> Iterator[MlflowStore]:
    """Select the session's MLflow server via MLFLOW_TRACKING_URI for one test."""
    saved = {key: os.environ.get(key) for key in _MLFLOW_ENV}
    os.environ["MLFLOW_TRACKING_URI"] = mlflow_server.tracking_uri
    os.environ.pop("MLFLOW_REGISTRY_URI", None)
    for key in ("MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_RUN_ID"):
        os.environ.pop(key, None)
    try:
        yield mlflow_server
    finally:
        _restore_mlflow(saved)
