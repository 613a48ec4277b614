"""The run event stream: the one record every observer reads.

The wire shape is the spec's ``{seq, run_id, ts, type, node_id, data}``.
One slotted dataclass carries every kind: the store, the CLI's JSONL
file, the HTTP streams and the dashboard all serialise events the same way,
so a uniform record is cheaper and simpler than a class per kind. What each
kind puts in ``data`` is written down once, in :data:`EVENT_DATA_KEYS`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

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
    "run.completed",
    "run.failed",
    "run.cancelled",
]

EVENT_TYPES: frozenset[str] = frozenset(get_args(EventType))
TERMINAL_TYPES: frozenset[str] = frozenset({"run.completed", "run.failed", "run.cancelled"})

# The keys each kind always carries in ``data`` (more may be present). All data is
# plain, strict JSON: values from users, tools or models that JSON has no type for
# are recorded as their text, and NaN or an infinity as null.
EVENT_DATA_KEYS: Mapping[str, tuple[str, ...]] = {
    # a rerun from a node (engine.fork) adds "forked_from": {"run_id", "node"} (+ "config", "outputs")
    "run.started": ("inputs", "workflow"),
    "node.started": ("iteration",),  # "reused": true on a rerun's execution reused from its source run
    "node.completed": ("output", "duration_ms"),  # "reused": true likewise (no model or tool call was made)
    "node.failed": ("error",),  # "cancelled": true when the run stopped it (also between retry attempts)
    "node.skipped": (),
    # step: the agent's round (from 0); attempt: the node's try (from 1, see retry). The deltas
    # of one (attempt, step) concatenate to that round's text; the last round's of the last
    # attempt are the node's final text. A retry's deltas never continue a failed attempt's.
    # llm.completed: "estimated": true when the endpoint sent no counts (about 4 characters a
    # token). "failed": true (with "error", "retrying") ends a try the endpoint began but cut
    # off: its tokens count in the run's totals, and the deltas of its (attempt, step) streamed
    # before it are void; the model's retry streams that round afresh.
    "llm.token": ("delta", "step", "attempt"),
    "llm.completed": ("model", "prompt_tokens", "completion_tokens", "estimated", "step", "attempt"),
    "tool.called": ("tool", "args", "call_id"),  # call_id: unique in the run's log, across resumes too
    # plus "result", or "error" when the call failed (the tool raised, exited non-zero, timed out or was
    # refused) with an optional "detail" (traceback, printed output, a backend's raw error: never shown
    # to a model); "truncated": true if the result was cut
    "tool.result": ("call_id", "duration_ms"),
    "memory.recalled": ("agent_id", "query", "hits"),
    "memory.saved": ("agent_id",),
    "log": ("level", "message"),
    "run.completed": ("result",),
    "run.failed": ("error", "node_id"),
    "run.cancelled": (),
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
    def from_dict(cls, raw: Mapping[str, Any]) -> Event:
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
