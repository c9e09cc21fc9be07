"""Reading one table: a CSV or Parquet file through DuckDB, renamed to its contract.

:func:`read_table` reads one file and renames the source columns to the contract names given in
the config; a numeric contract column may be computed from source columns
(``amount: Quantity * UnitPrice``, see :mod:`retain.expressions`). CSV columns are read as
text, so a bad value in one row becomes a quarantined row later (:mod:`retain.validation`)
instead of a crash now. The CSV dialect is stated (``csv:`` per
table in the config, RFC 4180 by default), never sniffed. A file that cannot be read as a whole
(missing, empty, a missing required column, a column of lists or bytes, a CSV row with the wrong
number of fields, text in another encoding) raises one :class:`retain.contracts.DataError`
naming the table, the file, the line or column and the setting that fixes it.
"""

from __future__ import annotations

import contextlib
import csv
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
from duckdb.sqltypes import DuckDBPyType

from retain.config import ConfigError, CsvOptions, TableSource
from retain.contracts import NULL_VALUES, Contract, DataError
from retain.expressions import (
    Column,
    Expr,
    derivable,
    evaluate,
    inputs_missing,
    is_expression,
    parse,
)

__all__ = ["read_table"]


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


_PYTHON_ENCODING = {"utf-8": "utf-8-sig", "utf-16": "utf-16", "latin-1": "latin-1"}
"""Python codec per ``csv.encoding``; ``utf-8-sig`` drops a byte-order mark."""


def _csv_dialect(options: CsvOptions) -> dict[str, Any]:
    """Keyword arguments of :func:`csv.reader` for the configured dialect."""
    if not options.quote:
        return {"delimiter": options.delimiter, "quoting": csv.QUOTE_NONE}
    doubled = options.escape in ("", options.quote)
    return {
        "delimiter": options.delimiter,
        "quotechar": options.quote,
        "doublequote": doubled,
        "escapechar": None if doubled else options.escape,
    }


def _encoding_hint(table: str, options: CsvOptions) -> str:
    other = "latin-1" if options.encoding != "latin-1" else "utf-8"
    return (
        f"the file is not {options.encoding}: set data.{table}.csv.encoding "
        f"(utf-8, utf-16 or latin-1; e.g. {other}) or re-save the file as UTF-8"
    )


def _csv_header(path: Path, options: CsvOptions, table: str) -> list[str]:
    """The column names of a CSV file's header row, read with the configured dialect.

    Names are stripped; a byte-order mark is dropped; an empty name becomes ``column<i>``
    (0-based position), as DuckDB names it.
    """
    codec = _PYTHON_ENCODING[options.encoding]
    try:
        # errors="replace": a bad byte further down is DuckDB's to report, with its line
        with path.open(encoding=codec, errors="replace", newline="") as handle:
            header = next(csv.reader(handle, **_csv_dialect(options)), None)
    except csv.Error as exc:
        raise DataError(f"{table}: cannot read the header of {path}: {exc}") from exc
    if not header or header == [""]:
        raise DataError(f"{table}: file has no header row (0 rows): {path}")
    if any("\ufffd" in name for name in header):
        raise DataError(f"{table}: cannot read {path}, line 1: {_encoding_hint(table, options)}")
    names = [name.strip() or f"column{i}" for i, name in enumerate(header)]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise DataError(
            f"{table}: header of {path} repeats column name(s) {', '.join(map(repr, repeated))}; "
            "every column needs its own name"
        )
    return names


_LINE = re.compile(r"CSV Error on Line: (\d+)")
"""The line number in DuckDB's CSV error text; a message without it names the file alone."""


def _undecodable(path: Path, options: CsvOptions) -> bool:
    """Whether the file holds bytes that are not text in the configured encoding."""
    try:
        with path.open(encoding=_PYTHON_ENCODING[options.encoding], newline="") as handle:
            while handle.read(1 << 20):
                pass
    except UnicodeError:
        return True
    return False


