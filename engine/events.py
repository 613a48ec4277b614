"""The run event stream: the one record every observer reads.

The wire shape is the spec's ``{seq, run_id, ts, type, node_id, data}``.
One slotted dataclass carries every kind: the store, the CLI's JSONL
file, the HTTP streams and the dashboard all serialise events the same way,
so a uniform record is cheaper and simpler than a class per kind. What each
kind puts in ``data`` is written down once, as a TypedDict per kind
(:data:`PAYLOAD_TYPES`); the emitters are overloaded on the kind, so mypy
checks every emit site against its kind's payload, and every fold over the
kinds is a ``match`` ending in ``assert_never``, so a new kind fails the type
check until each fold handles it.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal, NotRequired, get_args

from typing_extensions import TypedDict

EventType = Literal[
    "run.started",
    "node.started",
    "node.completed",
    "node.failed",
    "node.skipped",
    "llm.token",
    "llm.completed",
    "tool.called",
    "tool.result",
    "memory.recalled",
    "memory.saved",
    "log",
    "approval.requested",
    "approval.decided",
    "run.waiting",
    "run.completed",
    "run.failed",
    "run.cancelled",
]
TerminalType = Literal["run.completed", "run.failed", "run.cancelled"]
ApprovalType = Literal["approval.requested", "approval.decided"]

EVENT_TYPES: frozenset[str] = frozenset(get_args(EventType))
TERMINAL_TYPES: frozenset[str] = frozenset(get_args(TerminalType))
APPROVAL_EVENT_TYPES: tuple[str, ...] = get_args(ApprovalType)

LogLevel = Literal["debug", "info", "warning", "error"]

# --- the payload of each kind -------------------------------------------------------------
# One TypedDict per kind: what ``data`` holds. A key marked NotRequired is present only when
# it says something. All data is plain, strict JSON: values from users, tools or models that
# JSON has no type for are recorded as their text, and NaN or an infinity as null.
# Events a node emits through its context inside a map node carry the item's "index" too.


class ForkedFrom(TypedDict):
    """Where a rerun from a node (engine.fork) came from."""

    run_id: str
    node: str
    config: NotRequired[dict[str, Any]]  # the node's config, when the rerun changed it
    outputs: NotRequired[list[str]]  # pinned nodes whose output the rerun keeps


class RunStartedData(TypedDict):
    inputs: dict[str, Any]
    workflow: str
    forked_from: NotRequired[ForkedFrom]


class NodeStartedData(TypedDict):
    iteration: int
    execution: int  # this node's how-manieth visit in the run (executions and skips), from 0
    reused: NotRequired[bool]  # a rerun's execution reused from its source run (nothing runs)
    restarted: NotRequired[bool]  # a resume runs again an execution that began before the stop
    test: NotRequired[bool]  # a test of one node (engine.single_node), not part of a run


class NodeCompletedData(TypedDict):
    output: Any
    duration_ms: float
    attempts: int  # tries it took (see retry); 0 when reused
    reused: NotRequired[bool]  # likewise: no model or tool call was made
    input: NotRequired[dict[str, Any]]  # what the execution was given (rendered prompt, tool args)


class NodeFailedData(TypedDict):
    error: str
    attempts: int
    cancelled: NotRequired[bool]  # the run stopped it (also between retry attempts)
    last_error: NotRequired[str]  # cancelled between attempts: why the last try failed
    input: NotRequired[dict[str, Any]]


class NodeSkippedData(TypedDict):
    iteration: int
    execution: int


# step: the agent's round (from 0); attempt: the node's try (from 1, see retry). The deltas of
# one (attempt, step) concatenate to that round's text; the last round's of the last attempt
# are the node's final text. A retry's deltas never continue a failed attempt's.
class LlmTokenData(TypedDict):
    delta: str
    step: int
    attempt: int
    index: NotRequired[int]


class LlmCompletedData(TypedDict):
    """One call of the model. "estimated": the endpoint sent no counts (about 4 characters a token).

    "failed" (with "error", "retrying") ends a try the endpoint began but cut off: its tokens
    count in the run's totals, and the deltas of its (attempt, step) streamed before it are
    void; the model's retry streams that round afresh.
    """

    model: str
    prompt_tokens: int
    completion_tokens: int
    estimated: bool
    step: int
    attempt: int
    offline: NotRequired[bool]  # the offline stand-in model answered
    tool_calls: NotRequired[int]  # how many tools the model asked for
    failed: NotRequired[bool]
    error: NotRequired[str]
    retrying: NotRequired[bool]
    index: NotRequired[int]


class ToolCalledData(TypedDict):
    tool: str
    args: Any
    call_id: str  # unique in the run's log, across resumes too
    model_call_id: NotRequired[str]  # the id the model gave the call
    index: NotRequired[int]


class ToolResultData(TypedDict):
    """Carries "result", or "error" when the call failed (the tool raised, exited non-zero, timed out or
    was refused) with an optional "detail" (traceback, printed output, a backend's raw error:
    never shown to a model); "truncated": the result was cut."""

    call_id: str
    tool: str
    duration_ms: float
    result: NotRequired[Any]
    truncated: NotRequired[bool]
    error: NotRequired[str]
    detail: NotRequired[str]
    index: NotRequired[int]


class MemoryHit(TypedDict):
    id: str
    text: str
    score: float
    distance: float
    kind: str | None
    run_id: str | None
    node_id: str | None
    created_at: Any


class MemoryRecalledData(TypedDict):
    agent_id: str
    query: str
    hits: list[MemoryHit]
    short_term_turns: int
    index: NotRequired[int]


class MemorySavedData(TypedDict):
    agent_id: str
    ids: list[str]
    short_term: bool
    index: NotRequired[int]


class LogData(TypedDict):
    level: LogLevel
    message: str
    seconds: NotRequired[float]  # how long what the message reports took
    resumed: NotRequired[bool]  # the marker a resume writes first (engine.run_times)
    paused_at: NotRequired[float | None]  # with resumed: when the run had stopped
    index: NotRequired[int]


class ApprovalRequestedData(TypedDict):
    """An approval node asks a person: message and fields as rendered, the options to pick from."""

    message: str
    fields: dict[str, Any]
    options: list[str]
    execution: int
    iteration: int
    timeout_at: NotRequired[float]  # epoch seconds: on_timeout applies from then
    on_timeout: NotRequired[str]
    requested_at: NotRequired[float]  # epoch seconds: the node's duration is the wait until decided_at
    reads: NotRequired[dict[str, Any]]  # the values the message and fields were rendered from


class ApprovalDecidedData(TypedDict):
    """The decision of one request (one per request). ``timed_out``: on_timeout decided, no person."""

    decision: str | None  # None: timed out with on_timeout "fail"
    fields: dict[str, Any]
    comment: str
    decided_by: str
    decided_at: float
    execution: int
    timed_out: NotRequired[bool]


class RunWaitingData(TypedDict):
    """The run paused: these nodes wait for a decision; its task has ended."""

    nodes: list[str]


class RunCompletedData(TypedDict):
    result: dict[str, Any]


class RunFailedData(TypedDict):
    error: str
    node_id: str | None


class RunCancelledData(TypedDict):
    pass


EventData = (
    RunStartedData
    | NodeStartedData
    | NodeCompletedData
    | NodeFailedData
    | NodeSkippedData
    | LlmTokenData
    | LlmCompletedData
    | ToolCalledData
    | ToolResultData
    | MemoryRecalledData
    | MemorySavedData
    | LogData
    | ApprovalRequestedData
    | ApprovalDecidedData
    | RunWaitingData
    | RunCompletedData
    | RunFailedData
    | RunCancelledData
)

PAYLOAD_TYPES: Final[Mapping[EventType, type[Any]]] = {
    "run.started": RunStartedData,
    "node.started": NodeStartedData,
    "node.completed": NodeCompletedData,
    "node.failed": NodeFailedData,
    "node.skipped": NodeSkippedData,
    "llm.token": LlmTokenData,
    "llm.completed": LlmCompletedData,
    "tool.called": ToolCalledData,
    "tool.result": ToolResultData,
    "memory.recalled": MemoryRecalledData,
    "memory.saved": MemorySavedData,
    "log": LogData,
    "approval.requested": ApprovalRequestedData,
    "approval.decided": ApprovalDecidedData,
    "run.waiting": RunWaitingData,
    "run.completed": RunCompletedData,
    "run.failed": RunFailedData,
    "run.cancelled": RunCancelledData,
}

# The keys each kind always carries in ``data`` (more may be present), derived from the payload types.
EVENT_DATA_KEYS: Mapping[str, tuple[str, ...]] = {
    kind: tuple(sorted(payload.__required_keys__)) for kind, payload in PAYLOAD_TYPES.items()
}


@dataclass(slots=True)
class Event:
    """One event of one run, numbered by ``seq`` from 1 without gaps.

    Read-only by contract (many observers share each event), not ``frozen``:
    a frozen dataclass sets its fields through ``object.__setattr__``, which
    made every event 0.6 µs dearer, 13% of what a tool node costs the engine.
    """

    seq: int
    run_id: str
    ts: float
    type: EventType
    node_id: str | None = None
    data: Mapping[str, Any] = field(default_factory=dict)

    @property
    def terminal(self) -> bool:
        """True for the run's last event (completed, failed or cancelled)."""
        return self.type in TERMINAL_TYPES

    def to_dict(self) -> dict[str, Any]:
        """The spec's JSON shape."""
        return {
            "seq": self.seq,
            "run_id": self.run_id,
            "ts": self.ts,
            "type": self.type,
            "node_id": self.node_id,
            "data": dict(self.data),
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> "Event":
        """Rebuild an event from :meth:`to_dict` output (store, JSONL, HTTP)."""
        if raw["type"] not in EVENT_TYPES:
            raise ValueError(f"unknown event type {raw['type']!r}")
        return cls(
            seq=int(raw["seq"]),
            run_id=str(raw["run_id"]),
            ts=float(raw["ts"]),
            type=raw["type"],
            node_id=raw.get("node_id"),
            data=dict(raw.get("data") or {}),
        )
