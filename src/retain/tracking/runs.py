"""MLflow runs: start one, log the config, metrics, figures, tables and dictionaries.

A job opens its run with :func:`tracked_run` (configure, start, log the config) and logs
through the ``log_*`` functions and the small wrappers at the end (tags, artifacts, the
tracking URI, running an MLproject entry point), so that no job or pipeline imports
:mod:`mlflow` itself.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow.entities import Run
from mlflow.exceptions import MlflowException
from pydantic import BaseModel

from retain import __version__
from retain.config import RunConfig
from retain.names import CONFIG_FOLDER, CONFIG_RESOLVED
from retain.tracking.records import DESCRIPTION_TAG
from retain.tracking.store import TrackingError, TrackingSettings, client, configure

_PARAM_VALUE_MAX = 6000


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
    cfg: RunConfig,
    step: str,
    run_name: str | None = None,
    tags: Mapping[str, str] | None = None,
    *,
    settings: TrackingSettings | None = None,
) -> Iterator[mlflow.ActiveRun]:
    """Configure tracking from ``cfg``, start a run for one pipeline step and log the config.

    A job that has already called :func:`configure` for the same config (to load models)
    passes its ``settings``: they are reused as long as MLflow still points at them, so the
    store is probed once per job. Otherwise (no settings, or MLflow was pointed elsewhere
    meanwhile) :func:`configure` runs here, with its reachability check.

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
    settings : TrackingSettings, optional
        What :func:`configure` returned for ``cfg.tracking`` earlier in this process.

    Yields
    ------
    mlflow.ActiveRun
        The active run, with the config already logged and a default description
        (:func:`default_description`; the job replaces it with
        :func:`retain.tracking.describe_run`).
    """
    if settings is None or not _still_active(settings, cfg):
        settings = configure(cfg.tracking)
    with start_run(
        settings, run_name or f"{step}-{cfg.name}", {"step": step, **dict(tags or {})}
    ) as run:
        mlflow.set_tag(DESCRIPTION_TAG, default_description(cfg, step))
        log_config(cfg)
        yield run


def default_description(cfg: RunConfig, step: str) -> str:
    """The description a run starts with, until its job sets a fuller one.

    Parameters
    ----------
    cfg : RunConfig
        The run config.
    step : str
        The pipeline step.

    Returns
    -------
    str
        E.g. ``"report of config cdnow-sample on data set cdnow_sample."``.
    """
    return f"{step} of config {cfg.name} on data set {cfg.data.dataset_id()}."


def _still_active(settings: TrackingSettings, cfg: RunConfig) -> bool:
    """Whether MLflow still points at ``settings`` and they belong to ``cfg``'s experiment."""
    return (
        settings.experiment_name == cfg.tracking.experiment_name
        and mlflow.get_tracking_uri() == settings.tracking_uri
        and mlflow.get_registry_uri() == settings.registry_uri
    )


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
        mlflow.log_artifact(str(cfg.source_path), artifact_path=CONFIG_FOLDER)
    mlflow.log_dict(cfg.model_dump(mode="json"), CONFIG_RESOLVED)
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
    import matplotlib.pyplot as plt  # (b) pyplot only when a figure is logged

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


def log_artifact(path: str | Path, artifact_path: str | None = None) -> None:
    """Log a local file as an artifact of the active run.

    Parameters
    ----------
    path : str or Path
        The file.
    artifact_path : str, optional
        Folder inside the run's artifacts (default: the root).
    """
    mlflow.log_artifact(str(path), artifact_path=artifact_path)


def set_tags(tags: Mapping[str, Any]) -> None:
    """Set tags on the active run (values as text).

    Parameters
    ----------
    tags : mapping
        Tag name to value.
    """
    mlflow.set_tags({key: str(value) for key, value in tags.items()})


def tracking_uri() -> str:
    """The tracking URI MLflow currently logs to (after :func:`configure`)."""
    return mlflow.get_tracking_uri()


def run_tags(run_id: str) -> dict[str, str]:
    """The tags of a run (``step`` names the job that logged it).

    Parameters
    ----------
    run_id : str
        The run.

    Returns
    -------
    dict
        Tag name to value.

    Raises
    ------
    TrackingError
        When the run cannot be read (deleted, or the store is unreachable).
    """
    try:
        return dict(client().get_run(run_id).data.tags)
    except MlflowException as exc:
        raise TrackingError(f"cannot read run {run_id}: {exc.message}") from exc


def list_artifacts(run_id: str, folder: str | None = None) -> list[str]:
    """The artifact paths directly under ``folder`` of a run (empty when there are none).

    Parameters
    ----------
    run_id : str
        The run.
    folder : str, optional
        Folder inside the run's artifacts (default: the root).

    Returns
    -------
    list of str
        Paths relative to the run's artifact root, e.g. ``backtest/cumulative.csv``.

    Raises
    ------
    TrackingError
        When the run or its artifact store cannot be read.
    """
    try:
        return [f.path for f in client().list_artifacts(run_id, folder)]
    except (MlflowException, OSError) as exc:
        raise TrackingError(f"cannot list the artifacts of run {run_id}: {exc}") from exc


def download_artifact(run_id: str, artifact_path: str, dst: str | Path) -> Path:
    """Download one artifact of a run into a local folder.

    Parameters
    ----------
    run_id : str
        The run.
    artifact_path : str
        Path inside the run's artifacts, e.g. ``backtest/cumulative.csv``.
    dst : str or Path
        Local folder to download into.

    Returns
    -------
    Path
        The local file.

    Raises
    ------
    TrackingError
        Naming the run and the artifact, when it cannot be downloaded (missing, or the store
        cannot be read).
    """
    try:
        local = mlflow.artifacts.download_artifacts(
            run_id=run_id, artifact_path=artifact_path, dst_path=str(dst)
        )
    except (MlflowException, OSError) as exc:
        raise TrackingError(
            f"run {run_id} has no readable artifact {artifact_path!r}: {exc}"
        ) from exc
    return Path(local)


def run_entry_point(
    project_dir: str | Path, entry_point: str, parameters: Mapping[str, str], experiment_id: str
) -> tuple[bool, Run]:
    """Run an MLproject entry point in this environment as its own run and wait for it.

    The pattern of MLflow's multistep workflow example: a pipeline's parent run launches each
    step with :func:`mlflow.projects.run` (``env_manager="local"``) and hands the next step
    what the finished run logged.

    Parameters
    ----------
    project_dir : str or Path
        The folder holding ``MLproject``.
    entry_point : str
        Name of the entry point.
    parameters : mapping
        Its parameters.
    experiment_id : str
        The experiment the step's run goes to.

    Returns
    -------
    ok : bool
        Whether the step exited successfully.
    run : mlflow.entities.Run
        The step's finished run (tags, params, metrics).
    """
    import mlflow.projects  # (b) only the pipeline runner needs it

    submitted = mlflow.projects.run(
        str(project_dir),
        entry_point,
        parameters=dict(parameters),
        experiment_id=experiment_id,
        env_manager="local",
        synchronous=False,
    )
    ok = submitted.wait()
    return ok, client().get_run(submitted.run_id)
