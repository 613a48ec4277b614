"""The simplest expressions evaluated straight from their tree, without a Jinja Context per evaluation.

Most expressions in workflows are reads and tests: ``iteration``, ``nodes.fetch.output``,
``inputs.q``, ``iteration < 9``, ``nodes.a.output.score >= 0.5 and not inputs.dry``, ``3 + 1``.
Jinja runs each through generated code that first builds a ``Context`` (a dict of the globals and
the variables, a parent lookup per name) and a generator; for a trivial node that is most of the
time the engine spends on it. :func:`direct` turns such a tree into nested closures that make the
very calls the generated code makes — ``environment.getattr``/``getitem`` (the sandbox's attribute
rules and render-budget ticks), ``environment.sized`` around every non-literal compared,
``environment.call_binop`` for the intercepted operators (the size checks of ``+ * ** %``), plain
Python for the rest — so a value, an error and the budget are the same.

Only the node types below are taken (anything else: ``None``, and the caller keeps Jinja's code). Where
Jinja would produce an ``Undefined`` (a name that is not set, a key that is missing), the closures
stop with :class:`NeedsJinja` and the caller runs Jinja's generated code from the start, which says
what is undefined exactly as it always did; the reads and tests taken here have no side effects, so
running them twice changes nothing.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from typing import Any

from jinja2 import Undefined, nodes
from jinja2.sandbox import SandboxedEnvironment

Evaluate = Callable[[Mapping[str, Any]], Any]


class NeedsJinja(Exception):
    """The direct evaluation met an undefined value: let Jinja's own code evaluate (and explain) it."""


_COMPARE: dict[str, Callable[[Any, Any], Any]] = {
    "eq": operator.eq,
    "ne": operator.ne,
    "gt": operator.gt,
    "gteq": operator.ge,
    "lt": operator.lt,
    "lteq": operator.le,
    "in": lambda left, right: left in right,
    "notin": lambda left, right: left not in right,
}

_PLAIN_BINOPS: dict[type[nodes.BinExpr], tuple[str, Callable[[Any, Any], Any]]] = {
    nodes.Add: ("+", operator.add),
    nodes.Sub: ("-", operator.sub),
    nodes.Mul: ("*", operator.mul),
    nodes.Div: ("/", operator.truediv),
    nodes.FloorDiv: ("//", operator.floordiv),
    nodes.Mod: ("%", operator.mod),
    nodes.Pow: ("**", operator.pow),
}


def direct(tree: nodes.Node, env: SandboxedEnvironment, constants: Mapping[str, Any]) -> Evaluate | None:
    """A function evaluating ``tree`` as Jinja's generated code would, or ``None`` when the tree holds
    anything but literals, names, ``.``/``[]`` reads, comparisons, ``and``/``or``/``not``, signs and
    arithmetic.

    ``constants`` are the environment's globals (a name not among the variables is looked up there).
    Call it before Jinja generates code from ``tree``: its optimizer rewrites the tree.
    """
    if isinstance(tree, nodes.Const):
        value = tree.value
        return lambda _variables: value
    if isinstance(tree, nodes.Name):
        return _name(tree.name, constants) if tree.ctx == "load" else None
    if isinstance(tree, nodes.Getattr):
        inner = direct(tree.node, env, constants)
        return None if inner is None or tree.ctx != "load" else _getattr(inner, tree.attr, env)
    if isinstance(tree, nodes.Getitem):
        if tree.ctx != "load" or isinstance(tree.arg, nodes.Slice):
            return None
        inner, key = direct(tree.node, env, constants), direct(tree.arg, env, constants)
        return None if inner is None or key is None else _getitem(inner, key, env)
    if isinstance(tree, nodes.Compare):
        return _compare(tree, env, constants)
    if isinstance(tree, nodes.Not):
        negated = direct(tree.node, env, constants)
        return None if negated is None else (lambda variables: not negated(variables))
    if isinstance(tree, (nodes.Neg, nodes.Pos)):
        return _unary(tree, env, constants)
    if isinstance(tree, (nodes.And, nodes.Or)):
        return _logical(tree, env, constants)
    if type(tree) in _PLAIN_BINOPS:
        return _binop(tree, env, constants)  # type: ignore[arg-type]  # one of the BinExpr subclasses above
    return None


