"""Agents with memory: recall into the prompt, save after the answer, across runs and restarts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from engine import load_workflow, run_workflow
from engine.llm.offline_model import OfflineChatModel
from engine.llm.openai_model import OpenAIChatModel
from engine.untrusted import read_blocks
from tests.fake_openai import FakeOpenAIServer

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "memory_chat.json"


def _events(result: Any, kind: str) -> list[Any]:
    return [e for e in result.events if e.type == kind]


@pytest.fixture(autouse=True)
def _fresh_memory_backends() -> None:
    """Each test has its own DATA_DIR; the memory package must not keep the last one's stores."""
    from memory import reset_default_backends

    reset_default_backends()


async def test_offline_model_remembers_a_name_across_runs() -> None:
    workflow = load_workflow(EXAMPLE)
    first = await run_workflow(
        workflow, {"message": "My name is Alice.", "user": "t1"}, llm=OfflineChatModel(token_delay_s=0)
    )
    assert first.status == "completed", first.error
    saved = _events(first, "memory.saved")
    assert saved and saved[0].data["agent_id"] == "assistant-t1" and saved[0].data["ids"]
    second = await run_workflow(
        workflow, {"message": "What's my name?", "user": "t1"}, llm=OfflineChatModel(token_delay_s=0)
    )
    assert second.status == "completed", second.error
    recalled = _events(second, "memory.recalled")[0].data
    assert recalled["agent_id"] == "assistant-t1" and recalled["query"] == "What's my name?"
    assert recalled["hits"] and "Alice" in recalled["hits"][0]["text"]
    assert recalled["hits"][0]["run_id"] == first.run_id and 0 <= recalled["hits"][0]["score"] <= 1
    assert "Alice" in second.result["reply"]


async def test_endpoint_receives_the_memory_block_and_the_conversation(fake_openai: FakeOpenAIServer) -> None:
    model = OpenAIChatModel(base_url=fake_openai.base_url, api_key="k", backoff_s=0.01)
    workflow = load_workflow(EXAMPLE)
    fake_openai.enqueue_text("Nice to meet you, Alice.")
    await run_workflow(workflow, {"message": "My name is Alice.", "user": "t2"}, llm=model)
    fake_openai.enqueue_text("You are Alice.")
    result = await run_workflow(workflow, {"message": "What's my name?", "user": "t2"}, llm=model)
    assert result.result == {"reply": "You are Alice."}
    messages = fake_openai.requests[-1]["messages"]
    assert not any("<memory>" in m["content"] for m in messages if m["role"] == "system"), messages
    # memories are untrusted data: one delimited block opening the user message, then the request
    assert messages[-1]["role"] == "user"
    request, (data,) = read_blocks(messages[-1]["content"])
    assert request.strip() == "What's my name?" and data.source == "memory:assistant-t2"
    block = data.content
    assert "<memory>" in block and "</memory>" in block and "My name is Alice." in block
    assert "<conversation>" in block and "assistant: Nice to meet you, Alice." in block


async def test_memories_are_separate_per_agent_id() -> None:
    workflow = load_workflow(EXAMPLE)
    await run_workflow(workflow, {"message": "My name is Alice.", "user": "a"}, llm=OfflineChatModel(token_delay_s=0))
    other = await run_workflow(
        workflow, {"message": "What's my name?", "user": "b"}, llm=OfflineChatModel(token_delay_s=0)
    )
    assert _events(other, "memory.recalled")[0].data["hits"] == []
    assert "Alice" not in other.result["reply"]


async def test_unreachable_memory_is_a_warning_unless_required(monkeypatch: pytest.MonkeyPatch) -> None:
    from memory import reset_default_backends

    monkeypatch.setenv("CHROMA_HOST", "127.0.0.1")
    monkeypatch.setenv("CHROMA_PORT", "9")  # nothing listens there
    reset_default_backends()
    doc = load_workflow(EXAMPLE).to_dict()
    result = await run_workflow(doc, {"message": "hello", "user": "down"}, llm=OfflineChatModel(token_delay_s=0))
    assert result.status == "completed", result.error
    assert any(e.type == "log" and "unavailable" in e.data["message"] for e in result.events)
    doc["nodes"][1]["config"]["memory"]["required"] = True
    failed = await run_workflow(doc, {"message": "hello", "user": "down"}, llm=OfflineChatModel(token_delay_s=0))
    assert failed.status == "failed" and failed.node_id == "assistant"
    assert "required but unavailable" in failed.error
