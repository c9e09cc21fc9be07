"""``retain init``: read the user's files, propose a config, write it with its reasons.

1. Guess each CSV file's dialect (encoding: UTF-16 by its byte-order mark, else UTF-8 when the
   whole file decodes, else Latin-1; delimiter: the most frequent of ``, ; tab |``
   in the header line; decimal comma when the numbers are written ``12,50``). The config states
   the dialect, so the run never guesses it.
2. Read the first ``sample_rows`` rows of every file as text and profile them
   (:func:`retain.setup.inspect_table`); read the transactions' timestamp column to the end of
   the file for the first and last day (the sample alone could stop months early).
3. Propose the split (:func:`retain.setup.propose_split`), the returns policy and the id
   normalisation, render the YAML from a text template (so that every choice keeps its reason as
   a comment, and a question init could not answer is written as ``# QUESTION:``), validate it
   with :func:`retain.config.load_config` and move it into place atomically. An existing file
   is replaced only with ``force``.
"""

from __future__ import annotations

import codecs
import datetime as dt
import json
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import get_args

import pandas as pd

from retain.config import ConfigError, DataConfig, load_config
from retain.contracts import EVENT_ROLES, TRANSACTIONS
from retain.setup import Decision, TableProfile, inspect_table, propose_split

SAMPLE_ROWS = 200_000
"""Rows of each file read for the profile."""

_SNIFF_BYTES = 1 << 16
_DELIMITERS = (",", ";", "\t", "|")
_SHIPPED_POLICY = Path(__file__).resolve().parents[3] / "configs" / "policy.yaml"


@dataclass(frozen=True)
class CsvGuess:
    """The dialect ``init`` writes for one CSV file."""

    delimiter: str = ","
    encoding: str = "utf-8"
    decimal: str = "."
    grouped: int = 0  # values such as 1.234,50 ('.' between thousands) seen with a decimal comma


@dataclass
class InitResult:
    """What ``init`` wrote and why.

    Attributes
    ----------
    path : Path
        The config file written.
    summary : str
        One line: the files, rows sampled, customers, span.
    decisions : list of Decision
        Each choice with its reason.
    questions : list of str
        What init could not decide (also in the file as ``# QUESTION:`` comments).
    """

    path: Path
    summary: str
    decisions: list[Decision] = field(default_factory=list)
    questions: list[str] = field(default_factory=list)


def _is_parquet(path: Path) -> bool:
    return path.suffix.lower() in {".parquet", ".pq"}


def sniff_csv(path: Path) -> CsvGuess:
    """Encoding (of the whole file) and delimiter (of the header) of a CSV file.

    Parameters
    ----------
    path : Path
        The file.

    Returns
    -------
    CsvGuess
        The dialect (``decimal`` is ``.``; :func:`_decimal` revises it from the values).
    """
    with path.open("rb") as handle:
        head = handle.read(_SNIFF_BYTES)
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encoding, text = "utf-16", head.decode("utf-16", errors="replace")
    elif _is_utf8(path):
        encoding, text = "utf-8", head.decode("utf-8-sig", errors="replace")
    else:
        encoding, text = "latin-1", head.decode("latin-1")
    header = text.splitlines()[0] if text else ""
    delimiter = max(_DELIMITERS, key=header.count) if header else ","
    if header.count(delimiter) == 0:
        delimiter = ","
    return CsvGuess(delimiter=delimiter, encoding=encoding)


