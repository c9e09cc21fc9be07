"""Where MLflow keeps runs and models: settings, URIs, reachability, the client.

:func:`configure` points MLflow at the configured (or environment) store. The environment
variables ``MLFLOW_TRACKING_URI`` and ``MLFLOW_REGISTRY_URI`` win over the config. A relative
SQLite path (``sqlite:///mlruns.db``) resolves against the working directory. An ``http(s)``
server is probed with a bounded timeout, so an unreachable server gives a
:class:`TrackingError` naming the URI instead of a hang. The experiment is fetched or created.
For a local SQLite store its artifacts live beside the database file, in
``<db folder>/mlartifacts/<experiment>``, whatever the working directory; with a tracking
server the server decides (its ``--artifacts-destination``). :func:`configure` also turns
MLflow's own pickle switch (``MLFLOW_ALLOW_PICKLE_DESERIALIZATION``) off unless the user set it.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import mlflow
import requests
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from retain.config import TrackingConfig

PICKLE_ENV = "MLFLOW_ALLOW_PICKLE_DESERIALIZATION"
"""MLflow's switch for unpickling models; :func:`configure` sets it to ``false`` by default."""


class TrackingError(RuntimeError):
    """The tracking server or the model registry cannot serve a request."""


@dataclass(frozen=True)
class TrackingSettings:
    """The resolved MLflow locations used by a run.

    Attributes
    ----------
    tracking_uri, registry_uri : str
        Absolute URIs after environment overrides and path resolution.
    experiment_name, experiment_id : str
        The experiment that runs are logged to.
    artifact_location : str
        Where the experiment stores run and model artifacts.
    """

    tracking_uri: str
    registry_uri: str
    experiment_name: str
    experiment_id: str
    artifact_location: str


def resolve_uri(uri: str, base: Path | None = None) -> str:
    """Make a ``sqlite:///relative.db`` URI absolute; leave every other URI unchanged.

    Parameters
    ----------
    uri : str
        A tracking or registry URI.
    base : Path, optional
        Folder that relative SQLite paths resolve against (default: the working directory).

    Returns
    -------
    str
        The URI, with an absolute database path for SQLite.
    """
    prefix = "sqlite:///"
    if not uri.startswith(prefix):
        return uri
    path = uri[len(prefix) :]
    if path.startswith("/") or path in ("", ":memory:"):
        return uri
    resolved = ((base or Path.cwd()) / path).resolve()
    return prefix + str(resolved)


def sqlite_path(uri: str) -> Path | None:
    """The database file of an absolute ``sqlite:///`` URI, or None for other stores."""
    prefix = "sqlite:///"
    if not uri.startswith(prefix) or not uri[len(prefix) :].startswith("/"):
        return None
    return Path(uri[len(prefix) :].split("?", 1)[0])


def check_reachable(uri: str, timeout_seconds: float) -> None:
    """Fail fast when an ``http(s)`` tracking server does not answer.

    Probes ``<uri>/health`` and, if that path is unknown (a proxy), the REST API. Any other
    scheme is not checked.

    Parameters
    ----------
    uri : str
        The tracking or registry URI.
    timeout_seconds : float
        Connect and read timeout of each probe request.

    Raises
    ------
    TrackingError
        Naming the URI, when the server cannot be reached or answers with a server error.
    """
    if urlsplit(uri).scheme not in ("http", "https"):
        return
    base = uri.rstrip("/")
    try:
        resp = requests.get(f"{base}/health", timeout=timeout_seconds)
        if resp.status_code == 404:
            resp = requests.get(
                f"{base}/api/2.0/mlflow/experiments/search",
                params={"max_results": 1},
                timeout=timeout_seconds,
            )
    except requests.RequestException as exc:
        raise TrackingError(
            f"MLflow tracking server {uri} is not reachable within {timeout_seconds:g} s "
            f"({type(exc).__name__}). Start it (mlflow server ...) or set MLFLOW_TRACKING_URI "
            "or tracking.tracking_uri to a reachable server or a sqlite:/// file."
        ) from exc
    if resp.status_code >= 500 or resp.status_code == 404:
        raise TrackingError(
            f"MLflow tracking server {uri} answered HTTP {resp.status_code}: "
            "is this the address of an MLflow server?"
        )


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-") or "experiment"


