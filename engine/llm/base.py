"""The one interface every language model implements.

A ``ChatModel`` answers one round of a chat: given messages (OpenAI chat
format) and the tools on offer, it streams text deltas through ``on_delta``
and returns the assistant's reply, which may ask for tool calls. The agent
node owns the tool-calling loop, so the real OpenAI client and the offline
model share it and behave alike.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Literal, Protocol, runtime_checkable

Message = dict[str, Any]
"""One chat message in OpenAI format: ``{"role": ..., "content": ..., ...}``."""


@dataclass(frozen=True, slots=True)
class ToolSchema:
    """A tool as a model sees it."""

    name: str
    description: str
    parameters: dict[str, Any]  # JSON schema of the arguments object

    def to_openai(self) -> dict[str, Any]:
        """The ``tools=[...]`` entry of the chat completions API."""
        return {
            "type": "function",
            "function": {"name": self.name, "description": self.description, "parameters": self.parameters},
        }


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """Everything one round needs.

    Attributes:
        messages: the conversation so far, OpenAI format.
        model: the model name to ask for (ignored by the offline model).
        temperature: sampling temperature, or None for the endpoint's default.
        tools: tools the model may call this round (empty: none offered).
        response_format: ``"text"`` or ``"json"`` (a JSON object is wanted).
    """

    messages: list[Message]
    model: str
    temperature: float | None = None
    tools: tuple[ToolSchema, ...] = ()
    response_format: Literal["text", "json"] = "text"


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A tool call the model asked for. ``arguments`` is the raw JSON text."""

    id: str
    name: str
    arguments: str


@dataclass(frozen=True, slots=True)
class ChatReply:
    """The assistant's reply to one round."""

    content: str
    tool_calls: tuple[ToolCall, ...] = ()
    model: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def as_message(self) -> Message:
        """The reply as the assistant message to append to the conversation."""
        message: Message = {"role": "assistant", "content": self.content or None}
        if self.tool_calls:
            message["tool_calls"] = [
                {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
                for c in self.tool_calls
            ]
        return message


DeltaSink = Callable[[str], None]


@runtime_checkable
class ChatModel(Protocol):
    """A language model. ``name`` is ``"offline"`` for the bundled offline model."""

    name: str

    async def chat(self, request: ChatRequest, on_delta: DeltaSink) -> ChatReply:
        """Answer one round, calling ``on_delta`` with each text chunk as it arrives.

        Raises:
            ModelError: the endpoint failed for good (bad key, unknown model,
                retries exhausted). Its message says what to fix.
        """
        ...
