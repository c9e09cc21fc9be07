"""Writing outputs so that readers never see a partial file or folder.

:func:`write_table_atomic`, :func:`write_json_atomic`, :func:`write_text_atomic` and
:func:`atomic_directory` write to a temporary sibling and rename it into place.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from retain.contracts import REJECT_COLUMNS

__all__ = [
    "atomic_directory",
    "write_json_atomic",
    "write_rejects",
    "write_table_atomic",
    "write_text_atomic",
]


def _temp_sibling(path: Path, tag: str) -> Path:
    return path.with_name(f".{path.name}.{tag}-{uuid.uuid4().hex[:12]}")


def _fsync_dir(path: Path) -> None:
    """Flush a directory entry to disk where the platform allows it."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _replace_with(path: Path, write: Any) -> None:
    """Call ``write(file_handle)`` on a temporary sibling, fsync, then rename over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_sibling(path, "tmp")
    try:
        with open(tmp, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def write_table_atomic(df: pd.DataFrame, path: str | Path) -> Path:
    """Write a table to Parquet or CSV (by suffix) so that readers never see a partial file.

    The index is written when it carries information (a named or non-range index, such as
    ``customer_id``); a default RangeIndex is not.

    Parameters
    ----------
    df : DataFrame
        The table.
    path : str or Path
        Target file ending in ``.parquet``/``.pq`` or ``.csv``; parent folders are created.

    Returns
    -------
    Path
        The written path.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    keep_index = not (isinstance(df.index, pd.RangeIndex) and df.index.name is None)
    if suffix in {".parquet", ".pq"}:
        _replace_with(path, lambda fh: df.to_parquet(fh, index=keep_index))
    elif suffix == ".csv":
        _replace_with(path, lambda fh: fh.write(df.to_csv(index=keep_index).encode("utf-8")))
    else:
        raise ValueError(f"cannot tell the format of {path}: use .parquet, .pq or .csv")
    return path


def write_json_atomic(obj: Any, path: str | Path) -> Path:
    """Write JSON atomically: sorted keys, two-space indent, dates and others via ``str``.

    Parameters
    ----------
    obj : object
        JSON-serialisable data (dates, paths and the like become strings).
    path : str or Path
        Target file; parent folders are created.

    Returns
    -------
    Path
        The written path.
    """
    path = Path(path)
    text = json.dumps(obj, sort_keys=True, indent=2, default=str) + "\n"
    return write_text_atomic(text, path)


def write_text_atomic(text: str, path: str | Path) -> Path:
    """Write UTF-8 text atomically (e.g. an HTML report), readable by everyone (0644).

    Parameters
    ----------
    text : str
        The content.
    path : str or Path
        Target file; parent folders are created.

    Returns
    -------
    Path
        The written path.
    """
    path = Path(path)

    def write(fh: Any) -> None:
        fh.write(text.encode("utf-8"))
        os.chmod(fh.name, 0o644)

    _replace_with(path, write)
    return path


def write_rejects(rejects: pd.DataFrame, path: str | Path) -> Path:
    """Write a rejects table atomically (Parquet or CSV by suffix), columns in contract order.

    Parameters
    ----------
    rejects : DataFrame
        Rows with ``table``, ``row_number``, ``customer_id``, ``reason``.
    path : str or Path
        Target file.

    Returns
    -------
    Path
        The written path.
    """
    missing = [c for c in REJECT_COLUMNS if c not in rejects.columns]
    if missing:
        raise ValueError(f"rejects table lacks column(s) {', '.join(missing)}")
    table = rejects[list(REJECT_COLUMNS)].reset_index(drop=True)
    return write_table_atomic(table, path)


@contextlib.contextmanager
def atomic_directory(path: str | Path) -> Iterator[Path]:
    """Build a directory in a temporary sibling and swap it into place only on success.

    On success an existing ``path`` is renamed to a backup name, the new directory is renamed
    to ``path``, and only then is the backup deleted (if the second rename fails the backup is
    put back). If the body raises, the temporary directory is deleted and ``path`` is left
    exactly as it was.

    Parameters
    ----------
    path : str or Path
        The final directory.

    Yields
    ------
    Path
        The empty temporary directory to fill.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_sibling(path, "tmp")
    tmp.mkdir()
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    backup = None
    if path.exists() or path.is_symlink():
        backup = _temp_sibling(path, "old")
        os.replace(path, backup)
    try:
        os.replace(tmp, path)
    except BaseException:
        if backup is not None:
            os.replace(backup, path)
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _fsync_dir(path.parent)
    if backup is not None:
        shutil.rmtree(backup, ignore_errors=True)
