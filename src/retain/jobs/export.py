"""The ``export`` step: one channel's campaign list as a CSV for a CRM import.

It reads, of the scores ``retain score`` wrote for a date, the rows of the channel and the
columns the list needs, builds the list with the pure :func:`retain.campaign.campaign_list`
and writes ``<root>/<config name>/export/as_of=<date>/<channel>.csv`` with the safe CSV writer
(cells a spreadsheet would run as a formula are neutralised, CRLF line ends; this includes a
``customer_id`` that begins with ``=``, ``+``, ``-`` or ``@``, which gets a leading ``'``). The
folder is retain's own and is replaced atomically (:func:`retain.io.owned_directory`); the lists
of the other channels already in it are carried over unchanged, and exports of several channels
for one date are serialised by a lock held from reading the folder to the swap, so none of them
loses another's list.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

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
from retain.io.history import read_scores, scores_columns
from retain.names import EXPORT_KIND
from retain.timeline import day

__all__ = ["ExportResult", "export_channel"]


@dataclass(frozen=True)
class ExportResult:
    """What :func:`export_channel` wrote: the file and its number of customers."""

    path: Path
    customers: int


def _read_channel(root: str | Path, config_name: str, when: dt.date, channel: str) -> pd.DataFrame:
    """The channel's rows of the date's scores, with the columns a campaign list reads."""
    present = scores_columns(root, config_name, when)
    columns = [*CAMPAIGN_SOURCE_COLUMNS, *(["contact"] if "contact" in present else [])]
    return read_scores(root, config_name, when, columns, [("action_channel", "==", channel)])


@contextlib.contextmanager
def _date_lock(folder: Path) -> Iterator[None]:
    """Hold the export lock of one date (a hidden file beside its folder) while in the block.

    Exports of several channels for one date all rewrite the date's folder: holding this lock
    from reading the folder's marker to the swap makes each export see the lists the previous
    one wrote, so no channel's list is lost to a concurrent export of another channel.
    """
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(folder.parent / f".{folder.name}.export-lock", os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise OutputError(f"cannot lock {folder} for the export: {exc.strerror or exc}") from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


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
    with _date_lock(folder):  # the other channels' lists are read and carried over under it
        marker = read_marker(folder) or {}
        kept = [f for f in marker.get("files", []) if f not in (name, MARKER_FILE)]
        with owned_directory(folder, EXPORT_KIND, {"as_of": when.isoformat()}) as tmp:
            for other in kept:  # the other channels' lists stay as they were
                if (folder / other).is_file():
                    shutil.copy2(folder / other, tmp / other)
            write_table_atomic(table, tmp / name)
    return ExportResult(folder / name, len(table))
