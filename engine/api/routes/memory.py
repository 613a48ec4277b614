"""``/memory``: the agents that have long-term memories, and recall (or a page) of one agent's memories.

The memory package is imported on first use: an installation without it (or with a broken one) answers
503 here and nowhere else. Memory is opened with the runtime's settings (``runtime.settings.memory``), the
ones its runs are handed, never read from the environment here.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, is_dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Query

from engine.api.deps import AgentId, RuntimeDep
from engine.api.errors import ApiError, errors
from engine.api.schemas import MemoryOut

router = APIRouter(tags=["memory"])


def _plain(value: Any) -> Any:
    """A memory hit or agent (dict, dataclass, pydantic model, object) as JSON-able data."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if callable(getattr(value, "to_dict", None)) and not isinstance(value, type):
        return _plain(value.to_dict())
    if is_dataclass(value) and not isinstance(value, type):
        return _plain(asdict(value))
    if hasattr(value, "model_dump"):
        return _plain(value.model_dump())
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if hasattr(value, "__dict__"):
        return _plain({k: v for k, v in vars(value).items() if not k.startswith("_")})
    return str(value)


def _memory() -> Any:
    try:
        import memory
    except Exception as exc:  # noqa: BLE001 - any import failure means "not available"
        raise ApiError(
            503, f"agent memory is not available: the memory package cannot be imported ({type(exc).__name__})"
        ) from None
    if not callable(getattr(memory, "list_agents", None)) or getattr(memory, "MemoryManager", None) is None:
        raise ApiError(
            503, "agent memory is not available in this installation yet (memory.list_agents / MemoryManager missing)"
        )
    return memory


@contextmanager
def _memory_errors(memory: Any) -> Iterator[None]:
    """The memory package's own errors: bad input is a 422, anything else of its kind a 503."""
    base = getattr(memory, "MemoryStoreError", None)
    invalid = getattr(memory, "InvalidMemory", None)
    if not (isinstance(base, type) and issubclass(base, BaseException)):
        yield
        return
    try:
        yield
    except base as exc:
        if isinstance(invalid, type) and isinstance(exc, invalid):
            raise ApiError(422, f"invalid memory request: {exc}") from None
        raise ApiError(503, f"agent memory is unavailable: {exc}") from None


def _agent_id(agent: Any) -> str | None:
    if isinstance(agent, str):
        return agent
    plain = _plain(agent)
    if isinstance(plain, dict):
        found = plain.get("agent_id") or plain.get("id") or plain.get("name")
        return str(found) if found is not None else None
    return None


@router.get("/memory/agents", response_model=list[Any], responses=errors(401, 503))
def memory_agents(runtime: RuntimeDep) -> list[Any]:
    """Agents that have long-term memories."""
    memory = _memory()
    settings = runtime.settings.memory
    with _memory_errors(memory):
        return [_plain(agent) for agent in memory.list_agents(settings=settings)]


@router.get("/memory/{agent_id}", response_model=MemoryOut, responses=errors(401, 404, 422, 503))
def memory_recall(
    runtime: RuntimeDep,
    agent_id: AgentId,
    query: Annotated[
        str | None, Query(max_length=4000, description="recall by meaning; without it, list memories")
    ] = None,
    k: Annotated[int, Query(ge=1, le=100, description="how many hits")] = 5,
    offset: Annotated[int, Query(ge=0, le=1_000_000, description="listing only: skip this many")] = 0,
) -> MemoryOut:
    """An agent's memories: the ``k`` best hits for ``query`` (with scores and provenance), else a page of them."""
    memory = _memory()
    settings = runtime.settings.memory
    with _memory_errors(memory):
        known = {_agent_id(agent) for agent in memory.list_agents(settings=settings)}
        if agent_id not in known:
            raise ApiError(404, f"no memories for agent '{agent_id}' (list agents with GET /memory/agents)")
        manager = memory.MemoryManager(agent_id, settings=settings)
        if query and query.strip():
            hits = manager.recall(query, n_results=k)
        else:
            hits = manager.list_memories(offset=offset, limit=k)
    return MemoryOut(agent_id=agent_id, query=query or None, hits=[_plain(hit) for hit in hits])
