"""The ``compare`` step: how the customer base moved between two scoring dates.

Read, compare, write, log: it reads the columns it needs (:data:`retain.transitions.
COMPARE_COLUMNS`) of the scores ``retain score`` wrote for two dates, compares them with the
pure :func:`retain.transitions.compare_scores`, writes the tables into its own folder
``<root>/<config name>/compare/from=<date>_to=<date>/`` (atomically, with retain's marker,
see :func:`retain.io.owned_directory`) and logs them to MLflow as a ``compare`` run.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from retain import tracking
from retain.config import ConfigError, RunConfig
from retain.io import (
    check_output_folder,
    owned_directory,
    write_json_atomic,
    write_table_atomic,
)
from retain.io.history import dated_folders, read_scores, scores_dates
from retain.names import (
    COMPARE_AT_RISK_CSV,
    COMPARE_FOLDER,
    COMPARE_KIND,
    COMPARE_STAGES_CSV,
    COMPARE_SUMMARY,
    COMPARE_TIERS_CSV,
)
from retain.timeline import day
from retain.transitions import COMPARE_COLUMNS, Transitions, compare_scores

__all__ = ["CompareResult", "compare", "compare_folder", "earlier_scores_date"]


@dataclass(frozen=True)
class CompareResult:
    """What :func:`compare` produced: the comparison, its folder and the MLflow run."""

    transitions: Transitions
    output_dir: Path
    run_id: str


def earlier_scores_date(root: str | Path, config_name: str, when: dt.date) -> dt.date | None:
    """The latest date before ``when`` with scores retain wrote, or None.

    Parameters
    ----------
    root : str or Path
        The output root.
    config_name : str
        The run config's name.
    when : date
        The date reported.

    Returns
    -------
    date or None
    """
    earlier = [d for d in scores_dates(root, config_name) if d < when]
    return earlier[-1] if earlier else None


def compare_folder(root: str | Path, config_name: str, start: dt.date, end: dt.date) -> Path:
    """``<root>/<config name>/compare/from=<start>_to=<end>``: a comparison's own folder."""
    parent = dated_folders(root, config_name, COMPARE_KIND)
    return parent / f"from={start.isoformat()}_to={end.isoformat()}"


def compare(
    cfg: RunConfig,
    date_from: dt.date | str,
    date_to: dt.date | str,
    *,
    output_dir: str | Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> CompareResult:
    """Compare the scores of two dates; write the tables beside the scores and log them.

    Parameters
    ----------
    cfg : RunConfig
        The run config (its name and ``scoring.output_dir`` locate the scores).
    date_from, date_to : date or str
        The earlier and the later scoring date.
    output_dir : str or Path, optional
        Output root holding the scores; default ``scoring.output_dir``.
    progress : callable, optional
        Called with a short message before each stage.

    Returns
    -------
    CompareResult

    Raises
    ------
    ConfigError
        When ``date_from`` is not before ``date_to``, or without an output root.
    retain.io.OutputError
        When a date has no readable scores, or the comparison folder may not be written.
    """
    note = progress or (lambda _m: None)
    if not date_from or not date_to:
        raise ConfigError("give both dates: --from YYYY-MM-DD --to YYYY-MM-DD")
    start, end = day(date_from).date(), day(date_to).date()
    if start >= end:
        raise ConfigError(f"--from {start} must be before --to {end}")
    root = output_dir or (cfg.scoring.output_dir if cfg.scoring else None)
    if root is None:
        raise ConfigError("give --output or set scoring.output_dir in the config")
    out_dir = compare_folder(root, cfg.name, start, end)
    check_output_folder(out_dir, COMPARE_KIND)

    note(f"reading the scores as of {start} and {end}")
    before = read_scores(root, cfg.name, start, COMPARE_COLUMNS)
    after = read_scores(root, cfg.name, end, COMPARE_COLUMNS)
    note("comparing")
    result = compare_scores(before, after, start.isoformat(), end.isoformat())
    summary = summary_of(result)
    tables = {
        COMPARE_STAGES_CSV: result.stages,
        COMPARE_TIERS_CSV: result.tiers,
        COMPARE_AT_RISK_CSV: result.at_risk,
    }
    note(f"writing {out_dir}")
    info = {"from": start.isoformat(), "to": end.isoformat(), "config_name": cfg.name}
    with owned_directory(out_dir, COMPARE_KIND, info) as tmp:
        for name, table in tables.items():
            write_table_atomic(table, tmp / name)
        write_json_atomic(summary, tmp / COMPARE_SUMMARY)

    note("logging to MLflow")
    with tracking.tracked_run(cfg, "compare") as run:
        tracking.log_params_flat({"from": start.isoformat(), "to": end.isoformat(),
                                  "output_dir": str(out_dir)}, prefix="compare.")  # fmt: skip
        tracking.log_metrics({f"compare_{k}": v for k, v in result.counts.items()})
        for name, table in tables.items():
            tracking.log_table(table, f"{COMPARE_FOLDER}/{name}", index=False)
        tracking.log_dict(summary, f"{COMPARE_FOLDER}/{COMPARE_SUMMARY}")
        c = result.counts
        tracking.describe_run(
            f"Compared the customers {cfg.name} scored as of {start} ({c['customers_from']:,}) "
            f"and {end} ({c['customers_to']:,}): {c['stage_changed']:,} changed stage, "
            f"{c['new']:,} new, {c['only_from']:,} no longer scored, {c['reactivated']:,} "
            f"reactivated. Tables in {out_dir}."
        )
        run_id = run.info.run_id
    return CompareResult(result, out_dir, run_id)


def summary_of(result: Transitions) -> dict[str, object]:
    """The JSON summary of a comparison: dates, counts, at-risk outcomes by name."""
    risk = result.at_risk.set_index("outcome")["customers"]
    return {
        "from": result.date_from,
        "to": result.date_to,
        "counts": result.counts,
        "at_risk_outcomes": {str(k): int(v) for k, v in risk.items()},
    }
