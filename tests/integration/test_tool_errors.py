"""A tool that reports an error fails a ``tool`` node and is a marked error for an agent (issue 12 §3).

For every built-in tool, each way it can report an error (an exception in the
code, a non-zero exit, a timeout, a refusal) is run for real: the python tool
in its sandbox, file_reader on the disk, web_search against a closed port. A
``tool`` node fails with the error as ``node.failed``'s message, its
``retry`` is spent only on failures another try may fix (see FAILURES), and a
resumed run carries on once the cause is gone. An agent gets the error as its
tool message, marked ``status="error"``, and recovers; what the model received
is read off the local OpenAI-compatible server.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import tools
from engine import load_workflow, run_workflow
from engine.llm.openai_model import OpenAIChatModel
from engine.runtime import Runtime
from engine.untrusted import read_blocks
from tests.fake_openai import FakeOpenAIServer
from tools.builtin import python_exec

SLOW_TOOL = "toolerr_slow"


async def toolerr_slow(seconds: float) -> str:
    """Sleep, then answer."""
    await asyncio.sleep(seconds)
    return "slept"


def toolerr_down(what: str) -> str:
    """Fail the way a plugin whose backend is down does: any exception may pass on another try."""
    raise ConnectionError(f"the {what} backend is down")


def toolerr_refuses(what: str) -> str:
    """Refuse for good: a ToolError that says retrying cannot help."""
    raise tools.ToolError(f"{what} is not something this tool does", retryable=False)


# This module's runs use their own registry: the built-ins plus these plugin tools.
TOOLS = tools.default_registry().copy()
TOOLS.register(toolerr_slow, name=SLOW_TOOL, timeout_s=0.3)
TOOLS.register(toolerr_down)
TOOLS.register(toolerr_refuses)


@pytest.fixture(autouse=True)
def _short_python_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    """A 1-second wall clock for the python tool."""
    monkeypatch.setattr(python_exec, "DEFAULT_LIMITS", python_exec.Limits(wall_timeout_s=1.0))


# (id, tool, args, what node.failed's message must contain, whether the node's retry is spent on it)
# Retried: failures another try may fix (the code's own exception or exit, a timeout, a backend that is down,
# any plain exception of a plugin). Not retried: ones that fail the same way again (refused or unparsable
# code, a refused expression, a path outside the files root or not there, bad arguments, a final ToolError).
FAILURES: list[tuple[str, str, dict[str, Any], str, bool]] = [
    ("python-exception", "python", {"code": "x = 1\n1 / 0"},
     "ZeroDivisionError: division by zero (line 2 of the code)", True),
    ("python-statistics", "python", {"code": "import statistics\nstatistics.stdev([1])"},
     "StatisticsError: stdev requires at least two data points", True),
    ("python-nonzero-exit", "python", {"code": "raise SystemExit(3)"}, "SystemExit: 3 (exit status 3)", True),
    ("python-timeout", "python", {"code": "while True:\n    pass"}, "wall-clock limit", True),
    ("python-refusal", "python", {"code": "import os\nos.listdir('/')"}, "importing 'os'", False),
    ("python-syntax", "python", {"code": "1 +"}, "SyntaxError", False),
    ("calculator-exception", "calculator", {"expression": "1 / 0"}, "division by zero", False),
    ("calculator-refusal", "calculator", {"expression": "__import__('os')"}, "not allowed", False),
    ("file_reader-missing", "file_reader", {"path": "no_such_file.txt"}, "file not found: 'no_such_file.txt'", False),
    ("file_reader-refusal", "file_reader", {"path": "../../etc/passwd"}, "'..' is not allowed", False),
    ("web_search-unavailable", "web_search", {"query": "durable workflows"}, "search unavailable", True),
    ("plugin-timeout", SLOW_TOOL, {"seconds": 5}, "timed out after 0.3 s", True),
    ("plugin-exception", "toolerr_down", {"what": "inventory"}, "ConnectionError: the inventory backend is down", True),
    ("plugin-final-error", "toolerr_refuses", {"what": "juggling"}, "juggling is not something this tool does", False),
    ("bad-arguments", "calculator", {"expr": "1"}, "Invalid arguments for tool 'calculator'", False),
    ("unknown-tool", "toolerr_not_in_this_registry", {}, "Unknown tool 'toolerr_not_in_this_registry'", False),
]


def _tool_node_doc(tool: str, args: dict[str, Any], attempts: int = 1) -> dict[str, Any]:
    return {
        "format": "workflow/v1",
        "name": f"failing {tool}",
        "nodes": [
            {"id": "start", "type": "input"},
            {"id": "call", "type": "tool", "config": {"tool": tool, "args": args},
             "retry": {"attempts": attempts, "backoff_s": 0}},
            {"id": "after", "type": "transform", "config": {"template": "ran after {{ nodes.call.output }}"}},
        ],
        "edges": [{"source": "start", "target": "call"}, {"source": "call", "target": "after"}],
    }


def _of(result: Any, kind: str, node: str | None = None) -> list[Any]:
    return [e for e in result.events if e.type == kind and (node is None or e.node_id == node)]


@pytest.mark.parametrize(
    ("tool", "args", "expected", "retried"), [c[1:] for c in FAILURES], ids=[c[0] for c in FAILURES]
)
async def test_a_failing_call_fails_its_tool_node_and_is_retried_only_when_retrying_can_help(
    tool: str, args: dict[str, Any], expected: str, retried: bool
) -> None:
    doc = _tool_node_doc(tool, args, attempts=3)
    if tool not in TOOLS:  # a tool the registry lacks fails at load time: run a loaded copy through another registry
        result = await run_workflow(load_workflow(doc, tools=_with(tool)), tools=TOOLS)
    else:
        result = await run_workflow(doc, tools=TOOLS)
    assert result.status == "failed" and result.node_id == "call"
    (failed,) = [e for e in _of(result, "node.failed", "call") if not e.data.get("cancelled")]
    assert expected in failed.data["error"], failed.data
    assert failed.data["error"].startswith(f"tool '{tool}' failed: ")
    attempts = 3 if retried else 1
    assert failed.data["attempts"] == attempts
    assert len(_of(result, "tool.called", "call")) == attempts  # each try called the tool again
    returned = _of(result, "tool.result", "call")
    assert len(returned) == attempts and all(expected in r.data["error"] and "result" not in r.data for r in returned)
    warnings = [e.data["message"] for e in _of(result, "log", "call")]
    if retried:
        assert len(warnings) == 2 and all("retrying in 0 s" in w for w in warnings), warnings
    else:  # the budget is left unspent, and the log says why
        (warning,) = warnings
        assert warning.startswith("attempt 1 of 3 failed: ") and warning.endswith("not retried: it would fail again")
    assert not _of(result, "node.started", "after")  # nothing downstream ran on a failure
    assert expected in (result.error or "")


def _with(name: str) -> tools.ToolRegistry:
    """A registry that has a tool called ``name`` (so a workflow naming it loads)."""

    def stand_in() -> str:
        """Never called: the run uses another registry."""
        return "unused"

    registry = tools.ToolRegistry()
    registry.register(stand_in, name=name)
    return registry


async def test_python_failure_keeps_output_and_traceback_as_detail() -> None:
    result = await run_workflow(_tool_node_doc("python", {"code": "print('half way')\n1 / 0"}), tools=TOOLS)
    (returned,) = _of(result, "tool.result", "call")
    assert returned.data["error"] == "ZeroDivisionError: division by zero (line 2 of the code)"
    assert "half way" in returned.data["detail"] and "Traceback" in returned.data["detail"]


async def test_python_success_is_still_a_success() -> None:
    result = await run_workflow(_tool_node_doc("python", {"code": "print('hi')\nraise SystemExit(0)"}), tools=TOOLS)
    assert result.status == "completed", result.error
    (returned,) = _of(result, "tool.result", "call")
    assert "error" not in returned.data and returned.data["result"]["exit"] == 0


# ----------------------------------------------------------------------------- resume


@pytest.fixture
def runtime(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Runtime]:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    rt = Runtime(database_url=f"sqlite:///{tmp_path / 'studio.db'}", tools=TOOLS)
    yield rt
    rt.shutdown()


def _resumable_doc(tool: str, args: dict[str, Any]) -> dict[str, Any]:
    doc = _tool_node_doc(tool, args)
    first = {"id": "first", "type": "tool", "config": {"tool": "calculator", "args": {"expression": "1 + 1"}}}
    doc["nodes"].insert(1, first)
    doc["edges"] = [{"source": "start", "target": "first"}, {"source": "first", "target": "call"},
                    {"source": "call", "target": "after"}]
    return doc


def test_a_run_failed_by_a_file_reader_error_resumes_once_the_file_exists(runtime: Runtime) -> None:
    run_id = runtime.submit(_resumable_doc("file_reader", {"path": "late.txt"}))
    info = runtime.wait(run_id, timeout=30)
    assert info.status == "failed" and "file not found: 'late.txt'" in (info.error or "")
    files = Path(os.environ["DATA_DIR"]) / "files"
    files.mkdir(parents=True, exist_ok=True)
    (files / "late.txt").write_text("here now", encoding="utf-8")
    runtime.resume(run_id)
    info = runtime.wait(run_id, timeout=30)
    assert info.status == "completed", info.error
    events = runtime.events_since(run_id)
    assert [e.data["tool"] for e in events if e.type == "tool.called"] == ["calculator", "file_reader", "file_reader"]
    outputs = [e.data["output"] for e in events if e.type == "node.completed" and e.node_id == "call"]
    assert outputs[-1]["content"] == "here now"


def test_a_run_failed_by_python_code_that_raised_resumes(runtime: Runtime) -> None:
    not_before = time.time() + 1.5  # the code raises until then: a cause that goes away by itself
    code = f"import time\nif time.time() < {not_before}:\n    raise RuntimeError('too early')\n'on time'"
    run_id = runtime.submit(_resumable_doc("python", {"code": code}))
    info = runtime.wait(run_id, timeout=30)
    assert info.status == "failed" and "RuntimeError: too early (line 3 of the code)" in (info.error or "")
    time.sleep(max(0.0, not_before - time.time()) + 0.2)
    runtime.resume(run_id)
    info = runtime.wait(run_id, timeout=30)
    assert info.status == "completed", info.error
    events = runtime.events_since(run_id)
    assert [e.data["tool"] for e in events if e.type == "tool.called"] == ["calculator", "python", "python"]


# ----------------------------------------------------------------------------- agents


def _agent_doc(tools_: list[str]) -> dict[str, Any]:
    return {
        "format": "workflow/v1",
        "name": "recovering agent",
        "settings": {"model": "test-model"},
        "nodes": [
            {"id": "start", "type": "input"},
            {"id": "agent", "type": "agent", "config": {"prompt": "Do the thing.", "tools": tools_, "max_steps": 3}},
        ],
        "edges": [{"source": "start", "target": "agent"}],
    }


# (id, tool, failing args, error text the model must see, args that work (None: answer without the tool))
AGENT_CASES: list[tuple[str, str, dict[str, Any], str, dict[str, Any] | None]] = [
    ("python-exception", "python", {"code": "1 / 0"}, "ZeroDivisionError: division by zero", {"code": "6 * 7"}),
    ("python-nonzero-exit", "python", {"code": "raise SystemExit(2)"}, "SystemExit: 2", {"code": "6 * 7"}),
    ("python-timeout", "python", {"code": "while True:\n    pass"}, "wall-clock limit", {"code": "6 * 7"}),
    ("python-refusal", "python", {"code": "import subprocess"}, "importing 'subprocess'", {"code": "6 * 7"}),
    ("calculator", "calculator", {"expression": "1 / 0"}, "division by zero", {"expression": "6 * 7"}),
    ("file_reader", "file_reader", {"path": "nope.md"}, "file not found", {"path": "meeting_notes.md"}),
    ("web_search", "web_search", {"query": "durable workflows"}, "search unavailable", None),
    ("plugin-timeout", SLOW_TOOL, {"seconds": 5}, "timed out after 0.3 s", {"seconds": 0}),
]


@pytest.mark.parametrize(
    ("tool", "bad", "error", "good"), [c[1:] for c in AGENT_CASES], ids=[c[0] for c in AGENT_CASES]
)
async def test_an_agent_sees_the_error_marked_as_such_and_recovers(
    fake_openai: FakeOpenAIServer, tool: str, bad: dict[str, Any], error: str, good: dict[str, Any] | None
) -> None:
    fake_openai.enqueue_tool_calls([(tool, bad)])
    if good is not None:
        fake_openai.enqueue_tool_calls([(tool, good)])
    fake_openai.enqueue_text("Recovered.")
    model = OpenAIChatModel(base_url=fake_openai.base_url, api_key="k")
    result = await run_workflow(_agent_doc([tool]), llm=model, tools=TOOLS)
    assert result.status == "completed", result.error
    assert [e.data["output"] for e in _of(result, "node.completed", "agent")] == ["Recovered."]

    failed_call = [m for m in fake_openai.requests[1]["messages"] if m["role"] == "tool"]
    assert len(failed_call) == 1
    text = failed_call[0]["content"]
    _, (block,) = read_blocks(text)
    assert block.status == "error" and block.source == f"tool:{tool}" and error in block.content
    assert text.startswith(f"The call to the tool '{tool}' FAILED")

    returned = _of(result, "tool.result", "agent")
    assert error in returned[0].data["error"]
    if good is not None:
        later = [m for m in fake_openai.requests[2]["messages"] if m["role"] == "tool"]
        _, (ok_block,) = read_blocks(later[-1]["content"])
        assert ok_block.status == "ok" and "error" not in returned[1].data
    assert not any(e.type == "node.failed" for e in result.events)
