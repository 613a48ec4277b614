"""Agent nodes through the real ``openai`` client against the local fake server.

The fake server speaks the chat completions API over a socket; these tests
check what the engine sends (prompt, tools, tool messages, model) and what it
emits (tokens, usage, tool events), plus the default model choice by env.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from engine import load_workflow, run_workflow
from engine.costs import Usage
from engine.llm import default_chat_model
from engine.llm.offline_model import OfflineChatModel
from engine.llm.openai_model import OpenAIChatModel
from engine.untrusted import read_blocks
from tests.fake_openai import FakeOpenAIServer, TextReply
from tools import tool


@tool(name="agent_test_lookup", replace=True)
def agent_test_lookup(city: str) -> dict[str, Any]:
    """Look up a city's population.

    Args:
        city: the city's name.
    """
    return {"city": city, "population": {"Paris": 2_100_000}.get(city, 0)}


def _agent_workflow(**config: Any) -> dict[str, Any]:
    return {
        "format": "workflow/v1",
        "name": "agent test",
        "settings": {"model": "test-model"},
        "inputs": {"question": {"type": "string", "default": "How many people live in Paris?"}},
        "nodes": [
            {"id": "start", "type": "input"},
            {"id": "agent", "type": "agent", "config": {"prompt": "{{ inputs.question }}", **config}},
            {"id": "out", "type": "output", "config": {"value": "{{ nodes.agent.output }}"}},
        ],
        "edges": [{"source": "start", "target": "agent"}, {"source": "agent", "target": "out"}],
    }


def _model(server: FakeOpenAIServer) -> OpenAIChatModel:
    return OpenAIChatModel(base_url=server.base_url, api_key="sk-test-secret", backoff_s=0.01)


def _of(result: Any, kind: str) -> list[Any]:
    return [e for e in result.events if e.type == kind]


async def test_streamed_tokens_concatenate_to_the_output(fake_openai: FakeOpenAIServer) -> None:
    fake_openai.enqueue_text("Paris has about two million inhabitants.")
    result = await run_workflow(_agent_workflow(system="Be brief."), llm=_model(fake_openai))
    assert result.status == "completed", result.error
    tokens = _of(result, "llm.token")
    assert len(tokens) > 1
    assert (
        "".join(e.data["delta"] for e in tokens) == result.result["out"] == "Paris has about two million inhabitants."
    )
    body = fake_openai.requests[0]
    assert body["model"] == "test-model"
    assert body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "How many people live in Paris?"},
    ]
    completed = _of(result, "llm.completed")
    assert len(completed) == 1 and completed[0].data["prompt_tokens"] > 0 and completed[0].data["completion_tokens"] > 0


async def test_tool_calling_loop_sends_results_back(fake_openai: FakeOpenAIServer) -> None:
    fake_openai.enqueue_tool_calls([("agent_test_lookup", {"city": "Paris"})])
    fake_openai.enqueue_text("About 2.1 million people.")
    result = await run_workflow(_agent_workflow(tools=["agent_test_lookup"]), llm=_model(fake_openai))
    assert result.status == "completed", result.error
    assert result.result == {"out": "About 2.1 million people."}
    first, second = fake_openai.requests
    assert [t["function"]["name"] for t in first["tools"]] == ["agent_test_lookup"]
    assert first["tools"][0]["function"]["parameters"]["properties"]["city"]["type"] == "string"
    tool_messages = [m for m in second["messages"] if m["role"] == "tool"]
    assert len(tool_messages) == 1
    _, (block,) = read_blocks(tool_messages[0]["content"])
    assert (block.source, block.status) == ("tool:agent_test_lookup", "ok")
    assert json.loads(block.content) == {"city": "Paris", "population": 2_100_000}
    assistant = [m for m in second["messages"] if m["role"] == "assistant"][0]
    assert assistant["tool_calls"][0]["id"] == tool_messages[0]["tool_call_id"]
    called, returned = _of(result, "tool.called"), _of(result, "tool.result")
    assert called[0].data["tool"] == "agent_test_lookup" and called[0].data["args"] == {"city": "Paris"}
    assert returned[0].data["call_id"] == called[0].data["call_id"]
    assert returned[0].data["result"]["population"] == 2_100_000
    types = [e.type for e in result.events]
    assert types.index("tool.called") < types.index("tool.result") < types.index("llm.token")


async def test_a_tool_not_listed_is_refused_and_the_model_sees_why(fake_openai: FakeOpenAIServer) -> None:
    fake_openai.enqueue_tool_calls([("calculator", {"expression": "1+1"})])
    fake_openai.enqueue_text("I could not use that tool.")
    result = await run_workflow(_agent_workflow(tools=["agent_test_lookup"]), llm=_model(fake_openai))
    assert result.status == "completed", result.error
    refused = _of(result, "tool.result")[0]
    assert "not allowed" in refused.data["error"]
    assert any(e.type == "log" and "refused" in e.data["message"] for e in result.events)
    tool_message = [m for m in fake_openai.requests[1]["messages"] if m["role"] == "tool"][0]
    _, (block,) = read_blocks(tool_message["content"])
    assert block.status == "error" and "not allowed" in block.content and "FAILED" in tool_message["content"]


async def test_max_steps_bounds_tool_rounds_then_forces_an_answer(fake_openai: FakeOpenAIServer) -> None:
    for _ in range(2):
        fake_openai.enqueue_tool_calls([("agent_test_lookup", {"city": "Paris"})])
    fake_openai.enqueue_text("Final answer.")
    result = await run_workflow(_agent_workflow(tools=["agent_test_lookup"], max_steps=2), llm=_model(fake_openai))
    assert result.status == "completed", result.error
    assert len(fake_openai.requests) == 3
    assert "tools" in fake_openai.requests[1] and "tools" not in fake_openai.requests[2]
    assert result.result == {"out": "Final answer."}


async def test_json_response_format_is_requested_and_parsed(fake_openai: FakeOpenAIServer) -> None:
    fake_openai.enqueue_text('{"score": 7, "ok": true}')
    result = await run_workflow(_agent_workflow(response_format="json"), llm=_model(fake_openai))
    assert result.status == "completed", result.error
    assert result.result == {"out": {"score": 7, "ok": True}}
    assert fake_openai.requests[0]["response_format"] == {"type": "json_object"}


async def test_invalid_json_reply_fails_the_node_clearly(fake_openai: FakeOpenAIServer) -> None:
    fake_openai.enqueue_text("not json at all")
    result = await run_workflow(_agent_workflow(response_format="json"), llm=_model(fake_openai))
    assert result.status == "failed" and result.node_id == "agent"
    assert "node 'agent'" in result.error and "JSON" in result.error


async def test_rate_limit_then_success_completes(fake_openai: FakeOpenAIServer) -> None:
    fake_openai.enqueue_error(429)
    fake_openai.enqueue_text("ok")
    result = await run_workflow(_agent_workflow(), llm=_model(fake_openai))
    assert result.status == "completed", result.error
    assert len(fake_openai.requests) == 2


async def test_bad_key_fails_the_run_without_leaking_it(fake_openai: FakeOpenAIServer) -> None:
    fake_openai.enqueue_error(401)
    result = await run_workflow(_agent_workflow(), llm=_model(fake_openai))
    assert result.status == "failed"
    assert "401" in result.error and "OPENAI_API_KEY" in result.error
    assert "sk-test-secret" not in json.dumps([e.to_dict() for e in result.events])


async def test_environment_selects_the_endpoint(fake_openai: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch) -> None:
    assert isinstance(default_chat_model(), OfflineChatModel)
    monkeypatch.setenv("OPENAI_BASE_URL", fake_openai.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env-key")
    assert isinstance(default_chat_model(), OpenAIChatModel)
    fake_openai.enqueue_text("from the endpoint")
    workflow = _agent_workflow()
    del workflow["settings"]
    monkeypatch.setenv("OPENAI_MODEL", "env-model")
    result = await run_workflow(workflow)
    assert result.result == {"out": "from the endpoint"}
    assert fake_openai.requests[0]["model"] == "env-model"
    assert fake_openai.authorizations[0] == "Bearer sk-env-key"
    assert _of(result, "llm.completed")[0].data["offline"] is False


async def test_offline_model_marks_its_events_not_its_output() -> None:
    result = await run_workflow(_agent_workflow(), llm=OfflineChatModel(token_delay_s=0))
    assert result.status == "completed"
    completed = _of(result, "llm.completed")[0]
    assert completed.data["model"] == "offline" and completed.data["offline"] is True
    assert "offline" not in result.result["out"].lower().replace("offline answer", "")
    assert "".join(e.data["delta"] for e in _of(result, "llm.token")) == result.result["out"]


async def test_map_of_agents_runs_items_concurrently(fake_openai: FakeOpenAIServer) -> None:
    workflow = load_workflow(
        {
            "format": "workflow/v1",
            "name": "map agents",
            "nodes": [
                {"id": "start", "type": "input"},
                {
                    "id": "each",
                    "type": "map",
                    "config": {
                        "items": "['a', 'b', 'c']",
                        "concurrency": 3,
                        "node": {"type": "agent", "config": {"prompt": "letter {{ item }} at {{ index }}"}},
                    },
                },
            ],
            "edges": [{"source": "start", "target": "each"}],
        }
    )
    result = await run_workflow(workflow, llm=_model(fake_openai))
    assert result.status == "completed", result.error
    prompts = sorted(r["messages"][-1]["content"] for r in fake_openai.requests)
    assert prompts == ["letter a at 0", "letter b at 1", "letter c at 2"]
    outputs = [e for e in result.events if e.type == "node.completed" and e.node_id == "each"][0].data["output"]
    assert outputs == ["echo: letter a at 0", "echo: letter b at 1", "echo: letter c at 2"]  # the fake echoes
    assert {e.data["index"] for e in _of(result, "llm.token")} == {0, 1, 2}


# ------------------------------------------------------------ cut-off answers, estimated counts, max_tokens

CUT_OFFS = {
    "no finish_reason, no [DONE]": {"finish": False, "done": False},
    "[DONE] but no finish_reason": {"finish": False},
    "connection closed mid-stream": {"break_after": 2},
}


@pytest.mark.parametrize("cut", list(CUT_OFFS.values()), ids=list(CUT_OFFS))
async def test_an_answer_cut_off_every_time_fails_the_node_saying_so(fake_openai: FakeOpenAIServer, cut: dict) -> None:
    for _ in range(4):
        fake_openai.enqueue(TextReply("Paris has about two million", **cut))
    result = await run_workflow(_agent_workflow(), llm=_model(fake_openai))
    assert result.status == "failed" and result.node_id == "agent"
    assert "cut the answer off 4 times" in (result.error or "")
    assert "--interrupt_requests False" in (result.error or "")
    assert _of(result, "node.completed") == [n for n in _of(result, "node.completed") if n.node_id == "start"]
    failed = [e for e in _of(result, "llm.completed") if e.data.get("failed")]
    assert len(failed) == 4 and [e.data["retrying"] for e in failed] == [True, True, True, False]
    assert all(e.data["estimated"] is True and "cut the answer off" in e.data["error"] for e in failed)
    usage = Usage.of(result.events)
    assert usage.failed_tokens == usage.prompt_tokens + usage.completion_tokens > 0


@pytest.mark.parametrize("cut", list(CUT_OFFS.values()), ids=list(CUT_OFFS))
async def test_a_cut_off_answer_retried_completes_with_the_whole_text(fake_openai: FakeOpenAIServer, cut: dict) -> None:
    fake_openai.enqueue(TextReply("Paris has about", **cut), TextReply("Paris has about two million inhabitants."))
    result = await run_workflow(_agent_workflow(), llm=_model(fake_openai))
    assert result.status == "completed", result.error
    assert result.result == {"out": "Paris has about two million inhabitants."}
    completed = _of(result, "llm.completed")
    assert [bool(e.data.get("failed")) for e in completed] == [True, False]
    # the deltas after the failed try make the round's text afresh
    after = [e for e in _of(result, "llm.token") if e.seq > completed[0].seq]
    assert "".join(e.data["delta"] for e in after) == "Paris has about two million inhabitants."
    usage = Usage.of(result.events)
    failed = completed[0].data["prompt_tokens"] + completed[0].data["completion_tokens"]
    assert usage.failed_tokens == failed > 0
    assert usage.prompt_tokens + usage.completion_tokens > failed  # the totals hold both tries


async def test_a_node_retry_after_a_cut_off_counts_the_failed_attempts_tokens(fake_openai: FakeOpenAIServer) -> None:
    fake_openai.enqueue(TextReply("Paris has", finish=False), TextReply("Paris has about two million."))
    model = OpenAIChatModel(base_url=fake_openai.base_url, api_key="sk-test-secret", backoff_s=0.01, max_retries=0)
    wf = _agent_workflow()
    wf["nodes"][1]["retry"] = {"attempts": 2, "backoff_s": 0.01}
    result = await run_workflow(wf, llm=model)
    assert result.status == "completed", result.error
    completed = _of(result, "llm.completed")
    assert [(e.data["attempt"], bool(e.data.get("failed"))) for e in completed] == [(1, True), (2, False)]
    assert Usage.of(result.events).failed_tokens > 0


async def test_counts_are_marked_estimated_only_when_the_server_sends_none(fake_openai: FakeOpenAIServer) -> None:
    fake_openai.enqueue(TextReply("Counted by the server."), TextReply("Not counted by the server.", usage=False))
    first = await run_workflow(_agent_workflow(), llm=_model(fake_openai))
    second = await run_workflow(_agent_workflow(), llm=_model(fake_openai))
    assert [e.data["estimated"] for e in _of(first, "llm.completed")] == [False]
    assert [e.data["estimated"] for e in _of(second, "llm.completed")] == [True]
    assert not Usage.of(first.events).estimated and Usage.of(second.events).estimated


async def test_max_tokens_is_sent_to_the_server(fake_openai: FakeOpenAIServer) -> None:
    result = await run_workflow(_agent_workflow(max_tokens=32), llm=_model(fake_openai))
    assert result.status == "completed", result.error
    assert fake_openai.last_request["max_tokens"] == 32
    await run_workflow(_agent_workflow(), llm=_model(fake_openai))
    assert "max_tokens" not in fake_openai.last_request


async def test_the_offline_model_honours_max_tokens_and_its_counts_are_exact() -> None:
    result = await run_workflow(_agent_workflow(max_tokens=3), llm=OfflineChatModel(token_delay_s=0))
    assert result.status == "completed", result.error
    (done,) = _of(result, "llm.completed")
    assert done.data["completion_tokens"] == 3 and done.data["estimated"] is False
    assert len(str(result.result["out"]).split()) == 3
    (warning,) = [e for e in _of(result, "log") if e.node_id == "agent"]
    assert warning.data["message"] == "the model's answer reached the agent's max_tokens (3) and was cut there"


async def test_an_answer_stopped_by_the_length_limit_completes_with_a_warning(fake_openai: FakeOpenAIServer) -> None:
    fake_openai.enqueue(TextReply("Paris has about", finish="length"))
    result = await run_workflow(_agent_workflow(), llm=_model(fake_openai))
    assert result.status == "completed" and result.result == {"out": "Paris has about"}
    (warning,) = [e for e in _of(result, "log") if e.node_id == "agent"]
    assert warning.data["level"] == "warning" and "the model's length limit" in warning.data["message"]
    assert len(fake_openai.requests) == 1, "a length stop is a finished answer: not retried"
