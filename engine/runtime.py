"""The background runtime: one asyncio loop in a daemon thread, runs made durable.

Pages, the CLI and the HTTP API call ``Runtime`` from their own threads; every
method here is thread-safe. Runs execute on the runtime's loop; each event
goes to a bounded in-memory buffer (what live views read) and to the store's
single writer (what history and resume read). ``events_since`` serves from
the buffer and falls back to the store for older events.

Callers read stored runs and workflows through ``Runtime.reader`` (a
:class:`~engine.reader.RunReader`: plain records, never the store's rows) and
change them through the named methods below (``save_workflow``,
``archive_workflow``, ``save_draft``, ``drop_draft``, ``delete_run``); the
store itself is the runtime's own.

Resume: finished node executions are reloaded from the event log, not re-run;
the node that was running when the process died starts again from its
beginning, so its side effects may repeat (as with LangGraph's checkpointer).

Rerun from a node (a fork, :mod:`engine.fork`): a new run of the source run's
workflow version and inputs whose replay holds the source's outputs of every
node that does not depend on the picked node.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import itertools
import re
import threading
import time
import uuid
from collections import OrderedDict, deque
from collections.abc import Collection, Coroutine, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, assert_never

from engine.approvals import apply_due_timeouts, cancel_events, decided_event, open_requests
from engine.config import Settings
from engine.errors import (
    EngineError,
    NotResumable,
    NotWaiting,
    Problem,
    RunNotFound,
    WorkflowInvalid,
)
from engine.events import TERMINAL_TYPES, Event, ForkedFrom
from engine.executor import Replay, execute, replay_from_events
from engine.fork import (
    FINISHED,
    ForkInvalid,
    ForkRequest,
    NotForkable,
    check_request,
    fork_record,
    fork_replay,
    rerun_nodes,
    resumed_fork_replay,
    with_config,
)
from engine.gc_policy import tune_for_many_tasks
from engine.inputs import check_inputs
from engine.llm import ChatModel, default_chat_model
from engine.model import Workflow
from engine.reader import RunReader, RunRecord
from engine.settings import Settings as SavedSettings
from engine.settings import save as save_saved_settings
from engine.single_node import NodeTestContext, NodeTestResult, NodeTests, node_test_context
from engine.statuses import RESUMABLE_RUN
from engine.store import Store, WorkflowRef, process_owner
from engine.validate import load_workflow
from tools import ToolRegistry, ToolResult, default_registry
from tools import config as tool_settings
from tools.mcp import load_config as load_mcp_config

if TYPE_CHECKING:
    from tools.mcp.hub import McpHub

_RUN_ID = re.compile(r"[0-9a-f]{32}")

RESUMABLE = RESUMABLE_RUN
KEEP_FINISHED = 500  # finished runs whose buffers stay in memory (up to PRUNE_EVERY more between prunes)
PRUNE_EVERY = 64


@dataclass(frozen=True, slots=True)
class RunInfo:
    """A run's state as the runtime or the store knows it."""

    run_id: str
    status: str  # engine.statuses.RunStatus: queued | running | waiting | completed | failed | cancelled | ...
    workflow_name: str
    inputs: dict[str, Any]
    result: Any = None
    error: str | None = None
    error_node: str | None = None
    last_seq: int = 0
    created_at: float | None = None
    finished_at: float | None = None
    prompt_tokens: int = 0  # these two include the tokens of failed tries
    completion_tokens: int = 0
    tokens_estimated: bool = False  # some counts were estimated (the endpoint sent none)
    failed_tokens: int = 0  # prompt + completion tokens of failed tries (cut-off answers)
    forked_from: dict[str, Any] | None = None  # a rerun's source: {"run_id", "node", ...}

    @property
    def finished(self) -> bool:
        return self.status not in ("running", "queued")

    @classmethod
    def from_row(cls, row: RunRecord | Any) -> RunInfo:
        """From a stored run: a :class:`~engine.reader.RunRecord` (or the store's row)."""
        return cls(
            run_id=row.run_id,
            status=row.status,
            workflow_name=row.workflow_name,
            inputs=dict(row.inputs),
            result=row.result,
            error=row.error,
            error_node=row.error_node,
            last_seq=row.last_seq,
            created_at=row.created_at,
            finished_at=row.finished_at,
            prompt_tokens=row.prompt_tokens,
            completion_tokens=row.completion_tokens,
            tokens_estimated=bool(row.tokens_estimated),
            failed_tokens=row.failed_tokens,
            forked_from=row.forked_from,
        )


