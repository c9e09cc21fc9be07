"""The ``report`` step: one self-contained HTML report for analysts.

Load, build, write, log: it reads the scores that ``retain score`` wrote for the date (it
never scores anew), loads the model versions their manifest names with their metrics and the
artifacts of their training runs (backtest tables, evaluation charts), rebuilds the churn
model's inputs, calls the pure builder :func:`retain.reporting.report.build_report`, writes
the page into its own folder beside the scores (atomically, see
:func:`retain.io.owned_directory`) and logs it to MLflow. The page embeds every image
(base64) and opens offline. When ``retain evaluate-actions`` has evaluated these or earlier
scores, the latest evaluation gets its own section
(:func:`retain.jobs.evaluate_actions.latest_evaluation`).
"""

from __future__ import annotations

import datetime as dt
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from retain import tracking
from retain.config import ConfigError, RunConfig, load_policy
from retain.features.build import build_features
from retain.io import (
    OutputError,
    check_output_folder,
    load_inputs,
    output_folder,
    owned_directory,
    write_text_atomic,
)
from retain.io.history import read_scores, read_scores_and_manifest
from retain.jobs.compare import earlier_scores_date
from retain.jobs.evaluate_actions import latest_evaluation
from retain.names import (
    CHURN_PLOTS,
    CLV_BACKTEST_TABLES,
    MANIFEST_DRIFT,
    READ_BY_REPORT,
    REPORT_FILE,
    REPORT_FOLDER,
    REPORT_KIND,
    SCORES_KIND,
)
from retain.reporting.html import Report
from retain.reporting.report import build_report
from retain.scoring import ScoringModels, check_model_inputs, model_features
from retain.timeline import day
from retain.tracking import LoadedScoringModels
from retain.transitions import COMPARE_COLUMNS, Transitions, compare_scores

Progress = Callable[[str], None]


@dataclass(frozen=True)
class ReportResult:
    """What :func:`report` produced: the file, its image count and the MLflow run."""

    path: Path
    n_images: int
    run_id: str
    warnings: list[str] = field(default_factory=list)


def _training_artifacts(version: Any, wanted: Mapping[str, str], dst: str) -> dict[str, Path]:
    """Download what the report reads from a model version's training run.

    What is expected follows from the step that logged the run (its ``step`` tag) and
    :data:`retain.names.READ_BY_REPORT`: a ``train_clv`` run always logs the backtest tables,
    a ``train_churn`` run the evaluation charts. A version without a source run, or whose run
    was not logged by a training job, has none of them (an empty dict).

    Raises
    ------
    retain.tracking.TrackingError
        Naming the run and the artifact, when an expected artifact is missing or unreadable.
    """
    run_id = version.run_id
    if not run_id:
        return {}
    step = tracking.run_tags(run_id).get("step", "")
    expected = set(READ_BY_REPORT.get(step, ()))
    found: dict[str, Path] = {}
    for name, artifact in wanted.items():
        if artifact not in expected:
            continue
        try:
            found[name] = tracking.download_artifact(run_id, artifact, dst)
        except tracking.TrackingError as exc:
            raise tracking.TrackingError(
                f"the report needs {artifact} of run {run_id} ({step} run of model "
                f"{version.name} version {version.version}), which cannot be read: {exc}; "
                "retrain the model or restore the run's artifacts"
            ) from exc
    return found


def _backtest_tables(clv_version: Any) -> dict[str, pd.DataFrame]:
    """The CLV backtest tables of the version's training run (empty when none were logged)."""
    with tempfile.TemporaryDirectory() as tmp:
        paths = _training_artifacts(clv_version, CLV_BACKTEST_TABLES, tmp)
        tables = {name: pd.read_csv(path) for name, path in paths.items()}
    if "cumulative" in tables and "date" in tables["cumulative"]:
        tables["cumulative"]["date"] = pd.to_datetime(tables["cumulative"]["date"])
    return tables


def _churn_images(churn_version: Any) -> dict[str, bytes]:
    """The churn evaluation charts (PNG bytes) of the version's training run."""
    with tempfile.TemporaryDirectory() as tmp:
        paths = _training_artifacts(churn_version, CHURN_PLOTS, tmp)
        return {name: path.read_bytes() for name, path in paths.items()}


