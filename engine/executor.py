"""The scheduler: runs a compiled plan and emits the run's events.

State is kept as counters on node indices: each node waits for its forward
predecessors (``pending``), runs if any incoming edge was taken, and is
skipped otherwise, the skip propagating. A node whose completion makes
exactly one successor ready keeps running it in the same task, so a chain
costs no task switches; extra ready successors start as tasks and run
concurrently. Loops and loop exits follow :mod:`engine.plan`.

The executor knows nothing of stores or pages: it is handed an ``on_event``
sink and a chat model.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar, assert_never, overload

from engine import template_budget
from engine.config import DEFAULT_MODEL, Settings
from engine.errors import EngineError, IterationLimit, NodeError, NodeTimeout, is_retryable
from engine.events import (
    ApprovalDecidedData,
    ApprovalRequestedData,
    Event,
    EventType,
    ForkedFrom,
    LlmCompletedData,
    LlmTokenData,
    LogData,
    MemoryRecalledData,
    MemorySavedData,
    NodeCompletedData,
    NodeFailedData,
    NodeSkippedData,
    NodeStartedData,
    RunCancelledData,
    RunCompletedData,
    RunFailedData,
    RunStartedData,
    RunWaitingData,
    ToolCalledData,
    ToolResultData,
)
from engine.llm.base import ChatModel
from engine.model import Workflow
from engine.nodes import KINDS
from engine.nodes.approval import ApprovalSpec, decision_output
from engine.plan import Plan, PlanNode
from engine.statuses import RunStatus
from tools import DEFAULT_MAX_RESULT_CHARS, ToolRegistry, ToolResult, default_registry
from tools.plain import SCALARS, to_plain

EventSink = Callable[[Event], None]
_EMPTY: Mapping[str, Any] = {}
_NULL_OUTPUT: Mapping[str, Any] = {"output": None}
# Rare events whose data carries values from users or stores, made plain JSON as a whole by _Run.emit.
# The values of the frequent ones are made plain where they come in, once each: node inputs by
# set_input, tool args and results by call_tool, node outputs by _execute.
_FOREIGN_DATA = frozenset({"run.started", "memory.recalled", "memory.saved"})


@dataclass(slots=True)
class RunResult:
    """How a run ended. ``events`` is the full ordered event list."""

    run_id: str
    status: RunStatus  # completed | failed | cancelled | waiting (an approval waits for a decision)
    result: dict[str, Any] | None
    error: str | None
    node_id: str | None = None  # the node that failed the run, if one did
    events: list[Event] = field(default_factory=list)


class _Stop(Exception):
    """Internal: this worker must stop because the run has failed."""


class _Wait(Exception):
    """Internal: this worker's branch stops at an approval node that waits for a decision."""


