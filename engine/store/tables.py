"""The store's tables, as SQLModel classes.

Events are the source of truth: ``EventRow`` holds every event of every run
(``run_id`` + ``seq`` unique). ``RunRow`` and ``NodeExecutionRow`` are
projections of those events, written in the same transaction as the events
that change them. Workflows keep every saved version. Times are epoch
seconds (floats), like the events' ``ts``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from engine.model import MAX_NAME_CHARS, MAX_NODE_ID_CHARS

SCHEMA_APP = "workflow-studio"
# Streamlit's dev server re-imports changed modules; redefining a table must then replace it, not fail.
_REDEFINE = {"extend_existing": True}


class MetaRow(SQLModel, table=True):
    """Key/value facts about the database: which app owns it, applied migrations."""

    __tablename__ = "studio_meta"
    __table_args__ = (_REDEFINE,)
    key: str = Field(primary_key=True, max_length=200)
    value: str = Field(default="")


class WorkflowRow(SQLModel, table=True):
    """A workflow by name; its documents live in ``WorkflowVersionRow``."""

    __tablename__ = "workflows"
    __table_args__ = (_REDEFINE,)
    id: str = Field(primary_key=True, max_length=64)
    name: str = Field(index=True, unique=True, max_length=MAX_NAME_CHARS)
    latest_version: int = 1
    created_at: float
    updated_at: float
    archived: bool = False  # "deleted" in the builder; kept because runs refer to it


class WorkflowVersionRow(SQLModel, table=True):
    """One saved version of a workflow document (never changed once written)."""

    __tablename__ = "workflow_versions"
    __table_args__ = (UniqueConstraint("workflow_id", "version"), _REDEFINE)
    id: int | None = Field(default=None, primary_key=True)
    workflow_id: str = Field(foreign_key="workflows.id", index=True, max_length=64)
    version: int
    digest: str = Field(max_length=64)
    document: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    created_at: float


class RunRow(SQLModel, table=True):
    """One run: what ran, with which inputs, how it ended, and what it cost."""

    __tablename__ = "runs"
    __table_args__ = (
        Index("ix_runs_status_created", "status", "created_at"),
        Index("ix_runs_created", "created_at"),  # the newest runs without a status filter (migration 0007_reads)
        _REDEFINE,
    )
    run_id: str = Field(primary_key=True, max_length=64)
    workflow_id: str = Field(foreign_key="workflows.id", index=True, max_length=64)
    workflow_version: int
    workflow_name: str = Field(max_length=MAX_NAME_CHARS)
    inputs: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    status: str = Field(default="running", max_length=20)  # queued|running|completed|failed|cancelled|interrupted
    created_at: float
    started_at: float | None = None
    finished_at: float | None = None
    result: Any = Field(default=None, sa_column=Column(JSON, nullable=True))
    error: str | None = None
    error_node: str | None = Field(default=None, max_length=MAX_NODE_ID_CHARS)
    prompt_tokens: int = 0  # these two include the tokens of failed tries
    completion_tokens: int = 0
    tokens_estimated: bool = False  # some counts were estimated (the endpoint sent none)
    failed_tokens: int = 0  # prompt + completion tokens of tries that failed (cut-off answers), in the totals
    last_seq: int = 0
    owner: str = Field(default="", max_length=300)  # host:pid:start-time of the process running it
    heartbeat_at: float | None = None
    resumed: int = 0  # how often it was resumed
    # A rerun from a node: {"run_id", "node"} of the source (+ "config": the picked node's edit,
    # "outputs": the names of pinned nodes). Null for an ordinary run. Added by migration 0002.
    forked_from: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    # Queue mode (engine/queue): raised by each claim of the run by a worker; a worker's writes commit
    # only while it still holds the epoch it claimed (the fence). 0 for runs of local mode.
    lease_epoch: int = 0


class NodeExecutionRow(SQLModel, table=True):
    """One execution of one node (loops give several per node)."""

    __tablename__ = "node_executions"
    __table_args__ = (UniqueConstraint("run_id", "node_id", "execution"), _REDEFINE)
    id: int | None = Field(default=None, primary_key=True)
    run_id: str = Field(foreign_key="runs.run_id", index=True, max_length=64)
    node_id: str = Field(max_length=MAX_NODE_ID_CHARS)
    execution: int  # 0-based count of this node's executions in the run
    iteration: int = 0
    status: str = Field(max_length=20)  # engine.statuses.NodeStatus: running|succeeded|failed|skipped|cancelled
    started_at: float | None = None
    finished_at: float | None = None
    duration_ms: float | None = None
    attempts: int = 0
    input: Any = Field(default=None, sa_column=Column(JSON, nullable=True))
    output: Any = Field(default=None, sa_column=Column(JSON, nullable=True))
    error: str | None = None
    started_seq: int = 0
    reused: bool = False  # a fork reused the source run's output: nothing ran (migration 0002)


class EventRow(SQLModel, table=True):
    """One event, exactly as emitted."""

    __tablename__ = "events"
    __table_args__ = (UniqueConstraint("run_id", "seq"), _REDEFINE)
    id: int | None = Field(default=None, primary_key=True)
    run_id: str = Field(foreign_key="runs.run_id", max_length=64)
    seq: int
    ts: float
    type: str = Field(max_length=40)
    node_id: str | None = Field(default=None, max_length=MAX_NODE_ID_CHARS)
    data: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class DraftRow(SQLModel, table=True):
    """The Builder's unsaved edit of one document: a saved workflow's id, or ``new:<uuid>`` for a
    document never saved. Any JSON object is kept, invalid ones too (a half-built workflow)."""

    __tablename__ = "drafts"
    __table_args__ = (_REDEFINE,)
    key: str = Field(primary_key=True, max_length=200)
    source: str = Field(default="new", max_length=600)  # where the document came from (Builder's source)
    document: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    updated_at: float
