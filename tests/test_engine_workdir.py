"""Scratch folders of partitioned runs: a killed run's folder goes, a live run's stays."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
from pathlib import Path

from retain.engine.workdir import WORK_MARKER, work_folder


def test_stale_folders_of_killed_runs_are_removed_and_nothing_else(tmp_path: Path) -> None:
    stale = tmp_path / "retain-x-stale"
    stale.mkdir()
    (stale / WORK_MARKER).touch()
    (stale / "spill.parquet").write_bytes(b"x" * 10)
    foreign = tmp_path / "retain-x-foreign"  # no marker: not ours
    foreign.mkdir()
    (foreign / "keep.txt").write_text("mine")
    live = tmp_path / "retain-x-live"
    live.mkdir()
    (live / WORK_MARKER).touch()
    holder = subprocess.Popen(  # another process holds the live run's lock
        [
            sys.executable,
            "-c",
            "import fcntl, os, sys, time; fd = os.open(sys.argv[1], os.O_RDWR); "
            "fcntl.flock(fd, fcntl.LOCK_EX); print('locked', flush=True); time.sleep(60)",
            str(live / WORK_MARKER),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        with work_folder("retain-x-", tmp_path) as work:
            assert work.is_dir() and (work / WORK_MARKER).is_file()
            # held for the whole run: another run sees it as live
            fd = os.open(work / WORK_MARKER, os.O_RDWR)
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    locked_by_run = False
                except BlockingIOError:
                    locked_by_run = True
            finally:
                os.close(fd)
            assert locked_by_run
            assert not stale.exists()
            assert (foreign / "keep.txt").read_text() == "mine"
            assert (live / WORK_MARKER).exists()
        assert not work.exists()
    finally:
        holder.kill()
        holder.wait()
