"""``RunReader``: what the pages, the HTTP API and the CLI read about runs and workflows, as plain records.

The store's tables (:mod:`engine.store.tables`) are SQLModel classes bound to
a database session; handing them out would tie every caller to the schema.
The reader answers with frozen dataclasses that carry the same field names
as the columns they come from (so ``run.status`` reads the same either way)
and hold no connection: a record can be kept, passed to another thread or
turned into JSON.

A reader needs only a store URL: :meth:`RunReader.open` opens the database
(migrating it if needed) and starts no thread, neither the engine's loop nor
the store's writer. That is how the read-only CLI commands work, and how a
process that does not execute runs (say a dashboard over runs that workers
execute) reads them. ``Runtime.reader`` is the same reader over the
runtime's own store.

What the reader returns is what is committed. A run this process executes
may be ahead of its record (its last events still queued to the writer):
``Runtime.status`` and ``Runtime.events_since`` give the live view of such a
run. Events are :class:`~engine.events.Event`, the record every observer of
a run already reads.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self, TypeVar

from sqlalchemy.engine import make_url

from engine.attempts import Attempt, earlier_attempts
from engine.events import Event
from engine.run_times import RunTimes, times_of_rows
from engine.statuses import NodeStatus, RunStatus
from engine.store import Store

if TYPE_CHECKING:
    from engine.config import Settings

__all__ = [
    "DraftRecord",
    "NodeExecutionRecord",
    "RunReader",
    "RunRecord",
    "WorkflowRecord",
    "WorkflowVersionRecord",
]

_R = TypeVar("_R")


@dataclass(frozen=True, slots=True)
class RunRecord:
    """One run as stored: what ran, with which inputs, how it ended, what it cost. Times are epoch seconds."""

    run_id: str
    workflow_id: str
    workflow_version: int
    workflow_name: str
    inputs: dict[str, Any]
    status: RunStatus
    created_at: float
    started_at: float | None
    finished_at: float | None
    result: Any
    error: str | None
    error_node: str | None
    prompt_tokens: int  # these two include the tokens of failed tries
    completion_tokens: int
    tokens_estimated: bool  # some counts were estimated (the endpoint sent none)
    failed_tokens: int  # prompt + completion tokens of tries that failed, in the totals
    last_seq: int  # the last committed event's seq
    owner: str  # host:pid:start-time of the process running (or last running) it
    heartbeat_at: float | None
    resumed: int  # how often it was resumed
    forked_from: dict[str, Any] | None  # a rerun's source: {"run_id", "node"} (+ "config", "outputs", "pins")
    lease_epoch: int = 0  # queue mode: how often a worker claimed it, or the sweep took it back (engine/queue)


@dataclass(frozen=True, slots=True)
class NodeExecutionRecord:
    """One execution of one node (a loop gives several per node), in the order they started."""

    run_id: str
    node_id: str
    execution: int  # 0-based count of this node's executions in the run
    iteration: int
    status: NodeStatus  # running | succeeded | failed | skipped | cancelled
    started_at: float | None
    finished_at: float | None
    duration_ms: float | None
    attempts: int
    input: Any  # None when the node type records no input
    output: Any
    error: str | None
    started_seq: int
    reused: bool  # a rerun reused the source run's output: nothing ran


@dataclass(frozen=True, slots=True)
class WorkflowRecord:
    """A saved workflow by name; ``archived`` is "deleted" in the Builder (kept: runs refer to it)."""

    id: str
    name: str
    latest_version: int
    created_at: float
    updated_at: float
    archived: bool


@dataclass(frozen=True, slots=True)
class WorkflowVersionRecord:
    """One saved version of a workflow document (never changed once written)."""

    workflow_id: str
    version: int
    digest: str
    document: dict[str, Any]
    created_at: float


@dataclass(frozen=True, slots=True)
class DraftRecord:
    """The Builder's unsaved edit of a document: ``key`` is a saved workflow's id or ``new:<uuid>``."""

    key: str
    source: str
    document: dict[str, Any]
    updated_at: float


# The records' fields in order: the columns the reader selects (plain rows, built positionally).
_RUN_COLUMNS = tuple(f.name for f in fields(RunRecord))
_NODE_COLUMNS = tuple(f.name for f in fields(NodeExecutionRecord))


def _record(cls: type[_R], row: Any) -> _R:
    """The record of a table row: the columns the record names, nothing bound to a session."""
    return cls(**{f.name: getattr(row, f.name) for f in fields(cls)})  # type: ignore[arg-type]


class RunReader:
    """Read runs, their node executions and events, workflows and drafts from one store.

    Thread-safe: every call opens its own session.
    """

    def __init__(self, store: Store):
        self._store = store

    @classmethod
    def open(
        cls,
        url: str | None = None,
        *,
        data_dir: str | Path | None = None,
        mark_interrupted: bool = False,
        settings: Settings | None = None,
    ) -> RunReader:
        """A reader over the store at ``url`` (default ``DATABASE_URL``, else ``$DATA_DIR/studio.db``, of
        ``settings``: default the environment's).

        ``mark_interrupted``: first mark runs whose process is gone as ``interrupted``, as a
        ``Runtime`` does when it starts (so a listing does not call a dead run "running"); the one
        write a reader may do. Close the reader when done (:meth:`close`, or ``with``).

        Raises:
            StoreUrlInvalid: the URL cannot be used as given.
            StoreError: the store cannot be opened.
        """
        store = Store(url, data_dir=data_dir, settings=settings)
        if mark_interrupted:
            try:
                store.mark_interrupted()
            except BaseException:
                store.close()
                raise
        return cls(store)

    def close(self) -> None:
        """Release the database connections (only for a reader made by :meth:`open`)."""
        self._store.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- where ------------------------------------------------------------------------------

    @property
    def sqlite_file(self) -> Path | None:
        """The SQLite file the store is, or None for a database server."""
        return self._store.sqlite_file

    @property
    def location(self) -> str:
        """Where the store is, fit to show: the SQLite file, else the URL with its password hidden."""
        path = self.sqlite_file
        return str(path) if path is not None else make_url(self._store.url).render_as_string(hide_password=True)

    # --- runs ------------------------------------------------------------------------------------

    def run(self, run_id: str) -> RunRecord | None:
        row = self._store.get_run(run_id)
        return _record(RunRecord, row) if row is not None else None

    def runs(self, *, limit: int = 50, status: str | None = None, workflow_id: str | None = None) -> list[RunRecord]:
        """The newest ``limit`` runs, newest first, optionally only of one status or workflow."""
        rows = self._store.run_values(_RUN_COLUMNS, limit=limit, status=status, workflow_id=workflow_id)
        return [RunRecord(*row) for row in rows]

    def count_runs(self) -> int:
        return self._store.count_runs()

    def node_executions(self, run_id: str) -> list[NodeExecutionRecord]:
        """The run's node executions in the order they started."""
        return [NodeExecutionRecord(*row) for row in self._store.node_execution_values(run_id, _NODE_COLUMNS)]

    def events(self, run_id: str, *, after: int = 0, limit: int | None = None) -> list[Event]:
        """The run's committed events with ``seq`` greater than ``after``, in order (at most ``limit``)."""
        return self._store.events(run_id, after=after, limit=limit)

    def run_times(self, runs: Sequence[RunRecord], *, now: float | None = None) -> dict[str, RunTimes]:
        """Each run's active and wall time, by run id (one query for a whole list; see engine/run_times.py)."""
        return times_of_rows(self._store, runs, now=now)

    def earlier_attempts(self, run_id: str) -> list[Attempt]:
        """The failed or interrupted tries a resume replaced, rebuilt from the run's events (engine/attempts.py)."""
        return earlier_attempts(self._store.events(run_id))

    # --- workflows ----------------------------------------------------------------------------

    def workflows(self, *, include_archived: bool = False) -> list[WorkflowRecord]:
        """Saved workflows, most recently changed first (deleted ones only with ``include_archived``)."""
        return [_record(WorkflowRecord, r) for r in self._store.list_workflows(include_archived=include_archived)]

    def workflow(self, workflow_id: str) -> WorkflowRecord | None:
        found = self._store.get_workflow(workflow_id)
        return _record(WorkflowRecord, found[0]) if found is not None else None

    def find_workflow(self, name: str) -> WorkflowRecord | None:
        """The saved workflow called ``name`` (archived too: a name is never reused)."""
        row = self._store.find_workflow(name)
        return _record(WorkflowRecord, row) if row is not None else None

    def workflow_version(self, workflow_id: str, version: int | None = None) -> WorkflowVersionRecord | None:
        """Version ``version`` of a saved workflow (default: its latest); None if either is unknown."""
        found = self._store.get_workflow(workflow_id, version)
        return _record(WorkflowVersionRecord, found[1]) if found is not None else None

    def workflow_versions(self, workflow_id: str) -> list[WorkflowVersionRecord]:
        """Every saved version of the workflow, oldest first."""
        return [_record(WorkflowVersionRecord, r) for r in self._store.workflow_versions(workflow_id)]

    # --- drafts ---------------------------------------------------------------------------------------

    def draft(self, key: str) -> DraftRecord | None:
        row = self._store.get_draft(key)
        return _record(DraftRecord, row) if row is not None else None

    def drafts(self, *, limit: int = 50) -> list[DraftRecord]:
        """Drafts, newest first."""
        return [_record(DraftRecord, r) for r in self._store.list_drafts(limit=limit)]
