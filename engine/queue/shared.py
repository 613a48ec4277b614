"""Queue mode's shared memory: short-term turns in PostgreSQL, long-term memories on a Chroma server.

Why this module exists: a worker on another machine must see the same memories
as every other worker, so nothing an agent remembers may live in one worker's
data folder. In queue mode short-term memory uses ``MEMORY_DATABASE_URL`` when
set, else the store's own PostgreSQL ``DATABASE_URL`` (table ``memory_turns``);
long-term memory uses the Chroma server at ``CHROMA_HOST`` / ``CHROMA_PORT``
(``chromadb.HttpClient``). A worker refuses to start, in one line saying what to
set, when either would be a file (:func:`shared_memory` with ``refuse``); the
dashboard, the API and the CLI use the same places without refusing, since they
only show memory.
"""

from __future__ import annotations

import dataclasses

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from engine.config import Settings
from engine.queue.mode import QueueModeInvalid


def shared_memory(settings: Settings, store_url: str, *, refuse: bool) -> Settings:
    """``settings`` with memory where every worker finds it (see the module docstring).

    Raises:
        QueueModeInvalid: with ``refuse``, ``MEMORY_DATABASE_URL`` names a SQLite file, or ``CHROMA_HOST`` is unset.
    """
    memory = settings.memory
    if memory is None:  # the memory package is not installed: agents cannot use memory at all
        return settings
    url = memory.database_url or store_url
    if refuse and _backend(url) != "postgresql":
        raise QueueModeInvalid(
            "EXECUTION_MODE=queue keeps short-term memory in PostgreSQL: unset MEMORY_DATABASE_URL (the store's "
            "DATABASE_URL is used) or set it to postgresql+psycopg://user@host:5432/db, not a SQLite file"
        )
    if refuse and not memory.chroma_host:
        raise QueueModeInvalid(
            "EXECUTION_MODE=queue keeps long-term memory on a Chroma server: set CHROMA_HOST (and CHROMA_PORT, "
            "default 8000) to one every worker reaches, e.g. one started with `chroma run --path DIR --port 8000`"
        )
    return dataclasses.replace(settings, memory=dataclasses.replace(memory, database_url=url))


def _backend(url: str) -> str:
    try:
        return make_url(url).get_backend_name()
    except ArgumentError:
        return "unparsable"


__all__ = ["shared_memory"]