def _csv_error(table: str, path: Path, options: CsvOptions, exc: duckdb.Error) -> DataError:
    """One readable error for a CSV file DuckDB cannot parse with the configured dialect.

    The line comes from DuckDB's message when it states one (:data:`_LINE`). Whether the
    encoding is at fault is read from DuckDB's message or, failing that, found by decoding
    the file with Python, so the ``csv.encoding`` hint does not hang on DuckDB's wording.
    """
    text = str(exc)
    line = _LINE.search(text)
    where = f"{path}, line {int(line.group(1)):,}" if line else str(path)
    if "unicode" in text.lower() or "encoding" in text.lower():
        return DataError(f"{table}: cannot read {where}: {_encoding_hint(table, options)}")
    if _undecodable(path, options):  # DuckDB's line may concern another fault: name none
        return DataError(f"{table}: cannot read {path}: {_encoding_hint(table, options)}")
    detail = next(
        (
            ln.strip()
            for ln in text.splitlines()
            if ln.startswith(("Expected Number of Columns", "Value with unterminated quote"))
        ),
        text.splitlines()[0] if text else type(exc).__name__,
    )
    quote = repr(options.quote) if options.quote else "none"
    return DataError(
        f"{table}: cannot read {where}: {detail.rstrip('.')}. The file is read with delimiter "
        f"{options.delimiter!r}, quote {quote}, escape {options.escape!r} and a header row: "
        f"check data.{table}.csv (delimiter, quote, escape) against the file"
    )


def _literal(text: str) -> str:
    """A SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def _open_relation(
    con: duckdb.DuckDBPyConnection, source: TableSource, table: str
) -> duckdb.DuckDBPyRelation:
    path = Path(source.path)
    if source.resolved_format == "parquet":
        return con.read_parquet(str(path))
    options = source.csv
    names = _csv_header(path, options, table)
    columns = ", ".join(f"{_literal(name)}: 'VARCHAR'" for name in names)
    # SQL rather than con.read_csv: the Python wrapper refuses every encoding but UTF-8
    settings = {
        "header": "true",
        "auto_detect": "false",
        "strict_mode": "true",
        "columns": "{" + columns + "}",
        "delim": _literal(options.delimiter),
        "quote": _literal(options.quote),
        "escape": _literal(options.escape if options.quote else ""),
        "encoding": _literal(options.encoding),
    }
    args = ", ".join(f"{key} = {value}" for key, value in settings.items())
    return con.sql(f"SELECT * FROM read_csv({_literal(str(path))}, {args})")


_NESTED_IDS = frozenset({"list", "array", "struct", "map", "union", "blob", "bit", "variant"})
"""``DuckDBPyType.id`` of the types that hold no one plain value (nested values or bytes).

