"""Scratch folders of partitioned runs, removed even after a run that was killed.

A partitioned run spills its inputs and intermediate tables to a temporary folder, often
gigabytes. :func:`work_folder` creates it with a marker file and holds an exclusive lock on the
marker for the whole run; the folder is removed when the run ends. A run killed before it could
clean up (SIGKILL, power loss) leaves its folder behind: the next run removes every sibling
folder that carries retain's marker and whose lock nobody holds. A folder without the marker,
or one whose lock is held by a live run, is never touched.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

__all__ = ["WORK_MARKER", "work_folder"]

WORK_MARKER = ".retain-work"
"""The marker file of a scratch folder (locked while its run is alive)."""


def _stale(folder: Path) -> bool:
    """Whether ``folder`` is a retain scratch folder whose run is gone."""
    marker = folder / WORK_MARKER
    if folder.is_symlink() or not folder.is_dir() or not marker.is_file():
        return False
    try:
        fd = os.open(marker, os.O_RDWR)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False  # a live run holds it
    finally:
        os.close(fd)
    return True


@contextlib.contextmanager
def work_folder(prefix: str, parent: str | Path | None = None) -> Iterator[Path]:
    """A locked scratch folder for one run; stale ones of killed runs are removed first.

    Parameters
    ----------
    prefix : str
        Folder name prefix, e.g. ``retain-score-``.
    parent : str or Path, optional
        Where to create it; default the system's temporary folder.

    Yields
    ------
    Path
        The folder (removed on exit).
    """
    root = Path(parent or tempfile.gettempdir())
    for sibling in root.glob(f"{prefix}*"):
        if _stale(sibling):
            shutil.rmtree(sibling, ignore_errors=True)
    folder = Path(tempfile.mkdtemp(prefix=prefix, dir=root))
    fd = os.open(folder / WORK_MARKER, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        os.close(fd)
