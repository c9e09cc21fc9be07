"""MLflow tracking, model registry and the promotion gate.

This is the only library module that imports :mod:`mlflow` (the jobs in :mod:`retain.jobs`
use it too). It does five things:

1. **Configure** the tracking and registry URIs (:func:`configure`). The environment variables
   ``MLFLOW_TRACKING_URI`` and ``MLFLOW_REGISTRY_URI`` win over the config. A relative SQLite
   path (``sqlite:///mlruns.db``) resolves against the working directory. An ``http(s)`` server
   is probed with a bounded timeout, so an unreachable server gives a :class:`TrackingError`
   naming the URI instead of a hang. The experiment is fetched or created. For a local SQLite
   store its artifacts live beside the database file, in ``<db folder>/mlartifacts/<experiment>``,
   whatever the working directory; with a tracking server the server decides (its
   ``--artifacts-destination``).
2. **Log** a run: the config (YAML, resolved JSON, flattened params, hash tag), metrics, figures,
   tables and dictionaries (:func:`tracked_run`, :func:`log_config`, :func:`log_metrics`, ...).
3. **Log and register models**. ``clv`` is a pyfunc model whose only artifact is the plain JSON of
   :meth:`retain.clv.ClvModel.to_dict`; the pyfunc wrapper is "model from code" (a three-line
   script), so nothing is pickled. ``churn`` uses the LightGBM flavour (LightGBM's own text
   format) with the calibrator and the feature list stored as JSON beside it. Every new version
   gets the alias ``challenger`` and, as version tags ``metric.<name>``, the metrics the
   promotion gate reads.
4. **Load** models by alias, version number or run id (:func:`load_clv_model`,
   :func:`load_churn_model`).
5. **Promote** (:func:`promote`): move ``champion`` to the challenger when it is at least as good
   as the champion (within a tolerance) and not worse than the best baseline logged beside it.
   The previous champion keeps the alias ``previous_champion``; :func:`rollback` swaps the two.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
import os
import re
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import urlsplit

import mlflow
import mlflow.lightgbm
import mlflow.pyfunc
import pandas as pd
import requests
from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature
from pydantic import BaseModel

from retain import __version__
from retain.config import PromotionConfig, RunConfig, TrackingConfig

CLV_MODEL_NAME = "clv"
CHURN_MODEL_NAME = "churn"
CHALLENGER = "challenger"
CHAMPION = "champion"
PREVIOUS_CHAMPION = "previous_champion"

CLV_ARTIFACT = "clv_model.json"
CALIBRATOR_FILE = "calibrator.json"
FEATURES_FILE = "features.json"
METRIC_TAG_PREFIX = "metric."

CLV_INPUT_COLUMNS = ("frequency", "recency", "tenure", "monetary_value")
"""Input columns of the CLV pyfunc; ``recency`` and ``tenure`` carry the time unit suffix."""

_UNIT_SUFFIX = {"D": "days", "W": "weeks"}
_RUN_ID = re.compile(r"^[0-9a-f]{32}$")
_PARAM_VALUE_MAX = 6000

_CLV_PYFUNC_CODE = '''"""MLflow "model from code" entry for the retain CLV model (no pickle)."""
import mlflow
from retain.tracking import ClvPyfunc

mlflow.models.set_model(ClvPyfunc())
'''


class TrackingError(RuntimeError):
    """The tracking server or the model registry cannot serve a request."""


# ------------------------------------------------------------------------ configure


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


# ---------------------------------------------------------------------------- runs


@contextmanager
def start_run(
    settings: TrackingSettings, run_name: str, tags: Mapping[str, str] | None = None
) -> Iterator[mlflow.ActiveRun]:
    """Start an MLflow run in the configured experiment; end it (FAILED on error) on exit.

    Inside an active run (a pipeline's parent run in the same process) the new run is nested;
    when ``MLFLOW_RUN_ID`` is set (a step started by ``mlflow run``) that run is resumed in the
    experiment the launcher put it in.

    Parameters
    ----------
    settings : TrackingSettings
        From :func:`configure`.
    run_name : str
        Display name of the run.
    tags : mapping, optional
        Extra run tags.

    Yields
    ------
    mlflow.ActiveRun
        The active run.
    """
    all_tags = {"retain.version": __version__, **dict(tags or {})}
    experiment_id = settings.experiment_id
    launched = os.environ.get("MLFLOW_RUN_ID") if mlflow.active_run() is None else None
    if launched:
        # A step started by `mlflow run`: the launcher chose the run and so its experiment
        # (e.g. the default one, or --experiment-name); resume it there.
        experiment_id = client().get_run(launched).info.experiment_id
        mlflow.set_experiment(experiment_id=experiment_id)
    with mlflow.start_run(
        experiment_id=experiment_id,
        run_name=run_name,
        tags=all_tags,
        nested=mlflow.active_run() is not None,
    ) as run:
        yield run


@contextmanager
def tracked_run(
    cfg: RunConfig, step: str, run_name: str | None = None, tags: Mapping[str, str] | None = None
) -> Iterator[mlflow.ActiveRun]:
    """Configure tracking from ``cfg``, start a run for one pipeline step and log the config.

    Parameters
    ----------
    cfg : RunConfig
        The validated run config (its ``tracking`` section selects the store).
    step : str
        The pipeline step (``train_clv``, ``promote``, ...), stored as tag ``step``.
    run_name : str, optional
        Defaults to ``"<step>-<config name>"``.
    tags : mapping, optional
        Extra run tags.

    Yields
    ------
    mlflow.ActiveRun
        The active run, with the config already logged.
    """
    settings = configure(cfg.tracking)
    with start_run(
        settings, run_name or f"{step}-{cfg.name}", {"step": step, **dict(tags or {})}
    ) as run:
        log_config(cfg)
        yield run


def flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Flatten nested mappings to dotted keys; lists stay values.

    Parameters
    ----------
    data : mapping
        Nested mapping (e.g. ``RunConfig.model_dump(mode="json")``).
    prefix : str
        Prefix of every key.

    Returns
    -------
    dict
        ``{"clv.time_unit": "W", ...}``.
    """
    out: dict[str, Any] = {}
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.update(flatten(value, dotted + "."))
        else:
            out[dotted] = value
    return out


def log_params_flat(config: BaseModel | Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Log a config (pydantic model or mapping) as params with flattened dotted keys.

    Lists and empty mappings are logged as compact JSON; values longer than MLflow's limit are
    truncated (the full config is in the ``config/`` artifacts).

    Parameters
    ----------
    config : BaseModel or mapping
        What to log.
    prefix : str
        Prefix of every key.

    Returns
    -------
    dict
        The params as logged.
    """
    data = config.model_dump(mode="json") if isinstance(config, BaseModel) else dict(config)
    params: dict[str, str] = {}
    for key, value in flatten(data, prefix).items():
        text = value if isinstance(value, str) else json.dumps(value)
        params[key] = text[:_PARAM_VALUE_MAX]
    mlflow.log_params(params)
    return params


def log_config(cfg: RunConfig) -> str:
    """Log a run config: the YAML file as given, the resolved JSON, params and its hash.

    Parameters
    ----------
    cfg : RunConfig
        The validated config.

    Returns
    -------
    str
        The config hash (also the run tag ``config_hash``).
    """
    config_hash = cfg.config_hash()
    mlflow.set_tag("config_hash", config_hash)
    mlflow.set_tag("config_name", cfg.name)
    if cfg.source_path is not None and Path(cfg.source_path).is_file():
        mlflow.log_artifact(str(cfg.source_path), artifact_path="config")
    mlflow.log_dict(cfg.model_dump(mode="json"), "config/resolved.json")
    log_params_flat(cfg)
    return config_hash


def log_metrics(metrics: Mapping[str, float | int | None], step: int | None = None) -> None:
    """Log numeric metrics, skipping ``None`` values.

    Parameters
    ----------
    metrics : mapping
        Metric name to number (numpy scalars are accepted).
    step : int, optional
        Metric step.

    Raises
    ------
    TypeError
        When a value is not a number.
    """
    clean: dict[str, float] = {}
    for name, value in metrics.items():
        if value is None:
            continue
        try:
            clean[name] = float(value)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"metric {name!r} is not a number: {value!r}") from exc
    if clean:
        mlflow.log_metrics(clean, step=step)


def log_figure(figure: Any, artifact_file: str) -> None:
    """Log a matplotlib Figure (or the figure of an Axes) as an image, then close it.

    Parameters
    ----------
    figure : matplotlib Figure or Axes
        What to log.
    artifact_file : str
        Artifact path, e.g. ``"plots/backtest.png"``.
    """
    import matplotlib.pyplot as plt

    fig = figure.get_figure() if hasattr(figure, "get_figure") else figure
    while hasattr(fig, "get_figure") and fig.get_figure() is not fig:  # subfigures
        fig = fig.get_figure()
    try:
        mlflow.log_figure(fig, artifact_file)
    finally:
        plt.close(fig)


def log_table(table: pd.DataFrame, artifact_file: str, index: bool = True) -> None:
    """Log a DataFrame as a CSV or JSON (records) artifact, chosen by the file suffix.

    Parameters
    ----------
    table : DataFrame
        The table.
    artifact_file : str
        Artifact path ending in ``.csv`` or ``.json``.
    index : bool
        Whether to keep the index as a column.
    """
    suffix = Path(artifact_file).suffix.lower()
    if suffix not in (".csv", ".json"):
        raise ValueError(f"artifact_file must end in .csv or .json, got {artifact_file!r}")
    artifact_dir = str(Path(artifact_file).parent) if "/" in artifact_file else None
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / Path(artifact_file).name
        frame = table.reset_index() if index else table
        if suffix == ".csv":
            frame.to_csv(path, index=False)
        else:
            frame.to_json(path, orient="records", date_format="iso", indent=1)
        mlflow.log_artifact(str(path), artifact_path=artifact_dir)


def log_dict(data: Mapping[str, Any], artifact_file: str) -> None:
    """Log a JSON-serialisable mapping as a ``.json`` or ``.yaml`` artifact.

    Parameters
    ----------
    data : mapping
        The data.
    artifact_file : str
        Artifact path; the suffix picks the format.
    """
    mlflow.log_dict(dict(data), artifact_file)


# --------------------------------------------------------------------------- models


class ClvPyfunc(mlflow.pyfunc.PythonModel):
    """Pyfunc wrapper of :class:`retain.clv.ClvModel`, restored from its JSON artifact.

    Input: one row per customer with ``frequency``, ``recency_<unit>``, ``tenure_<unit>`` and
    ``monetary_value``. Output: the columns of :meth:`ClvModel.predict`, one row per input row
    in the same order (the signature drops other columns such as ``customer_id``; join on
    position). The optional param ``horizon`` overrides the model's horizon (months).
    """

    def load_context(self, context: Any) -> None:
        from retain.clv import ClvModel

        with open(context.artifacts["clv_model"]) as fh:
            self.model = ClvModel.from_dict(json.load(fh))

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        summary = pd.DataFrame(model_input)
        if "customer_id" in summary.columns:
            summary = summary.set_index("customer_id")
        horizon = (params or {}).get("horizon")
        return self.model.predict(summary, horizon=horizon)


class LoadedClvModel(NamedTuple):
    """A CLV model loaded from the registry and its model version."""

    model: Any
    version: ModelVersion


@dataclass(frozen=True)
class LoadedChurnModel:
    """A churn model from the registry; unpacks as ``booster, calibrator, features, version``.

    Attributes
    ----------
    booster : lightgbm.Booster
        The model (raw, uncalibrated probabilities).
    calibrator : dict
        The calibrator as plain JSON data.
    feature_names : list of str
        Input columns in model order.
    version : ModelVersion
        The registry entry.
    catalogue : dict
        Feature catalogue entries (meaning, unit, ...) keyed by feature name (not unpacked).
    """

    booster: Any
    calibrator: dict[str, Any]
    feature_names: list[str]
    version: ModelVersion
    catalogue: dict[str, Any] = field(default_factory=dict)

    def __iter__(self) -> Iterator[Any]:
        return iter((self.booster, self.calibrator, self.feature_names, self.version))


def clv_input_columns(time_unit: str) -> list[str]:
    """The CLV pyfunc input columns for a time unit (``"W"`` -> ``recency_weeks``...)."""
    suffix = _UNIT_SUFFIX[time_unit]
    return ["frequency", f"recency_{suffix}", f"tenure_{suffix}", "monetary_value"]


def _pip_requirements(*packages: str) -> list[str]:
    from importlib.metadata import PackageNotFoundError, version

    reqs = [f"retain=={__version__}"]
    for name in ("mlflow", "pandas", "numpy", "scipy", *packages):
        try:
            reqs.append(f"{name}=={version(name)}")
        except PackageNotFoundError:  # pragma: no cover - only in broken envs
            reqs.append(name)
    return reqs


def _finish_registration(
    model_name: str,
    model_info: Any,
    metrics: Mapping[str, float] | None,
    tags: Mapping[str, str] | None,
) -> ModelVersion:
    version = getattr(model_info, "registered_model_version", None)
    if version is None:
        raise TrackingError(f"model {model_name!r} was logged but not registered")
    mc = client()
    for key, value in (metrics or {}).items():
        text = repr(float(value))  # plain float text (repr of numpy scalars is not parseable)
        mc.set_model_version_tag(model_name, str(version), METRIC_TAG_PREFIX + key, text)
    for key, value in (tags or {}).items():
        mc.set_model_version_tag(model_name, str(version), key, str(value))
    mc.set_registered_model_alias(model_name, CHALLENGER, str(version))
    return mc.get_model_version(model_name, str(version))


def log_clv_model(
    model: Any,
    example_summary: pd.DataFrame,
    metrics: Mapping[str, float] | None = None,
    model_name: str = CLV_MODEL_NAME,
    tags: Mapping[str, str] | None = None,
) -> ModelVersion:
    """Log a fitted CLV model as a JSON-backed pyfunc, register it and alias it ``challenger``.

    Must be called inside an active run (see :func:`tracked_run`).

    Parameters
    ----------
    model : retain.clv.ClvModel
        A fitted model (``to_dict()``, ``predict()``, ``time_unit``).
    example_summary : DataFrame
        A few rows of an RFM summary in the model's time unit; gives the signature and the
        input example.
    metrics : mapping, optional
        Metrics to copy onto the version as tags ``metric.<name>`` (the promotion gate reads
        them, falling back to the source run's metrics).
    model_name : str
        Registered model name.
    tags : mapping, optional
        Extra version tags.

    Returns
    -------
    ModelVersion
        The new version (alias ``challenger``).
    """
    if mlflow.active_run() is None:
        raise TrackingError("log_clv_model needs an active MLflow run")
    columns = clv_input_columns(model.time_unit)
    missing = [c for c in columns if c not in example_summary.columns]
    if missing:
        raise ValueError(f"example_summary lacks columns {missing} for time unit {model.time_unit}")
    example = example_summary[columns].head(5)
    output = model.predict(example)
    horizon = getattr(model, "horizon", None)
    params = {"horizon": int(horizon)} if horizon is not None else None
    signature = infer_signature(example.reset_index(drop=True), output, params=params)
    with tempfile.TemporaryDirectory() as tmp:
        json_path = Path(tmp) / CLV_ARTIFACT
        json_path.write_text(json.dumps(model.to_dict(), indent=1, sort_keys=True))
        code_path = Path(tmp) / "clv_pyfunc.py"
        code_path.write_text(_CLV_PYFUNC_CODE)
        info = mlflow.pyfunc.log_model(
            name=model_name,
            python_model=str(code_path),
            artifacts={"clv_model": str(json_path)},
            signature=signature,
            input_example=example.reset_index(drop=True),
            registered_model_name=model_name,
            pip_requirements=_pip_requirements("lifetimes"),
        )
    return _finish_registration(model_name, info, metrics, tags)


def _plain(entry: Any) -> Any:
    """A catalogue entry as JSON data (dataclasses such as ``FeatureInfo`` become dicts)."""
    if dataclasses.is_dataclass(entry) and not isinstance(entry, type):
        return dataclasses.asdict(entry)
    return entry


def log_churn_model(
    booster: Any,
    calibrator: Mapping[str, Any] | Any,
    feature_names: list[str],
    catalogue: Mapping[str, Any],
    input_example: pd.DataFrame,
    metrics: Mapping[str, float] | None = None,
    model_name: str = CHURN_MODEL_NAME,
    tags: Mapping[str, str] | None = None,
) -> ModelVersion:
    """Log a LightGBM churn model (LightGBM flavour), register it and alias it ``challenger``.

    The calibrator (plain JSON: isotonic thresholds or sigmoid ``a``/``b``) and the feature
    list with catalogue entries are stored as JSON files inside the model (``extra_files``)
    and as run artifacts. Must be called inside an active run.

    Parameters
    ----------
    booster : lightgbm.Booster
        The trained booster.
    calibrator : mapping or object with ``to_dict()``
        The probability calibrator as plain data.
    feature_names : list of str
        Model input columns, in order.
    catalogue : mapping
        Feature name -> catalogue entry (meaning, unit, ...) as plain data.
    input_example : DataFrame
        A few rows of model input (the signature is inferred from it).
    metrics : mapping, optional
        Metrics to copy onto the version as tags ``metric.<name>`` (e.g. ``test_roc_auc`` and
        ``baseline_<name>_roc_auc``).
    model_name : str
        Registered model name.
    tags : mapping, optional
        Extra version tags.

    Returns
    -------
    ModelVersion
        The new version (alias ``challenger``).
    """
    if mlflow.active_run() is None:
        raise TrackingError("log_churn_model needs an active MLflow run")
    cal = calibrator.to_dict() if hasattr(calibrator, "to_dict") else dict(calibrator)
    example = input_example[list(feature_names)].head(5)
    signature = infer_signature(example, booster.predict(example))
    features_doc = {
        "feature_names": list(feature_names),
        "catalogue": {name: _plain(catalogue.get(name)) for name in feature_names},
    }
    with tempfile.TemporaryDirectory() as tmp:
        cal_path = Path(tmp) / CALIBRATOR_FILE
        cal_path.write_text(json.dumps(cal, indent=1, default=float))
        feat_path = Path(tmp) / FEATURES_FILE
        feat_path.write_text(json.dumps(features_doc, indent=1, default=str))
        info = mlflow.lightgbm.log_model(
            booster,
            name=model_name,
            signature=signature,
            input_example=example,
            registered_model_name=model_name,
            extra_files=[str(cal_path), str(feat_path)],
            pip_requirements=_pip_requirements("lightgbm"),
        )
        mlflow.log_artifact(str(cal_path), artifact_path=model_name)
        mlflow.log_artifact(str(feat_path), artifact_path=model_name)
    return _finish_registration(model_name, info, metrics, tags)


def resolve_version(model_name: str, ref: str | int = CHAMPION) -> ModelVersion:
    """Find a registered model version by alias, version number or source run id.

    Parameters
    ----------
    model_name : str
        Registered model name.
    ref : str or int
        An alias (``"champion"``), a version (``3`` or ``"3"``) or a 32-character run id
        (the latest version logged by that run).

    Returns
    -------
    ModelVersion
        The version.

    Raises
    ------
    TrackingError
        When nothing matches.
    """
    mc = client()
    text = str(ref)
    try:
        if text.isdigit():
            return mc.get_model_version(model_name, text)
        if _RUN_ID.match(text):
            found = mc.search_model_versions(f"name='{model_name}' and run_id='{text}'")
            if not found:
                raise TrackingError(f"no version of model {model_name!r} from run {text}")
            return max(found, key=lambda v: int(v.version))
        return mc.get_model_version_by_alias(model_name, text)
    except MlflowException as exc:
        raise TrackingError(
            f"model {model_name!r} has no version {text!r} in {mlflow.get_registry_uri()}: "
            f"{exc.message}"
        ) from exc


def _download_model(version: ModelVersion, dst: str) -> Path:
    uri = f"models:/{version.name}/{version.version}"
    return Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=dst))


def load_clv_model(ref: str | int = CHAMPION, model_name: str = CLV_MODEL_NAME) -> LoadedClvModel:
    """Load a registered CLV model from its JSON artifact (no pyfunc, no pickle).

    Parameters
    ----------
    ref : str or int
        Alias, version number or run id (see :func:`resolve_version`).
    model_name : str
        Registered model name.

    Returns
    -------
    LoadedClvModel
        ``(model, version)``; ``model`` is a :class:`retain.clv.ClvModel`.
    """
    from retain.clv import ClvModel

    version = resolve_version(model_name, ref)
    with tempfile.TemporaryDirectory() as tmp:
        root = _download_model(version, tmp)
        found = sorted(root.rglob(CLV_ARTIFACT))
        if not found:
            raise TrackingError(f"{model_name} version {version.version} has no {CLV_ARTIFACT}")
        data = json.loads(found[0].read_text())
    return LoadedClvModel(ClvModel.from_dict(data), version)


def load_churn_model(
    ref: str | int = CHAMPION, model_name: str = CHURN_MODEL_NAME
) -> LoadedChurnModel:
    """Load a registered churn model: booster, calibrator JSON and feature list.

    Parameters
    ----------
    ref : str or int
        Alias, version number or run id (see :func:`resolve_version`).
    model_name : str
        Registered model name.

    Returns
    -------
    LoadedChurnModel
        ``(booster, calibrator, feature_names, version, catalogue)``.
    """
    version = resolve_version(model_name, ref)
    with tempfile.TemporaryDirectory() as tmp:
        root = _download_model(version, tmp)
        booster = mlflow.lightgbm.load_model(str(root))
        cal = sorted(root.rglob(CALIBRATOR_FILE))
        feats = sorted(root.rglob(FEATURES_FILE))
        if not cal or not feats:
            raise TrackingError(
                f"{model_name} version {version.version} lacks {CALIBRATOR_FILE} or {FEATURES_FILE}"
            )
        calibrator = json.loads(cal[0].read_text())
        features_doc = json.loads(feats[0].read_text())
    return LoadedChurnModel(
        booster,
        calibrator,
        list(features_doc["feature_names"]),
        version,
        dict(features_doc.get("catalogue") or {}),
    )


# ------------------------------------------------------------------------ promotion


@dataclass(frozen=True)
class PromotionDecision:
    """The outcome of the promotion gate.

    Attributes
    ----------
    accepted : bool
        True when ``champion`` now points at the challenger.
    reason : str
        Plain-language explanation (always set, also on refusal).
    challenger_version, champion_version : str or None
        The versions compared (``champion_version`` is the champion before the decision).
    model_name : str
        Registered model name.
    metrics : dict
        The numbers the decision used.
    """

    accepted: bool
    reason: str
    challenger_version: str | None
    champion_version: str | None
    model_name: str = ""
    metrics: dict[str, float] = field(default_factory=dict)


def version_metrics(version: ModelVersion) -> dict[str, float]:
    """Metrics of a model version: its source run's metrics, updated by ``metric.*`` tags.

    Parameters
    ----------
    version : ModelVersion
        The registry entry.

    Returns
    -------
    dict
        Metric name to value.
    """
    metrics: dict[str, float] = {}
    if version.run_id:
        try:
            metrics.update(client().get_run(version.run_id).data.metrics)
        except MlflowException as exc:  # a deleted source run leaves the version tags
            if exc.error_code not in _NOT_FOUND:
                raise TrackingError(f"cannot read run {version.run_id}: {exc.message}") from exc
    for key, value in (version.tags or {}).items():
        if key.startswith(METRIC_TAG_PREFIX):
            try:
                metrics[key[len(METRIC_TAG_PREFIX) :]] = float(value)
            except ValueError:
                continue
    return metrics


_NOT_FOUND = ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE")


def _alias_version(model_name: str, alias: str) -> ModelVersion | None:
    # only "no such model/alias" means absent; a server or network error must not look like
    # "no champion yet" (which would promote without comparison)
    try:
        return client().get_model_version_by_alias(model_name, alias)
    except MlflowException as exc:
        if exc.error_code in _NOT_FOUND:
            return None
        raise TrackingError(f"cannot read alias {model_name}@{alias}: {exc.message}") from exc


def _gate_churn(
    chal: dict[str, float], champ: dict[str, float] | None, cfg: PromotionConfig
) -> tuple[bool, str, dict[str, float]]:
    key = "test_roc_auc"
    used: dict[str, float] = {}
    if key not in chal:
        return False, f"challenger has no {key} metric", used
    auc = chal[key]
    used["challenger_test_roc_auc"] = auc
    baselines = {
        k: v for k, v in chal.items() if k.startswith("baseline_") and k.endswith("_roc_auc")
    }
    if baselines:
        best_name, best = max(baselines.items(), key=lambda kv: kv[1])
        used["best_baseline_roc_auc"] = best
        if auc < best:
            return (
                False,
                f"challenger test AUC {auc:.4f} is below the best baseline "
                f"{best_name} = {best:.4f}",
                used,
            )
        baseline_text = f"not below the best baseline {best_name} = {best:.4f}"
    else:
        baseline_text = "no baseline AUC logged"
    if champ is None:
        return True, f"no champion yet; challenger test AUC {auc:.4f}, {baseline_text}", used
    if key not in champ:
        return False, f"champion has no {key} metric to compare with", used
    ref = champ[key]
    used["champion_test_roc_auc"] = ref
    floor = ref - cfg.auc_tolerance
    if auc < floor:
        return (
            False,
            f"challenger test AUC {auc:.4f} is below champion {ref:.4f} minus tolerance "
            f"{cfg.auc_tolerance:g} (= {floor:.4f})",
            used,
        )
    return (
        True,
        f"challenger test AUC {auc:.4f} >= champion {ref:.4f} - {cfg.auc_tolerance:g}, "
        f"{baseline_text}",
        used,
    )


def _gate_clv(
    chal: dict[str, float], champ: dict[str, float] | None, cfg: PromotionConfig
) -> tuple[bool, str, dict[str, float]]:
    key = f"holdout_{cfg.clv_metric}"
    used: dict[str, float] = {}
    if key not in chal:
        return False, f"challenger has no {key} metric", used
    err = chal[key]
    used[f"challenger_{key}"] = err
    suffix = f"_{key}"
    baselines = {k: v for k, v in chal.items() if k.startswith("baseline_") and k.endswith(suffix)}
    if baselines:
        best_name, best = min(baselines.items(), key=lambda kv: kv[1])
        used[f"best_baseline_{key}"] = best
        if err > best:
            return (
                False,
                f"challenger {key} {err:.4f} is worse (higher) than the best baseline "
                f"{best_name} = {best:.4f}",
                used,
            )
        baseline_text = f"not worse than the best baseline {best_name} = {best:.4f}"
    else:
        baseline_text = "no baseline logged"
    if champ is None:
        return True, f"no champion yet; challenger {key} {err:.4f}, {baseline_text}", used
    if key not in champ:
        return False, f"champion has no {key} metric to compare with", used
    ref = champ[key]
    used[f"champion_{key}"] = ref
    ceiling = ref * (1.0 + cfg.clv_tolerance)
    if err > ceiling:
        return (
            False,
            f"challenger {key} {err:.4f} is worse than champion {ref:.4f} "
            f"(allowed up to {ceiling:.4f} with relative tolerance {cfg.clv_tolerance:g})",
            used,
        )
    return (
        True,
        f"challenger {key} {err:.4f} <= champion {ref:.4f} x (1 + {cfg.clv_tolerance:g}), "
        f"{baseline_text}",
        used,
    )


def promote(model_name: str, cfg: PromotionConfig) -> PromotionDecision:
    """Move the ``champion`` alias to the ``challenger`` when the gate accepts it.

    Rules (metrics read with :func:`version_metrics`):

    - ``churn``: accept when the challenger's ``test_roc_auc`` is at least the champion's minus
      ``cfg.auc_tolerance`` and not below the best ``baseline_<name>_roc_auc`` of its run.
    - ``clv``: accept when ``holdout_<cfg.clv_metric>`` (lower is better) is at most the
      champion's times ``1 + cfg.clv_tolerance`` and not above the best
      ``baseline_<name>_holdout_<metric>`` of its run.
    - Without a champion, a challenger that passes the baseline check becomes champion.

    On acceptance the old champion gets the alias ``previous_champion``. Either way the
    challenger version gets tags ``promotion.decision``, ``promotion.reason`` and
    ``promotion.decided_at``.

    Parameters
    ----------
    model_name : str
        ``"churn"`` or ``"clv"`` (a name starting with either picks its rule).
    cfg : PromotionConfig
        Tolerances and the CLV metric.

    Returns
    -------
    PromotionDecision
        The decision with its reason.

    Raises
    ------
    TrackingError
        When the model has no ``challenger`` or the model name has no rule.
    """
    if model_name.startswith(CHURN_MODEL_NAME):
        gate = _gate_churn
    elif model_name.startswith(CLV_MODEL_NAME):
        gate = _gate_clv
    else:
        raise TrackingError(f"no promotion rule for model {model_name!r} (churn or clv)")
    challenger = _alias_version(model_name, CHALLENGER)
    if challenger is None:
        raise TrackingError(
            f"model {model_name!r} has no {CHALLENGER!r} version in {mlflow.get_registry_uri()}"
        )
    champion = _alias_version(model_name, CHAMPION)
    champ_version = str(champion.version) if champion is not None else None
    chal_version = str(challenger.version)
    if champ_version == chal_version:
        return PromotionDecision(
            True,
            f"version {chal_version} is already the champion; nothing to do",
            chal_version,
            champ_version,
            model_name,
        )
    ok, reason, used = gate(
        version_metrics(challenger),
        version_metrics(champion) if champion is not None else None,
        cfg,
    )
    mc = client()
    if ok:
        if champion is not None:
            mc.set_registered_model_alias(model_name, PREVIOUS_CHAMPION, champ_version)
        mc.set_registered_model_alias(model_name, CHAMPION, chal_version)
    stamp = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    for key, value in {
        "promotion.decision": "accepted" if ok else "refused",
        "promotion.reason": reason,
        "promotion.decided_at": stamp,
        "promotion.champion_before": str(champ_version),
    }.items():
        mc.set_model_version_tag(model_name, chal_version, key, value)
    return PromotionDecision(ok, reason, chal_version, champ_version, model_name, used)


def rollback(model_name: str) -> str:
    """Point ``champion`` back at the ``previous_champion`` version (and swap the two).

    A second call undoes the first. The versions get the tag ``promotion.rolled_back_at``.

    Parameters
    ----------
    model_name : str
        Registered model name.

    Returns
    -------
    str
        The version that is champion now.

    Raises
    ------
    TrackingError
        When the model has no ``champion`` or no ``previous_champion``.
    """
    champion = _alias_version(model_name, CHAMPION)
    previous = _alias_version(model_name, PREVIOUS_CHAMPION)
    if champion is None or previous is None:
        raise TrackingError(
            f"model {model_name!r} needs both {CHAMPION!r} and {PREVIOUS_CHAMPION!r} to roll back"
        )
    mc = client()
    old, new = str(champion.version), str(previous.version)
    mc.set_registered_model_alias(model_name, CHAMPION, new)
    mc.set_registered_model_alias(model_name, PREVIOUS_CHAMPION, old)
    stamp = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    for version in (old, new):
        mc.set_model_version_tag(model_name, version, "promotion.rolled_back_at", stamp)
    return new
