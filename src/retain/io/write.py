"""Writing outputs: atomic files, and output folders that retain owns.

Atomic files
    :func:`write_table_atomic`, :func:`write_json_atomic` and :func:`write_text_atomic` write to
    a temporary sibling, flush it and rename it into place: a reader sees the old file or the
    new one, never half of one. JSON is strict (no ``NaN`` or ``Infinity``); CSV text cells that
    a spreadsheet would run as a formula are neutralised (:func:`neutralise_formulas`).

Owned output folders
    Every folder that retain writes (``<root>/<config name>/<kind>/as_of=YYYY-MM-DD``, see
    :func:`output_folder`) carries a marker file, :data:`MARKER_FILE`, listing the files it
    wrote. :func:`owned_directory` builds the new folder beside the old one and swaps it in
    only when complete, and only replaces a folder whose marker lists everything in it: a path
    that is a file, a symbolic link or a folder holding anything retain did not write is refused
    with :class:`OutputError`, whatever it holds. Leftovers of killed runs (hidden
    ``.<name>.tmp-*``/``.<name>.old-*`` siblings) are removed by the next run that writes
    beside them, unless a live run still holds them (each temporary folder is locked by its
    writer). Concurrent runs writing the same folder are serialised at the swap: the last to
    finish wins, and each sees a complete folder.
"""

from __future__ import annotations

import contextlib
import ctypes
import datetime as dt
import errno
import fcntl
import json
import math
import os
import re
import shutil
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from retain.contracts import REJECT_COLUMNS

__all__ = [
    "MARKER_FILE",
    "OutputError",
    "check_output_folder",
    "neutralise_formulas",
    "output_folder",
    "owned_directory",
    "read_marker",
    "write_json_atomic",
    "write_rejects",
    "write_table_atomic",
    "write_text_atomic",
]


MARKER_FILE = ".retain-output.json"
"""The marker of a folder retain wrote: its kind and the files it holds."""

_LOCK_FILE = ".retain.lock"
_LEFTOVER = re.compile(r"^\.(?P<name>.+)\.(?P<tag>tmp|old)-[0-9a-f]{12}(?P<lock>\.lock)?$")
_LEFTOVER_GRACE_SECONDS = 60.0
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


class OutputError(RuntimeError):
    """An output location retain must not or cannot write (not its own, a file, no space)."""


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


def write_sorted_parts_atomic(
    parts: Sequence[Path],
    path: str | Path,
    key: str,
    *,
    work: Path | None = None,
    batch_rows: int = 250_000,
    memory_limit: str = "2GB",
) -> Path:
    """Write Parquet parts as one table sorted by ``key``, a batch at a time, atomically.

    DuckDB sorts the parts (spilling to ``work`` beyond ``memory_limit``) and the sorted rows
    are written as they come: the file is the one :func:`write_table_atomic` would write for
    the concatenated, sorted table (same columns and pandas dtypes; CSV cells neutralised),
    without holding that table in memory.

    Parameters
    ----------
    parts : sequence of Path
        Parquet files with the same schema (written by pandas, without an index).
    path : str or Path
        Target ``.parquet`` or ``.csv`` file.
    key : str
        Sort column (distinct values).
    work : Path, optional
        Folder for DuckDB's temporary files.
    batch_rows : int
        Rows per written batch.
    memory_limit : str
        DuckDB's memory limit.

    Returns
    -------
    Path
        The written path.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in {".parquet", ".pq", ".csv"}:
        raise ValueError(f"unsupported table format: {path.suffix}")
    schema = pq.read_schema(parts[0])
    con = duckdb.connect()

    def batches() -> Iterator[pa.Table]:
        con.execute(f"SET memory_limit = '{memory_limit}'")
        if work is not None:
            con.execute(f"SET temp_directory = '{work}'")
        sql = f'SELECT * FROM read_parquet(?) ORDER BY "{key}"'
        reader = con.sql(sql, params=[[str(p) for p in parts]]).to_arrow_reader(batch_rows)
        for batch in reader:
            yield pa.Table.from_batches([batch]).select(schema.names).cast(schema)

    def parquet(fh: Any) -> None:
        with pq.ParquetWriter(fh, schema) as writer:
            for table in batches():
                writer.write_table(table)

    def csv(fh: Any) -> None:
        first = True
        for table in batches():
            frame = neutralise_formulas(table.to_pandas())
            text = frame.to_csv(index=False, header=first, lineterminator="\r\n")
            fh.write(text.encode("utf-8"))
            first = False
        if first:  # no rows: the header alone
            empty = schema.empty_table().to_pandas()
            fh.write(empty.to_csv(index=False, lineterminator="\r\n").encode("utf-8"))

    try:
        _replace_with(path, csv if suffix == ".csv" else parquet)
    finally:
        con.close()
    return path


def write_table_atomic(df: pd.DataFrame, path: str | Path) -> Path:
    """Write a table to Parquet or CSV (by suffix) so that readers never see a partial file.

    The index is written when it carries information (a named or non-range index, such as
    ``customer_id``); a default RangeIndex is not. Parquet keeps the exact values; in CSV, text
    cells that a spreadsheet would run as a formula are neutralised (see
    :func:`neutralise_formulas`).

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
        safe = neutralise_formulas(df)
        # RFC 4180 line ends: a cell holding a carriage return or a newline is quoted
        text = safe.to_csv(index=keep_index, lineterminator="\r\n")
        _replace_with(path, lambda fh: fh.write(text.encode("utf-8")))
    else:
        raise ValueError(f"cannot tell the format of {path}: use .parquet, .pq or .csv")
    return path