@dataclass(eq=False)
class _Live:
    """A run this runtime is executing (or executed recently)."""

    run_id: str
    workflow_name: str
    inputs: dict[str, Any]
    buffer: deque[Event]
    created_at: float = field(default_factory=time.time)
    status: str = "running"
    result: Any = None
    error: str | None = None
    error_node: str | None = None
    last_seq: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    tokens_estimated: bool = False
    failed_tokens: int = 0
    finished_at: float | None = None
    store_error: str | None = None
    forked_from: dict[str, Any] | None = None
    future: concurrent.futures.Future[None] | None = None
    task: asyncio.Task[Any] | None = None  # set on the loop while the run executes
    cancel_requested: bool = False
    cond: threading.Condition = field(default_factory=threading.Condition)

    def info(self) -> RunInfo:
        return RunInfo(
            run_id=self.run_id,
            status=self.status,
            workflow_name=self.workflow_name,
            inputs=self.inputs,
            result=self.result,
            error=self.error,
            error_node=self.error_node,
            last_seq=self.last_seq,
            created_at=self.created_at,
            finished_at=self.finished_at,
            prompt_tokens=self.prompt_tokens,
            completion_tokens=self.completion_tokens,
            tokens_estimated=self.tokens_estimated,
            failed_tokens=self.failed_tokens,
            forked_from=self.forked_from,
        )


@dataclass(frozen=True, slots=True)
class _Fork:
    """A checked rerun request (:meth:`Runtime._prepare_fork`): what both modes' ``rerun`` create the run from."""

    source: Any  # the source run's stored row
    workflow: Workflow  # its workflow version, the config edit applied
    replay: Replay  # the reused outputs, pins applied (local mode runs it; queue mode's worker builds it again)
    record: dict[str, Any]  # the new run's forked_from (engine.fork.fork_record: with the pinned values)


def _settle(future: concurrent.futures.Future[None], task: asyncio.Task[None]) -> None:
    """A run's task ended: its future (what ``asyncio.run_coroutine_threadsafe`` gave before) says how."""
    if task.cancelled():
        future.cancel()
    if not future.set_running_or_notify_cancel():
        return
    error = task.exception()
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(None)


def _cancel_from_outside(
    loop: asyncio.AbstractEventLoop, task: asyncio.Task[None], future: concurrent.futures.Future[None]
) -> None:
    """The future was cancelled from another thread: cancel the task too (on its loop)."""
    if future.cancelled() and not task.done() and not loop.is_closed():
        loop.call_soon_threadsafe(task.cancel)


