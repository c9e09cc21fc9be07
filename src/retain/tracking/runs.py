"""MLflow runs: start one, log the config, metrics, figures, tables and dictionaries.

A job opens its run with :func:`tracked_run` (configure, start, log the config) and logs
through the ``log_*`` functions and the small wrappers below, so that no job imports
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
from pydantic import BaseModel

from retain import __version__
from retain.config import RunConfig
from retain.tracking.store import TrackingSettings, client, configure

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
