"""The derived-column grammar: parsing, refusals with positions, and vectorised evaluation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from retain.contracts import CUSTOMERS, EVENTS, TRANSACTIONS
from retain.expressions import (
    BinaryOp,
    Column,
    Negate,
    Number,
    derivable,
    evaluate,
    inputs_missing,
    is_expression,
    parse,
)


@pytest.mark.parametrize(
    ("text", "tree"),
    [
        ("Quantity * UnitPrice", BinaryOp("*", Column("Quantity"), Column("UnitPrice"))),
        ("a + b * c", BinaryOp("+", Column("a"), BinaryOp("*", Column("b"), Column("c")))),
        ("(a + b) * c", BinaryOp("*", BinaryOp("+", Column("a"), Column("b")), Column("c"))),
        ("a - b - c", BinaryOp("-", BinaryOp("-", Column("a"), Column("b")), Column("c"))),
        ("a / b / 2", BinaryOp("/", BinaryOp("/", Column("a"), Column("b")), Number(2.0))),
        ("-a * b", BinaryOp("*", Negate(Column("a")), Column("b"))),
        ("a * -b", BinaryOp("*", Column("a"), Negate(Column("b")))),
        ("--a", Negate(Negate(Column("a")))),
        ("a--b", BinaryOp("-", Column("a"), Negate(Column("b")))),
        ("1.5e2 + .5 + 3.", BinaryOp("+", BinaryOp("+", Number(150.0), Number(0.5)), Number(3.0))),
        ('"Unit Price" * 2', BinaryOp("*", Column("Unit Price"), Number(2.0))),
        ('"say ""hi"""', Column('say "hi"')),
        ('"Price (EUR)"', Column("Price (EUR)")),
        ("  _x1\t*\n(y)  ", BinaryOp("*", Column("_x1"), Column("y"))),
    ],
)
def test_parse_precedence_unary_minus_parentheses_and_quoted_names(text, tree):
    assert parse(text) == tree


def test_columns_lists_every_source_column_once():
    assert parse('(a + "b c") * a - 2 / d').columns() == {"a", "b c", "d"}
    assert parse("-1.5").columns() == set()


@pytest.mark.parametrize(
    ("text", "position", "what"),
    [
        ("Quantity *", 11, "expected a number, a column name"),
        ("* a", 1, "expected a number, a column name"),
        ("a b", 3, "expected an operator"),
        ("(a + b", 7, "expected ')'"),
        ("a + b)", 6, "expected an operator"),
        ("()", 2, "expected a number, a column name"),
        ("2 3", 3, "expected an operator"),
        ("a ** b", 4, "expected a number, a column name"),
        ("+a", 1, "expected a number, a column name"),
        ('__import__("os")', 11, "function calls are not supported"),
        ("abs(a)", 4, "function calls are not supported"),
        ("a.b", 2, "unexpected character '.'"),
        ("a.__class__", 2, "unexpected character '.'"),
        ("a % b", 3, "unexpected character '%'"),
        ("a[0]", 2, "unexpected character '['"),
        ("a, b", 2, "unexpected character ','"),
        ("'a' * 2", 1, 'unexpected character "\'"'),
        ("a == b", 3, "unexpected character '='"),
        ("lambda: 1", 7, "unexpected character ':'"),
        ('"a * 2', 1, "unterminated quoted name"),
        ('"  " * 2', 1, "empty quoted name"),
    ],
)
def test_syntax_errors_name_the_position_and_what_was_expected(text, position, what):
    with pytest.raises(ValueError, match=f"position {position}") as err:
        parse(text)
    assert what in str(err.value)


@pytest.mark.parametrize("text", ["", "   ", None, 3])
def test_empty_or_non_text_is_refused(text):
    with pytest.raises(ValueError):
        parse(text)


def test_the_module_calls_no_eval_exec_compile_getattr_or_import():
    import ast
    import inspect

    import retain.expressions as module

    tree = ast.parse(inspect.getsource(module))
    called = {
        node.func.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
    }
    assert not called & {"eval", "exec", "compile", "getattr", "__import__", "setattr"}


