"""Agent memory: a short-term conversation window and long-term semantic memory.

::

    from memory import MemoryManager, format_memory_block, list_agents

    mm = MemoryManager("support-bot")
    mm.add_interaction("My name is Alice", "Nice to meet you, Alice", run_id=run_id, node_id="chat")
    hits = mm.recall("what is the user called?", n_results=5)   # [MemoryHit(id, text, distance, score, metadata)]
    turns = mm.conversation(budget_tokens=1000, model="gpt-4")  # recent turns that fit, oldest first
    prompt_block = format_memory_block(hits, turns)

Parts (each usable alone):

* :mod:`memory.short_term` -- turns (user message + answer) per agent in SQL
  (``$DATA_DIR/memory.db`` or ``MEMORY_DATABASE_URL``), windowed by tokens;
* :mod:`memory.long_term` -- memories in ChromaDB (``$DATA_DIR/chroma`` or
  ``CHROMA_HOST``/``CHROMA_PORT``), one collection per agent, with provenance;
* :mod:`memory.embeddings` -- the offline all-MiniLM-L6-v2 (default) or the
  OpenAI embeddings API (``MEMORY_EMBEDDINGS=openai``);
* :mod:`memory.errors` -- ``MemoryStoreError`` and its subclasses.

A :class:`MemoryManager` is a cheap per-agent view: by default every manager
of a process shares one short-term store and one Chroma client
(:func:`default_backends`, one set per :class:`~memory.config.MemorySettings`:
the run's, handed in by the engine, or the environment's for direct use).
Unknown agent ids read as empty, never as errors. Every method is
synchronous and thread-safe; the ``a``-prefixed twins run them in a worker
thread for asyncio callers. Nothing here imports ``engine`` or ``streamlit``.

What fails, and how: an empty text or agent id raises ``InvalidMemory``; an
unreachable Chroma server or database raises ``MemoryUnavailable`` (within
about 2 s); a collection made with another embedding model raises
``EmbedderMismatch``; embedding failures raise ``EmbeddingError``. All are
``MemoryStoreError``: a caller for whom memory is optional catches that one.
"""

from __future__ import annotations

import asyncio
import functools
import re
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from memory import config as memory_config
from memory.config import MemorySettings
from memory.embeddings import (
    Embedder,
    MiniLMEmbedder,
    OpenAIEmbedder,
    default_embedder,
    embedding_model_pending,
    load_embedding_model,
)
from memory.errors import (
    EmbedderMismatch,
    EmbeddingError,
    InvalidMemory,
    MemoryNotFound,
    MemoryStoreError,
    MemoryUnavailable,
)
from memory.long_term import (
    ChromaConnection,
    LongTermStore,
    MemoryHit,
    MemoryMetadata,
    MemoryRecord,
    Provenance,
    memory_id,
)
from memory.short_term import ShortTermStore, Turn, count_tokens


@dataclass(frozen=True, slots=True)
class AgentSummary:
    """An agent that has memories, and how many of each kind."""

    agent_id: str
    long_term_count: int
    short_term_turns: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "agent_id": self.agent_id,
            "long_term_count": self.long_term_count,
            "short_term_turns": self.short_term_turns,
        }


@dataclass(frozen=True, slots=True)
class Cleared:
    """What :meth:`MemoryManager.clear` removed."""

    long_term: int
    short_term: int


# ----------------------------------------------------------------- shared backends


@dataclass
class Backends:
    """One Chroma connection and one short-term store, shared by the managers of a process."""

    connection: ChromaConnection
    short_term: ShortTermStore
    settings: MemorySettings
    _long_term: dict[str, LongTermStore] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def long_term_for(self, embedder: Embedder | None = None) -> LongTermStore:
        """The long-term store embedding with ``embedder`` (default: :func:`default_embedder` of these settings)."""
        embedder = embedder or default_embedder(self.settings)
        with self._lock:
            store = self._long_term.get(embedder.name)  # embedders with one name are interchangeable
            if store is None:
                store = LongTermStore.from_env(embedder, connection=self.connection, settings=self.settings)
                self._long_term[embedder.name] = store
            return store

    @property
    def long_term(self) -> LongTermStore:
        return self.long_term_for()


_backends: dict[MemorySettings, Backends] = {}
_backends_lock = threading.Lock()


