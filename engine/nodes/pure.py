"""Node kinds that compute a value from templates alone: input, transform, condition, output.

They hold no I/O, so each is a few lines; keeping them together keeps the
cheap path of the engine in one place.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from engine.model import ConditionConfig, InputConfig, OutputConfig, TransformConfig
from engine.nodes.base import Compiler, NodeContext, NodeKind, ValueTree
from engine.templates import Compiled


async def _run_input(_spec: None, ctx: NodeContext) -> Any:
    return ctx.vars()["inputs"]


def _compile_input(_config: InputConfig, _compiler: Compiler) -> None:
    return None


def _compile_expression_only(config: ConditionConfig, compiler: Compiler) -> Compiled | None:
    return compiler.expression("config.expression", config.expression)


async def _run_compiled(spec: Compiled, ctx: NodeContext) -> Any:
    return spec.render(ctx.vars())


def _compile_transform(config: TransformConfig, compiler: Compiler) -> Compiled | None:
    if (config.expression is None) == (config.template is None):
        compiler.error("a transform needs exactly one of config.expression or config.template")
        return None
    if config.expression is not None:
        return compiler.expression("config.expression", config.expression)
    return compiler.template("config.template", config.template or "")


@dataclass(frozen=True, slots=True)
class OutputSpec:
    value: ValueTree
    name: str | None


def _compile_output(config: OutputConfig, compiler: Compiler) -> OutputSpec:
    return OutputSpec(value=compiler.value("config.value", config.value), name=config.name)


async def _run_output(spec: OutputSpec, ctx: NodeContext) -> Any:
    return spec.value.render(ctx.vars())


INPUT = NodeKind("input", _compile_input, _run_input)
TRANSFORM = NodeKind("transform", _compile_transform, _run_compiled)
CONDITION = NodeKind("condition", _compile_expression_only, _run_compiled)
OUTPUT = NodeKind("output", _compile_output, _run_output)