class NodeContextImpl:
    """The :class:`engine.nodes.base.NodeContext` handed to one node execution."""

    __slots__ = (
        "_run",
        "node_id",
        "iteration",
        "attempt",
        "_vars",
        "_extra",
        "input",
        "_given",
    )

    def __init__(
        self, run: _Run, node_id: str, iteration: int, extra: Mapping[str, Any] | None = None, attempt: int = 1
    ):
        self._run = run
        self.node_id = node_id
        self.iteration = iteration
        self.attempt = attempt  # 1-based: which try of the node's ``retry`` this context serves
        self._extra = extra
        self._vars: dict[str, Any] | None = None
        self.input: dict[str, Any] | None = None
        self._given: dict[str, Any] | None = None  # what set_input was handed, before it was made plain

    # The run's own, read through it: a node uses them seldom, and every execution makes a context.
    @property
    def llm(self) -> ChatModel:
        return self._run.llm

    @property
    def default_model(self) -> str:
        return self._run.default_model

    @property
    def run_id(self) -> str:
        return self._run.run_id

    @property
    def workflow_name(self) -> str:
        return self._run.workflow.name

    @property
    def tools(self) -> ToolRegistry:
        return self._run.tools

    def set_input(self, summary: dict[str, Any]) -> None:
        """Record what this execution was given (rendered prompt, tool args) for history views.

        Recorded as plain JSON (see :func:`tools.plain.to_plain`), long strings clipped; the values the node
        goes on using are untouched.
        """
        self._given = summary
        record = {}
        for key, value in summary.items():
            if type(value) not in SCALARS:
                value = to_plain(value)
            if type(value) is str and len(value) > _CLIP:
                value = _clip(value)
            record[key] = value
        self.input = record

    def vars(self) -> Mapping[str, Any]:
        if self._vars is None:
            self._vars = {"inputs": self._run.inputs, "nodes": self._run.node_vars, "iteration": self.iteration}
            if self._extra:
                self._vars.update(self._extra)
        return self._vars

    @overload
    def emit(self, type: Literal["llm.token"], data: LlmTokenData) -> None: ...
    @overload
    def emit(self, type: Literal["llm.completed"], data: LlmCompletedData) -> None: ...
    @overload
    def emit(self, type: Literal["tool.called"], data: ToolCalledData) -> None: ...
    @overload
    def emit(self, type: Literal["tool.result"], data: ToolResultData) -> None: ...
    @overload
    def emit(self, type: Literal["memory.recalled"], data: MemoryRecalledData) -> None: ...
    @overload
    def emit(self, type: Literal["memory.saved"], data: MemorySavedData) -> None: ...
    @overload
    def emit(self, type: Literal["log"], data: LogData) -> None: ...
    def emit(self, type: EventType, data: Mapping[str, Any]) -> None:
        if self._extra is not None:
            data = {**data, "index": self._extra["index"]}
        self._run.emit(type, self.node_id, data)  # type: ignore[call-overload]  # the overloads checked the pair

    def for_item(self, item: Any, index: int) -> NodeContextImpl:
        return NodeContextImpl(self._run, self.node_id, self.iteration, {"item": item, "index": index}, self.attempt)

    async def call_tool(
        self,
        name: str,
        args: dict[str, Any],
        *,
        call_id: str | None = None,
        refused: str | None = None,
        max_result_chars: int = DEFAULT_MAX_RESULT_CHARS,
    ) -> ToolResult:
        """Call a tool (or refuse it) with ``tool.called`` and ``tool.result`` events.

        A result whose JSON text is longer than ``max_result_chars`` comes back as that
        many characters plus a marker, and ``tool.result`` says ``"truncated": true``.
        The default suits what a model reads; a tool node passes a much larger cap.
        """
        event_id = f"call_{next(self._run.call_ids)}"
        given = self._given
        if given is not None and type(args) is dict and given.get("args") is args:
            plain_args = self.input["args"]  # type: ignore[index]  # set_input made these very args plain already
        else:
            plain_args = to_plain(args)
        called: ToolCalledData = {"tool": name, "args": plain_args, "call_id": event_id}
        if call_id is not None:
            called["model_call_id"] = call_id
        self.emit("tool.called", called)
        if refused is not None:
            result = ToolResult(ok=False, error=refused)
            self.emit("log", {"level": "warning", "message": f"refused a call to tool '{name}': {refused}"})
        else:
            result = await self.tools.call_tool(name, args, max_result_chars=max_result_chars)
        data: ToolResultData = {"call_id": event_id, "tool": name, "duration_ms": round(result.duration_ms, 3)}
        if result.ok:
            value = result.value
            kind = type(value)
            data["result"] = value if kind in SCALARS or (kind is float and _isfinite(value)) else to_plain(value)
            if result.truncated:
                data["truncated"] = True
        else:
            data["error"] = str(result.error)
            if result.detail:
                data["detail"] = result.detail
        self.emit("tool.result", data)
        return result


