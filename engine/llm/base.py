"""The one interface every language model implements.

A ``ChatModel`` answers one round of a chat: given messages (OpenAI chat
format) and the tools on offer, it streams text deltas through ``on_delta``
and returns the assistant's reply, which may ask for tool calls. The agent
node owns the tool-calling loop, so the real OpenAI client and the offline
model share it and behave alike.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

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
        max_tokens: the most completion tokens the answer may have, or None for the endpoint's limit.
    """

    messages: list[Message]
    model: str
    temperature: float | None = None
    tools: tuple[ToolSchema, ...] = ()
    response_format: Literal["text", "json"] = "text"
    max_tokens: int | None = None


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A tool call the model asked for. ``arguments`` is the raw JSON text."""

    id: str
    name: str
    arguments: str


@dataclass(frozen=True, slots=True)
class ChatReply:
    """The assistant's reply to one round.

    ``usage_estimated`` is True when the endpoint sent no token counts and
    ``prompt_tokens``/``completion_tokens`` are estimates (about four characters a token).
    """

    content: str
    tool_calls: tuple[ToolCall, ...] = ()
    model: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    extra: dict[str, Any] = field(default_factory=dict)
    usage_estimated: bool = False

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


@dataclass(frozen=True, slots=True)
class FailedTry:
    """A try of one round that the endpoint began to answer but did not finish.

    Its tokens were spent (the endpoint read the prompt and may have streamed
    text), so they count towards the run's totals. The text it streamed through
    ``on_delta`` is void: a retry streams the round's text afresh.

    Attributes:
        model: the model that answered.
        prompt_tokens, completion_tokens: what the try used (estimated when ``usage_estimated``).
        usage_estimated: the endpoint sent no counts; these are estimates.
        error: what went wrong, in words.
        retrying: another try of the round follows.
    """

    model: str
    prompt_tokens: int
    completion_tokens: int
    usage_estimated: bool
    error: str
    retrying: bool


FailureSink = Callable[[FailedTry], None]


@runtime_checkable
class ChatModel(Protocol):
    """A language model. ``name`` is ``"offline"`` for the bundled offline model."""

    name: str

    async def chat(
        self, request: ChatRequest, on_delta: DeltaSink, on_failure: FailureSink | None = None
    ) -> ChatReply:
        """Answer one round, calling ``on_delta`` with each text chunk as it arrives.

        ``on_failure`` hears of each try that the endpoint began to answer but did not
        finish (a cut-off stream, a lost connection), before the retry or the error:
        the deltas streamed since the round began, or since the previous failed try, are void.

        Raises:
            ModelError: the endpoint failed for good (bad key, unknown model,
                retries exhausted). Its message says what to fix.
        """
        ...
