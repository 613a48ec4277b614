"""Test one node: run a single node of a workflow with given inputs, without the rest of the graph.

The Builder's "Test node" (issue 14) runs only the selected node with the
inputs it received in its latest run of the workflow (:func:`node_test_context`),
edited or not, and shows its output in place. Everything a run uses is used
here: the real node kinds (:data:`engine.nodes.KINDS`), the same template
compilation and rendering (with the render time budget), the runtime's chat
model (the same client, endpoint and key handling), the tool registry and
the agent's memory. What a test does not do, and why:

* **No run in History.** A test writes nothing to the store: no run row, no
  events. Its events are kept in the returned :class:`NodeTestResult` only
  (the Builder shows the last one). A test is a draft of a step, not a run of
  the workflow; recording it would mix half-runs into every list and count.
* **No memory writes.** An agent with memory recalls as in a run (same
  agent id, same recall and short-term turns), but nothing is saved: testing
  a prompt ten times must not change what the agent remembers. A ``log``
  event says so.
* **One attempt.** The node's ``retry`` is not applied (a test shows what
  one try does; an agent test makes exactly one model request per round).
  Tools are called for real, as n8n's "Execute step" does: a tool with side
  effects has them.
* **Time-limited and cancellable.** The node's ``timeout_s``, else the
  workflow's ``settings.timeout_s``, else :data:`TEST_TIME_LIMIT_S`, bounds a
  test; :meth:`NodeTests.cancel` stops it at once.

The variables a node sees are those of a run: ``inputs`` (the run's inputs),
``nodes`` (``nodes.<id>.output`` of upstream nodes) and ``iteration``. The
context lists the run inputs and only the upstream outputs the node's
templates read. A ``map`` node is tested whole: every item runs its inner
node, as in a run. A node inside a loop runs once, with the ``iteration`` of
its latest execution (edit it to try another); the loop does not repeat.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import itertools
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, assert_never

from pydantic import ValidationError

from engine import template_budget
from engine.config import Settings as StudioSettings
from engine.errors import NodeTestInvalid, NodeTimeout, Problem
from engine.events import (
    Event,
    NodeCompletedData,
    NodeFailedData,
)
from engine.executor import NodeContextImpl, _EventLog, _reason, _with_input
from engine.llm.base import ChatModel
from engine.model import InputSpec, Node, Settings
from engine.nodes import KINDS, compile_config
from engine.nodes.agent import AgentSpec
from engine.nodes.base import BASE_SCOPE, Compiler
from engine.nodes.map import MapSpec
from tools import ToolRegistry, default_registry
from tools.plain import to_plain

TEST_TIME_LIMIT_S = 300.0
"""Longest a node test may take when neither the node nor the workflow sets a timeout, in seconds."""

RUNS_LOOKED_AT = 20
"""How many of the workflow's latest runs are searched for the node's latest inputs."""

_EMPTY_OF_TYPE: Mapping[str, Any] = {
    "string": "", "number": 0, "integer": 0, "boolean": False, "object": {}, "array": []
}


@dataclass(frozen=True, slots=True)
class NodeTestContext:
    """What a node is tested with: the variables its templates read, and where they came from.

    ``values()`` is the editable part, shaped ``{"inputs": {...}, "nodes": {id: output}, "iteration": n}``.
    """

    node_id: str
    node_type: str
    inputs: dict[str, Any]
    nodes: dict[str, Any]  # upstream node id -> its output (only the nodes the templates read)
    iteration: int = 0
    source_run_id: str | None = None  # the run these values came from; None: no earlier run, empty values
    source_created_at: float | None = None
    missing: tuple[str, ...] = ()  # referenced upstream nodes that did not complete in that run (null here)
    ran: bool = False  # the node itself started in that run (else: the newest run, which never reached it)

    def values(self) -> dict[str, Any]:
        return {"inputs": dict(self.inputs), "nodes": dict(self.nodes), "iteration": self.iteration}


@dataclass(frozen=True, slots=True)
class ToolCallRecord:
    """One tool call a tested node made."""

    tool: str
    args: Any
    ok: bool
    result: Any = None
    error: str | None = None
    duration_ms: float = 0.0


@dataclass(frozen=True, slots=True)
class NodeTestResult:
    """How a node test ended. ``status`` uses the run vocabulary: completed | failed | cancelled."""

    test_id: str
    node_id: str
    status: str
    output: Any = None
    error: str | None = None
    duration_ms: float = 0.0
    input: dict[str, Any] | None = None  # what the node recorded as given: the rendered prompt, the tool args
    prompt_tokens: int = 0
    completion_tokens: int = 0
    tokens_estimated: bool = False
    models: tuple[str, ...] = ()  # the models that answered
    tool_calls: tuple[ToolCallRecord, ...] = ()
    logs: tuple[str, ...] = ()
    events: tuple[Event, ...] = ()


# --- the latest inputs ---------------------------------------------------------------------------------


def referenced(document: Mapping[str, Any], node_id: str) -> tuple[frozenset[str], frozenset[str], bool]:
    """The upstream node ids and input names ``node_id``'s templates read, and whether they read ``nodes`` whole.

    Raises:
        NodeTestInvalid: no such node, or its config does not compile.
    """
    node, compiler = _compiled(document, node_id)
    del node
    node_refs: set[str] = set()
    input_refs: set[str] = set()
    whole_nodes = False
    for compiled in compiler.compiled:
        node_refs |= compiled.node_refs
        input_refs |= compiled.input_refs
        whole_nodes = whole_nodes or ("nodes" in compiled.names and not compiled.node_refs)
    node_refs.discard(node_id)
    return frozenset(node_refs), frozenset(input_refs), whole_nodes


def node_test_context(
    store: Any,
    document: Mapping[str, Any],
    node_id: str,
    *,
    workflow_id: str | None = None,
    tools: ToolRegistry | None = None,
) -> NodeTestContext:
    """The inputs ``node_id`` received in its latest run of this workflow, else the ones its templates need, empty.

    The workflow is found by ``workflow_id`` or else by the document's name. Of its latest
    :data:`RUNS_LOOKED_AT` runs, the newest in which the node started wins: its inputs, the
    outputs the referenced upstream nodes had when the node last started, and that execution's
    ``iteration``. Without such a run, the newest run's inputs and outputs are used; without any
    run, declared inputs get their defaults (or an empty value of their type) and outputs null.
    """
    node, _compiler = _compiled(document, node_id, tools)
    node_refs, _input_refs, whole = referenced(document, node_id)
    if workflow_id is None and isinstance(document.get("name"), str):
        row = store.find_workflow(document["name"])
        workflow_id = row.id if row is not None else None
    runs = store.list_runs(limit=RUNS_LOOKED_AT, workflow_id=workflow_id) if workflow_id else []
    fallback: tuple[Any, list[Event]] | None = None
    for run in runs:
        events = store.events(run.run_id)
        if any(e.type == "node.started" and e.node_id == node_id for e in events):
            return dataclasses.replace(_from_run(run, events, node, node_refs, whole), ran=True)
        if fallback is None:
            fallback = (run, events)
    if fallback is not None:
        return _from_run(fallback[0], fallback[1], node, node_refs, whole)
    return NodeTestContext(
        node_id=node_id,
        node_type=node.type,
        inputs=_empty_inputs(document),
        nodes={ref: None for ref in sorted(node_refs)},
    )


def _from_run(run: Any, events: list[Event], node: Node, node_refs: frozenset[str], whole: bool) -> NodeTestContext:
    outputs: dict[str, Any] = {}
    iteration = 0
    at_start: dict[str, Any] | None = None
    last_start_iteration = 0
    for event in events:
        if event.node_id is None:
            continue
        if event.type == "node.completed":
            outputs[event.node_id] = event.data.get("output")
        elif event.type == "node.skipped":
            outputs[event.node_id] = None
        elif event.type == "node.started" and event.node_id == node.id:
            at_start = dict(outputs)  # what upstream nodes had produced when this node last started
            last_start_iteration = int(event.data.get("iteration") or 0)
    if at_start is not None:
        outputs, iteration = at_start, last_start_iteration
    wanted = sorted(set(outputs) - {node.id}) if whole else sorted(node_refs)
    missing = tuple(ref for ref in wanted if ref not in outputs)
    return NodeTestContext(
        node_id=node.id,
        node_type=node.type,
        inputs=dict(run.inputs or {}),
        nodes={ref: outputs.get(ref) for ref in wanted},
        iteration=iteration,
        source_run_id=run.run_id,
        source_created_at=run.created_at,
        missing=missing,
    )


def _empty_inputs(document: Mapping[str, Any]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name, raw in _declared_inputs(document).items():
        try:
            spec = InputSpec.model_validate(raw or {})
        except ValidationError:
            values[str(name)] = None
            continue
        values[str(name)] = spec.default if not spec.required else _EMPTY_OF_TYPE.get(spec.type)
    return values


# --- compiling one node --------------------------------------------------------------------------------


def _declared_inputs(document: Mapping[str, Any]) -> Mapping[str, Any]:
    declared = document.get("inputs")
    return declared if isinstance(declared, Mapping) else {}


def _settings(document: Mapping[str, Any]) -> Settings:
    try:
        return Settings.model_validate(document.get("settings") or {})
    except ValidationError:
        return Settings.model_validate({})


def _compiled(
    document: Mapping[str, Any], node_id: str, registry: ToolRegistry | None = None
) -> tuple[Node, _SpecCompiler]:
    """The node's model and a compiler holding its compiled templates (the spec is in ``compiler.spec``)."""
    nodes_field = document.get("nodes")
    raw_nodes: list[Any] = nodes_field if isinstance(nodes_field, list) else []
    raw = next((n for n in raw_nodes if isinstance(n, Mapping) and n.get("id") == node_id), None)
    where = f"node '{node_id}'"
    if raw is None:
        raise NodeTestInvalid([Problem(where, "no such node in this workflow")])
    try:
        node = Node.model_validate(raw)
    except ValidationError as exc:
        invalid = [Problem(where, f"{'.'.join(str(p) for p in e['loc']) or 'node'}: {e['msg']}") for e in exc.errors()]
        raise NodeTestInvalid(invalid) from None
    node_ids = frozenset(str(n.get("id")) for n in raw_nodes if isinstance(n, Mapping) and isinstance(n.get("id"), str))
    problems: list[Problem] = []
    input_names = frozenset(str(k) for k in _declared_inputs(document))
    compiler = _SpecCompiler(where, problems, BASE_SCOPE, node_ids, input_names, tools=registry or default_registry())
    compiler.spec = compile_config(node.type, node.config, compiler)
    if problems:
        raise NodeTestInvalid(problems)
    return node, compiler


