"""An agent's memory around one execution: recall before the model, save after it.

Recalled long-term memories and the short-term conversation go into the
prompt as one clearly delimited block (``memory.format_memory_block``),
wrapped as untrusted data (``engine.untrusted.memory_block``) at the start of
the user message -- never in a system message, so a memory cannot speak
with the author's authority. ``memory.recalled`` and
``memory.saved`` events say what was read and written.

The rule when memory fails (Chroma server down, database unreachable): a node
whose memory config says ``required: true`` fails; otherwise the agent
answers without memory and a ``log`` warning says why. The ``memory``
package (ChromaDB, the embedding model) is imported only when an agent uses it.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

from engine.errors import MemoryFailed
from engine.events import MemoryHit
from engine.model import MemoryConfig
from engine.nodes.base import Compiler, NodeContext
from engine.templates import Compiled

_QUERY_CHARS = 2000


@dataclass(frozen=True, slots=True)
class MemorySpec:
    agent_id: Compiled | None
    short_term: bool
    recall: int
    save: bool
    required: bool


def compile_memory(config: MemoryConfig, compiler: Compiler) -> MemorySpec:
    return MemorySpec(
        agent_id=compiler.template("config.memory.agent_id", config.agent_id),
        short_term=config.short_term,
        recall=config.recall,
        save=config.save,
        required=config.required,
    )


@dataclass(slots=True)
class MemorySession:
    """What one execution recalled; :meth:`save` records the exchange afterwards."""

    spec: MemorySpec
    agent_id: str
    manager: Any  # memory.MemoryManager, or None when memory is unavailable
    block: str = ""

    async def save(self, ctx: NodeContext, prompt: str, output: Any) -> None:
        if self.manager is None or not self.spec.save:
            return
        answer = output if isinstance(output, str) else json.dumps(output, ensure_ascii=False)
        from memory import MemoryStoreError

        try:
            ids = await asyncio.to_thread(
                self.manager.add_interaction,
                prompt,
                answer,
                True,
                run_id=ctx.run_id,
                node_id=ctx.node_id,
                workflow=ctx.workflow_name,
                save_to_shortterm=self.spec.short_term,
            )
        except MemoryStoreError as exc:
            _unavailable(ctx, self.spec, self.agent_id, f"saving failed: {exc}")
            return
        ctx.emit("memory.saved", {"agent_id": self.agent_id, "ids": ids, "short_term": self.spec.short_term})


async def open_memory(spec: MemorySpec, ctx: NodeContext, variables: Any, query: str, model: str) -> MemorySession:
    """Recall for ``query`` and build the prompt block; emits ``memory.recalled``."""
    assert spec.agent_id is not None
    agent_id = str(spec.agent_id.render(variables)).strip()
    from memory import MemoryManager, MemoryStoreError, format_memory_block

    try:
        await _load_embedding_model(ctx)
        manager = MemoryManager(agent_id)
        hits = await manager.arecall(query[:_QUERY_CHARS], spec.recall) if spec.recall else []
        turns = await manager.aconversation(None, model) if spec.short_term else []
    except MemoryStoreError as exc:
        _unavailable(ctx, spec, agent_id, str(exc))
        return MemorySession(spec, agent_id, None)
    ctx.emit(
        "memory.recalled",
        {
            "agent_id": agent_id,
            "query": query[:_QUERY_CHARS],
            "hits": [_hit(h) for h in hits],
            "short_term_turns": len(turns),
        },
    )
    return MemorySession(spec, agent_id, manager, format_memory_block(hits, turns))


async def _load_embedding_model(ctx: NodeContext) -> None:
    """The embedding model's first use in this process takes a moment: say so in the run's log, with its time."""
    from memory import embedding_model_pending, load_embedding_model

    if not embedding_model_pending():
        return
    ctx.emit("log", {"level": "info", "message": "loading the embedding model (its first use in this process)…"})
    took = await asyncio.to_thread(load_embedding_model)
    took_message = f"loading the embedding model took {took:.1f} s"
    ctx.emit("log", {"level": "info", "message": took_message, "seconds": round(took, 3)})


def _hit(hit: Any) -> MemoryHit:
    meta = dict(hit.metadata)
    return {
        "id": hit.id,
        "text": hit.text,
        "score": round(float(hit.score), 4),
        "distance": round(float(hit.distance), 4),
        "kind": meta.get("kind"),
        "run_id": meta.get("run_id"),
        "node_id": meta.get("node_id"),
        "created_at": meta.get("created_at"),
    }


def _unavailable(ctx: NodeContext, spec: MemorySpec, agent_id: str, why: str) -> None:
    if spec.required:
        raise MemoryFailed(f"memory of agent '{agent_id}' is required but unavailable: {why}")
    message = f"memory of agent '{agent_id}' unavailable, answering without it: {why}"
    ctx.emit("log", {"level": "warning", "message": message})
