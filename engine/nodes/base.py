"""What every node kind is made of: a compile step and an async run step.

A kind compiles its config once (templates included) at load time, reporting
problems through a :class:`Compiler`, and at run time gets a
:class:`NodeContext` from the executor: the template variables, the model,
the run's tool registry, the tool caller and the event sink. Kinds know nothing of the scheduler.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, overload

from jinja2 import TemplateSyntaxError

from engine.errors import Problem
from engine.events import (
    EventType,
    LlmCompletedData,
    LlmTokenData,
    LogData,
    MemoryRecalledData,
    MemorySavedData,
    ToolCalledData,
    ToolResultData,
)
from engine.llm.base import ChatModel
from engine.templates import JINJA_GLOBALS, Compiled, compile_expression, compile_template
from tools import ToolRegistry, default_registry

BASE_SCOPE = frozenset({"inputs", "nodes", "iteration"})
MAP_SCOPE = BASE_SCOPE | {"item", "index"}


class NodeContext(Protocol):
    """What a running node may use. Implemented by the executor."""

    node_id: str
    iteration: int
    attempt: int  # 1-based: which try of the node's ``retry``

    @property
    def llm(self) -> ChatModel: ...
    @property
    def default_model(self) -> str: ...
    @property
    def run_id(self) -> str: ...
    @property
    def workflow_name(self) -> str: ...
    @property
    def tools(self) -> ToolRegistry:
        """The run's tools: the registry handed to ``execute`` (or the Runtime)."""
        ...

    def vars(self) -> Mapping[str, Any]:
        """Template variables: ``inputs``, ``nodes``, ``iteration`` (+ ``item``, ``index`` in a map)."""
        ...

    @overload
    def emit(self, type: Literal["llm.token"], data: LlmTokenData) -> None: ...
    @overload
    def emit(self, type: Literal["llm.completed"], data: LlmCompletedData) -> None: ...
    @overload
    def emit(self, type: Literal["tool.called"], data: ToolCalledData) -> None: ...
    @overload
    def emit(self, type: Literal["tool.result"], data: ToolResultData) -> None: ...
    @overload
    def emit(self, type: Literal["memory.recalled"], data: MemoryRecalledData) -> None: ...
    @overload
    def emit(self, type: Literal["memory.saved"], data: MemorySavedData) -> None: ...
    @overload
    def emit(self, type: Literal["log"], data: LogData) -> None: ...
    def emit(self, type: EventType, data: Mapping[str, Any]) -> None:
        """Emit an event of this node (its payload typed per kind: engine.events)."""
        ...

    async def call_tool(
        self,
        name: str,
        args: dict[str, Any],
        *,
        call_id: str | None = None,
        refused: str | None = None,
        max_result_chars: int = ...,
    ) -> Any:
        """Call (or refuse) a tool with ``tool.called``/``tool.result`` events; returns a ``tools.ToolResult``.
        Results longer than ``max_result_chars`` come back cut, with a marker (default: what a model may read)."""
        ...

    def set_input(self, summary: dict[str, Any]) -> None:
        """Record what this execution was given (shown in history; long strings are clipped)."""
        ...

    def for_item(self, item: Any, index: int) -> NodeContext:
        """A context for one item of a ``map`` node."""
        ...