class Runtime:
    """Runs workflows in the background and keeps them durable.

    Args:
        database_url: any SQLAlchemy URL; default ``DATABASE_URL``, else SQLite under ``DATA_DIR``.
        data_dir: the data directory when no URL is given (default ``DATA_DIR`` or ``./data``).
        llm: the chat model for agents (default: the settings' endpoint if configured, else the offline model).
        settings: the configuration (:class:`engine.config.Settings`; default: read from the environment and
            the settings file now). :meth:`update_settings` swaps it for the runs started after.
        buffer_events: how many recent events each run keeps in memory.
        heartbeat_s: how often running runs are marked alive in the store.
        approval_sweep_s: how often approvals whose timeout is due get their ``on_timeout`` (also once at start).
        tools: the tools its runs may call, checked when a workflow is loaded and used when it runs
            (default: :func:`tools.default_registry`: the built-ins, ``TOOLS_MODULES`` and plugins).
    """

    def __init__(
        self,
        *,
        database_url: str | None = None,
        data_dir: str | None = None,
        llm: ChatModel | None = None,
        buffer_events: int = 10_000,
        heartbeat_s: float = 5.0,
        approval_sweep_s: float = 5.0,
        tools: ToolRegistry | None = None,
        settings: Settings | None = None,
    ):
        tune_for_many_tasks()  # wide fan-outs: young collections, not repeated full ones (engine/gc_policy.py)
        self._settings = settings or Settings.from_env()
        self._base_tools = tools
        self.tools: ToolRegistry = tools if tools is not None else default_registry()
        self.mcp: McpHub | None = None
        self.mcp_problems: tuple[str, ...] = ()
        self.reload_mcp()
        self.store = Store(
            database_url, data_dir=data_dir, on_write_failure=self._on_write_failure, settings=self._settings
        )
        self.reader = RunReader(self.store)
        self.interrupted_at_start = self._mark_dead_owners()
        self._llm = llm
        self._buffer_events = buffer_events
        self._owner = process_owner()
        self._runs: OrderedDict[str, _Live] = OrderedDict()
        self._prune_at = 0  # _register drops finished runs beyond KEEP_FINISHED once _runs holds this many
        self._lock = threading.Lock()
        self._submit_lock = threading.Lock()  # submits that name their run id: check and create as one step
        # Runs submitted but not yet started on the loop: a burst of submits wakes the loop once
        # (each wake-up is a write to its socket and a hand-over of the GIL to the loop's thread).
        self._starting: list[tuple[_Live, Coroutine[Any, Any, None], concurrent.futures.Future[None]]] = []
        self._starting_lock = threading.Lock()
        self._closed = False
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="engine-runtime", daemon=True)
        self._thread.start()
        self._settings_timeout_every = approval_sweep_s
        self._heartbeat = asyncio.run_coroutine_threadsafe(self._beat(heartbeat_s), self._loop)
        self._node_tests = NodeTests(self._loop)

    def _mark_dead_owners(self) -> list[str]:
        """Mark runs of processes that are gone ``interrupted`` (queue mode leaves that to its sweep)."""
        return self.store.mark_interrupted()

    # --- settings ------------------------------------------------------------------------

    def reload_mcp(self) -> None:
        """(Re)read the MCP servers' config file: the old servers stop, the new ones start on first use.

        Runs started before keep the registry they were given; calls they make to a stopped server fail.
        """
        if self.mcp is not None:
            self.mcp.close()
            self.mcp = None
        config = load_mcp_config(self._settings.tools.mcp_config_file)
        self.mcp_problems = config.problems
        if not config.servers:
            self.tools = self._base_tools if self._base_tools is not None else default_registry()
            return
        # their tools go into a registry of this runtime's own (a fresh one, so no stale tool stays)
        self.tools = (self._base_tools or default_registry()).copy()
        from tools.mcp.hub import McpHub  # the MCP SDK loads only when servers are configured

        self.mcp = McpHub(
            config,
            self.tools,
            child_path=self._settings.tools.child_path,
            log_dir=self._settings.data_dir / "logs" / "mcp",
        )

    @property
    def settings(self) -> Settings:
        """The configuration runs started now are handed (immutable; replaced whole by :meth:`update_settings`)."""
        return self._settings

    def update_settings(self, settings: Settings) -> None:
        """Hand ``settings`` to the runs (and node tests, tool calls) started from now on; running ones keep
        theirs. The store stays as opened (a new ``DATA_DIR`` or ``DATABASE_URL`` needs a restart)."""
        self._settings = settings  # one reference swap: a reader sees the old object or the new one, whole

    def save_settings(self, saved: SavedSettings, *, keep: Collection[str] = ()) -> Path:
        """The Settings page's Save: write ``saved`` to the settings file and hand the runs started from now on
        settings where its endpoint fields not in ``keep`` take effect (:meth:`Settings.with_saved`); the file.

        Raises:
            OSError: the settings file cannot be written. StoreError: (queue mode) the database cannot.
        """
        path = save_saved_settings(saved, self._settings.settings_file)
        self.update_settings(self._settings.with_saved(saved, keep=keep))
        return path

    # --- submitting, cancelling, resuming ---------------------------------------------

    def submit(
        self,
        workflow: Workflow | Mapping[str, Any] | str,
        inputs: Mapping[str, Any] | None = None,
        *,
        run_id: str | None = None,
    ) -> str:
        """Start a run; returns its id at once.

        With ``run_id`` (32 lowercase hex digits, chosen by the caller) the call
        is idempotent: when a run with that id exists already, nothing is
        started and the id is returned. A caller that may be interrupted
        between asking and learning the answer (a Streamlit script) can so
        ask again without starting the run twice.

        Raises:
            WorkflowInvalid, InputsInvalid: before anything is stored or run.
            ValueError: ``run_id`` is not 32 lowercase hex digits.
        """
        self._check_open()
        if run_id is not None and not _RUN_ID.fullmatch(run_id):
            raise ValueError(f"run id must be 32 lowercase hex digits, not {run_id[:40]!r}")
        loaded = load_workflow(workflow, tools=self.tools)
        values = check_inputs(loaded, inputs)
        with self._submit_lock if run_id is not None else contextlib.nullcontext():
            if run_id is not None and self.status(run_id) is not None:
                return run_id
            ref = self.store.save_loaded(loaded)
            run_id = run_id or uuid.uuid4().hex
            now = time.time()  # one creation time for the row and the live record (the pages show both)
            self.store.create_run(run_id=run_id, workflow=ref, inputs=values, owner=self._owner, created_at=now)
            live = self._register(run_id, loaded.name, values, created_at=now)
        self._start(live, loaded, values, None)
        return run_id

    def cancel(self, run_id: str) -> bool:
        """Cancel a running run from any thread, or a waiting one; True if it was running here or waiting."""
        with self._lock:
            live = self._runs.get(run_id)
        if live is None or live.status != "running":
            return self._cancel_waiting(run_id, live)
        self._loop.call_soon_threadsafe(self._cancel_in_loop, live)
        return True

    def _cancel_waiting(self, run_id: str, live: _Live | None) -> bool:
        """End a waiting run ``cancelled``: its open approvals fail as cancelled, then ``run.cancelled``."""
        row = self.store.get_run(run_id)
        if row is None or self._settled_status(run_id, row.status) != "waiting":
            return False
        if not self.store.take_waiting(run_id, self._owner, status="cancelled"):
            return False
        ended = cancel_events(run_id, self.store.events(run_id))
        for event in ended:
            self.store.append(event)
        last = ended[-1].seq
        self.store.writer.wait_committed(run_id, last)
        if live is not None:
            with live.cond:
                live.status, live.last_seq, live.finished_at = "cancelled", last, time.time()
                live.cond.notify_all()
        return True

    @staticmethod
    def _cancel_in_loop(live: _Live) -> None:
        live.cancel_requested = True
        if live.task is not None:
            live.task.cancel()

    def resume(self, run_id: str) -> str:
        """Continue an interrupted or failed run from its last committed state; returns its id.

        Raises:
            RunNotFound: no such run.
            NotResumable: it is running, completed or cancelled.
        """
        self._check_open()
        row = self.store.get_run(run_id)
        if row is None:
            raise RunNotFound(run_id)
        with self._lock:
            live = self._runs.get(run_id)
        status = row.status
        if live is not None:  # this runtime ran it: its own word is newer than the row
            status = live.status
            if status != "running":
                self.store.writer.wait_committed(run_id, live.last_seq)
        if status not in RESUMABLE:
            hint = ""
            if status == "waiting":
                hint = f" (decide it with: python -m engine approve {run_id} NODE --decision V)"
            raise NotResumable(f"run '{run_id}' is {status}; only interrupted or failed runs can be resumed{hint}")
        self._continue(row, self.store.events(run_id), claim=True)
        return run_id

    def _continue(self, row: Any, events: list[Event], *, claim: bool) -> None:
        """Run ``row``'s run on from ``events`` (its log): finished executions are reloaded, not re-run."""
        run_id = row.run_id
        saved = self.store.get_workflow(row.workflow_id, row.workflow_version)
        if saved is None:
            raise NotResumable(f"run '{run_id}': its workflow version is missing from the store")
        document = saved[1].document
        forked_from = row.forked_from
        if forked_from and forked_from.get("config") is not None:  # a fork keeps its edit of the picked node
            document = with_config(document, forked_from["node"], forked_from["config"])
        workflow = load_workflow(document, tools=self.tools)
        if forked_from:  # what its log lacks of the source's outputs is reused, not run again
            replay = resumed_fork_replay(workflow.plan, events, self.store, forked_from)
        else:
            replay = replay_from_events(events)
        if claim:
            self.store.claim_run(run_id, self._owner)
        live = self._register(run_id, row.workflow_name, dict(row.inputs), replace=True, created_at=row.created_at)
        live.forked_from = forked_from
        live.last_seq = replay.last_seq
        live.prompt_tokens, live.completion_tokens = row.prompt_tokens, row.completion_tokens
        live.tokens_estimated, live.failed_tokens = bool(row.tokens_estimated), row.failed_tokens
        self._start(live, workflow, dict(row.inputs), replay)

    # --- approvals: a waiting run goes on when a decision comes (engine.approvals) ----------------

    def decide(
        self,
        run_id: str,
        node: str,
        decision: str | None,
        *,
        fields: Mapping[str, Any] | None = None,
        comment: str = "",
        decided_by: str = "",
        timed_out: bool = False,
    ) -> None:
        """Decide ``node``'s open approval of waiting run ``run_id`` and continue the run (returns at once).

        The decision is recorded as ``approval.decided``; the run goes on from that node with every
        finished node reused. ``fields`` replace the request's fields by name.

        Raises:
            RunNotFound: no such run.
            NotWaiting: the run is not waiting, the node has no open request, or it was decided already.
            DecisionInvalid: ``decision`` is not an option, or a field is unknown or not JSON.
        """
        self._check_open()
        row = self.store.get_run(run_id)
        if row is None:
            raise RunNotFound(run_id)
        status = self._settled_status(run_id, row.status)
        if status != "waiting":
            raise NotWaiting(f"run '{run_id}' is {status}, not waiting for a decision")
        events = self.store.events(run_id)
        decided = decided_event(
            run_id, events, node, decision, fields=fields, comment=comment, decided_by=decided_by, timed_out=timed_out
        )
        if not self.store.take_waiting(run_id, self._owner):
            raise NotWaiting(f"run '{run_id}' is no longer waiting (another decision or a cancel came first)")
        self.store.append(decided)
        self._continue(row, [*events, decided], claim=True)

    def waiting_approvals(self, run_id: str) -> list[dict[str, Any]]:
        """The open approval requests of a run: ``{"node", "execution", **request}`` each (empty if none)."""
        replay = replay_from_events(self.store.events(run_id))
        return [{"node": key[0], **dict(data)} for key, data in sorted(open_requests(replay).items())]

    def apply_due_timeouts(self, now: float | None = None) -> int:
        """Decide every approval whose timeout is due with its ``on_timeout``; how many were decided.

        Run at start and every heartbeat, so a timeout holds across restarts (it is measured from the request).
        """
        return len(apply_due_timeouts(self.store, self.decide, now if now is not None else time.time()))

    def rerun(
        self,
        run_id: str,
        node: str,
        *,
        outputs: Mapping[str, Any] | None = None,
        config: Mapping[str, Any] | None = None,
    ) -> str:
        """Rerun ``run_id`` from ``node`` (a fork): a new run of the same workflow version and inputs.

        Nodes that do not depend on ``node`` reuse their source output (no model or tool call);
        ``node`` and everything downstream run again (the rule: :mod:`engine.fork`, README).
        ``outputs`` pins reused nodes' outputs to other JSON values; ``config`` replaces keys of
        ``node``'s config for this run only. Returns the new run's id.

        Raises:
            RunNotFound: no such run.
            NotForkable: the run is running or interrupted, or its workflow version is gone or no longer valid.
            ForkInvalid: every problem of the request (unknown node, a pin of a node that reruns or
                never completed, a config that does not fit the node's type).
        """
        self._check_open()
        fork = self._prepare_fork(run_id, node, outputs=outputs, config=config)
        row = fork.source
        inputs = dict(row.inputs)
        ref = WorkflowRef(row.workflow_id, row.workflow_version, row.workflow_name, False)
        new_id = uuid.uuid4().hex
        now = time.time()
        self.store.create_run(
            run_id=new_id, workflow=ref, inputs=inputs, owner=self._owner, forked_from=fork.record, created_at=now
        )
        live = self._register(new_id, row.workflow_name, inputs, created_at=now)
        live.forked_from = fork.record
        self._start(live, fork.workflow, inputs, fork.replay)
        return new_id

    def _prepare_fork(
        self,
        run_id: str,
        node: str,
        *,
        outputs: Mapping[str, Any] | None = None,
        config: Mapping[str, Any] | None = None,
    ) -> _Fork:
        """Every check of a rerun request and what the new run needs; both modes' ``rerun`` start from it.

        Raises:
            RunNotFound, NotForkable, ForkInvalid: as :meth:`rerun`.
        """
        row = self.store.get_run(run_id)
        if row is None:
            raise RunNotFound(run_id)
        status = self._settled_status(run_id, row.status)
        if status not in FINISHED:
            hint = f" (continue it with: python -m engine resume {run_id})" if status == "interrupted" else ""
            raise NotForkable(
                f"run '{run_id}' is {status}; only completed, failed or cancelled runs can be rerun{hint}"
            )
        saved = self.store.get_workflow(row.workflow_id, row.workflow_version)
        if saved is None:
            raise NotForkable(f"run '{run_id}': its workflow version is missing from the store")
        document = saved[1].document
        try:
            workflow = load_workflow(document, tools=self.tools)
        except WorkflowInvalid as exc:
            raise NotForkable(f"run '{run_id}': its workflow version no longer validates: {exc.problems[0]}") from None
        edit = dict(config) if config is not None else None
        request = ForkRequest(node=node, outputs=dict(outputs or {}), config=edit)
        problems: list[Problem] = []
        try:
            check_request(workflow.plan, request)
        except ForkInvalid as exc:
            problems.extend(exc.problems)
            if node not in workflow.plan.by_id:
                raise
        if config is not None:
            try:
                workflow = load_workflow(with_config(document, node, config), tools=self.tools)
            except WorkflowInvalid as exc:
                problems.extend(exc.problems)
        if problems:
            raise ForkInvalid(problems)
        forked_from: ForkedFrom = {"run_id": run_id, "node": node}
        if config is not None:
            forked_from["config"] = dict(config)
        if outputs:
            forked_from["outputs"] = sorted(outputs)
        replay = fork_replay(workflow.plan, self.store.events(run_id), request, forked_from)
        return _Fork(source=row, workflow=workflow, replay=replay, record=fork_record(forked_from, outputs))

    def rerun_nodes(self, run_id: str, node: str) -> list[str]:
        """The nodes a rerun of ``run_id`` from ``node`` runs again (the rest are reused), in document order.

        Raises:
            RunNotFound, NotForkable (workflow version missing), ForkInvalid (unknown node).
        """
        row = self.store.get_run(run_id)
        if row is None:
            raise RunNotFound(run_id)
        saved = self.store.get_workflow(row.workflow_id, row.workflow_version)
        if saved is None:
            raise NotForkable(f"run '{run_id}': its workflow version is missing from the store")
        return rerun_nodes(load_workflow(saved[1].document, tools=self.tools), node)

    def _settled_status(self, run_id: str, stored: str) -> str:
        """The run's status, its events all committed when this runtime ran it (its word is newer than the row)."""
        with self._lock:
            live = self._runs.get(run_id)
        if live is None:
            return stored
        if live.status != "running":
            self.store.writer.wait_committed(run_id, live.last_seq)
        return live.status

    # --- changing stored workflows, drafts and runs (reading them: ``self.reader``) -------------

    def save_workflow(self, document: Mapping[str, Any]) -> WorkflowRef:
        """Save ``document`` as given under its ``name``; a changed document adds a version.

        Not validated here: the Builder saves documents with problems too (validate first with
        ``load_workflow`` to save only valid ones).
        """
        return self.store.save_workflow(dict(document))

    def archive_workflow(self, workflow_id: str) -> bool:
        """Hide a saved workflow from lists (its versions stay: runs refer to them). False if unknown."""
        return self.store.archive_workflow(workflow_id)

    def save_draft(self, key: str, document: Mapping[str, Any], *, source: str = "new") -> None:
        """Keep ``document`` (valid or not) as the Builder's draft under ``key``, replacing the one before."""
        self.store.save_draft(key, dict(document), source=source)

    def drop_draft(self, key: str) -> bool:
        """Forget the draft under ``key``; False when there was none."""
        return self.store.drop_draft(key)

    def delete_run(self, run_id: str) -> bool:
        """Delete a finished run with its events and node executions; False if unknown or still running."""
        with self._lock:
            live = self._runs.get(run_id)
        if live is not None:
            if live.status == "running":
                return False
            self.store.writer.wait_committed(run_id, live.last_seq)  # its last events must not land after
        deleted = self.store.delete_run(run_id)
        if deleted:
            with self._lock:
                self._runs.pop(run_id, None)
        return deleted

    # --- reading -------------------------------------------------------------------------

    def events_since(self, run_id: str, seq: int = 0, *, wait_s: float = 0.0) -> list[Event]:
        """Events of ``run_id`` with ``seq`` greater than ``seq``, in order.

        With ``wait_s``, blocks up to that long for a first new event of a running run.
        """
        with self._lock:
            live = self._runs.get(run_id)
        if live is None:
            return self.store.events(run_id, after=seq)
        if wait_s > 0:
            with live.cond:
                live.cond.wait_for(lambda: live.last_seq > seq or live.status != "running", timeout=wait_s)
        with live.cond:
            held = live.buffer
            if held and held[0].seq <= seq + 1:  # all newer events are buffered: take them from the end, O(new)
                newer = held[-1].seq - seq
                return list(itertools.islice(reversed(held), newer))[::-1] if newer > 0 else []
            buffer = list(held)
        first = buffer[0].seq if buffer else live.last_seq + 1
        self.store.writer.wait_committed(run_id, first - 1)
        return self.store.events(run_id, after=seq, limit=max(0, first - 1 - seq)) + buffer

    def status(self, run_id: str) -> RunInfo | None:
        """The run's state, from memory when this runtime runs it, else from the store."""
        with self._lock:
            live = self._runs.get(run_id)
        if live is not None:
            return live.info()
        row = self.store.get_run(run_id)
        return RunInfo.from_row(row) if row is not None else None

    def wait(self, run_id: str, timeout: float | None = None) -> RunInfo:
        """Block until the run has finished (or the timeout passes); returns its state."""
        with self._lock:
            live = self._runs.get(run_id)
        if live is not None:
            with live.cond:
                live.cond.wait_for(lambda: live.status != "running", timeout=timeout)
        info = self.status(run_id)
        if info is None:
            raise RunNotFound(run_id)
        return info

    def call_tool(self, name: str, args: dict[str, Any], *, timeout: float | None = None) -> ToolResult:
        """Call one of this runtime's tools on its loop (the Tools page's "try it"), with the runtime's settings."""
        self._check_open()
        settings = self._settings.tools

        async def call() -> ToolResult:
            with tool_settings.using(settings):
                return await self.tools.call_tool(name, args)

        return asyncio.run_coroutine_threadsafe(call(), self._loop).result(timeout)

    # --- testing one node (engine.single_node: no run is created, nothing is stored) ------------------

    def node_test_context(
        self, workflow_doc: Mapping[str, Any], node_id: str, *, workflow_id: str | None = None
    ) -> NodeTestContext:
        """The inputs ``node_id`` received in its latest run of this workflow (empty ones if it never ran).

        Raises:
            NodeTestInvalid: no such node, or its config does not compile.
        """
        return node_test_context(self.store, workflow_doc, node_id, workflow_id=workflow_id, tools=self.tools)

    def start_node_test(
        self,
        workflow_doc: Mapping[str, Any],
        node_id: str,
        values: Mapping[str, Any],
        *,
        timeout_s: float | None = None,
    ) -> str:
        """Run only ``node_id`` with ``values`` (``{"inputs", "nodes", "iteration"}``) in the background; its id.

        Raises:
            NodeTestInvalid: before anything runs.
        """
        self._check_open()
        settings = self._settings
        llm = self._llm or default_chat_model(settings.llm)
        return self._node_tests.start(
            workflow_doc, node_id, values, llm=llm, timeout_s=timeout_s, tools=self.tools, settings=settings
        )

    def cancel_node_test(self, test_id: str) -> bool:
        """Stop a running node test; True if it was running."""
        return self._node_tests.cancel(test_id)

    def node_test_result(self, test_id: str, wait_s: float = 0.0) -> NodeTestResult | None:
        """A node test's result once finished (waiting up to ``wait_s``), else None; KeyError for an unknown id."""
        return self._node_tests.result(test_id, wait_s)

    def test_node(
        self,
        workflow_doc: Mapping[str, Any],
        node_id: str,
        values: Mapping[str, Any],
        *,
        timeout_s: float | None = None,
    ) -> NodeTestResult:
        """Run only ``node_id`` with ``values`` and wait for its result (time-limited, see engine.single_node)."""
        test_id = self.start_node_test(workflow_doc, node_id, values, timeout_s=timeout_s)
        while (result := self.node_test_result(test_id, 0.5)) is None:
            pass
        return result

    def running(self) -> list[str]:
        with self._lock:
            return [run_id for run_id, live in self._runs.items() if live.status == "running"]

    # --- lifecycle ---------------------------------------------------------------------------

    def shutdown(self, timeout: float = 30.0) -> None:
        """Cancel running runs, wait for them, commit everything, stop the loop."""
        if self._closed:
            return
        self._closed = True
        for run_id in self.running():
            self.cancel(run_id)
        deadline = time.monotonic() + timeout
        for run_id in list(self._runs):
            self.wait(run_id, timeout=max(0.0, deadline - time.monotonic()))
        with contextlib.suppress(concurrent.futures.TimeoutError, RuntimeError):
            asyncio.run_coroutine_threadsafe(self._cancel_all_tasks(), self._loop).result(timeout=5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout)
        if not self._thread.is_alive():
            self._loop.close()
        if self.mcp is not None:
            self.mcp.close()  # after the runs: their calls are over; the servers' processes end here
        self.store.close()

    @staticmethod
    async def _cancel_all_tasks() -> None:
        current = asyncio.current_task()
        tasks = [t for t in asyncio.all_tasks() if t is not current]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def __enter__(self) -> Runtime:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()

    # --- inside ---------------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise EngineError("this Runtime has been shut down; create a new one")

    def _register(
        self, run_id: str, name: str, inputs: dict[str, Any], *, created_at: float, replace: bool = False
    ) -> _Live:
        buffer: deque[Event] = deque(maxlen=self._buffer_events)
        live = _Live(run_id=run_id, workflow_name=name, inputs=inputs, buffer=buffer, created_at=created_at)
        with self._lock:
            self._runs.pop(run_id, None) if replace else None
            self._runs[run_id] = live
            # A scan of every run on each register made a burst of N submits O(N^2) (500 runs: 0.1 s under
            # the lock); scanning once PRUNE_EVERY runs more have come keeps that amortised O(1) per run.
            if len(self._runs) >= self._prune_at:
                finished = [rid for rid, other in self._runs.items() if other.status != "running"]
                for rid in finished[: max(0, len(finished) - KEEP_FINISHED)]:
                    del self._runs[rid]
                self._prune_at = len(self._runs) + PRUNE_EVERY
        return live

    def _start(self, live: _Live, workflow: Workflow, inputs: dict[str, Any], replay: Replay | None) -> None:
        settings = self._settings  # the run keeps the settings in effect when it was started
        future: concurrent.futures.Future[None] = concurrent.futures.Future()
        live.future = future
        with self._starting_lock:
            self._starting.append((live, self._drive(live, workflow, inputs, replay, settings), future))
            wake = len(self._starting) == 1  # else a wake-up is on its way and takes this run along
        if wake:
            self._loop.call_soon_threadsafe(self._start_waiting)

    def _start_waiting(self) -> None:
        """On the loop: start every run submitted since the last wake-up, in the order submitted."""
        with self._starting_lock:
            batch, self._starting = self._starting, []
        for _live, drive, future in batch:
            task = self._loop.create_task(drive)
            task.add_done_callback(functools.partial(_settle, future))
            future.add_done_callback(functools.partial(_cancel_from_outside, self._loop, task))

    async def _drive(
        self, live: _Live, workflow: Workflow, inputs: dict[str, Any], replay: Replay | None, settings: Settings
    ) -> None:
        store = self.store

        def sink(event: Event) -> None:
            store.append(event)
            with live.cond:
                live.buffer.append(event)
                live.last_seq = event.seq
                kind = event.type
                match kind:  # every kind named: a new one fails mypy here until it is handled
                    case "llm.token" | "node.started" | "node.completed" | "node.failed" | "node.skipped":
                        pass
                    case "llm.completed":
                        data = event.data
                        prompt = int(data.get("prompt_tokens") or 0)
                        completion = int(data.get("completion_tokens") or 0)
                        live.prompt_tokens += prompt
                        live.completion_tokens += completion
                        live.tokens_estimated = live.tokens_estimated or bool(data.get("estimated"))
                        if data.get("failed"):
                            live.failed_tokens += prompt + completion
                    case "tool.called" | "tool.result" | "memory.recalled" | "memory.saved" | "log":
                        pass
                    case "approval.requested" | "approval.decided" | "run.waiting":
                        pass
                    case "run.started" | "run.completed" | "run.failed" | "run.cancelled":
                        pass  # the run's status is set by _finish, once its last event is durable
                    case _:
                        assert_never(kind)
                live.cond.notify_all()

        llm = self._llm or default_chat_model(settings.llm)
        live.task = asyncio.current_task()
        if live.cancel_requested:  # cancelled before it started: record that, run nothing
            first = (replay.last_seq if replay else 0) + 1
            if replay is None or replay.forked_from is not None:
                started: dict[str, Any] = {"inputs": inputs, "workflow": workflow.name}
                if replay is not None:
                    started["forked_from"] = replay.forked_from
                sink(Event(first, live.run_id, time.time(), "run.started", None, started))
                first += 1
            else:  # a resume: its marker says when the run had stopped (engine.run_times counts the gap as idle)
                resumed = {"level": "info", "message": "run resumed, then cancelled before any node ran"}
                marker = {**resumed, "resumed": True, "paused_at": replay.last_ts}
                sink(Event(first, live.run_id, time.time(), "log", None, marker))
                first += 1
            sink(Event(first, live.run_id, time.time(), "run.cancelled", None, {}))
            self._finish(live, "cancelled", None, None, None)
            return
        status: str
        error: str | None
        node_id: str | None
        output: Any
        try:
            result = await execute(
                workflow,
                inputs,
                llm=llm,
                on_event=sink,
                run_id=live.run_id,
                replay=replay,
                settings=settings,
                tools=self.tools,
            )
        except BaseException as exc:  # an engine bug must not leave the run "running" forever
            status, error, node_id, output = "failed", f"internal error: {type(exc).__name__}: {exc}", None, None
            if isinstance(exc, asyncio.CancelledError):
                status, error = "cancelled", None
        else:
            status, error, node_id, output = result.status, result.error, result.node_id, result.result
        finally:
            live.task = None  # from here on a cancel has nothing to stop
        # "finished" is said only once the terminal event is durable (or its write has failed)
        # shutting down, or a stuck disk: say how it ended all the same
        with contextlib.suppress(asyncio.CancelledError, TimeoutError):
            await asyncio.wait_for(store.writer.committed_future(live.run_id, live.last_seq), 30.0)
        self._finish(live, status, error, node_id, output)

    @staticmethod
    def _finish(live: _Live, status: str, error: str | None, node_id: str | None, output: Any) -> None:
        if live.store_error is not None:
            status, error = "failed", live.store_error
        with live.cond:
            live.status, live.error, live.error_node, live.result = status, error, node_id, output
            live.finished_at = time.time()
            live.cond.notify_all()

    def _on_write_failure(self, run_id: str, message: str) -> None:
        """Called by the writer thread: a run whose events cannot be stored must stop."""
        with self._lock:
            live = self._runs.get(run_id)
        if live is None:
            return
        live.store_error = message
        if live.status == "running":
            self._loop.call_soon_threadsafe(self._cancel_in_loop, live)
        else:  # it looked finished, but its last events are not durable
            with live.cond:
                live.status, live.error = "failed", message
                live.cond.notify_all()

    async def _beat(self, every_s: float) -> None:
        for beat in itertools.count():
            if beat % max(1, round(self._settings_timeout_every / every_s)) == 0:  # the first beat checks at once
                with contextlib.suppress(Exception):  # a sweep that fails is tried again on the next beat
                    await asyncio.to_thread(self.apply_due_timeouts)
            await asyncio.sleep(every_s)
            self.store.heartbeat(self.running())


__all__ = ["ForkInvalid", "NotForkable", "NotResumable", "RunInfo", "RunNotFound", "Runtime", "TERMINAL_TYPES"]