def _name(name: str, constants: Mapping[str, Any]) -> Evaluate:
    def read(variables: Mapping[str, Any]) -> Any:
        try:
            return variables[name]
        except KeyError:
            if name in constants:
                return constants[name]
            raise NeedsJinja(name) from None

    return read


def _getattr(inner: Evaluate, attribute: str, env: SandboxedEnvironment) -> Evaluate:
    def read(variables: Mapping[str, Any]) -> Any:
        value = env.getattr(inner(variables), attribute)
        if isinstance(value, Undefined):
            raise NeedsJinja(attribute)
        return value

    return read


def _getitem(inner: Evaluate, key: Evaluate, env: SandboxedEnvironment) -> Evaluate:
    def read(variables: Mapping[str, Any]) -> Any:
        value = env.getitem(inner(variables), key(variables))
        if isinstance(value, Undefined):
            raise NeedsJinja("[]")
        return value

    return read


def _compare(tree: nodes.Compare, env: SandboxedEnvironment, constants: Mapping[str, Any]) -> Evaluate | None:
    first = _sized(tree.expr, env, constants)
    rest = [(_COMPARE.get(operand.op), _sized(operand.expr, env, constants)) for operand in tree.ops]
    if first is None or any(test is None or side is None for test, side in rest):
        return None
    steps = [(test, side) for test, side in rest if test is not None and side is not None]

    def compare(variables: Mapping[str, Any]) -> Any:  # Python's chained comparison, as Jinja writes it
        left = first(variables)
        result: Any = True
        for test, side in steps:
            right = side(variables)
            result = test(left, right)
            if not result:
                return result
            left = right
        return result

    return compare


def _sized(tree: nodes.Expr, env: SandboxedEnvironment, constants: Mapping[str, Any]) -> Evaluate | None:
    """An operand of a comparison: a literal as it is, anything else through ``environment.sized``."""
    evaluate = direct(tree, env, constants)
    if evaluate is None or isinstance(tree, nodes.Const):
        return evaluate
    sized = env.sized  # type: ignore[attr-defined]  # engine.templates._Env's
    return lambda variables: sized(evaluate(variables))


def _logical(tree: nodes.And | nodes.Or, env: SandboxedEnvironment, constants: Mapping[str, Any]) -> Evaluate | None:
    left, right = direct(tree.left, env, constants), direct(tree.right, env, constants)
    if left is None or right is None:
        return None
    if isinstance(tree, nodes.And):
        return lambda variables: left(variables) and right(variables)
    return lambda variables: left(variables) or right(variables)


def _binop(tree: nodes.BinExpr, env: SandboxedEnvironment, constants: Mapping[str, Any]) -> Evaluate | None:
    left, right = direct(tree.left, env, constants), direct(tree.right, env, constants)
    if left is None or right is None:
        return None
    symbol, plain = _PLAIN_BINOPS[type(tree)]
    if symbol in env.intercepted_binops:
        call_binop = env.call_binop  # the generated code passes its Context, which call_binop does not read
        return lambda variables: call_binop(None, symbol, left(variables), right(variables))  # type: ignore[arg-type]
    return lambda variables: plain(left(variables), right(variables))


def _unary(tree: nodes.Neg | nodes.Pos, env: SandboxedEnvironment, constants: Mapping[str, Any]) -> Evaluate | None:
    inner = direct(tree.node, env, constants)
    symbol = "-" if isinstance(tree, nodes.Neg) else "+"
    if inner is None or symbol in env.intercepted_unops:
        return None
    if symbol == "-":
        return lambda variables: -inner(variables)
    return lambda variables: +inner(variables)
