"""The ``evaluate-actions`` step: what the actions of a scoring date did, once its horizon passed.

Load, compute, write, log:

1. Read the scores ``retain score`` wrote for the date (:mod:`retain.io.history`; they must
   carry control groups: ``treatment_group``) and their manifest (the churn horizon H of the
   model used).
2. Refuse, before any work, when the data does not reach D + H (the last day of the outcome
   window): the data's ``observed_until``, or ``--until`` when given and earlier.
3. Load and validate the inputs up to that day (:func:`retain.inputs.load_inputs`) and take
   every scored customer's outcome in the window (:func:`retain.outcomes.horizon_outcomes`).
4. Compare treated and control per action, per (stage, tier) and overall
   (:mod:`retain.evaluation.actions`; a group mixing control shares is standardised over the
   control-share strata of :func:`retain.evaluation.proposal.control_strata`), check whether
   D's control customers may have been contacted inside the window (group redraws, later
   scores of the history: :func:`control_contamination`), measure each action rule's save
   rate and propose it
   (:mod:`retain.evaluation.proposal`), and judge the date's churn probabilities on what
   happened (:mod:`retain.evaluation.realised`).
5. Write the tables, ``proposed_policy.yaml`` and ``evaluation.json`` into the date's own
   folder, ``<root>/<config name>/evaluation/as_of=<scores date>`` (atomically, see
   :func:`retain.io.owned_directory`), and log them to MLflow with the metrics.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from retain import tracking
from retain.config import ConfigError, PolicyConfig, RunConfig, load_policy
from retain.contracts import CUSTOMER_ID, DataError
from retain.control import contacted_later, rotations_in_window
from retain.evaluation.actions import (
    CONTROL,
    STRATUM,
    TREATMENT,
    compare_groups,
    contacted,
    require_control_groups,
)
from retain.evaluation.proposal import (
    assign_rules,
    control_strata,
    proposed_policy_yaml,
    proposed_save_rates,
)
from retain.evaluation.realised import realised_performance
from retain.inputs import load_inputs, observed_until
from retain.io import (
    OutputError,
    check_output_folder,
    output_folder,
    owned_directory,
    read_marker,
    write_json_atomic,
    write_table_atomic,
    write_text_atomic,
)
from retain.io.history import dated_folders, read_scores, read_scores_and_manifest, scores_dates
from retain.names import (
    EVALUATION_BY_ACTION_CSV,
    EVALUATION_BY_STAGE_TIER_CSV,
    EVALUATION_FILE,
    EVALUATION_FOLDER,
    EVALUATION_KIND,
    EVALUATION_OVERALL_CSV,
    PROPOSED_POLICY_FILE,
    PROPOSED_SAVE_RATES_CSV,
    REALISED_CALIBRATION_CSV,
)
from retain.outcomes import check_horizon_passed, horizon_outcomes
from retain.timeline import day, iso_day

Progress = Callable[[str], None]

ACTION_KEYS = ["retention_action", "action_channel"]
CELL_KEYS = ["lifecycle_stage", "value_tier"]


@dataclass(frozen=True)
class EvaluationResult:
    """What :func:`evaluate_actions` produced.

    Attributes
    ----------
    output_dir : Path
        The evaluation folder.
    summary : dict
        The content of ``evaluation.json``.
    run_id : str
        The MLflow run.
    warnings : list of str
        Input warnings and customers left out of the proposal.
    """

    output_dir: Path
    summary: dict[str, Any]
    run_id: str
    warnings: list[str] = field(default_factory=list)


def horizon_of(cfg: RunConfig, manifest: dict[str, Any]) -> int:
    """The churn horizon of the model that made the scores (else ``churn.horizon_days``).

    Raises
    ------
    ConfigError
        When neither the scores' manifest nor the config gives one.
    """
    recorded = manifest.get("models", {}).get("churn", {}).get("horizon_days")
    if recorded is not None:
        return int(recorded)
    if cfg.churn is None:
        raise ConfigError(
            f"config {cfg.name!r} has no 'churn' section and the scores do not record the "
            "churn horizon; add churn.horizon_days"
        )
    return int(cfg.churn.horizon_days)


def data_end(cfg: RunConfig, until: dt.date | str | None) -> pd.Timestamp:
    """The last day the evaluation may use: ``observed_until``, or ``until`` when earlier."""
    end = observed_until(cfg)
    return min(end, day(until)) if until is not None else end


def _finite(value: Any) -> Any:
    """JSON-ready: NaN and infinities become None, numpy scalars plain numbers."""
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(float(value)) else None
    return value


def _records(table: pd.DataFrame) -> list[dict[str, Any]]:
    return [{k: _finite(v) for k, v in row.items()} for row in table.to_dict("records")]


def evaluation_metrics(
    overall: pd.DataFrame, realised: dict[str, float]
) -> dict[str, float | int | None]:
    """The run's metrics: the overall comparison (``overall_*``) and ``realised_*``."""
    row = overall.iloc[0].to_dict() if len(overall) else {}
    metrics: dict[str, float | int | None] = {
        f"overall_{k}": _finite(v) for k, v in row.items() if k != "group"
    }
    metrics.update({f"realised_{k}": _finite(v) for k, v in realised.items()})
    return metrics