def default_backends(settings: MemorySettings | None = None) -> Backends:
    """The process's shared backends for ``settings`` (default :func:`memory.config.current`; see the
    module docstring): one set per configuration."""
    settings = settings or memory_config.current()
    with _backends_lock:
        backends = _backends.get(settings)
        if backends is None:
            backends = Backends(ChromaConnection.from_env(settings), ShortTermStore(settings=settings), settings)
            _backends[settings] = backends
        return backends


def reset_default_backends() -> None:
    """Forget the shared backends; the next manager builds new ones (tests, after changing settings)."""
    with _backends_lock:
        _backends.clear()


# ----------------------------------------------------------------- the manager


def interaction_text(user_msg: str, assistant_msg: str) -> str:
    """How an interaction is stored as one long-term memory."""
    parts = []
    if user_msg and user_msg.strip():
        parts.append(f"User: {user_msg.strip()}")
    if assistant_msg and assistant_msg.strip():
        parts.append(f"Assistant: {assistant_msg.strip()}")
    return "\n".join(parts)


class MemoryManager:
    """Everything one agent remembers: its recent turns and its long-term memories.

    Args:
        agent_id: the agent's id (any non-empty string).
        embedder: how to embed; default :func:`~memory.embeddings.default_embedder`
            (or ``long_term``'s).
        long_term: a :class:`~memory.long_term.LongTermStore`; default the shared one.
        short_term: a :class:`~memory.short_term.ShortTermStore`; default the shared one.
        settings: the shared stores' configuration (default :func:`memory.config.current`).
    """

    def __init__(
        self,
        agent_id: str,
        *,
        embedder: Embedder | None = None,
        long_term: LongTermStore | None = None,
        short_term: ShortTermStore | None = None,
        settings: MemorySettings | None = None,
    ) -> None:
        if not isinstance(agent_id, str) or not agent_id.strip():
            raise InvalidMemory("an agent id must be a non-empty string")
        if long_term is not None and embedder is not None and long_term.embedder.name != embedder.name:
            raise InvalidMemory(
                f"embedder {embedder.name!r} and the long-term store's {long_term.embedder.name!r} differ: pass one"
            )
        backends = default_backends(settings) if long_term is None or short_term is None else None
        self.agent_id = agent_id
        self.long_term = long_term or backends.long_term_for(embedder)  # type: ignore[union-attr]
        self.short_term = short_term or backends.short_term  # type: ignore[union-attr]

    @property
    def embedder(self) -> Embedder:
        return self.long_term.embedder

    def __repr__(self) -> str:
        return (
            f"MemoryManager({self.agent_id!r}, long_term={self.long_term.location!r}, embedder={self.embedder.name!r})"
        )

    # -- writing

    def add_interaction(
        self,
        user_msg: str,
        assistant_msg: str,
        save_to_longterm: bool = True,
        *,
        run_id: str | None = None,
        node_id: str | None = None,
        workflow: str | None = None,
        save_to_shortterm: bool = True,
    ) -> list[str]:
        """Record one exchange: a short-term turn, and (``save_to_longterm``) one ``interaction`` memory.

        The memory's text is ``"User: <user_msg>\\nAssistant: <assistant_msg>"``;
        saving the same exchange again adds a turn but no second memory. The
        turn is written first, so a Chroma failure (raised) leaves the turn saved.

        Returns:
            the ids of the long-term memories written (one, or none when ``save_to_longterm`` is false).

        Raises:
            InvalidMemory: both messages are empty.
        """
        if save_to_shortterm:
            self.short_term.add(self.agent_id, user_msg, assistant_msg, run_id=run_id, node_id=node_id)
        if not save_to_longterm:
            if not interaction_text(user_msg or "", assistant_msg or ""):
                raise InvalidMemory("an interaction needs a user message or an answer: both are empty")
            return []
        provenance = Provenance(run_id=run_id, node_id=node_id, workflow=workflow)
        text = interaction_text(user_msg, assistant_msg)
        return self.long_term.add(self.agent_id, [text], kind="interaction", provenance=provenance)

    def add_memory(
        self,
        text: str,
        kind: str = "fact",
        *,
        run_id: str | None = None,
        node_id: str | None = None,
        workflow: str | None = None,
    ) -> str:
        """Save one long-term memory (``fact``, ``summary`` or ``interaction``); its id.

        Texts over ``MEMORY_MAX_CHARS`` (8,000) are cut; ``get(id).metadata`` then
        has ``truncated: True`` and ``original_chars``.
        """
        provenance = Provenance(run_id=run_id, node_id=node_id, workflow=workflow)
        return self.long_term.add(self.agent_id, [text], kind=kind, provenance=provenance)[0]

    def add_memories(
        self,
        texts: Sequence[str],
        kind: str = "fact",
        *,
        run_id: str | None = None,
        node_id: str | None = None,
        workflow: str | None = None,
    ) -> list[str]:
        """Save many memories in one batch (one embedding call, one write); their ids."""
        provenance = Provenance(run_id=run_id, node_id=node_id, workflow=workflow)
        return self.long_term.add(self.agent_id, texts, kind=kind, provenance=provenance)

    def update(self, memory_id: str, text: str) -> MemoryRecord:
        """Replace a memory's text, re-embedded; id and provenance stay, ``updated_at`` is added.

        Raises:
            MemoryNotFound: this agent has no such memory.
        """
        return self.long_term.update(self.agent_id, memory_id, text)

    def delete(self, memory_id: str) -> bool:
        """Delete one memory; False when this agent had none with that id."""
        return self.long_term.delete(self.agent_id, memory_id)

    def clear(self, *, long_term: bool = True, short_term: bool = True) -> Cleared:
        """Forget everything this agent remembers (or one of the two parts)."""
        return Cleared(
            long_term=self.long_term.clear(self.agent_id) if long_term else 0,
            short_term=self.short_term.clear(self.agent_id) if short_term else 0,
        )

    # -- reading

    def recall(self, query: str, n_results: int = 5) -> list[MemoryHit]:
        """The long-term memories closest to ``query``, best first (see :class:`MemoryHit` for the score)."""
        return self.long_term.query(self.agent_id, query, n_results)

    def list_memories(self, offset: int = 0, limit: int = 20) -> list[MemoryRecord]:
        """A page of long-term memories, newest first."""
        return self.long_term.list_memories(self.agent_id, offset=offset, limit=limit)

    def count(self) -> int:
        """How many long-term memories this agent has."""
        return self.long_term.count(self.agent_id)

    def get(self, memory_id: str) -> MemoryRecord | None:
        """One long-term memory of this agent, or None."""
        return self.long_term.get(self.agent_id, memory_id)

    def conversation(self, budget_tokens: int | None = None, model: str | None = None) -> list[Turn]:
        """The short-term window: the latest turns that fit ``budget_tokens`` for ``model``, oldest first."""
        return self.short_term.window(self.agent_id, budget_tokens=budget_tokens, model=model)

    def conversation_for_run(self, run_id: str) -> list[Turn]:
        """This agent's turns in one run, oldest first."""
        return self.short_term.turns_for_run(run_id, agent_id=self.agent_id)

    def turns(self, offset: int = 0, limit: int = 50) -> list[Turn]:
        """A page of all this agent's turns, newest first."""
        return self.short_term.turns(self.agent_id, offset=offset, limit=limit)

    # -- asyncio twins

    async def arecall(self, query: str, n_results: int = 5) -> list[MemoryHit]:
        return await asyncio.to_thread(self.recall, query, n_results)

    async def aconversation(self, budget_tokens: int | None = None, model: str | None = None) -> list[Turn]:
        return await asyncio.to_thread(self.conversation, budget_tokens, model)

    async def aadd_interaction(
        self,
        user_msg: str,
        assistant_msg: str,
        save_to_longterm: bool = True,
        *,
        run_id: str | None = None,
        node_id: str | None = None,
        workflow: str | None = None,
        save_to_shortterm: bool = True,
    ) -> list[str]:
        add = functools.partial(
            self.add_interaction, user_msg, assistant_msg, save_to_longterm,
            run_id=run_id, node_id=node_id, workflow=workflow, save_to_shortterm=save_to_shortterm,
        )
        return await asyncio.to_thread(add)

    async def aadd_memory(self, text: str, kind: str = "fact", **provenance: str | None) -> str:
        return await asyncio.to_thread(self.add_memory, text, kind, **provenance)


