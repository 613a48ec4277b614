"""The ``agent`` node: a model answering a prompt, calling its tools in rounds.

One loop serves every model: ask the model; if it asks for tools, run them
(concurrently, each with ``tool.called``/``tool.result`` events), append the
results as tool messages, and ask again — at most ``max_steps`` rounds with
tools on offer, then one last round without tools so the model must answer.
An agent may call only the tools its node lists; any other call is refused
with an error the model sees and a ``log`` event.

Tool results and errors, and recalled memories, reach the model only as
untrusted data blocks (:mod:`engine.untrusted`): tool messages for the
former, the opening of the user message for the latter -- never a system
message. A failed call's block is marked ``status="error"``, so the model can
try again or do without; it does not fail the node.

``llm.token`` and ``llm.completed`` carry ``step`` (the round, from 0) and
``attempt`` (the node's try, from 1, see ``retry``): the deltas of one
(attempt, step) concatenate to that round's text. ``llm.completed`` says
whether its counts are ``estimated`` (the endpoint sent none). A try the
endpoint began but cut off is an ``llm.completed`` with ``"failed": true``
and its ``error``: its tokens count, and the deltas streamed before it are
void (the model's retry of the round streams afresh). A node whose model
call fails for good emits it too, so the tokens a failed node used count.
An answer that stopped at ``max_tokens`` (``finish_reason`` "length") is
complete by the protocol's rules, but a ``log`` warning says it was cut.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any, Literal

import tools
from engine.errors import AgentReplyInvalid
from engine.llm.base import ChatReply, ChatRequest, FailedTry, Message, ToolCall, ToolSchema
from engine.model import AgentConfig
from engine.nodes.agent_memory import MemorySession, MemorySpec, compile_memory, open_memory
from engine.nodes.base import Compiler, NodeContext, NodeKind
from engine.templates import Compiled
from engine.untrusted import memory_block, tool_block


@dataclass(frozen=True, slots=True)
class AgentSpec:
    prompt: Compiled | None
    system: Compiled | None
    model: Compiled | None
    temperature: float | None
    tools: tuple[str, ...]
    max_steps: int
    response_format: Literal["text", "json"]
    memory: MemorySpec | None = None
    max_tokens: int | None = None


def _compile(config: AgentConfig, compiler: Compiler) -> AgentSpec:
    for name in config.tools:
        if not compiler.tools.has_tool(name):
            compiler.error(f"config.tools: {compiler.tools.unknown_message(name)}")
    return AgentSpec(
        prompt=compiler.template("config.prompt", config.prompt),
        system=compiler.template("config.system", config.system) if config.system is not None else None,
        model=compiler.template("config.model", config.model) if config.model is not None else None,
        temperature=config.temperature,
        tools=tuple(dict.fromkeys(config.tools)),
        max_steps=config.max_steps,
        response_format=config.response_format,
        memory=compile_memory(config.memory, compiler) if config.memory is not None else None,
        max_tokens=config.max_tokens,
    )


def _messages(spec: AgentSpec, variables: Any, prompt: str, memory: MemorySession | None) -> list[Message]:
    """The system prompt, then one user message: recalled memory as a data block (if any), then the prompt.

    One user message rather than two: some chat templates refuse two user turns in a row.
    """
    messages: list[Message] = []
    if spec.system is not None:
        messages.append({"role": "system", "content": str(spec.system.render(variables))})
    if memory is not None and memory.block:
        prompt = memory_block(memory.agent_id, memory.block) + "\n\n" + prompt
    messages.append({"role": "user", "content": prompt})
    return messages


async def _run(spec: AgentSpec, ctx: NodeContext) -> Any:
    variables = ctx.vars()
    assert spec.prompt is not None
    prompt = str(spec.prompt.render(variables))
    model = str(spec.model.render(variables)) if spec.model is not None else ctx.default_model
    memory = await open_memory(spec.memory, ctx, variables, prompt, model) if spec.memory is not None else None
    messages = _messages(spec, variables, prompt, memory)
    record = {"model": model, "messages": [m["content"] for m in messages], "tools": list(spec.tools)}
    ctx.set_input(record)
    schemas = tuple(_schema(ctx.tools, name) for name in spec.tools)
    attempt = ctx.attempt  # which try of the node's retry: a retry streams its text afresh
    reply = ChatReply(content="")
    for step in range(spec.max_steps + 1):
        offered = schemas if step < spec.max_steps else ()
        request = ChatRequest(
            messages=list(messages),
            model=model,
            temperature=spec.temperature,
            tools=offered,
            response_format=spec.response_format,
            max_tokens=spec.max_tokens,
        )

        def failed(try_: FailedTry, step: int = step) -> None:
            ctx.emit(
                "llm.completed",
                {
                    "model": try_.model or model,
                    "prompt_tokens": try_.prompt_tokens,
                    "completion_tokens": try_.completion_tokens,
                    "estimated": try_.usage_estimated,
                    "step": step,
                    "attempt": attempt,
                    "failed": True,
                    "error": try_.error,
                    "retrying": try_.retrying,
                    "offline": ctx.llm.name == "offline",
                },
            )

        def streamed(delta: str, step: int = step) -> None:
            ctx.emit("llm.token", {"delta": delta, "step": step, "attempt": attempt})

        reply = await ctx.llm.chat(request, streamed, failed)
        if reply.model and reply.model != record["model"]:  # the record names the model that answered
            record = {**record, "model": reply.model, "requested_model": model}
            ctx.set_input(record)
        ctx.emit(
            "llm.completed",
            {
                "model": reply.model or model,
                "prompt_tokens": reply.prompt_tokens,
                "completion_tokens": reply.completion_tokens,
                "estimated": reply.usage_estimated,
                "step": step,
                "attempt": attempt,
                "tool_calls": len(reply.tool_calls),
                "offline": ctx.llm.name == "offline",
            },
        )
        if reply.extra.get("finish_reason") == "length":
            limit = f"the agent's max_tokens ({spec.max_tokens})" if spec.max_tokens else "the model's length limit"
            ctx.emit("log", {"level": "warning", "message": f"the model's answer reached {limit} and was cut there"})
        if not reply.tool_calls or not offered:
            break
        messages.append(reply.as_message())
        results = await asyncio.gather(*(_call(ctx, call, spec.tools) for call in reply.tool_calls))
        messages.extend(
            {"role": "tool", "tool_call_id": call.id, "content": _tool_message(call, result)}
            for call, result in zip(reply.tool_calls, results, strict=True)
        )
    output = _final(reply.content, spec.response_format)
    if memory is not None:
        await memory.save(ctx, prompt, output)
    return output


def _schema(registry: tools.ToolRegistry, name: str) -> ToolSchema:
    spec = registry.get_tool(name)
    return ToolSchema(name=spec.name, description=spec.description, parameters=spec.parameters)


def _tool_message(call: ToolCall, result: tools.ToolResult) -> str:
    """What the model reads for one call: the result or the error, as an untrusted data block."""
    if result.ok:
        return tool_block(call.name, result.as_text(), ok=True)
    return tool_block(call.name, result.error or "the call failed", ok=False)


async def _call(ctx: NodeContext, call: ToolCall, allowed: tuple[str, ...]) -> tools.ToolResult:
    """Run one tool call the model asked for (or refuse it); the model sees :func:`_tool_message` of it.

    ``ctx.call_tool``'s default result cap (``tools.DEFAULT_MAX_RESULT_CHARS``) applies:
    a model reads at most that many characters of a result.
    """
    try:
        args = json.loads(call.arguments or "{}")
        if not isinstance(args, dict):
            raise ValueError("arguments must be a JSON object")
    except ValueError as exc:
        refusal = f"the arguments are not a valid JSON object ({exc}); send a JSON object matching the schema"
        return await ctx.call_tool(call.name, {"_raw": call.arguments}, call_id=call.id, refused=refusal)
    if call.name not in allowed:
        refusal = f"tool '{call.name}' is not allowed for this agent (allowed: {', '.join(allowed) or 'none'})"
        return await ctx.call_tool(call.name, args, call_id=call.id, refused=refusal)
    return await ctx.call_tool(call.name, args, call_id=call.id)


def _final(content: str, response_format: str) -> Any:
    if response_format != "json":
        return content
    text = content.strip()
    if text.startswith("```"):  # tolerate a fenced block
        text = text.strip("`").removeprefix("json").strip()
    try:
        return json.loads(text)
    except ValueError as exc:
        raise AgentReplyInvalid(
            f"the model was asked for JSON but replied with text that does not parse ({exc}): {content!r:.200}"
        ) from None


AGENT = NodeKind("agent", _compile, _run)