class _EventLog:
    """A run's numbered event log: ``emit`` is typed per event kind (engine/events.py) in this one place, for a
    run (:class:`_Run`) and for a test of one node (engine/single_node.py). ``on_event`` sees each event."""

    run_id: str
    seq: int
    events: list[Event]
    on_event: EventSink | None

    @overload
    def emit(self, type: Literal["run.started"], node_id: str | None, data: RunStartedData) -> None: ...
    @overload
    def emit(self, type: Literal["node.started"], node_id: str | None, data: NodeStartedData) -> None: ...
    @overload
    def emit(self, type: Literal["node.completed"], node_id: str | None, data: NodeCompletedData) -> None: ...
    @overload
    def emit(self, type: Literal["node.failed"], node_id: str | None, data: NodeFailedData) -> None: ...
    @overload
    def emit(self, type: Literal["node.skipped"], node_id: str | None, data: NodeSkippedData) -> None: ...
    @overload
    def emit(self, type: Literal["llm.token"], node_id: str | None, data: LlmTokenData) -> None: ...
    @overload
    def emit(self, type: Literal["llm.completed"], node_id: str | None, data: LlmCompletedData) -> None: ...
    @overload
    def emit(self, type: Literal["tool.called"], node_id: str | None, data: ToolCalledData) -> None: ...
    @overload
    def emit(self, type: Literal["tool.result"], node_id: str | None, data: ToolResultData) -> None: ...
    @overload
    def emit(self, type: Literal["memory.recalled"], node_id: str | None, data: MemoryRecalledData) -> None: ...
    @overload
    def emit(self, type: Literal["memory.saved"], node_id: str | None, data: MemorySavedData) -> None: ...
    @overload
    def emit(self, type: Literal["log"], node_id: str | None, data: LogData) -> None: ...
    @overload
    def emit(
        self, type: Literal["approval.requested"], node_id: str | None, data: ApprovalRequestedData
    ) -> None: ...
    @overload
    def emit(self, type: Literal["approval.decided"], node_id: str | None, data: ApprovalDecidedData) -> None: ...
    @overload
    def emit(self, type: Literal["run.waiting"], node_id: str | None, data: RunWaitingData) -> None: ...
    @overload
    def emit(self, type: Literal["run.completed"], node_id: str | None, data: RunCompletedData) -> None: ...
    @overload
    def emit(self, type: Literal["run.failed"], node_id: str | None, data: RunFailedData) -> None: ...
    @overload
    def emit(self, type: Literal["run.cancelled"], node_id: str | None, data: RunCancelledData) -> None: ...
    def emit(self, type: EventType, node_id: str | None, data: Mapping[str, Any]) -> None:
        if type in _FOREIGN_DATA:
            data = to_plain(data)
        self.seq += 1
        event = Event(self.seq, self.run_id, time.time(), type, node_id, data)
        self.events.append(event)
        if self.on_event is not None:
            self.on_event(event)