def test_is_expression_and_derivable_columns():
    assert is_expression("Quantity * UnitPrice")
    assert is_expression('"Unit Price"')
    assert is_expression("Unit-Price")
    assert not is_expression("UnitPrice")
    assert not is_expression("Unit Price")
    assert derivable(TRANSACTIONS) == ("amount", "quantity")
    assert derivable(EVENTS) == ("value",)
    assert derivable(CUSTOMERS) == ()


# ------------------------------------------------------------------------ evaluation


def _reference(text: str, a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    with np.errstate(all="ignore"):
        out = {
            "a + b * c": a + b * c,
            "(a + b) * c": (a + b) * c,
            "a - b - c": a - b - c,
            "-a * -b + c / 4": -a * -b + c / 4,
            "a / b": np.where(b == 0, np.nan, a / b),
            "(a - -b) / (c - 1.5e1)": np.where(c - 15 == 0, np.nan, (a + b) / (c - 15)),
        }[text]
    return np.where(np.isfinite(out), out, np.nan)


@pytest.mark.parametrize(
    "text",
    ["a + b * c", "(a + b) * c", "a - b - c", "-a * -b + c / 4", "a / b", "(a - -b) / (c - 1.5e1)"],
)
@pytest.mark.parametrize("seed", range(5))
def test_evaluation_matches_numpy_on_random_frames(text, seed):
    rng = np.random.default_rng(seed)
    n = 200
    a = np.round(rng.normal(0, 100, n), 3)
    b = rng.integers(-3, 4, n).astype(float)  # zeros: division by zero
    c = np.round(rng.uniform(-50, 50, n), 2)
    c[rng.random(n) < 0.1] = 15.0
    want = _reference(text, a, b, c)
    typed = pd.DataFrame({"a": a, "b": b, "c": c}, index=np.arange(n) + 10)
    got = evaluate(parse(text), typed)
    assert got.dtype == np.float64
    assert got.index.equals(typed.index)
    np.testing.assert_allclose(got.to_numpy(), want, rtol=1e-12, equal_nan=True)
    as_text = typed.map(repr)  # CSV columns are text
    np.testing.assert_allclose(
        evaluate(parse(text), as_text).to_numpy(), want, rtol=1e-12, equal_nan=True
    )
    comma = typed.map(lambda v: repr(v).replace(".", ","))
    np.testing.assert_allclose(
        evaluate(parse(text), comma, decimal=",").to_numpy(), want, rtol=1e-12, equal_nan=True
    )


def test_missing_non_numeric_and_division_by_zero_give_nan():
    frame = pd.DataFrame(
        {
            "q": [" 2 ", "x", None, "", "NULL", "3", "1e400", "4"],
            "p": ["1.5", "1", "1", "1", "1", "0", "1", "inf"],
        }
    )
    got = evaluate(parse("q / p"), frame, null_values=("NULL",))
    assert got.iloc[0] == pytest.approx(2 / 1.5)
    assert got.iloc[1:].isna().all()
    missing = inputs_missing(parse("q / p"), frame, null_values=("NULL",))
    assert missing.tolist() == [False, False, True, True, True, False, False, False]


def test_a_point_is_not_a_number_with_comma_decimals():
    frame = pd.DataFrame({"q": ["1,5", "1.5", "2"]})
    assert evaluate(parse("q * 2"), frame, decimal=",").tolist()[0] == 3.0
    assert np.isnan(evaluate(parse("q * 2"), frame, decimal=",").iloc[1])


def test_a_column_missing_from_the_frame_is_named():
    with pytest.raises(ValueError, match="'UnitPrice' not found"):
        evaluate(parse("Quantity * UnitPrice"), pd.DataFrame({"Quantity": [1]}))


def test_a_deep_or_long_expression_is_an_error_not_a_crash():
    from retain.expressions import parse

    with pytest.raises(ValueError, match="nests too deeply|characters long"):
        parse("(" * 3000 + "a" + ")" * 3000)
    with pytest.raises(ValueError):
        parse("-" * 5000 + "a")
    with pytest.raises(ValueError):
        parse("\u0663 * a")  # an Arabic-Indic digit is not a number here
