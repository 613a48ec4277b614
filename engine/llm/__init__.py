"""Choosing the chat model: an OpenAI-compatible endpoint when one is configured, else the offline model."""

from __future__ import annotations

import os

from engine.llm.base import ChatModel, ChatReply, ChatRequest, ToolCall, ToolSchema


def endpoint_configured() -> bool:
    """True when ``OPENAI_API_KEY`` or ``OPENAI_BASE_URL`` is set (and not empty)."""
    return bool(os.environ.get("OPENAI_API_KEY") or os.environ.get("OPENAI_BASE_URL"))


def default_chat_model() -> ChatModel:
    """The model agents use unless one is passed in: see the spec's "Models" section."""
    if endpoint_configured():
        from engine.llm.openai_model import OpenAIChatModel

        return OpenAIChatModel()
    from engine.llm.offline_model import OfflineChatModel

    return OfflineChatModel()


__all__ = ["ChatModel", "ChatReply", "ChatRequest", "ToolCall", "ToolSchema", "default_chat_model", "endpoint_configured"]