@dataclass(slots=True)
class Compiler:
    """Compiles a node's templates, collecting problems instead of stopping at the first."""

    where: str
    problems: list[Problem]
    scope: frozenset[str]
    node_ids: frozenset[str]
    input_names: frozenset[str]
    compiled: list[Compiled] = field(default_factory=list)
    tools: ToolRegistry = field(default_factory=default_registry)  # the tools a node may name

    def template(self, field_name: str, source: str) -> Compiled | None:
        return self._compile(field_name, source, compile_template)

    def expression(self, field_name: str, source: str) -> Compiled | None:
        return self._compile(field_name, source, compile_expression)

    def value(self, field_name: str, value: Any) -> ValueTree:
        """Compile every string inside a JSON value (objects and lists included)."""
        if isinstance(value, str):
            compiled = self.template(field_name, value)
            return ValueTree(compiled=compiled, constant=value)
        if isinstance(value, Mapping):
            return ValueTree(mapping={k: self.value(f"{field_name}.{k}", v) for k, v in value.items()})
        if isinstance(value, list):
            return ValueTree(sequence=[self.value(f"{field_name}[{i}]", v) for i, v in enumerate(value)])
        return ValueTree(constant=value)

    def error(self, message: str) -> None:
        self.problems.append(Problem(self.where, message))

    def _compile(self, field_name: str, source: str, fn: Callable[[str], Compiled]) -> Compiled | None:
        try:
            compiled = fn(source)
        except TemplateSyntaxError as exc:
            self.error(f"{field_name} does not parse: {exc.message} (line {exc.lineno})")
            return None
        self._check_references(field_name, compiled)
        self.compiled.append(compiled)
        return compiled

    def _check_references(self, field_name: str, compiled: Compiled) -> None:
        for name in sorted(compiled.names - self.scope - JINJA_GLOBALS):
            hint = " (item and index exist only inside a map)" if name in MAP_SCOPE else ""
            self.error(f"{field_name} uses unknown variable '{name}'{hint}; known: {', '.join(sorted(self.scope))}")
        for ref in sorted(compiled.node_refs - self.node_ids):
            self.error(f"{field_name} refers to unknown node '{ref}'")
        for ref in sorted(compiled.input_refs - self.input_names):
            known = ", ".join(sorted(self.input_names)) or "none declared"
            self.error(f"{field_name} refers to unknown input '{ref}' (inputs: {known})")


def reads(compiled: Iterable[Compiled | None], variables: Mapping[str, Any]) -> dict[str, Any]:
    """The values a node's templates read, by name (``nodes.<id>.output``, ``inputs.<name>``, ``item``...).

    What a template-only node records as its input (``NodeContext.set_input``): the values it was
    rendered from. A template that reads ``inputs`` whole records all inputs; ``nodes`` read
    dynamically (``nodes[name]``) is not listed (it would be every output of the run).
    """
    out: dict[str, Any] = {}
    nodes: Mapping[str, Any] = variables.get("nodes") or {}
    for template in compiled:
        if template is None:
            continue
        for key, ref in template.node_reads:
            out[key] = (nodes.get(ref) or {}).get("output")
        input_reads = template.input_reads
        if input_reads is not None:
            inputs: Mapping[str, Any] = variables.get("inputs") or {}
            if input_reads:
                for key, name in input_reads:
                    out[key] = inputs.get(name)
            else:
                out["inputs"] = dict(inputs)
        for name in template.scope_reads:
            if name in variables:
                out[name] = variables[name]
    return out


@dataclass(slots=True)
class ValueTree:
    """A JSON value whose strings are compiled templates."""

    compiled: Compiled | None = None
    constant: Any = None
    mapping: dict[str, ValueTree] | None = None
    sequence: list[ValueTree] | None = None

    def render(self, context: Mapping[str, Any]) -> Any:
        if self.compiled is not None:
            return self.compiled.render(context)
        if self.mapping is not None:
            return {k: v.render(context) for k, v in self.mapping.items()}
        if self.sequence is not None:
            return [v.render(context) for v in self.sequence]
        return self.constant

    def templates(self) -> list[Compiled]:
        """Every compiled template inside the value."""
        if self.compiled is not None:
            return [self.compiled]
        children = list((self.mapping or {}).values()) + list(self.sequence or [])
        return [t for child in children for t in child.templates()]


@dataclass(frozen=True, slots=True)
class NodeKind:
    """A node type: ``compile(config, compiler) -> spec`` and ``run(spec, ctx) -> output``."""

    type: str
    compile: Callable[[Any, Compiler], Any]
    run: Callable[[Any, NodeContext], Awaitable[Any]]
