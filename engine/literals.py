"""The values a condition's expression can produce, read from its Jinja2 syntax tree (never run).

The Builder offers them as choices for the ``when`` of the condition's edges,
so an analyst picks ``long`` instead of typing it. Two kinds of literal count:
constants the expression *returns* (``'long' if … else 'short'``) and
constants it *compares with* (``x == 'long'``, ``x in ['a', 'b']``,
``x != 3``). The expression is parsed with Jinja2's parser, the way
:func:`engine.templates.compile_expression` parses it, and only ``Const``,
``List`` and ``Tuple`` nodes are read: nothing is evaluated.
"""

from __future__ import annotations

from typing import Any

from jinja2 import nodes
from jinja2.exceptions import TemplateSyntaxError
from jinja2.parser import Parser

from engine.executor import when_key
from engine.templates import ENV

_COMPARISONS = frozenset({"eq", "ne", "in", "notin"})


def condition_literals(expression: str) -> list[str]:
    """``when`` values the expression can meet, in the order they appear (as ``when`` spells them).

    An expression that does not parse has none (validation reports it)."""
    if not isinstance(expression, str) or not expression.strip():
        return []
    try:
        parser = Parser(ENV, expression, state="variable")
        tree = parser.parse_expression()
    except TemplateSyntaxError:
        return []
    found: list[str] = []

    def add(value: Any) -> None:
        if isinstance(value, (str, int, float, bool)) or value is None:
            key = when_key(value)
            if key not in found:
                found.append(key)

    _returned(tree, add)
    compares = [tree] if isinstance(tree, nodes.Compare) else []
    for compare in [*compares, *tree.find_all(nodes.Compare)]:
        operands = [compare.expr, *(op.expr for op in compare.ops)]
        for op, (left, right) in zip(compare.ops, zip(operands, operands[1:], strict=False), strict=False):
            if op.op not in _COMPARISONS:
                continue
            for side in (left, right):
                for value in _constants(side, containers=op.op in ("in", "notin")):
                    add(value)
    return found


def _returned(tree: nodes.Node, add: Any) -> None:
    """Constants the expression evaluates to: itself, or either branch of ``a if c else b``."""
    if isinstance(tree, nodes.CondExpr):
        _returned(tree.expr1, add)
        if tree.expr2 is not None:
            _returned(tree.expr2, add)
    elif isinstance(tree, nodes.Const):
        add(tree.value)


def _constants(node: nodes.Node, *, containers: bool) -> list[Any]:
    if isinstance(node, nodes.Const):
        value = node.value
        if containers and isinstance(value, str):
            return []  # `x in 'abc'` tests for a substring, not for a value
        return [value]
    if containers and isinstance(node, (nodes.List, nodes.Tuple)):
        return [item.value for item in node.items if isinstance(item, nodes.Const)]
    return []