@dataclass(slots=True)
class _SpecCompiler(Compiler):
    spec: Any = None


# --- running one node ----------------------------------------------------------------------------------


class _TestRun(_EventLog):
    """What :class:`engine.executor.NodeContextImpl` needs of a run, for a run of one node."""

    def __init__(
        self,
        test_id: str,
        workflow_name: str,
        inputs: dict[str, Any],
        nodes: dict[str, Any],
        llm: ChatModel,
        model: str,
        tools: ToolRegistry,
    ):
        self.run_id = test_id
        self.tools = tools
        self.workflow = _Named(workflow_name)
        self.inputs = inputs
        self.node_vars = {node_id: {"output": output} for node_id, output in nodes.items()}
        self.llm = llm
        self.default_model = model
        self.call_ids = itertools.count(1)
        self.events: list[Event] = []
        self.seq = 0
        self.on_event = None


@dataclass(frozen=True, slots=True)
class _Named:
    name: str


def _without_memory_writes(node_type: str, spec: Any) -> Any:
    """The spec with its agent's memory saving turned off (also an agent inside a map)."""
    if node_type == "agent" and isinstance(spec, AgentSpec) and spec.memory is not None and spec.memory.save:
        return dataclasses.replace(spec, memory=dataclasses.replace(spec.memory, save=False))
    if node_type == "map" and isinstance(spec, MapSpec) and spec.kind is not None:
        return dataclasses.replace(spec, inner=_without_memory_writes(spec.kind.type, spec.inner))
    return spec