The id is the type's kind without its parameters (``INTEGER[]`` and ``STRUCT(a INTEGER)[]``
are both ``list``), so no type name is parsed.
"""


def _resolve(
    source: TableSource, contract: Contract, available: list[str]
) -> tuple[dict[str, str], dict[str, Expr]]:
    """Split the contract columns into plain source columns and derived (computed) ones.

    A mapped value that is a column of the file is that column. Otherwise a numeric contract
    column (:func:`retain.expressions.derivable`) whose value holds an operator, a parenthesis
    or a quote is an expression; a quoted single name (``'"Unit Price"'``) is a plain column.
    Every other value is a column name, as written.
    """
    table = contract.name
    numeric = derivable(contract)
    plain: dict[str, str] = {}
    derived: dict[str, Expr] = {}
    for name in contract.columns:
        value = source.columns.get(name, name)
        if value in available or name not in numeric or not is_expression(value):
            plain[name] = value
            continue
        try:
            expr = parse(value)
        except ValueError as exc:
            raise ConfigError(
                f"data.{table}.columns.{name}: cannot read {value!r} as an expression: {exc}"
            ) from None
        if isinstance(expr, Column):
            plain[name] = expr.name
        else:
            derived[name] = expr
    return plain, derived


def _check_column_types(
    source: TableSource,
    contract: Contract,
    used: dict[str, str],
    available: list[str],
    types: Sequence[DuckDBPyType],
) -> None:
    """Refuse a contract column (or a source of a derived one) stored as a list, struct, map
    or bytes (one value expected). ``used`` maps what is shown to the source column."""
    by_name = dict(zip(available, types, strict=True))
    for shown, src in used.items():
        column_type = by_name.get(src)
        if column_type is not None and column_type.id in _NESTED_IDS:
            type_name = str(column_type)
            raise DataError(
                f"{contract.name}: column {shown} in {source.path} has type {type_name}, "
                "not one value per row; store it as text or a number (e.g. take the list's "
                "single element, or decode the bytes to UTF-8 text) before loading"
            )


def _projection(
    source: TableSource,
    contract: Contract,
    plain: dict[str, str],
    derived: dict[str, Expr],
    available: list[str],
) -> tuple[list[str], dict[str, str]]:
    """SELECT items renaming source columns to contract names, keeping every other column.

    Returns the items and, per source column, the name it gets in the result (a derived
    column is computed from those).
    """
    table = contract.name
    missing = []
    used_sources: set[str] = set()
    items = []
    where: dict[str, str] = {}
    numeric = derivable(contract)
    for name, src in plain.items():
        if src in available:
            items.append(f"{_quote(src)} AS {_quote(name)}")
            used_sources.add(src)
            where.setdefault(src, name)
        elif name in contract.required or name in source.columns:
            shown = name if src == name else f"{name} (source column {src!r})"
            if name not in numeric and is_expression(src):
                shown += (
                    f" (a computed column is only allowed for {', '.join(numeric)}; "
                    f"{name} must name one column of the file)"
                    if numeric
                    else f" (computed columns are not allowed in {table}; {name} must name "
                    "one column of the file)"
                )
            elif name in numeric and " " in src.strip():
                shown += f" (to compute {name}, use + - * /, e.g. Quantity * UnitPrice)"
            missing.append(shown)
    if missing:
        kind = "required column" if len(missing) == 1 else "required columns"
        raise DataError(
            f"{table}: {kind} {', '.join(missing)} missing from {source.path}; "
            f"columns present: {', '.join(available)}"
        )
    for name, expr in derived.items():
        absent = sorted(expr.columns() - set(available))
        if absent:
            kind = "column" if len(absent) == 1 else "columns"
            raise DataError(
                f"{table}: source {kind} {', '.join(map(repr, absent))} of "
                f"data.{table}.columns.{name} ({source.columns[name]!r}) missing from "
                f"{source.path}; columns present: {', '.join(available)}"
            )
    produced = set(contract.columns)
    for col in available:
        if col in used_sources:
            continue
        alias = f"source.{col}" if col in produced else col
        items.append(f"{_quote(col)} AS {_quote(alias)}")
        where[col] = alias
    return items, where


def _compute(
    frame: pd.DataFrame,
    derived: dict[str, Expr],
    where: dict[str, str],
    contract: Contract,
    decimal: str,
    null_values: Sequence[str],
) -> pd.DataFrame:
    """Add the derived contract columns, placed among the contract columns in their order.

    A row whose source cells are all present but whose result is not a number (a cell that
    is no number, a division by zero) gets ``inf``, which validation rejects as not numeric
    (``amount_not_numeric``); a row with a missing source cell gets NaN (missing).
    """
    if not derived:
        return frame
    for name, expr in derived.items():
        inputs = pd.DataFrame({col: frame[where[col]] for col in sorted(expr.columns())})
        values = evaluate(expr, inputs, decimal=decimal, null_values=null_values).to_numpy()
        bad = np.isnan(values) & ~inputs_missing(expr, inputs, null_values=null_values)
        frame[name] = np.where(bad, np.inf, values)
    first = [c for c in contract.columns if c in frame.columns]
    return frame[first + [c for c in frame.columns if c not in first]]


def read_table(
    source: TableSource, contract: Contract, *, null_values: Sequence[str] = NULL_VALUES
) -> pd.DataFrame:
    """Read one CSV or Parquet file through DuckDB, with source columns renamed to the contract.

    Values are kept as raw as possible: every CSV column is read as text (validation parses
    and quarantines bad values); Parquet columns keep their stored types. Columns outside the
    contract are kept under their source names (they count when judging exact duplicates); an
    unmapped source column whose name clashes with a contract name is kept as
    ``source.<name>``.

    A CSV file is read with the dialect stated in ``source.csv`` (default: ``,`` between
    fields, ``"`` quotes, doubled quotes inside them, a header row, UTF-8), never with a
    dialect guessed from the first lines: a quoted comma, a doubled quote or a line break
    inside quotes is read right wherever it first appears. Header names are stripped and a
    UTF-8 byte-order mark is dropped.

    A numeric contract column mapped to an expression (``amount: Quantity * UnitPrice``, see
    :class:`retain.config.TableSource` and :mod:`retain.expressions`) is computed here as
    float64, text source cells read with ``source.csv.decimal``: NaN where a source cell is
    missing (blank, NA or one of ``null_values``), ``inf`` where one is not a number or a
    division by zero happens, so that validation rejects the row as missing or not numeric.
    Its source columns stay in the result under their own names, like every unmapped column.

    Parameters
    ----------
    source : TableSource
        The file, its format, its CSV dialect, and ``columns`` mapping contract names to
        source names.
    contract : Contract
        The contract the table is read for (its name is used in messages).
    null_values : sequence of str
        Text read as a missing source cell of a derived column (``data.null_values``).

    Returns
    -------
    DataFrame
        The raw rows in file order, with a fresh RangeIndex.

    Raises
    ------
    DataError
        The file is missing, has no rows, lacks a required (or an explicitly mapped) column
        or a source column of a derived one,
        stores a contract column as a list, struct, map or bytes, or cannot be parsed: a CSV
        row with the wrong number of fields or an unterminated quote, or text that is not in
        the configured encoding. The message names the table, the file, the line (when DuckDB
        reports it), the column, and what to change.
    ConfigError
        ``columns`` maps a name that is not a column of the contract, or an expression that
        cannot be parsed (the message names ``data.<table>.columns.<name>``).
    """
    parts = list(read_table_batches(source, contract, null_values=null_values))
    frame = parts[0] if len(parts) == 1 else pd.concat(parts, ignore_index=True)
    if len(frame) == 0:
        raise DataError(f"{contract.name}: file has no data rows (0 rows): {source.path}")
    return frame.reset_index(drop=True)


def check_source_file(source: TableSource, contract: Contract) -> Path:
    """The configured file of a table, refused before reading when it cannot be one.

    Parameters
    ----------
    source : TableSource
        The file and its column mapping.
    contract : Contract
        The table's contract.

    Returns
    -------
    Path
        The file.

    Raises
    ------
    ConfigError
        The mapping names a column the contract does not have.
    DataError
        The file is missing or empty.
    """
    table = contract.name
    unknown = sorted(set(source.columns) - set(contract.columns))
    if unknown:
        raise ConfigError(
            f"{table}: column mapping names {', '.join(unknown)}, not column(s) of the "
            f"{table} contract ({', '.join(contract.columns)})"
        )
    path = Path(source.path)
    if not path.is_file():
        raise DataError(f"{table}: file not found: {path}")
    if path.stat().st_size == 0:
        raise DataError(f"{table}: file is empty (0 rows): {path}")
    return path


def read_table_batches(
    source: TableSource,
    contract: Contract,
    *,
    null_values: Sequence[str] = NULL_VALUES,
    batch_rows: int | None = None,
) -> Iterator[pd.DataFrame]:
    """:func:`read_table` a batch of rows at a time, in file order (memory bounded by the batch).

    Parameters
    ----------
    source, contract, null_values
        As for :func:`read_table`.
    batch_rows : int, optional
        Rows per batch; None reads the file as one batch.

    Yields
    ------
    DataFrame
        The next rows, as :func:`read_table` gives them (a fresh RangeIndex per batch).

    Raises
    ------
    DataError, ConfigError
        As :func:`read_table` (before the first batch, or while reading).
    """
    table = contract.name
    path = check_source_file(source, contract)
    is_csv = source.resolved_format == "csv"

    def failure(exc: duckdb.Error) -> DataError:
        if is_csv:
            return _csv_error(table, path, source.csv, exc)
        return DataError(f"{table}: cannot read {path}: {exc}")

    con = duckdb.connect()
    try:
        with contextlib.suppress(duckdb.Error):
            con.execute("SET TimeZone = 'UTC'")
        try:
            rel = _open_relation(con, source, table)
            available = list(rel.columns)
            types = list(rel.types)
        except duckdb.Error as exc:
            raise failure(exc) from exc
        plain, derived = _resolve(source, contract, available)
        items, where = _projection(source, contract, plain, derived, available)
        used = {
            name if src == name else f"{name} (source column {src!r})": src
            for name, src in plain.items()
        }
        for name, expr in derived.items():
            used.update({f"{col!r} (used by {name})": col for col in sorted(expr.columns())})
        _check_column_types(source, contract, used, available, types)
        try:
            if batch_rows is None:
                batches: Iterator[Any] = iter([rel.project(", ".join(items)).to_arrow_table()])
            else:
                reader = rel.project(", ".join(items)).fetch_arrow_reader(batch_rows)
                batches = iter(reader)
            for batch in batches:
                frame = batch.to_pandas()
                yield _compute(frame, derived, where, contract, source.csv.decimal, null_values)
        except duckdb.Error as exc:
            raise failure(exc) from exc
    finally:
        con.close()
