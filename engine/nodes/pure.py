"""Node kinds that compute a value from templates alone: input, transform, condition, output.

They hold no I/O, so each is a few lines; keeping them together keeps the
cheap path of the engine in one place. Each records its input as every kind
does (``NodeContext.set_input``, the ``input`` of ``node.completed``/``node.failed``):
the input node the run's inputs; the others their template or expression and the
values it read (:func:`engine.nodes.base.reads`), recorded before rendering so a
failed render still shows what it was given; a condition's record also gets the
edges it took (added by the executor, which knows the edges).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from engine.model import ConditionConfig, InputConfig, OutputConfig, TransformConfig
from engine.nodes.base import Compiler, NodeContext, NodeKind, ValueTree, reads
from engine.templates import Compiled


async def _run_input(_spec: None, ctx: NodeContext) -> Any:
    inputs = ctx.vars()["inputs"]
    ctx.set_input({"inputs": inputs})
    return inputs


def _compile_input(_config: InputConfig, _compiler: Compiler) -> None:
    return None


@dataclass(frozen=True, slots=True)
class CompiledSpec:
    """One template or expression and the config field it came from (``expression`` or ``template``)."""

    field: str
    compiled: Compiled


def _compile_expression_only(config: ConditionConfig, compiler: Compiler) -> CompiledSpec | None:
    compiled = compiler.expression("config.expression", config.expression)
    return CompiledSpec("expression", compiled) if compiled is not None else None


async def _run_compiled(spec: CompiledSpec, ctx: NodeContext) -> Any:
    variables = ctx.vars()
    ctx.set_input({spec.field: spec.compiled.source, "reads": reads([spec.compiled], variables)})
    return spec.compiled.render(variables)


def _compile_transform(config: TransformConfig, compiler: Compiler) -> CompiledSpec | None:
    if (config.expression is None) == (config.template is None):
        compiler.error("a transform needs exactly one of config.expression or config.template")
        return None
    if config.expression is not None:
        compiled = compiler.expression("config.expression", config.expression)
        return CompiledSpec("expression", compiled) if compiled is not None else None
    compiled = compiler.template("config.template", config.template or "")
    return CompiledSpec("template", compiled) if compiled is not None else None


@dataclass(frozen=True, slots=True)
class OutputSpec:
    value: ValueTree
    name: str | None


def _compile_output(config: OutputConfig, compiler: Compiler) -> OutputSpec:
    return OutputSpec(value=compiler.value("config.value", config.value), name=config.name)


async def _run_output(spec: OutputSpec, ctx: NodeContext) -> Any:
    variables = ctx.vars()
    record: dict[str, Any] = {"reads": reads(spec.value.templates(), variables)}
    if spec.name:
        record["name"] = spec.name
    ctx.set_input(record)
    return spec.value.render(variables)


INPUT = NodeKind("input", _compile_input, _run_input)
TRANSFORM = NodeKind("transform", _compile_transform, _run_compiled)
CONDITION = NodeKind("condition", _compile_expression_only, _run_compiled)
OUTPUT = NodeKind("output", _compile_output, _run_output)