def _saves_memory(node_type: str, spec: Any) -> bool:
    if isinstance(spec, AgentSpec):
        return spec.memory is not None and spec.memory.save
    if isinstance(spec, MapSpec) and spec.kind is not None:
        return _saves_memory(spec.kind.type, spec.inner)
    return False


def time_limit(document: Mapping[str, Any], node_id: str) -> float:
    """The node's ``timeout_s``, else the workflow's ``settings.timeout_s``, else :data:`TEST_TIME_LIMIT_S`."""
    node, _ = _compiled(document, node_id)
    if node.timeout_s is not None:
        return float(node.timeout_s)
    settings = _settings(document)
    return float(settings.timeout_s) if settings.timeout_s is not None else TEST_TIME_LIMIT_S


def check_values(values: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any], int]:
    """``{"inputs", "nodes", "iteration"}`` as plain JSON parts; NodeTestInvalid says what is wrong."""
    problems: list[Problem] = []
    unknown = sorted(set(values) - {"inputs", "nodes", "iteration"})
    if unknown:
        problems.append(Problem("test inputs", f"unknown keys {', '.join(unknown)}; use inputs, nodes and iteration"))
    inputs, nodes = values.get("inputs") or {}, values.get("nodes") or {}
    if not isinstance(inputs, Mapping):
        problems.append(Problem("test inputs", "'inputs' must be an object of run inputs"))
    if not isinstance(nodes, Mapping):
        problems.append(Problem("test inputs", "'nodes' must be an object: node id -> its output"))
    iteration = values.get("iteration", 0)
    if not isinstance(iteration, int) or isinstance(iteration, bool) or iteration < 0:
        problems.append(Problem("test inputs", "'iteration' must be a whole number from 0"))
    if problems:
        raise NodeTestInvalid(problems)
    try:
        plain_nodes = {str(k): to_plain(v, "raise") for k, v in nodes.items()}
        return to_plain(dict(inputs), "raise"), plain_nodes, int(iteration)
    except (TypeError, RecursionError) as exc:
        raise NodeTestInvalid([Problem("test inputs", f"the values must be JSON: {exc}")]) from None


