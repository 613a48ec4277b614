"""The background runtime (issue 3, "Runtime" and "Resume after a crash": marking dead runs).

Runs go through the real :class:`engine.runtime.Runtime` and its store; agents
use the offline model (``OFFLINE_TOKEN_DELAY_S`` makes its streaming slow when
a test needs a run to be mid-LLM-call) or the local fake OpenAI server. Slow
tools are async tools registered here that report what happened to them.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import tools
from engine.errors import EngineError, NotResumable, RunNotFound, WorkflowInvalid
from engine.events import Event
from engine.runtime import Runtime
from engine.store import Store, process_owner
from tests.fake_openai import FakeOpenAIServer, TextReply

pytest_plugins = ["tests.integration.pg"]

WAIT_S = 30
QUICK_S = 3.0  # a cancel must end the run within this


@pytest.fixture(autouse=True)
def _no_database_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)


@pytest.fixture
def sqlite_url(tmp_path: Any) -> str:
    return f"sqlite:///{tmp_path / 'data' / 'studio.db'}"


@pytest.fixture
def make_runtime() -> Iterator[Callable[..., Runtime]]:
    made: list[Runtime] = []

    def make(**kwargs: Any) -> Runtime:
        kwargs.setdefault("tools", TOOLS)
        rt = Runtime(**kwargs)
        made.append(rt)
        return rt

    yield make
    for rt in made:
        rt.shutdown()


# --------------------------------------------------------------------------- tools that report


class ToolProbe:
    """What the slow tool saw: started, cancelled, finished."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.cancelled = threading.Event()
        self.finished = threading.Event()
        self.calls = 0


PROBES: dict[str, ToolProbe] = {}


async def _slow_tool(key: str, seconds: float = 10.0) -> str:
    """Sleep (10 s by default), recording start, cancellation and finish in PROBES[key]."""
    probe = PROBES.setdefault(key, ToolProbe())
    probe.calls += 1
    probe.started.set()
    try:
        await asyncio.sleep(seconds)
    except asyncio.CancelledError:
        probe.cancelled.set()
        raise
    probe.finished.set()
    return "slept"


# This module's runtimes use their own registry: the usual tools plus this one.
TOOLS = tools.default_registry().copy()
TOOLS.register(_slow_tool, name="itest_rt_slow", timeout_s=60)


@pytest.fixture
def probe() -> Iterator[tuple[str, ToolProbe]]:
    key = uuid.uuid4().hex
    PROBES[key] = ToolProbe()
    yield key, PROBES[key]
    PROBES.pop(key, None)


# --------------------------------------------------------------------------- workflows


def agent_doc(name: str = "rt-agent") -> dict[str, Any]:
    """start -> count (transform) -> writer (agent) -> critic (agent) -> out."""
    return {
        "format": "workflow/v1",
        "name": name,
        "inputs": {"topic": {"type": "string", "default": "runtimes"}},
        "nodes": [
            {"id": "start", "type": "input"},
            {"id": "count", "type": "transform", "config": {"expression": "inputs.topic | length"}},
            {"id": "writer", "type": "agent", "config": {"prompt": "Write two sentences about {{ inputs.topic }}."}},
            {"id": "critic", "type": "agent", "config": {"prompt": "Criticise: {{ nodes.writer.output }}"}},
            {
                "id": "out",
                "type": "output",
                "config": {"value": {"n": "{{ nodes.count.output }}", "text": "{{ nodes.critic.output }}"}},
            },
        ],
        "edges": [
            {"source": "start", "target": "count"},
            {"source": "count", "target": "writer"},
            {"source": "writer", "target": "critic"},
            {"source": "critic", "target": "out"},
        ],
    }


