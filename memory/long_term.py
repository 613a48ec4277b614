"""Long-term semantic memory in ChromaDB, with provenance and deterministic ids.

Where: a ``chromadb.PersistentClient`` under ``$DATA_DIR/chroma`` (``DATA_DIR``
defaults to ``./data``); ``CHROMA_HOST`` (and ``CHROMA_PORT``, default 8000)
switch to a Chroma server through ``chromadb.HttpClient``.

Layout: **one collection per agent**, named ``<prefix>-<agent slug>-<hash>``
(prefix ``MEMORY_COLLECTION``, default ``memory``), its metadata recording the
agent id and the embedder's name and dimension. Per agent rather than one
shared collection filtered by ``agent_id``, because Chroma's filtered search
is slow: measured here at 10,000 memories, top-5 took 1.6 ms unfiltered and
26 ms with ``where={"agent_id": ...}`` (9,000 matching). Per agent also makes
"clear an agent" one ``delete_collection`` and "list agents" a listing.
A collection made with another embedder is refused (:class:`EmbedderMismatch`),
never mixed: to run two models side by side give each its own prefix.

Vectors are always computed here (by an :class:`~memory.embeddings.Embedder`)
and passed explicitly; collections are created with ``embedding_function=None``
so Chroma never loads (or downloads) a model of its own. Distances are cosine
(``hnsw:space = cosine``).

Ids are ``sha256(agent_id, kind, text)``, so saving the same text again is a
no-op (the first save's provenance stays; writes use ``upsert``, so two
processes racing on the same memory still leave one). An update keeps the id.

Every memory carries :class:`MemoryMetadata`: ``agent_id``, ``run_id``,
``node_id``, ``workflow``, ``kind`` (interaction, fact, summary),
``created_at`` (epoch seconds), ``embedder``, and when it applies
``truncated`` + ``original_chars`` (texts longer than ``MEMORY_MAX_CHARS``,
default 8,000, are cut and say so) and ``updated_at``. Keys whose value is
None are not stored (Chroma drops them) and read back as absent.

Writes (add, update, delete, clear) go through one lock per store location
and process: one writer per process. Reads take no lock.

Errors: a server that cannot be reached raises :class:`MemoryUnavailable`
within about a second (the client is re-made on the next call, so a restarted
server is picked up); other Chroma failures raise :class:`MemoryStoreError`.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypedDict

from datadir import folder_for, private_dir, private_tree
from memory import config as memory_config
from memory.config import MemorySettings
from memory.embeddings import Embedder, default_embedder
from memory.errors import EmbedderMismatch, InvalidMemory, MemoryNotFound, MemoryStoreError, MemoryUnavailable

log = logging.getLogger(__name__)

Kind = Literal["interaction", "fact", "summary"]
KINDS: tuple[str, ...] = ("interaction", "fact", "summary")
DEFAULT_MAX_CHARS = 8000
DEFAULT_PREFIX = "memory"
_HEARTBEAT_TIMEOUT_S = 2.0
_REQUEST_TIMEOUT_S = 30.0


class MemoryMetadata(TypedDict, total=False):
    """What every memory records; see the module docstring."""

    agent_id: str
    run_id: str
    node_id: str
    workflow: str
    kind: str
    created_at: float
    updated_at: float
    embedder: str
    truncated: bool
    original_chars: int


@dataclass(frozen=True, slots=True)
class MemoryRecord:
    """One stored memory."""

    id: str
    text: str
    metadata: MemoryMetadata

    @property
    def created_at(self) -> float:
        return float(self.metadata.get("created_at", 0.0))

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "text": self.text, "metadata": dict(self.metadata)}


@dataclass(frozen=True, slots=True)
class MemoryHit:
    """One recalled memory.

    Attributes:
        distance: Chroma's cosine distance, ``1 - cos(query, memory)``, in 0..2 (lower is closer).
        score: ``max(0, 1 - distance)``: the cosine similarity clipped to 0..1, higher is better.
            For all-MiniLM-L6-v2 (measured on the tests' corpus): unrelated texts score about 0-0.2
            (median 0.05), a question paraphrasing a memory 0.6-0.8.
    """

    id: str
    text: str
    distance: float
    score: float
    metadata: MemoryMetadata

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "text": self.text,
            "distance": self.distance,
            "score": self.score,
            "metadata": dict(self.metadata),
        }


def score_of(distance: float) -> float:
    """The 0..1 score of a cosine distance (see :class:`MemoryHit`)."""
    return min(1.0, max(0.0, 1.0 - float(distance)))


def memory_id(agent_id: str, kind: str, text: str) -> str:
    """The deterministic id of a memory: sha256 over agent id, kind and text (hex, 64 chars)."""
    digest = hashlib.sha256()
    for part in (agent_id, kind, text):
        data = part.encode("utf-8")
        digest.update(len(data).to_bytes(8, "big"))  # length-prefixed: no two splits collide
        digest.update(data)
    return digest.hexdigest()


def collection_name(prefix: str, agent_id: str) -> str:
    """The collection that holds one agent's memories: readable, unique, valid for Chroma.

    Chroma names are 3-512 characters of ``[a-zA-Z0-9._-]`` starting and ending
    alphanumeric; the hash keeps two agent ids that slug alike apart.
    """
    slug = re.sub(r"[^a-zA-Z0-9]+", "-", agent_id).strip("-").lower()[:40].strip("-") or "agent"
    digest = hashlib.sha256(agent_id.encode("utf-8")).hexdigest()[:12]
    return f"{prefix}-{slug}-{digest}"


# ----------------------------------------------------------------- connection


class ChromaConnection:
    """A lazily made Chroma client for one location, and that location's write lock.

    Args:
        path: a folder for ``PersistentClient``; ignored when ``host`` is given.
        host: a Chroma server (``HttpClient``).
        port: the server's port.
        data_dir: the data folder: when ``path`` is in it, the folder is made private (0700).
    """

    def __init__(
        self, *, path: str | Path | None = None, host: str | None = None, port: int = 8000, data_dir: Path | None = None
    ) -> None:
        if host is None and path is None:
            raise InvalidMemory("ChromaConnection needs a path or a host")
        self.host = host
        self.port = int(port)
        self.path = None if host else Path(path).expanduser().resolve()  # type: ignore[arg-type]
        self.location = f"http://{host}:{self.port}" if host else str(self.path)
        self.data_dir = data_dir
        self.write_lock = _write_lock(self.location)
        self._client: Any = None
        self._lock = threading.Lock()
        # collection handles by name, shared by every store on this location (one store per embedder): a
        # collection one store deletes must not live on in another's cache
        self.collections: dict[str, Any] = {}

    @classmethod
    def from_env(cls, settings: MemorySettings | None = None) -> ChromaConnection:
        """``CHROMA_HOST``/``CHROMA_PORT`` when set, else ``$DATA_DIR/chroma`` (of ``settings``, default
        :func:`memory.config.current`)."""
        settings = settings or memory_config.current()
        if settings.chroma_host:
            return cls(host=settings.chroma_host, port=settings.chroma_port)
        return cls(path=settings.data_dir / "chroma", data_dir=settings.data_dir)

    def client(self) -> Any:
        """The Chroma client, made at the first call (a server is checked with a 2 s heartbeat)."""
        client = self._client
        if client is not None:
            return client
        with self._lock:
            if self._client is None:
                self._client = self._connect()
            return self._client

    def reset(self) -> None:
        """Forget the client (after a connection failure), so the next call reconnects."""
        with self._lock:
            self._client = None

    def _connect(self) -> Any:
        import chromadb
        from chromadb.config import Settings

        settings = Settings(anonymized_telemetry=False)
        if self.host is None:
            assert self.path is not None
            try:
                folder_for(self.path, self.data_dir)  # the data folder: 0700
                private_dir(self.path)
                client = chromadb.PersistentClient(path=str(self.path), settings=settings)
                private_tree(self.path)  # chroma.sqlite3 and the index folders: 0600 / 0700
                return client
            except Exception as exc:
                raise MemoryUnavailable(
                    f"cannot open the Chroma store in {self.path}: {exc}", location=self.location
                ) from exc
        self._heartbeat()
        try:
            client = chromadb.HttpClient(host=self.host, port=self.port, settings=settings)
        except Exception as exc:
            raise self._unavailable(exc) from exc
        _bound_timeouts(client)
        return client

    def _heartbeat(self) -> None:
        import httpx

        try:
            reply = httpx.get(f"{self.location}/api/v2/heartbeat", timeout=_HEARTBEAT_TIMEOUT_S)
        except httpx.HTTPError as exc:
            raise self._unavailable(exc) from exc
        if reply.status_code != 200:
            raise self._unavailable(f"heartbeat answered HTTP {reply.status_code}")

    def _unavailable(self, cause: object) -> MemoryUnavailable:
        return MemoryUnavailable(
            f"the Chroma server at {self.location} is not reachable ({cause}); start it "
            f"(chroma run --path DIR --host {self.host} --port {self.port}) or unset CHROMA_HOST "
            "to keep memories in DATA_DIR",
            location=self.location,
        )

    @contextmanager
    def guard(self) -> Iterator[None]:
        """Turn Chroma and transport failures into ``MemoryStoreError``s."""
        import httpx

        try:
            yield
        except MemoryStoreError:
            raise
        except (httpx.TransportError, ConnectionError) as exc:
            self.reset()
            raise self._unavailable(exc) from exc
        except ValueError as exc:
            if "could not connect" in str(exc).lower():
                self.reset()
                raise self._unavailable(exc) from exc
            raise MemoryStoreError(f"Chroma at {self.location}: {exc}") from exc
        except Exception as exc:
            if type(exc).__module__.startswith("chromadb"):
                raise MemoryStoreError(f"Chroma at {self.location}: {exc}") from exc
            raise


_write_locks: dict[str, threading.RLock] = {}
_write_locks_guard = threading.Lock()


def _write_lock(location: str) -> threading.RLock:
    with _write_locks_guard:
        return _write_locks.setdefault(location, threading.RLock())


def _bound_timeouts(client: Any) -> None:
    """chromadb's HTTP client waits forever by default; a hung server should fail a call, not a run."""
    import httpx

    session = getattr(getattr(client, "_server", None), "_session", None)
    if isinstance(session, httpx.Client):
        session.timeout = httpx.Timeout(_REQUEST_TIMEOUT_S, connect=_HEARTBEAT_TIMEOUT_S)


# ----------------------------------------------------------------- store


@dataclass(frozen=True, slots=True)
class Provenance:
    """Where a memory came from."""

    run_id: str | None = None
    node_id: str | None = None
    workflow: str | None = None


@dataclass(slots=True)
class LongTermStore:
    """One agent-keyed long-term memory over a :class:`ChromaConnection`, embedding with one embedder.

    All methods take the agent id; an agent with no collection yet reads as
    empty. Construct with :meth:`from_env` or directly.
    """

    connection: ChromaConnection
    embedder: Embedder
    prefix: str = DEFAULT_PREFIX
    max_chars: int = DEFAULT_MAX_CHARS  # longer texts are cut (and say so)

    @classmethod
    def from_env(
        cls,
        embedder: Embedder | None = None,
        *,
        connection: ChromaConnection | None = None,
        settings: MemorySettings | None = None,
    ) -> LongTermStore:
        """The store ``settings`` describe (default :func:`memory.config.current`; see the module docstring)."""
        settings = settings or memory_config.current()
        return cls(
            connection or ChromaConnection.from_env(settings),
            embedder or default_embedder(settings),
            _valid_prefix(settings.collection),
            max(100, settings.max_chars),
        )

    @property
    def location(self) -> str:
        return self.connection.location

    # -- writes

    def add(
        self,
        agent_id: str,
        texts: Sequence[str],
        *,
        kind: str = "fact",
        provenance: Provenance = Provenance(),
    ) -> list[str]:
        """Save texts as memories of ``agent_id``; their ids, in order.

        A text saved before (same agent, kind and text) keeps its first
        provenance and costs no embedding. Texts are stripped; longer than
        ``MEMORY_MAX_CHARS`` they are cut, with ``truncated`` and
        ``original_chars`` in their metadata.

        Raises:
            InvalidMemory: an empty text, agent id or unknown kind.
        """
        _check_agent(agent_id)
        if kind not in KINDS:
            raise InvalidMemory(f"memory kind {kind!r} is not one of {', '.join(KINDS)}")
        rows = [self._row(agent_id, text, kind, provenance) for text in texts]
        if not rows:
            return []
        with self.connection.write_lock, self._op():
            collection = self._collection(agent_id, create=True)
            unique = {row[0]: row for row in rows}
            known = set(collection.get(ids=list(unique), include=[])["ids"])
            fresh = [row for row in unique.values() if row[0] not in known]
            if fresh:
                vectors = self.embedder.embed([row[1] for row in fresh])
                collection.upsert(
                    ids=[row[0] for row in fresh],
                    embeddings=vectors,
                    documents=[row[1] for row in fresh],
                    metadatas=[row[2] for row in fresh],  # type: ignore[misc]
                )
        return [row[0] for row in rows]

    def update(self, agent_id: str, memory_id: str, text: str) -> MemoryRecord:
        """Replace a memory's text (re-embedded); its id and provenance stay, ``updated_at`` is set.

        Raises:
            MemoryNotFound: the agent has no memory with that id.
            InvalidMemory: the new text is empty.
        """
        stored, cut = _cap(text, self.max_chars)
        with self.connection.write_lock, self._op():
            old = self.get(agent_id, memory_id)
            if old is None:
                raise MemoryNotFound(memory_id, agent_id)
            metadata: dict[str, Any] = {**old.metadata, "updated_at": time.time(), "embedder": self.embedder.name}
            metadata.pop("truncated", None)
            metadata.pop("original_chars", None)
            if cut:
                metadata.update(truncated=True, original_chars=cut)
            collection = self._collection(agent_id, create=False)
            vector = self.embedder.embed([stored])
            # update() merges metadata, so a stale "truncated" would survive it: upsert replaces the record.
            collection.upsert(ids=[memory_id], embeddings=vector, documents=[stored], metadatas=[metadata])
        return MemoryRecord(memory_id, stored, metadata)  # type: ignore[arg-type]

    def delete(self, agent_id: str, memory_id: str) -> bool:
        """Delete one memory; False when the agent had no such memory."""
        with self.connection.write_lock, self._op():
            collection = self._collection(agent_id, create=False)
            if collection is None or not collection.get(ids=[memory_id], include=[])["ids"]:
                return False
            collection.delete(ids=[memory_id])
            return True

    def clear(self, agent_id: str) -> int:
        """Delete every memory of ``agent_id`` (its collection); how many there were. Works whatever model
        embedded them (switching embedders and starting over is what clearing is for)."""
        name = collection_name(self.prefix, agent_id)
        with self.connection.write_lock, self._op():
            collection = self._collection(agent_id, create=False, any_embedder=True)
            if collection is None:
                return 0
            count = collection.count()
            self.connection.collections.pop(name, None)
            try:
                self.connection.client().delete_collection(name)
            except Exception as exc:
                if type(exc).__name__ != "NotFoundError":
                    raise
            return count

    # -- reads

    def query(self, agent_id: str, text: str, n_results: int = 5) -> list[MemoryHit]:
        """The ``n_results`` memories of ``agent_id`` closest to ``text``, best first."""
        if not text or not text.strip() or n_results <= 0:
            return []
        with self._op():
            collection = self._collection(agent_id, create=False)
            if collection is None:
                return []
            vector = self.embedder.embed([text.strip()[: self.max_chars]])
            reply = collection.query(
                query_embeddings=vector, n_results=n_results, include=["documents", "metadatas", "distances"]
            )
        hits = []
        for id_, doc, meta, dist in zip(
            reply["ids"][0], reply["documents"][0], reply["metadatas"][0], reply["distances"][0], strict=False
        ):
            hits.append(MemoryHit(id_, doc or "", float(dist), score_of(dist), dict(meta or {})))  # type: ignore[arg-type]
        return hits

    def get(self, agent_id: str, memory_id: str) -> MemoryRecord | None:
        """One memory of ``agent_id``, or None."""
        with self._op():
            collection = self._collection(agent_id, create=False)
            if collection is None:
                return None
            reply = collection.get(ids=[memory_id], include=["documents", "metadatas"])
        if not reply["ids"]:
            return None
        return MemoryRecord(reply["ids"][0], reply["documents"][0] or "", dict(reply["metadatas"][0] or {}))  # type: ignore[arg-type]

    def count(self, agent_id: str) -> int:
        with self._op():
            collection = self._collection(agent_id, create=False)
            return 0 if collection is None else int(collection.count())

    def list_memories(self, agent_id: str, *, offset: int = 0, limit: int = 20) -> list[MemoryRecord]:
        """A page of ``agent_id``'s memories, newest first (by ``created_at``, then id).

        Chroma cannot sort, and reading metadata costs about 0.1 ms per memory,
        so this reads the ids (storage order, which is insertion order in
        practice), takes the creation time ``t0`` of the oldest among the last
        ``offset + limit`` of them, and reads the metadata of every memory
        created at or after ``t0``: a set that surely holds the newest
        ``offset + limit`` whatever the storage order (at least that many are
        that new), and in practice not much more. First page at 10,000
        memories: about 50 ms instead of 1.2 s for a full scan.
        """
        if offset < 0 or limit < 0:
            raise InvalidMemory("offset and limit must be >= 0")
        need = offset + limit
        with self._op():
            collection = self._collection(agent_id, create=False)
            if collection is None or limit == 0:
                return []
            ids = collection.get(include=[])["ids"]
            if len(ids) <= max(need, 200):
                reply = collection.get(ids=ids, include=["metadatas"]) if ids else {"ids": [], "metadatas": []}
            else:
                tail = collection.get(ids=ids[-need:], include=["metadatas"])["metadatas"]
                t0 = min(float((m or {}).get("created_at", 0.0)) for m in tail)
                reply = collection.get(where={"created_at": {"$gte": t0}}, include=["metadatas"])
            stamps = sorted(
                (
                    (float((m or {}).get("created_at", 0.0)), i)
                    for i, m in zip(reply["ids"], reply["metadatas"], strict=False)
                ),
                key=lambda s: (-s[0], s[1]),
            )
            page = [i for _, i in stamps[offset:need]]
            if not page:
                return []
            reply = collection.get(ids=page, include=["documents", "metadatas"])
        by_id = {
            i: MemoryRecord(i, d or "", dict(m or {}))  # type: ignore[arg-type]
            for i, d, m in zip(reply["ids"], reply["documents"], reply["metadatas"], strict=False)
        }
        return [by_id[i] for i in page if i in by_id]

    def agents(self) -> dict[str, int]:
        """Every agent with a collection under this prefix, and its memory count."""
        found: dict[str, int] = {}
        with self._op():
            client = self.connection.client()
            for collection in client.list_collections():
                name = getattr(collection, "name", str(collection))
                if not name.startswith(self.prefix + "-"):
                    continue
                meta = collection.metadata or {}
                agent_id = meta.get("agent_id")
                if isinstance(agent_id, str) and collection_name(self.prefix, agent_id) == name:
                    found[agent_id] = int(collection.count())
        return found

    # -- helpers

    @contextmanager
    def _op(self) -> Iterator[None]:
        """``connection.guard()``, and forget cached collection handles after any failure.

        A handle may be stale (its collection deleted by another process, or
        its client reset after a connection failure); the next call reopens it.
        """
        try:
            with self.connection.guard():
                yield
        except MemoryStoreError:
            self.connection.collections.clear()
            raise

    def _row(self, agent_id: str, text: str, kind: str, provenance: Provenance) -> tuple[str, str, dict[str, Any]]:
        stored, cut = _cap(text, self.max_chars)
        metadata: dict[str, Any] = {
            "agent_id": agent_id,
            "kind": kind,
            "created_at": time.time(),
            "embedder": self.embedder.name,
        }
        for key in ("run_id", "node_id", "workflow"):
            value = getattr(provenance, key)
            if value is not None:
                metadata[key] = str(value)
        if cut:
            metadata.update(truncated=True, original_chars=cut)
            log.warning("memory of agent %r cut from %d to %d characters", agent_id, cut, len(stored))
        return memory_id(agent_id, kind, text.strip()), stored, metadata

    def _collection(self, agent_id: str, *, create: bool, any_embedder: bool = False) -> Any:
        """The agent's collection (None when it does not exist and ``create`` is false), checked for its embedder
        unless ``any_embedder`` (deleting needs no vectors, so memories of another model can still be cleared)."""
        name = collection_name(self.prefix, agent_id)
        collection = self.connection.collections.get(name)
        if collection is not None:
            return self._checked(name, collection, any_embedder)
        client = self.connection.client()
        if create:
            collection = client.get_or_create_collection(
                name,
                embedding_function=None,
                metadata={"agent_id": agent_id, "embedder": self.embedder.name, "created_at": time.time()},
                configuration={"hnsw": {"space": "cosine"}},
            )
        else:
            try:
                collection = client.get_collection(name, embedding_function=None)
            except Exception as exc:
                if type(exc).__name__ == "NotFoundError":
                    return None
                raise
        self.connection.collections[name] = collection
        return self._checked(name, collection, any_embedder)

    def _checked(self, name: str, collection: Any, any_embedder: bool) -> Any:
        stored = (collection.metadata or {}).get("embedder")
        if not any_embedder and stored != self.embedder.name:
            raise EmbedderMismatch(collection=name, stored=str(stored), requested=self.embedder.name)
        return collection


def _cap(text: str, limit: int) -> tuple[str, int | None]:
    """The text to store, stripped and capped at ``limit``, and its original length when it was cut."""
    if not isinstance(text, str) or not text.strip():
        raise InvalidMemory("a memory needs some text: got an empty one")
    text = text.strip()
    if len(text) <= limit:
        return text, None
    return text[:limit], len(text)


def _check_agent(agent_id: str) -> None:
    if not isinstance(agent_id, str) or not agent_id.strip():
        raise InvalidMemory("an agent id must be a non-empty string")


def _valid_prefix(prefix: str) -> str:
    if not re.fullmatch(r"[a-zA-Z0-9][a-zA-Z0-9._-]{1,60}", prefix):
        raise InvalidMemory(
            f"MEMORY_COLLECTION={prefix!r}: use 2-61 letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
    return prefix


__all__ = [
    "KINDS",
    "ChromaConnection",
    "Kind",
    "LongTermStore",
    "MemoryHit",
    "MemoryMetadata",
    "MemoryRecord",
    "Provenance",
    "collection_name",
    "memory_id",
    "score_of",
]