def write_json_atomic(obj: Any, path: str | Path) -> Path:
    """Write strict JSON atomically: sorted keys, two-space indent, dates and others via ``str``.

    NaN and infinite numbers are refused (strict JSON has neither) with the keys that hold them.

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
    bad = _non_finite(obj)
    if bad:
        raise ValueError(
            f"{path.name}: non-finite number(s) at {', '.join(bad[:5])}; JSON has no NaN or "
            "Infinity (this is a bug: the value should have been rejected earlier)"
        )
    text = json.dumps(obj, sort_keys=True, indent=2, default=str, allow_nan=False) + "\n"
    return write_text_atomic(text, path)


def _non_finite(obj: Any, where: str = "$") -> list[str]:
    """Paths (``$.a.b[2]``) of the float values in ``obj`` that are NaN or infinite."""
    if isinstance(obj, float):
        return [] if math.isfinite(obj) else [where]
    if isinstance(obj, Mapping):
        return [p for k, v in obj.items() for p in _non_finite(v, f"{where}.{k}")]
    if isinstance(obj, list | tuple):
        return [p for i, v in enumerate(obj) for p in _non_finite(v, f"{where}[{i}]")]
    return []


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


def neutralise_formulas(df: pd.DataFrame) -> pd.DataFrame:
    """Text cells made safe for spreadsheets (OWASP's rule for CSV injection).

    A text cell that begins with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return would
    be run as a formula by a spreadsheet that opens the CSV; such cells get a leading single
    quote (``'=HYPERLINK(...)``), which spreadsheets show as text. Numbers, dates and the other
    text cells are unchanged, and so is the index unless it is text.

    Parameters
    ----------
    df : DataFrame
        The table to be written as CSV.

    Returns
    -------
    DataFrame
        ``df`` itself when nothing needed a change, else a copy with the cells neutralised.
    """

    def fix(values: pd.Series | pd.Index) -> pd.Series | pd.Index | None:
        dtype = values.dtype
        if isinstance(dtype, pd.CategoricalDtype):
            dtype = dtype.categories.dtype
        if not (pd.api.types.is_object_dtype(dtype) or pd.api.types.is_string_dtype(dtype)):
            return None
        text = values.astype("string")
        risky = text.str.startswith(_FORMULA_START).fillna(False).astype(bool)
        if not risky.any():
            return None
        return text.mask(risky, "'" + text)

    out = df
    for col in df.columns:
        fixed = fix(df[col])
        if fixed is not None:
            if out is df:
                out = df.copy()
            out[col] = fixed
    if not isinstance(df.index, pd.MultiIndex):
        fixed_index = fix(pd.Series(df.index, index=df.index))
        if fixed_index is not None:
            out = out.copy() if out is df else out
            out.index = pd.Index(fixed_index.to_numpy(), name=df.index.name)
    return out


def output_folder(root: str | Path, config_name: str, kind: str, as_of: dt.date | str) -> Path:
    """Where retain writes one kind of output for one date.

    ``<root>/<config name>/<kind>/as_of=YYYY-MM-DD``: each date has its own folder, so a new
    date never replaces an earlier one, and ``features``, ``scores`` and ``report`` never
    replace each other's files.

    Parameters
    ----------
    root : str or Path
        The output root (``scoring.output_dir`` or ``--output``).
    config_name : str
        The run config's ``name``.
    kind : str
        ``features``, ``scores`` or ``report``.
    as_of : date or str
        The date the output is for (a ``YYYY-MM-DD`` string or a date).

    Returns
    -------
    Path
        The folder (not created).

    Raises
    ------
    OutputError
        When the config name cannot be a folder name.
    """
    if not config_name or config_name in (".", "..") or re.search(r"[/\\\x00-\x1f]", config_name):
        raise OutputError(
            f"config name {config_name!r} cannot name an output folder; use letters, digits, "
            "'-', '_' or '.'"
        )
    day = as_of if isinstance(as_of, str) else as_of.isoformat()[:10]
    return Path(root) / config_name / kind / f"as_of={day}"


def read_marker(path: str | Path) -> dict[str, Any] | None:
    """The marker of an output folder retain wrote, or None when there is none or it is broken.

    Parameters
    ----------
    path : str or Path
        A folder.

    Returns
    -------
    dict or None
        ``kind``, ``files`` (the names retain wrote there) and the other recorded fields.
    """
    marker = Path(path) / MARKER_FILE
    try:
        data = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("files"), list):
        return None
    return data


def check_output_folder(path: str | Path, kind: str) -> None:
    """Refuse an output folder that retain may not replace (before any work is done).

    Parameters
    ----------
    path : str or Path
        The folder an output of ``kind`` is about to be written to.
    kind : str
        ``features``, ``scores`` or ``report``.

    Raises
    ------
    OutputError
        ``path`` is a file, a symbolic link, a folder holding files retain did not write, or
        retain's output of another kind. An absent or empty folder is fine.
    """
    path = Path(path)
    for ancestor in path.parents:
        if ancestor.exists() or ancestor.is_symlink():
            if not ancestor.is_dir():
                raise OutputError(
                    f"{ancestor} is a file, not a folder; retain will not replace it: choose "
                    "another output folder"
                )
            break
    if path.is_symlink():
        raise OutputError(
            f"{path} is a symbolic link; retain writes only into folders it made: choose "
            "another output folder"
        )
    if not path.exists():
        return
    if not path.is_dir():
        raise OutputError(
            f"{path} is a file, not an output folder; retain will not replace it: choose "
            "another output folder"
        )
    marker = read_marker(path)
    present = sorted(os.listdir(path))
    if marker is None:
        if not present:
            return  # an empty folder holds nothing to lose
        shown = ", ".join(present[:5]) + (" ..." if len(present) > 5 else "")
        raise OutputError(
            f"{path} holds files retain did not write ({shown}); retain replaces only folders "
            "it wrote: move them or choose another output folder"
        )
    if marker.get("kind") != kind:
        raise OutputError(
            f"{path} holds retain's {marker.get('kind')!r} output, not {kind!r}; choose "
            "another output folder"
        )
    foreign = sorted(set(present) - set(marker["files"]) - {MARKER_FILE})
    if foreign:
        shown = ", ".join(foreign[:5]) + (" ..." if len(foreign) > 5 else "")
        raise OutputError(
            f"{path} holds files retain did not write ({shown}); move them out before "
            "writing this output again"
        )


@contextlib.contextmanager
def _locked(path: Path, blocking: bool = True, create: bool = True) -> Iterator[bool]:
    """An exclusive ``flock`` on the file ``path``; yields whether it is held.

    Without ``create`` a missing file counts as a free lock (nobody holds it).
    """
    try:
        fd = os.open(path, os.O_RDWR | (os.O_CREAT if create else 0), 0o644)
    except FileNotFoundError:
        if create:
            raise
        yield True
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)  # closing releases the lock


def _remove_leftovers(parent: Path) -> list[Path]:
    """Remove what killed runs left beside their output folders; returns what was removed.

    Called with the parent's lock held. A ``.tmp-`` folder whose writer still holds the lock
    file beside it (``.<name>.tmp-<id>.lock``, taken before the folder is made and let go only
    after the swap) is kept; one without a lock file is kept while younger than a grace period.
    An ``.old-`` folder (a previous output moved aside for a swap that was
    killed) is put back when nothing took its place, and removed otherwise.
    """
    removed: list[Path] = []
    try:
        entries = list(parent.iterdir())
    except OSError:
        return removed
    for entry in entries:
        match = _LEFTOVER.match(entry.name)
        if match is None:
            continue
        if match["lock"]:
            if match["tag"] == "tmp" and not entry.with_suffix("").exists():
                with _locked(entry, blocking=False, create=False) as free:
                    if free:  # its writer is gone and so is its folder
                        entry.unlink(missing_ok=True)
                        removed.append(entry)
            continue
        if entry.is_symlink() or not entry.is_dir():
            if entry.is_file() and match["tag"] == "tmp" and _older_than_grace(entry):
                entry.unlink(missing_ok=True)  # an atomic file write that was killed
                removed.append(entry)
            continue
        if match["tag"] == "old":
            if read_marker(entry) is None:
                continue  # not a folder retain swapped out: leave it alone
            home = parent / match["name"]
            if not home.exists() and not home.is_symlink():
                os.replace(entry, home)  # killed mid-swap: the previous output goes back
                continue
        else:
            lock = _writer_lock(entry)
            if lock.exists():
                with _locked(lock, blocking=False, create=False) as free:
                    if not free:
                        continue  # a live run is writing it
                    shutil.rmtree(entry, ignore_errors=True)
                    lock.unlink(missing_ok=True)
                    removed.append(entry)
                continue
            if not _older_than_grace(entry):
                continue
        shutil.rmtree(entry, ignore_errors=True)
        removed.append(entry)
    return removed


def _writer_lock(tmp: Path) -> Path:
    """The lock file a writer holds beside its temporary folder for as long as it runs."""
    return tmp.with_name(tmp.name + ".lock")


def _older_than_grace(path: Path) -> bool:
    try:
        return time.time() - path.stat().st_mtime > _LEFTOVER_GRACE_SECONDS
    except OSError:
        return False


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one atomic step (Linux ``renameat2``); False where unsupported."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    rc = renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    if rc == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(b))


@contextlib.contextmanager
def owned_directory(
    path: str | Path, kind: str, info: Mapping[str, Any] | None = None
) -> Iterator[Path]:
    """Build an output folder beside ``path`` and swap it in only when complete and allowed.

    ``path`` may be absent, empty, or an output folder of the same ``kind`` that retain wrote
    (its marker lists every file in it); anything else is refused before any work is done and
    again just before the swap, so a user's files are never moved or deleted. On success the
    marker (:data:`MARKER_FILE`) listing the new files is written and the folder replaces the
    old one in one rename (an atomic exchange where the system offers one); if the body raises,
    the temporary folder is removed and ``path`` is left exactly as it was.

    Parameters
    ----------
    path : str or Path
        The final folder (see :func:`output_folder`).
    kind : str
        What the folder holds (``scores``, ``features``, ``report``); a folder of another kind
        is not replaced.
    info : mapping, optional
        Further JSON fields for the marker (e.g. ``as_of``, ``config_name``).

    Yields
    ------
    Path
        The empty temporary folder to fill.

    Raises
    ------
    OutputError
        ``path`` is a file, a link or a folder holding files retain did not write, or the
        output cannot be written (read-only file system, no space left, no permission).
    """
    path = Path(path)
    check_output_folder(path, kind)
    with contextlib.ExitStack() as stack:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with _locked(path.parent / _LOCK_FILE):
                _remove_leftovers(path.parent)
            tmp = _temp_sibling(path, "tmp")
            lock = _writer_lock(tmp)
            stack.enter_context(_locked(lock))  # held until the folder is swapped in
            stack.callback(lock.unlink, missing_ok=True)
            tmp.mkdir()
        except OSError as exc:
            raise _storage_error(path, exc) from exc
        try:
            yield tmp
            marker = {
                "kind": kind,
                "files": sorted(p.name for p in tmp.iterdir()),
                "written_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                **dict(info or {}),
            }
            write_json_atomic(marker, tmp / MARKER_FILE)
            with _locked(path.parent / _LOCK_FILE):
                check_output_folder(path, kind)  # it may have changed while we worked
                _swap_in(tmp, path)
                _fsync_dir(path.parent)
        except OSError as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            raise _storage_error(path, exc) from exc
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise


def _swap_in(tmp: Path, path: Path) -> None:
    """Put ``tmp`` at ``path``; an old ``path`` is removed once the new one is in place."""
    if path.exists():
        if _exchange(tmp, path):
            shutil.rmtree(tmp, ignore_errors=True)  # tmp now holds the old folder
            return
        backup = _temp_sibling(path, "old")
        os.replace(path, backup)
        try:
            os.replace(tmp, path)
        except BaseException:
            os.replace(backup, path)
            raise
        shutil.rmtree(backup, ignore_errors=True)
        return
    os.replace(tmp, path)


def _storage_error(path: Path, exc: OSError) -> OutputError:
    what = exc.strerror or str(exc)
    hint = {
        errno.ENOSPC: "free some space or choose another output folder",
        errno.EROFS: "the file system is read-only: choose another output folder",
        errno.EACCES: "no permission to write there: choose another output folder",
        errno.EPERM: "no permission to write there: choose another output folder",
        errno.EDQUOT: "the disk quota is exceeded: free some space or choose another folder",
    }.get(exc.errno or 0, "check the output folder and the disk")
    return OutputError(f"cannot write {path}: {what}; {hint}")
