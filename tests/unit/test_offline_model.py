"""The offline model: deterministic, streamed, tool-calling, JSON-capable, fast."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from engine.errors import ConfigInvalid
from engine.llm.base import ChatModel, ChatReply, ChatRequest, ToolSchema
from engine.llm.offline_model import DEFAULT_TOKEN_DELAY_S, OfflineChatModel
from engine.untrusted import memory_block, tool_block

from ..timing import best_time_async

CALCULATOR = ToolSchema(
    name="calculator",
    description="Evaluate an arithmetic expression.",
    parameters={
        "type": "object",
        "properties": {"expression": {"type": "string", "description": "e.g. (1 + 2) * 3"}},
        "required": ["expression"],
    },
)
SEARCH = ToolSchema(
    name="search",
    description="Search the notes.",
    parameters={
        "type": "object",
        "properties": {
            "query": {"title": "Query", "type": "string"},
            "max_results": {"title": "Max Results", "type": "integer", "default": 5, "minimum": 1, "maximum": 10},
        },
        "required": ["query"],
    },
)
READ_FILE = ToolSchema(
    name="read_file",
    description="Read a file.",
    parameters={"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]},
)
RUN_PYTHON = ToolSchema(
    name="run_python",
    description="Run Python code.",
    parameters={
        "type": "object",
        "properties": {"code": {"type": "string"}, "timeout": {"type": "number", "default": 5}},
        "required": ["code"],
    },
)


def user(text: str) -> dict[str, Any]:
    return {"role": "user", "content": text}


def system(text: str) -> dict[str, Any]:
    return {"role": "system", "content": text}


def calculator_round(expression: str, result: str, call_id: str = "call_0_calculator") -> list[dict[str, Any]]:
    """The assistant's calculator call and the tool's answer."""
    return [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": call_id,
                    "type": "function",
                    "function": {"name": "calculator", "arguments": json.dumps({"expression": expression})},
                }
            ],
        },
        {"role": "tool", "tool_call_id": call_id, "content": result},
    ]


async def ask(
    messages: list[dict[str, Any]],
    *,
    tools: tuple[ToolSchema, ...] = (),
    response_format: str = "text",
    model: OfflineChatModel | None = None,
) -> tuple[ChatReply, list[str]]:
    deltas: list[str] = []
    request = ChatRequest(
        messages=messages, model="whatever", tools=tools, response_format=response_format  # type: ignore[arg-type]
    )
    reply = await (model or OfflineChatModel(token_delay_s=0)).chat(request, deltas.append)
    return reply, deltas


# ---------------------------------------------------------------- protocol, determinism, streaming

SAMPLE_REQUESTS = [
    pytest.param([user("Explain how the engine schedules nodes.")], (), "text", id="text"),
    pytest.param([user("What is (12 + 30) * 2?")], (CALCULATOR, SEARCH), "text", id="tools"),
    pytest.param([user('Rate it. Reply as {"score": <int>, "why": "<string>"}')], (), "json", id="json"),
    pytest.param([system("<memory>\nMy name is Alice\n</memory>"), user("What's my name?")], (), "text", id="memory"),
    pytest.param([user("What is 2 + 2?"), *calculator_round("2 + 2", "4")], (CALCULATOR,), "text", id="tool-result"),
]


def test_implements_the_chat_model_protocol() -> None:
    model = OfflineChatModel()
    assert isinstance(model, ChatModel)
    assert model.name == "offline"


@pytest.mark.parametrize(("messages", "tools", "response_format"), SAMPLE_REQUESTS)
async def test_same_request_same_reply(messages, tools, response_format) -> None:
    first, first_deltas = await ask(messages, tools=tools, response_format=response_format)
    second, second_deltas = await ask(messages, tools=tools, response_format=response_format)
    assert first == second
    assert first_deltas == second_deltas


@pytest.mark.parametrize(
    ("messages", "response_format"),
    [
        ([user("Explain how the engine schedules nodes.")], "text"),
        ([user("Summarize: The engine runs nodes. It waits for inputs. Then it stops.")], "text"),
        ([user("Give me a plan for the week.")], "json"),
        ([user('Classify "great film". Answer {"label": "<positive|negative>", "confidence": <number>}')], "json"),
    ],
)
async def test_deltas_concatenate_to_the_content(messages, response_format) -> None:
    reply, deltas = await ask(messages, response_format=response_format)
    assert reply.content
    assert "".join(deltas) == reply.content
    assert len(deltas) >= 3
    assert all(delta.strip() for delta in deltas)  # word-sized, never bare whitespace
    assert reply.model == "offline"
    assert reply.tool_calls == ()
    assert reply.completion_tokens == len(deltas)
    assert reply.prompt_tokens > 0


async def test_usage_counts_prompt_words() -> None:
    reply, _ = await ask([system("You are terse."), user("one two three four five six seven eight nine ten")])
    assert 10 <= reply.prompt_tokens <= 16


# ---------------------------------------------------------------- tool calls


@pytest.mark.parametrize(
    ("prompt", "expression"),
    [
        ("What is (12 + 30) * 2?", "(12 + 30) * 2"),
        ("what's sqrt(16)?", "sqrt(16)"),
        ("Please calculate 3.5 / 0.5.", "3.5 / 0.5"),
        ("Compute 7 times 6 for me", "7 * 6"),
        ("How much is 1,200 + 300, roughly?", "1200 + 300"),
        ("(what is 2+3)", "2+3"),
        ("Tell me a story about cats", None),
        ("I have 3 apples and 4 pears", None),
        ("The meeting is on 2024-05-01.", None),
    ],
)
async def test_calculator_gets_the_expression(prompt: str, expression: str | None) -> None:
    reply, deltas = await ask([user(prompt)], tools=(CALCULATOR,))
    if expression is None:
        assert reply.tool_calls == ()
        assert reply.content and "".join(deltas) == reply.content
        return
    assert reply.content == ""
    assert deltas == []
    (call,) = reply.tool_calls
    assert call.id == "call_0_calculator"
    assert call.name == "calculator"
    assert json.loads(call.arguments) == {"expression": expression}
    assert reply.completion_tokens > 0


@pytest.mark.parametrize(
    ("prompt", "query", "max_results"),
    [
        ("Find my notes about the offline model", "Find my notes about the offline model", None),
        ('Search for "vector memory" please', "vector memory", None),
        ("Show the top 3 results about  caching\n\n", "Show the top 3 results about caching", 3),
        ("List 50 notes on testing", "List 50 notes on testing", None),  # 50 is out of bounds
    ],
)
async def test_search_arguments_are_schema_valid(prompt: str, query: str, max_results: int | None) -> None:
    reply, _ = await ask([user(prompt)], tools=(SEARCH,))
    (call,) = reply.tool_calls
    assert call.id == "call_0_search"
    arguments = json.loads(call.arguments)
    # Schema-valid by hand (jsonschema is not a test dependency): known keys, right types, in bounds.
    assert set(arguments) <= {"query", "max_results"} and isinstance(arguments["query"], str)
    if "max_results" in arguments:
        assert type(arguments["max_results"]) is int and 1 <= arguments["max_results"] <= 10
    assert arguments["query"] == query
    assert arguments.get("max_results") == max_results


async def test_long_query_is_capped() -> None:
    reply, _ = await ask([user("look up " + "word " * 500)], tools=(SEARCH,))
    (call,) = reply.tool_calls
    assert 0 < len(json.loads(call.arguments)["query"]) <= 200


@pytest.mark.parametrize(
    ("tool", "prompt", "arguments"),
    [
        (READ_FILE, "Open notes/today.md and list the tasks.", {"path": "notes/today.md"}),
        (READ_FILE, "Read report.txt.", {"path": "report.txt"}),
        (READ_FILE, "Read my notes, e.g. the recent ones", None),
        (READ_FILE, "See https://example.com/page for details", None),
        (RUN_PYTHON, "Run this:\n```python\nprint(6 * 7)\n```", {"code": "print(6 * 7)"}),
        (RUN_PYTHON, "Run some code for me", None),
    ],
)
async def test_path_and_code_arguments(tool: ToolSchema, prompt: str, arguments: dict[str, Any] | None) -> None:
    reply, _ = await ask([user(prompt)], tools=(tool,))
    if arguments is None:
        assert reply.tool_calls == ()
        assert reply.content.startswith("Offline answer:")
    else:
        (call,) = reply.tool_calls
        assert json.loads(call.arguments) == arguments


@pytest.mark.parametrize(
    ("schema", "prompt", "expected"),
    [
        ({"n": {"type": "integer"}}, "roll 4 dice", {"n": 4}),
        ({"n": {"type": "integer", "default": 7}}, "roll dice", {"n": 7}),
        ({"n": {"type": "integer", "minimum": 10}}, "roll dice", {"n": 10}),
        ({"x": {"type": "number"}}, "scale by 2.5", {"x": 2.5}),
        ({"flag": {"type": "boolean"}}, "toggle", {"flag": False}),
        ({"flag": {"type": "boolean", "default": True}}, "toggle", {"flag": True}),
        ({"unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}}, "weather", {"unit": "celsius"}),
        ({"tags": {"type": "array", "items": {"type": "string"}}}, "tag it", {"tags": []}),
        ({"opts": {"type": "object"}}, "configure", {"opts": {}}),
        ({"q": {"anyOf": [{"type": "string"}, {"type": "null"}]}}, "weather in Paris", {"q": "weather in Paris"}),
    ],
)
async def test_required_arguments_by_type(schema: dict[str, Any], prompt: str, expected: dict[str, Any]) -> None:
    tool = ToolSchema("t", "a tool", {"type": "object", "properties": schema, "required": list(schema)})
    reply, _ = await ask([user(prompt)], tools=(tool,))
    (call,) = reply.tool_calls
    assert json.loads(call.arguments) == expected


async def test_optional_arguments_only_when_derived() -> None:
    tool = ToolSchema(
        "t",
        "a tool",
        {
            "type": "object",
            "properties": {
                "query": {"type": "string"},
                "language": {"type": "string", "default": "en"},
                "verbose": {"type": "boolean"},
                "limit": {"type": "integer", "maximum": 100},
            },
            "required": ["query"],
        },
    )
    reply, _ = await ask([user("news about 2 rivers")], tools=(tool,))
    (call,) = reply.tool_calls
    assert json.loads(call.arguments) == {"query": "news about 2 rivers", "limit": 2}


async def test_each_usable_tool_is_called_once_with_deterministic_ids() -> None:
    reply, deltas = await ask([user("What is (12 + 30) * 2?")], tools=(READ_FILE, CALCULATOR, SEARCH))
    assert deltas == []
    ids = [(c.id, c.name) for c in reply.tool_calls]
    assert ids == [("call_0_calculator", "calculator"), ("call_1_search", "search")]
    assert reply.as_message()["tool_calls"][0]["function"]["name"] == "calculator"


async def test_no_tool_calls_once_results_are_in() -> None:
    messages = [user("What is (12 + 30) * 2?"), *calculator_round("(12 + 30) * 2", "84")]
    reply, deltas = await ask(messages, tools=(CALCULATOR,))
    assert reply.tool_calls == ()
    assert "".join(deltas) == reply.content


async def test_a_new_user_message_calls_tools_again() -> None:
    messages = [user("What is 2 + 2?"), *calculator_round("2 + 2", "4"), {"role": "assistant", "content": "4"}]
    reply, _ = await ask([*messages, user("And 3 * 3?")], tools=(CALCULATOR,))
    assert json.loads(reply.tool_calls[0].arguments) == {"expression": "3 * 3"}


# ---------------------------------------------------------------- answers that use tool results


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        ("84", "Using calculator: (12 + 30) * 2 = 84."),
        ('{"result": 84}', "Using calculator: (12 + 30) * 2 = 84."),
        ("84.0", "Using calculator: (12 + 30) * 2 = 84.0."),
    ],
)
async def test_answer_uses_the_tool_result(result: str, expected: str) -> None:
    messages = [user("What is (12 + 30) * 2?"), *calculator_round("(12 + 30) * 2", result)]
    reply, _ = await ask(messages, tools=(CALCULATOR,))
    assert reply.content.startswith(expected)


async def test_answer_uses_a_search_result() -> None:
    messages = [
        user("Find notes on caching"),
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_0_search",
                    "type": "function",
                    "function": {"name": "search", "arguments": '{"query": "caching"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_0_search", "content": '["caching.md: use an LRU", "perf.md"]'},
    ]
    reply, _ = await ask(messages, tools=(SEARCH,))
    assert reply.content.startswith("Using search:")
    assert "caching.md: use an LRU" in reply.content


@pytest.mark.parametrize(
    "result",
    [
        "Error: division by zero",
        '{"error": "division by zero"}',
        tool_block("calculator", "division by zero", ok=False),  # what the agent node sends
    ],
)
async def test_error_result_is_reported_as_an_error(result: str) -> None:
    messages = [user("What is 1 / 0?"), *calculator_round("1 / 0", result)]
    reply, _ = await ask(messages, tools=(CALCULATOR,))
    assert "calculator tool returned an error: division by zero" in reply.content
    assert "=" not in reply.content


async def test_a_wrapped_result_is_read_as_data() -> None:
    messages = [user("What is 6 * 7?"), *calculator_round("6 * 7", tool_block("calculator", "42", ok=True))]
    reply, _ = await ask(messages, tools=(CALCULATOR,))
    assert reply.content.startswith("Using calculator: 6 * 7 = 42.")
    assert "untrusted" not in reply.content.lower()


# ---------------------------------------------------------------- text answers


@pytest.mark.parametrize(
    ("messages", "expected", "absent"),
    [
        (
            [user("Summarize: The engine runs nodes in order. It retries failures. Logs go to disk. Done.")],
            "Summary: The engine runs nodes in order. It retries failures.",
            "Logs",
        ),
        (
            [user("Summarise the following article.\nVersion 3.5 shipped today. Users like it. More later.")],
            "Summary: Version 3.5 shipped today. Users like it.",
            "More later",
        ),
        (
            [system("Summarize the user's text in one line."), user("Cats sleep a lot. Dogs bark. Birds sing.")],
            "Summary: Cats sleep a lot. Dogs bark.",
            "Birds",
        ),
        (
            [user("Critique this draft: Our product is great and everyone should buy it today.")],
            'Critique: the text opens with "Our product is great and everyone should…"',
            None,
        ),
        (
            [user("Revise the draft: our plan is good.  it ships soon.")],
            "Revised: Our plan is good. It ships soon.",
            None,
        ),
        ([user("What is the capital of France?")], "Offline answer: What is the capital of France.", None),
        (
            [system("You are a pirate."), user("How do I tie a knot?")],
            "Offline answer (as a pirate): How do I tie a knot.",
            None,
        ),
    ],
)
async def test_text_answers(messages, expected: str, absent: str | None) -> None:
    reply, _ = await ask(messages)
    assert reply.content.startswith(expected)
    if absent:
        assert absent not in reply.content
    assert len(reply.content.split()) <= 80


async def test_default_answer_is_condensed() -> None:
    reply, _ = await ask([user("please " * 300)])
    assert len(reply.content.split()) <= 35


# ---------------------------------------------------------------- memory


MEMORY = "<memory>\n- My name is Alice\n- I like green tea\n- My dog is called Rex\n</memory>"


@pytest.mark.parametrize(
    ("messages", "fact"),
    [
        ([system(MEMORY), user("What's my name?")], "My name is Alice"),
        ([system(MEMORY), user("Which tea do I like?")], "I like green tea"),
        ([system("Be brief."), user(MEMORY + "\nWhat is my dog called?")], "My dog is called Rex"),
        # what the agent node sends: the memories as an untrusted data block opening the user message
        (
            [system("Be brief."), user(memory_block("bob", MEMORY) + "\n\nWhat is my dog called?")],
            "My dog is called Rex",
        ),
    ],
)
async def test_memory_block_is_used(messages, fact: str) -> None:
    reply, _ = await ask(messages)
    assert reply.content.startswith(f"From memory: {fact}.")
    assert "<memory>" not in reply.content


async def test_a_memory_data_block_is_not_read_as_the_request() -> None:
    reply, _ = await ask([user(memory_block("bob", MEMORY) + "\n\nHello there")])
    assert reply.content.endswith("Offline answer: Hello there.")
    assert "untrusted" not in reply.content.lower() and "Memories saved" not in reply.content


async def test_memory_in_json_mode() -> None:
    reply, _ = await ask([system(MEMORY), user("What's my name?")], response_format="json")
    assert "Alice" in json.loads(reply.content)["answer"]


# ---------------------------------------------------------------- JSON mode


@pytest.mark.parametrize(
    ("prompt", "check"),
    [
        (
            'Score the essay. Reply as JSON: {"score": <int>, "reason": "<string>", "passed": <bool>}',
            {"score": int, "reason": str, "passed": bool},
        ),
        (
            'Classify "I love it". Answer {"sentiment": "<positive|negative|neutral>", "confidence": <number>}',
            {"sentiment": str, "confidence": float},
        ),
        ('Rate it. Format: {"rating": <1-10>, "tags": [...], ...}', {"rating": int, "tags": list}),
        (
            'Return {"title": "Weekly report", "count": 3, "done": false, "meta": {"v": 1}}',
            {"title": str, "count": int, "done": bool, "meta": dict},
        ),
    ],
)
async def test_json_mode_follows_the_example(prompt: str, check: dict[str, type]) -> None:
    reply, deltas = await ask([user(prompt)], response_format="json")
    assert "".join(deltas) == reply.content and len(deltas) >= 2
    value = json.loads(reply.content)
    assert isinstance(value, dict)
    for key, kind in check.items():
        assert type(value[key]) is kind, key
    if "rating" in value:
        assert 1 <= value["rating"] <= 10
    if "sentiment" in value:
        assert value["sentiment"] in {"positive", "negative", "neutral"}
        assert 0 <= value["confidence"] <= 1


async def test_json_mode_keeps_concrete_values_and_keys() -> None:
    example = {"title": "Weekly report", "count": 3, "done": False, "meta": {"v": 1}}
    reply, _ = await ask([user(f"Return {json.dumps(example)}")], response_format="json")
    assert json.loads(reply.content) == example


async def test_json_mode_reads_the_example_from_the_system_prompt() -> None:
    reply, _ = await ask(
        [system('Answer only with {"verdict": "<string>", "score": <int>}'), user("Is the plan sound?")],
        response_format="json",
    )
    value = json.loads(reply.content)
    assert set(value) == {"verdict", "score"}
    assert isinstance(value["verdict"], str) and isinstance(value["score"], int)


@pytest.mark.parametrize(
    "prompt", ["Give me three ideas for a talk.", "Summarize: Alpha is first. Beta is second.", ""]
)
async def test_json_mode_without_example(prompt: str) -> None:
    reply, _ = await ask([user(prompt)], response_format="json")
    value = json.loads(reply.content)
    assert list(value) == ["answer"]
    assert isinstance(value["answer"], str) and value["answer"]


# ---------------------------------------------------------------- speed and pacing


@pytest.mark.parametrize(
    ("tools", "response_format"),
    [((), "text"), ((), "json"), ((CALCULATOR, SEARCH, READ_FILE, RUN_PYTHON), "text")],
)
@pytest.mark.parametrize(
    "content",
    [
        "Summarize: " + 'The engine is fast. (1 + 2) notes/a.md {"a": <int>} ' * 25_000,
        "x" * 1_000_000,
        '{"' * 500_000,
        "(" * 1_000_000,
        "<memory>\n" + "a b c\n" * 200_000,
    ],
    ids=["prose", "one-word", "braces", "parens", "open-memory"],
)
async def test_huge_prompt_is_fast(content: str, tools, response_format: str) -> None:
    messages = [system(content), user(content)]
    elapsed, (reply, _) = await best_time_async(lambda: ask(messages, tools=tools, response_format=response_format))
    assert elapsed < 0.1, f"{elapsed * 1000:.0f} ms"
    assert reply.content or reply.tool_calls
    assert len(reply.content) < 2_000


def test_token_delay_default_and_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OFFLINE_TOKEN_DELAY_S", "0.25")
    assert OfflineChatModel().token_delay_s == 0.25
    assert OfflineChatModel(token_delay_s=0.5).token_delay_s == 0.5
    monkeypatch.delenv("OFFLINE_TOKEN_DELAY_S")
    assert OfflineChatModel().token_delay_s == DEFAULT_TOKEN_DELAY_S == 0.005
    monkeypatch.setenv("OFFLINE_TOKEN_DELAY_S", "not a number")  # refused with one line naming it, not ignored
    with pytest.raises(ConfigInvalid, match="OFFLINE_TOKEN_DELAY_S='not a number' must be a number of seconds"):
        OfflineChatModel()


async def test_env_delay_paces_the_stream(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OFFLINE_TOKEN_DELAY_S", "0.01")
    start = time.perf_counter()
    reply, deltas = await ask([user("one two three four five six")], model=OfflineChatModel())
    elapsed = time.perf_counter() - start
    assert len(deltas) >= 6
    assert elapsed >= 0.01 * (len(deltas) - 1) * 0.9
