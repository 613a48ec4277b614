"""Request and response bodies of the HTTP API (they make ``/openapi.json``).

Routes return instances of these models (their ``response_model``), so an answer is checked against
its documented shape before it is sent.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from engine.statuses import RunStatus


def _is_none(value: Any) -> bool:
    return value is None


class ProblemOut(BaseModel):
    where: str = Field(description="what the problem is about, e.g. \"node 'research'\" or \"input 'query'\"")
    message: str


class ErrorOut(BaseModel):
    detail: str
    problems: list[ProblemOut] = Field(default_factory=list, description="every problem, for 422 answers")


class HealthOut(BaseModel):
    status: Literal["ok"] = "ok"


class WorkflowSummary(BaseModel):
    id: str
    name: str
    latest_version: int
    created_at: float
    updated_at: float


class WorkflowSaved(BaseModel):
    id: str
    name: str
    version: int
    created: bool = Field(description="false when the document equals the latest version (no version added)")


class WorkflowOut(BaseModel):
    id: str
    name: str
    version: int
    latest_version: int
    versions: list[int]
    created_at: float = Field(description="when this version was saved (epoch seconds)")
    document: dict[str, Any]


class RunRequest(BaseModel):
    """Start a run of an inline document (``workflow``) or a saved one (``workflow_id``, latest version)."""

    model_config = ConfigDict(extra="forbid")

    workflow: dict[str, Any] | None = Field(default=None, description="a workflow/v1 document")
    workflow_id: str | None = Field(default=None, description="the id of a saved workflow (GET /workflows)")
    inputs: dict[str, Any] | None = Field(default=None, description="the run's inputs by name")


class RerunRequest(BaseModel):
    """Rerun a finished run from a node: nodes it does not depend on reuse their outputs from that run."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    from_: str = Field(
        alias="from", min_length=1, max_length=200, description="the node to run again, with everything downstream"
    )
    outputs: dict[str, Any] | None = Field(
        default=None, description="node id -> JSON value: pins the output of a reused node (not downstream of `from`)"
    )
    config: dict[str, Any] | None = Field(
        default=None, description="config keys of the `from` node to change for this rerun only (checked as a workflow)"
    )


class ForkedFrom(BaseModel):
    run_id: str
    node: str
    # left out of the answer when not given (a rerun without an edit or pins)
    config: dict[str, Any] | None = Field(
        default=None, exclude_if=_is_none, description="the `from` node's config edit, if any"
    )
    outputs: list[str] | None = Field(
        default=None, exclude_if=_is_none, description="the nodes whose outputs were pinned, if any"
    )


class RunStarted(BaseModel):
    run_id: str


class RunOut(BaseModel):
    run_id: str
    status: RunStatus
    workflow_id: str | None = None
    workflow_version: int | None = None
    workflow_name: str
    inputs: dict[str, Any]
    result: Any = None
    error: str | None = None
    error_node: str | None = None
    created_at: float | None = None
    started_at: float | None = None
    finished_at: float | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = Field(0, description="prompt + completion tokens, those of failed tries included")
    tokens_estimated: bool = Field(False, description="some counts were estimated: the endpoint sent none")
    failed_tokens: int = Field(0, description="tokens of tries that failed (cut-off answers), part of total_tokens")
    last_seq: int = Field(0, description="seq of the run's latest event")
    forked_from: ForkedFrom | None = Field(None, description="a rerun's source run and node (null for other runs)")


class DecisionRequest(BaseModel):
    """A person's decision of a waiting approval node."""

    model_config = ConfigDict(extra="forbid")

    decision: str = Field(min_length=1, max_length=200, description="one of the approval's options")
    fields: dict[str, Any] | None = Field(default=None, description="field name -> edited JSON value")
    comment: str = Field(default="", max_length=20_000)
    decided_by: str | None = Field(default=None, max_length=200, description="who decided (default: 'api')")


class RunStateOut(BaseModel):
    run_id: str
    status: str = Field(description="'cancelling' or 'resuming' when accepted, else the run's status")


class EventOut(BaseModel):
    seq: int
    run_id: str
    ts: float
    type: str
    node_id: str | None = None
    data: dict[str, Any]


class ToolOut(BaseModel):
    name: str
    description: str
    parameters: dict[str, Any] = Field(description="JSON schema of the tool's arguments")


class MemoryOut(BaseModel):
    agent_id: str
    query: str | None = None
    hits: list[dict[str, Any]] = Field(
        description="recall hits (id, text, distance, score, metadata) or stored memories"
    )
