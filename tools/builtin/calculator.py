"""The ``calculator`` tool: safe arithmetic for a language model.

Why this module exists: models are unreliable at arithmetic, so they get a
calculator. Its input comes from the model (and so, indirectly, from whoever
wrote the prompt), so it must be safe against hostile input: the expression is
parsed with :mod:`ast` and walked by a small interpreter that knows only
numbers, arithmetic operators and a whitelist of :mod:`math` functions --
never ``eval``/``exec``. Every costly thing is bounded *before* it is
computed (expression length, node count, nesting depth, the size of a power,
the argument of ``factorial``, the size of an integer result), so any input
answers in well under 100 ms.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Callable
from typing import Any

from tools.errors import CalculatorError
from tools.registry import tool

__all__ = [
    "MAX_DEPTH",
    "MAX_EXPRESSION_CHARS",
    "MAX_FACTORIAL",
    "MAX_INT_BITS",
    "MAX_NODES",
    "CalculatorError",
    "calculator",
    "evaluate",
]

MAX_EXPRESSION_CHARS = 500
MAX_NODES = 200
MAX_DEPTH = 30
MAX_INT_BITS = 10_000
MAX_FACTORIAL = 1000
MAX_ROUND_DIGITS = 1000

Number = int | float


# ------------------------------------------------------------------ the whitelist

CONSTANTS: dict[str, float] = {"pi": math.pi, "e": math.e, "tau": math.tau}


def _whole(fname: str, x: Number) -> int:
    """``x`` as an int if it is a whole number (5 or 5.0), else a CalculatorError."""
    if isinstance(x, int):
        return x
    if isinstance(x, float) and x.is_integer():
        return int(x)
    raise CalculatorError(f"{fname}() needs whole numbers, got {_show(x)}")


def _factorial(n: Number) -> int:
    k = _whole("factorial", n)
    if not 0 <= k <= MAX_FACTORIAL:
        raise CalculatorError(
            f"factorial({_show(n)}) is not supported: factorial() takes a whole number from 0 to {MAX_FACTORIAL}"
        )
    return math.factorial(k)


def _gcd(*args: Number) -> int:
    return math.gcd(*(_whole("gcd", a) for a in args))


def _round(x: Number, ndigits: Number | None = None) -> Number:
    if ndigits is None:
        return round(x)
    n = _whole("round", ndigits)
    if abs(n) > MAX_ROUND_DIGITS:
        raise CalculatorError(
            f"round(): the number of digits must be between -{MAX_ROUND_DIGITS} and {MAX_ROUND_DIGITS}"
        )
    return round(x, n)


def _min(*args: Number) -> Number:
    return min(args)


def _max(*args: Number) -> Number:
    return max(args)


# name -> (function, minimum number of arguments, maximum or None for "any")
FUNCTIONS: dict[str, tuple[Callable[..., Number], int, int | None]] = {
    "sqrt": (math.sqrt, 1, 1),
    "sin": (math.sin, 1, 1),
    "cos": (math.cos, 1, 1),
    "tan": (math.tan, 1, 1),
    "asin": (math.asin, 1, 1),
    "acos": (math.acos, 1, 1),
    "atan": (math.atan, 1, 1),
    "atan2": (math.atan2, 2, 2),
    "log": (math.log, 1, 2),
    "log10": (math.log10, 1, 1),
    "log2": (math.log2, 1, 1),
    "exp": (math.exp, 1, 1),
    "floor": (math.floor, 1, 1),
    "ceil": (math.ceil, 1, 1),
    "fabs": (math.fabs, 1, 1),
    "factorial": (_factorial, 1, 1),
    "gcd": (_gcd, 1, None),
    "hypot": (math.hypot, 1, None),
    "degrees": (math.degrees, 1, 1),
    "radians": (math.radians, 1, 1),
    "round": (_round, 1, 2),
    "abs": (abs, 1, 1),
    "min": (_min, 1, None),
    "max": (_max, 1, None),
}

_BINARY_OPS: dict[type[ast.operator], str] = {
    ast.Add: "+",
    ast.Sub: "-",
    ast.Mult: "*",
    ast.Div: "/",
    ast.FloorDiv: "//",
    ast.Mod: "%",
    ast.Pow: "**",
}

_REFUSED_OPS: dict[type[ast.AST], str] = {
    ast.BitXor: "'^' is not supported; use ** for powers (e.g. 2**10)",
    ast.LShift: "bit shifts (<<) are not supported",
    ast.RShift: "bit shifts (>>) are not supported",
    ast.BitAnd: "bitwise operators (&) are not supported",
    ast.BitOr: "bitwise operators (|) are not supported",
    ast.MatMult: "matrix multiplication (@) is not supported",
    ast.Invert: "bitwise inversion (~) is not supported",
    ast.Not: "'not' is not supported",
}

_REFUSED_NODES: dict[type[ast.AST], str] = {
    ast.Subscript: "indexing and subscripts ([...]) are not allowed",
    ast.Slice: "slices are not allowed",
    ast.Lambda: "lambda functions are not allowed",
    ast.ListComp: "comprehensions are not allowed",
    ast.SetComp: "comprehensions are not allowed",
    ast.DictComp: "comprehensions are not allowed",
    ast.GeneratorExp: "generator expressions are not allowed",
    ast.List: "lists are not allowed",
    ast.Tuple: "tuples are not allowed (a stray comma?)",
    ast.Set: "sets are not allowed",
    ast.Dict: "dicts are not allowed",
    ast.Compare: "comparisons are not supported",
    ast.BoolOp: "'and' / 'or' are not supported",
    ast.IfExp: "conditional expressions (x if c else y) are not supported",
    ast.JoinedStr: "f-strings are not allowed",
    ast.FormattedValue: "f-strings are not allowed",
    ast.NamedExpr: "assignments (:=) are not allowed",
    ast.Starred: "unpacking (*x) is not allowed",
    ast.Await: "'await' is not allowed",
    ast.Yield: "'yield' is not allowed",
    ast.YieldFrom: "'yield' is not allowed",
}

_ALLOWED_FUNCS_TEXT = ", ".join(FUNCTIONS)
_ALLOWED_CONSTS_TEXT = ", ".join(CONSTANTS)


def _show(x: Any, limit: int = 40) -> str:
    """A short repr for messages (huge ints are summarised, not printed)."""
    if isinstance(x, int) and x.bit_length() > 128:
        return f"<integer of {x.bit_length()} bits>"
    text = repr(x)
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --------------------------------------------------------------- static checks


def _check_shape(expression: str) -> ast.Expression:
    """Length, bracket depth, syntax, node count and nesting depth -- all before evaluating."""
    if len(expression) > MAX_EXPRESSION_CHARS:
        raise CalculatorError(
            f"expression is too long ({len(expression)} characters; the limit is {MAX_EXPRESSION_CHARS})"
        )
    depth = 0
    for ch in expression:
        if ch in "([{":
            depth += 1
            if depth > MAX_DEPTH:
                raise CalculatorError(f"expression is nested too deeply (more than {MAX_DEPTH} levels of brackets)")
        elif ch in ")]}":
            depth -= 1
    try:
        tree = ast.parse(expression, mode="eval")
    except SyntaxError as exc:
        where = f" at column {exc.offset}" if exc.offset else ""
        raise CalculatorError(f"invalid expression: {exc.msg}{where}") from None
    except (ValueError, RecursionError, MemoryError) as exc:  # null bytes, absurd nesting
        raise CalculatorError(f"invalid expression: {exc}") from None

    nodes = sum(1 for n in ast.walk(tree) if isinstance(n, ast.expr))
    if nodes > MAX_NODES:
        raise CalculatorError(f"expression is too complex ({nodes} parts; the limit is {MAX_NODES})")

    # Nesting depth; a left-leaning chain like 1+2+3+4 counts as one level (it is evaluated iteratively).
    stack: list[tuple[ast.AST, int]] = [(tree.body, 1)]
    while stack:
        node, level = stack.pop()
        if level > MAX_DEPTH:
            raise CalculatorError(f"expression is nested too deeply (more than {MAX_DEPTH} levels)")
        if isinstance(node, ast.BinOp):
            stack.append((node.left, level))
            stack.append((node.right, level + 1))
        else:
            stack.extend((child, level + 1) for child in ast.iter_child_nodes(node) if isinstance(child, ast.expr))
    return tree


def _check_allowed(tree: ast.Expression) -> None:
    """Refuse every construct that is not a number, an allowed operator, constant or function call."""
    called: set[int] = set()
    for node in ast.walk(tree.body):
        if not isinstance(node, ast.expr):
            continue
        if isinstance(node, ast.Constant):
            _check_constant(node.value)
        elif isinstance(node, ast.BinOp):
            if type(node.op) not in _BINARY_OPS:
                raise CalculatorError(_refused_op(node.op))
        elif isinstance(node, ast.UnaryOp):
            if not isinstance(node.op, (ast.UAdd, ast.USub)):
                raise CalculatorError(_refused_op(node.op))
        elif isinstance(node, ast.Call):
            _check_call(node)
            called.add(id(node.func))
        elif isinstance(node, ast.Name):
            if id(node) in called:
                continue
            if node.id in FUNCTIONS:
                raise CalculatorError(f"{node.id} is a function; call it like {node.id}(x)")
            if node.id not in CONSTANTS:
                raise CalculatorError(
                    f"unknown name {node.id!r}; allowed constants: {_ALLOWED_CONSTS_TEXT}; "
                    f"allowed functions: {_ALLOWED_FUNCS_TEXT}"
                )
        elif isinstance(node, ast.Attribute):
            hint = ""
            if isinstance(node.value, ast.Name) and node.value.id == "math" and (
                node.attr in FUNCTIONS or node.attr in CONSTANTS
            ):
                hint = f"; write {node.attr} without 'math.'"
            raise CalculatorError(f"attribute access ('.{node.attr}') is not allowed{hint}")
        else:
            message = _REFUSED_NODES.get(type(node), f"{type(node).__name__} expressions are not allowed")
            raise CalculatorError(message)


def _refused_op(op: ast.AST) -> str:
    return _REFUSED_OPS.get(type(op), f"operator {type(op).__name__} is not supported")


def _check_constant(value: object) -> None:
    if isinstance(value, bool) or value is None or value is Ellipsis:
        raise CalculatorError(f"{value!r} is not allowed; only numbers are")
    if isinstance(value, (str, bytes)):
        raise CalculatorError(f"strings are not allowed ({_show(value)}); only numbers are")
    if isinstance(value, complex):
        raise CalculatorError("complex numbers are not supported")
    if not isinstance(value, (int, float)):
        raise CalculatorError(f"{type(value).__name__} values are not allowed; only numbers are")
    if isinstance(value, float) and not math.isfinite(value):
        raise CalculatorError("a number in the expression is too large for a float (e.g. 1e400)")
    _check_number(value)


def _check_call(node: ast.Call) -> None:
    if not isinstance(node.func, ast.Name):
        if isinstance(node.func, ast.Attribute):
            return  # reported (with a hint) when the walk reaches the Attribute node
        raise CalculatorError(f"only the allowed functions can be called: {_ALLOWED_FUNCS_TEXT}")
    fname = node.func.id
    if fname not in FUNCTIONS:
        raise CalculatorError(f"function {fname!r} is not allowed; allowed functions: {_ALLOWED_FUNCS_TEXT}")
    if node.keywords:
        raise CalculatorError(f"keyword arguments are not supported (in {fname}(...))")
    _, least, most = FUNCTIONS[fname]
    count = len(node.args)
    if count < least or (most is not None and count > most):
        if most is None:
            wanted = f"at least {least} argument{'s' if least != 1 else ''}"
        elif least == most:
            wanted = f"{least} argument{'s' if least != 1 else ''}"
        else:
            wanted = f"{least} to {most} arguments"
        raise CalculatorError(f"{fname}() takes {wanted}, got {count}")


def _check_number(value: Any) -> Number:
    """Refuse results the calculator does not hand out: complex, non-finite, too big."""
    if isinstance(value, complex):
        raise CalculatorError("the result would be a complex number, which is not supported")
    if isinstance(value, float) and not math.isfinite(value):
        raise CalculatorError("result is too large (floating-point overflow)")
    if isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
        raise CalculatorError(f"integer result is too large (more than {MAX_INT_BITS} bits)")
    return value


# ------------------------------------------------------------------ evaluation


def _pow(a: Number, b: Number) -> Number:
    if isinstance(a, int) and isinstance(b, int):
        if b < 0:
            if a == 0:
                raise CalculatorError("division by zero: 0 cannot be raised to a negative power")
            return a**b  # a float, computed in constant time
        if abs(a) > 1 and (b.bit_length() > 64 or b * math.log2(abs(a)) > MAX_INT_BITS):
            raise CalculatorError(
                f"{_show(a)} ** {_show(b)} is too large to compute (the result would exceed {MAX_INT_BITS} bits)"
            )
        return a**b
    if a == 0 and b < 0:
        raise CalculatorError("division by zero: 0 cannot be raised to a negative power")
    if a < 0 and not float(b).is_integer():
        raise CalculatorError(f"({_show(a)}) ** {_show(b)} would be a complex number, which is not supported")
    return a**b  # float arithmetic: constant time; overflow raises OverflowError


def _mul(a: Number, b: Number) -> Number:
    if isinstance(a, int) and isinstance(b, int) and a.bit_length() + b.bit_length() - 1 > MAX_INT_BITS:
        raise CalculatorError(f"integer result is too large (more than {MAX_INT_BITS} bits)")
    return a * b


def _div(a: Number, b: Number) -> Number:
    if b == 0:
        raise CalculatorError("division by zero")
    return a / b


def _floordiv(a: Number, b: Number) -> Number:
    if b == 0:
        raise CalculatorError("division by zero (in //)")
    return a // b


def _mod(a: Number, b: Number) -> Number:
    if b == 0:
        raise CalculatorError("division by zero (in %)")
    return a % b


_APPLY: dict[type[ast.operator], Callable[[Number, Number], Number]] = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: _mul,
    ast.Div: _div,
    ast.FloorDiv: _floordiv,
    ast.Mod: _mod,
    ast.Pow: _pow,
}


def _binop(op: ast.operator, a: Number, b: Number) -> Number:
    symbol = _BINARY_OPS[type(op)]
    try:
        return _check_number(_APPLY[type(op)](a, b))
    except CalculatorError:
        raise
    except ZeroDivisionError:
        raise CalculatorError("division by zero") from None
    except OverflowError:
        raise CalculatorError(f"result of {_show(a)} {symbol} {_show(b)} is too large") from None


def _call(node: ast.Call) -> Number:
    assert isinstance(node.func, ast.Name)  # guaranteed by _check_call
    fname = node.func.id
    func = FUNCTIONS[fname][0]
    args = [_eval(arg) for arg in node.args]
    shown = f"{fname}({', '.join(_show(a) for a in args)})"
    try:
        return _check_number(func(*args))
    except CalculatorError:
        raise
    except ZeroDivisionError:
        raise CalculatorError(f"division by zero in {shown}") from None
    except OverflowError:
        raise CalculatorError(f"{shown}: number is too large") from None
    except ValueError:
        raise CalculatorError(f"{shown} is undefined (math domain error)") from None
    except TypeError as exc:
        raise CalculatorError(f"{shown}: {exc}") from None


def _eval(node: ast.expr) -> Number:
    if isinstance(node, ast.BinOp):
        chain: list[ast.BinOp] = []
        current: ast.expr = node
        while isinstance(current, ast.BinOp):  # left-leaning chains iteratively: 1+2+...+n needs no recursion
            chain.append(current)
            current = current.left
        value = _eval(current)
        for binop in reversed(chain):
            value = _binop(binop.op, value, _eval(binop.right))
        return value
    if isinstance(node, ast.UnaryOp):
        operand = _eval(node.operand)
        return -operand if isinstance(node.op, ast.USub) else +operand
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):  # checked by _check_constant
        return node.value
    if isinstance(node, ast.Name):
        return CONSTANTS[node.id]
    if isinstance(node, ast.Call):
        return _call(node)
    raise CalculatorError(f"{type(node).__name__} expressions are not allowed")  # unreachable after the checks


def evaluate(expression: str) -> int | float:
    """Evaluate an arithmetic expression safely.

    Returns an int when the result is integral and came from integer
    operations (``2**10`` -> 1024), else a float (``7/7`` -> 1.0).

    Raises:
        CalculatorError: a ValueError whose message says what is not allowed or
            what went wrong (division by zero, domain error, too large, ...).
    """
    if not isinstance(expression, str):
        raise CalculatorError(f"the expression must be a string, got {type(expression).__name__}")
    expression = expression.strip()
    if not expression:
        raise CalculatorError("the expression is empty")
    tree = _check_shape(expression)
    _check_allowed(tree)
    return _check_number(_eval(tree.body))


@tool(timeout_s=5.0)
def calculator(expression: str) -> int | float:
    """Evaluate an arithmetic expression, e.g. "(2 + 3) * sqrt(16) / 7" or "2**10 - factorial(5)".
    Operators: + - * / // % ** (use ** for powers, not ^) and parentheses.
    Functions: sqrt, sin, cos, tan, asin, acos, atan, atan2, log (natural, or log(x, base)), log10, log2,
    exp, floor, ceil, fabs, factorial, gcd, hypot, degrees, radians, round, abs, min, max.
    Constants: pi, e, tau. Angles are in radians.

    Args:
        expression: The arithmetic expression to evaluate (at most 500 characters).

    Returns:
        The value: an integer when the computation is exact integer arithmetic, else a float.
    """
    return evaluate(expression)
