"""Templates and expressions, compiled once, rendered in Jinja2's sandbox.

Strings in a node's ``config`` are templates; ``expression`` fields are
Jinja2 expressions without braces. Nothing here ever hands workflow text to
Python's ``eval``: Jinja2's ``ImmutableSandboxedEnvironment`` compiles it and
refuses attribute walks such as ``"".__class__`` and mutation of values.

Two rules from the spec live here:

* a template that is exactly one ``{{ expression }}`` (surrounding white
  space allowed) keeps the expression's type: a list stays a list;
* dot access on a mapping looks the key up first, so ``inputs.items`` is the
  input named ``items``, not the dict method.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Callable

from jinja2 import StrictUndefined, TemplateSyntaxError, Undefined, UndefinedError, meta, nodes
from jinja2.exceptions import SecurityError
from jinja2.parser import Parser
from jinja2.sandbox import ImmutableSandboxedEnvironment
from markupsafe import Markup

from engine.errors import EngineError

_SINGLE_EXPR = re.compile(r"^\s*\{\{(?P<expr>.*)\}\}\s*$", re.DOTALL)


class _Env(ImmutableSandboxedEnvironment):
    """The sandbox, with mapping keys winning over attributes on dot access."""

    def getattr(self, obj: Any, attribute: str) -> Any:
        if isinstance(obj, Mapping):
            try:
                return obj[attribute]
            except (KeyError, TypeError):
                pass
        return super().getattr(obj, attribute)


ENV = _Env(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)
JINJA_GLOBALS = frozenset(ENV.globals)


class RenderError(EngineError):
    """A template failed at run time; the message names the variable or operation."""


@dataclass(frozen=True, slots=True)
class Compiled:
    """A compiled template or expression.

    Attributes:
        source: the original text.
        names: the top-level variables it reads (``inputs``, ``nodes``, ...).
        node_refs: node ids it reads as ``nodes.<id>`` or ``nodes['<id>']``.
        input_refs: input names it reads as ``inputs.<name>``.
    """

    source: str
    names: frozenset[str]
    node_refs: frozenset[str]
    input_refs: frozenset[str]
    _render: Callable[[Mapping[str, Any]], Any]

    def render(self, context: Mapping[str, Any]) -> Any:
        """Evaluate against ``context``; raises :class:`RenderError` on failure."""
        try:
            return self._render(context)
        except UndefinedError as exc:
            raise RenderError(f"undefined variable in {self.source!r}: {_undefined_message(exc)}") from None
        except SecurityError as exc:
            raise RenderError(f"refused by the sandbox in {self.source!r}: {exc}") from None
        except Exception as exc:  # noqa: BLE001 - any evaluation error becomes a node failure
            raise RenderError(f"error in {self.source!r}: {type(exc).__name__}: {exc}") from None


def _undefined_message(exc: UndefinedError) -> str:
    message = str(exc)
    # "'dict object' has no attribute 'x'" -> "no attribute 'x'": the type name helps nobody.
    return re.sub(r"^'[^']*' (has no attribute)", r"\1", message)


def _references(tree: nodes.Node) -> tuple[frozenset[str], frozenset[str], frozenset[str]]:
    """Top-level names, ``nodes.<id>`` ids and ``inputs.<name>`` names a parsed template reads."""
    if isinstance(tree, nodes.Template):
        names = frozenset(meta.find_undeclared_variables(tree))
    else:
        names = frozenset(n.name for n in tree.find_all(nodes.Name) if n.ctx == "load")
    node_refs: set[str] = set()
    input_refs: set[str] = set()
    for access in _attribute_reads(tree):
        target, key = access
        if target == "nodes":
            node_refs.add(key)
        elif target == "inputs":
            input_refs.add(key)
    return names, frozenset(node_refs), frozenset(input_refs)


def _attribute_reads(tree: nodes.Node) -> list[tuple[str, str]]:
    reads: list[tuple[str, str]] = []
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        base = node.node
        if not isinstance(base, nodes.Name):
            continue
        if isinstance(node, nodes.Getattr):
            reads.append((base.name, node.attr))
        elif isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
            reads.append((base.name, node.arg.value))
    return reads


def compile_expression(source: str) -> Compiled:
    """Compile a brace-less expression such as ``nodes.score.output >= 7``.

    Raises:
        TemplateSyntaxError: the expression does not parse.
    """
    if not source.strip():
        raise TemplateSyntaxError("expression is empty", 1)
    parser = Parser(ENV, source, state="variable")
    tree = parser.parse_expression()
    if not parser.stream.eos:
        token = parser.stream.current
        raise TemplateSyntaxError(f"unexpected {token.value!r} after the expression", token.lineno)
    names, node_refs, input_refs = _references(tree)
    expression = ENV.compile_expression(source, undefined_to_none=False)

    def render(context: Mapping[str, Any]) -> Any:
        return _plain(expression(context))

    return Compiled(source, names, node_refs, input_refs, render)


def compile_template(source: str) -> Compiled:
    """Compile a template string; one lone ``{{ expr }}`` keeps the value's type.

    Raises:
        TemplateSyntaxError: the template does not parse.
    """
    tree = ENV.parse(source)
    names, node_refs, input_refs = _references(tree)
    match = _SINGLE_EXPR.match(source)
    if match and _is_single_output(tree):
        expression = ENV.compile_expression(match.group("expr"), undefined_to_none=False)

        def render_value(context: Mapping[str, Any]) -> Any:
            return _plain(expression(context))

        return Compiled(source, names, node_refs, input_refs, render_value)
    if "{" not in source:  # plain text: nothing to render
        return Compiled(source, names, node_refs, input_refs, lambda _context: source)
    template = ENV.from_string(source)

    def render_text(context: Mapping[str, Any]) -> str:
        return template.render(context)

    return Compiled(source, names, node_refs, input_refs, render_text)


def _is_single_output(tree: nodes.Template) -> bool:
    body = [n for n in tree.body if not (isinstance(n, nodes.Output) and _only_whitespace(n))]
    return (
        len(body) == 1
        and isinstance(body[0], nodes.Output)
        and len([n for n in body[0].nodes if not _is_blank_data(n)]) == 1
    )


def _only_whitespace(output: nodes.Output) -> bool:
    return all(_is_blank_data(n) for n in output.nodes)


def _is_blank_data(node: nodes.Node) -> bool:
    return isinstance(node, nodes.TemplateData) and not node.data.strip()


def _plain(value: Any) -> Any:
    """Turn sandbox-only types into plain values (Markup -> str)."""
    if type(value) is Markup:
        return str(value)
    if isinstance(value, Undefined):
        value._fail_with_undefined_error()  # raises UndefinedError naming the variable
    return value