def list_agents(
    *,
    long_term: LongTermStore | None = None,
    short_term: ShortTermStore | None = None,
    settings: MemorySettings | None = None,
) -> list[AgentSummary]:
    """Every agent with long-term memories or short-term turns, by agent id."""
    if long_term is None or short_term is None:
        backends = default_backends(settings)
        long_term = long_term or backends.long_term
        short_term = short_term or backends.short_term
    memories = long_term.agents()
    turns = short_term.agents()
    return [
        AgentSummary(agent_id, memories.get(agent_id, 0), turns.get(agent_id, 0))
        for agent_id in sorted(set(memories) | set(turns))
    ]


# ----------------------------------------------------------------- prompts

MEMORY_PREFACE = "Memories recalled for this request, one per line, most relevant first:"
CONVERSATION_PREFACE = "The recent conversation with this user, oldest first:"
_TAG = re.compile(r"<\s*/?\s*(?:memory|conversation)\s*>", re.IGNORECASE)


def format_memory_block(hits: Iterable[MemoryHit], turns: Iterable[Turn] = (), *, max_line_chars: int = 1000) -> str:
    """The memory part of a prompt; an empty string when there is nothing to show.

    Two sections, each with a one-line preface outside its tags::

        Memories recalled for this request, one per line, most relevant first:
        <memory>
        The user's cat is called Miso.
        User: My name is Alice. Assistant: Nice to meet you, Alice.
        </memory>
        The recent conversation with this user, oldest first:
        <conversation>
        user: What's the weather like?
        assistant: Sunny.
        </conversation>

    * ``<memory>`` holds one recalled memory per line (inner whitespace and
      newlines collapsed, cut at ``max_line_chars`` with "…"), in recall order. The offline model reads the lines
      of the first ``<memory>`` block and answers from the best-matching one.
    * ``<conversation>`` holds the short-term turns as ``user:`` / ``assistant:``
      lines (a message's own line breaks are kept, indented by two spaces).
      It is a separate section, not chat messages, so it can sit in a system
      prompt; :func:`turns_to_messages` gives chat messages instead. The
      offline model does not read it: in offline runs it answers from recall,
      which is why ``add_interaction`` also saves the exchange long-term.
    * A recalled interaction that is also in the conversation is kept in
      both: the offline model sees only ``<memory>``, so dropping it there
      would hide it. Tags inside texts are defused (``‹memory›``).
    """
    turns = list(turns)
    lines = [_one_line(h.text, max_line_chars) for h in hits if h.text]
    parts = []
    if lines:
        parts += [MEMORY_PREFACE, "<memory>", *lines, "</memory>"]
    if turns:
        parts += [CONVERSATION_PREFACE, "<conversation>"]
        for turn in turns:
            if turn.user:
                parts.append("user: " + _indented(turn.user))
            if turn.assistant:
                parts.append("assistant: " + _indented(turn.assistant))
        parts.append("</conversation>")
    return "\n".join(parts)