def _is_utf8(path: Path) -> bool:
    """Whether the whole file decodes as UTF-8 (a Latin-1 byte on the last line counts too)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        with path.open("rb") as handle:
            while chunk := handle.read(1 << 20):
                decoder.decode(chunk)
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def _decimal(frame: pd.DataFrame, guess: CsvGuess) -> CsvGuess:
    """A decimal comma when fields are not comma-separated and numbers read ``12,50``."""
    if guess.delimiter == ",":
        return guess
    comma = point = 0
    for col in frame.columns:
        text = frame[col].astype("string").str.strip().dropna()
        comma += int(text.str.fullmatch(r"-?\d[\d.]*,\d+").sum())
        point += int(text.str.fullmatch(r"-?\d+\.\d+").sum())
    if comma > point:
        grouped = 0
        for col in frame.columns:
            text = frame[col].astype("string").str.strip().dropna()
            grouped += int(text.str.fullmatch(r"-?\d{1,3}(\.\d{3})+(,\d+)?").sum())
        return CsvGuess(guess.delimiter, guess.encoding, ",", grouped)
    return guess


def read_sample(path: Path, guess: CsvGuess | None, rows: int) -> pd.DataFrame:
    """The first ``rows`` rows of a file, CSV columns as text (blanks stay empty strings)."""
    if _is_parquet(path):
        import pyarrow.parquet as pq

        batches = pq.ParquetFile(path).iter_batches(batch_size=rows)
        first = next(batches, None)
        return first.to_pandas() if first is not None else pd.DataFrame()
    assert guess is not None
    return pd.read_csv(
        path,
        sep=guess.delimiter,
        encoding="utf-8-sig" if guess.encoding == "utf-8" else guess.encoding,
        dtype=str,
        keep_default_na=False,
        nrows=rows,
    )


def timestamp_span(
    path: Path, column: str, fmt: str | None, guess: CsvGuess | None
) -> tuple[pd.Timestamp, pd.Timestamp]:
    """First and last day of one timestamp column over the whole file (read in chunks)."""
    first = last = None
    if _is_parquet(path):
        chunks = [pd.read_parquet(path, columns=[column])]
    else:
        assert guess is not None
        chunks = pd.read_csv(
            path,
            sep=guess.delimiter,
            encoding="utf-8-sig" if guess.encoding == "utf-8" else guess.encoding,
            dtype=str,
            keep_default_na=False,
            usecols=[column],
            chunksize=500_000,
        )
    for chunk in chunks:
        values = chunk[column]
        if not pd.api.types.is_datetime64_any_dtype(values.dtype):
            text = values.astype("string").str.strip()
            values = pd.to_datetime(text, format=fmt or "ISO8601", errors="coerce")
        lo, hi = values.min(), values.max()
        if pd.notna(lo):
            first = lo if first is None else min(first, lo)
            last = hi if last is None else max(last, hi)
    if first is None or last is None:
        raise ConfigError(f"{path}: no timestamp in column {column!r} could be read")
    return pd.Timestamp(first).normalize(), pd.Timestamp(last).normalize()


# ------------------------------------------------------------------------------ render


def _q(value: object) -> str:
    """A YAML scalar: strings double-quoted (JSON escapes are YAML escapes), dates bare."""
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _line(indent: int, key: str, value: object, why: str = "") -> str:
    text = f"{' ' * indent}{key}: {_q(value)}"
    return f"{text}  # {why}" if why else text


def _returns_choice(profile: TableProfile) -> tuple[str, str]:
    """``data.returns`` and why, from the sample's negative amounts."""
    allowed = get_args(DataConfig.model_fields["returns"].annotation)
    n = profile.negative_amounts
    if n == 0:
        return "drop", "no negative amounts in the sample"
    if "order_id" not in profile.roles:
        return "drop", f"{n:,} negative amounts in the sample and no order id to net them against"
    if not profile.cancellation_orders:
        return "net", f"{n:,} negative amounts in the sample share their order with its purchases"
    if "net_earlier" in allowed:
        return "net_earlier", (
            f"{n:,} negative amounts in the sample are cancellations with order ids of their "
            "own: netted against the customer's earlier purchases"
        )
    return "drop", (
        f"{n:,} negative amounts in the sample are cancellations with order ids of their own, "
        "which 'net' cannot match: they are rejected as returns"
    )


def _config_name(path: Path) -> str:
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", path.stem).strip("_.-")
    return name or "retain"


