"""The ``export`` step: one channel's campaign list as a CSV for a CRM import.

It reads, of the scores ``retain score`` wrote for a date, the rows of the channel and the
columns the list needs, builds the list with the pure :func:`retain.campaign.campaign_list`
and writes ``<root>/<config name>/export/as_of=<date>/<channel>.csv`` with the safe CSV writer
(cells a spreadsheet would run as a formula are neutralised, CRLF line ends). The folder is
retain's own and is replaced atomically (:func:`retain.io.owned_directory`); the lists of the
other channels already in it are carried over unchanged.
"""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from retain.campaign import CAMPAIGN_SOURCE_COLUMNS, CONTACT_CHANNELS, campaign_list
from retain.config import ConfigError, RunConfig
from retain.io import (
    MARKER_FILE,
    OutputError,
    check_output_folder,
    output_folder,
    owned_directory,
    read_marker,
    write_table_atomic,
)
from retain.names import EXPORT_KIND, SCORES_FILE, SCORES_KIND
from retain.timeline import day

__all__ = ["ExportResult", "export_channel"]


@dataclass(frozen=True)
class ExportResult:
    """What :func:`export_channel` wrote: the file and its number of customers."""

    path: Path
    customers: int


def _read_channel(root: str | Path, config_name: str, when: dt.date, channel: str) -> pd.DataFrame:
    """The channel's rows of the date's scores, with the columns a campaign list reads."""
    folder = output_folder(root, config_name, SCORES_KIND, when)
    iso = when.isoformat()
    path = folder / SCORES_FILE
    marker = read_marker(folder)
    if marker is None or marker.get("kind") != SCORES_KIND or not path.is_file():
        raise OutputError(
            f"no scores as of {iso} in {folder}; run `retain score --as-of {iso}` first (or "
            "give the date of existing scores with --date)"
        )
    try:
        present = set(pq.read_schema(path).names)
        lacking = [c for c in CAMPAIGN_SOURCE_COLUMNS if c not in present]
        if not lacking:
            columns = [*CAMPAIGN_SOURCE_COLUMNS, *(["contact"] if "contact" in present else [])]
            filters = [("action_channel", "==", channel)]
            return pd.read_parquet(path, columns=columns, filters=filters)
    except (OSError, ValueError, KeyError, pa.ArrowException) as exc:
        raise OutputError(
            f"cannot read the scores in {folder} ({type(exc).__name__}: {exc}); they may be "
            f"damaged: run `retain score --as-of {iso}` again"
        ) from exc
    raise OutputError(
        f"the scores in {folder} lack the columns {', '.join(lacking)}; run `retain score "
        f"--as-of {iso}` again"
    )


def export_channel(
    cfg: RunConfig,
    channel: str,
    *,
    as_of: dt.date | str | None = None,
    output_dir: str | Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> ExportResult:
    """Write the campaign list of one channel for the scores of one date.

    Parameters
    ----------
    cfg : RunConfig
        The run config (``export`` settings; name and ``scoring`` locate the scores).
    channel : str
        One of :data:`retain.campaign.CONTACT_CHANNELS`.
    as_of : date or str, optional
        The scoring date; default ``scoring.as_of``.
    output_dir : str or Path, optional
        Output root holding the scores and receiving the list; default
        ``scoring.output_dir``.
    progress : callable, optional
        Called with a short message before each stage.

    Returns
    -------
    ExportResult

    Raises
    ------
    ConfigError
        For an unknown channel, or without a date or an output root.
    retain.io.OutputError
        When the date has no readable scores, or the export folder may not be written.
    """
    note = progress or (lambda _m: None)
    if channel not in CONTACT_CHANNELS:
        raise ConfigError(
            f"--channel must be one of {', '.join(CONTACT_CHANNELS)}, got {channel!r}"
        )
    sc = cfg.scoring
    date = as_of or (sc.as_of if sc else None)
    root = output_dir or (sc.output_dir if sc else None)
    if date is None or root is None:
        raise ConfigError("give --date and --output, or set scoring.as_of and scoring.output_dir")
    when = day(date).date()
    folder = output_folder(root, cfg.name, EXPORT_KIND, when)
    check_output_folder(folder, EXPORT_KIND)

    note(f"reading the {channel} customers of the scores as of {when}")
    table = campaign_list(_read_channel(root, cfg.name, when, channel), channel, when, cfg.export)
    name = f"{channel}.csv"
    note(f"writing {len(table):,} customers to {folder / name}")
    kept = [f for f in (read_marker(folder) or {}).get("files", []) if f not in (name, MARKER_FILE)]
    with owned_directory(folder, EXPORT_KIND, {"as_of": when.isoformat()}) as tmp:
        for other in kept:  # the other channels' lists stay as they were
            if (folder / other).is_file():
                shutil.copy2(folder / other, tmp / other)
        write_table_atomic(table, tmp / name)
    return ExportResult(folder / name, len(table))