class _Run(_EventLog):
    """One run of one plan. Everything here runs on the event loop's thread."""

    def __init__(
        self,
        workflow: Workflow,
        inputs: dict[str, Any],
        *,
        llm: ChatModel,
        on_event: EventSink | None,
        run_id: str | None,
        replay: Replay | None = None,
        tools: ToolRegistry | None = None,
        default_model: str = DEFAULT_MODEL,
    ):
        plan: Plan = workflow.plan
        self.workflow = workflow
        self.plan = plan
        self.nodes = plan.nodes
        self.edges = plan.edges
        self.loops = plan.loops
        self.runners = [KINDS[node.type].run for node in plan.nodes]
        self.inputs = inputs
        self.llm = llm
        self.tools = tools if tools is not None else default_registry()
        self.default_model = workflow.settings.model or default_model
        self.on_event = on_event
        self.run_id = run_id or uuid.uuid4().hex
        self.max_iterations = workflow.settings.max_iterations
        self.events: list[Event] = []
        self.replay = replay
        self.seq = replay.last_seq if replay is not None else 0
        self.call_ids = itertools.count(replay.calls + 1 if replay is not None else 1)  # unique in the run's whole log
        self.pending = [node.forward_preds for node in plan.nodes]
        self.taken = [False] * len(plan.nodes)
        self.edge_taken = [False] * len(plan.edges)
        self.run_count = [0] * len(plan.nodes)
        self.visits = [0] * len(plan.nodes)  # executions + skips: the ``execution`` index
        self.loop_iter = [0] * len(plan.loops)
        self.loop_deferred: list[dict[int, bool]] = [{} for _ in plan.loops]
        self.node_vars: dict[str, Mapping[str, Any]] = {}
        self.result: dict[str, Any] = {}
        self.tasks: set[asyncio.Task[None]] = set()
        self.idle: asyncio.Future[None] | None = None
        self.failure: tuple[str, str | None] | None = None
        self.waiting: list[str] = []  # approval nodes whose request waits for a decision

    # --- the run ----------------------------------------------------------------

    async def run(self) -> RunResult:
        template_budget.enter_run()  # this run's templates share one time slice (engine/template_budget.py)
        if self.replay is None:
            self.emit("run.started", None, {"inputs": self.inputs, "workflow": self.workflow.name})
        elif self.replay.forked_from is not None:
            started: RunStartedData = {
                "inputs": self.inputs,
                "workflow": self.workflow.name,
                "forked_from": self.replay.forked_from,
            }
            self.emit("run.started", None, started)
        else:
            done = len(self.replay.outputs)
            # paused_at: when the run stopped (its last event), so the idle gap is known (engine.run_times)
            message = f"run resumed: {done} finished node executions reloaded, not re-run"
            resumed: LogData = {"level": "info", "message": message, "resumed": True, "paused_at": self.replay.last_ts}
            self.emit("log", None, resumed)
        timeout_s = self.workflow.settings.timeout_s
        cancelled = False
        try:
            async with asyncio.timeout(timeout_s) as deadline:
                # nodes run in tasks; this one only waits, so _fail can cancel them all
                self._spawn(self.plan.input_index)
                while self.tasks and self.failure is None:
                    self.idle = asyncio.get_running_loop().create_future()
                    await self.idle
        except TimeoutError:
            if not deadline.expired():
                raise
            self._fail(f"the run timed out after {timeout_s:g} s (settings.timeout_s)", None)
        except asyncio.CancelledError:
            cancelled = True
        await self._stop_tasks()
        if cancelled:
            self.emit("run.cancelled", None, {})
            return self._result("cancelled", None)
        if self.failure is not None:
            error, node_id = self.failure
            self.emit("run.failed", None, {"error": error, "node_id": node_id})
            return self._result("failed", error, node_id)
        if self.waiting:  # every branch that could go on has: the run pauses until a decision
            self.emit("run.waiting", None, {"nodes": sorted(set(self.waiting))})
            return self._result("waiting", None)
        self.emit("run.completed", None, {"result": self.result})
        return self._result("completed", None)

    def _result(self, status: RunStatus, error: str | None, node_id: str | None = None) -> RunResult:
        result = self.result if status == "completed" else None
        return RunResult(self.run_id, status, result, error, node_id, self.events)

    async def _stop_tasks(self) -> None:
        while self.tasks:
            tasks = list(self.tasks)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    def _fail(self, error: str, node_id: str | None) -> None:
        if self.failure is None:
            self.failure = (error, node_id)
        current = asyncio.current_task()
        for task in self.tasks:
            if task is not current:
                task.cancel()
        self._wake()

    def _wake(self) -> None:
        if self.idle is not None and not self.idle.done():
            self.idle.set_result(None)

    def _spawn(self, index: int) -> None:
        task = asyncio.get_running_loop().create_task(self._worker(index))
        self.tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            self._fail(f"internal error in the engine: {type(exc).__name__}: {exc}", None)
        if not self.tasks:
            self._wake()

    async def _worker(self, index: int) -> None:
        """Run ``index``, then keep running the one successor it makes ready."""
        while self.failure is None:
            node = self.nodes[index]
            try:
                output = await self._execute(node)
            except (_Stop, _Wait):
                return
            self.node_vars[node.id] = {"output": output}
            if node.type == "output":
                self.result[self.plan.output_names[node.index]] = output
            ready = self._resolve(index, skipped=False, output=output)
            if not ready or self.failure is not None:
                return
            index = ready[0]
            for other in ready[1:]:
                self._spawn(other)

    # --- one node -----------------------------------------------------------------

    async def _execute(self, node: PlanNode) -> Any:  # noqa: C901 - replay, approvals and retries: one path
        count = self.run_count[node.index] + 1
        if count > self.max_iterations:
            error = IterationLimit(node.id, self.max_iterations)
            self._fail(str(error), node.id)
            raise _Stop
        self.run_count[node.index] = count
        execution = self.visits[node.index]
        self.visits[node.index] = execution + 1
        iteration = self.loop_iter[node.innermost_loop] if node.innermost_loop is not None else 0
        started: NodeStartedData = {"iteration": iteration, "execution": execution}
        if self.replay is not None:
            key = (node.id, execution)
            if key in self.replay.outputs:
                output = self.replay.outputs[key]
                if key in self.replay.reused:  # a fork's output not yet in its log: say what it reused
                    self.emit("node.started", node.id, {**started, "reused": True})
                    reused: NodeCompletedData = {"output": output, "duration_ms": 0.0, "attempts": 0, "reused": True}
                    self.emit("node.completed", node.id, reused)
                return output
            if node.type == "approval" and key in self.replay.requests:
                return self._decided(node, key)
            if key in self.replay.began:
                started["restarted"] = True  # it began before the crash or failure: it starts again from scratch
        if node.type == "approval":
            await self._ask(node, started)
        self.emit("node.started", node.id, started)
        began_at = time.perf_counter()
        ctx = NodeContextImpl(self, node.id, iteration)
        runner = self.runners[node.index]
        attempt = 1
        while True:
            try:
                if template_budget.must_yield():  # its templates used much of their slice: let the others run
                    await template_budget.next_turn()
                if node.timeout_s is None:
                    output = await runner(node.spec, ctx)
                    if type(output) not in SCALARS:
                        output = to_plain(output, "raise")
                else:
                    output = await self._with_timeout(node, runner, ctx)
                break
            except asyncio.CancelledError:
                stopped: NodeFailedData = {"error": "cancelled", "cancelled": True, "attempts": attempt}
                self.emit("node.failed", node.id, _with_input(stopped, ctx))
                raise
            except Exception as exc:  # noqa: BLE001 - every node failure is reported the same way
                reason = _reason(exc)
                retryable = is_retryable(exc)
            if attempt >= node.attempts or not retryable:
                if attempt < node.attempts:  # the budget is left unspent: say why
                    message = f"attempt {attempt} of {node.attempts} failed: {reason}; not retried: it would fail again"
                    self.emit("log", node.id, {"level": "warning", "message": message})
                gave_up: NodeFailedData = {"error": reason, "attempts": attempt}
                self.emit("node.failed", node.id, _with_input(gave_up, ctx))
                self._fail(f"node '{node.id}' failed: {reason}", node.id)
                raise _Stop
            delay = node.backoff_s * 2 ** (attempt - 1)
            self.emit(
                "log",
                node.id,
                {
                    "level": "warning",
                    "message": f"attempt {attempt} of {node.attempts} failed: {reason}; retrying in {delay:g} s",
                },
            )
            try:
                await asyncio.sleep(delay)
            except asyncio.CancelledError:  # cancelled between attempts: the execution still ends with node.failed
                failed: NodeFailedData = {
                    "error": "cancelled",
                    "cancelled": True,
                    "attempts": attempt,
                    "last_error": reason,
                }
                self.emit("node.failed", node.id, _with_input(failed, ctx))
                raise
            attempt += 1
            ctx = NodeContextImpl(self, node.id, iteration, None, attempt)
        duration_ms = (time.perf_counter() - began_at) * 1000.0
        if node.routes is not None and ctx.input is not None:  # a condition's record says where it went
            ctx.input.update(self._taken(node, output))
        done: NodeCompletedData = {"output": output, "duration_ms": round(duration_ms, 3), "attempts": attempt}
        self.emit("node.completed", node.id, _with_input(done, ctx))
        return output

    def _taken(self, node: PlanNode, output: Any) -> dict[str, Any]:
        """Where a condition (or an approval, by its decision) went for ``output``: the ``when`` it
        matched ("default" if none) and the targets."""
        assert node.routes is not None
        key = when_key(output.get("decision") if node.type == "approval" else output)
        return {
            "when": key if key in node.routes else "default",
            "taken": [self.nodes[self.edges[e].target].id for e in _routes(node, output)],
        }

    async def _ask(self, node: PlanNode, started: NodeStartedData) -> None:
        """Emit the approval request and stop this branch (raises _Wait; _Stop when the request fails)."""
        self.emit("node.started", node.id, started)
        spec: ApprovalSpec = node.spec
        ctx = NodeContextImpl(self, node.id, started["iteration"])
        try:
            rendered = to_plain(await self.runners[node.index](spec, ctx), "raise")
        except asyncio.CancelledError:
            self.emit("node.failed", node.id, {"error": "cancelled", "cancelled": True, "attempts": 1})
            raise
        except Exception as exc:  # noqa: BLE001 - a template that fails fails the node, like any other
            reason = _reason(exc)
            failed: NodeFailedData = {"error": reason, "attempts": 1}
            self.emit("node.failed", node.id, _with_input(failed, ctx))
            self._fail(f"node '{node.id}' failed: {reason}", node.id)
            raise _Stop from None
        request: ApprovalRequestedData = {
            "message": rendered["message"],
            "fields": rendered["fields"],
            "options": list(spec.options),
            "execution": started["execution"],
            "iteration": started["iteration"],
            "requested_at": time.time(),
        }
        if ctx.input is not None:
            request["reads"] = ctx.input["reads"]
        if spec.timeout_s is not None and spec.on_timeout is not None:
            request["timeout_at"] = time.time() + spec.timeout_s
            request["on_timeout"] = spec.on_timeout
        self.emit("approval.requested", node.id, request)
        self.waiting.append(node.id)
        raise _Wait

    def _decided(self, node: PlanNode, key: tuple[str, int]) -> Any:
        """Finish an approval asked before with its decision (``on_timeout: fail`` fails it); none yet: wait on."""
        assert self.replay is not None
        decided = self.replay.decisions.get(key)
        if decided is None:
            self.waiting.append(node.id)  # asked before, not decided yet: it goes on waiting
            raise _Wait
        request = self.replay.requests[key]
        record: dict[str, Any] = {  # its input: the request as shown to the person, and what it read
            "message": request.get("message"),
            "fields": request.get("fields"),
            "reads": request.get("reads", {}),
        }
        if decided.get("decision") is None:
            spec: ApprovalSpec = node.spec
            reason = f"nobody decided within {spec.timeout_s or 0:g} s (on_timeout: fail)"
            self.emit("node.failed", node.id, {"error": reason, "attempts": 1, "input": record})
            self._fail(f"node '{node.id}' failed: {reason}", node.id)
            raise _Stop
        output = decision_output(dict(decided))
        if node.routes is not None:
            record.update(self._taken(node, output))
        asked, answered = request.get("requested_at"), decided.get("decided_at")
        waited_ms = (answered - asked) * 1000.0 if asked is not None and answered is not None else 0.0
        done: NodeCompletedData = {
            "output": output,
            "duration_ms": round(max(waited_ms, 0.0), 3),  # the wait for the person
            "attempts": 1,
            "input": record,
        }
        self.emit("node.completed", node.id, done)
        return output

    async def _with_timeout(self, node: PlanNode, runner: Any, ctx: NodeContextImpl) -> Any:
        assert node.timeout_s is not None
        try:
            async with asyncio.timeout(node.timeout_s) as deadline:
                return to_plain(await runner(node.spec, ctx), "raise")
        except TimeoutError:
            if deadline.expired():
                raise NodeTimeout(node.id, node.timeout_s) from None
            raise

    # --- readiness, skips and loops --------------------------------------------------

    def _resolve(self, index: int, *, skipped: bool, output: Any = None) -> list[int]:
        """Account for a finished or skipped node; returns the nodes now ready to run."""
        ready: list[int] = []
        work: list[tuple[int, bool, Any]] = [(index, skipped, output)]
        while work:
            i, skip, out = work.pop()
            node = self.nodes[i]
            if skip:
                self._skip(node)
            chosen = _routes(node, out) if node.routes is not None and not skip else None
            for e in node.out_edges:
                taken = not skip and (chosen is None or e in chosen)
                exit_loop = self.edges[e].exit_loop
                if exit_loop is None:
                    self._deliver(e, taken, ready, work)
                else:
                    self.loop_deferred[exit_loop][e] = taken
            if node.back_edge is not None and node.closes_loop is not None:
                if not skip and (chosen is None or node.back_edge in chosen):
                    self._repeat(node.closes_loop, ready)
                else:
                    self._exit(node.closes_loop, ready, work)
        return ready

    def _skip(self, node: PlanNode) -> None:
        self.node_vars[node.id] = _NULL_OUTPUT
        execution = self.visits[node.index]
        self.visits[node.index] = execution + 1
        if self.replay is not None and (node.id, execution) in self.replay.skipped:
            return
        iteration = self.loop_iter[node.innermost_loop] if node.innermost_loop is not None else 0
        self.emit("node.skipped", node.id, {"iteration": iteration, "execution": execution})

    def _deliver(self, e: int, taken: bool, ready: list[int], work: list[tuple[int, bool, Any]]) -> None:
        target = self.edges[e].target
        self.edge_taken[e] = taken
        if taken:
            self.taken[target] = True
        left = self.pending[target] - 1
        self.pending[target] = left
        if left == 0:
            if self.taken[target]:
                ready.append(target)
            else:
                work.append((target, True, None))

    def _repeat(self, loop_index: int, ready: list[int]) -> None:
        loop = self.loops[loop_index]
        for member in loop.members:
            self.pending[member] = loop.body_preds[member]
            self.taken[member] = any(self.edge_taken[e] for e in loop.outside_in_edges[member])
        for inner in loop.nested:
            self.loop_iter[inner] = 0
            self.loop_deferred[inner].clear()
        self.loop_iter[loop_index] += 1
        self.taken[loop.header] = True
        ready.append(loop.header)

    def _exit(self, loop_index: int, ready: list[int], work: list[tuple[int, bool, Any]]) -> None:
        deferred = self.loop_deferred[loop_index]
        if deferred:
            delivered = sorted(deferred.items())
            deferred.clear()
            for e, taken in delivered:
                self._deliver(e, taken, ready, work)


