"""Errors of the memory package: one base, subclasses that say how to fix things.

Callers that treat memory as optional catch :class:`MemoryStoreError`; callers
that want to tell "the store is down" from "the request is wrong" catch the
subclasses. (Never name a class ``MemoryError``: that is a builtin.)
"""

from __future__ import annotations


class MemoryStoreError(Exception):
    """Base of every error raised by ``memory``."""


class MemoryUnavailable(MemoryStoreError):
    """The store cannot be reached (a Chroma server that is down, a database that cannot be opened).

    Attributes:
        location: where the store was looked for (``http://host:port``, a path or a URL without password).
    """

    def __init__(self, message: str, *, location: str = "") -> None:
        super().__init__(message)
        self.location = location


class EmbedderMismatch(MemoryStoreError):
    """A collection built with one embedding model was opened with another.

    Vectors of two models live in different spaces, so mixing them in one
    collection would make recall silently wrong: this is refused.

    Attributes:
        collection: the collection's name.
        stored: the embedder name recorded in the collection.
        requested: the embedder name of the caller.
        stored_setting: the embeddings setting ("openai" or "offline") that made the stored vectors.
    """

    def __init__(self, *, collection: str, stored: str, requested: str) -> None:
        stored_openai = stored.startswith("openai:")
        super().__init__(
            f"memory collection {collection!r} holds embeddings made by {stored!r}, but this process embeds with "
            f"{requested!r}; vectors of different models cannot be compared, so they are never mixed. Either switch "
            f"back (MEMORY_EMBEDDINGS={'openai' if stored_openai else 'local'}"
            f"{', MEMORY_EMBEDDING_MODEL=' + stored.split(':', 1)[1] if stored_openai else ''}), "
            f"or keep both by giving the new model its own collection (MEMORY_COLLECTION=<another name>)"
        )
        self.collection = collection
        self.stored = stored
        self.requested = requested
        self.stored_setting = "openai" if stored_openai else "offline"  # the Settings page's embeddings choice


class EmbeddingError(MemoryStoreError):
    """Texts could not be embedded (the model files are missing, the embeddings endpoint failed)."""


class InvalidMemory(MemoryStoreError, ValueError):
    """The request itself is wrong: an empty text or agent id, a bad page size, an unknown kind."""


class MemoryNotFound(MemoryStoreError, KeyError):
    """No memory with this id belongs to this agent."""

    def __init__(self, memory_id: str, agent_id: str) -> None:
        super().__init__(f"no memory {memory_id!r} for agent {agent_id!r}")
        self.memory_id = memory_id
        self.agent_id = agent_id

    def __str__(self) -> str:  # KeyError would show the repr of the message
        return str(self.args[0])


__all__ = [
    "EmbedderMismatch",
    "EmbeddingError",
    "InvalidMemory",
    "MemoryNotFound",
    "MemoryStoreError",
    "MemoryUnavailable",
]
