"""Memory's settings: where turns and memories are kept, how texts are embedded, the window's size.

Why this module exists: memory must not read ``os.environ`` while it works (a
dashboard Save would race with it, and nobody could hand a run other
settings). The studio reads these once, as part of ``engine.config.Settings``
(``settings.memory``), and hands them to each run (:func:`using`); memory asks
:func:`current`. ``memory`` may not import ``engine``, so this part of the
settings lives here.

Outside such a run (a library caller, a test) :func:`current` builds them from
the environment at that moment (:meth:`MemorySettings.from_env`): the default
for direct use. Every class here also takes its values as arguments.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path

from datadir.env import EnvReader

__all__ = ["EMBEDDINGS", "MemorySettings", "current", "using"]

# MEMORY_EMBEDDINGS values -> the embedder they stand for ("offline": the shipped MiniLM)
EMBEDDINGS = {"offline": "offline", "local": "offline", "minilm": "offline", "openai": "openai"}


@dataclass(frozen=True, slots=True)
class MemorySettings:
    """What memory is configured with (see docs/configuration.md); hashable, so shared backends key on it."""

    data_dir: Path = Path("data")  # DATA_DIR: memory.db and chroma/ live here unless configured elsewhere
    database_url: str | None = None  # MEMORY_DATABASE_URL
    short_term_tokens: int = 2000  # MEMORY_SHORT_TERM_TOKENS
    short_term_max_turns: int = 50  # MEMORY_SHORT_TERM_MAX_TURNS
    chroma_host: str | None = None  # CHROMA_HOST
    chroma_port: int = 8000  # CHROMA_PORT
    collection: str = "memory"  # MEMORY_COLLECTION
    max_chars: int = 8000  # MEMORY_MAX_CHARS (at least 100)
    embeddings: str = "offline"  # MEMORY_EMBEDDINGS: "offline" or "openai"
    embedding_model: str = "text-embedding-3-small"  # MEMORY_EMBEDDING_MODEL
    embedding_threads: int | None = None  # MEMORY_EMBEDDING_THREADS
    minilm_onnx: str | None = None  # MEMORY_MINILM_ONNX
    openai_base_url: str = field(default="", repr=False)  # OPENAI_BASE_URL: may hold credentials
    openai_api_key: str = field(default="", repr=False)  # OPENAI_API_KEY: never shown

    @classmethod
    def read(cls, env: EnvReader) -> MemorySettings:
        """From ``env``; bad values go to ``env.problems`` (one line each) and keep their defaults."""
        return cls(
            data_dir=Path(env.text("DATA_DIR", "data")),
            database_url=env.optional("MEMORY_DATABASE_URL"),
            short_term_tokens=env.integer("MEMORY_SHORT_TERM_TOKENS", 2000, what="tokens"),
            short_term_max_turns=env.integer("MEMORY_SHORT_TERM_MAX_TURNS", 50, what="turns"),
            chroma_host=env.optional("CHROMA_HOST"),
            chroma_port=env.integer("CHROMA_PORT", 8000, high=65535, what=""),
            collection=env.text("MEMORY_COLLECTION", "memory"),
            max_chars=env.integer("MEMORY_MAX_CHARS", 8000, low=100, what="characters"),
            embeddings=env.choice("MEMORY_EMBEDDINGS", "offline", EMBEDDINGS),
            embedding_model=env.text("MEMORY_EMBEDDING_MODEL", "text-embedding-3-small"),
            embedding_threads=env.integer("MEMORY_EMBEDDING_THREADS", 0, high=256, what="threads") or None,
            minilm_onnx=env.optional("MEMORY_MINILM_ONNX"),
            openai_base_url=env.text("OPENAI_BASE_URL"),
            openai_api_key=env.secret("OPENAI_API_KEY"),
        )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> MemorySettings:
        """From ``environ`` (default: this process's environment), for direct use of memory.

        Raises:
            InvalidMemory: a value does not parse (every such variable, one line each).
        """
        env = EnvReader(os.environ if environ is None else environ)
        settings = cls.read(env)
        if env.problems:
            from memory.errors import InvalidMemory

            raise InvalidMemory("; ".join(env.problems))
        return settings


_current: ContextVar[MemorySettings | None] = ContextVar("memory_settings", default=None)


def current() -> MemorySettings:
    """The settings of the run this call belongs to; outside a run, the environment's now."""
    settings = _current.get()
    return settings if settings is not None else MemorySettings.from_env()


@contextlib.contextmanager
def using(settings: MemorySettings) -> Iterator[MemorySettings]:
    """Memory used in this block (and in tasks and threads it starts) is configured by ``settings``."""
    token = _current.set(settings)
    try:
        yield settings
    finally:
        _current.reset(token)
