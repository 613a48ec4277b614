"""Each built-in tool works from an agent: through the endpoint's tool_calls and through the offline model."""

from __future__ import annotations

from typing import Any

import pytest

from engine import run_workflow
from engine.llm.offline_model import OfflineChatModel
from engine.llm.openai_model import OpenAIChatModel
from tests.fake_openai import FakeOpenAIServer

# tool, arguments the endpoint sends, a prompt the offline model derives arguments from, a check of the result
CASES: list[tuple[str, dict[str, Any], str, Any]] = [
    ("calculator", {"expression": "6 * 7"}, "What is 6 * 7?", lambda r: r["result"] == 42),
    ("python", {"code": "sum(range(5))"}, "Run this:\n```\nsum(range(5))\n```", lambda r: r["result"]["value"] == 10),
    (
        "file_reader",
        {"path": "meeting_notes.md"},
        "Read meeting_notes.md please",
        lambda r: "Weekly" in r["result"]["content"],
    ),
    (
        "web_search",
        {"query": "durable workflows"},
        'Search for "durable workflows"',
        lambda r: "search unavailable" in r["error"],
    ),
]


def _agent(tool: str, prompt: str) -> dict[str, Any]:
    return {
        "format": "workflow/v1",
        "name": f"agent with {tool}",
        "settings": {"model": "test-model"},
        "nodes": [
            {"id": "start", "type": "input"},
            {"id": "agent", "type": "agent", "config": {"prompt": prompt, "tools": [tool], "max_steps": 2}},
        ],
        "edges": [{"source": "start", "target": "agent"}],
    }


def _tool_events(result: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    called = [e.data for e in result.events if e.type == "tool.called"]
    returned = [e.data for e in result.events if e.type == "tool.result"]
    assert len(called) == 1 and len(returned) == 1, result.events
    assert returned[0]["call_id"] == called[0]["call_id"] and returned[0]["duration_ms"] >= 0
    return called[0], returned[0]


@pytest.mark.parametrize(("tool", "args", "prompt", "check"), CASES, ids=[c[0] for c in CASES])
async def test_endpoint_tool_calls_reach_each_builtin_tool(
    fake_openai: FakeOpenAIServer, tool: str, args: dict[str, Any], prompt: str, check: Any
) -> None:
    fake_openai.enqueue_tool_calls([(tool, args)])
    fake_openai.enqueue_text("done")
    result = await run_workflow(_agent(tool, prompt), llm=OpenAIChatModel(base_url=fake_openai.base_url, api_key="k"))
    assert result.status == "completed", result.error
    called, returned = _tool_events(result)
    assert called["tool"] == tool and called["args"] == args
    assert check(returned), returned
    tool_message = [m for m in fake_openai.requests[1]["messages"] if m["role"] == "tool"][0]
    assert tool_message["content"]  # the model saw the result (or the error)


@pytest.mark.parametrize(("tool", "args", "prompt", "check"), CASES, ids=[c[0] for c in CASES])
async def test_offline_model_calls_each_builtin_tool(tool: str, args: dict[str, Any], prompt: str, check: Any) -> None:
    result = await run_workflow(_agent(tool, prompt), llm=OfflineChatModel(token_delay_s=0))
    assert result.status == "completed", result.error
    called, returned = _tool_events(result)
    assert called["tool"] == tool
    assert check(returned), returned
