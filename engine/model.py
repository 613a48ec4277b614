"""Pydantic models of the workflow/v1 document.

These are the boundary types: what a file, the builder or the HTTP API hands
the engine. Unknown keys are errors everywhere, so typos surface. Per-type
node configs have their own models; :mod:`engine.validate` applies them one
node at a time so that every problem is reported at once.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

FORMAT = "workflow/v1"
ID_PATTERN = r"^[A-Za-z_][A-Za-z0-9_-]*$"
# The store keeps node ids and workflow names in columns of these widths (PostgreSQL refuses longer ones).
MAX_NODE_ID_CHARS = 200
MAX_NAME_CHARS = 500
InputType = Literal["string", "number", "integer", "boolean", "object", "array"]
NodeType = Literal["input", "agent", "tool", "condition", "transform", "map", "output", "approval"]
NODE_TYPES: tuple[str, ...] = ("input", "agent", "tool", "condition", "transform", "map", "output", "approval")
# node types whose outgoing edges carry ``when`` and are taken by value (a condition's output, an approval's decision)
ROUTING_TYPES: tuple[str, ...] = ("condition", "approval")
MAP_INNER_TYPES: tuple[str, ...] = ("agent", "tool", "transform", "condition")


def document_digest(document: dict[str, Any]) -> str:
    """The content hash the store keeps per workflow version (sorted keys, UTF-8 JSON, SHA-256)."""
    return hashlib.sha256(json.dumps(document, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Settings(_Strict):
    """Run-wide settings."""

    model: str | None = None
    max_iterations: int = Field(10, ge=1, le=1_000_000)
    timeout_s: float | None = Field(None, gt=0)


class InputSpec(_Strict):
    """One declared run input. It is required unless ``default`` is given (null counts)."""

    type: InputType = "string"
    description: str = ""
    default: Any = None

    @property
    def required(self) -> bool:
        return "default" not in self.model_fields_set


class RetryPolicy(_Strict):
    """Per-node retry: ``attempts`` in all (1 = no retry), waiting ``backoff_s * 2**k`` between."""

    attempts: int = Field(1, ge=1, le=100)
    backoff_s: float = Field(1.0, ge=0, le=3600)


class Position(BaseModel):
    """Where the builder draws a node; the engine ignores it."""

    model_config = ConfigDict(frozen=True)
    x: float = 0
    y: float = 0


class Node(_Strict):
    """One node of the graph. ``config`` is checked against the type's config model."""

    id: str = Field(pattern=ID_PATTERN, max_length=MAX_NODE_ID_CHARS)
    type: NodeType
    label: str | None = None
    position: Position | None = None
    config: dict[str, Any] = Field(default_factory=dict)
    retry: RetryPolicy = RetryPolicy()
    timeout_s: float | None = Field(None, gt=0)


class Edge(_Strict):
    """A directed edge; ``when`` only on edges leaving a condition node."""

    source: str
    target: str
    when: str | None = None

    @property
    def label(self) -> str:
        return f"edge {self.source} -> {self.target}"


# --- per-type configs -------------------------------------------------------


class MemoryConfig(_Strict):
    """An agent's memory. ``agent_id`` is a template; ``required`` makes memory failures fail the node."""

    agent_id: str = Field(min_length=1)
    short_term: bool = True
    recall: int = Field(0, ge=0, le=100)
    save: bool = True
    required: bool = False


class AgentConfig(_Strict):
    prompt: str
    system: str | None = None
    model: str | None = None
    temperature: float | None = Field(None, ge=0, le=2)
    tools: list[str] = Field(default_factory=list)
    max_steps: int = Field(5, ge=0, le=100)
    memory: MemoryConfig | None = None
    response_format: Literal["text", "json"] = "text"
    # completion tokens per model call, sent to the endpoint
    max_tokens: int | None = Field(None, ge=1, le=1_000_000, strict=True)


class ToolNodeConfig(_Strict):
    tool: str
    args: dict[str, Any] = Field(default_factory=dict)


class ConditionConfig(_Strict):
    expression: str


class TransformConfig(_Strict):
    expression: str | None = None
    template: str | None = None


class InlineNode(_Strict):
    type: str
    config: dict[str, Any] = Field(default_factory=dict)


class MapConfig(_Strict):
    items: str
    node: InlineNode
    concurrency: int = Field(8, ge=1, le=1000)


class OutputConfig(_Strict):
    value: Any
    name: str | None = Field(None, min_length=1)


class InputConfig(_Strict):
    pass


class ApprovalConfig(_Strict):
    """A person decides: ``message`` and ``fields`` are templates; ``on_timeout`` is an option or ``fail``."""

    message: str
    options: list[str] = Field(default_factory=lambda: ["approve", "reject"], min_length=1)
    fields: dict[str, Any] = Field(default_factory=dict)
    timeout_s: float | None = Field(None, gt=0)
    on_timeout: str | None = None


CONFIG_MODELS: dict[str, type[_Strict]] = {
    "input": InputConfig,
    "agent": AgentConfig,
    "tool": ToolNodeConfig,
    "condition": ConditionConfig,
    "transform": TransformConfig,
    "map": MapConfig,
    "output": OutputConfig,
    "approval": ApprovalConfig,
}


class Workflow(_Strict):
    """A loaded, validated workflow. Build it with :func:`engine.load_workflow`.

    Loading compiles the execution plan once; runs reuse it.
    """

    format: Literal["workflow/v1"]
    name: str = Field(min_length=1, max_length=MAX_NAME_CHARS, pattern=r"\S")  # not only spaces
    description: str = ""
    settings: Settings = Settings()
    inputs: dict[str, InputSpec] = Field(default_factory=dict)
    nodes: list[Node] = Field(min_length=1)
    edges: list[Edge] = Field(default_factory=list)

    _plan: Any = PrivateAttr(default=None)
    _digest: str | None = PrivateAttr(default=None)

    @property
    def plan(self) -> Any:
        """The compiled :class:`engine.plan.Plan` (set by ``load_workflow``)."""
        if self._plan is None:
            raise RuntimeError("this Workflow was not built by load_workflow(); it has no plan")
        return self._plan

    def to_dict(self) -> dict[str, Any]:
        """The document as JSON-ready data (what a file or the builder saves)."""
        return self.model_dump(mode="json", exclude_defaults=False, exclude_none=True)

    @property
    def digest(self) -> str:
        """The store's content hash of :meth:`to_dict`, computed once (a Workflow is not changed after loading)."""
        if self._digest is None:
            self._digest = document_digest(self.to_dict())
        return self._digest
