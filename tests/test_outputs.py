"""Output folders retain owns: never destroy what retain did not write; atomic; killed runs.

Faults are real: processes killed with SIGKILL at several points, concurrent writers, and (as
root, where mounting is allowed) a read-only and a full file system on a small tmpfs.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from retain.io import (
    MARKER_FILE,
    OutputError,
    check_output_folder,
    output_folder,
    owned_directory,
    read_marker,
    write_json_atomic,
    write_table_atomic,
)
from retain.io.write import neutralise_formulas


def snapshot(root: Path) -> dict[str, str]:
    """Every file under ``root`` (hidden ones included) with its SHA-256."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def write_scores(path: Path, text: str) -> None:
    with owned_directory(path, "scores", {"as_of": "2024-01-31"}) as tmp:
        (tmp / "scores.parquet").write_text(text)
        (tmp / "manifest.json").write_text("{}")


def visible(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name != ".retain.lock")


# ------------------------------------------------------------------ owning a folder


def test_a_new_folder_is_written_with_its_marker(tmp_path):
    out = tmp_path / "scores" / "as_of=2024-01-31"
    write_scores(out, "first")
    marker = read_marker(out)
    assert marker is not None and marker["kind"] == "scores"
    assert marker["files"] == ["manifest.json", "scores.parquet"]
    assert marker["as_of"] == "2024-01-31"
    assert visible(out.parent) == ["as_of=2024-01-31"]  # no temporary folder left


def test_rewriting_replaces_the_folder_and_keeps_the_old_one_readable_until_the_swap(tmp_path):
    out = tmp_path / "as_of=2024-01-31"
    write_scores(out, "first")
    with owned_directory(out, "scores") as tmp:
        (tmp / "scores.parquet").write_text("second")
        assert (out / "scores.parquet").read_text() == "first"
    assert (out / "scores.parquet").read_text() == "second"
    assert sorted(os.listdir(out)) == [MARKER_FILE, "scores.parquet"]
    assert visible(tmp_path) == ["as_of=2024-01-31"]


def test_a_failing_body_leaves_the_previous_output_byte_identical(tmp_path):
    out = tmp_path / "as_of=2024-01-31"
    write_scores(out, "old")
    before = snapshot(tmp_path)
    with pytest.raises(RuntimeError, match="boom"), owned_directory(out, "scores") as tmp:
        (tmp / "scores.parquet").write_text("new, half written")
        raise RuntimeError("boom")
    assert snapshot(tmp_path) == before


def test_a_failing_body_with_no_previous_output_leaves_nothing(tmp_path):
    out = tmp_path / "as_of=2024-01-31"
    with pytest.raises(KeyError), owned_directory(out, "scores"):
        raise KeyError("x")
    assert visible(tmp_path) == []


def test_a_folder_of_user_files_is_refused_and_untouched(tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "run.yaml").write_text("name: mine\n")
    (out / "orders.csv").write_text("customer_id,timestamp,amount\na,2024-01-01,1\n")
    before = snapshot(tmp_path)
    with pytest.raises(OutputError, match=r"did not write \(orders.csv, run.yaml\)"):
        write_scores(out, "x")
    assert snapshot(tmp_path) == before


def test_a_file_is_refused_and_untouched(tmp_path):
    target = tmp_path / "report.xlsx"
    target.write_bytes(b"user data")
    with pytest.raises(OutputError, match="is a file"):
        write_scores(target, "x")
    assert target.read_bytes() == b"user data"
    assert sorted(os.listdir(tmp_path)) == ["report.xlsx"]


def test_a_file_above_the_folder_is_refused_before_any_work(tmp_path):
    (tmp_path / "out").write_text("a file where the output root should be")
    with pytest.raises(OutputError, match="is a file"):
        check_output_folder(
            output_folder(tmp_path / "out", "demo", "scores", "2024-01-31"), "scores"
        )


def test_a_user_file_dropped_into_an_owned_folder_makes_it_foreign(tmp_path):
    out = tmp_path / "as_of=2024-01-31"
    write_scores(out, "first")
    (out / "notes.txt").write_text("my notes")
    before = snapshot(tmp_path)
    with pytest.raises(OutputError, match="notes.txt"):
        write_scores(out, "second")
    assert snapshot(tmp_path) == before


def test_an_output_of_another_kind_is_not_replaced(tmp_path):
    out = tmp_path / "as_of=2024-01-31"
    with owned_directory(out, "features") as tmp:
        (tmp / "features.parquet").write_text("f")
    with pytest.raises(OutputError, match="'features' output"):
        write_scores(out, "s")
    assert (out / "features.parquet").read_text() == "f"


