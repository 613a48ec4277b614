"""A node's ``retry`` is spent only on failures another try may fix (issue 15 §7).

Each error kind the engine meets is produced for real and run through a node
with ``retry: {attempts: 3}``: a retryable one is tried three times, a
non-retryable one once, with a ``log`` warning saying why the budget was left
unspent. Model errors come from the real openai client against the local
OpenAI-compatible server (``tests/fake_openai.py``) with the client's own
retries turned off, so every request the server records is one try of the
node. Tool failures have their own table in ``test_tool_errors.py``.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import tools
from engine import RunResult, run_workflow
from engine.llm.openai_model import OpenAIChatModel
from tests.fake_openai import FakeOpenAIServer

ATTEMPTS = 3


def _doc(node: dict[str, Any]) -> dict[str, Any]:
    node = {**node, "id": "n", "retry": {"attempts": ATTEMPTS, "backoff_s": 0}}
    return {
        "format": "workflow/v1",
        "name": "retry policy",
        "nodes": [{"id": "start", "type": "input"}, node],
        "edges": [{"source": "start", "target": "n"}],
    }


def _model(server: FakeOpenAIServer) -> OpenAIChatModel:
    """The real client with its own retries off: one request is one try of the node."""
    return OpenAIChatModel(base_url=server.base_url, api_key="sk-test", default_model="m", max_retries=0, backoff_s=0)


def _tries(result: RunResult) -> int:
    (failed,) = [e for e in result.events if e.type == "node.failed" and e.node_id == "n"]
    return int(failed.data["attempts"])


def _warnings(result: RunResult) -> list[str]:
    return [e.data["message"] for e in result.events if e.type == "log" and e.node_id == "n"]


# (HTTP status the endpoint answers, whether the node tries again): what the openai client raises for each,
# classified by engine.llm.openai_model: 408, 429 and 5xx are passing troubles, any other 4xx is the request's.
MODEL_FAILURES = [(400, False), (401, False), (403, False), (404, False), (429, True), (500, True), (503, True)]


@pytest.mark.parametrize(("status", "retried"), MODEL_FAILURES, ids=[str(s) for s, _ in MODEL_FAILURES])
async def test_a_model_error_is_retried_only_when_the_endpoint_may_answer_next_time(status: int, retried: bool) -> None:
    with FakeOpenAIServer() as server:
        for _ in range(ATTEMPTS):
            server.enqueue_error(status)
        result = await run_workflow(_doc({"type": "agent", "config": {"prompt": "hi"}}), llm=_model(server))
        requests = len(server.requests)
    assert result.status == "failed" and result.node_id == "n"
    assert f"HTTP {status}" in (result.error or "") or status >= 500 or status == 429, result.error
    expected = ATTEMPTS if retried else 1
    assert _tries(result) == expected and requests == expected
    warnings = _warnings(result)
    if retried:
        assert len(warnings) == ATTEMPTS - 1 and all("retrying in 0 s" in w for w in warnings), warnings
    else:
        (warning,) = warnings
        assert warning.startswith(f"attempt 1 of {ATTEMPTS} failed: ") and warning.endswith("it would fail again")


async def test_a_rate_limit_that_clears_lets_the_node_complete_on_its_next_try() -> None:
    with FakeOpenAIServer() as server:
        server.enqueue_error(429)
        server.enqueue_text("Recovered.")
        result = await run_workflow(_doc({"type": "agent", "config": {"prompt": "hi"}}), llm=_model(server))
    assert result.status == "completed", result.error
    (done,) = [e for e in result.events if e.type == "node.completed" and e.node_id == "n"]
    assert done.data["attempts"] == 2 and done.data["output"] == "Recovered."


async def test_a_reply_that_is_not_the_json_asked_for_is_asked_again() -> None:
    with FakeOpenAIServer() as server:
        server.enqueue_text("Sure! Here it is: a = 1")
        server.enqueue_text('{"a": 1}')
        agent = {"type": "agent", "config": {"prompt": "give JSON", "response_format": "json"}}
        result = await run_workflow(_doc(agent), llm=_model(server))
    assert result.status == "completed", result.error
    (done,) = [e for e in result.events if e.type == "node.completed" and e.node_id == "n"]
    assert done.data["attempts"] == 2 and done.data["output"] == {"a": 1}


# ----------------------------------------------------------------------------- failures of the engine's own


async def _sleepy(seconds: float) -> str:
    """Sleep, then answer."""
    await asyncio.sleep(seconds)
    return "slept"


def _down(what: str) -> str:
    """Fail like a backend that is down."""
    raise ConnectionError(f"the {what} backend is down")


TOOLS = tools.default_registry().copy()
TOOLS.register(_sleepy, name="retry_sleepy")
TOOLS.register(_down, name="retry_down")

# nested loops that run past the render time limit: that limit depends on the machine's load, like a timeout
SPIN = "{% for i in range(3000) %}{% for j in range(3000) %}{{ j if j > 10 ** 9 }}{% endfor %}{% endfor %}"

# (id, node, what the error says, whether the node tries again)
ENGINE_FAILURES: list[tuple[str, dict[str, Any], str, bool]] = [
    ("template-error", {"type": "transform", "config": {"expression": "1 // 0"}}, "ZeroDivisionError", False),
    ("undefined-variable", {"type": "transform", "config": {"expression": "nodes.start.output.no.such"}},
     "undefined", False),
    ("map-items-not-a-list", {"type": "map", "config": {"items": "5", "node": {"type": "transform",
     "config": {"expression": "item"}}}}, "config.items must give a list", False),
    ("map-item-not-retryable", {"type": "map", "config": {"items": "[1, 2]", "node": {"type": "tool",
     "config": {"tool": "calculator", "args": {"expression": "1 / 0"}}}}}, "division by zero", False),
    ("map-item-retryable", {"type": "map", "config": {"items": "[1, 2]", "node": {"type": "tool",
     "config": {"tool": "retry_down", "args": {"what": "price"}}}}}, "the price backend is down", True),
    ("render-time-limit", {"type": "transform", "config": {"template": SPIN}}, "render time limit reached", True),
    ("node-timeout", {"type": "tool", "timeout_s": 0.2, "config": {"tool": "retry_sleepy", "args": {"seconds": 5}}},
     "timed out after 0.2 s", True),
]


@pytest.mark.parametrize(
    ("node", "expected", "retried"), [c[1:] for c in ENGINE_FAILURES], ids=[c[0] for c in ENGINE_FAILURES]
)
async def test_an_engine_failure_is_retried_only_when_another_try_may_pass(
    node: dict[str, Any], expected: str, retried: bool
) -> None:
    result = await run_workflow(_doc(node), tools=TOOLS)
    assert result.status == "failed" and result.node_id == "n"
    assert expected in (result.error or ""), result.error
    assert _tries(result) == (ATTEMPTS if retried else 1)
    assert len(_warnings(result)) == (ATTEMPTS - 1 if retried else 1)