async def run_node_test(
    document: Mapping[str, Any],
    node_id: str,
    values: Mapping[str, Any],
    *,
    llm: ChatModel,
    test_id: str | None = None,
    timeout_s: float | None = None,
    settings: StudioSettings | None = None,
    tools: ToolRegistry | None = None,
) -> NodeTestResult:
    """Run ``node_id`` once with ``values`` (see :class:`NodeTestContext`); never raises for the node's own failure.

    ``settings`` (default: the environment's) give the default model and configure the tools and memory.

    Raises:
        NodeTestInvalid: the node is unknown or does not compile, or ``values`` are not usable.
    """
    registry = tools if tools is not None else default_registry()
    node, compiler = _compiled(document, node_id, registry)
    inputs, nodes, iteration = check_values(values)
    limit = timeout_s if timeout_s is not None else time_limit(document, node_id)
    test_id = test_id or uuid.uuid4().hex
    name = str(document.get("name") or "workflow")
    settings = settings or StudioSettings.from_env()
    model = _settings(document).model or settings.llm.default_model
    run = _TestRun(test_id, name, inputs, nodes, llm, model, registry)
    spec = compiler.spec
    if _saves_memory(node.type, spec):
        spec = _without_memory_writes(node.type, spec)
        run.emit("log", node_id, {"level": "info", "message": "a test recalls memory but saves nothing to it"})
    ctx = NodeContextImpl(run, node_id, iteration)  # type: ignore[arg-type]  # _TestRun has what the context reads
    runner = KINDS[node.type].run
    template_budget.enter_run()
    run.emit("node.started", node_id, {"iteration": iteration, "execution": 0, "test": True})
    started = time.perf_counter()
    status, output, error = "completed", None, None
    try:
        async with asyncio.timeout(limit) as deadline:
            with settings.applied():
                output = to_plain(await runner(spec, ctx), "raise")  # type: ignore[arg-type]  # as the executor calls it
    except asyncio.CancelledError:
        status, error = "cancelled", "cancelled"
    except TimeoutError:
        status = "failed"
        error = str(NodeTimeout(node_id, limit)) if deadline.expired() else "TimeoutError"
    except Exception as exc:  # noqa: BLE001 - a node failure is the test's answer, shown in red
        status, error = "failed", _reason(exc)
    duration_ms = round((time.perf_counter() - started) * 1000.0, 3)
    if status == "completed":
        done: NodeCompletedData = {"output": output, "duration_ms": duration_ms, "attempts": 1}
        run.emit("node.completed", node_id, _with_input(done, ctx))
    else:
        failed: NodeFailedData = {"error": str(error), "attempts": 1}
        if status == "cancelled":
            failed["cancelled"] = True
        run.emit("node.failed", node_id, _with_input(failed, ctx))
    return _result(test_id, node_id, status, output, error, duration_ms, ctx.input, run.events)