def evaluate_actions(
    cfg: RunConfig,
    *,
    scores_date: dt.date | str,
    until: dt.date | str | None = None,
    output_dir: str | Path | None = None,
    progress: Progress | None = None,
) -> EvaluationResult:
    """Evaluate the actions and churn probabilities of one scoring date; write and log them.

    Parameters
    ----------
    cfg : RunConfig
        Run config with a ``scoring`` section (the output root).
    scores_date : date or str
        The date of the scores to evaluate (their folder must exist).
    until : date or str, optional
        Use the data up to this day only (default: the data's ``observed_until``).
    output_dir : str or Path, optional
        Output root holding the scores and receiving the evaluation; default
        ``scoring.output_dir``.
    progress : callable, optional
        Called with a short message before each stage.

    Returns
    -------
    EvaluationResult

    Raises
    ------
    retain.io.DataError
        The scores carry no control groups, the horizon has not passed in the data, or the
        inputs fail validation.
    retain.io.OutputError
        No readable scores for the date, or an evaluation folder retain may not write.
    ConfigError
        No ``scoring`` section, or an invalid policy file.
    """
    note = progress or (lambda _m: None)
    if cfg.scoring is None:
        raise ConfigError(f"config {cfg.name!r} has no 'scoring' section")
    when = day(scores_date)
    root = output_dir or cfg.scoring.output_dir
    out_dir = output_folder(root, cfg.name, EVALUATION_KIND, when.date())
    check_output_folder(out_dir, EVALUATION_KIND)
    policy = load_policy(cfg.policy_path)
    settings = cfg.evaluation

    note(f"reading the scores as of {iso_day(when)}")
    scores, manifest = read_scores_and_manifest(root, cfg.name, when.date())
    require_control_groups(scores, f"the scores as of {iso_day(when)}")
    horizon = horizon_of(cfg, manifest)
    last_day = data_end(cfg, until)
    window_end = check_horizon_passed(when, horizon, last_day)

    note(f"loading inputs up to {last_day.date()}")
    inputs = load_inputs(cfg, last_day)
    observed_until(cfg, inputs)  # transactions past the configured end are a data error
    outcomes = horizon_outcomes(inputs.transactions, scores[CUSTOMER_ID], when, horizon, last_day)

    note("comparing treated and control customers")
    frame = contacted(scores, outcomes)
    if frame.empty:
        raise DataError(
            f"the scores as of {when.date()} hold no customer in a treatment or control "
            "group: no contact action was given, so there is nothing to evaluate"
        )
    options = {"min_group_size": settings.min_group_size, "confidence": settings.confidence}
    frame[STRATUM] = control_strata(frame, policy).to_numpy()
    pooled = {**options, "strata": STRATUM}
    tables = {
        EVALUATION_BY_ACTION_CSV: compare_groups(frame, ACTION_KEYS, **pooled),
        EVALUATION_BY_STAGE_TIER_CSV: compare_groups(frame, CELL_KEYS, **pooled),
        EVALUATION_OVERALL_CSV: compare_groups(frame, [], **pooled),
        PROPOSED_SAVE_RATES_CSV: proposed_save_rates(frame, policy, **options),
    }
    realised, calibration = realised_performance(scores, outcomes)
    tables[REALISED_CALIBRATION_CSV] = calibration
    warnings = list(inputs.warnings)
    _, changed = assign_rules(frame, policy)
    if changed:
        warnings.append(
            f"{changed:,} customers were given an action the current policy no longer gives "
            "their stage and tier; they count in the tables but not in the proposed save rates"
        )
    contamination = control_contamination(
        root, cfg.name, when, horizon, policy.control.period_days, frame
    )
    warnings.extend(contamination.pop("warnings"))

    summary = {
        "scores_date": when.date().isoformat(),
        "horizon_days": horizon,
        "window": {
            "first_day": iso_day(when + pd.Timedelta(days=1)),
            "last_day": iso_day(window_end),
        },
        "data_until": last_day.date().isoformat(),
        "config_name": cfg.name,
        "policy": str(cfg.policy_path),
        "min_group_size": settings.min_group_size,
        "confidence": settings.confidence,
        "interval_methods": {
            "retention_uplift": "Newcombe hybrid score (method 10)",
            "revenue_uplift": "Welch t",
            "save_rate": "log risk ratio (Katz, delta method)",
            "pooled_groups": (
                "a group mixing control shares is standardised to its treated customers over "
                "the control-share strata (normal intervals, delta method for the save rate)"
            ),
        },
        "control_groups": contamination,
        "customers": {
            "scored": int(len(scores)),
            "treatment": int((frame["treatment_group"] == TREATMENT).sum()),
            "control": int((frame["treatment_group"] == CONTROL).sum()),
            "policy_changed": changed,
        },
        "models": manifest.get("models", {}),
        "overall": _records(tables[EVALUATION_OVERALL_CSV])[0],
        "realised": {k: _finite(v) for k, v in realised.items()},
        "warnings": warnings,
    }
    note(f"writing {out_dir}")
    header = _policy_header(cfg, when, horizon, window_end, settings.confidence)
    policy_text = proposed_policy_yaml(
        policy, tables[PROPOSED_SAVE_RATES_CSV], header, settings.confidence
    )
    _write(out_dir, tables, policy_text, summary, when, cfg.name)

    note("logging to MLflow")
    with tracking.tracked_run(cfg, "evaluate_actions") as run:
        tracking.log_inputs(cfg, inputs, tracking.EVALUATION)
        _log(out_dir, tables, summary, policy)
        run_id = run.info.run_id
    return EvaluationResult(out_dir, summary, run_id, warnings)