@dataclass(slots=True)
class Replay:
    """What a resumed run reloads instead of re-running: finished executions by (node id, execution)."""

    outputs: dict[tuple[str, int], Any]
    skipped: set[tuple[str, int]]
    last_seq: int
    last_ts: float | None = None  # when the last event of the log was emitted (the run stopped then)
    began: set[tuple[str, int]] = field(default_factory=set)  # started, never completed
    # approvals: requests asked (approval.requested data) and their decisions (approval.decided data)
    requests: dict[tuple[str, int], Mapping[str, Any]] = field(default_factory=dict)
    decisions: dict[tuple[str, int], Mapping[str, Any]] = field(default_factory=dict)
    calls: int = 0  # highest ``call_N`` already in the log: the resumed run numbers its calls after it
    # A fork (rerun from a node, see engine.fork): outputs are the source run's, the log starts empty,
    # so reused executions (``reused``) emit node.started/node.completed with "reused": true, and
    # run.started says this (``forked_from`` set: a fork's first start). A resumed fork has no
    # ``forked_from``; its ``reused`` are the source's outputs its own log did not hold yet.
    forked_from: ForkedFrom | None = None
    reused: set[tuple[str, int]] = field(default_factory=set)


def replay_from_events(events: list[Event]) -> Replay:
    """Build a :class:`Replay` from a run's committed events."""
    outputs: dict[tuple[str, int], Any] = {}
    skipped: set[tuple[str, int]] = set()
    began: set[tuple[str, int]] = set()
    started: dict[str, int] = {}
    requests: dict[tuple[str, int], Mapping[str, Any]] = {}
    decisions: dict[tuple[str, int], Mapping[str, Any]] = {}
    calls = 0
    for event in events:
        node = event.node_id
        if node is None:
            continue
        kind = event.type
        match kind:  # every kind named: a new one fails mypy here until it is handled
            case "llm.token" | "llm.completed" | "tool.result" | "memory.recalled" | "memory.saved" | "log":
                pass
            case "tool.called":
                calls = max(calls, _call_number(event.data.get("call_id")))
            case "node.started":
                started[node] = int(event.data.get("execution", 0))
                began.add((node, started[node]))
            case "node.completed":
                if node in started:
                    outputs[(node, started.pop(node))] = event.data.get("output")
            case "node.skipped":
                skipped.add((node, int(event.data.get("execution", 0))))
            case "approval.requested":
                requests[(node, int(event.data.get("execution", 0)))] = event.data
            case "approval.decided":
                decisions[(node, int(event.data.get("execution", 0)))] = event.data
            case "node.failed" | "run.started" | "run.completed" | "run.failed" | "run.cancelled" | "run.waiting":
                pass  # a failed execution runs again; run events carry no node
            case _:
                assert_never(kind)
    last_seq = events[-1].seq if events else 0
    last_ts = events[-1].ts if events else None
    return Replay(
        outputs=outputs,
        skipped=skipped,
        last_seq=last_seq,
        last_ts=last_ts,
        began=began - set(outputs),
        calls=calls,
        requests=requests,
        decisions=decisions,
    )