def tool_doc(key: str, name: str = "rt-tool", seconds: float = 10.0) -> dict[str, Any]:
    """start -> before (transform) -> slow (the 10 s tool) -> after (transform) -> out."""
    return {
        "format": "workflow/v1",
        "name": name,
        "nodes": [
            {"id": "start", "type": "input"},
            {"id": "before", "type": "transform", "config": {"expression": "1"}},
            {
                "id": "slow",
                "type": "tool",
                "config": {"tool": "itest_rt_slow", "args": {"key": key, "seconds": seconds}},
            },
            {"id": "after", "type": "transform", "config": {"expression": "2"}},
            {"id": "out", "type": "output", "config": {"value": "{{ nodes.slow.output }}"}},
        ],
        "edges": [
            {"source": "start", "target": "before"},
            {"source": "before", "target": "slow"},
            {"source": "slow", "target": "after"},
            {"source": "after", "target": "out"},
        ],
    }


# --------------------------------------------------------------------------- helpers


def wait_for(predicate: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.01)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def wait_for_event(rt: Runtime, run_id: str, match: Callable[[Event], bool], timeout: float = 10.0) -> Event:
    seen: list[Event] = []

    def look() -> Event | None:
        seen.extend(rt.events_since(run_id, seen[-1].seq if seen else 0, wait_s=0.05))
        return next((e for e in seen if match(e)), None)

    return wait_for(look, timeout, "an event")  # type: ignore[no-any-return]


def dicts(events: list[Event]) -> list[dict[str, Any]]:
    return [e.to_dict() for e in events]


def assert_gap_free(events: list[Event]) -> None:
    seqs = [e.seq for e in events]
    assert seqs == list(range(1, len(seqs) + 1)), seqs


def cancel_from_another_thread(rt: Runtime, run_id: str) -> bool:
    result: list[bool] = []
    thread = threading.Thread(target=lambda: result.append(rt.cancel(run_id)))
    thread.start()
    thread.join(5)
    return result[0]


def loop_tasks(rt: Runtime) -> list[str]:
    """Names of the coroutines still scheduled on the runtime's loop (minus the heartbeat)."""

    async def names() -> list[str]:
        current = asyncio.current_task()
        return [t.get_coro().__qualname__ for t in asyncio.all_tasks() if t is not current]  # type: ignore[union-attr]

    found = asyncio.run_coroutine_threadsafe(names(), rt._loop).result(5)
    return [n for n in found if "_beat" not in n]


def dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


# --------------------------------------------------------------------------- many runs at once