def turns_to_messages(turns: Iterable[Turn]) -> list[dict[str, str]]:
    """The turns as chat messages (user, assistant, user, ...), oldest first."""
    messages: list[dict[str, str]] = []
    for turn in turns:
        if turn.user:
            messages.append({"role": "user", "content": turn.user})
        if turn.assistant:
            messages.append({"role": "assistant", "content": turn.assistant})
    return messages


def _defuse(text: str) -> str:
    return _TAG.sub(lambda m: m.group(0).replace("<", "‹").replace(">", "›"), text)


def _one_line(text: str, limit: int) -> str:
    line = " ".join(_defuse(text).split())
    return line if len(line) <= limit else line[: max(1, limit - 1)].rstrip() + "…"


def _indented(text: str) -> str:
    return "\n  ".join(line.rstrip() for line in _defuse(text).strip().splitlines())


__all__ = [
    "AgentSummary",
    "Backends",
    "Cleared",
    "Embedder",
    "EmbedderMismatch",
    "EmbeddingError",
    "InvalidMemory",
    "LongTermStore",
    "MemoryHit",
    "MemoryManager",
    "MemoryMetadata",
    "MemoryNotFound",
    "MemoryRecord",
    "MemoryStoreError",
    "MemoryUnavailable",
    "MiniLMEmbedder",
    "OpenAIEmbedder",
    "Provenance",
    "ShortTermStore",
    "Turn",
    "count_tokens",
    "default_backends",
    "default_embedder",
    "embedding_model_pending",
    "format_memory_block",
    "interaction_text",
    "list_agents",
    "load_embedding_model",
    "memory_id",
    "reset_default_backends",
    "turns_to_messages",
]