def test_a_symbolic_link_is_refused(tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    (real / "keep.txt").write_text("keep")
    link = tmp_path / "link"
    link.symlink_to(real, target_is_directory=True)
    with pytest.raises(OutputError, match="symbolic link"):
        write_scores(link, "x")
    assert link.is_symlink() and (real / "keep.txt").read_text() == "keep"


def test_an_empty_folder_may_be_used(tmp_path):
    out = tmp_path / "empty"
    out.mkdir()
    write_scores(out, "x")
    assert (out / "scores.parquet").read_text() == "x"


def test_a_broken_marker_does_not_make_a_folder_ours(tmp_path):
    out = tmp_path / "as_of=2024-01-31"
    out.mkdir()
    (out / MARKER_FILE).write_text("{not json")
    (out / "scores.parquet").write_text("user's")
    with pytest.raises(OutputError):
        write_scores(out, "x")
    assert (out / "scores.parquet").read_text() == "user's"


def test_layout_keeps_each_date_and_kind_apart(tmp_path):
    a = output_folder(tmp_path, "shop", "scores", "2024-01-31")
    b = output_folder(tmp_path, "shop", "scores", pd.Timestamp("2024-02-29").date())
    f = output_folder(tmp_path, "shop", "features", "2024-01-31")
    assert a == tmp_path / "shop" / "scores" / "as_of=2024-01-31"
    assert len({a, b, f}) == 3
    write_scores(a, "january")
    write_scores(b, "february")
    with owned_directory(f, "features") as tmp:
        (tmp / "features.parquet").write_text("f")
    assert (a / "scores.parquet").read_text() == "january"
    assert (b / "scores.parquet").read_text() == "february"


@pytest.mark.parametrize("name", ["", "..", "a/b", "x\nY"])
def test_a_config_name_that_is_not_a_folder_name_is_refused(tmp_path, name):
    with pytest.raises(OutputError, match="config name"):
        output_folder(tmp_path, name, "scores", "2024-01-31")


# ------------------------------------------------------------------ killed runs

_WRITER = textwrap.dedent(
    """
    import os, signal, sys, time
    from pathlib import Path
    import retain.io.write as w

    out, text, when = Path(sys.argv[1]), sys.argv[2], sys.argv[3]

    def die():
        os.kill(os.getpid(), signal.SIGKILL)

    if when == "mid_swap":  # killed between moving the old folder aside and the rename in
        w._exchange = lambda a, b: False
        real = os.replace
        def replace(a, b):
            real(a, b)
            if ".old-" in str(b):
                die()
        w.os.replace = replace
    with w.owned_directory(out, "scores") as tmp:
        (tmp / "scores.parquet").write_text(text)
        if when == "in_body":
            die()
        if when == "hold":
            print("writing", flush=True)
            time.sleep(60)
    """
)


def run_writer(out: Path, text: str, when: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", _WRITER, str(out), text, when],
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("when", ["in_body", "mid_swap"])
def test_kill_9_keeps_the_previous_output_and_the_next_run_cleans_up(tmp_path, when):
    out = tmp_path / "as_of=2024-01-31"
    write_scores(out, "old")
    proc = run_writer(out, "new", when)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    leftovers = [p for p in tmp_path.iterdir() if p.name.startswith(".as_of=")]
    assert leftovers, "the killed run left its temporary folder"
    if when == "in_body":
        assert (out / "scores.parquet").read_text() == "old"
    # the next run removes it at once: the killed writer no longer holds its lock file
    write_scores(out, "next")
    assert (out / "scores.parquet").read_text() == "next"
    assert visible(tmp_path) == ["as_of=2024-01-31"]


def test_kill_9_mid_swap_puts_the_previous_output_back(tmp_path):
    out = tmp_path / "as_of=2024-01-31"
    write_scores(out, "old")
    proc = run_writer(out, "new", "mid_swap")
    assert proc.returncode == -signal.SIGKILL
    assert not out.exists()  # the old output is aside, the new one not yet in place
    check_output_folder(out, "scores")
    with owned_directory(tmp_path / "as_of=2024-02-29", "scores") as tmp:  # a run beside it
        (tmp / "scores.parquet").write_text("february")
    assert (out / "scores.parquet").read_text() == "old"


def test_a_live_writers_folder_is_not_cleaned_away(tmp_path):
    out = tmp_path / "as_of=2024-01-31"
    proc = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(out), "slow", "hold"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "writing"
        live = [p for p in tmp_path.iterdir() if ".tmp-" in p.name and p.is_dir()]
        assert len(live) == 1
        write_scores(tmp_path / "as_of=2024-02-29", "other date")  # cleans leftovers
        assert live[0].is_dir(), "a live run's temporary folder was removed"
        assert Path(f"{live[0]}.lock").is_file(), "a live run's lock file was removed"
    finally:
        proc.kill()
        proc.wait()


def test_concurrent_writers_of_one_folder_each_leave_a_complete_folder(tmp_path):
    out = tmp_path / "as_of=2024-01-31"
    write_scores(out, "start")
    procs = [
        subprocess.Popen([sys.executable, "-c", _WRITER, str(out), f"writer {i}", "done"])
        for i in range(4)
    ]
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0, 0]
    assert (out / "scores.parquet").read_text() in {f"writer {i}" for i in range(4)}
    assert read_marker(out)["files"] == ["scores.parquet"]
    assert visible(tmp_path) == ["as_of=2024-01-31"]


# ------------------------------------------------------------------ full or read-only disk


def _mount_tmpfs(target: Path, options: str) -> bool:
    if os.geteuid() != 0:
        return False
    target.mkdir(exist_ok=True)
    proc = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(target)], capture_output=True
    )
    return proc.returncode == 0