def _call_number(call_id: Any) -> int:
    """N of a ``call_N`` id (0 for anything else)."""
    if isinstance(call_id, str) and call_id.startswith("call_") and call_id[5:].isdigit():
        return int(call_id[5:])
    return 0


_CLIP = 4000
_isfinite = math.isfinite


def _clip(value: Any) -> Any:
    if isinstance(value, str) and len(value) > _CLIP:
        return value[:_CLIP] + f"… [{len(value) - _CLIP} more characters]"
    return value


_Finished = TypeVar("_Finished", NodeCompletedData, NodeFailedData)


def _with_input(data: _Finished, ctx: NodeContextImpl) -> _Finished:
    if ctx.input is not None:
        data["input"] = ctx.input
    return data


def _routes(node: PlanNode, output: Any) -> tuple[int, ...]:
    """The edges a condition takes for ``output``: those whose ``when`` matches, else ``default``."""
    assert node.routes is not None
    if node.type == "approval":  # an approval routes by its decision
        return node.routes.get(when_key(output.get("decision"))) or node.default_routes
    return node.routes.get(when_key(output)) or node.default_routes


def when_key(value: Any) -> str:
    """How a condition's output is compared with an edge's ``when``."""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is None:
        return "null"
    return str(value)


def _reason(exc: BaseException) -> str:
    """A node failure in words: our own errors as they are, anything else with its type."""
    if isinstance(exc, NodeError):
        return exc.reason
    text = str(exc)
    if isinstance(exc, EngineError) and text:
        return text
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