def _scores_on_disk(scores_dir: Path, when: pd.Timestamp) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The scores and manifest retain wrote for a date (``<root>/<name>/scores/as_of=<date>``).

    Read by :func:`retain.io.history.read_scores_and_manifest`; OutputError when absent,
    unreadable or not retain's scores of the date.
    """
    root, config_name = scores_dir.parents[2], scores_dir.parents[1].name
    return read_scores_and_manifest(root, config_name, when.date())


def report(
    cfg: RunConfig,
    *,
    as_of: dt.date | str | None = None,
    output_dir: str | Path | None = None,
    model_version: str | None = None,
    allow_other_dataset: bool = False,
    sample_size: int = 2000,
    progress: Progress | None = None,
) -> ReportResult:
    """Build the analyst report on the scores of one date and write/log it.

    The report explains the scores that ``retain score`` wrote for the date, with the model
    versions recorded in their manifest; it never scores anew. It is written to its own folder,
    ``<output root>/<config name>/report/as_of=YYYY-MM-DD/report.html``.

    Parameters
    ----------
    cfg : RunConfig
        Run config with a ``scoring`` section.
    as_of : date or str, optional
        The scoring date whose scores are reported; default ``scoring.as_of``.
    output_dir : str or Path, optional
        Output root holding the scores and receiving the report; default
        ``scoring.output_dir``.
    model_version : str, optional
        Churn model alias, version or run id; must be the version the scores were made with
        (default: that version).
    allow_other_dataset : bool
        Accept models trained on another data set than the config's.
    sample_size : int
        Customers sampled for the SHAP plots.
    progress : callable, optional
        Called with a short message before each stage.

    Returns
    -------
    ReportResult
        The file, its number of images and the MLflow run id.

    Raises
    ------
    retain.io.OutputError
        No readable scores for the date, scores made with another churn model than
        ``model_version``, or a report folder retain may not write.
    retain.tracking.TrackingError
        The store is unreachable, a model version fails its checks, or an artifact its
        training run always logs (backtest tables, evaluation charts) is missing.
    """
    note = progress or (lambda _m: None)
    if cfg.scoring is None:
        raise ConfigError(f"config {cfg.name!r} has no 'scoring' section")
    sc = cfg.scoring
    when = day(as_of or sc.as_of)
    root = output_dir or sc.output_dir
    scores_dir = output_folder(root, cfg.name, SCORES_KIND, when.date())
    report_dir = output_folder(root, cfg.name, REPORT_KIND, when.date())
    check_output_folder(report_dir, REPORT_KIND)

    note(f"reading the scores as of {when.date()}")
    scores, manifest = _scores_on_disk(scores_dir, when)

    transitions, moved = _movements(root, cfg.name, when, scores)

    note("loading models")
    store = tracking.configure(cfg.tracking)
    loaded = _load_models(cfg, manifest, when, model_version, allow_other_dataset)
    models = loaded.models
    note("loading inputs and features")
    model_inputs, warnings = _model_inputs(cfg, when, models)

    note("reading model metrics and backtest tables")
    evidence = _training_evidence(loaded)

    evaluation = latest_evaluation(root, cfg.name, when)

    note("building the report")
    t0 = time.perf_counter()
    rep = build_report(
        scores,
        model_inputs,
        models,
        **evidence,
        model_aliases=_aliases(loaded),
        policy=load_policy(cfg.policy_path),
        currency=cfg.report.currency,
        top_n=cfg.report.top_n,
        title=f"retain report: {cfg.name}, as of {when.date()}",
        sample_size=sample_size,
        seed=cfg.seed,
        evaluation=evaluation,
        transitions=transitions,
        drift=manifest.get(MANIFEST_DRIFT),
    )
    path = _write_report(rep, report_dir, when, cfg.name)
    seconds = time.perf_counter() - t0

    note("logging to MLflow")
    with tracking.tracked_run(cfg, "report", settings=store) as run:
        _log(path, when, rep.n_images, seconds)
        tracking.describe_run(
            f"Report on the {len(scores):,} customers {cfg.name} scored as of {when.date()} "
            f"(churn model version {models.churn_version}, CLV model version "
            f"{models.clv_version}): {path}."
        )
        run_id = run.info.run_id
    return ReportResult(path, rep.n_images, run_id, [*warnings, *moved])


def _movements(
    root: str | Path, config_name: str, when: pd.Timestamp, scores: pd.DataFrame
) -> tuple[Transitions | None, list[str]]:
    """How the customers moved since the latest earlier scores in the history, if any.

    Earlier scores that cannot be read leave the section out with a warning: the report of
    this date does not depend on them.
    """
    earlier = earlier_scores_date(root, config_name, when.date())
    if earlier is None:
        return None, []
    try:
        before = read_scores(root, config_name, earlier, COMPARE_COLUMNS)
    except OutputError as exc:
        return None, [f"no movements section: {exc}"]
    return compare_scores(before, scores, earlier.isoformat(), when.date().isoformat()), []


def _load_models(
    cfg: RunConfig,
    manifest: dict[str, Any],
    when: pd.Timestamp,
    model_version: str | None,
    allow_other_dataset: bool,
) -> LoadedScoringModels:
    """Load the model versions the scores' manifest names (the churn one may be given).

    The value model too exactly as the manifest says, whatever today's ``clv.method``: its
    version and method when the scores were made with one, none when they were not.

    Raises
    ------
    retain.io.OutputError
        When ``model_version`` is not the churn version the scores were made with.
    """
    used = manifest.get("models", {})
    value = used.get("value")
    loaded = tracking.load_scoring_models(
        cfg,
        used["clv"]["version"],
        model_version or used["churn"]["version"],
        allow_other_dataset=allow_other_dataset,
        value_ref=value["version"] if value else tracking.CHAMPION,
        clv_method=value["clv_method"] if value else "btyd",
    )
    if str(loaded.churn_version.version) != str(used["churn"]["version"]):
        raise OutputError(
            f"the scores as of {when.date()} were made with churn version "
            f"{used['churn']['version']}, not {loaded.churn_version.version}; report them "
            f"without --model-version, or score again with --model-version {model_version}"
        )
    return loaded


def _model_inputs(
    cfg: RunConfig, when: pd.Timestamp, models: ScoringModels
) -> tuple[pd.DataFrame, list[str]]:
    """The churn model's inputs as of the date (its own feature settings), and input warnings."""
    inputs = load_inputs(cfg, when)
    settings = models.feature_config
    feats = build_features(inputs.transactions, when, inputs.events, settings)
    model_inputs = model_features(feats, models)
    check_model_inputs(model_inputs, models, settings)
    return model_inputs, inputs.warnings


