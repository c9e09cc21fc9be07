"""Shared fixtures: small data, temporary MLflow stores, no writes to the working directory."""

from __future__ import annotations

import logging
import os
import re
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
from typing import TYPE_CHECKING

import pandas as pd
import pytest
from hypothesis import settings
from hypothesis.configuration import set_hypothesis_home_dir

from retain.datasets import load_cdnow

if TYPE_CHECKING:  # pyspark only when a test asks for the spark fixture
    from pyspark.sql import SparkSession

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


# ---------------------------------------------------------------------------- Spark

SPARK_NEEDS_JAVA = "Spark tests need Java 17 (apt-get install openjdk-17-jre-headless)"

_LOG4J2 = """\
rootLogger.level = error
rootLogger.appenderRef.console.ref = console
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{HH:mm:ss} %p %c{1}: %m%n%ex
"""


def _java_major() -> int | None:
    """The major version of the Java that PySpark would start (``JAVA_HOME`` first), or None."""
    home = os.environ.get("JAVA_HOME")
    java = str(Path(home) / "bin" / "java") if home else shutil.which("java")
    if not java or not Path(java).is_file():
        return None
    try:
        out = subprocess.run(
            [java, "-version"], capture_output=True, text=True, timeout=60, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    found = re.search(r'version "(\d+)(?:\.(\d+))?', out.stderr + out.stdout)
    if out.returncode != 0 or not found:
        return None
    major = int(found.group(1))
    return int(found.group(2) or 0) if major == 1 else major  # "1.8" is Java 8


def _spark_session(master: str, app_name: str, conf: dict[str, str]) -> SparkSession:
    """A quiet SparkSession with Arrow on (log level ERROR, no UI, no progress bars)."""
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.master(master).appName(app_name)
    settings = {
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.sql.execution.arrow.pyspark.fallback.enabled": "false",  # fail, never fall back
        **conf,
    }
    for key, value in settings.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    return session


@pytest.fixture(scope="session")
def spark(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SparkSession]:
    """A local SparkSession (``local[2]``, 4 shuffle partitions, Arrow on), quiet, in tmp.

    Skips, saying why, without Java 17 or newer; under CI (``CI`` set, where ``.ci/run``
    installs ``openjdk-17-jre-headless``) a missing Java fails instead. Python workers run
    this interpreter (``PYSPARK_PYTHON``); Spark's local, warehouse and Java temp folders are
    under pytest's temp folder. Environment variables are restored and the session stopped
    at the end.
    """
    major = _java_major()
    if major is None or major < 17:
        reason = SPARK_NEEDS_JAVA + (f"; found Java {major}" if major else "")
        if os.environ.get("CI"):  # .ci/run installs it: a missing Java there is a failure
            pytest.fail(reason)
        pytest.skip(reason)
    try:
        import pyspark  # noqa: F401
    except ImportError:
        reason = "pyspark is not installed (pip install -c constraints.txt -e '.[dev]')"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)

    root = tmp_path_factory.mktemp("spark")
    log4j = root / "log4j2.properties"
    log4j.write_text(_LOG4J2)
    (root / "java-tmp").mkdir()
    java_opts = f"-Dlog4j2.configurationFile={log4j.as_uri()} -Djava.io.tmpdir={root / 'java-tmp'}"
    env = {
        "PYSPARK_PYTHON": sys.executable,
        "PYSPARK_DRIVER_PYTHON": sys.executable,
        "SPARK_LOCAL_IP": "127.0.0.1",
    }
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    logging.getLogger("py4j").setLevel(logging.WARNING)
    session = None
    try:
        session = _spark_session(
            "local[2]",
            "retain-tests",
            {
                "spark.sql.shuffle.partitions": "4",
                "spark.default.parallelism": "2",
                "spark.driver.memory": "1g",
                "spark.driver.maxResultSize": "256m",
                "spark.driver.host": "127.0.0.1",
                "spark.driver.bindAddress": "127.0.0.1",
                "spark.driver.extraJavaOptions": java_opts,
                "spark.executor.extraJavaOptions": java_opts,
                "spark.local.dir": str(root / "local"),
                "spark.sql.warehouse.dir": str(root / "warehouse"),
                "spark.sql.session.timeZone": "UTC",
            },
        )
        yield session
    finally:
        if session is not None:
            session.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
