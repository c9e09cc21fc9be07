"""Derived columns: arithmetic over source columns, parsed by a small safe grammar.

A column mapping may compute a numeric contract column from source columns, e.g.
``amount: Quantity * UnitPrice``. The text is parsed here by a tokenizer and a
recursive-descent parser into a tree of plain dataclasses, and evaluated vectorised over a
DataFrame. Nothing is ever passed to ``eval``; the grammar has no attribute access, no
function calls, no strings and no names other than column names::

    expr   := term (("+" | "-") term)*
    term   := unary (("*" | "/") unary)*
    unary  := "-" unary | atom
    atom   := number | name | quoted | "(" expr ")"
    number := 12 | 12.5 | .5 | 1e3 | 2.5E-2      (always "." as decimal separator)
    name   := [A-Za-z_][A-Za-z0-9_]*              (a column name as it is)
    quoted := '"' any text, '""' for a quote '"'   (a column name with spaces or operators)

``*`` and ``/`` bind tighter than ``+`` and ``-``; operators of one level group from the left
(``a - b - c`` is ``(a - b) - c``); unary minus binds tighter than every binary operator.
Positions in error messages count characters from 1.

Evaluation (:func:`evaluate`) gives float64 values; a row where a source cell is missing or
not a number, or where a division by zero happens, gets NaN (validation then rejects the row).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from retain.contracts import Contract

__all__ = [
    "OPERATOR_CHARACTERS",
    "BinaryOp",
    "Column",
    "Expr",
    "Negate",
    "Number",
    "derivable",
    "evaluate",
    "inputs_missing",
    "is_expression",
    "parse",
    "to_numbers",
]

OPERATOR_CHARACTERS = frozenset('+-*/()"')
"""A mapped column value holding one of these characters is read as an expression."""


def derivable(contract: Contract) -> tuple[str, ...]:
    """The contract columns an expression may compute: the numeric (float64) ones.

    ``amount`` and ``quantity`` of transactions, ``value`` of events; ids, timestamps and
    text columns are always plain source columns.
    """
    return tuple(
        c for c, dtype in {**contract.required, **contract.optional}.items() if dtype == "float64"
    )


def is_expression(text: str) -> bool:
    """Whether a mapped value is written as an expression (it holds ``+ - * / ( )`` or ``"``).

    A value without them is a plain column name.
    """
    return any(c in OPERATOR_CHARACTERS for c in text)


# ------------------------------------------------------------------------------ tree


class Expr:
    """A node of a parsed expression."""

    def columns(self) -> set[str]:
        """The source column names the expression reads."""
        raise NotImplementedError


@dataclass(frozen=True)
class Number(Expr):
    """A numeric literal."""

    value: float

    def columns(self) -> set[str]:
        return set()

    def __str__(self) -> str:
        return repr(self.value)


@dataclass(frozen=True)
class Column(Expr):
    """A source column, by its name in the file."""

    name: str

    def columns(self) -> set[str]:
        return {self.name}

    def __str__(self) -> str:
        if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", self.name):
            return self.name
        return '"' + self.name.replace('"', '""') + '"'


@dataclass(frozen=True)
class Negate(Expr):
    """Unary minus."""

    operand: Expr

    def columns(self) -> set[str]:
        return self.operand.columns()

    def __str__(self) -> str:
        return f"(-{self.operand})"


@dataclass(frozen=True)
class BinaryOp(Expr):
    """``left op right`` with ``op`` one of ``+ - * /``."""

    op: str
    left: Expr
    right: Expr

    def columns(self) -> set[str]:
        return self.left.columns() | self.right.columns()

    def __str__(self) -> str:
        return f"({self.left} {self.op} {self.right})"


# ------------------------------------------------------------------------- tokenizer


@dataclass(frozen=True)
class _Token:
    kind: str  # "number", "name", "op", "(", ")", "end"
    text: str
    position: int  # 1-based
    value: float | str | None = None


_NUMBER = re.compile(r"(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
MAX_LENGTH = 1000
"""The longest expression accepted (a mapping is a short formula, not a program)."""
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _tokens(text: str) -> list[_Token]:
    out: list[_Token] = []
    i = 0
    while i < len(text):
        c = text[i]
        if c.isspace():
            i += 1
            continue
        if c in "+-*/":
            out.append(_Token("op", c, i + 1))
            i += 1
            continue
        if c in "()":
            out.append(_Token(c, c, i + 1))
            i += 1
            continue
        if c == '"':
            j, name = i + 1, []
            while True:
                if j >= len(text):
                    raise ValueError(f"unterminated quoted name starting at position {i + 1}")
                if text[j] == '"':
                    if text[j + 1 : j + 2] == '"':
                        name.append('"')
                        j += 2
                        continue
                    break
                name.append(text[j])
                j += 1
            if not "".join(name).strip():
                raise ValueError(f"empty quoted name at position {i + 1}")
            out.append(_Token("name", text[i : j + 1], i + 1, "".join(name)))
            i = j + 1
            continue
        m = _NUMBER.match(text, i)
        if m and (c in "0123456789" or c == "."):
            out.append(_Token("number", m.group(), i + 1, float(m.group())))
            i = m.end()
            continue
        m = _NAME.match(text, i)
        if m:
            out.append(_Token("name", m.group(), i + 1, m.group()))
            i = m.end()
            continue
        raise ValueError(
            f"unexpected character {c!r} at position {i + 1}: only column names, numbers, "
            '+ - * / and parentheses are allowed (quote a name with spaces: "Unit Price")'
        )
    out.append(_Token("end", "", len(text) + 1))
    return out


# ---------------------------------------------------------------------------- parser


def _found(token: _Token) -> str:
    return "the end" if token.kind == "end" else repr(token.text)


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokens(text)
        self.i = 0

    @property
    def token(self) -> _Token:
        return self.tokens[self.i]

    def _take(self) -> _Token:
        token = self.tokens[self.i]
        self.i += 1
        return token

    def parse(self) -> Expr:
        expr = self._expr()
        token = self.token
        if token.kind != "end":
            hint = " (function calls are not supported)" if token.kind == "(" else ""
            raise ValueError(
                f"expected an operator (+ - * /) or the end at position {token.position}, "
                f"found {_found(token)}{hint}"
            )
        return expr

    def _expr(self) -> Expr:
        left = self._term()
        while self.token.kind == "op" and self.token.text in "+-":
            op = self._take().text
            left = BinaryOp(op, left, self._term())
        return left

    def _term(self) -> Expr:
        left = self._unary()
        while self.token.kind == "op" and self.token.text in "*/":
            op = self._take().text
            left = BinaryOp(op, left, self._unary())
        return left

    def _unary(self) -> Expr:
        if self.token.kind == "op" and self.token.text == "-":
            self._take()
            return Negate(self._unary())
        return self._atom()

    def _atom(self) -> Expr:
        token = self._take()
        if token.kind == "number":
            assert isinstance(token.value, float)
            return Number(token.value)
        if token.kind == "name":
            assert isinstance(token.value, str)
            return Column(token.value)
        if token.kind == "(":
            inner = self._expr()
            close = self._take()
            if close.kind != ")":
                raise ValueError(
                    f"expected ')' at position {close.position} to close the '(' at position "
                    f"{token.position}, found {_found(close)}"
                )
            return inner
        raise ValueError(
            f"expected a number, a column name, '-' or '(' at position {token.position}, "
            f"found {_found(token)}"
        )


def parse(text: str) -> Expr:
    """Parse an arithmetic expression over column names.

    Parameters
    ----------
    text : str
        E.g. ``Quantity * UnitPrice`` or ``("Net Price" + tax) * -1``.

    Returns
    -------
    Expr
        The tree; ``columns()`` lists the source columns it reads.

    Raises
    ------
    ValueError
        A syntax error, naming the position (characters counted from 1), what was expected
        and what was found.
    """
    if not isinstance(text, str):
        raise ValueError(f"expected text, got {type(text).__name__}")
    if not text.strip():
        raise ValueError("empty expression")
    if len(text) > MAX_LENGTH:
        raise ValueError(f"the expression is {len(text):,} characters long, more than {MAX_LENGTH}")
    try:
        return _Parser(text).parse()
    except RecursionError:
        raise ValueError("the expression nests too deeply") from None


# ------------------------------------------------------------------------ evaluation


def _text_missing(text: pd.Series, null_values: Sequence[str]) -> np.ndarray:
    absent = text.isna() | text.eq("")
    if null_values:
        absent = absent | text.isin(list(null_values))
    return absent.fillna(True).to_numpy(dtype=bool)


def to_numbers(
    values: pd.Series, decimal: str = ".", null_values: Sequence[str] = ()
) -> tuple[np.ndarray, np.ndarray]:
    """Floats from one source column, and where its cells are missing.

    Numeric columns (Parquet) are taken as they are; text (CSV) is stripped and parsed with
    ``decimal`` as decimal separator (with ``","`` a text holding ``.`` is not a number).
    A blank cell, NA or one of ``null_values`` is missing. Non-numbers, non-finite values and
    missing cells are NaN in the values.
    """
    if pd.api.types.is_numeric_dtype(values.dtype) and not pd.api.types.is_bool_dtype(values.dtype):
        out = values.to_numpy(dtype=float, na_value=np.nan)
        missing = np.isnan(out)
    else:
        text = values.astype("string").str.strip()
        missing = _text_missing(text, null_values)
        bad = np.zeros(len(text), dtype=bool)
        if decimal != ".":
            bad = text.str.contains(".", regex=False).fillna(False).to_numpy(dtype=bool)
            text = text.str.replace(decimal, ".", regex=False)
        out = pd.to_numeric(text, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        out[bad] = np.nan
    out = np.where(np.isfinite(out), out, np.nan)
    return out, missing


def _source(frame: pd.DataFrame, name: str) -> pd.Series:
    if name not in frame.columns:
        raise ValueError(f"column {name!r} not found; columns present: {', '.join(frame.columns)}")
    return frame[name]


def evaluate(
    expr: Expr,
    frame: pd.DataFrame,
    *,
    decimal: str = ".",
    null_values: Sequence[str] = (),
) -> pd.Series:
    """Evaluate an expression row by row over ``frame``'s columns, vectorised.

    Parameters
    ----------
    expr : Expr
        A parsed expression (:func:`parse`).
    frame : DataFrame
        Holds every column of ``expr.columns()``: numbers, or text read with ``decimal``.
    decimal : {".", ","}
        Decimal separator of text numbers.
    null_values : sequence of str
        Text read as a missing cell.

    Returns
    -------
    Series
        float64, indexed like ``frame``. NaN where a source cell is missing or not a number,
        where a division by zero happens, or where the result is not finite.

    Raises
    ------
    ValueError
        A column of the expression is not in ``frame``.
    """
    cache: dict[str, np.ndarray] = {}

    def walk(node: Expr) -> np.ndarray:
        if isinstance(node, Number):
            return np.full(len(frame), node.value, dtype=float)
        if isinstance(node, Column):
            if node.name not in cache:
                cache[node.name] = to_numbers(_source(frame, node.name), decimal, null_values)[0]
            return cache[node.name]
        if isinstance(node, Negate):
            return -walk(node.operand)
        if isinstance(node, BinaryOp):
            left, right = walk(node.left), walk(node.right)
            with np.errstate(all="ignore"):
                if node.op == "+":
                    return left + right
                if node.op == "-":
                    return left - right
                if node.op == "*":
                    return left * right
                out = left / right
            return np.where(right == 0, np.nan, out)
        raise TypeError(f"not an expression node: {node!r}")

    values = walk(expr)
    values = np.where(np.isfinite(values), values, np.nan).astype(np.float64)
    return pd.Series(values, index=frame.index, dtype="float64")


def inputs_missing(
    expr: Expr, frame: pd.DataFrame, *, null_values: Sequence[str] = ()
) -> np.ndarray:
    """Rows where any source cell of ``expr`` is missing (NA, blank or one of ``null_values``)."""
    missing = np.zeros(len(frame), dtype=bool)
    for name in sorted(expr.columns()):
        missing |= to_numbers(_source(frame, name), ".", null_values)[1]
    return missing
