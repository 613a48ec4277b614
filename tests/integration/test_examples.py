"""Every example workflow runs offline, and shows the feature it exists for."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from engine import load_workflow, run_workflow

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _events(result: Any, kind: str, node: str | None = None) -> list[Any]:
    return [e for e in result.events if e.type == kind and (node is None or e.node_id == node)]


def test_there_are_at_least_five_examples() -> None:
    assert len(list(EXAMPLES.glob("*.json"))) >= 5


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.json")), ids=lambda p: p.stem)
async def test_example_runs_offline(path: Path) -> None:
    workflow = load_workflow(path)
    result = await run_workflow(workflow)
    if any(node.type == "approval" for node in workflow.nodes):  # it waits for a person (tests/unit/test_approval.py)
        assert result.status == "waiting", result.error
        assert result.events[-1].type == "run.waiting"
        return
    assert result.status == "completed", result.error
    assert result.result
    assert result.events[-1].type == "run.completed"


async def test_research_assistant_runs_its_researchers_in_parallel() -> None:
    result = await run_workflow(load_workflow(EXAMPLES / "research_assistant.json"))
    order = [(e.type, e.node_id) for e in result.events if e.type in ("node.started", "node.completed")]
    assert order.index(("node.started", "cons")) < order.index(("node.completed", "pros"))
    assert set(result.result["report"]) == {"question", "for", "against", "summary"}


@pytest.mark.parametrize(
    ("severity", "route", "ran", "skipped"), [(5, "urgent", "escalate", "reply"), (2, "normal", "reply", "escalate")]
)
async def test_triage_takes_one_branch_and_merges(severity: int, route: str, ran: str, skipped: str) -> None:
    result = await run_workflow(load_workflow(EXAMPLES / "triage_branch.json"), {"severity": severity})
    assert result.result["result"]["route"] == route
    assert _events(result, "node.completed", ran) and _events(result, "node.skipped", skipped)
    assert result.result["result"]["action"]


async def test_write_critique_loop_iterates_and_stops() -> None:
    result = await run_workflow(load_workflow(EXAMPLES / "write_critique_loop.json"), {"min_score": 11})
    iterations = [e.data["iteration"] for e in _events(result, "node.started", "writer")]
    assert iterations == [0, 1, 2]  # min_score 11 is never reached: the iteration guard ends it
    assert result.result["final"]["rounds"] == 3
    assert isinstance(result.result["final"]["score"], int)


async def test_parallel_summaries_keep_document_order() -> None:
    documents = ["Alpha is first. More alpha.", "Beta is second.", "Gamma is third."]
    result = await run_workflow(load_workflow(EXAMPLES / "parallel_summaries.json"), {"documents": documents})
    summaries = _events(result, "node.completed", "summaries")[0].data["output"]
    assert [s.split()[1] for s in summaries] == ["Alpha", "Beta", "Gamma"]
    assert result.result["result"]["count"] == 3


async def test_calculator_agent_calls_the_calculator() -> None:
    result = await run_workflow(load_workflow(EXAMPLES / "calculator_agent.json"), {"question": "What is 6 * 7?"})
    called = _events(result, "tool.called")
    assert called and called[0].data["tool"] == "calculator" and called[0].data["args"] == {"expression": "6 * 7"}
    assert _events(result, "tool.result")[0].data["result"] == 42
    assert "42" in result.result["answer"]


async def test_file_digest_reads_the_sample_file() -> None:
    result = await run_workflow(load_workflow(EXAMPLES / "file_digest.json"))
    assert result.status == "completed", result.error
    assert result.result["digest"]["file"] == "meeting_notes.md"
    assert "Summary:" in result.result["digest"]["summary"]
    assert _events(result, "tool.result")[0].data["result"]["size"] > 100


async def test_python_stats_runs_in_the_sandbox() -> None:
    result = await run_workflow(load_workflow(EXAMPLES / "python_stats.json"), {"numbers": [1, 2, 3, 4]})
    assert result.status == "completed", result.error
    assert result.result["report"]["stats"] == {"mean": 2.5, "median": 2.5, "stdev": 1.291}
    assert result.result["report"]["verdict"] == "Unusual spread: stdev 1.291 against median 2.5."


@pytest.mark.parametrize(
    ("numbers", "status", "expected"),
    [
        (
            [7],
            "completed",
            {"stats": {"mean": 7, "median": 7, "stdev": 0.0}, "verdict": "The numbers are tightly grouped."},
        ),
        (
            [],
            "failed",
            "tool 'python' failed: StatisticsError: mean requires at least one data point (line 3 of the code)",
        ),
    ],
    ids=["one-number", "no-numbers"],
)
async def test_python_stats_with_too_few_numbers_never_fails_another_node(
    numbers: list[int], status: str, expected: Any
) -> None:
    result = await run_workflow(load_workflow(EXAMPLES / "python_stats.json"), {"numbers": numbers})
    assert result.status == status, result.error
    if status == "completed":
        assert result.result["report"] == expected
    else:  # the python step that raised is the step that fails, with Python's own error
        assert result.node_id == "stats" and expected in (result.error or "")


async def test_web_research_offline_says_no_network_and_keeps_the_raw_error_in_tool_result(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pytest.importorskip("ddgs")
    monkeypatch.delenv("SEARXNG_URL", raising=False)
    monkeypatch.setenv("WEB_SEARCH_PROVIDER", "auto")  # the default: no SearxNG, so the keyless backend
    monkeypatch.setenv("DDGS_PROXY", "http://127.0.0.1:9")  # a closed loopback port: no network, as offline
    result = await run_workflow(load_workflow(EXAMPLES / "web_research.json"))
    assert result.status == "completed", result.error
    returned = _events(result, "tool.result")[0].data
    assert returned["error"] == "search unavailable (no network)"
    assert "the public search backend (ddgs) failed" in returned["detail"]
    assert "search unavailable (no network)" in result.result["answer"]
    assert "http" not in result.result["answer"] and "Error" not in result.result["answer"]


async def test_web_research_reports_search_unavailable_instead_of_inventing() -> None:
    result = await run_workflow(load_workflow(EXAMPLES / "web_research.json"))
    assert result.status == "completed", result.error
    assert "search unavailable" in _events(result, "tool.result")[0].data["error"]
    assert "error" in result.result["answer"]