def _training_evidence(loaded: LoadedScoringModels) -> dict[str, Any]:
    """Both versions' metrics, the CLV backtest tables and the churn evaluation charts.

    Returned under the names :func:`retain.reporting.report.build_report` takes them by.
    """
    return {
        "churn_metrics": tracking.version_metrics(loaded.churn_version),
        "clv_metrics": tracking.version_metrics(loaded.clv_version),
        "backtest": _backtest_tables(loaded.clv_version),
        "churn_images": _churn_images(loaded.churn_version),
    }


def _aliases(loaded: LoadedScoringModels) -> dict[str, list[str]]:
    """The registry aliases of both versions in use (a banner names a non-champion)."""
    return {
        "churn": list(getattr(loaded.churn_version, "aliases", None) or []),
        "clv": list(getattr(loaded.clv_version, "aliases", None) or []),
    }


def _write_report(rep: Report, report_dir: Path, when: pd.Timestamp, config_name: str) -> Path:
    """Write the page into the date's report folder, all at once; return its final path."""
    info = {"as_of": when.date().isoformat(), "config_name": config_name}
    with owned_directory(report_dir, REPORT_KIND, info) as tmp:
        write_text_atomic(rep.render(), tmp / REPORT_FILE)
    return report_dir / REPORT_FILE


def _log(path: Path, when: pd.Timestamp, n_images: int, seconds: float) -> None:
    """Log the report's path, date, image count and build time, and the page, to the run."""
    tracking.log_params_flat(
        {"path": str(path), "as_of": when.date().isoformat()}, prefix="report."
    )
    tracking.log_metrics({"report_images": n_images, "report_seconds": seconds})
    tracking.log_artifact(path, artifact_path=REPORT_FOLDER)
