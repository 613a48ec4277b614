"""The studio's one configuration object, read once from the environment and the settings file.

Why this module exists: configuration used to be read from ``os.environ`` by
fifteen modules at call time, and the dashboard's Save wrote ``os.environ``
while the engine thread read it. Now a process reads :class:`Settings` once
when it starts (:meth:`Settings.from_env`: the environment, then the
Settings page's file ``$DATA_DIR/settings.json`` where a variable is unset)
and hands it to what needs it: ``Runtime(settings=...)``, the CLI, the API
server, the dashboard's runtime. A ``Settings`` never changes; the
dashboard's Save makes a new one (:meth:`Settings.with_saved`) and hands it
to the runtime (``Runtime.update_settings``), which gives it to the runs
started after that.

It is the only module of the engine that reads ``os.environ``
(``tests/unit/test_config_boundary.py`` holds every module to it). ``tools``
and ``memory`` may not import ``engine``, so their parts are their own
(:class:`tools.config.ToolSettings`, :class:`memory.config.MemorySettings`),
read here with the rest and handed to each run.

A value that does not parse is never replaced by its default silently:
:meth:`Settings.from_env` raises :class:`~engine.errors.ConfigInvalid` with
one line per such variable, naming it. Secrets (``OPENAI_API_KEY``,
``API_TOKEN``) are kept out of every ``repr`` and never leave the process.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import time
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType, ModuleType
from typing import TYPE_CHECKING

from datadir.env import EnvReader
from engine.errors import ConfigInvalid
from engine.settings import ENV_VARIABLES, Source
from engine.settings import Settings as SavedSettings
from engine.settings import load as load_saved
from tools import config as tool_config
from tools.config import ToolSettings

if TYPE_CHECKING:  # memory may be missing from an installation: the store and the API work without it
    from memory.config import MemorySettings

__all__ = ["ApiSettings", "ConfigInvalid", "LlmSettings", "QueueSettings", "Settings"]

DEFAULT_MODEL = "gpt-4o-mini"  # when neither the node, the workflow nor OPENAI_MODEL names one
DEFAULT_TOKEN_DELAY_S = 0.005


@dataclass(frozen=True, slots=True)
class LlmSettings:
    """The model endpoint agents talk to; with neither key nor base URL, the offline model answers."""

    api_key: str = field(default="", repr=False)  # OPENAI_API_KEY: never shown, never leaves the process
    base_url: str = field(default="", repr=False)  # OPENAI_BASE_URL: may hold credentials (engine.llm.public_url)
    model: str = ""  # OPENAI_MODEL, else the settings file's; "" = none named
    offline_token_delay_s: float = DEFAULT_TOKEN_DELAY_S  # OFFLINE_TOKEN_DELAY_S

    @property
    def configured(self) -> bool:
        """Whether agents use an endpoint (a key or a base URL is set) rather than the offline model."""
        return bool(self.api_key or self.base_url)

    @property
    def default_model(self) -> str:
        """The model when neither the node nor the workflow names one."""
        return self.model or DEFAULT_MODEL


@dataclass(frozen=True, slots=True)
class ApiSettings:
    """The HTTP API server's knobs (``python -m engine serve``; see docs/api.md)."""

    token: str = field(default="", repr=False)  # API_TOKEN: never shown
    allowed_hosts: tuple[str, ...] = ()  # API_ALLOWED_HOSTS
    cors_origins: tuple[str, ...] = ()  # API_CORS_ORIGINS
    max_body_bytes: int = 1024 * 1024  # API_MAX_BODY_BYTES
    conn_timeout_s: int = 5  # API_CONN_TIMEOUT_S
    max_connections: int = 500  # API_MAX_CONNECTIONS
    sse_keepalive_s: float = 15.0  # API_SSE_KEEPALIVE_S

    @classmethod
    def read(cls, env: EnvReader) -> ApiSettings:
        return cls(
            token=env.secret("API_TOKEN"),
            allowed_hosts=env.items("API_ALLOWED_HOSTS"),
            cors_origins=env.items("API_CORS_ORIGINS"),
            max_body_bytes=env.integer("API_MAX_BODY_BYTES", 1024 * 1024, what="bytes"),
            conn_timeout_s=env.integer("API_CONN_TIMEOUT_S", 5, high=3600, what="seconds"),
            max_connections=env.integer("API_MAX_CONNECTIONS", 500, high=10**6, what="connections"),
            sse_keepalive_s=env.number("API_SSE_KEEPALIVE_S", 15.0, high=3600),
        )


EXECUTION_MODES = ("local", "queue")