def _result(
    test_id: str,
    node_id: str,
    status: str,
    output: Any,
    error: str | None,
    duration_ms: float,
    given: dict[str, Any] | None,
    events: list[Event],
) -> NodeTestResult:
    prompt = completion = 0
    estimated = False
    models: list[str] = []
    calls: dict[str, dict[str, Any]] = {}
    logs: list[str] = []
    for event in events:
        data, kind = event.data, event.type
        match kind:  # every kind named: a new one fails mypy here until it is handled
            case "llm.completed":
                prompt += int(data.get("prompt_tokens") or 0)
                completion += int(data.get("completion_tokens") or 0)
                estimated = estimated or bool(data.get("estimated"))
                if data.get("model") and data["model"] not in models:
                    models.append(str(data["model"]))
            case "tool.called":
                calls[str(data.get("call_id"))] = {"tool": data.get("tool"), "args": data.get("args")}
            case "tool.result":
                if str(data.get("call_id")) in calls:
                    calls[str(data.get("call_id"))].update(
                        ok="error" not in data,
                        result=data.get("result"),
                        error=data.get("error"),
                        duration_ms=float(data.get("duration_ms") or 0.0),
                    )
            case "log":
                logs.append(f"{data.get('level', 'info')}: {data.get('message', '')}")
            case "node.started" | "node.completed" | "node.failed" | "node.skipped" | "llm.token":
                pass  # the test's outcome is returned whole; tokens make the output
            case "memory.recalled" | "memory.saved" | "run.started" | "run.completed" | "run.failed" | "run.cancelled":
                pass
            case "approval.requested" | "approval.decided" | "run.waiting":
                pass
            case _:
                assert_never(kind)
    tool_calls = tuple(
        ToolCallRecord(
            tool=str(c["tool"]),
            args=c["args"],
            ok=bool(c.get("ok", False)),
            result=c.get("result"),
            error=c.get("error") if "ok" in c else "no result (the test stopped first)",
            duration_ms=float(c.get("duration_ms", 0.0)),
        )
        for c in calls.values()
    )
    return NodeTestResult(
        test_id=test_id,
        node_id=node_id,
        status=status,
        output=output if status == "completed" else None,
        error=error,
        duration_ms=duration_ms,
        input=given,
        prompt_tokens=prompt,
        completion_tokens=completion,
        tokens_estimated=estimated,
        models=tuple(models),
        tool_calls=tool_calls,
        logs=tuple(logs),
        events=tuple(events),
    )