@pytest.fixture
def small_disk(tmp_path):
    disk = tmp_path / "disk"
    if not _mount_tmpfs(disk, "size=256k"):
        pytest.skip("needs root and permission to mount a tmpfs (a full disk is simulated there)")
    yield disk
    subprocess.run(["umount", "-l", str(disk)], check=False)


def test_a_full_disk_fails_cleanly_and_keeps_the_previous_output(small_disk):
    out = small_disk / "as_of=2024-01-31"
    write_scores(out, "old")
    before = snapshot(small_disk)
    big = pd.DataFrame({"x": np.random.default_rng(0).random(200_000)})
    with pytest.raises(OutputError, match="No space left"), owned_directory(out, "scores") as tmp:
        write_table_atomic(big, tmp / "scores.parquet")
    assert snapshot(small_disk) == before
    assert visible(small_disk) == ["as_of=2024-01-31"]


def test_a_read_only_disk_fails_with_an_output_error(tmp_path):
    disk = tmp_path / "ro"
    if not _mount_tmpfs(disk, "ro,size=64k"):
        pytest.skip("needs root and permission to mount a tmpfs (mounted read-only)")
    try:
        with pytest.raises(OutputError, match="read-only"):
            write_scores(disk / "out" / "as_of=2024-01-31", "x")
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


# ------------------------------------------------------------------ file formats


def test_csv_cells_a_spreadsheet_would_run_are_neutralised_parquet_keeps_them(tmp_path):
    ids = ['=HYPERLINK("http://x","y")', "+1+1", "@SUM(A1:A2)", "-2+3", "\tx", "\rx", "C1"]
    df = pd.DataFrame({"customer_id": ids, "clv": [-1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]})
    write_table_atomic(df, tmp_path / "s.csv")
    write_table_atomic(df, tmp_path / "s.parquet")
    with open(tmp_path / "s.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    cells = [r["customer_id"] for r in rows]
    assert cells[:6] == ["'" + v for v in ids[:6]]
    assert cells[6] == "C1"
    assert [float(r["clv"]) for r in rows] == df["clv"].tolist()  # numbers stay numbers
    assert pd.read_parquet(tmp_path / "s.parquet")["customer_id"].tolist() == ids


def test_categorical_text_is_neutralised_too():
    df = pd.DataFrame({"segment": pd.Categorical(["=1+1", "Loyal"]), "n": [1, 2]})
    out = neutralise_formulas(df)
    assert out["segment"].tolist() == ["'=1+1", "Loyal"]
    assert df["segment"].tolist() == ["=1+1", "Loyal"]  # the caller's table is not changed


def test_neutralising_leaves_a_safe_table_as_it_is():
    df = pd.DataFrame({"a": ["x", "y"], "b": [1, -2]})
    assert neutralise_formulas(df) is df


def test_json_is_strict(tmp_path):
    with pytest.raises(ValueError, match=r"\$\.totals\.clv"):
        write_json_atomic({"totals": {"clv": float("inf")}}, tmp_path / "m.json")
    with pytest.raises(ValueError, match=r"\$\.x\[1\]"):
        write_json_atomic({"x": [1.0, float("nan")]}, tmp_path / "m.json")
    assert not (tmp_path / "m.json").exists()
    write_json_atomic({"x": 1.5, "t": pd.Timestamp("2024-01-01").date()}, tmp_path / "m.json")
    assert json.loads((tmp_path / "m.json").read_text()) == {"t": "2024-01-01", "x": 1.5}


def test_leftover_cleanup_waits_out_a_grace_period_for_unlocked_folders(tmp_path):
    out = tmp_path / "as_of=2024-01-31"
    young = tmp_path / ".as_of=2024-01-31.tmp-0123456789ab"
    young.mkdir()  # a writer that has only just made its folder
    write_scores(out, "x")
    assert young.is_dir()
    old = time.time() - 3600
    os.utime(young, (old, old))
    write_scores(out, "y")
    assert not young.exists()