@dataclass(frozen=True, slots=True)
class QueueSettings:
    """Where runs execute and, in queue mode, how workers beat, sweep and resume (docs/queue.md)."""

    mode: str = "local"  # EXECUTION_MODE: "local" (in the process that starts a run) or "queue" (on workers)
    heartbeat_s: float = 10.0  # QUEUE_HEARTBEAT_S
    stalled_s: float = 30.0  # QUEUE_STALLED_S: a worker silent this long counts as dead
    sweep_s: float = 10.0  # QUEUE_SWEEP_S
    max_auto_resumes: int = 3  # MAX_AUTO_RESUMES: 0 = a dead worker's run waits for a manual resume

    @classmethod
    def read(cls, env: EnvReader) -> QueueSettings:
        return cls(
            mode=env.choice(
                "EXECUTION_MODE", "local", {m: m for m in EXECUTION_MODES},
                rule="must be 'local' (the default) or 'queue'",
            ),
            heartbeat_s=env.number("QUEUE_HEARTBEAT_S", 10.0),
            stalled_s=env.number("QUEUE_STALLED_S", 30.0),
            sweep_s=env.number("QUEUE_SWEEP_S", 10.0),
            max_auto_resumes=env.integer("MAX_AUTO_RESUMES", 3, low=0, what="resumes"),
        )


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the studio is configured with; immutable (make another with :func:`dataclasses.replace`).

    ``saved`` is the settings file as read (prices, the timeout for new
    workflows, and its own endpoint fields); ``sources`` names the Settings
    page's fields whose value in effect is not the file's: ``"override"``
    (an environment variable wins over another value in the file) or
    ``"environment"`` (the file has none).
    """

    data_dir: Path = Path("data").resolve()  # DATA_DIR, resolved when read
    database_url: str | None = None  # DATABASE_URL; None: SQLite under data_dir
    llm: LlmSettings = LlmSettings()
    memory: MemorySettings | None = None  # None: the memory package cannot be imported here
    tools: ToolSettings = ToolSettings()
    api: ApiSettings = ApiSettings()
    queue: QueueSettings = QueueSettings()
    saved: SavedSettings = field(default_factory=SavedSettings, compare=False, repr=False)
    sources: Mapping[str, Source] = field(default_factory=lambda: MappingProxyType({}), compare=False)

    @classmethod
    def now(cls) -> Settings:
        """:meth:`from_env` as the environment and the settings file are now, not read again while neither
        changed: what ``run_workflow`` and ``execute`` use when handed no settings, once per run.

        Reading costs ~0.2 ms (45 variables, the file); checking for a change ~3 µs (the environment compared
        with the copy taken at the last read, the working directory, the file's size, time and inode).
        """
        environ = getattr(os.environ, "_data", None)  # CPython's os.environ keeps its bytes here
        last = _last_read
        cwd = os.getcwd()
        unchanged = environ is not None and last is not None and last.environ == environ and last.cwd == cwd
        if unchanged and last is not None and last.file == _file_key(last.path):
            return last.settings
        if environ is None:
            return cls.from_env()
        seen = dict(environ)
        file = _file_key(_data_dir(EnvReader(os.environ)) / "settings.json")  # before the read: a save after it shows
        settings = cls.from_env()
        if file is None or time.time_ns() - file[1] > _RACY_NS:
            _remember(_LastRead(seen, cwd, file, settings, str(settings.settings_file)))
        return settings

    @property
    def settings_file(self) -> Path:
        """Where the Settings page saves (``$DATA_DIR/settings.json``)."""
        return self.data_dir / "settings.json"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, settings_file: Path | None = None) -> Settings:
        """Read the settings: ``environ`` (default: this process's environment), then the settings file.

        ``settings_file`` defaults to ``$DATA_DIR/settings.json``; a missing or
        unreadable file counts as empty. For ``OPENAI_BASE_URL``,
        ``OPENAI_MODEL`` and ``MEMORY_EMBEDDINGS`` a set variable wins over
        the file.

        Raises:
            ConfigInvalid: values that do not parse, one line per variable naming it.
        """
        env = EnvReader(os.environ if environ is None else environ)
        memory_config = _memory_config()
        embeddings_values = memory_config.EMBEDDINGS if memory_config is not None else {"offline": "offline"}
        data_dir = _data_dir(env)
        settings_file = settings_file or data_dir / "settings.json"
        saved = load_saved(settings_file)
        has_file = settings_file.is_file()  # no file counts as no values, not as the file's defaults
        env_values = {
            "base_url": env.text("OPENAI_BASE_URL"),
            "model": env.text("OPENAI_MODEL"),
            "embeddings": env.choice("MEMORY_EMBEDDINGS", "", embeddings_values) if memory_config else "",
        }
        file_values = {name: _saved_value(saved, name) if has_file else "" for name in env_values}
        llm = LlmSettings(
            api_key=env.secret("OPENAI_API_KEY"),
            base_url=env_values["base_url"] or file_values["base_url"],
            model=env_values["model"] or file_values["model"],
            offline_token_delay_s=env.number("OFFLINE_TOKEN_DELAY_S", DEFAULT_TOKEN_DELAY_S, zero=True),
        )
        memory = None
        if memory_config is not None:
            memory = dataclasses.replace(
                memory_config.MemorySettings.read(env),
                data_dir=data_dir,
                embeddings=env_values["embeddings"] or file_values["embeddings"] or "offline",
                openai_base_url=llm.base_url,
            )
        tools = dataclasses.replace(ToolSettings.read(env), data_dir=data_dir)
        api = ApiSettings.read(env)
        queue = QueueSettings.read(env)
        if env.problems:
            raise ConfigInvalid(env.problems)
        sources: dict[str, Source] = {
            name: "override" if file_values[name] else "environment"
            for name, value in env_values.items()
            if value and value != file_values[name]
        }
        return cls(
            data_dir=data_dir,
            database_url=env.optional("DATABASE_URL"),
            llm=llm,
            memory=memory,
            tools=tools,
            api=api,
            queue=queue,
            saved=saved,
            sources=MappingProxyType(sources),
        )

    def in_effect(self) -> SavedSettings:
        """The Settings page's fields as in effect (the endpoint fields may come from the environment)."""
        embeddings = self.memory.embeddings if self.memory is not None else self.saved.embeddings
        return dataclasses.replace(self.saved, base_url=self.llm.base_url, model=self.llm.model, embeddings=embeddings)

    @contextlib.contextmanager
    def applied(self) -> Iterator[Settings]:
        """Tool calls and memory used in this block (and in the tasks and threads it starts) are configured by
        these settings (:func:`tools.config.using`, :func:`memory.config.using`): how a run is handed them."""
        with tool_config.using(self.tools):
            if self.memory is None:
                yield self
                return
            from memory import config as memory_config

            with memory_config.using(self.memory):
                yield self

    def with_saved(self, saved: SavedSettings, *, keep: Collection[str] = ()) -> Settings:
        """These settings after the Settings page saved ``saved``: its endpoint fields take effect (over
        environment variables, until a restart) except those in ``keep`` (left as they were on the page),
        which stay as they are in effect."""
        apply = [name for name in ENV_VARIABLES if name not in keep]
        values = {name: _saved_value(saved, name) for name in apply}
        llm = dataclasses.replace(
            self.llm,
            base_url=values.get("base_url", self.llm.base_url),
            model=values.get("model", self.llm.model),
        )
        memory = self.memory
        if memory is not None:
            memory = dataclasses.replace(
                memory, embeddings=values.get("embeddings") or memory.embeddings, openai_base_url=llm.base_url
            )
        sources = {name: source for name, source in self.sources.items() if name not in apply}
        return dataclasses.replace(self, llm=llm, memory=memory, saved=saved, sources=MappingProxyType(sources))


def _memory_config() -> ModuleType | None:
    """``memory.config``, or None when the memory package cannot be imported (its settings are then not read)."""
    try:
        from memory import config
    except ImportError:
        return None
    return config


def _saved_value(saved: SavedSettings, name: str) -> str:
    """A settings-file field as the environment variable would give it ("" = unset; embeddings normalised)."""
    value = str(getattr(saved, name) or "").strip()
    if name == "embeddings":
        return "openai" if value.lower() == "openai" else ("offline" if value else "")
    return value


@dataclass(frozen=True, slots=True)
class _LastRead:
    """What :meth:`Settings.now` read last, and the state of the world it read it from."""

    environ: dict[bytes, bytes]
    cwd: str
    file: tuple[int, int, int] | None
    settings: Settings
    path: str  # the settings file it read, as text: checked on every call, so not made again each time


_last_read: _LastRead | None = None
# A file changed this recently may change again within its timestamp's granularity (a few ms) keeping its size:
# it is read every time until it is older than this ("racily clean", as git calls it)
_RACY_NS = 2_000_000_000


def _remember(read: _LastRead) -> None:
    global _last_read
    _last_read = read


def _data_dir(env: EnvReader) -> Path:
    return Path(env.text("DATA_DIR", "data")).expanduser().resolve()


def _file_key(path: Path | str) -> tuple[int, int, int] | None:
    """The settings file's size, modification time and inode (None when there is none): any save changes it."""
    try:
        status = os.stat(path)
    except OSError:
        return None
    return status.st_size, status.st_mtime_ns, status.st_ino