_ENV_SET_HERE: dict[str, str | None] = {}


def _user_env(name: str) -> str | None:
    """An environment URI set by the user (not the one exported by an earlier configure())."""
    value = os.environ.get(name) or None
    if value is not None and value == _ENV_SET_HERE.get(name):
        return None
    return value


def configure(cfg: TrackingConfig) -> TrackingSettings:
    """Point MLflow at the configured (or environment) store and select the experiment.

    ``MLFLOW_TRACKING_URI`` and ``MLFLOW_REGISTRY_URI`` override ``cfg.tracking_uri`` and
    ``cfg.registry_uri``; the registry defaults to the tracking URI. For HTTP stores the
    client's ``MLFLOW_HTTP_REQUEST_TIMEOUT`` (``cfg.request_timeout_seconds``, rounded up) and
    ``MLFLOW_HTTP_REQUEST_MAX_RETRIES`` (2) are set unless already present in the environment,
    so a server that disappears mid-run does not stall for minutes.
    ``MLFLOW_ALLOW_PICKLE_DESERIALIZATION`` is set to ``false`` unless the user set it, so that
    MLflow's own flavour loaders refuse pickled models in this process too.

    Parameters
    ----------
    cfg : TrackingConfig
        The ``tracking`` section of a run config.

    Returns
    -------
    TrackingSettings
        The resolved URIs and the experiment.

    Raises
    ------
    TrackingError
        When a server is unreachable (within ``cfg.request_timeout_seconds`` per probe) or the
        experiment cannot be fetched or created.
    """
    env_tracking = _user_env("MLFLOW_TRACKING_URI")
    env_registry = _user_env("MLFLOW_REGISTRY_URI")
    tracking_uri = resolve_uri(env_tracking or cfg.tracking_uri)
    registry_uri = resolve_uri(env_registry or cfg.registry_uri or tracking_uri)
    # retain never unpickles a model; keep MLflow's own loaders from doing it either
    os.environ.setdefault(PICKLE_ENV, "false")
    for uri in dict.fromkeys([tracking_uri, registry_uri]):
        check_reachable(uri, cfg.request_timeout_seconds)
        if urlsplit(uri).scheme in ("http", "https"):
            os.environ.setdefault(
                "MLFLOW_HTTP_REQUEST_TIMEOUT", str(math.ceil(cfg.request_timeout_seconds))
            )
            os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
        db = sqlite_path(uri)
        if db is not None:
            db.parent.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(registry_uri)
    # mlflow.set_*_uri export the URIs as environment variables (for subprocesses); remember
    # them so that a later configure() with another config is not overridden by our own export.
    _ENV_SET_HERE["MLFLOW_TRACKING_URI"] = None if env_tracking else tracking_uri
    _ENV_SET_HERE["MLFLOW_REGISTRY_URI"] = None if env_registry else registry_uri

    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=registry_uri)
    name = cfg.experiment_name
    try:
        experiment = client.get_experiment_by_name(name)
        if experiment is None:
            location = None
            db = sqlite_path(tracking_uri)
            if db is not None:
                location = (db.parent / "mlartifacts" / _slug(name)).as_uri()
            try:
                experiment_id = client.create_experiment(name, artifact_location=location)
            except MlflowException as exc:  # created meanwhile by a concurrent step
                if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                    raise
                experiment_id = client.get_experiment_by_name(name).experiment_id
            experiment = client.get_experiment(experiment_id)
        elif experiment.lifecycle_stage == "deleted":
            client.restore_experiment(experiment.experiment_id)
    except MlflowException as exc:
        raise TrackingError(
            f"cannot open MLflow experiment {name!r} at {tracking_uri}: {exc}"
        ) from exc
    mlflow.set_experiment(experiment_id=experiment.experiment_id)
    return TrackingSettings(
        tracking_uri=tracking_uri,
        registry_uri=registry_uri,
        experiment_name=name,
        experiment_id=experiment.experiment_id,
        artifact_location=experiment.artifact_location,
    )


def client() -> MlflowClient:
    """An :class:`mlflow.MlflowClient` on the URIs set by :func:`configure`."""
    return MlflowClient(
        tracking_uri=mlflow.get_tracking_uri(), registry_uri=mlflow.get_registry_uri()
    )
