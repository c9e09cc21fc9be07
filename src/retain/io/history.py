"""Reading the history of scores: what ``retain score`` wrote, date by date.

The scores of a date live in ``<root>/<config name>/scores/as_of=YYYY-MM-DD/`` (see
:func:`retain.io.output_folder`). A folder counts as scores only when retain's marker says it
holds ``scores`` and the scores file is there; every reader of the history (compare, export,
evaluate-actions, the report) goes through this module, so all of them accept and refuse the
same folders, with the same messages (:class:`retain.io.OutputError`, exit 6).

- :func:`scores_dates`: the dates of the history;
- :func:`read_scores`: some columns (and rows) of one date's scores;
- :func:`read_scores_and_manifest`: a date's whole scores and their manifest, checked to be
  retain's scores of that date;
- :func:`dated_folders`: the parent of one kind of output's dated folders.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from retain.io.write import OutputError, output_folder, read_marker
from retain.names import MANIFEST_FILE, SCORES_FILE, SCORES_KIND

__all__ = [
    "dated_folders",
    "read_scores",
    "read_scores_and_manifest",
    "scores_columns",
    "scores_dates",
    "scores_folder",
]

_DATED = re.compile(r"^as_of=(\d{4}-\d{2}-\d{2})$")

Filters = Sequence[tuple[str, str, Any]]


def dated_folders(root: str | Path, config_name: str, kind: str) -> Path:
    """``<root>/<config name>/<kind>``: the folder holding one kind's ``as_of=`` folders."""
    return output_folder(root, config_name, kind, "1970-01-01").parent


def scores_folder(root: str | Path, config_name: str, when: dt.date) -> Path:
    """The scores folder of one date (whether or not it exists)."""
    return output_folder(root, config_name, SCORES_KIND, when)


def _is_scores(folder: Path) -> bool:
    marker = read_marker(folder)
    return (
        marker is not None
        and marker.get("kind") == SCORES_KIND
        and (folder / SCORES_FILE).is_file()
    )


def _missing(folder: Path, iso: str) -> OutputError:
    return OutputError(
        f"no scores as of {iso} in {folder}; run `retain score --as-of {iso}` first (or give "
        "the date of existing scores)"
    )


def _existing_scores(root: str | Path, config_name: str, when: dt.date) -> tuple[Path, str]:
    """The scores folder of ``when`` and the date as ISO text; an OutputError when retain
    wrote no scores there."""
    folder = scores_folder(root, config_name, when)
    iso = when.isoformat()
    if not _is_scores(folder):
        raise _missing(folder, iso)
    return folder, iso


def _unreadable(folder: Path, iso: str, exc: Exception) -> OutputError:
    return OutputError(
        f"cannot read the scores in {folder} ({type(exc).__name__}: {exc}); they may be "
        f"damaged: run `retain score --as-of {iso}` again"
    )


def scores_dates(root: str | Path, config_name: str) -> list[dt.date]:
    """Every date with scores retain wrote, oldest first.

    Parameters
    ----------
    root : str or Path
        The output root.
    config_name : str
        The run config's name.

    Returns
    -------
    list of date
        Dates whose folder carries retain's ``scores`` marker and the scores file.
    """
    parent = dated_folders(root, config_name, SCORES_KIND)
    if not parent.is_dir():
        return []
    dates = []
    for entry in parent.iterdir():
        match = _DATED.match(entry.name)
        if not match or not _is_scores(entry):
            continue
        try:
            dates.append(dt.date.fromisoformat(match.group(1)))
        except ValueError:
            continue
    return sorted(dates)


def scores_columns(root: str | Path, config_name: str, when: dt.date) -> list[str]:
    """The column names of one date's scores (read from the file's schema only).

    Raises
    ------
    retain.io.OutputError
        When the date has no scores written by retain, or their file cannot be read.
    """
    folder, iso = _existing_scores(root, config_name, when)
    try:
        return list(pq.read_schema(folder / SCORES_FILE).names)
    except (OSError, ValueError, pa.ArrowException) as exc:
        raise _unreadable(folder, iso, exc) from exc


def read_scores(
    root: str | Path,
    config_name: str,
    when: dt.date,
    columns: Sequence[str] | None = None,
    filters: Filters | None = None,
) -> pd.DataFrame:
    """Some columns (and rows) of the scores retain wrote for one date.

    Parameters
    ----------
    root : str or Path
        The output root.
    config_name : str
        The run config's name.
    when : date
        The scoring date.
    columns : sequence of str, optional
        The columns to read (only these are loaded); all by default.
    filters : sequence of (column, op, value), optional
        Row filters pushed down to Parquet (e.g. ``[("action_channel", "==", "email")]``).

    Returns
    -------
    DataFrame

    Raises
    ------
    retain.io.OutputError
        When the date has no scores written by retain, or they cannot be read or lack a
        column.
    """
    folder, iso = _existing_scores(root, config_name, when)
    path = folder / SCORES_FILE
    try:
        if columns is not None:
            lacking = [c for c in columns if c not in set(pq.read_schema(path).names)]
            if lacking:
                raise OutputError(
                    f"the scores in {folder} lack the columns {', '.join(lacking)}; they are "
                    f"older than this version: run `retain score --as-of {iso}` again"
                )
        return pd.read_parquet(
            path,
            columns=None if columns is None else list(columns),
            filters=None if filters is None else list(filters),
        )
    except (OSError, ValueError, KeyError, pa.ArrowException) as exc:
        raise _unreadable(folder, iso, exc) from exc


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def read_scores_and_manifest(
    root: str | Path, config_name: str, when: dt.date
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """A date's whole scores and their manifest, checked to be retain's scores of that date.

    Parameters
    ----------
    root : str or Path
        The output root.
    config_name : str
        The run config's name.
    when : date
        The scoring date.

    Returns
    -------
    scores : DataFrame
    manifest : dict
        ``manifest.json`` (strict JSON), whose ``as_of`` is the date and whose ``models``
        name the CLV and churn versions.

    Raises
    ------
    retain.io.OutputError
        When the date has no scores retain wrote, they cannot be read, or the manifest does
        not describe them.
    """
    folder, iso = _existing_scores(root, config_name, when)
    try:
        manifest = json.loads(
            (folder / MANIFEST_FILE).read_text(encoding="utf-8"),
            parse_constant=_refuse_constant,  # strict JSON: no NaN or Infinity
        )
        scores = pd.read_parquet(folder / SCORES_FILE)
    except (OSError, ValueError, pa.ArrowException) as exc:
        raise _unreadable(folder, iso, exc) from exc
    models = manifest.get("models") if isinstance(manifest, dict) else None
    versions_known = isinstance(models, dict) and all(
        isinstance(models.get(m), dict) and models[m].get("version") for m in ("clv", "churn")
    )
    if not versions_known or manifest.get("as_of") != iso or not len(scores):
        raise OutputError(
            f"the scores in {folder} are not retain's scores as of {iso}; run "
            f"`retain score --as-of {iso}` again"
        )
    return scores, manifest