def test_50_concurrent_runs_from_several_threads_lose_and_duplicate_nothing(
    store_url: str,
    make_runtime: Callable[..., Runtime],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("OFFLINE_TOKEN_DELAY_S", "0.001")  # runs overlap and interleave their writes
    caplog.set_level(logging.ERROR)
    rt = make_runtime(database_url=store_url, heartbeat_s=0.05)  # heartbeats write while runs do
    rt.wait(rt.submit(agent_doc(), {}), timeout=WAIT_S)  # the workflow exists: the first-save race is tested apart

    threads_n, per_thread = 5, 10
    barrier = threading.Barrier(threads_n)
    submitted: list[tuple[str, str]] = []
    errors: list[str] = []
    lock = threading.Lock()

    def submit_some(k: int) -> None:
        barrier.wait()
        for i in range(per_thread):
            topic = f"topic {k}-{i}"
            try:
                run_id = rt.submit(agent_doc(), {"topic": topic})
            except Exception as exc:  # noqa: BLE001 - collected and asserted below
                with lock:
                    errors.append(repr(exc))
                continue
            with lock:
                submitted.append((run_id, topic))
            rt.store.list_runs(limit=5)  # readers while the writer writes

    threads = [threading.Thread(target=submit_some, args=(k,)) for k in range(threads_n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT_S)
    assert errors == []
    assert len(submitted) == threads_n * per_thread

    for run_id, topic in submitted:
        info = rt.wait(run_id, timeout=WAIT_S)
        assert info.status == "completed", info
        assert info.result["out"]["n"] == len(topic)
    rt.store.flush()
    for run_id, _topic in submitted:
        in_memory = rt.events_since(run_id, 0)
        stored = rt.store.events(run_id)
        assert_gap_free(in_memory)
        assert in_memory[-1].type == "run.completed"
        assert dicts(stored) == dicts(in_memory), run_id
        row = rt.store.get_run(run_id)
        assert row is not None and row.status == "completed" and row.last_seq == len(in_memory)
    assert "locked" not in caplog.text, caplog.text
    assert "could not be written" not in caplog.text, caplog.text
    assert len(rt.store.list_runs(limit=100)) == threads_n * per_thread + 1


def test_two_runtimes_on_one_sqlite_file_run_concurrently_without_locking(
    sqlite_url: str,
    make_runtime: Callable[..., Runtime],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Like the dashboard and a CLI run sharing the default store: two writers on one file."""
    monkeypatch.setenv("OFFLINE_TOKEN_DELAY_S", "0.001")
    caplog.set_level(logging.ERROR)
    runtimes = [make_runtime(database_url=sqlite_url, heartbeat_s=0.05) for _ in range(2)]
    runtimes[0].wait(runtimes[0].submit(agent_doc(), {}), timeout=WAIT_S)
    barrier = threading.Barrier(4)
    submitted: list[tuple[Runtime, str]] = []
    errors: list[str] = []

    def submit_some(k: int) -> None:
        rt = runtimes[k % 2]
        barrier.wait()
        for i in range(6):
            try:
                submitted.append((rt, rt.submit(agent_doc(), {"topic": f"t{k}{i}"})))
            except Exception as exc:  # noqa: BLE001
                errors.append(repr(exc))

    threads = [threading.Thread(target=submit_some, args=(k,)) for k in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT_S)
    assert errors == []
    for rt, run_id in submitted:
        assert rt.wait(run_id, timeout=WAIT_S).status == "completed"
    for rt in runtimes:
        rt.store.flush()
    for rt, run_id in submitted:
        assert dicts(rt.store.events(run_id)) == dicts(rt.events_since(run_id, 0))
    assert "locked" not in caplog.text and "could not be written" not in caplog.text, caplog.text


def test_concurrent_first_submits_of_a_new_workflow_all_start(
    store_url: str, make_runtime: Callable[..., Runtime]
) -> None:
    rt = make_runtime(database_url=store_url)
    barrier = threading.Barrier(8)
    errors: list[str] = []
    ids: list[str] = []

    def submit() -> None:
        barrier.wait()
        for _ in range(2):
            try:
                ids.append(rt.submit(agent_doc("brand-new"), {}))
            except Exception as exc:  # noqa: BLE001
                errors.append(repr(exc)[:200])

    threads = [threading.Thread(target=submit) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT_S)
    for run_id in ids:
        rt.wait(run_id, timeout=WAIT_S)
    assert errors == []
    assert len(ids) == 16
    assert len(rt.store.list_workflows()) == 1


def test_a_submit_naming_its_run_id_starts_that_run_once(store_url: str, make_runtime: Callable[..., Runtime]) -> None:
    """A caller interrupted between asking and hearing back (a Streamlit script) asks again with the same id:
    eight threads asking at once, then one more ask after the run ended, make one run and one set of events."""
    rt = make_runtime(database_url=store_url)
    run_id = uuid.uuid4().hex
    barrier = threading.Barrier(8)
    answers: list[str] = []

    def submit() -> None:
        barrier.wait()
        answers.append(rt.submit(agent_doc("once"), {}, run_id=run_id))

    threads = [threading.Thread(target=submit) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT_S)
    assert answers == [run_id] * 8
    assert rt.wait(run_id, timeout=WAIT_S).status == "completed"
    assert rt.submit(agent_doc("once"), {}, run_id=run_id) == run_id  # after the end: still not started again
    rt.store.flush()
    assert [r.run_id for r in rt.store.list_runs(limit=50)] == [run_id]
    started = [e for e in rt.store.events(run_id) if e.type == "run.started"]
    assert len(started) == 1


@pytest.mark.parametrize("bad", ["", "ABC", "0" * 31, "g" * 32, "0" * 32 + "\n", "../" + "0" * 29])
def test_a_run_id_that_is_not_32_hex_digits_is_refused(
    sqlite_url: str, make_runtime: Callable[..., Runtime], bad: str
) -> None:
    rt = make_runtime(database_url=sqlite_url)
    with pytest.raises(ValueError, match="32 lowercase hex digits"):
        rt.submit(agent_doc("bad id"), {}, run_id=bad)
    assert rt.store.list_runs(limit=5) == []


# --------------------------------------------------------------------------- events_since: buffer and store


def test_events_since_with_a_tiny_buffer_reads_older_events_from_the_store(
    sqlite_url: str, make_runtime: Callable[..., Runtime], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OFFLINE_TOKEN_DELAY_S", "0.002")
    rt = make_runtime(database_url=sqlite_url, buffer_events=5)
    run_id = rt.submit(agent_doc(), {})

    # a live follower, reading while the run runs, ends up with the whole log
    followed: list[Event] = []
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        followed.extend(rt.events_since(run_id, followed[-1].seq if followed else 0, wait_s=0.2))
        if followed and followed[-1].terminal:
            break
    assert followed and followed[-1].type == "run.completed"
    rt.store.flush()
    full = rt.store.events(run_id)
    assert len(full) > 20
    assert_gap_free(full)
    assert dicts(followed) == dicts(full)

    # afterwards, from any point: older events come from the store, the last 5 from the buffer
    n = len(full)
    for seq in (0, 1, 2, n // 2, n - 6, n - 5, n - 4, n - 1, n):
        got = rt.events_since(run_id, seq)
        assert dicts(got) == dicts(full[seq:]), seq
    assert rt.events_since(run_id, n + 10) == []


def test_events_since_of_an_unknown_run_is_empty(sqlite_url: str, make_runtime: Callable[..., Runtime]) -> None:
    rt = make_runtime(database_url=sqlite_url)
    assert rt.events_since("no-such-run", 0) == []
    assert rt.status("no-such-run") is None


# --------------------------------------------------------------------------- cancel


def assert_cancelled_run(rt: Runtime, run_id: str, node_id: str) -> list[Event]:
    info = rt.wait(run_id, timeout=QUICK_S)
    assert info.status == "cancelled", info
    rt.store.flush()
    events = rt.events_since(run_id, 0)
    assert_gap_free(events)
    assert events[0].type == "run.started" and events[-1].type == "run.cancelled"
    assert sum(e.terminal for e in events) == 1
    failed = [e for e in events if e.type == "node.failed" and e.node_id == node_id]
    assert len(failed) == 1 and failed[0].data.get("cancelled") is True
    assert not any(e.type == "node.completed" and e.node_id in (node_id, "out") for e in events)
    assert dicts(rt.store.events(run_id)) == dicts(events)
    row = rt.store.get_run(run_id)
    assert row is not None and row.status == "cancelled"
    node_rows = [r for r in rt.store.node_executions(run_id) if r.node_id == node_id]
    assert [r.status for r in node_rows] == ["cancelled"]
    assert loop_tasks(rt) == []  # no child task left behind
    return events


def test_cancel_from_another_thread_mid_llm_call(
    sqlite_url: str, make_runtime: Callable[..., Runtime], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OFFLINE_TOKEN_DELAY_S", "0.5")  # each streamed chunk takes half a second
    rt = make_runtime(database_url=sqlite_url)
    run_id = rt.submit(agent_doc(), {})
    wait_for_event(rt, run_id, lambda e: e.type == "llm.token" and e.node_id == "writer")
    started = time.monotonic()
    assert cancel_from_another_thread(rt, run_id) is True
    assert_cancelled_run(rt, run_id, "writer")
    assert time.monotonic() - started < QUICK_S


def test_cancel_from_another_thread_mid_http_llm_call(
    sqlite_url: str,
    make_runtime: Callable[..., Runtime],
    monkeypatch: pytest.MonkeyPatch,
    fake_openai: FakeOpenAIServer,
) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", fake_openai.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    fake_openai.enqueue(TextReply("a slow answer", delay_s=10))
    rt = make_runtime(database_url=sqlite_url)
    run_id = rt.submit(agent_doc(), {})
    wait_for(lambda: len(fake_openai.requests) >= 1, what="the model request")
    wait_for_event(rt, run_id, lambda e: e.type == "node.started" and e.node_id == "writer")
    started = time.monotonic()
    assert cancel_from_another_thread(rt, run_id) is True
    assert_cancelled_run(rt, run_id, "writer")
    assert time.monotonic() - started < QUICK_S


def test_cancel_from_another_thread_mid_tool(
    sqlite_url: str, make_runtime: Callable[..., Runtime], probe: tuple[str, ToolProbe]
) -> None:
    key, seen = probe
    rt = make_runtime(database_url=sqlite_url)
    run_id = rt.submit(tool_doc(key), {})
    assert seen.started.wait(10)
    wait_for_event(rt, run_id, lambda e: e.type == "tool.called" and e.node_id == "slow")
    started = time.monotonic()
    assert cancel_from_another_thread(rt, run_id) is True
    events = assert_cancelled_run(rt, run_id, "slow")
    assert time.monotonic() - started < QUICK_S
    assert seen.cancelled.is_set(), "the tool's coroutine did not see CancelledError"
    assert not seen.finished.is_set()
    assert not any(e.type == "tool.result" for e in events)
    assert rt.cancel(run_id) is False  # already over


def test_cancel_right_after_submit_records_started_then_cancelled(
    sqlite_url: str, make_runtime: Callable[..., Runtime], probe: tuple[str, ToolProbe]
) -> None:
    """The loop is held busy while submit and cancel queue up, so cancel lands before the run's first step."""
    key, seen = probe
    rt = make_runtime(database_url=sqlite_url)
    rt._loop.call_soon_threadsafe(time.sleep, 0.3)  # the runtime's loop is busy for a moment
    run_id = rt.submit(tool_doc(key), {})
    assert rt.cancel(run_id) is True
    info = rt.wait(run_id, timeout=QUICK_S)
    assert info.status == "cancelled"
    rt.store.flush()
    assert [e.type for e in rt.events_since(run_id, 0)] == ["run.started", "run.cancelled"]
    assert [e.type for e in rt.store.events(run_id)] == ["run.started", "run.cancelled"]
    assert rt.store.get_run(run_id).status == "cancelled"  # type: ignore[union-attr]
    assert seen.calls == 0


def test_cancel_right_after_submit_without_help(
    sqlite_url: str, make_runtime: Callable[..., Runtime], probe: tuple[str, ToolProbe]
) -> None:
    """No holding the loop: whichever way the race goes, the run is cancelled before the slow tool finishes."""
    key, seen = probe
    rt = make_runtime(database_url=sqlite_url)
    for _ in range(5):
        run_id = rt.submit(tool_doc(key), {})
        assert rt.cancel(run_id) is True
        assert rt.wait(run_id, timeout=QUICK_S).status == "cancelled"
        events = rt.events_since(run_id, 0)
        assert_gap_free(events)
        assert events[0].type == "run.started" and events[-1].type == "run.cancelled"
        assert not any(e.type == "node.completed" and e.node_id in ("slow", "after", "out") for e in events)
    assert not seen.finished.is_set()


def test_cancel_of_an_unknown_or_finished_run_is_false(sqlite_url: str, make_runtime: Callable[..., Runtime]) -> None:
    rt = make_runtime(database_url=sqlite_url)
    run_id = rt.submit(agent_doc(), {})
    assert rt.wait(run_id, timeout=WAIT_S).status == "completed"
    assert rt.cancel(run_id) is False
    assert rt.cancel("no-such-run") is False


# --------------------------------------------------------------------------- status from the store, shutdown, restart


def test_status_of_a_finished_run_from_a_fresh_runtime_comes_from_the_store(
    store_url: str, make_runtime: Callable[..., Runtime]
) -> None:
    first = Runtime(tools=TOOLS, database_url=store_url)
    try:
        run_id = first.submit(agent_doc(), {"topic": "memory"})
        before = first.wait(run_id, timeout=WAIT_S)
        events = first.events_since(run_id, 0)
    finally:
        first.shutdown()
    assert before.status == "completed"

    fresh = make_runtime(database_url=store_url)
    assert run_id not in fresh.running()
    info = fresh.status(run_id)
    assert info is not None
    assert (info.status, info.result, info.error, info.last_seq, info.inputs, info.workflow_name) == (
        "completed",
        before.result,
        None,
        len(events),
        {"topic": "memory"},
        "rt-agent",
    )
    assert (info.prompt_tokens, info.completion_tokens) == (before.prompt_tokens, before.completion_tokens)
    assert info.prompt_tokens > 0
    assert info.finished_at is not None and info.created_at is not None
    assert fresh.wait(run_id, timeout=1).status == "completed"
    assert dicts(fresh.events_since(run_id, 0)) == dicts(events)
    assert dicts(fresh.events_since(run_id, 3)) == dicts(events[3:])
    with pytest.raises(NotResumable, match="completed"):
        fresh.resume(run_id)
    with pytest.raises(RunNotFound, match="no-such-run"):
        fresh.resume("no-such-run")
    with pytest.raises(RunNotFound):
        fresh.wait("no-such-run", timeout=0.1)


def test_shutdown_cancels_running_runs_and_leaves_nothing_running(
    sqlite_url: str, probe: tuple[str, ToolProbe]
) -> None:
    key, seen = probe
    rt = Runtime(tools=TOOLS, database_url=sqlite_url)
    slow = [rt.submit(tool_doc(key), {}) for _ in range(3)]
    wait_for(lambda: seen.calls == 3, what="three tool calls")
    started = time.monotonic()
    rt.shutdown()
    assert time.monotonic() - started < QUICK_S
    assert rt.running() == []
    assert not rt._thread.is_alive()
    assert seen.cancelled.is_set() and not seen.finished.is_set()
    for run_id in slow:
        assert rt.status(run_id).status == "cancelled"  # type: ignore[union-attr]
    with pytest.raises(EngineError):
        rt.submit(tool_doc(key), {})
    rt.shutdown()  # twice is fine

    store = Store(sqlite_url)
    try:
        for run_id in slow:
            row = store.get_run(run_id)
            assert row is not None and row.status == "cancelled"
            events = store.events(run_id)
            assert_gap_free(events)
            assert events[-1].type == "run.cancelled"
        assert store.list_runs(status="running") == []
    finally:
        store.close()


def test_a_new_runtime_marks_a_dead_process_run_interrupted(
    store_url: str, make_runtime: Callable[..., Runtime]
) -> None:
    store = Store(store_url)
    try:
        ref = store.save_workflow(agent_doc())
        dead, alive = uuid.uuid4().hex, uuid.uuid4().hex
        store.create_run(
            run_id=dead, workflow=ref, inputs={"topic": "x"}, owner=f"{socket.gethostname()}:{dead_pid()}:999"
        )
        store.create_run(run_id=alive, workflow=ref, inputs={"topic": "x"}, owner=process_owner())
        store.flush()
    finally:
        store.close()

    rt = make_runtime(database_url=store_url)
    assert rt.interrupted_at_start == [dead]
    info = rt.status(dead)
    assert info is not None and info.status == "interrupted" and info.error
    assert rt.status(alive).status == "running"  # type: ignore[union-attr]  # ours: this process is alive
    assert rt.running() == []  # but not run by this runtime


def test_the_heartbeat_keeps_a_long_run_fresh(
    sqlite_url: str, make_runtime: Callable[..., Runtime], probe: tuple[str, ToolProbe]
) -> None:
    key, seen = probe
    rt = make_runtime(database_url=sqlite_url, heartbeat_s=0.05)
    run_id = rt.submit(tool_doc(key, seconds=0.6), {})
    assert seen.started.wait(10)
    rt.store.flush()
    first = rt.store.get_run(run_id).heartbeat_at  # type: ignore[union-attr]
    time.sleep(0.3)
    rt.store.flush()
    assert rt.store.get_run(run_id).heartbeat_at > first  # type: ignore[union-attr,operator]
    assert rt.wait(run_id, timeout=WAIT_S).status == "completed"


# --------------------------------------------------------------------------- each runtime its own tools


def _greeting_doc(tool: str) -> dict[str, Any]:
    return {
        "format": "workflow/v1",
        "name": f"uses {tool}",
        "nodes": [
            {"id": "start", "type": "input"},
            {"id": "call", "type": "tool", "config": {"tool": tool, "args": {"name": "Ada"}}},
        ],
        "edges": [{"source": "start", "target": "call"}],
    }


def test_two_runtimes_with_different_registries_see_and_run_different_tools(
    sqlite_url: str, tmp_path: Any, make_runtime: Callable[..., Runtime]
) -> None:
    def greet(name: str) -> str:
        """Say hello."""
        return f"hello {name}"

    def greet_in_french(name: str) -> str:
        """Say hello in French."""
        return f"bonjour {name}"

    english, french = tools.ToolRegistry(), tools.ToolRegistry()
    english.register(greet, name="greet")
    french.register(greet_in_french, name="greet")  # the same name, another function
    french.register(greet_in_french, name="saluer")
    first = make_runtime(database_url=sqlite_url, tools=english)
    second = make_runtime(database_url=f"sqlite:///{tmp_path / 'other.db'}", tools=french)

    assert [t.name for t in first.tools.list_tools()] == ["greet"]
    assert [t.name for t in second.tools.list_tools()] == ["greet", "saluer"]
    assert first.call_tool("greet", {"name": "Ada"}).value == "hello Ada"
    assert second.call_tool("greet", {"name": "Ada"}).value == "bonjour Ada"

    # a run's tools are its runtime's: the same workflow answers differently on each
    outputs = []
    for runtime in (first, second):
        run_id = runtime.submit(_greeting_doc("greet"))
        assert runtime.wait(run_id, WAIT_S).status == "completed"
        (done,) = [e for e in runtime.reader.events(run_id) if e.type == "node.completed" and e.node_id == "call"]
        outputs.append(done.data["output"])
    assert outputs == ["hello Ada", "bonjour Ada"]

    # a tool only the other runtime has is refused when the workflow is submitted, naming what there is
    with pytest.raises(WorkflowInvalid, match=r"unknown tool 'saluer'; available: greet"):
        first.submit(_greeting_doc("saluer"))
    assert second.wait(second.submit(_greeting_doc("saluer")), WAIT_S).status == "completed"
    # and neither registry leaked into the default one
    assert not tools.has_tool("greet") and not tools.has_tool("saluer")


def test_a_runtime_without_a_registry_uses_the_default_one(
    make_runtime: Callable[..., Runtime], sqlite_url: str
) -> None:
    runtime = make_runtime(database_url=sqlite_url, tools=None)
    assert runtime.tools is tools.default_registry()
    assert {"calculator", "file_reader", "python", "web_search"} <= {t.name for t in runtime.tools.list_tools()}
    assert "itest_rt_slow" not in runtime.tools  # this module's tool is in its own registry only