async def execute(
    workflow: Workflow,
    inputs: dict[str, Any],
    *,
    llm: ChatModel,
    on_event: EventSink | None = None,
    run_id: str | None = None,
    replay: Replay | None = None,
    settings: Settings | None = None,
    tools: ToolRegistry | None = None,
) -> RunResult:
    """Run a loaded workflow with checked inputs. Prefer :func:`engine.run_workflow`.

    ``settings`` (default: the environment's, :meth:`engine.config.Settings.from_env`) give the default
    model, and the tools and memory this run uses are configured by them.
    Tools come from ``tools`` (default: :func:`tools.default_registry`), and only from it:
    a tool node or agent naming a tool it lacks fails with the names it has.

    With ``replay`` (a resumed run), finished executions are reloaded instead of
    re-run, no ``run.started`` is emitted, and ``seq`` continues after ``replay.last_seq``.
    A fork's replay (``forked_from`` set) starts a new log: ``run.started`` carries
    ``forked_from`` and each reused execution is emitted with ``"reused": true``.
    """
    settings = settings or Settings.now()
    run = _Run(
        workflow, inputs, llm=llm, on_event=on_event, run_id=run_id, replay=replay, tools=tools,
        default_model=settings.llm.default_model,
    )
    with settings.applied():
        return await run.run()