def control_contamination(
    root: str | Path,
    config_name: str,
    when: pd.Timestamp,
    horizon: int,
    period_days: int | None,
    frame: pd.DataFrame,
) -> dict[str, Any]:
    """Whether D's control customers may have been contacted inside D's outcome window.

    Two checks (see :mod:`retain.control`): whether the groups were redrawn inside the
    window (rotating groups, ``policy.control.period_days`` set), and how many of D's control
    customers have ``contact`` true in the scores of a later date inside the window found in
    the history. Such customers are counted and warned about, never excluded: dropping them on
    what happened after D would bias the comparison too.

    Parameters
    ----------
    root : str or Path
        The output root.
    config_name : str
        The config's name.
    when : Timestamp
        The scoring date D.
    horizon : int
        The churn horizon H.
    period_days : int or None
        ``policy.control.period_days``.
    frame : DataFrame
        :func:`retain.evaluation.actions.contacted` of D.

    Returns
    -------
    dict
        ``period_days``, ``rotations_in_window`` (ISO days), ``later_scores_dates`` (dates
        read), ``control_contacted_later`` (count) and ``warnings`` (list of str).
    """
    rotations = rotations_in_window(when, horizon, period_days)
    first = (when + pd.Timedelta(days=1)).date()
    last = (when + pd.Timedelta(days=horizon)).date()
    later = [d for d in scores_dates(root, config_name) if first <= d <= last]
    control_ids = frame.loc[frame["treatment_group"] == CONTROL, CUSTOMER_ID]
    parts = []
    for found in later:
        try:
            parts.append(read_scores(root, config_name, found, [CUSTOMER_ID, "contact"]))
        except OutputError:
            continue  # scores made before control groups: no contact column to check
    contacted_after = (
        contacted_later(control_ids, pd.concat(parts, ignore_index=True)) if parts else 0
    )
    warnings = []
    if rotations:
        warnings.append(
            f"the control groups were redrawn on {', '.join(iso_day(r) for r in rotations)}, "
            f"inside the outcome window of {iso_day(when)} (policy control.period_days "
            f"{period_days} with a {horizon}-day horizon): control customers may have been "
            "contacted since; set control.period_days to null for a permanent hold-out"
        )
    if contacted_after:
        warnings.append(
            f"{contacted_after:,} of the {len(control_ids):,} control customers of "
            f"{iso_day(when)} were to be contacted in later scores inside the window; the "
            "uplift and save rates are biased towards zero (they are kept, not excluded)"
        )
    return {
        "period_days": period_days,
        "rotations_in_window": [iso_day(r) for r in rotations],
        "later_scores_dates": [d.isoformat() for d in later],
        "control_contacted_later": contacted_after,
        "warnings": warnings,
    }


