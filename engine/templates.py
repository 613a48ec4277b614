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

The sandbox stops attribute walks, not work: ``3 ** 30000000``,
``"a" * 10**10`` or nested ``range`` loops would block the event loop (and
every timeout) for seconds. So every value a template makes is kept under
the size caps (every operator, str method, filter and the final output or
value; engine/template_limits.py) and every render is kept under a time
budget (engine/template_budget.py), counted in the sandbox's hooks, in each
``{% for %}`` iteration and in each item drawn from a lazy filter result.
Lazy results (``range``, generators such as ``xs | map(attribute='a')``,
dict views) become lists, up to ``MAX_ITEMS``.
"""

from __future__ import annotations

import functools
import itertools
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping, MappingView
from dataclasses import dataclass, field
from typing import Any, cast

from jinja2 import StrictUndefined, TemplateSyntaxError, Undefined, UndefinedError, meta, nodes
from jinja2.compiler import CodeGenerator, Frame, operators
from jinja2.defaults import DEFAULT_FILTERS, DEFAULT_TESTS
from jinja2.exceptions import SecurityError, TemplateAssertionError
from jinja2.parser import Parser
from jinja2.runtime import LoopContext
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import generate_lorem_ipsum
from markupsafe import Markup

from engine import template_budget as budget
from engine import template_limits as limits
from engine.errors import RenderError, RenderTimeLimit, ValueTooLarge
from engine.template_limits import MAX_ITEMS
from engine.template_reads import NeedsJinja, direct

# One ``{{ ... }}`` and nothing but white space around it; ``{{-``/``-}}``
# markers are inside the braces and are taken off by _lone_expression.
_SINGLE_EXPR = re.compile(r"^\s*\{\{(?P<expr>.*)\}\}\s*$", re.DOTALL)


class _CodeGenerator(CodeGenerator):
    """Compiles ``a ~ b`` to the environment's size-checked join instead of ``str_join``, and
    counts every iteration of a ``{% for %}`` loop against the render time budget."""

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        if frame.eval_ctx.volatile or frame.eval_ctx.autoescape:
            super().visit_Concat(node, frame)  # (autoescape is off here; Markup joins are left to Jinja)
            return
        self.write("environment.join_strings(map(environment.to_text, (")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write(")))")

    def visit_Compare(self, node: nodes.Compare, frame: Frame) -> None:
        # ``a == b``, ``x in xs``: each operand goes through environment.sized, which charges the
        # comparison's work by the operand's size (two ten-million-item lists take a while to compare)
        self.write("(")
        self._sized(node.expr, frame)
        for operand in node.ops:
            self.write(f" {operators[operand.op]} ")
            self._sized(operand.expr, frame)
        self.write(")")

    def _sized(self, node: nodes.Expr, frame: Frame) -> None:
        if isinstance(node, nodes.Const):  # a literal in the template: small, nothing to charge
            self.visit(node, frame)
            return
        self.write("environment.sized(")
        self.visit(node, frame)
        self.write(")")

    def visit_For(self, node: nodes.For, frame: Frame) -> None:
        self._loop_iterables = (*getattr(self, "_loop_iterables", ()), node.iter)
        super().visit_For(node, frame)

    def visit(self, node: nodes.Node, *args: Any, **kwargs: Any) -> Any:
        if any(node is n for n in getattr(self, "_loop_iterables", ())):  # a {% for %} loop's iterable
            self.write("environment.counted(")
            super().visit(node, *args, **kwargs)
            self.write(")")
            return None
        return super().visit(node, *args, **kwargs)


_NUMBERS = frozenset({int, float, bool})


class _Env(ImmutableSandboxedEnvironment):
    """The sandbox, with mapping keys winning over attributes on dot access, and every operation
    that can make a huge value checked first (engine/template_limits.py)."""

    intercepted_binops = frozenset({"**", "*", "+", "%"})
    code_generator_class = _CodeGenerator
    concat = staticmethod(limits.joined)  # the template's output and {% set %} blocks
    counted = staticmethod(budget.counted)  # every {% for %} iterable, compiled by _CodeGenerator

    @staticmethod
    def join_strings(parts: Iterable[str]) -> str:
        """``a ~ b``, compiled by :class:`_CodeGenerator`."""
        return limits.joined(parts, "join")

    @staticmethod
    def sized(value: Any) -> Any:
        """An operand of a comparison, its work charged to the render budget by its size."""
        if type(value) in _NUMBERS:  # the common case, without the abstract Mapping's isinstance below
            budget.tick()
            return value
        if isinstance(value, (str, bytes, list, tuple, Mapping)):
            limits.charge_input("a comparison", value, limits.COMPARE_NS_PER_UNIT)
        else:
            budget.tick()
        return value

    @staticmethod
    def to_text(value: Any) -> str:
        """``str(value)`` for ``~``, after checking that a list or mapping would not write too much."""
        if type(value) not in _WRITTEN_AS_IS:
            limits.check_text("join", value)
        return str(value)

    def getattr(self, obj: Any, attribute: str) -> Any:
        budget.tick()
        if type(obj) is dict or isinstance(obj, Mapping):
            try:
                return obj[attribute]
            except (KeyError, TypeError):
                pass
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        budget.tick()
        return super().getitem(obj, argument)

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        budget.tick()
        if type(left) in _NUMBERS and type(right) in _NUMBERS:  # the common case: arithmetic on numbers
            if operator == "**":
                limits.check_power(left, right)
            elif operator == "*":
                limits.check_product(left, right)
            return self.binop_table[operator](left, right)  # what the sandbox's own call_binop does
        if operator == "**":
            limits.check_power(left, right)
        elif operator == "*":
            limits.check_product(left, right)
        elif operator == "+":
            limits.check_sum(left, right)
        elif operator == "%":
            limits.check_printf(left, right)
        if isinstance(left, Markup) or isinstance(right, Markup):  # Markup escapes the other side: up to 5x
            limits.check_text("escaped " + operator, (left, right), factor=5)
        return limits.checked_result(operator, super().call_binop(context, operator, left, right))

    def call(self, context: Any, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
        budget.tick()
        method = getattr(obj, "__wrapped__", obj)  # the sandbox wraps str.format
        text = getattr(method, "__self__", None)
        name = getattr(method, "__name__", "")
        if isinstance(text, (str, bytes)):
            limits.check_str_method(text, name, args, kwargs)
            if isinstance(text, Markup):  # Markup methods escape their arguments: up to 5x
                limits.check_text(name, (args, kwargs), factor=5)
        else:
            limits.charge_call(name, args, kwargs)
            if name == "to_bytes" and isinstance(text, int):
                limits.check_int_to_bytes(args, kwargs)
            if isinstance(obj, LoopContext) and args:  # loop(children) in a recursive loop: count its items too
                args = (budget.counted(args[0]), *args[1:])
        return limits.checked_result(name or "call", super().call(context, obj, *args, **kwargs))


def _guarded(
    kind: str, name: str, original: Callable[..., Any], check: Callable[..., None] | None
) -> Callable[..., Any]:
    """Jinja's filter or test ``name``, counted against the render time budget (with an estimate of its
    work from the size of its input), with ``check`` called on its arguments first (after the eval
    context, for those that take one) and its result kept under the size caps (a lazy result is
    counted item by item as it is drawn)."""
    takes_context = getattr(original, "jinja_pass_arg", None) is not None
    cost = limits.FILTER_NS_PER_UNIT.get(name, limits.DEFAULT_NS_PER_UNIT) if kind == "filter" else (0.0, 0.0)
    if kind == "test" and name == "in":
        cost = limits.COMPARE_NS_PER_UNIT  # 'x' is in xs: a scan of the second argument (the last given)
    what = f"the {name} {kind}"

    @functools.wraps(original)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        given = args[1:] if takes_context else args
        if check is not None:  # what it would make first: a size refusal says more than a time one
            check(*given, **kwargs)
        if any(cost) and given:
            limits.charge_input(what, given[-1] if kind == "test" else given[0], cost, name in limits.CASE_METHODS)
        else:
            budget.tick()
        result = original(*args, **kwargs)
        if kind == "test":
            return result
        if is_lazy_sequence(result) and isinstance(result, Iterator):
            return budget.counted(result)
        return limits.checked_result(what, result)

    return guarded


def _check_format_filter(value: Any, *args: Any, **kwargs: Any) -> None:
    limits.check_printf(str(value), tuple(args) or tuple(kwargs.values()))


def _lipsum(n: int = 5, html: bool = True, min: int = 20, max: int = 100) -> Any:
    limits.check_lipsum(n, max)
    return generate_lorem_ipsum(n=n, html=html, min=min, max=max)


_FILTER_CHECKS: dict[str, Callable[..., None]] = {
    "center": lambda value, width=80: limits.check_str_method(str(value), "center", (width,), {}),
    "indent": lambda s, width=4, *_, **__: limits.check_indent(s, width),
    "format": _check_format_filter,
    "replace": lambda s, old, new, count=None: limits.check_replace(str(s), old, new, -1 if count is None else count),
    "join": lambda value, d="", attribute=None: limits.check_join(d, value, whole=True),
    "batch": lambda value, linecount, fill_with=None: limits.check_count("batch", linecount),
    "slice": lambda value, slices, fill_with=None: limits.check_count("slice", slices),
    "wordwrap": limits.check_wordwrap,
    "tojson": limits.check_tojson,
    "urlencode": limits.check_urlencode,
    "escape": limits.check_escape,
    "e": limits.check_escape,
    "forceescape": limits.check_escape,
    "xmlattr": lambda d, autospace=True: limits.check_text("xmlattr", d, factor=6),
    "urlize": limits.check_urlize,
    "string": lambda value: limits.check_text("string", value),
    "pprint": lambda value: limits.check_text("pprint", value, factor=2),
    "sum": limits.check_sum_filter,
}


def _finalize(value: Any) -> Any:
    """Each ``{{ value }}`` of a text template, before it is written: a list or mapping is checked
    for the size of its text first (a list of references to one big string writes it many times)."""
    if type(value) not in _WRITTEN_AS_IS:
        limits.check_text("output", value)
    return value


_WRITTEN_AS_IS = frozenset({str, int, float, bool, type(None)})  # (str() of a huge int refuses on its own)


ENV = _Env(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True, finalize=_finalize)
ENV.filters.update({name: _guarded("filter", name, f, _FILTER_CHECKS.get(name)) for name, f in DEFAULT_FILTERS.items()})
_TESTS = cast(dict[str, Callable[..., Any]], DEFAULT_TESTS)  # jinja2 types them as "function"
ENV.tests.update({name: _guarded("test", name, f, None) for name, f in _TESTS.items()})
ENV.globals["lipsum"] = _lipsum
JINJA_GLOBALS = frozenset(ENV.globals)


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
    _deferred: _Deferred | None = None  # code made at the first render (not on the budget), if not yet made
    # What :func:`engine.nodes.base.reads` records, worked out once rather than at every execution:
    node_reads: tuple[tuple[str, str], ...] = field(init=False)  # ("nodes.<id>.output", id), by id
    input_reads: tuple[tuple[str, str], ...] | None = field(init=False)  # by name; () whole; None: no inputs
    scope_reads: tuple[str, ...] = field(init=False)  # which of item, index, iteration it reads

    def __post_init__(self) -> None:
        set_field = object.__setattr__  # a frozen dataclass's own fields, set once here
        set_field(self, "node_reads", tuple((f"nodes.{ref}.output", ref) for ref in sorted(self.node_refs)))
        reads_inputs = "inputs" in self.names
        inputs = tuple((f"inputs.{name}", name) for name in sorted(self.input_refs)) if reads_inputs else None
        set_field(self, "input_reads", inputs)
        set_field(self, "scope_reads", tuple(n for n in ("item", "index", "iteration") if n in self.names))

    def render(self, context: Mapping[str, Any]) -> Any:
        """Evaluate against ``context``; raises :class:`RenderError` on failure."""
        try:
            deferred = self._deferred
            if deferred is not None and deferred.pending:
                deferred.ready()  # generated on first use: not on the render's time budget
            token = budget.start()
            try:
                return self._render(context)
            finally:
                budget.stop(token)
        except UndefinedError as exc:
            raise RenderError(f"undefined variable in {self.source!r}: {_undefined_message(exc)}") from None
        except SecurityError as exc:  # a time limit depends on the machine's load, like a node's timeout: retryable
            timed_out = isinstance(exc, RenderTimeLimit)
            raise RenderError(f"refused by the sandbox in {self.source!r}: {exc}", retryable=timed_out) from None
        except ValueTooLarge as exc:
            raise RenderError(f"value too large in {self.source!r}: {exc}") from None
        except RecursionError:
            raise RenderError(
                f"error in {self.source!r}: too deeply nested (a macro or loop that calls itself?)"
            ) from None
        except Exception as exc:  # noqa: BLE001 - any evaluation error becomes a node failure
            raise RenderError(f"error in {self.source!r}: {type(exc).__name__}: {exc}") from None


def _undefined_message(exc: UndefinedError) -> str:
    message = str(exc)
    # "'dict object' has no attribute 'x'" -> "no attribute 'x'": the type name helps nobody.
    return re.sub(r"^'[^']*' (has no attribute)", r"\1", message)


@dataclass(slots=True)
class _Scan:
    """What one walk of a parsed expression or template finds (see :func:`_scan`)."""

    names: set[str]
    reads: list[tuple[str, str]]
    makes_values: bool


def _scan(tree: nodes.Node) -> _Scan:
    """One walk of ``tree`` (it replaces three: names, attribute reads, whether it makes values).

    * ``names``: the top-level variables read (``Name`` nodes in load context);
    * ``reads``: ``(name, key)`` for each ``name.key`` or ``name['key']``;
    * ``makes_values``: whether the expression may make a new value, rather than only pick one out of
      its variables (``nodes.fetch.output``, ``inputs['q']``): only a new value needs its size checked.

    The root is walked too: the expression ``inputs.q`` is one ``Getattr`` and ``iteration`` one ``Name``
    (a walk of the root's children only, as :meth:`jinja2.nodes.Node.find_all` does, let an unknown input
    or variable in such an expression through validation). Whether the root makes a value is decided by
    its type alone: ``inputs[key]`` picks one. Run it before any code generation: Jinja's optimizer
    rewrites the tree it generates code from.
    """
    found = _Scan(set(), [], not isinstance(tree, (nodes.Name, nodes.Getattr, nodes.Getitem, nodes.Const)))
    pending: list[nodes.Node] = [tree]
    while pending:
        node = pending.pop()
        if isinstance(node, nodes.Name):
            if node.ctx == "load":
                found.names.add(node.name)
        elif isinstance(node, nodes.Getattr):
            if isinstance(node.node, nodes.Name):
                found.reads.append((node.node.name, node.attr))
        elif isinstance(node, nodes.Getitem):
            if not isinstance(node.arg, nodes.Const):
                found.makes_values = found.makes_values or node is not tree
            elif isinstance(node.node, nodes.Name) and isinstance(node.arg.value, str):
                found.reads.append((node.node.name, node.arg.value))
        elif not isinstance(node, nodes.Const):
            found.makes_values = True  # (the root: already so, by its type)
        pending.extend(node.iter_child_nodes())
    return found


def _split_reads(reads: list[tuple[str, str]]) -> tuple[frozenset[str], frozenset[str]]:
    """``nodes.<id>`` ids and ``inputs.<name>`` names among ``reads``."""
    node_refs = frozenset(key for target, key in reads if target == "nodes")
    input_refs = frozenset(key for target, key in reads if target == "inputs")
    return node_refs, input_refs


def _evaluator(tree: nodes.Expr) -> Callable[[Mapping[str, Any]], Any]:
    """``ENV.compile_expression(source)`` for the expression already parsed as ``tree``, without its
    cost per call.

    The code is generated from ``tree`` exactly as Jinja's ``compile_expression`` does from the tree it
    parses (the source is not parsed a second time). Jinja's ``TemplateExpression`` copies the
    variables, then the globals through a ChainMap, then their keys into a set, on every evaluation:
    most of a trivial node's time. Here the globals are copied once into a plain dict and each
    evaluation makes one small dict and one Context, then runs the same compiled (sandboxed, size- and
    time-checked) code.
    """
    constants = dict(ENV.globals)  # set once at import (below), never changed after
    fast = direct(tree, ENV, constants)  # a read or a test: no Context (engine/template_reads.py)
    tree.set_environment(ENV)
    body = [nodes.Assign(nodes.Name("result", "store"), tree, lineno=1)]
    template = ENV.from_string(nodes.Template(body, lineno=1))
    run = template.root_render_func
    name = template.name
    context_class = ENV.context_class

    def evaluate(variables: Mapping[str, Any]) -> Any:
        context = context_class(ENV, {**constants, **variables}, name, {})
        for _ in run(context):  # an expression template only sets ``result``: nothing is yielded
            pass
        return context.vars["result"]

    if fast is None:
        return evaluate

    def evaluate_directly(variables: Mapping[str, Any]) -> Any:
        try:
            return fast(variables)
        except NeedsJinja:  # something is undefined: Jinja's code says what, as it always did
            return evaluate(variables)

    return evaluate_directly


_codegen_lock = threading.Lock()  # Jinja's optimizer rewrites the tree it generates code from: one at a time


class _Deferred:
    """Code for a parsed, checked tree, generated when it is first evaluated rather than when it is compiled.

    Validating a document compiles every template in it, and generating Python code for one and compiling
    that is ~15 times the cost of parsing and scanning it (0.85 of 0.9 ms for ``nodes.a.output + 1``): a
    1,000-node document validated in 0.9 s. Everything validation reports is known before the code exists
    (syntax from the parser, unknown filters and tests from :func:`_check_names`, which fails where Jinja's
    code generator would), so the code waits until a run evaluates the template, once per process (the
    Compiled is cached). Only trees without statements are deferred (expressions, and text with
    ``{{ }}`` only): a statement can fail in the code generator for reasons :func:`_check_names` does not
    repeat (a block defined twice, assigning to ``loop``).
    """

    __slots__ = ("_make", "call", "pending")

    def __init__(self, make: Callable[[], Callable[[Mapping[str, Any]], Any]]) -> None:
        self._make: Callable[[], Callable[[Mapping[str, Any]], Any]] | None = make
        self.pending = True  # no code yet
        self.call: Callable[[Mapping[str, Any]], Any] = self._first_call  # then the code itself

    def ready(self) -> Callable[[Mapping[str, Any]], Any]:
        if self.pending:
            with _codegen_lock:
                if self._make is not None:
                    self.call = self._make()
                    self._make = None
                    self.pending = False  # after ``call``: whoever sees it False calls the code
        return self.call

    def _first_call(self, variables: Mapping[str, Any]) -> Any:
        return self.ready()(variables)

    def __call__(self, variables: Mapping[str, Any]) -> Any:
        return self.call(variables)


def _check_names(tree: nodes.Node) -> None:
    """Raise Jinja's own error for a filter or test it does not have, as its code generator would: at compile
    time, except inside an inline ``if`` expression, where Jinja leaves it to fail when it is called."""
    pending: list[tuple[nodes.Node, bool]] = [(tree, False)]
    while pending:
        node, soft = pending.pop()
        if isinstance(node, (nodes.Filter, nodes.Test)) and not soft:
            known = ENV.filters if isinstance(node, nodes.Filter) else ENV.tests
            if node.name not in known:
                kind = "filter" if isinstance(node, nodes.Filter) else "test"
                raise TemplateAssertionError(f"No {kind} named {node.name!r}.", node.lineno)
        soft = soft or isinstance(node, nodes.CondExpr)
        pending.extend((child, soft) for child in node.iter_child_nodes())


def _statement_free(tree: nodes.Template) -> bool:
    """Whether a parsed template is only text and ``{{ }}`` outputs (no ``{% %}`` statement)."""
    return all(isinstance(n, nodes.Output) for n in tree.body)


# Compiled templates by (kind, source), shared by every document: a Compiled is never changed after it
# is made and keeps no state between renders, so an edited document, or another one using the same
# text, compiles only what is new. Failures are not kept (they are raised again, the same).
_COMPILED_SIZE = 8192
_compiled: OrderedDict[tuple[str, str], Compiled] = OrderedDict()
_compiled_lock = threading.Lock()


def _cached(kind: str, source: str, make: Callable[[str], Compiled]) -> Compiled:
    """``make(source)``, or the Compiled made before for the same kind and text (least recently used
    forgotten past ``_COMPILED_SIZE``). Two threads compiling one text at once both make a correct one."""
    key = (kind, source)
    with _compiled_lock:
        found = _compiled.get(key)
        if found is not None:
            _compiled.move_to_end(key)
            return found
    compiled = make(source)
    with _compiled_lock:
        _compiled[key] = compiled
        if len(_compiled) > _COMPILED_SIZE:
            _compiled.popitem(last=False)
    return compiled


def clear_compiled_cache() -> None:
    """Forget every compiled template (benchmarks of a first compile; tests)."""
    with _compiled_lock:
        _compiled.clear()


def compile_expression(source: str) -> Compiled:
    """Compile a brace-less expression such as ``nodes.score.output >= 7``.

    Raises:
        TemplateSyntaxError: the expression does not parse.
    """
    if not isinstance(source, str):  # the cache needs a hashable key; Jinja refuses it all the same
        return _compile_expression(source)
    return _cached("expression", source, _compile_expression)


def _compile_expression(source: str) -> Compiled:
    if not source.strip():
        raise TemplateSyntaxError("expression is empty", 1)
    parser = Parser(ENV, source, state="variable")
    tree = parser.parse_expression()
    if not parser.stream.eos:
        token = parser.stream.current
        raise TemplateSyntaxError(f"unexpected {token.value!r} after the expression", token.lineno)
    scan = _scan(tree)  # before the code generation, which rewrites the tree
    _check_names(tree)
    node_refs, input_refs = _split_reads(scan.reads)
    makes_values = scan.makes_values
    expression = _Deferred(functools.partial(_evaluator, tree))

    def render(context: Mapping[str, Any]) -> Any:
        value = expression.call(context)
        return _checked_value(_plain(value)) if makes_values else _referenced(value)

    return Compiled(source, frozenset(scan.names), node_refs, input_refs, render, expression)


def compile_template(source: str) -> Compiled:
    """Compile a template string; one lone ``{{ expr }}`` keeps the value's type.

    Raises:
        TemplateSyntaxError: the template does not parse.
    """
    if not isinstance(source, str):
        return _compile_template(source)
    return _cached("template", source, _compile_template)


def _parse_lone(lone: str) -> nodes.Expr:
    """The lone expression of a template parsed, as Jinja's ``compile_expression`` parses it (the same
    error, "chunk after expression" for ``{{ a, b }}``, raised the same way)."""
    parser = Parser(ENV, lone, state="variable")
    try:
        tree = parser.parse_expression()
        if not parser.stream.eos:
            raise TemplateSyntaxError("chunk after expression", parser.stream.current.lineno, None, None)
    except TemplateSyntaxError:
        ENV.handle_exception(source=lone)
    return tree


def _compile_template(source: str) -> Compiled:
    tree = ENV.parse(source)
    scan = _scan(tree)
    plain = _statement_free(tree)
    # without statements nothing is declared: the names read, less Jinja's globals, are what meta's walk
    # (a code generation pass of its own) finds
    names = frozenset(scan.names - JINJA_GLOBALS) if plain else frozenset(meta.find_undeclared_variables(tree))
    node_refs, input_refs = _split_reads(scan.reads)
    match = _SINGLE_EXPR.match(source)
    if match and _is_single_output(tree):
        lone_tree = _parse_lone(_lone_expression(source))
        makes_values = _scan(lone_tree).makes_values  # before the code generation, which rewrites the tree
        _check_names(lone_tree)
        expression = _Deferred(functools.partial(_evaluator, lone_tree))

        def render_value(context: Mapping[str, Any]) -> Any:
            value = expression.call(context)
            return _checked_value(_plain(value)) if makes_values else _referenced(value)

        return Compiled(source, names, node_refs, input_refs, render_value, expression)
    if "{" not in source:  # plain text: nothing to render
        return Compiled(source, names, node_refs, input_refs, lambda _context: source)
    if not plain:
        template = ENV.from_string(source)
        return Compiled(source, names, node_refs, input_refs, lambda context: template.render(context))
    _check_names(tree)
    deferred = _Deferred(lambda: ENV.from_string(source).render)
    return Compiled(source, names, node_refs, input_refs, deferred, deferred)


def _lone_expression(source: str) -> str:
    """The expression inside a template's one ``{{ ... }}``, without ``{{-``/``{{+``/``-}}``.

    Jinja's own lexer decides where the expression starts and ends, so
    ``{{- x -}}`` gives ``x`` while ``{{ a - b }}`` keeps its minus.
    """
    tokens = list(ENV.lex(source))
    begin = next(i for i, (_, kind, _) in enumerate(tokens) if kind == "variable_begin")
    end = max(i for i, (_, kind, _) in enumerate(tokens) if kind == "variable_end")
    return "".join(value for _, _, value in tokens[begin + 1 : end])


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


_ATOMS = frozenset({str, int, float, bool, type(None)})


def _checked_value(value: Any) -> Any:
    """The value of an expression or lone ``{{ expr }}``, refused when its JSON text would pass the cap."""
    kind = type(value)
    if kind is str:
        if len(value) > MAX_ITEMS:
            limits.check_text("value", value)
    elif kind not in _ATOMS:
        limits.check_text("value", value)
    return value


def is_lazy_sequence(value: Any) -> bool:
    """Whether ``value`` is a range, generator/iterator or dict view (never a str or a mapping)."""
    return isinstance(value, (range, Iterator, MappingView)) and not isinstance(value, (str, bytes, Mapping))


def as_list(value: Any) -> list[Any] | None:
    """``value`` as a list if it is list-like (list, tuple, range, generator, iterator,
    dict view), else None: strings and mappings are not lists.

    Raises:
        ValueTooLarge: a lazy value has more than :data:`MAX_ITEMS` items.
    """
    if type(value) is list:
        return value
    if isinstance(value, (list, tuple)):
        return list(value)
    if is_lazy_sequence(value):
        return _materialise(value)
    return None


def _materialise(value: Any) -> list[Any]:
    items = list(itertools.islice(iter(value), MAX_ITEMS + 1))
    if len(items) > MAX_ITEMS:
        raise ValueTooLarge(f"it gives more than {MAX_ITEMS:,} items ({type(value).__name__}); take fewer items")
    return items


def _plain(value: Any) -> Any:
    """Turn sandbox-only types into plain values, inside lists and dicts too:
    Markup -> str, range/generator/iterator/dict view -> list, tuple subclasses -> tuple.
    A list, tuple or dict of plain scalars is returned as it is (checked with built-ins); anything else is
    walked, item by item, charged to the render budget.
    """
    kind = type(value)
    if kind in _ATOMS:
        return value
    if kind is Markup:
        return str(value)
    if isinstance(value, Undefined):
        value._fail_with_undefined_error()  # raises UndefinedError naming the variable
    if kind is list or kind is tuple:
        if _all_plain_atoms(value):
            return value
        budget.charge(len(value), _PLAIN_NS_PER_ITEM, "converting the value")
        return [_plain(v) for v in value] if kind is list else tuple(_plain(v) for v in value)
    if isinstance(value, tuple):  # groupby gives named tuples
        return tuple(_plain(v) for v in value)
    if kind is dict:
        if _all_plain_atoms(value.keys()) and _all_plain_atoms(value.values()):
            return value
        budget.charge(len(value), _PLAIN_NS_PER_ITEM, "converting the value")
        return {_plain(k): _plain(v) for k, v in value.items()}
    if is_lazy_sequence(value):
        return [_plain(v) for v in _materialise(value)]
    return value


_PLAIN_NS_PER_ITEM = 1000.0


def _all_plain_atoms(items: Any) -> bool:
    budget.charge(len(items), 30.0, "converting the value")
    return set(map(type, items)) <= _ATOMS


def _referenced(value: Any) -> Any:
    """The value of an expression that only picks a value out of its variables (``nodes.fetch.output``):
    the variables hold plain values already, so it is passed along without a walk; only an undefined one
    fails."""
    if type(value) not in _ATOMS and isinstance(value, Undefined):
        value._fail_with_undefined_error()
    return value