def _table_lines(
    name: str,
    path: Path,
    profile: TableProfile,
    guess: CsvGuess | None,
    questions: list[str],
) -> list[str]:
    lines = [f"  {name}:", _line(4, "path", str(path))]
    reasons = {d.key.rsplit(".", 1)[-1]: d.why for d in profile.decisions}
    known = {*TRANSACTIONS.required, *TRANSACTIONS.optional} if name == "transactions" else None
    roles = {
        role: column for role, column in profile.roles.items() if known is None or role in known
    }
    lines.append("    columns:")
    lines += [_line(6, role, column, reasons.get(role, "")) for role, column in roles.items()]
    stamp = profile.timestamp_column
    if stamp is not None and stamp.timestamp_format is not None:
        lines.append(_line(4, "timestamp_format", stamp.timestamp_format, "detected"))
    if stamp is not None and stamp.note is not None:
        lines.append(f"    # QUESTION: {stamp.note}")
        questions.append(f"data.{name}.timestamp_format: {stamp.note}")
    if guess is not None:
        lines.append(
            f"    csv: {{delimiter: {_q(guess.delimiter)}, encoding: {_q(guess.encoding)}, "
            f"decimal: {_q(guess.decimal)}}}  # read from the file"
        )
        if guess.grouped:
            text = (
                f"{guess.grouped:,} values such as 1.234,50 write '.' between thousands; retain "
                "never guesses separators and rejects them as not numeric: export the numbers "
                "without thousands separators"
            )
            lines.append(f"    # QUESTION: {text}")
            questions.append(f"data.{name}.csv: {text}")
    if name == "events" and profile.event_types:
        unknown = [t for t in profile.event_types if t.strip().lower() not in EVENT_ROLES]
        if unknown:
            text = (
                f"event types without a role: {', '.join(unknown[:10])}; each gets features of "
                f"its own. If one of them is a role ({', '.join(EVENT_ROLES)}), map it here, "
                "e.g. roles: {session: web_session}"
            )
            lines.append(f"    # {text}")
    return lines


def render_config(
    name: str,
    tables: dict[str, tuple[Path, TableProfile, CsvGuess | None]],
    split: dict[str, object],
    data_choices: list[Decision],
    policy: str | None,
    questions: list[str],
) -> str:
    """The config's text: every value with its reason as a comment.

    Parameters
    ----------
    name : str
        The config's ``name``.
    tables : dict
        Table name to (path as written, profile, CSV dialect or None for Parquet).
    split : dict
        :func:`retain.setup.propose_split`'s result.
    data_choices : list of Decision
        ``data.returns`` and ``data.id_normalisation``.
    policy : str or None
        The ``policy`` path to write (None: the default ``policy.yaml`` beside the config).
    questions : list of str
        Filled with what init could not decide.

    Returns
    -------
    str
        YAML with comments.
    """
    why = {d.key: d.why for d in split["decisions"]}  # type: ignore[attr-defined]
    lines = [
        f"# retain run config written by `retain init` on {dt.date.today().isoformat()}.",
        "# Each value says why it was chosen; a '# QUESTION:' line is what init could not decide",
        "# from the data: answer it by editing the value above it. Paths are relative to the",
        "# folder you run retain from.",
        _line(0, "name", name),
        "seed: 42",
        "",
        "data:",
        "  source: files",
        _line(2, "observed_until", split["data.observed_until"], why["data.observed_until"]),
    ]
    lines += [_line(2, d.key.split(".")[-1], d.value, d.why) for d in data_choices]
    for table, (path, profile, guess) in tables.items():
        lines += _table_lines(table, path, profile, guess, questions)
    train = ", ".join(c.isoformat() for c in split["churn.train_cutoffs"])  # type: ignore[attr-defined]
    lines += [
        "",
        "clv:",
        "  purchase_model: auto  # bgnbd | pareto_nbd | mbgnbd | auto (best on the holdout)",
        _line(2, "calibration_end", split["clv.calibration_end"], why["clv.calibration_end"]),
        _line(2, "holdout_end", split["clv.holdout_end"], "the last day of the data"),
        "",
        "churn:",
        _line(2, "horizon_days", split["churn.horizon_days"], why["churn.horizon_days"]),
        "  # the three cutoffs may also be `auto`: placed by the same rule from the data's first",
        "  # and last day each time the model is trained, and logged with the run",
        f"  train_cutoffs: [{train}]  # {why['churn.train_cutoffs']}",
        _line(
            2, "validation_cutoff", split["churn.validation_cutoff"], why["churn.validation_cutoff"]
        ),
        _line(2, "test_cutoff", split["churn.test_cutoff"], why["churn.test_cutoff"]),
        "",
        "scoring:",
        _line(2, "as_of", split["scoring.as_of"], why["scoring.as_of"]),
        "  output_dir: outputs",
        "",
        "report:",
        '  currency: "$"  # the files do not say: a symbol goes before amounts, a code (EUR) after',
    ]
    if policy is not None:
        lines += ["", _line(0, "policy", policy, "the shipped retention policy")]
    return "\n".join(lines) + "\n"


