"""The ``tool`` node: call one registered tool with templated arguments.

A tool's own failure (bad arguments, an exception, a timeout) fails the node,
so the node's ``retry`` applies; the call shows up as ``tool.called`` and
``tool.result`` events like an agent's calls do.

The node's output is the tool's result as it is (a list stays a list): the
20,000-character cap on tool results is for what a model reads (agents), so a
tool node passes its own far larger cap, :data:`TOOL_NODE_MAX_RESULT_CHARS`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from engine.errors import ToolFailed
from engine.model import ToolNodeConfig
from engine.nodes.base import Compiler, NodeContext, NodeKind, ValueTree

TOOL_NODE_MAX_RESULT_CHARS = 10_000_000
"""Longest result (as JSON text) a tool node keeps; past it the output is the cut text
plus a marker, and ``tool.result`` says ``"truncated": true``."""


@dataclass(frozen=True, slots=True)
class ToolSpec:
    tool: str
    args: ValueTree


def _compile(config: ToolNodeConfig, compiler: Compiler) -> ToolSpec:
    if not compiler.tools.has_tool(config.tool):
        compiler.error(compiler.tools.unknown_message(config.tool))
    return ToolSpec(tool=config.tool, args=compiler.value("config.args", config.args))


async def _run(spec: ToolSpec, ctx: NodeContext) -> Any:
    args = spec.args.render(ctx.vars())
    ctx.set_input({"tool": spec.tool, "args": args})
    result = await ctx.call_tool(spec.tool, args, max_result_chars=TOOL_NODE_MAX_RESULT_CHARS)
    if not result.ok:
        raise ToolFailed(f"tool '{spec.tool}' failed: {result.error}", retryable=result.retryable)
    return result.value


TOOL = NodeKind("tool", _compile, _run)