# --- tests in the background ---------------------------------------------------------------------------


@dataclass(eq=False)
class _Pending:
    future: concurrent.futures.Future[NodeTestResult]
    task: asyncio.Task[NodeTestResult] | None = None
    cancel_requested: bool = False
    started_at: float = field(default_factory=time.time)


class NodeTests:
    """Node tests running on a runtime's event loop, by test id (thread-safe). Of the finished ones, the
    latest :attr:`KEEP` are kept (a page may ask for a result again after a rerun)."""

    KEEP = 50

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self._loop = loop
        self._tests: dict[str, _Pending] = {}
        self._lock = threading.Lock()

    def start(
        self,
        document: Mapping[str, Any],
        node_id: str,
        values: Mapping[str, Any],
        *,
        llm: ChatModel,
        timeout_s: float | None = None,
        tools: ToolRegistry | None = None,
        settings: StudioSettings | None = None,
    ) -> str:
        """Start a test; returns its id at once. NodeTestInvalid before anything runs."""
        _compiled(document, node_id, tools)
        check_values(values)
        test_id = uuid.uuid4().hex
        pending = _Pending(concurrent.futures.Future())

        async def drive() -> NodeTestResult:
            pending.task = asyncio.current_task()
            if pending.cancel_requested:
                raise asyncio.CancelledError
            return await run_node_test(
                document, node_id, values, llm=llm, test_id=test_id, timeout_s=timeout_s, tools=tools,
                settings=settings,
            )

        def done(fut: concurrent.futures.Future[NodeTestResult]) -> None:
            pending.task = None

        pending.future = asyncio.run_coroutine_threadsafe(drive(), self._loop)
        pending.future.add_done_callback(done)
        with self._lock:
            self._tests[test_id] = pending
            finished = [k for k, p in self._tests.items() if p.future.done()]
            for k in finished[: max(0, len(finished) - self.KEEP)]:
                del self._tests[k]
        return test_id

    def cancel(self, test_id: str) -> bool:
        """Stop a running test; True if it was running."""
        with self._lock:
            pending = self._tests.get(test_id)
        if pending is None or pending.future.done():
            return False

        def in_loop() -> None:
            pending.cancel_requested = True
            if pending.task is not None:
                pending.task.cancel()

        self._loop.call_soon_threadsafe(in_loop)
        return True

    def result(self, test_id: str, wait_s: float = 0.0) -> NodeTestResult | None:
        """The test's result once it has finished (waiting up to ``wait_s``), else None.

        Raises:
            KeyError: no test with that id (or it was forgotten: only the latest :attr:`KEEP` are kept).
        """
        with self._lock:
            pending = self._tests[test_id]
        try:
            result = pending.future.result(timeout=wait_s)
        except concurrent.futures.TimeoutError:
            return None
        except concurrent.futures.CancelledError:
            result = NodeTestResult(test_id=test_id, node_id="", status="cancelled", error="cancelled")
        return result

    def running(self) -> list[str]:
        with self._lock:
            return [k for k, p in self._tests.items() if not p.future.done()]


__all__ = [
    "TEST_TIME_LIMIT_S",
    "NodeTestContext",
    "NodeTestInvalid",
    "NodeTestResult",
    "NodeTests",
    "ToolCallRecord",
    "check_values",
    "node_test_context",
    "referenced",
    "run_node_test",
    "time_limit",
]