def _policy_path(out: Path) -> str | None:
    """The ``policy`` to write: None when a ``policy.yaml`` sits beside the config, else the
    shipped ``configs/policy.yaml`` relative to the config's folder (when there is one)."""
    folder = out.resolve().parent
    if (folder / "policy.yaml").is_file() or not _SHIPPED_POLICY.is_file():
        return None
    relative = os.path.relpath(_SHIPPED_POLICY, folder)
    return str(_SHIPPED_POLICY) if relative.startswith(os.path.join("..", "..")) else relative


def _read(path: Path, name: str, rows: int) -> tuple[pd.DataFrame, CsvGuess | None, TableProfile]:
    if not path.is_file():
        raise ConfigError(f"{name} file not found: {path}")
    guess = None if _is_parquet(path) else sniff_csv(path)
    frame = read_sample(path, guess, rows)
    if guess is not None:
        guess = _decimal(frame, guess)
    profile = inspect_table(frame, name, decimal=guess.decimal if guess else ".")
    return frame, guess, profile


def init_config(
    data_file: str | Path,
    out: str | Path,
    *,
    events: str | Path | None = None,
    customers: str | Path | None = None,
    force: bool = False,
    sample_rows: int = SAMPLE_ROWS,
) -> InitResult:
    """Inspect the files, write a commented config to ``out`` and say what was chosen and why.

    Parameters
    ----------
    data_file : str or Path
        The transactions file (CSV or Parquet).
    out : str or Path
        The config file to write.
    events, customers : str or Path, optional
        The events and customers files.
    force : bool
        Replace an existing ``out``.
    sample_rows : int
        Rows of each file profiled.

    Returns
    -------
    InitResult
        The path, a summary line, the decisions and the open questions.

    Raises
    ------
    ConfigError
        When ``out`` exists (without ``force``), a file is missing, a required column cannot
        be found, the span is too short, or the rendered config does not validate.
    """
    out = Path(out)
    if out.exists() and not force:
        raise ConfigError(f"{out} exists; pass --force to replace it")
    paths = {"transactions": Path(data_file), "events": events, "customers": customers}
    tables: dict[str, tuple[Path, TableProfile, CsvGuess | None]] = {}
    decisions: list[Decision] = []
    try:
        for name, given in paths.items():
            if given is None:
                continue
            _, guess, profile = _read(Path(given), name, sample_rows)
            tables[name] = (Path(given), profile, guess)
            decisions += profile.decisions
        tx_path, tx, tx_guess = tables["transactions"]
        stamp = tx.timestamp_column
        assert stamp is not None
        first, last = timestamp_span(tx_path, stamp.name, stamp.timestamp_format, tx_guess)
        split = propose_split(first, last)
    except ValueError as exc:  # SetupError, LeakageError
        raise ConfigError(str(exc)) from None
    returns, returns_why = _returns_choice(tx)
    data_choices = [Decision("data.returns", returns, returns_why)]
    id_profiles = [p for _, p, _ in tables.values()]
    if any(p.integer_text_ids for p in id_profiles):
        data_choices.append(
            Decision(
                "data.id_normalisation",
                "integer_text",
                "customer ids are integers written as floats (e.g. 17850.0): written 17850 "
                "in every table",
            )
        )
    questions: list[str] = []
    text = render_config(
        _config_name(tx_path), tables, split, data_choices, _policy_path(out), questions
    )
    _write_validated(text, out)
    decisions = decisions + data_choices + list(split["decisions"])  # type: ignore[arg-type]
    customers_seen = tx.columns[tx.roles["customer_id"]].n_distinct
    summary = (
        f"init: wrote {out} for {tx_path} ({tx.n_rows:,} rows sampled, {customers_seen:,} "
        f"customers in the sample, {first.date()} to {last.date()})"
        + (f"; {len(questions)} question(s) in the file" if questions else "")
    )
    return InitResult(out, summary, decisions, questions)


def _write_validated(text: str, out: str | Path) -> None:
    """Validate the text with :func:`load_config` from a file beside ``out``, then move it
    into place (an interrupted init leaves no half-written config)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        try:
            load_config(tmp)
        except ConfigError as exc:
            raise ConfigError(f"init wrote a config that does not validate (a bug): {exc}") from exc
        os.chmod(tmp, 0o644)
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