def _policy_header(
    cfg: RunConfig, when: pd.Timestamp, horizon: int, window_end: pd.Timestamp, confidence: float
) -> str:
    return (
        f"Proposed retention policy: {cfg.policy_path} with the save rates measured on the\n"
        f"scores of {when.date()} (config {cfg.name}), treated versus control, over the\n"
        f"{horizon}-day churn horizon ending {window_end.date()}.\n"
        "save_rate = (churn_control - churn_treatment) / churn_control, clipped to [0, 1];\n"
        f"the comment above each rule gives the raw value, its {confidence:.0%} interval and\n"
        "the sample sizes, or why the current rate was kept. Review it, then copy it over the\n"
        "policy file to adopt it."
    )


def _write(
    out_dir: Path,
    tables: dict[str, pd.DataFrame],
    policy_text: str,
    summary: dict[str, Any],
    when: pd.Timestamp,
    config_name: str,
) -> None:
    """Write the evaluation folder all at once (tables, proposed policy, summary)."""
    summary["files"] = [*tables, PROPOSED_POLICY_FILE, EVALUATION_FILE]
    info = {"as_of": when.date().isoformat(), "config_name": config_name}
    with owned_directory(out_dir, EVALUATION_KIND, info) as tmp:
        for name, table in tables.items():
            write_table_atomic(table, tmp / name)
        write_text_atomic(policy_text, tmp / PROPOSED_POLICY_FILE)
        write_json_atomic(summary, tmp / EVALUATION_FILE)


def _log(
    out_dir: Path, tables: dict[str, pd.DataFrame], summary: dict[str, Any], policy: PolicyConfig
) -> None:
    """Log the dates, the metrics and every file of the folder under ``evaluation/``."""
    tracking.log_params_flat(
        {
            "scores_date": summary["scores_date"],
            "horizon_days": summary["horizon_days"],
            "data_until": summary["data_until"],
            "min_group_size": summary["min_group_size"],
            "confidence": summary["confidence"],
            "output_dir": str(out_dir),
        },
        prefix="evaluate.",
    )
    realised = {k: v for k, v in summary["realised"].items() if v is not None}
    tracking.log_metrics(evaluation_metrics(tables[EVALUATION_OVERALL_CSV], realised))
    for name in summary["files"]:
        tracking.log_artifact(out_dir / name, artifact_path=EVALUATION_FOLDER)
    overall = summary["overall"]
    measured = tables[PROPOSED_SAVE_RATES_CSV]
    n_measured = int((measured["status"] == "measured").sum())
    tracking.describe_run(
        f"Evaluated the actions of the scores as of {summary['scores_date']} over their "
        f"{summary['horizon_days']}-day horizon: {overall['n_treatment']:,} treated and "
        f"{overall['n_control']:,} control customers; save rates measured for {n_measured} of "
        f"{len(measured)} contact rules of {len(policy.actions)}. Files in {out_dir}."
    )


def latest_evaluation(
    root: str | Path, config_name: str, until: dt.date | str
) -> tuple[dict[str, Any], dict[str, pd.DataFrame]] | None:
    """The latest evaluation written for a scores date on or before ``until``, if any.

    Parameters
    ----------
    root : str or Path
        The output root.
    config_name : str
        The config's name.
    until : date or str
        The latest scores date to consider (the report's date).

    Returns
    -------
    tuple or None
        ``evaluation.json`` and the tables by file name, or None when there is none.

    Raises
    ------
    retain.io.OutputError
        When the latest evaluation folder cannot be read.
    """
    parent = dated_folders(root, config_name, EVALUATION_KIND)
    if not parent.is_dir():
        return None
    last = iso_day(until)
    dates = sorted(
        p.name.removeprefix("as_of=")
        for p in parent.iterdir()
        if p.is_dir() and p.name.startswith("as_of=") and p.name.removeprefix("as_of=") <= last
    )
    for found in reversed(dates):
        folder = parent / f"as_of={found}"
        if read_marker(folder) is None:
            continue
        try:
            summary = json.loads((folder / EVALUATION_FILE).read_text(encoding="utf-8"))
            tables = {
                name: pd.read_csv(folder / name)
                for name in (
                    EVALUATION_BY_ACTION_CSV,
                    EVALUATION_OVERALL_CSV,
                    PROPOSED_SAVE_RATES_CSV,
                    REALISED_CALIBRATION_CSV,
                )
            }
        except (OSError, ValueError) as exc:
            raise OutputError(
                f"cannot read the evaluation in {folder} ({type(exc).__name__}: {exc}); run "
                f"`retain evaluate-actions --scores-date {found}` again"
            ) from exc
        return summary, tables
    return None
