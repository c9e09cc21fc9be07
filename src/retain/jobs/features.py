"""The ``features`` step: every point-in-time feature as of a cutoff, written to its own folder.

The folder ``<output root>/<config name>/features/as_of=YYYY-MM-DD`` holds ``features.parquet``
(one row per customer) and ``rejects.parquet`` (the input rows that could not be used). It is
written atomically (:func:`retain.io.owned_directory`) and replaces only an earlier features
folder of the same date that retain wrote.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from retain.config import RunConfig
from retain.features.build import build_features
from retain.io import (
    check_output_folder,
    load_inputs,
    output_folder,
    owned_directory,
    write_rejects,
    write_table_atomic,
)
from retain.names import FEATURES_FILE, FEATURES_KIND, REJECTS_FILE


@dataclass(frozen=True)
class FeaturesResult:
    """What :func:`write_features` wrote: the folder and its counts."""

    output_dir: Path
    n_customers: int
    n_features: int
    n_rejected: int
    warnings: list[str] = field(default_factory=list)


def write_features(
    cfg: RunConfig,
    as_of: dt.date | str,
    *,
    output_dir: str | Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> FeaturesResult:
    """Load the inputs as of a cutoff, build the features and write them with the rejects.

    Parameters
    ----------
    cfg : RunConfig
        The run config (data and feature settings).
    as_of : date or str
        The cutoff (included).
    output_dir : str or Path, optional
        The output root; default ``scoring.output_dir``, else ``outputs``.
    progress : callable, optional
        Called with a short message before each stage.

    Returns
    -------
    FeaturesResult
        The folder written and its row counts.

    Raises
    ------
    retain.io.DataError
        When the inputs fail validation.
    retain.io.OutputError
        When the date's features folder holds anything retain did not write, or cannot be
        written.
    """
    note = progress or (lambda _m: None)
    day = pd.Timestamp(as_of).date()
    root = output_dir or (cfg.scoring.output_dir if cfg.scoring else Path("outputs"))
    folder = output_folder(root, cfg.name, FEATURES_KIND, day)
    check_output_folder(folder, FEATURES_KIND)
    note(f"loading and validating inputs as of {day}")
    inputs = load_inputs(cfg, day)
    note("building features")
    table = build_features(
        inputs.transactions, day, inputs.events, cfg.features, cfg.segment_rules()
    )
    note(f"writing {len(table):,} customers to {folder}")
    info = {"as_of": day.isoformat(), "config_name": cfg.name}
    with owned_directory(folder, FEATURES_KIND, info) as tmp:
        write_table_atomic(table.reset_index(), tmp / FEATURES_FILE)
        write_rejects(inputs.rejects, tmp / REJECTS_FILE)
    return FeaturesResult(
        folder, len(table), int(table.shape[1]), len(inputs.rejects), inputs.warnings
    )
